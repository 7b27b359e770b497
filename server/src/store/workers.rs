//! Workers as the database knows them: the last heartbeat of each worker
//! ever seen (`worker_heartbeats`). Who is connected now is the dispatcher's
//! business (`dispatch::hub`); heartbeats are written with the runs they
//! report (`runs`).

use sea_orm::{EntityTrait, QueryOrder};

use super::{StoreResult, Workers};
use crate::entity::worker_heartbeats;

impl Workers<'_> {
    /// Every worker ever seen, by id, with its last heartbeat.
    pub async fn seen(&self) -> StoreResult<Vec<worker_heartbeats::Model>> {
        Ok(worker_heartbeats::Entity::find()
            .order_by_asc(worker_heartbeats::Column::WorkerId)
            .all(self.0.db())
            .await?)
    }
}
