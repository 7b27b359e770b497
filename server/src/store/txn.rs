//! Write transactions that carry their audit events.

use sea_orm::{DatabaseConnection, DatabaseTransaction};
use serde_json::Value;
use uuid::Uuid;

use super::{
    StoreResult,
    events::{self, Actor, EventHub, Tombstone},
    execution_hub::ExecutionHub,
    execution_state::AttemptKey,
};
use crate::{
    db,
    entity::{executions, task_events},
};

/// The store: the database plus the hubs that wake live watchers.
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    events: EventHub,
    executions: ExecutionHub,
    attempts: AttemptKey,
}

impl Store {
    /// A store over `db` (migrated), with the attempt key kept in it
    /// (created on first use, shared by every server over the database).
    pub async fn open(db: DatabaseConnection) -> StoreResult<Self> {
        let attempts = super::worker_config::attempt_key(&db).await?;
        Ok(Self {
            db,
            events: EventHub::default(),
            executions: ExecutionHub::default(),
            attempts,
        })
    }

    /// The key attempt tokens are signed with.
    pub(super) fn attempts(&self) -> &AttemptKey {
        &self.attempts
    }

    /// The connection, for reads; private to the store, whose methods are
    /// the only way to the database.
    pub(super) fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The hub live event watchers subscribe to.
    pub fn event_hub(&self) -> &EventHub {
        &self.events
    }

    /// The hub execution watchers (and the dispatcher) subscribe to.
    pub fn execution_hub(&self) -> &ExecutionHub {
        &self.executions
    }

    /// Begins a write transaction (`BEGIN IMMEDIATE` on SQLite).
    pub async fn write(&self) -> StoreResult<WriteTxn> {
        Ok(WriteTxn {
            txn: db::begin_write(&self.db).await?,
            newest_event: None,
            tombstones: Vec::new(),
            changed_executions: Vec::new(),
            hub: self.events.clone(),
            execution_hub: self.executions.clone(),
        })
    }
}

/// A write transaction. Record audit events with [`WriteTxn::record_event`];
/// [`WriteTxn::commit`] makes them visible to watchers. Dropping it rolls back.
pub struct WriteTxn {
    txn: DatabaseTransaction,
    newest_event: Option<i64>,
    tombstones: Vec<Tombstone>,
    changed_executions: Vec<executions::Model>,
    hub: EventHub,
    execution_hub: ExecutionHub,
}

impl std::ops::Deref for WriteTxn {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

impl WriteTxn {
    /// Appends an event to the task's audit trail in this transaction.
    pub async fn record_event(
        &mut self,
        task_id: Uuid,
        actor: Actor,
        event_type: &str,
        payload: Value,
    ) -> StoreResult<task_events::Model> {
        let first = self.newest_event.is_none();
        let event = events::insert(&self.txn, first, task_id, actor, event_type, payload).await?;
        self.newest_event = Some(event.id);
        Ok(event)
    }

    /// Marks an event recorded here whose row this transaction deletes with
    /// its task, so live watchers still receive it after the commit.
    pub fn keep_as_tombstone(&mut self, workspace_id: Uuid, event: task_events::Model) {
        self.tombstones.push(Tombstone {
            workspace_id,
            event,
        });
    }

    /// Announces, once committed, that an execution changed status.
    pub fn execution_changed(&mut self, execution: executions::Model) {
        self.changed_executions.push(execution);
    }

    /// Commits, then wakes watchers of the events and executions changed.
    pub async fn commit(self) -> StoreResult<()> {
        self.txn.commit().await?;
        self.hub.bury(self.tombstones);
        for execution in self.changed_executions {
            self.execution_hub.changed(execution);
        }
        if let Some(id) = self.newest_event {
            self.hub.committed(id);
        }
        Ok(())
    }
}
