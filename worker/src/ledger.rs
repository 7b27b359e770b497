//! The worker's ledger of runs: every run it holds, what the server has yet
//! to be told about each, and the slots and the drain that follow from them.
//! It does no I/O and keeps no timer of its own: the event loop
//! ([`crate::connection`]) feeds it the server's messages, the runs' events
//! and the link going up or down, starts the runs it takes on ([`NewRun`]),
//! and waits for its deadlines; it queues its messages on the registered
//! stream it was given, and nowhere else.
//!
//! The protocol, worker side (the stream itself is [`crate::link`]'s):
//! - `Register.running` lists every run the worker still holds, alive or
//!   finished-but-not-yet-acknowledged ([`Ledger::running`]).
//! - `Registered.resumed` runs resend their output from the server's
//!   `acknowledged_offset`, then (if they ended) their `RunFinished`. Held
//!   runs that are NOT resumed are stopped (SIGTERM/grace/SIGKILL) without
//!   waiting for the server's `Cancel`; their output is no longer sent, and
//!   they are forgotten once they ended (after a best-effort `RunFinished`).
//! - Slots: after `Registered`, one `SlotGrant` of `slots − live children`
//!   (when positive); then `SlotGrant{1}` whenever a run ends. Nothing while
//!   the worker drains or after the server's `Drain` (on that stream).
//! - Finish/ack rule: a run's `RunFinished` is sent after its last chunk;
//!   the run is forgotten once the server answered it (`RunFinishedAck`,
//!   sent after it acknowledged every byte): recorded, or refused for good.
//!   Until then it is reported in `Register.running` and its finish resent
//!   after a reconnect (a finish lost with a stream used to leave the run in
//!   `running` until reaped). Acks name the attempt they are for.
//! - A `Cancel` with `forget` (the run is no longer ours: reaped, or a
//!   report refused as stale) kills the run at once and forgets it; nothing
//!   about it waits for acknowledgements that will never come.
//! - Fencing: when the event loop has heard nothing from the server for
//!   close to the stale window, [`Ledger::fence`] stops every run: the server
//!   is about to give them to someone else.
//! - Heartbeats list the runs held (not the orphaned ones).
//! - Drain: `Drain` is sent (again on every new stream), no slots are
//!   granted; after the drain timeout the runs still going are stopped, and
//!   the worker gives up on delivering their results a while later.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use amon_proto::v1::{
    Assign, Cancel, Drain, Heartbeat, LogAck, LogChunk, Registered, RunFinished, RunFinishedAck,
    RunStarted, RunStatus, RunningExecution, SessionDetected, SlotGrant, connect_request,
};
use prost_types::{Struct, Value, value::Kind};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::config::RuntimeConfig;
use crate::run::adapter::{Prepared, prepare};
use crate::run::agent::trouble::AgentSettings;
use crate::run::lifecycle::EXIT_GRACE;
use crate::run::output::{OutputLog, Resume};
use crate::run::{Control, Outcome, RunEvent, RunEventKind, RunKey, StopReason};
use crate::transport::{Outbound, request};

/// After the drain timeout has cancelled the runs, how long the worker keeps
/// trying to deliver their results before it gives up (on top of the grace).
const DELIVERY_PATIENCE: Duration = Duration::from_secs(30);

/// A run the ledger took on, to be started: its supervisor takes orders
/// from `control`.
pub(crate) struct NewRun {
    pub key: RunKey,
    pub prepared: Prepared,
    pub control: mpsc::UnboundedReceiver<Control>,
}

/// Where a run is.
#[derive(Debug)]
enum Phase {
    /// Its supervisor is running (the child may not have started yet).
    Alive {
        control: mpsc::UnboundedSender<Control>,
        pid: Option<u32>,
    },
    /// It ended; this is its result, sent after all its output.
    Ended(Outcome),
}

