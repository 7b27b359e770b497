//! The worker's one event loop: it owns every run's state and the current
//! connection, and reacts to the server's messages, the runs' events, timers
//! and the shutdown signal. Runs outlive connections: when the stream
//! breaks, children keep running and their output is kept; the loop
//! reconnects (see [`Backoff`]) and re-registers with what it still has.
//!
//! The protocol, worker side:
//! - Each stream starts with `Register` (with `running`: every run the worker
//!   still holds, alive or finished-but-not-yet-acknowledged) and waits for
//!   `Registered` (30 s at most, else it reconnects).
//! - `Registered.resumed` runs resend their output from the server's
//!   `acknowledged_offset`, then (if they ended) their `RunFinished`. Held
//!   runs that are NOT resumed are stopped (SIGTERM/grace/SIGKILL) without
//!   waiting for the server's `Cancel`; their output is no longer sent, and
//!   they are forgotten once they ended (after a best-effort `RunFinished`).
//! - Slots: after `Registered`, one `SlotGrant` of `slots − live children`
//!   (when positive); then `SlotGrant{1}` whenever a run ends. Nothing while
//!   the worker drains or after the server's `Drain` (on that connection).
//! - Finish/ack rule: a run's `RunFinished` is sent after its last chunk;
//!   the run is forgotten once its `RunFinished` went out on the current
//!   connection AND the server acknowledged every byte (`LogAck.offset ==
//!   log_byte_size`, before or after the finish). Until then it is reported in
//!   `Register.running` and resent after a reconnect.
//! - Heartbeat every `heartbeat_interval` while registered, listing the runs
//!   held (not the orphaned ones).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::Duration;

use amon_proto::v1::{
    Assign, Cancel, ConnectRequest, ConnectResponse, Drain, Heartbeat, LogAck, LogChunk, Register,
    Registered, RunStarted, RunningExecution, SessionDetected, SlotGrant, WorkerConfig,
    connect_request, connect_response,
};
use prost_types::{Struct, Value, value::Kind};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, Interval, MissedTickBehavior, sleep_until};
use tokio_stream::StreamExt;
use tonic::Streaming;
use tonic::transport::Endpoint;
use tracing::{debug, error, info, warn};

use crate::config::{RuntimeConfig, WorkerOptions};
use crate::run::adapter::prepare;
use crate::run::agent::supervise::AgentHost;
use crate::run::launch::{Launcher, launcher};
use crate::run::lifecycle::{EXIT_GRACE, RunChannels};
use crate::run::output::{OutputLog, Resume};
use crate::run::tmux::Tmux;
use crate::run::{Control, Outcome, Phase, Run, RunEvent, RunEventKind, RunKey, StopReason};
use crate::timer::sleep_opt;
use crate::transport::{Backoff, BearerAuth, endpoint, open};

/// Longest wait for `Registered` after the stream opened.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(30);

/// After the drain timeout has cancelled the runs, how long the worker keeps
/// trying to deliver their results before it gives up (on top of the grace).
const DELIVERY_PATIENCE: Duration = Duration::from_secs(30);

/// How long a leaving worker waits for the server to close the stream.
const CLOSE_WAIT: Duration = Duration::from_millis(500);

type Outbound = mpsc::UnboundedSender<ConnectRequest>;

