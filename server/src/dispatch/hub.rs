//! Connected workers: their outgoing stream, slot credits, agents and runs.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, Mutex},
};

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, mpsc};
use uuid::Uuid;

use super::messages::{Outgoing, ToWorker};

/// Messages queued to one worker's stream.
pub type WorkerSender = mpsc::Sender<Outgoing>;

/// What the server knows of a connected worker.
#[derive(Debug, Clone)]
pub struct WorkerInfo {
    /// Stable id.
    pub worker_id: String,
    /// Host name.
    pub hostname: String,
    /// Software version.
    pub version: String,
    /// Registered slots.
    pub slots: i32,
    /// Agents it runs (empty: any).
    pub agent_slugs: Vec<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Whether it takes no new work.
    pub draining: bool,
    /// Executions it runs.
    pub running: HashSet<Uuid>,
    /// When it was last heard from.
    pub last_seen_at: DateTime<Utc>,
}

struct Connection {
    session: u64,
    info: WorkerInfo,
    credits: usize,
    sender: WorkerSender,
}

/// A worker with free slots, as the dispatcher sees it.
#[derive(Debug, Clone)]
pub struct Hungry {
    /// Worker id.
    pub worker_id: String,
    /// Its session (a reconnect starts a new one).
    pub session: u64,
    /// Free slots granted.
    pub credits: usize,
    /// Agents it runs.
    pub agent_slugs: Vec<String>,
}

/// The registry of connected workers.
#[derive(Clone, Default)]
pub struct WorkerHub {
    inner: Arc<Mutex<HubState>>,
    wake: Arc<Notify>,
}

#[derive(Default)]
struct HubState {
    next_session: u64,
    workers: HashMap<String, Connection>,
}

impl WorkerHub {
    fn state(&self) -> std::sync::MutexGuard<'_, HubState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes the dispatcher.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Waits until something may have become dispatchable.
    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    /// Adds (or replaces, on reconnect) a worker; returns its session number.
    pub fn connect(&self, info: WorkerInfo, sender: WorkerSender) -> u64 {
        let mut state = self.state();
        state.next_session += 1;
        let session = state.next_session;
        state.workers.insert(
            info.worker_id.clone(),
            Connection {
                session,
                info,
                credits: 0,
                sender,
            },
        );
        session
    }

    /// Removes a worker's session if it is still the current one.
    pub fn disconnect(&self, worker_id: &str, session: u64) {
        let mut state = self.state();
        if state
            .workers
            .get(worker_id)
            .is_some_and(|c| c.session == session)
        {
            state.workers.remove(worker_id);
        }
    }

    fn with_session<T>(
        &self,
        worker_id: &str,
        session: u64,
        f: impl FnOnce(&mut Connection) -> T,
    ) -> Option<T> {
        let mut state = self.state();
        state
            .workers
            .get_mut(worker_id)
            .filter(|c| c.session == session)
            .map(f)
    }

    /// Adds slot credits and wakes the dispatcher.
    pub fn grant(&self, worker_id: &str, session: u64, count: usize) {
        self.with_session(worker_id, session, |c| {
            c.credits = c
                .credits
                .saturating_add(count)
                .min(c.info.slots.max(0) as usize * 4 + 64);
            c.info.last_seen_at = Utc::now();
        });
        self.wake();
    }

    /// Marks a worker as draining: no new work.
    pub fn drain(&self, worker_id: &str, session: u64) {
        self.with_session(worker_id, session, |c| c.info.draining = true);
    }

    /// Notes that the worker was heard from. What it runs is the server's
    /// own record (assignments minus ends), not the worker's claim, so a
    /// reaped run the worker still reports does not count as its own again.
    pub fn seen(&self, worker_id: &str, session: u64) {
        self.with_session(worker_id, session, |c| c.info.last_seen_at = Utc::now());
    }

    /// Whether the server has `execution_id` on record as running on this
    /// worker session.
    pub fn runs(&self, worker_id: &str, session: u64, execution_id: Uuid) -> bool {
        self.with_session(worker_id, session, |c| {
            c.info.running.contains(&execution_id)
        })
        .unwrap_or(false)
    }

    /// Notes that a run left the worker.
    pub fn run_ended(&self, worker_id: &str, execution_id: Uuid) {
        if let Some(c) = self.state().workers.get_mut(worker_id) {
            c.info.running.remove(&execution_id);
        }
    }

    /// Workers with credits that take work.
    pub fn hungry(&self) -> Vec<Hungry> {
        let state = self.state();
        let mut hungry: Vec<Hungry> = state
            .workers
            .values()
            .filter(|c| c.credits > 0 && !c.info.draining)
            .map(|c| Hungry {
                worker_id: c.info.worker_id.clone(),
                session: c.session,
                credits: c.credits,
                agent_slugs: c.info.agent_slugs.clone(),
            })
            .collect();
        // Most free slots first spreads work across workers.
        hungry.sort_by(|a, b| {
            b.credits
                .cmp(&a.credits)
                .then(a.worker_id.cmp(&b.worker_id))
        });
        hungry
    }

    /// Hands a claimed run to a worker: uses one credit and queues the
    /// message. False when the worker's session is gone (or its queue full).
    pub fn assign(
        &self,
        worker_id: &str,
        session: u64,
        execution_id: Uuid,
        message: ToWorker,
    ) -> bool {
        let sender = self.with_session(worker_id, session, |c| {
            c.credits = c.credits.saturating_sub(1);
            c.info.running.insert(execution_id);
            c.sender.clone()
        });
        sender.is_some_and(|sender| sender.try_send(Ok(message)).is_ok())
    }

    /// Sends a message to a worker's current session, if connected.
    pub fn send(&self, worker_id: &str, message: ToWorker) -> bool {
        let sender = self
            .state()
            .workers
            .get(worker_id)
            .map(|c| c.sender.clone());
        sender.is_some_and(|s| s.try_send(Ok(message)).is_ok())
    }

    /// Asks a worker to stop a run.
    pub fn cancel(
        &self,
        worker_id: &str,
        execution_id: Uuid,
        attempt_token: String,
        reason: &str,
    ) -> bool {
        self.send(
            worker_id,
            ToWorker::Cancel {
                execution_id,
                attempt_token,
                reason: reason.to_owned(),
            },
        )
    }

    /// Sends a message to every connected worker.
    pub fn broadcast(&self, message: ToWorker) {
        let senders: Vec<WorkerSender> = self
            .state()
            .workers
            .values()
            .map(|c| c.sender.clone())
            .collect();
        for sender in senders {
            let _ = sender.try_send(Ok(message.clone()));
        }
    }

    /// The connected workers.
    pub fn workers(&self) -> Vec<WorkerInfo> {
        self.state()
            .workers
            .values()
            .map(|c| c.info.clone())
            .collect()
    }
}