/// A run the worker keeps until the server has stored its output and result.
#[derive(Debug)]
struct Run {
    key: RunKey,
    log: OutputLog,
    phase: Phase,
    /// `RunFinished` went out on the current stream.
    finish_sent: bool,
    /// The server did not resume it after a reconnect: it is being stopped,
    /// its output is not sent, and it is forgotten once it ends.
    orphaned: bool,
    /// The AI agent's session id, once known.
    session_ref: Option<String>,
    /// `SessionDetected` went out on the current stream.
    session_sent: bool,
    /// The agent's status last sent (`RunStatus`), so only changes go out.
    status: Option<String>,
    /// What it changed in its task's worktree, reported with its result.
    worktree: Option<amon_proto::v1::WorktreeSummary>,
    /// The tmux session it runs in (AI agents), once started: what a
    /// terminal attaches to.
    tmux_session: Option<String>,
}

impl Run {
    /// Whether its child may still be running.
    fn is_alive(&self) -> bool {
        matches!(self.phase, Phase::Alive { .. })
    }

    /// Sends an order to its supervisor (ignored once it ended).
    fn control(&self, order: Control) {
        if let Phase::Alive { control, .. } = &self.phase {
            let _ = control.send(order);
        }
    }

    /// The `RunFinished` to report, once it ended.
    fn finished(&self) -> Option<RunFinished> {
        let Phase::Ended(outcome) = &self.phase else {
            return None;
        };
        Some(RunFinished {
            execution_id: self.key.execution_id.clone(),
            attempt_token: self.key.attempt_token.clone(),
            status: outcome.status as i32,
            exit_code: outcome.exit_code,
            error: outcome.error.clone(),
            log_byte_size: i64::try_from(self.log.end()).unwrap_or(i64::MAX),
            worktree: self.worktree.clone(),
        })
    }
}

/// The registered stream, while there is one.
struct Stream {
    tx: Outbound,
    /// The server sent `Drain` on this stream.
    server_draining: bool,
}

/// See the module documentation.
pub(crate) struct Ledger {
    /// Most runs at once.
    slots: u32,
    /// Reported in heartbeats.
    version: String,
    drain_timeout: Duration,
    /// The chunk size and the cancel grace, as the server last set them.
    config: RuntimeConfig,
    /// Who the worker is to its agents' errors, and their stall rule.
    agents: AgentSettings,
    /// Runs held, by execution id.
    runs: HashMap<String, Run>,
    /// Superseded runs being killed (they still hold a slot until they end).
    abandoned: HashSet<RunKey>,
    stream: Option<Stream>,
    draining: bool,
    drain_deadline: Option<Instant>,
    drain_timed_out: bool,
    give_up_at: Option<Instant>,
}

impl Ledger {
    pub fn new(
        slots: u32,
        version: String,
        drain_timeout: Duration,
        config: RuntimeConfig,
        agents: AgentSettings,
    ) -> Self {
        Self {
            slots,
            version,
            drain_timeout,
            config,
            agents,
            runs: HashMap::new(),
            abandoned: HashSet::new(),
            stream: None,
            draining: false,
            drain_deadline: None,
            drain_timed_out: false,
            give_up_at: None,
        }
    }

    pub fn set_config(&mut self, config: RuntimeConfig) {
        self.config = config;
    }

    // ----- the stream ------------------------------------------------------

    /// What `Register.running` lists: every run held.
    pub fn running(&self) -> Vec<RunningExecution> {
        self.runs
            .values()
            .map(|run| RunningExecution {
                execution_id: run.key.execution_id.clone(),
                attempt_token: run.key.attempt_token.clone(),
            })
            .collect()
    }