/// Runs the worker until `shutdown` completes and the drain is over.
pub(crate) async fn run_worker(
    options: WorkerOptions,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    // Bounded: a flood of output waits for the loop (each event ≤ 64 KiB).
    let (events_tx, events_rx) = mpsc::channel(64);
    let config = RuntimeConfig::default();
    let (config_tx, _) = watch::channel(config);
    let tmux = match &options.tmux_label {
        Some(label) => Tmux::with_label(label),
        None => Tmux::for_worker(&options.worker_id),
    };
    // Nothing of a previous life of this worker keeps running.
    tmux.kill_server().await;
    let exe = match &options.pane_runner {
        Some(exe) => exe.clone(),
        None => std::env::current_exe()?,
    };
    let mut worker = Worker {
        launcher: launcher(AgentHost { tmux, exe }),
        endpoint: endpoint(&options.server)?,
        auth: BearerAuth::new(options.token.as_deref())?,
        options,
        config,
        config_tx,
        runs: HashMap::new(),
        abandoned: HashSet::new(),
        events_tx,
        draining: false,
        drain_deadline: None,
        drain_timed_out: false,
        give_up_at: None,
        backoff: Backoff::default(),
        link: Link::Down {
            retry_at: Instant::now(),
        },
    };
    info!(worker_id = %worker.options.worker_id, server = %worker.options.server,
          slots = worker.options.slots, "amon-worker starting");
    worker.event_loop(events_rx, shutdown).await
}

enum Link {
    /// No stream; the next attempt is at `retry_at`.
    Down { retry_at: Instant },
    /// Opening the stream (`Register` is already queued on `tx`).
    Connecting {
        tx: Outbound,
        pending: JoinHandle<anyhow::Result<Streaming<ConnectResponse>>>,
    },
    /// The stream is open.
    Up(Box<Session>),
}

struct Session {
    tx: Outbound,
    inbound: Streaming<ConnectResponse>,
    /// `Registered` received.
    registered: bool,
    register_deadline: Instant,
    /// The server sent `Drain` on this stream.
    server_draining: bool,
    heartbeat: Interval,
}

// Short-lived (one loop turn): its size does not matter.
#[allow(clippy::large_enum_variant)]
enum LinkInput {
    Retry,
    Opened(anyhow::Result<Streaming<ConnectResponse>>),
    Message(Option<Result<ConnectResponse, tonic::Status>>),
    Heartbeat,
    RegisterTimeout,
}

/// The next thing that happens on the link (cancel-safe).
async fn link_input(link: &mut Link) -> LinkInput {
    match link {
        Link::Down { retry_at } => {
            sleep_until(*retry_at).await;
            LinkInput::Retry
        }
        Link::Connecting { pending, .. } => LinkInput::Opened(match pending.await {
            Ok(result) => result,
            Err(join) => Err(anyhow::anyhow!("connection task failed: {join}")),
        }),
        Link::Up(session) => tokio::select! {
            message = session.inbound.next() => LinkInput::Message(message),
            _ = session.heartbeat.tick(), if session.registered => LinkInput::Heartbeat,
            _ = sleep_until(session.register_deadline), if !session.registered => {
                LinkInput::RegisterTimeout
            }
        },
    }
}

