//! Connected workers: their outgoing stream, slot credits, agents and runs.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
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
    /// Random id of the worker process (empty from workers that predate it).
    pub instance_id: String,
}

struct Connection {
    session: u64,
    info: WorkerInfo,
    credits: usize,
    sender: WorkerSender,
    /// Where each run's log must end: its attempt's first byte plus its
    /// output cap (and room for the worker's truncation marker).
    output_limits: HashMap<Uuid, u64>,
    /// The attempt each run holds on this session (assigned, or kept at
    /// registration): a report quoting it needs no database check. A reap,
    /// a finish or a refusal takes it off with [`WorkerHub::run_ended`].
    assigned_tokens: HashMap<Uuid, String>,
    /// Told when a newer stream of the same worker takes this one's place.
    superseded: Arc<Notify>,
}

/// Why a registration was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdInUse {
    /// The host the connected worker registered from.
    pub hostname: String,
}

/// A stream's place in the registry.
#[derive(Debug, Clone)]
pub struct Admitted {
    /// Its session number (a reconnect starts a new one).
    pub session: u64,
    /// Completes when a newer stream of the same worker takes its place.
    pub superseded: Arc<Notify>,
}

impl Connection {
    /// Whether this stream keeps its worker id from a registration by
    /// `instance_id`: it does unless the newcomer is the same process (a
    /// reconnect) or this stream went silent.
    fn holds_against(&self, instance_id: &str, alive_within: Duration) -> bool {
        let same_process = !instance_id.is_empty() && instance_id == self.info.instance_id;
        let silent_for = (Utc::now() - self.info.last_seen_at)
            .to_std()
            .unwrap_or_default();
        !same_process && silent_for <= alive_within
    }
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

/// Connected workers and their slots, summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlotTotals {
    /// Workers connected.
    pub workers: usize,
    /// Slots they registered.
    pub slots: usize,
    /// Free slots granted by those taking work.
    pub free: usize,
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

