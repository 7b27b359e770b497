//! Several servers over one PostgreSQL database: what one server commits,
//! the others hear at once, through `LISTEN`/`NOTIFY`.
//!
//! A write transaction that changed something others watch (an audit
//! event, an execution's status, a log's size, the worker tuning) queues one
//! `NOTIFY` naming it, in the transaction itself: PostgreSQL delivers it at
//! the commit and never for a rollback, so no listener hears of a change it
//! cannot read yet, and none misses one that committed. Each server listens
//! on one connection and feeds what the others did into its own hubs, the
//! same ones its own commits wake: event watchers and the dispatcher, log
//! followers, execution watchers, the engine's relay of cancels to the
//! workers connected here. Nothing polls: an idle server makes no query.
//!
//! Notifications are lost while the listening connection is down; when it
//! is back, everything the hubs watch is read again (see [`Cluster::resync`]).
//! While it is down the database counts as unreachable (health says
//! `NOT_SERVING`).
//!
//! On SQLite there is one server: nothing is sent and nobody listens.

use std::{fmt::Write as _, sync::Arc, time::Duration};

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter, Statement,
    sqlx::postgres::PgListener,
};
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use super::{Store, StoreResult};
use crate::entity::{enums::ExecutionStatus, executions};

/// The channel every server of a database listens on.
pub const CHANNEL: &str = "amon_changes";

/// Longest payload put in one `NOTIFY` (PostgreSQL's limit is 8000 bytes).
const PAYLOAD_BYTES: usize = 7_600;

/// Pause between attempts to listen again after the database went away.
const RELISTEN_BACKOFF: Duration = Duration::from_millis(500);

/// What a transaction changed, as other servers are told.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Newest audit event committed.
    pub newest_event: Option<i64>,
    /// Executions whose row changed, with their new status.
    pub executions: Vec<(Uuid, ExecutionStatus)>,
    /// Logs that grew: execution, bytes and lines stored.
    pub logs: Vec<(Uuid, u64, u64)>,
    /// The worker tuning changed.
    pub config: bool,
}

impl Changes {
    /// Whether there is nothing to tell.
    pub fn is_empty(&self) -> bool {
        self.newest_event.is_none()
            && self.executions.is_empty()
            && self.logs.is_empty()
            && !self.config
    }

    /// The payloads telling them, each within [`PAYLOAD_BYTES`]: the sender's
    /// id, then items separated by spaces (`e<id>`, `x<uuid>:<status>`,
    /// `l<uuid>:<bytes>:<lines>`, `c`).
    pub fn payloads(&self, sender: Uuid) -> Vec<String> {
        let mut items = Vec::new();
        if let Some(id) = self.newest_event {
            items.push(format!("e{id}"));
        }
        for (id, status) in &self.executions {
            items.push(format!("x{id}:{}", status_code(*status)));
        }
        for (id, bytes, lines) in &self.logs {
            items.push(format!("l{id}:{bytes}:{lines}"));
        }
        if self.config {
            items.push("c".to_owned());
        }
        let mut payloads = Vec::new();
        let mut current = sender.to_string();
        for item in items {
            if current.len() + 1 + item.len() > PAYLOAD_BYTES {
                payloads.push(std::mem::replace(&mut current, sender.to_string()));
            }
            let _ = write!(current, " {item}");
        }
        payloads.push(current);
        payloads
    }

    /// The sender and changes of a payload; `None` if it is not one of ours.
    pub fn parse(payload: &str) -> Option<(Uuid, Self)> {
        let mut parts = payload.split(' ');
        let sender = Uuid::parse_str(parts.next()?).ok()?;
        let mut changes = Self::default();
        for item in parts {
            let (kind, rest) = item.split_at_checked(1)?;
            match kind {
                "e" => {
                    let id = rest.parse().ok()?;
                    changes.newest_event =
                        Some(changes.newest_event.map_or(id, |n: i64| n.max(id)));
                }
                "x" => {
                    let (id, status) = rest.split_once(':')?;
                    changes
                        .executions
                        .push((Uuid::parse_str(id).ok()?, status_of(status)?));
                }
                "l" => {
                    let mut fields = rest.split(':');
                    let id = Uuid::parse_str(fields.next()?).ok()?;
                    let bytes = fields.next()?.parse().ok()?;
                    let lines = fields.next()?.parse().ok()?;
                    changes.logs.push((id, bytes, lines));
                }
                "c" => changes.config = true,
                _ => return None,
            }
        }
        Some((sender, changes))
    }
}