    /// The server answered `Register`; from now on the ledger's messages go
    /// on `tx`. Resumes, stops or drops each run held, says it drains,
    /// grants the free slots and sends what is due.
    pub fn on_registered(&mut self, registered: &Registered, tx: Outbound) {
        self.stream = Some(Stream {
            tx,
            server_draining: false,
        });
        info!(worker_id = %registered.worker_id, resumed = registered.resumed.len(),
              held = self.runs.len(), "registered with the server");

        let resumed: HashMap<&str, _> = registered
            .resumed
            .iter()
            .map(|r| (r.execution_id.as_str(), r))
            .collect();
        for r in &registered.resumed {
            if !self.runs.contains_key(&r.execution_id) {
                warn!(execution_id = %r.execution_id,
                      "the server resumed a run this worker does not hold");
            }
        }
        let ids: Vec<String> = self.runs.keys().cloned().collect();
        for id in ids {
            let run = self.runs.get_mut(&id).expect("listed above");
            if run.orphaned {
                // Being stopped already (fenced, disowned): its finish goes
                // out once it ends, best effort, and it is forgotten.
                continue;
            }
            let keep = resumed.get(id.as_str()).filter(|r| {
                !run.orphaned
                    && (r.attempt_token.is_empty() || r.attempt_token == run.key.attempt_token)
            });
            match keep {
                Some(r) => {
                    let offset = u64::try_from(r.acknowledged_offset).unwrap_or(0);
                    match run.log.resume_from(offset) {
                        Resume::FromServerOffset => {}
                        other => warn!(execution_id = %id, server_offset = offset, ?other,
                                       "the server's acknowledged offset does not match ours"),
                    }
                    run.finish_sent = false;
                    run.session_sent = false;
                    debug!(execution_id = %id, from = run.log.acked(), "resuming run");
                }
                None if run.is_alive() => {
                    info!(execution_id = %id, "the server did not resume this run: stopping it");
                    run.orphaned = true;
                    run.control(Control::Stop(StopReason::Cancelled(
                        "not resumed by the server after a reconnect".into(),
                    )));
                }
                None => {
                    info!(execution_id = %id, "the server did not resume this finished run: \
                                               dropping it");
                    self.runs.remove(&id);
                }
            }
        }

        if self.draining {
            self.send(drain_message());
        }
        let free = (self.slots as usize).saturating_sub(self.live_children());
        self.grant(free);
        self.flush_all();
    }

    /// The stream is gone: nothing sent on it counts any more; everything
    /// not acknowledged goes again on the next one.
    pub fn link_down(&mut self) {
        self.stream = None;
        for run in self.runs.values_mut() {
            run.log.rewind();
            run.finish_sent = false;
            run.session_sent = false;
        }
    }

    /// The server sent `Drain`: no more slots on this stream.
    pub fn on_server_drain(&mut self) {
        if let Some(stream) = &mut self.stream {
            stream.server_draining = true;
        }
    }

    pub fn send_heartbeat(&mut self) {
        let mut running: Vec<String> = self
            .runs
            .values()
            .filter(|run| !run.orphaned)
            .map(|run| run.key.execution_id.clone())
            .collect();
        running.sort();
        let live = self.live_children();
        let number = |n: f64| Value {
            kind: Some(Kind::NumberValue(n)),
        };
        let metadata = Struct {
            fields: [
                ("slots".to_string(), number(f64::from(self.slots))),
                ("live_processes".to_string(), number(live as f64)),
                (
                    "draining".to_string(),
                    Value {
                        kind: Some(Kind::BoolValue(self.draining)),
                    },
                ),
                (
                    "version".to_string(),
                    Value {
                        kind: Some(Kind::StringValue(self.version.clone())),
                    },
                ),
            ]
            .into_iter()
            .collect(),
        };
        self.send(connect_request::Message::Heartbeat(Heartbeat {
            running_execution_ids: running,
            metadata: Some(metadata),
        }));
    }

    // ----- the server's orders -------------------------------------------

