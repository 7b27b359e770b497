//! Write transactions that carry their audit events.

use std::{collections::HashMap, sync::Arc};

use sea_orm::{DatabaseConnection, DatabaseTransaction, DbBackend, TransactionTrait};
use serde_json::Value;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};
use uuid::Uuid;

use super::{
    StoreResult,
    batch::Writer,
    cluster::{self, Changes, Cluster},
    events::{self, Actor, EventHub, Tombstone},
    execution_hub::ExecutionHub,
    execution_state::AttemptKey,
    log_chunks::LogSizeHub,
};
use crate::{
    db,
    entity::{enums::TaskStatus, executions, task_events},
};

/// The store: the database plus the hubs that wake live watchers.
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    events: EventHub,
    executions: ExecutionHub,
    attempts: AttemptKey,
    /// SQLite's single write lock, taken in process: writers queue here in
    /// FIFO order and are woken the moment it is free, instead of sleeping
    /// in SQLite's busy handler (1, 2, 5, 10… up to 100 ms between tries),
    /// which made a write that met another wait milliseconds for nothing.
    /// `None` on PostgreSQL, whose writers lock rows, not the database.
    sqlite_writer: Option<Arc<AsyncMutex<()>>>,
    /// The group-commit path of the hot writes (see [`super::batch`]).
    pub(super) writer: Writer,
    /// The other servers over the database (see [`super::cluster`]).
    cluster: Cluster,
    /// News of followed logs' sizes.
    log_sizes: LogSizeHub,
}

impl Store {
    /// A store over `db` (migrated), with the attempt key kept in it
    /// (created on first use, shared by every server over the database).
    pub async fn open(db: DatabaseConnection) -> StoreResult<Self> {
        let attempts = super::worker_config::attempt_key(&db).await?;
        let sqlite_writer =
            (db.get_database_backend() == DbBackend::Sqlite).then(|| Arc::new(AsyncMutex::new(())));
        let (writer, jobs) = Writer::new();
        let store = Self {
            db,
            events: EventHub::default(),
            executions: ExecutionHub::default(),
            attempts,
            sqlite_writer,
            writer,
            cluster: Cluster::default(),
            log_sizes: LogSizeHub::default(),
        };
        super::batch::spawn(store.clone(), jobs);
        store.spawn_listener();
        Ok(store)
    }

    /// This server among the servers of its database.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// News of followed logs' sizes.
    pub fn log_sizes(&self) -> &LogSizeHub {
        &self.log_sizes
    }

    /// The attempt token `execution` runs with now, if it runs.
    pub fn attempt_token(&self, execution: &executions::Model) -> Option<String> {
        self.attempts.token(execution)
    }

    /// Whether the database is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.sqlite_writer.is_none()
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

    /// Begins a write transaction (`BEGIN IMMEDIATE` on SQLite, after its
    /// turn at the in-process write lock).
    pub async fn write(&self) -> StoreResult<WriteTxn> {
        let turn = match &self.sqlite_writer {
            Some(lock) => Some(lock.clone().lock_owned().await),
            None => None,
        };
        let txn = db::begin_write(&self.db).await?;
        // Every writer takes the event-order lock first (PostgreSQL): taken
        // at the first event instead, after row locks, a batch holding it
        // and wanting a row could deadlock with a request holding that row and
        // wanting the lock.
        events::lock_event_order(&txn).await?;
        Ok(WriteTxn {
            txn,
            order_locked: true,
            newest_event: None,
            tombstones: Vec::new(),
            changed_executions: Vec::new(),
            config_changed: false,
            task_status: HashMap::new(),
            hub: self.events.clone(),
            execution_hub: self.executions.clone(),
            notify_as: self.is_postgres().then_some(self.cluster.server_id),
            _turn: turn,
        })
    }
}

