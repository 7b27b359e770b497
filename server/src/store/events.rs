//! The audit trail: recording `task_events` inside the transaction that makes
//! the change, and waking live watchers once it commits.
//!
//! Watchers must see every event exactly once, in id order. Ids are handed
//! out at insert time but become visible at commit, so two concurrent
//! transactions could commit ids 11 then 10, and a watcher that already
//! read 11 would skip 10 forever. To rule that out, a transaction takes one
//! transaction-scoped lock before its first event insert (PostgreSQL:
//! `pg_advisory_xact_lock`; SQLite has a single writer anyway), so events
//! commit in id order. A watcher then only needs "everything after the last
//! id I sent", re-read whenever [`EventHub`] says the newest id moved.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction,
    DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
};
use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
};

use serde_json::{Value, json};
use tokio::sync::watch;
use uuid::Uuid;

use super::{Events, StoreResult, scope::InWorkspace};
use crate::entity::{enums::ActorType, task_events};

/// Key of the advisory lock that orders event commits on PostgreSQL
/// (ASCII "amonevt").
const EVENT_ORDER_LOCK_KEY: i64 = 0x0061_6d6f_6e65_7674;

/// Who caused a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    /// User, agent or system.
    pub kind: ActorType,
    /// The actor's id, when known: the user's, or the agent's.
    pub id: Option<Uuid>,
    /// The run an agent acted from (its MCP token's execution). Recorded in
    /// every event payload as [`ACTOR_EXECUTION_KEY`], since `task_events`
    /// has one actor id column and an agent has many runs.
    pub execution_id: Option<Uuid>,
}

/// Payload key naming the run an agent acted from.
pub const ACTOR_EXECUTION_KEY: &str = "actor_execution_id";

impl Actor {
    /// An API caller (until auth identifies callers, the default owner).
    pub fn user() -> Self {
        Self {
            kind: ActorType::User,
            id: Some(super::DEFAULT_OWNER_ID),
            execution_id: None,
        }
    }

    /// Agent Monitor itself (dispatcher, reaper).
    pub fn system() -> Self {
        Self {
            kind: ActorType::System,
            id: None,
            execution_id: None,
        }
    }

    /// An agent acting from one of its runs (through the MCP server).
    pub fn agent_run(agent_id: Uuid, execution_id: Uuid) -> Self {
        Self {
            kind: ActorType::Agent,
            id: Some(agent_id),
            execution_id: Some(execution_id),
        }
    }
}

/// Deleted tasks' last events kept for live watchers (their rows are gone
/// with the task); old ones fall off.
const TOMBSTONES_KEPT: usize = 1024;

/// An event whose row was deleted with its task, kept for live watchers.
#[derive(Debug, Clone)]
pub struct Tombstone {
    /// Workspace of the deleted task.
    pub workspace_id: Uuid,
    /// The event as it was recorded.
    pub event: task_events::Model,
}

/// Tells live watchers the id of the newest committed event, and keeps the
/// events that died with their task.
#[derive(Clone)]
pub struct EventHub {
    newest: watch::Sender<i64>,
    tombstones: Arc<Mutex<VecDeque<Tombstone>>>,
}

impl Default for EventHub {
    fn default() -> Self {
        Self {
            newest: watch::Sender::new(0),
            tombstones: Arc::default(),
        }
    }
}

impl EventHub {
    /// Records that events up to `id` are committed.
    pub fn committed(&self, id: i64) {
        self.newest.send_if_modified(|newest| {
            let moved = id > *newest;
            if moved {
                *newest = id;
            }
            moved
        });
    }

    /// Keeps events whose rows were deleted in a committed transaction.
    pub fn bury(&self, tombstones: Vec<Tombstone>) {
        let mut kept = self.tombstones.lock().unwrap_or_else(|p| p.into_inner());
        for tombstone in tombstones {
            if kept.len() == TOMBSTONES_KEPT {
                kept.pop_front();
            }
            kept.push_back(tombstone);
        }
    }

    /// Kept tombstones with an id above `after` in `workspace_id`.
    pub fn tombstones_after(&self, workspace_id: Uuid, after: i64) -> Vec<task_events::Model> {
        let kept = self.tombstones.lock().unwrap_or_else(|p| p.into_inner());
        kept.iter()
            .filter(|t| t.workspace_id == workspace_id && t.event.id > after)
            .map(|t| t.event.clone())
            .collect()
    }

    /// A receiver that wakes whenever newer events are committed.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.newest.subscribe()
    }
}

/// Takes the event-order lock for the rest of `conn`'s transaction
/// (PostgreSQL; SQLite has one writer anyway). Writes that read before they
/// decide (a card's position among its neighbours) take it first, so two of
/// them never decide on the same reading: they all record an event anyway,
/// so they serialise on this one lock and no new lock can deadlock with it.
pub(super) async fn lock_event_order<C: ConnectionTrait>(conn: &C) -> StoreResult<()> {
    if conn.get_database_backend() == DbBackend::Postgres {
        conn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1)",
            [EVENT_ORDER_LOCK_KEY.into()],
        ))
        .await?;
    }
    Ok(())
}