/// Statuses by their number in payloads.
const STATUSES: [ExecutionStatus; 7] = [
    ExecutionStatus::Queued,
    ExecutionStatus::Running,
    ExecutionStatus::Cancelling,
    ExecutionStatus::Succeeded,
    ExecutionStatus::Failed,
    ExecutionStatus::Cancelled,
    ExecutionStatus::TimedOut,
];

fn status_code(status: ExecutionStatus) -> usize {
    STATUSES.iter().position(|s| *s == status).unwrap_or(0)
}

fn status_of(code: &str) -> Option<ExecutionStatus> {
    STATUSES.get(code.parse::<usize>().ok()?).copied()
}

/// This server's place among the servers of its database.
#[derive(Clone)]
pub struct Cluster {
    /// Who this server is in the payloads (new at every start).
    pub server_id: Uuid,
    /// Whether the database answers (for health): on PostgreSQL, whether
    /// the listening connection is up; on SQLite, always.
    reachable: Arc<watch::Sender<bool>>,
    /// Bumped when another server changed the worker tuning.
    config: Arc<watch::Sender<u64>>,
    /// Executions other servers changed (their rows as read after).
    elsewhere: broadcast::Sender<executions::Model>,
}

impl Default for Cluster {
    fn default() -> Self {
        Self {
            server_id: Uuid::new_v4(),
            reachable: Arc::new(watch::Sender::new(true)),
            config: Arc::new(watch::Sender::new(0)),
            elsewhere: broadcast::Sender::new(1024),
        }
    }
}

impl Cluster {
    /// Whether the database answers, as it changes.
    pub fn reachable(&self) -> watch::Receiver<bool> {
        self.reachable.subscribe()
    }

    /// Wakes when another server changed the worker tuning.
    pub fn config_changes(&self) -> watch::Receiver<u64> {
        self.config.subscribe()
    }

    /// Executions other servers changed, as rows read after the change.
    pub fn changed_elsewhere(&self) -> broadcast::Receiver<executions::Model> {
        self.elsewhere.subscribe()
    }
}

/// Queues the `NOTIFY`s telling `changes` in `conn`'s transaction.
pub(super) async fn notify<C: ConnectionTrait>(
    conn: &C,
    sender: Uuid,
    changes: &Changes,
) -> StoreResult<()> {
    for payload in changes.payloads(sender) {
        conn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [CHANNEL.into(), payload.into()],
        ))
        .await?;
    }
    Ok(())
}

impl Store {
    /// Listens for what other servers commit, for as long as the runtime
    /// runs (PostgreSQL only).
    pub(super) fn spawn_listener(&self) {
        if !self.is_postgres() {
            return;
        }
        tokio::spawn(self.clone().listen());
    }

    async fn listen(self) {
        let reachable = self.cluster().reachable.clone();
        loop {
            let mut listener = match connect(self.db()).await {
                Ok(listener) => listener,
                Err(err) => {
                    if reachable.send_replace(false) {
                        tracing::error!(error = %err, "the database is unreachable");
                    }
                    tokio::time::sleep(RELISTEN_BACKOFF).await;
                    continue;
                }
            };
            // Listening again after a loss: whatever was said meanwhile
            // was not heard, so read everything watched again.
            if !*reachable.borrow() {
                tracing::info!("the database is reachable again");
            }
            if let Err(err) = self.resync().await {
                tracing::warn!(error = %err, "reading the state after listening again");
            }
            reachable.send_replace(true);
            loop {
                match listener.try_recv().await {
                    Ok(Some(notification)) => self.heard(notification.payload()).await,
                    // Reconnected (eagerly): notifications may have been missed.
                    Ok(None) => {
                        if let Err(err) = self.resync().await {
                            tracing::warn!(error = %err, "reading the state after a reconnect");
                        }
                    }
                    Err(err) => {
                        reachable.send_replace(false);
                        tracing::error!(error = %err, "lost the database connection; listening again");
                        break;
                    }
                }
            }
            tokio::time::sleep(RELISTEN_BACKOFF).await;
        }
    }