    /// Takes on an assigned run; what to start, unless it is a duplicate or
    /// cannot run (then it fails at once).
    pub fn on_assign(&mut self, assign: Assign) -> Option<NewRun> {
        let key = RunKey {
            execution_id: assign.execution_id.clone(),
            attempt_token: assign.attempt_token.clone(),
        };
        if let Some(existing) = self.runs.get(&key.execution_id) {
            if existing.key == key {
                warn!(execution_id = %key.execution_id, "duplicate Assign ignored");
                return None;
            }
            // A new attempt of a run we still hold: the old one is stale.
            warn!(execution_id = %key.execution_id,
                  "new attempt of a run this worker still holds: killing the old one");
            let old = self.runs.remove(&key.execution_id).expect("checked");
            if old.is_alive() {
                old.control(Control::Abandon);
                self.abandoned.insert(old.key);
            }
        }
        if self.live_children() >= self.slots as usize {
            warn!(execution_id = %key.execution_id,
                  "assigned more runs than granted slots; running it anyway");
        }
        // The program and the number of arguments, not their values:
        // arguments may carry secrets, and logs are kept and shared.
        info!(execution_id = %key.execution_id, task_id = %assign.task_id,
              attempt = assign.attempt, program = assign.argv.first().map(String::as_str),
              args = assign.argv.len().saturating_sub(1), "assigned");
        let start = u64::try_from(assign.log_offset).unwrap_or(0);
        let cap = u64::try_from(assign.max_output_bytes)
            .ok()
            .filter(|&cap| cap > 0);
        let (phase, new_run) = match prepare(&assign, &self.agents) {
            Err(error) => {
                info!(execution_id = %key.execution_id, %error, "run refused");
                (Phase::Ended(Outcome::failed(error)), None)
            }
            Ok(prepared) => {
                let (control_tx, control_rx) = mpsc::unbounded_channel();
                let phase = Phase::Alive {
                    control: control_tx,
                    pid: None,
                };
                let new_run = NewRun {
                    key: key.clone(),
                    prepared,
                    control: control_rx,
                };
                (phase, Some(new_run))
            }
        };
        let run = Run {
            key: key.clone(),
            log: OutputLog::new(start, cap),
            phase,
            finish_sent: false,
            orphaned: false,
            session_ref: None,
            session_sent: false,
            status: None,
            worktree: None,
            tmux_session: None,
        };
        if self.drain_timed_out {
            run.control(Control::Stop(StopReason::DrainTimeout));
        }
        self.runs.insert(key.execution_id.clone(), run);
        self.flush(&key.execution_id);
        if new_run.is_none() {
            // Refused: its slot is free again.
            self.grant(1);
        }
        new_run
    }

    pub fn on_log_ack(&mut self, ack: LogAck) {
        let Some(run) = self.runs.get_mut(&ack.execution_id) else {
            debug!(execution_id = %ack.execution_id, "LogAck for an unknown run ignored");
            return;
        };
        if run.orphaned
            || !(ack.attempt_token.is_empty() || ack.attempt_token == run.key.attempt_token)
        {
            return;
        }
        run.log.ack(u64::try_from(ack.offset).unwrap_or(0));
        self.flush(&ack.execution_id);
    }

    /// The server answered a finish: the run is recorded (or refused for
    /// good) and forgotten.
    pub fn on_finished_ack(&mut self, ack: RunFinishedAck) {
        let ours = self.runs.get(&ack.execution_id).is_some_and(|run| {
            run.finish_sent
                && (ack.attempt_token.is_empty() || ack.attempt_token == run.key.attempt_token)
        });
        if !ours {
            debug!(execution_id = %ack.execution_id, "RunFinishedAck for no finish sent ignored");
            return;
        }
        if ack.accepted {
            debug!(execution_id = %ack.execution_id, "run delivered; forgetting it");
        } else {
            warn!(execution_id = %ack.execution_id, error = %ack.error,
                  "the server refused this run's result; forgetting it");
        }
        self.runs.remove(&ack.execution_id);
    }

    pub fn on_cancel(&mut self, cancel: Cancel) {
        let matches = |run: &Run| {
            cancel.attempt_token.is_empty() || cancel.attempt_token == run.key.attempt_token
        };
        if cancel.forget {
            if let Some(run) = self
                .runs
                .get_mut(&cancel.execution_id)
                .filter(|run| matches(run))
            {
                info!(execution_id = %cancel.execution_id, reason = %cancel.reason,
                      "the run is no longer this worker's: killing and forgetting it");
                run.orphaned = true;
                run.control(Control::Abandon);
                if !run.is_alive() {
                    self.runs.remove(&cancel.execution_id);
                }
            }
            return;
        }
        match self.runs.get(&cancel.execution_id) {
            Some(run) if matches(run) => {
                if run.is_alive() {
                    info!(execution_id = %cancel.execution_id, reason = %cancel.reason,
                          "cancel");
                    run.control(Control::Stop(StopReason::Cancelled(cancel.reason)));
                } else {
                    debug!(execution_id = %cancel.execution_id, "cancel of an ended run ignored");
                }
            }
            _ => debug!(execution_id = %cancel.execution_id, "cancel of an unknown run ignored"),
        }
    }

    // ----- the runs' events --------------------------------------------------