    /// Whether a worker may register as `worker_id`: refused while another
    /// process holds that id and was heard from within `alive_within`; the
    /// same process (a reconnect) or a silent holder gives way.
    pub fn admit(
        &self,
        worker_id: &str,
        instance_id: &str,
        alive_within: Duration,
    ) -> Result<(), IdInUse> {
        let state = self.state();
        match state.workers.get(worker_id) {
            Some(held) if held.holds_against(instance_id, alive_within) => Err(IdInUse {
                hostname: held.info.hostname.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// Adds a worker, or replaces the stream it had (whose `superseded` is
    /// told), unless another live process took the id since [`Self::admit`].
    pub fn connect(
        &self,
        info: WorkerInfo,
        sender: WorkerSender,
        alive_within: Duration,
    ) -> Result<Admitted, IdInUse> {
        let mut state = self.state();
        if let Some(held) = state.workers.get(&info.worker_id) {
            if held.holds_against(&info.instance_id, alive_within) {
                return Err(IdInUse {
                    hostname: held.info.hostname.clone(),
                });
            }
            held.superseded.notify_one();
        }
        state.next_session += 1;
        let session = state.next_session;
        let superseded = Arc::new(Notify::new());
        state.workers.insert(
            info.worker_id.clone(),
            Connection {
                session,
                info,
                credits: 0,
                sender,
                output_limits: HashMap::new(),
                assigned_tokens: HashMap::new(),
                superseded: superseded.clone(),
            },
        );
        Ok(Admitted {
            session,
            superseded,
        })
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
    ///
    /// A worker with free slots heard from again after longer than
    /// `alive_within` (frozen, then thawed) could take work again: the
    /// dispatcher is woken, as nothing else would wake it for that.
    pub fn seen(&self, worker_id: &str, session: u64, alive_within: Duration) {
        let now = Utc::now();
        let revived = self
            .with_session(worker_id, session, |c| {
                let silent = (now - c.info.last_seen_at).to_std().unwrap_or_default();
                c.info.last_seen_at = now;
                silent > alive_within && c.credits > 0
            })
            .unwrap_or(false);
        if revived {
            self.wake();
        }
    }

    /// Whether a worker is connected to this server.
    pub fn is_connected(&self, worker_id: &str) -> bool {
        self.state().workers.contains_key(worker_id)
    }

    /// Whether the server has `execution_id` on record as running on this
    /// worker session.
    pub fn runs(&self, worker_id: &str, session: u64, execution_id: Uuid) -> bool {
        self.with_session(worker_id, session, |c| {
            c.info.running.contains(&execution_id)
        })
        .unwrap_or(false)
    }

    /// Whether `token` is the attempt `execution_id` was assigned with on
    /// this session of the worker (and the run has not left it since).
    pub fn assigned_with(
        &self,
        worker_id: &str,
        session: u64,
        execution_id: Uuid,
        token: &str,
    ) -> bool {
        self.with_session(worker_id, session, |c| {
            c.assigned_tokens
                .get(&execution_id)
                .is_some_and(|t| t == token)
        })
        .unwrap_or(false)
    }

    /// Notes that an attempt of a run left the worker (`None`: whatever
    /// attempt it holds). A newer attempt of the same run handed to the same
    /// worker meanwhile stays: a failed run retried at once can be claimed
    /// by its worker again before that worker's finish is answered, and
    /// taking the new attempt off had every report about it refused while
    /// the run sat in `running`.
    pub fn run_ended(&self, worker_id: &str, execution_id: Uuid, attempt_token: Option<&str>) {
        if let Some(c) = self.state().workers.get_mut(worker_id) {
            let newer = attempt_token.is_some_and(|ended| {
                c.assigned_tokens
                    .get(&execution_id)
                    .is_some_and(|current| current != ended)
            });
            if newer {
                return;
            }
            c.info.running.remove(&execution_id);
            c.output_limits.remove(&execution_id);
            c.assigned_tokens.remove(&execution_id);
        }
    }

    /// Records a run a registering worker kept on this session: the
    /// attempt it holds and where its log must end.
    pub fn keep_run(
        &self,
        worker_id: &str,
        session: u64,
        execution_id: Uuid,
        attempt_token: &str,
        output_limit: u64,
    ) {
        self.with_session(worker_id, session, |c| {
            c.assigned_tokens
                .insert(execution_id, attempt_token.to_owned());
            c.output_limits.insert(execution_id, output_limit);
        });
    }

    /// Where a run's log must end, if known for this worker session.
    pub fn output_limit(&self, worker_id: &str, session: u64, execution_id: Uuid) -> Option<u64> {
        self.with_session(worker_id, session, |c| {
            c.output_limits.get(&execution_id).copied()
        })
        .flatten()
    }

    /// Workers with credits that take work: not draining, and heard from
    /// within `alive_within` (liveness is the heartbeat, not the socket).
    pub fn hungry(&self, alive_within: Duration) -> Vec<Hungry> {
        let state = self.state();
        let heard_since = Utc::now()
            - chrono::TimeDelta::from_std(alive_within).unwrap_or(chrono::TimeDelta::MAX);
        let mut hungry: Vec<Hungry> = state
            .workers
            .values()
            .filter(|c| c.credits > 0 && !c.info.draining && c.info.last_seen_at >= heard_since)
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
        attempt_token: &str,
        message: ToWorker,
    ) -> bool {
        let sender = self.with_session(worker_id, session, |c| {
            c.credits = c.credits.saturating_sub(1);
            c.info.running.insert(execution_id);
            c.assigned_tokens
                .insert(execution_id, attempt_token.to_owned());
            if let ToWorker::Assign(assignment) = &message {
                c.output_limits
                    .insert(execution_id, assignment.output_limit());
            }
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

    /// Sends a message only while the worker's queue keeps `reserve`
    /// places free: what a viewer types never crowds out the engine's own
    /// messages (assignments, acknowledgements, cancels).
    pub fn send_leaving_room(&self, worker_id: &str, reserve: usize, message: ToWorker) -> bool {
        let sender = self
            .state()
            .workers
            .get(worker_id)
            .map(|c| c.sender.clone());
        sender.is_some_and(|s| s.capacity() > reserve && s.try_send(Ok(message)).is_ok())
    }

    /// Asks a worker to stop a run.
    pub fn cancel(
        &self,
        worker_id: &str,
        execution_id: Uuid,
        attempt_token: String,
        reason: &str,
        forget: bool,
    ) -> bool {
        self.send(
            worker_id,
            ToWorker::Cancel {
                execution_id,
                attempt_token,
                reason: reason.to_owned(),
                forget,
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

    /// Connected workers, the slots they registered, and the free slots
    /// granted by those taking work (not draining), for `/metrics`.
    pub fn slot_totals(&self) -> SlotTotals {
        let state = self.state();
        let mut totals = SlotTotals {
            workers: state.workers.len(),
            ..SlotTotals::default()
        };
        for c in state.workers.values() {
            totals.slots += c.info.slots.max(0) as usize;
            if !c.info.draining {
                totals.free += c.credits;
            }
        }
        totals
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

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(id: &str) -> WorkerInfo {
        WorkerInfo {
            worker_id: id.into(),
            hostname: "host".into(),
            version: "test".into(),
            slots: 2,
            agent_slugs: Vec::new(),
            labels: BTreeMap::new(),
            draining: false,
            running: HashSet::new(),
            last_seen_at: Utc::now(),
            instance_id: "instance".into(),
        }
    }

    #[test]
    fn the_end_of_an_attempt_does_not_take_off_a_newer_one() {
        let hub = WorkerHub::default();
        let (tx, _rx) = tokio::sync::mpsc::channel(8);
        let alive = Duration::from_secs(60);
        let session = hub.connect(worker("w1"), tx, alive).unwrap().session;
        hub.grant("w1", session, 2);
        let run = Uuid::new_v4();
        assert!(hub.assign("w1", session, run, "first", ToWorker::HeartbeatAck));
        // The run failed and was retried; its worker claimed it again
        // before the answer to the first attempt's finish was sent.
        assert!(hub.assign("w1", session, run, "second", ToWorker::HeartbeatAck));
        hub.run_ended("w1", run, Some("first"));
        assert!(hub.runs("w1", session, run));
        assert!(hub.assigned_with("w1", session, run, "second"));
        hub.run_ended("w1", run, Some("second"));
        assert!(!hub.runs("w1", session, run));
        // Without a token (a run kept at registration), whatever it holds.
        assert!(hub.assign("w1", session, run, "third", ToWorker::HeartbeatAck));
        hub.run_ended("w1", run, None);
        assert!(!hub.runs("w1", session, run));
    }
}