    /// Feeds another server's changes into this server's hubs.
    async fn heard(&self, payload: &str) {
        let Some((sender, changes)) = Changes::parse(payload) else {
            tracing::warn!(payload, "an unreadable notification");
            return;
        };
        if sender == self.cluster().server_id {
            return;
        }
        for (id, bytes, lines) in &changes.logs {
            self.log_sizes().grown_elsewhere(*id, *bytes, *lines);
        }
        if !changes.executions.is_empty() {
            // Watchers and the relay need the rows (`changed` tells the
            // followers too); followers alone need only the status.
            let rows = if self.execution_hub().watched()
                || self.cluster().elsewhere.receiver_count() > 0
            {
                let ids = changes.executions.iter().map(|(id, _)| *id).collect();
                match self.executions_by_id(ids).await {
                    Ok(rows) => Some(rows),
                    Err(err) => {
                        tracing::warn!(error = %err, "reading executions another server changed");
                        None
                    }
                }
            } else {
                None
            };
            match rows {
                Some(rows) => {
                    for row in rows {
                        let _ = self.cluster().elsewhere.send(row.clone());
                        self.execution_hub().changed(row);
                    }
                }
                None => {
                    for (id, status) in &changes.executions {
                        self.execution_hub().tell_followers(*id, *status);
                    }
                }
            }
        }
        if changes.config {
            self.cluster().config.send_modify(|n| *n += 1);
        }
        if let Some(id) = changes.newest_event {
            self.event_hub().committed(id);
        }
    }

    /// Reads again what the hubs watch, after notifications may have been
    /// lost: the newest event (wakes event watchers and the dispatcher),
    /// the followed executions' statuses, the followed logs' sizes, the
    /// worker tuning, and whether runs started (wakes the reaper).
    async fn resync(&self) -> StoreResult<()> {
        let newest = self.events().newest_id().await?;
        for id in self.log_sizes().followed() {
            if let Some((bytes, lines)) = self.log_chunks().size(id).await? {
                self.log_sizes().grown_elsewhere(id, bytes, lines);
            }
        }
        let followed = self.execution_hub().followed();
        if !followed.is_empty() {
            for row in self.executions_by_id(followed).await? {
                self.execution_hub().tell_followers(row.id, row.status);
            }
        }
        self.cluster().config.send_modify(|n| *n += 1);
        self.execution_hub().runs_may_have_started();
        self.event_hub().committed(newest);
        Ok(())
    }
}

impl Store {
    async fn executions_by_id(&self, ids: Vec<Uuid>) -> StoreResult<Vec<executions::Model>> {
        Ok(executions::Entity::find()
            .filter(sea_orm::ColumnTrait::is_in(&executions::Column::Id, ids))
            .all(self.db())
            .await?)
    }
}

async fn connect(db: &DatabaseConnection) -> Result<PgListener, sea_orm::sqlx::Error> {
    let mut listener = PgListener::connect_with(db.get_postgres_connection_pool()).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_stay_under_the_limit() {
        let sender = Uuid::new_v4();
        let changes = Changes {
            newest_event: Some(42),
            executions: (0..300)
                .map(|i| (Uuid::from_u128(i), STATUSES[i as usize % STATUSES.len()]))
                .collect(),
            logs: vec![(Uuid::from_u128(7), 1 << 40, 12)],
            config: true,
        };
        let payloads = changes.payloads(sender);
        assert!(payloads.len() > 1, "300 executions need several payloads");
        let mut heard = Changes::default();
        for payload in &payloads {
            assert!(payload.len() <= PAYLOAD_BYTES);
            let (from, part) = Changes::parse(payload).expect("parses");
            assert_eq!(from, sender);
            heard.newest_event = heard.newest_event.or(part.newest_event);
            heard.executions.extend(part.executions);
            heard.logs.extend(part.logs);
            heard.config |= part.config;
        }
        assert_eq!(heard, changes);
        assert!(Changes::parse("not a uuid e1").is_none());
        assert!(Changes::parse(&format!("{sender} q1")).is_none());
    }
}