/// A write transaction. Record audit events with [`WriteTxn::record_event`];
/// [`WriteTxn::commit`] makes them visible to watchers. Dropping it rolls back.
pub struct WriteTxn {
    txn: DatabaseTransaction,
    /// Whether this transaction holds the event-order lock.
    order_locked: bool,
    /// The newest event recorded here, announced after the commit.
    newest_event: Option<i64>,
    tombstones: Vec<Tombstone>,
    changed_executions: Vec<executions::Model>,
    /// The worker tuning changed.
    config_changed: bool,
    /// Statuses of tasks this transaction read or set, so a batch of runs
    /// of one task reads it once, not once per transition.
    task_status: HashMap<Uuid, TaskStatus>,
    hub: EventHub,
    execution_hub: ExecutionHub,
    /// On PostgreSQL, this server's id: what the transaction changed is
    /// told to the other servers at its commit.
    notify_as: Option<uuid::Uuid>,
    /// This writer's turn at SQLite's write lock, held until commit or drop.
    _turn: Option<OwnedMutexGuard<()>>,
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
        let lock = !self.order_locked;
        let event = events::insert(&self.txn, lock, task_id, actor, event_type, payload).await?;
        self.order_locked = true;
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

    /// A task's status as this transaction last read or set it.
    pub(super) fn known_task_status(&self, task_id: Uuid) -> Option<TaskStatus> {
        self.task_status.get(&task_id).copied()
    }

    /// Notes a task's status as read or set in this transaction.
    pub(super) fn note_task_status(&mut self, task_id: Uuid, status: TaskStatus) {
        self.task_status.insert(task_id, status);
    }

    /// Announces, once committed, that the worker tuning changed.
    pub fn config_changed(&mut self) {
        self.config_changed = true;
    }

    /// Announces, once committed, that an execution changed status.
    pub fn execution_changed(&mut self, execution: executions::Model) {
        self.changed_executions.push(execution);
    }

    /// A savepoint inside this transaction, for one piece of a batch: its
    /// writes and the wake-ups it asks for join this transaction with
    /// [`WriteTxn::release_into`], or vanish when it is dropped (rolled back
    /// to the savepoint) without touching the rest of the batch.
    pub(super) async fn savepoint(&self) -> StoreResult<WriteTxn> {
        Ok(WriteTxn {
            txn: self.txn.begin().await?,
            order_locked: self.order_locked,
            newest_event: self.newest_event,
            tombstones: Vec::new(),
            changed_executions: Vec::new(),
            config_changed: false,
            task_status: self.task_status.clone(),
            hub: self.hub.clone(),
            execution_hub: self.execution_hub.clone(),
            notify_as: self.notify_as,
            _turn: None,
        })
    }

    /// Releases a savepoint taken with [`WriteTxn::savepoint`], handing its
    /// wake-ups to the enclosing transaction (they fire when that commits).
    pub(super) async fn release_into(self, outer: &mut WriteTxn) -> StoreResult<()> {
        self.txn.commit().await?;
        if self.newest_event.is_some() {
            outer.newest_event = self.newest_event;
        }
        outer.tombstones.extend(self.tombstones);
        outer.changed_executions.extend(self.changed_executions);
        outer.config_changed |= self.config_changed;
        outer.task_status.extend(self.task_status);
        Ok(())
    }

    /// Rolls a savepoint back explicitly (dropping it does too, but
    /// without reporting a failure to do so).
    pub(super) async fn roll_back(self) -> StoreResult<()> {
        self.txn.rollback().await?;
        Ok(())
    }

    /// Commits, then wakes watchers of the events and executions changed;
    /// on PostgreSQL the other servers are told in the transaction itself
    /// (a `NOTIFY` is delivered at the commit, never for a rollback).
    pub async fn commit(self) -> StoreResult<()> {
        if let Some(server_id) = self.notify_as {
            let changes = Changes {
                newest_event: self.newest_event,
                executions: self
                    .changed_executions
                    .iter()
                    .map(|e| (e.id, e.status))
                    .collect(),
                logs: Vec::new(),
                config: self.config_changed,
            };
            if !changes.is_empty() {
                cluster::notify(&self.txn, server_id, &changes).await?;
            }
        }
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