    pub fn on_run_event(&mut self, event: RunEvent) {
        let RunEvent { key, kind } = event;
        if self.abandoned.contains(&key) {
            if let RunEventKind::Ended(_) = kind {
                self.abandoned.remove(&key);
                self.grant(1);
            }
            return;
        }
        let Some(run) = self.runs.get_mut(&key.execution_id) else {
            return;
        };
        if run.key != key {
            return;
        }
        match kind {
            RunEventKind::Started { pid, tmux_session } => {
                if let Phase::Alive { pid: slot, .. } = &mut run.phase {
                    *slot = Some(pid);
                }
                run.tmux_session = tmux_session.clone();
                if !run.orphaned {
                    self.send(connect_request::Message::Started(RunStarted {
                        execution_id: key.execution_id.clone(),
                        attempt_token: key.attempt_token.clone(),
                        pid: i32::try_from(pid).unwrap_or_default(),
                        tmux_session_name: tmux_session,
                    }));
                }
            }
            RunEventKind::Session(session_ref) => {
                info!(execution_id = %key.execution_id, %session_ref, "agent session detected");
                run.session_ref = Some(session_ref);
                run.session_sent = false;
                self.flush(&key.execution_id);
            }
            RunEventKind::Status(status) => {
                // Best effort, as it happens: a status is only worth its
                // moment, so it is neither kept for nor resent after a
                // reconnect.
                if run.status != status && !run.orphaned {
                    info!(execution_id = %key.execution_id, ?status, "agent status");
                    run.status = status.clone();
                    self.send(connect_request::Message::RunStatus(RunStatus {
                        execution_id: key.execution_id.clone(),
                        attempt_token: key.attempt_token.clone(),
                        status,
                    }));
                }
            }
            RunEventKind::Output(data) => {
                run.log.push(&data);
                self.flush(&key.execution_id);
            }
            RunEventKind::Worktree(summary) => {
                info!(execution_id = %key.execution_id, branch = %summary.branch,
                      commits = summary.commits, files = summary.files.len(),
                      dirty = summary.dirty, "worktree summarized");
                run.worktree = Some(*summary);
            }
            RunEventKind::Ended(outcome) => {
                info!(execution_id = %key.execution_id, status = ?outcome.status,
                      exit_code = ?outcome.exit_code, error = ?outcome.error,
                      log_byte_size = run.log.end(), truncated = run.log.truncated(),
                      discarded = run.log.discarded(),
                      "run ended");
                run.phase = Phase::Ended(outcome);
                self.flush(&key.execution_id);
                self.grant(1);
            }
        }
    }

    /// Stops every run the server is about to give to someone else: the
    /// worker heard nothing from it for `silent_for`. They are reported
    /// (best effort) once they end, then forgotten. Returns how many.
    pub fn fence(&mut self, silent_for: Duration) -> usize {
        let mut stopped = 0;
        for run in self
            .runs
            .values_mut()
            .filter(|r| r.is_alive() && !r.orphaned)
        {
            run.orphaned = true;
            run.control(Control::Stop(StopReason::Fenced(silent_for)));
            stopped += 1;
        }
        stopped
    }

    // ----- the drain -------------------------------------------------------

    /// The worker is leaving: no new work; the runs may finish.
    pub fn begin_drain(&mut self) {
        self.draining = true;
        self.drain_deadline = Some(Instant::now() + self.drain_timeout);
        info!(runs = self.runs.len(), drain_timeout = ?self.drain_timeout,
              "draining: no new work; waiting for the runs to finish");
        self.send(drain_message());
    }

    pub fn draining(&self) -> bool {
        self.draining
    }

    /// When the drain timeout cancels the runs still going.
    pub fn drain_deadline(&self) -> Option<Instant> {
        self.drain_deadline
    }

    pub fn on_drain_timeout(&mut self) {
        self.drain_deadline = None;
        self.drain_timed_out = true;
        let mut stopped = 0;
        for run in self.runs.values().filter(|r| r.is_alive()) {
            run.control(Control::Stop(StopReason::DrainTimeout));
            stopped += 1;
        }
        warn!(stopped, "drain timeout: cancelling the runs still going");
        self.give_up_at =
            Some(Instant::now() + self.config.cancel_grace + EXIT_GRACE * 2 + DELIVERY_PATIENCE);
    }

