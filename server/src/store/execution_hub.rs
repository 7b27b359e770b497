//! Live news of executions, published after the transaction that changed
//! them commits: a broadcast for `WatchExecutions` and the dispatcher, and
//! per-execution status channels for log followers, created only for
//! executions someone is following so ten thousand idle tails cost nothing
//! per unrelated change.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use crate::entity::{enums::ExecutionStatus, executions};

/// Changes buffered for slow `WatchExecutions` subscribers before they lag.
const BROADCAST_CAPACITY: usize = 4096;

/// Publishes execution changes.
#[derive(Clone)]
pub struct ExecutionHub {
    changes: broadcast::Sender<executions::Model>,
    /// Moves when a run is in a worker's hands (running or cancelling),
    /// here or on another server: what wakes a reaper with nothing to watch.
    started: watch::Sender<u64>,
    followed: Arc<Mutex<HashMap<Uuid, watch::Sender<ExecutionStatus>>>>,
}

impl Default for ExecutionHub {
    fn default() -> Self {
        Self {
            changes: broadcast::Sender::new(BROADCAST_CAPACITY),
            started: watch::Sender::new(0),
            followed: Arc::default(),
        }
    }
}

impl ExecutionHub {
    /// Publishes a committed change.
    pub fn changed(&self, execution: executions::Model) {
        self.tell_followers(execution.id, execution.status);
        let _ = self.changes.send(execution);
    }

    /// Tells an execution's followers its new status (all a change from
    /// another server carries when nobody watches every row, see `cluster`).
    pub fn tell_followers(&self, id: Uuid, status: ExecutionStatus) {
        if matches!(
            status,
            ExecutionStatus::Running | ExecutionStatus::Cancelling
        ) {
            self.runs_may_have_started();
        }
        let mut followed = self.followed.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(sender) = followed.get(&id) {
            sender.send_replace(status);
            if sender.receiver_count() == 0 {
                followed.remove(&id);
            }
        }
    }

    /// News that runs may have started (notifications were lost, say).
    pub fn runs_may_have_started(&self) {
        self.started.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Moves when a run may have started.
    pub fn runs_started(&self) -> watch::Receiver<u64> {
        self.started.subscribe()
    }

    /// Whether anyone watches every change (`WatchExecutions`).
    pub fn watched(&self) -> bool {
        self.changes.receiver_count() > 0
    }

    /// The executions someone follows here.
    pub fn followed(&self) -> Vec<Uuid> {
        self.followed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect()
    }

    /// Every change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<executions::Model> {
        self.changes.subscribe()
    }

    /// The status of one execution, updated as it changes. `current` seeds
    /// the channel when nobody follows the execution yet; read the database
    /// after subscribing, so a change committed in between is not missed.
    pub fn follow(&self, id: Uuid, current: ExecutionStatus) -> watch::Receiver<ExecutionStatus> {
        let mut followed = self.followed.lock().unwrap_or_else(|p| p.into_inner());
        followed
            .entry(id)
            .or_insert_with(|| watch::Sender::new(current))
            .subscribe()
    }
}