/// Inserts an event row in `txn`, first taking the event-order lock on PostgreSQL.
///
/// Callers go through `WriteTxn::record_event`, which takes the lock once per
/// transaction and reports the id to the hub after commit.
pub(super) async fn insert(
    txn: &DatabaseTransaction,
    take_order_lock: bool,
    task_id: Uuid,
    actor: Actor,
    event_type: &str,
    mut payload: Value,
) -> StoreResult<task_events::Model> {
    if take_order_lock {
        lock_event_order(txn).await?;
    }
    if let (Some(execution_id), Value::Object(fields)) = (actor.execution_id, &mut payload) {
        fields.insert(ACTOR_EXECUTION_KEY.to_owned(), json!(execution_id));
    }
    let event = task_events::ActiveModel {
        task_id: Set(task_id),
        actor_type: Set(actor.kind),
        actor_id: Set(actor.id),
        event_type: Set(event_type.to_owned()),
        payload: Set(payload),
        created_at: Set(chrono::Utc::now().into()),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    Ok(event)
}

/// Which events a list or watch covers.
#[derive(Debug, Clone, Copy, Default)]
pub struct EventFilter {
    /// One task's events; `None` for the whole workspace.
    pub task_id: Option<Uuid>,
}

/// Event type of a note on a task's trail.
pub const COMMENT_EVENT: &str = "comment";

/// Longest comment accepted, in bytes: a note, not a log (logs belong to
/// executions).
pub const COMMENT_MAX_BYTES: usize = 16 * 1024;

impl Events<'_> {
    /// Adds a note to a task's audit trail (a `comment` event, `{"text"}`),
    /// which live watchers receive like any other event.
    pub async fn comment(
        &self,
        task_id: Uuid,
        text: &str,
        actor: Actor,
    ) -> StoreResult<task_events::Model> {
        if text.trim().is_empty() {
            return Err(super::StoreError::invalid("text", "is required"));
        }
        if text.len() > COMMENT_MAX_BYTES {
            return Err(super::StoreError::invalid(
                "text",
                format!("is longer than {COMMENT_MAX_BYTES} bytes"),
            ));
        }
        super::validate::check_no_nul("text", text)?;
        let mut txn = self.0.write().await?;
        super::tasks::find_referenced_task(&*txn, task_id, "task_id").await?;
        let event = txn
            .record_event(task_id, actor, COMMENT_EVENT, json!({ "text": text }))
            .await?;
        txn.commit().await?;
        Ok(event)
    }

    /// The filter of a list or watch of `task_id`'s events (the whole
    /// workspace's when `None`); a named task must exist.
    pub async fn filter(&self, task_id: Option<Uuid>) -> StoreResult<EventFilter> {
        if let Some(id) = task_id {
            super::tasks::find_task(self.0.db(), id).await?;
        }
        Ok(EventFilter { task_id })
    }

    /// One page of events with an id above `after_id`, oldest first, and
    /// the token of the next page (empty on the last).
    pub async fn list(
        &self,
        filter: EventFilter,
        after_id: i64,
        limit: u64,
    ) -> StoreResult<(Vec<task_events::Model>, String)> {
        let mut rows = self.after(filter, after_id, limit + 1).await?;
        let next_page_token = if rows.len() as u64 > limit {
            rows.truncate(limit as usize);
            rows.last()
                .map(|e| super::page::after_id_token(e.id))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok((rows, next_page_token))
    }

    /// Events with an id above `after_id`, oldest first, at most `limit`.
    async fn after(
        &self,
        filter: EventFilter,
        after_id: i64,
        limit: u64,
    ) -> StoreResult<Vec<task_events::Model>> {
        let mut query = task_events::Entity::find()
            .in_workspace()
            .filter(task_events::Column::Id.gt(after_id));
        if let Some(task_id) = filter.task_id {
            query = query.filter(task_events::Column::TaskId.eq(task_id));
        }
        Ok(query
            .order_by_asc(task_events::Column::Id)
            .limit(limit)
            .all(self.0.db())
            .await?)
    }

    /// The id of the newest committed event (0 when there is none).
    pub async fn newest_id(&self) -> StoreResult<i64> {
        let newest: Option<Option<i64>> = task_events::Entity::find()
            .select_only()
            .column_as(task_events::Column::Id.max(), "newest")
            .into_tuple()
            .one(self.0.db())
            .await?;
        Ok(newest.flatten().unwrap_or(0))
    }

    /// The next events a watcher should send after `after_id`: committed rows
    /// and the tombstones of deleted tasks, merged in id order.
    pub async fn next_for_watcher(
        &self,
        filter: EventFilter,
        after_id: i64,
        limit: u64,
    ) -> StoreResult<Vec<task_events::Model>> {
        let mut events = self.after(filter, after_id, limit).await?;
        // A full page may stop short of some tombstones; they come with the next page.
        let ceiling = if events.len() as u64 == limit {
            events.last().map_or(i64::MAX, |e| e.id)
        } else {
            i64::MAX
        };
        events.extend(
            self.0
                .event_hub()
                .tombstones_after(super::DEFAULT_WORKSPACE_ID, after_id)
                .into_iter()
                .filter(|e| e.id <= ceiling && filter.task_id.is_none_or(|t| t == e.task_id)),
        );
        events.sort_by_key(|e| e.id);
        events.dedup_by_key(|e| e.id);
        Ok(events)
    }
}