    /// When a drain stops waiting for the results to be delivered.
    pub fn give_up_at(&self) -> Option<Instant> {
        self.give_up_at
    }

    /// Draining, and every run is finished and stored.
    pub fn drained(&self) -> bool {
        self.draining && self.runs.is_empty() && self.abandoned.is_empty()
    }

    /// The tmux session a terminal may attach to for this attempt of a
    /// run: it must be held, alive, still this worker's, and in tmux.
    /// Otherwise why not, in words.
    pub fn terminal_of(&self, execution_id: &str, attempt_token: &str) -> Result<String, String> {
        let run = self
            .runs
            .get(execution_id)
            .filter(|run| run.key.attempt_token == attempt_token)
            .ok_or_else(|| format!("this worker does not run execution {execution_id} (now)"))?;
        if !run.is_alive() || run.orphaned {
            return Err(format!("execution {execution_id} has ended on this worker"));
        }
        run.tmux_session
            .clone()
            .ok_or_else(|| format!("execution {execution_id} has no tmux session (yet)"))
    }

    /// The execution ids of the runs held.
    pub fn held(&self) -> Vec<String> {
        self.runs.keys().cloned().collect()
    }

    // ----- sending -----------------------------------------------------------

    /// Sends on the registered stream; false when there is none (or it broke).
    fn send(&mut self, message: connect_request::Message) -> bool {
        match &self.stream {
            Some(stream) => stream.tx.send(request(message)).is_ok(),
            None => false,
        }
    }

    fn grant(&mut self, count: usize) {
        if count == 0 || self.draining {
            return;
        }
        if let Some(stream) = &self.stream {
            if stream.server_draining {
                return;
            }
            let count = i32::try_from(count).unwrap_or(i32::MAX);
            let _ = stream
                .tx
                .send(request(connect_request::Message::SlotGrant(SlotGrant {
                    count,
                })));
        }
    }

    fn live_children(&self) -> usize {
        self.runs.values().filter(|r| r.is_alive()).count() + self.abandoned.len()
    }

    fn flush_all(&mut self) {
        let ids: Vec<String> = self.runs.keys().cloned().collect();
        for id in ids {
            self.flush(&id);
        }
    }

    /// Sends what the run has not sent yet (chunks, then its finish) and
    /// forgets it once everything is stored.
    fn flush(&mut self, id: &str) {
        let chunk_bytes = self.config.log_chunk_bytes;
        let tx = self.stream.as_ref().map(|stream| &stream.tx);
        let Some(run) = self.runs.get_mut(id) else {
            return;
        };
        if run.orphaned {
            if let Some(finished) = run.finished() {
                if let Some(tx) = tx {
                    let _ = tx.send(request(connect_request::Message::Finished(finished)));
                }
                self.runs.remove(id);
            }
            return;
        }
        let Some(tx) = tx else { return };
        if !run.session_sent
            && let Some(session_ref) = &run.session_ref
        {
            let detected = SessionDetected {
                execution_id: run.key.execution_id.clone(),
                attempt_token: run.key.attempt_token.clone(),
                session_ref: session_ref.clone(),
            };
            run.session_sent = tx
                .send(request(connect_request::Message::SessionDetected(detected)))
                .is_ok();
        }
        while let Some((offset, data)) = run.log.next_chunk(chunk_bytes) {
            let chunk = LogChunk {
                execution_id: run.key.execution_id.clone(),
                attempt_token: run.key.attempt_token.clone(),
                offset: i64::try_from(offset).unwrap_or(i64::MAX),
                data,
            };
            if tx
                .send(request(connect_request::Message::LogChunk(chunk)))
                .is_err()
            {
                run.log.rewind();
                return;
            }
        }
        if !run.finish_sent
            && run.log.all_sent()
            && let Some(finished) = run.finished()
        {
            run.finish_sent = tx
                .send(request(connect_request::Message::Finished(finished)))
                .is_ok();
        }
    }
}

fn drain_message() -> connect_request::Message {
    connect_request::Message::Drain(Drain {
        reason: "worker shutting down".into(),
    })
}

#[cfg(test)]
mod tests;