fn heartbeat_interval(period: Duration) -> Interval {
    let mut interval = tokio::time::interval_at(Instant::now() + period, period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    interval
}

struct Worker {
    options: WorkerOptions,
    /// Starts the runs.
    launcher: Box<dyn Launcher>,
    endpoint: Endpoint,
    auth: BearerAuth,
    config: RuntimeConfig,
    /// Runs read the cancel grace from here.
    config_tx: watch::Sender<RuntimeConfig>,
    /// Runs held, by execution id.
    runs: HashMap<String, Run>,
    /// Superseded runs being killed (they still hold a slot until they end).
    abandoned: HashSet<RunKey>,
    events_tx: mpsc::Sender<RunEvent>,
    draining: bool,
    drain_deadline: Option<Instant>,
    drain_timed_out: bool,
    give_up_at: Option<Instant>,
    backoff: Backoff,
    link: Link,
}

impl Worker {
    async fn event_loop(
        &mut self,
        mut events: mpsc::Receiver<RunEvent>,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        loop {
            if self.draining && self.runs.is_empty() && self.abandoned.is_empty() {
                info!("drained: every run is finished and stored; exiting");
                self.close().await;
                return Ok(());
            }
            tokio::select! {
                Some(event) = events.recv() => self.on_run_event(event),
                input = link_input(&mut self.link) => self.on_link_input(input),
                _ = &mut shutdown, if !self.draining => self.begin_drain(),
                _ = sleep_opt(self.drain_deadline), if self.drain_deadline.is_some() => {
                    self.on_drain_timeout()
                }
                _ = sleep_opt(self.give_up_at), if self.give_up_at.is_some() => {
                    let left: Vec<String> = self.runs.keys().cloned().collect();
                    error!(runs = ?left, "giving up: the results of these runs could not be \
                                          delivered to the server");
                    self.close().await;
                    anyhow::bail!("drain gave up with {} undelivered run(s)", left.len());
                }
            }
        }
    }

    // ----- the link -------------------------------------------------------

    fn on_link_input(&mut self, input: LinkInput) {
        match input {
            LinkInput::Retry => self.start_connect(),
            LinkInput::Opened(Ok(inbound)) => {
                let Link::Connecting { tx, .. } = std::mem::replace(
                    &mut self.link,
                    Link::Down {
                        retry_at: Instant::now(),
                    },
                ) else {
                    unreachable!("Opened comes from Connecting")
                };
                debug!("stream open; waiting for Registered");
                self.link = Link::Up(Box::new(Session {
                    tx,
                    inbound,
                    registered: false,
                    register_deadline: Instant::now() + REGISTER_TIMEOUT,
                    server_draining: false,
                    heartbeat: heartbeat_interval(self.config.heartbeat_interval),
                }));
            }
            LinkInput::Opened(Err(e)) => self.go_down(&format!("{e:#}")),
            LinkInput::Message(Some(Ok(message))) => self.on_message(message),
            LinkInput::Message(Some(Err(status))) => self.go_down(&format!(
                "stream error: {} ({:?})",
                status.message(),
                status.code()
            )),
            LinkInput::Message(None) => self.go_down("the server closed the stream"),
            LinkInput::Heartbeat => self.send_heartbeat(),
            LinkInput::RegisterTimeout => self.go_down("no Registered from the server in time"),
        }
    }

    fn start_connect(&mut self) {
        let (tx, rx) = mpsc::unbounded_channel();
        let running = self
            .runs
            .values()
            .map(|run| RunningExecution {
                execution_id: run.key.execution_id.clone(),
                attempt_token: run.key.attempt_token.clone(),
            })
            .collect();
        let register = Register {
            worker_id: self.options.worker_id.clone(),
            hostname: self.options.hostname.clone(),
            version: self.options.version.clone(),
            slots: i32::try_from(self.options.slots).unwrap_or(i32::MAX),
            agent_slugs: self.options.agent_slugs.clone(),
            labels: self.options.labels.clone(),
            running,
        };
        debug!(running = register.running.len(), "connecting");
        let _ = tx.send(request(connect_request::Message::Register(register)));
        let pending = tokio::spawn(open(self.endpoint.clone(), self.auth.clone(), rx));
        self.link = Link::Connecting { tx, pending };
    }

    /// The stream is gone (or never came): keep everything, retry later.
    fn go_down(&mut self, why: &str) {
        let delay = self.backoff.next_delay();
        warn!(reason = why, retry_in = ?delay, "not connected to the server");
        if let Link::Connecting { pending, .. } = &self.link {
            pending.abort();
        }
        for run in self.runs.values_mut() {
            run.log.rewind();
            run.finish_sent = false;
            run.session_sent = false;
        }
        self.link = Link::Down {
            retry_at: Instant::now() + delay,
        };
    }

    /// Leaves: ends the request stream and gives the server a moment to
    /// read what is queued.
    async fn close(&mut self) {
        let link = std::mem::replace(
            &mut self.link,
            Link::Down {
                retry_at: Instant::now(),
            },
        );
        match link {
            Link::Up(session) => {
                let Session {
                    tx, mut inbound, ..
                } = *session;
                drop(tx);
                let _ = tokio::time::timeout(CLOSE_WAIT, async {
                    while let Some(Ok(_)) = inbound.next().await {}
                })
                .await;
            }
            Link::Connecting { pending, .. } => pending.abort(),
            Link::Down { .. } => {}
        }
    }

    /// The open, registered stream, if any.
    fn session(&mut self) -> Option<&mut Session> {
        match &mut self.link {
            Link::Up(session) if session.registered => Some(session),
            _ => None,
        }
    }

    /// Sends on the registered stream; false when there is none (or it broke).
    fn send(&mut self, message: connect_request::Message) -> bool {
        match self.session() {
            Some(session) => session.tx.send(request(message)).is_ok(),
            None => false,
        }
    }

    fn grant(&mut self, count: usize) {
        if count == 0 || self.draining {
            return;
        }
        if let Some(session) = self.session() {
            if session.server_draining {
                return;
            }
            let count = i32::try_from(count).unwrap_or(i32::MAX);
            let _ = session
                .tx
                .send(request(connect_request::Message::SlotGrant(SlotGrant {
                    count,
                })));
        }
    }

    fn send_heartbeat(&mut self) {
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
                ("slots".to_string(), number(f64::from(self.options.slots))),
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
                        kind: Some(Kind::StringValue(self.options.version.clone())),
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

    fn live_children(&self) -> usize {
        self.runs.values().filter(|r| r.is_alive()).count() + self.abandoned.len()
    }

    // ----- messages from the server -------------------------------------

    fn on_message(&mut self, message: ConnectResponse) {
        let Some(message) = message.message else {
            debug!("empty message from the server");
            return;
        };
        use connect_response::Message as M;
        match message {
            M::Registered(registered) => self.on_registered(registered),
            // Before Registered, only Registered makes sense.
            _ if self.session().is_none() => {
                self.go_down("the server spoke before answering Register")
            }
            M::Assign(assign) => self.on_assign(assign),
            M::LogAck(ack) => self.on_log_ack(ack),
            M::Cancel(cancel) => self.on_cancel(cancel),
            M::Config(config) => self.apply_config(&config),
            M::Drain(drain) => {
                info!(reason = %drain.reason, "the server asked us to drain: taking no new work");
                if let Some(session) = self.session() {
                    session.server_draining = true;
                }
            }
        }
    }

    fn on_registered(&mut self, registered: Registered) {
        let Link::Up(session) = &mut self.link else {
            return;
        };
        if session.registered {
            warn!("a second Registered on the same stream; applying its config only");
            if let Some(config) = &registered.config {
                self.apply_config(config);
            }
            return;
        }
        session.registered = true;
        self.backoff.reset();
        if let Some(config) = &registered.config {
            self.apply_config(config);
        }
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
            self.send(connect_request::Message::Drain(Drain {
                reason: "worker shutting down".into(),
            }));
        }
        let free = (self.options.slots as usize).saturating_sub(self.live_children());
        self.grant(free);
        self.flush_all();
    }

    fn apply_config(&mut self, config: &WorkerConfig) {
        let new = RuntimeConfig::from_proto(config);
        if new == self.config {
            return;
        }
        info!(?new, "worker config");
        let heartbeat_changed = new.heartbeat_interval != self.config.heartbeat_interval;
        self.config = new;
        self.config_tx.send_replace(new);
        if heartbeat_changed && let Link::Up(session) = &mut self.link {
            session.heartbeat = heartbeat_interval(new.heartbeat_interval);
        }
    }

    fn on_assign(&mut self, assign: Assign) {
        let key = RunKey {
            execution_id: assign.execution_id.clone(),
            attempt_token: assign.attempt_token.clone(),
        };
        if let Some(existing) = self.runs.get(&key.execution_id) {
            if existing.key == key {
                warn!(execution_id = %key.execution_id, "duplicate Assign ignored");
                return;
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
        if self.live_children() >= self.options.slots as usize {
            warn!(execution_id = %key.execution_id,
                  "assigned more runs than granted slots; running it anyway");
        }
        info!(execution_id = %key.execution_id, task_id = %assign.task_id,
              attempt = assign.attempt, argv = ?assign.argv, "assigned");
        let start = u64::try_from(assign.log_offset).unwrap_or(0);
        let cap = u64::try_from(assign.max_output_bytes)
            .ok()
            .filter(|&cap| cap > 0);
        let prepared = prepare(&assign);
        let mut run = Run {
            key: key.clone(),
            log: OutputLog::new(start, cap),
            phase: Phase::Ended(Outcome::failed(String::new())),
            finish_sent: false,
            orphaned: false,
            session_ref: None,
            session_sent: false,
        };
        match prepared {
            Err(error) => {
                info!(execution_id = %key.execution_id, %error, "run refused");
                run.phase = Phase::Ended(Outcome::failed(error));
                self.runs.insert(key.execution_id.clone(), run);
                self.flush(&key.execution_id);
                self.grant(1);
                return;
            }
            Ok(prepared) => {
                let (control_tx, control_rx) = mpsc::unbounded_channel();
                self.launcher.launch(
                    prepared,
                    RunChannels {
                        key: key.clone(),
                        events: self.events_tx.clone(),
                        control: control_rx,
                        config: self.config_tx.subscribe(),
                    },
                );
                run.phase = Phase::Alive {
                    control: control_tx,
                    pid: None,
                };
                if self.drain_timed_out {
                    run.control(Control::Stop(StopReason::DrainTimeout));
                }
                self.runs.insert(key.execution_id.clone(), run);
            }
        }
        self.flush(&key.execution_id);
    }

    fn on_log_ack(&mut self, ack: LogAck) {
        let Some(run) = self.runs.get_mut(&ack.execution_id) else {
            debug!(execution_id = %ack.execution_id, "LogAck for an unknown run ignored");
            return;
        };
        if run.orphaned {
            return;
        }
        run.log.ack(u64::try_from(ack.offset).unwrap_or(0));
        self.flush(&ack.execution_id);
    }

    fn on_cancel(&mut self, cancel: Cancel) {
        match self.runs.get(&cancel.execution_id) {
            Some(run)
                if cancel.attempt_token.is_empty()
                    || cancel.attempt_token == run.key.attempt_token =>
            {
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

    // ----- run events ----------------------------------------------------

    fn on_run_event(&mut self, event: RunEvent) {
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
            RunEventKind::Output(data) => {
                run.log.push(&data);
                self.flush(&key.execution_id);
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
        let session = match &mut self.link {
            Link::Up(session) if session.registered => Some(session),
            _ => None,
        };
        let Some(run) = self.runs.get_mut(id) else {
            return;
        };
        if run.orphaned {
            if let Some(finished) = run.finished() {
                if let Some(session) = session {
                    let _ = session
                        .tx
                        .send(request(connect_request::Message::Finished(finished)));
                }
                self.runs.remove(id);
            }
            return;
        }
        let Some(session) = session else { return };
        if !run.session_sent
            && let Some(session_ref) = &run.session_ref
        {
            let detected = SessionDetected {
                execution_id: run.key.execution_id.clone(),
                attempt_token: run.key.attempt_token.clone(),
                session_ref: session_ref.clone(),
            };
            run.session_sent = session
                .tx
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
            if session
                .tx
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
            run.finish_sent = session
                .tx
                .send(request(connect_request::Message::Finished(finished)))
                .is_ok();
        }
        if run.finish_sent && run.log.fully_acked() {
            debug!(execution_id = %id, "run delivered; forgetting it");
            self.runs.remove(id);
        }
    }

    // ----- drain -----------------------------------------------------------

    fn begin_drain(&mut self) {
        self.draining = true;
        self.drain_deadline = Some(Instant::now() + self.options.drain_timeout);
        info!(runs = self.runs.len(), drain_timeout = ?self.options.drain_timeout,
              "draining: no new work; waiting for the runs to finish");
        self.send(connect_request::Message::Drain(Drain {
            reason: "worker shutting down".into(),
        }));
    }

    fn on_drain_timeout(&mut self) {
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
}

fn request(message: connect_request::Message) -> ConnectRequest {
    ConnectRequest {
        message: Some(message),
    }
}
