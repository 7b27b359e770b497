//! Workers as the database knows them: the last heartbeat of each worker
//! ever seen (`worker_heartbeats`), and, with several servers over one
//! PostgreSQL, which server each connected worker's stream is held by
//! (`worker_connections`). Who is connected here is the dispatcher's
//! business (`dispatch::hub`); heartbeats are written with the runs they
//! report (`runs`).

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, QueryOrder, Statement};
use uuid::Uuid;

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

/// What a worker registered with, as every server over one PostgreSQL sees
/// it (`worker_connections`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// Stable id.
    pub worker_id: String,
    /// Host name.
    pub hostname: String,
    /// Software version.
    pub version: String,
    /// Registered slots.
    pub slots: i32,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Agents it runs (empty: any).
    pub agent_slugs: Vec<String>,
    /// Whether it takes no new work.
    pub draining: bool,
}

/// One connection of a worker to this server, as recorded for the others
/// (PostgreSQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connected(DateTime<FixedOffset>);

/// A worker connected to another server over the same database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectedElsewhere {
    /// What it registered with.
    pub registered: Registered,
    /// When it was last heard from (its heartbeat, or its registration).
    pub last_seen_at: DateTime<Utc>,
    /// The runs in its hands (running or cancelling).
    pub running: Vec<Uuid>,
}

impl Workers<'_> {
    /// Records that `worker` is connected to this server, for the others;
    /// returns the record's time, which names this connection when it ends.
    /// Nothing to record on SQLite (one server).
    pub async fn connected_here(&self, worker: &Registered) -> StoreResult<Option<Connected>> {
        if !self.0.is_postgres() {
            return Ok(None);
        }
        let Registered {
            worker_id,
            hostname,
            version,
            slots,
            labels,
            agent_slugs,
            draining,
        } = worker;
        let row = self
            .0
            .db()
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO worker_connections
                     (worker_id, server_id, hostname, version, slots, labels, agent_slugs, draining)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (worker_id) DO UPDATE SET
                     server_id = excluded.server_id, hostname = excluded.hostname,
                     version = excluded.version, slots = excluded.slots,
                     labels = excluded.labels, agent_slugs = excluded.agent_slugs,
                     draining = excluded.draining, connected_at = now()
                 RETURNING connected_at",
                [
                    worker_id.as_str().into(),
                    self.0.cluster().server_id.into(),
                    hostname.as_str().into(),
                    version.as_str().into(),
                    (*slots).into(),
                    serde_json::json!(labels).into(),
                    serde_json::json!(agent_slugs).into(),
                    (*draining).into(),
                ],
            ))
            .await?;
        match row {
            Some(row) => Ok(Some(Connected(row.try_get("", "connected_at")?))),
            None => Ok(None),
        }
    }

    /// Records that a connection's worker drains.
    pub async fn draining_here(&self, worker_id: &str, connection: Connected) -> StoreResult<()> {
        self.this_connection(
            "UPDATE worker_connections SET draining = true",
            worker_id,
            connection,
        )
        .await
    }

    /// Records that a connection ended; a newer one of the same worker
    /// (here, or on another server) stays.
    pub async fn disconnected_here(
        &self,
        worker_id: &str,
        connection: Connected,
    ) -> StoreResult<()> {
        self.this_connection("DELETE FROM worker_connections", worker_id, connection)
            .await
    }

    async fn this_connection(
        &self,
        statement: &str,
        worker_id: &str,
        Connected(at): Connected,
    ) -> StoreResult<()> {
        self.0
            .db()
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                format!(
                    "{statement} WHERE worker_id = $1 AND server_id = $2 AND connected_at = $3"
                ),
                [
                    worker_id.into(),
                    self.0.cluster().server_id.into(),
                    at.into(),
                ],
            ))
            .await?;
        Ok(())
    }

    /// The workers connected to the other servers over this database and
    /// heard from within `alive_within` (a row left by a server that died
    /// stops counting once its worker's heartbeat is old), by id. Empty on
    /// SQLite.
    pub async fn connected_elsewhere(
        &self,
        alive_within: std::time::Duration,
    ) -> StoreResult<Vec<ConnectedElsewhere>> {
        if !self.0.is_postgres() {
            return Ok(Vec::new());
        }
        let alive_since: DateTime<FixedOffset> =
            (Utc::now() - TimeDelta::from_std(alive_within).unwrap_or(TimeDelta::MAX)).into();
        let rows = self
            .0
            .db()
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT c.worker_id, c.hostname, c.version, c.slots, c.labels, c.agent_slugs,
                        c.draining, greatest(c.connected_at, h.last_seen_at) AS last_seen_at,
                        coalesce(r.running, '[]') AS running
                 FROM worker_connections c
                 LEFT JOIN worker_heartbeats h ON h.worker_id = c.worker_id
                 -- One pass over the runs in workers' hands, not one per worker.
                 LEFT JOIN (SELECT worker_id, jsonb_agg(id ORDER BY id) AS running
                            FROM executions WHERE status IN ('running', 'cancelling')
                            GROUP BY worker_id) r ON r.worker_id = c.worker_id
                 WHERE c.server_id <> $1
                   AND greatest(c.connected_at, h.last_seen_at) >= $2
                 ORDER BY c.worker_id",
                [self.0.cluster().server_id.into(), alive_since.into()],
            ))
            .await?;
        rows.iter()
            .map(|row| {
                let labels: serde_json::Value = row.try_get("", "labels")?;
                let agent_slugs: serde_json::Value = row.try_get("", "agent_slugs")?;
                let running: serde_json::Value = row.try_get("", "running")?;
                let last_seen_at: DateTime<FixedOffset> = row.try_get("", "last_seen_at")?;
                Ok(ConnectedElsewhere {
                    registered: Registered {
                        worker_id: row.try_get("", "worker_id")?,
                        hostname: row.try_get("", "hostname")?,
                        version: row.try_get("", "version")?,
                        slots: row.try_get("", "slots")?,
                        labels: serde_json::from_value(labels).unwrap_or_default(),
                        agent_slugs: serde_json::from_value(agent_slugs).unwrap_or_default(),
                        draining: row.try_get("", "draining")?,
                    },
                    last_seen_at: last_seen_at.with_timezone(&Utc),
                    running: serde_json::from_value(running).unwrap_or_default(),
                })
            })
            .collect()
    }
}
