//! The order of cards within a board column: where a created card lands,
//! where a moved card lands between its neighbours, and renumbering a column
//! when two neighbours leave no room between them. The arithmetic of
//! positions is [`super::sort_order`]; the reads and writes are here.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use super::{
    StoreError, StoreResult, WriteTxn,
    scope::InWorkspace,
    sort_order,
    tasks::{find_referenced_task, status_name},
};
use crate::entity::{enums::TaskStatus, tasks};

/// Where a moved card lands in its column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// At the top of the column.
    Top,
    /// Right after this card.
    After(Uuid),
    /// Right before this card.
    Before(Uuid),
}

/// The position below the last card of `status`'s column.
pub(super) async fn bottom_of(txn: &WriteTxn, status: TaskStatus) -> StoreResult<i32> {
    // Concurrent moves in one column read the same neighbours and
    // picked the same position (7 distinct orders after 30 moves on
    // PostgreSQL): decided under the event-order lock, which every write
    // transaction holds from its start.
    let conn: &DatabaseTransaction = txn;
    let last: Option<i32> = tasks::Entity::find()
        .select_only()
        .column(tasks::Column::SortOrder)
        .in_workspace()
        .filter(tasks::Column::Status.eq(status))
        .order_by_desc(tasks::Column::SortOrder)
        .limit(1)
        .into_tuple()
        .one(conn)
        .await?;
    match sort_order::between(last, None) {
        Some(position) => Ok(position),
        None => Ok(renumber_column(conn, status, None).await?),
    }
}

/// Renumbers a column with fresh gaps, leaving room at the bottom (when
/// `insert` is `None`) or at `insert`'s index; returns the free position.
pub(super) async fn renumber_column<C: ConnectionTrait>(
    conn: &C,
    status: TaskStatus,
    insert: Option<(Uuid, Position)>,
) -> StoreResult<i32> {
    let mut column: Vec<Uuid> = tasks::Entity::find()
        .select_only()
        .column(tasks::Column::Id)
        .in_workspace()
        .filter(tasks::Column::Status.eq(status))
        .order_by_asc(tasks::Column::SortOrder)
        .order_by_asc(tasks::Column::Id)
        .into_tuple()
        .all(conn)
        .await?;
    let slot = match insert {
        None => column.len(),
        Some((moving, position)) => {
            column.retain(|id| *id != moving);
            match position {
                Position::Top => 0,
                Position::After(id) => column
                    .iter()
                    .position(|c| *c == id)
                    .map_or(column.len(), |i| i + 1),
                Position::Before(id) => column.iter().position(|c| *c == id).unwrap_or(0),
            }
        }
    };
    let mut order: Vec<Option<Uuid>> = column.into_iter().map(Some).collect();
    order.insert(slot, None);
    let mut free = 0;
    for (id, position) in order.iter().zip(sort_order::renumbered(order.len())) {
        match id {
            None => free = position,
            Some(id) => {
                tasks::Entity::update_many()
                    .col_expr(tasks::Column::SortOrder, position.into())
                    .filter(tasks::Column::Id.eq(*id))
                    .exec(conn)
                    .await?;
            }
        }
    }
    Ok(free)
}

/// Sort orders of the cards that will sit above and below the moved card.
pub(super) async fn neighbours(
    txn: &WriteTxn,
    moving: &tasks::Model,
    status: TaskStatus,
    position: Position,
) -> StoreResult<(Option<i32>, Option<i32>)> {
    // Decided under the event-order lock, as in `bottom_of`.
    let conn: &DatabaseTransaction = txn;
    let column = |query: sea_orm::Select<tasks::Entity>| {
        query
            .select_only()
            .column(tasks::Column::SortOrder)
            .in_workspace()
            .filter(tasks::Column::Status.eq(status))
            .filter(tasks::Column::Id.ne(moving.id))
    };
    let anchor = |id: Uuid, field: &'static str| async move {
        if id == moving.id {
            return Err(StoreError::invalid(
                field,
                "a task cannot be placed next to itself",
            ));
        }
        let anchor = find_referenced_task(conn, id, field).await?;
        if anchor.status != status {
            return Err(StoreError::FailedPrecondition(format!(
                "{field}: task {id} is in column {}, not {}",
                status_name(anchor.status),
                status_name(status)
            )));
        }
        Ok(anchor.sort_order)
    };
    Ok(match position {
        Position::Top => {
            let first: Option<i32> = column(tasks::Entity::find())
                .order_by_asc(tasks::Column::SortOrder)
                .limit(1)
                .into_tuple()
                .one(conn)
                .await?;
            (None, first)
        }
        Position::After(id) => {
            let above = anchor(id, "after_task_id").await?;
            let below: Option<i32> = column(tasks::Entity::find())
                .filter(tasks::Column::SortOrder.gt(above))
                .order_by_asc(tasks::Column::SortOrder)
                .limit(1)
                .into_tuple()
                .one(conn)
                .await?;
            (Some(above), below)
        }
        Position::Before(id) => {
            let below = anchor(id, "before_task_id").await?;
            let above: Option<i32> = column(tasks::Entity::find())
                .filter(tasks::Column::SortOrder.lt(below))
                .order_by_desc(tasks::Column::SortOrder)
                .limit(1)
                .into_tuple()
                .one(conn)
                .await?;
            (above, Some(below))
        }
    })
}
