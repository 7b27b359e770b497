//! The worker's one event loop. It wires three parts together and reacts to
//! what happens to them, one thing at a time:
//! - the [`Link`] (the stream to the server: connect, register, reconnect,
//!   heartbeat timer, close) says what happened on the stream;
//! - the [`Ledger`] (the runs held, what the server still has to be told,
//!   slots, drain) takes the server's messages and the runs' events, and
//!   sends on the registered stream;
//! - the [`Launcher`] starts the runs the ledger takes on.
//!
//! Runs outlive connections: when the stream breaks, children keep running
//! and the ledger keeps their output; the link reconnects and re-registers
//! with what the ledger still holds.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use amon_proto::v1::{
    Assign, Registered, WorkerConfig, WorktreeRequest, WorktreeResult, connect_request,
    connect_response, worktree_request,
};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::config::{RuntimeConfig, WorkerOptions};
use crate::discover::{self, DiscoverOptions};
use crate::ledger::{Ledger, NewRun};
use crate::link::{Link, LinkEvent};
use crate::run::adapter::prepare;
use crate::run::agent::supervise::AgentHost;
use crate::run::agent::trouble::AgentSettings;
use crate::run::keeper;
use crate::run::launch::{Launcher, launcher};
use crate::run::lifecycle::RunChannels;
use crate::run::tmux::Tmux;
use crate::run::{Outcome, RunEvent, RunEventKind};
use crate::terminal::Terminals;
use crate::timer::sleep_opt;
use crate::transport::request;
use crate::worktree::{self, TaskWorktree};

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
    // The tmux server is NOT killed here: it is named after the worker id,
    // and a namesake worker (another data directory, another server) may
    // run agents in it; killing it SIGKILLed them mid-turn. What a previous
    // life of this worker left is stopped by its own means, scoped to its
    // runs: the pane runner kills its agent when the worker's end of its
    // control socket closes, and the keeper's state file (below) names the
    // groups of this data directory. A pane whose process ended takes its
    // session with it.
    let exe = match &options.pane_runner {
        Some(exe) => exe.clone(),
        None => std::env::current_exe()?,
    };
    // Before anything runs: what a previous life left is killed, and what
    // this one starts dies with it.
    let state_file = options.data_dir().join(keeper::STATE_FILE);
    keeper::start(&exe, &state_file)
        .map_err(|e| anyhow::anyhow!("starting the keeper ({}): {e}", state_file.display()))?;
    keeper::set_grace(config.cancel_grace);
    let agents = AgentSettings {
        worker: options.worker_id.clone(),
        stall_after: options.agent_stall_after,
    };
    let mut worker = Worker {
        terminals: Terminals::default(),
        tmux: tmux.clone(),
        launcher: Arc::from(launcher(AgentHost { tmux, exe })),
        link: Link::new(&options, config.heartbeat_interval)?,
        ledger: Ledger::new(
            options.slots,
            options.version.clone(),
            options.drain_timeout,
            config,
            agents.clone(),
        ),
        agents,
        data_dir: options.data_dir(),
        config_tx,
        events_tx,
        last_heard: Instant::now(),
        fenced: false,
        outbound: None,
        fig_specs: options.fig_specs.clone(),
    };
    info!(worker_id = %options.worker_id, server = %options.server,
          slots = options.slots, "amon-worker starting");
    worker.event_loop(events_rx, shutdown).await
}

struct Worker {
    link: Link,
    ledger: Ledger,
    /// Shared with the tasks that start runs in worktrees once those exist.
    launcher: Arc<dyn Launcher + Sync>,
    /// What AI agent runs share (runs in worktrees are prepared again there).
    agents: AgentSettings,
    /// Where the worker keeps its state, and the worktrees of tasks.
    data_dir: PathBuf,
    /// Runs read the live tuning (the cancel grace) from here.
    config_tx: watch::Sender<RuntimeConfig>,
    /// Every run reports here.
    events_tx: mpsc::Sender<RunEvent>,
    /// When the server last said anything (it answers every heartbeat).
    last_heard: Instant,
    /// The runs were stopped for this silence already.
    fenced: bool,
    /// The registered stream, for answers that are not the ledger's
    /// (discovery scans).
    outbound: Option<crate::transport::Outbound>,
    /// Where discovery reads Fig specs.
    fig_specs: Option<std::path::PathBuf>,
    /// Remote viewers attached to runs' tmux sessions.
    terminals: Terminals,
    /// The worker's tmux server, which they attach to.
    tmux: Tmux,
}

impl Worker {
    async fn event_loop(
        &mut self,
        mut events: mpsc::Receiver<RunEvent>,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        loop {
            if self.ledger.drained() {
                info!("drained: every run is finished and stored; exiting");
                self.close().await;
                return Ok(());
            }
            // Checked before anything queued is handled: a worker thawed
            // after SIGSTOP must not start the assignments that waited for
            // it while the server was giving its runs away.
            if !self.fenced && self.last_heard.elapsed() >= self.config().fence_after() {
                self.fence();
                continue;
            }
            let drain_deadline = self.ledger.drain_deadline();
            let give_up_at = self.ledger.give_up_at();
            let fence_at = (!self.fenced).then(|| self.last_heard + self.config().fence_after());
            tokio::select! {
                Some(event) = events.recv() => self.ledger.on_run_event(event),
                event = self.link.next() => self.on_link_event(event),
                _ = &mut shutdown, if !self.ledger.draining() => self.ledger.begin_drain(),
                _ = sleep_opt(drain_deadline), if drain_deadline.is_some() => {
                    self.ledger.on_drain_timeout()
                }
                _ = sleep_opt(fence_at), if fence_at.is_some() => self.fence(),
                _ = sleep_opt(give_up_at), if give_up_at.is_some() => {
                    let left = self.ledger.held();
                    error!(runs = ?left, "giving up: the results of these runs could not be \
                                          delivered to the server");
                    self.close().await;
                    anyhow::bail!("drain gave up with {} undelivered run(s)", left.len());
                }
            }
        }
    }

    /// The server has been silent for close to the stale window: it is
    /// about to give this worker's runs to someone else, so they stop here
    /// (a 30 s partition used to let two copies of a run go on together).
    fn fence(&mut self) {
        self.fenced = true;
        let silent_for = self.last_heard.elapsed();
        let stopped = self.ledger.fence(silent_for);
        // Whatever waited on this stream is from before the silence: start
        // afresh, and let the server say which runs are still ours.
        self.link
            .drop_stream("no word from the server for too long");
        self.ledger.link_down();
        if stopped > 0 {
            warn!(stopped, ?silent_for, stale_window = ?self.config().stale_window,
                  "no word from the server for too long: stopping this worker's runs, \
                   which the server is giving to other workers");
        }
    }

    fn config(&self) -> RuntimeConfig {
        *self.config_tx.borrow()
    }

    fn on_link_event(&mut self, event: LinkEvent) {
        // Only the server's answers to registering and to heartbeats count
        // as contact: they are what the server's reaper measures silence
        // by, so the two clocks start together.
        if matches!(
            event,
            LinkEvent::Registered(..)
                | LinkEvent::Message(connect_response::Message::HeartbeatAck(_))
        ) {
            self.last_heard = Instant::now();
            self.fenced = false;
        }
        match event {
            LinkEvent::ConnectDue => self
                .link
                .connect(self.ledger.running(), worktree::task_ids(&self.data_dir)),
            LinkEvent::Registered(registered, outbound) => {
                if let Some(config) = &registered.config {
                    self.apply_config(config);
                }
                self.clean_gone_worktrees(&registered);
                self.outbound = Some(outbound.clone());
                self.ledger.on_registered(&registered, outbound);
            }
            LinkEvent::Message(message) => self.on_message(message),
            LinkEvent::Heartbeat => self.ledger.send_heartbeat(),
            LinkEvent::Down => {
                self.outbound = None;
                self.ledger.link_down();
                // The server ended their attaches with the stream.
                self.terminals.close_all();
            }
        }
    }

    fn on_message(&mut self, message: connect_response::Message) {
        use connect_response::Message as M;
        match message {
            M::Registered(registered) => {
                warn!("a second Registered on the same stream; applying its config only");
                if let Some(config) = &registered.config {
                    self.apply_config(config);
                }
            }
            M::Assign(assign) => self.on_assign(assign),
            M::LogAck(ack) => self.ledger.on_log_ack(ack),
            M::FinishedAck(ack) => self.ledger.on_finished_ack(ack),
            M::HeartbeatAck(_) => {}
            M::Cancel(cancel) => self.ledger.on_cancel(cancel),
            M::Config(config) => self.apply_config(&config),
            M::Drain(drain) => {
                info!(reason = %drain.reason, "the server asked us to drain: taking no new work");
                self.ledger.on_server_drain();
            }
            M::TerminalOpen(open) => {
                let Some(outbound) = &self.outbound else {
                    return;
                };
                let checked = self
                    .ledger
                    .terminal_of(&open.execution_id, &open.attempt_token)
                    .and_then(|session| {
                        if session == open.tmux_session_name {
                            Ok(session)
                        } else {
                            Err(format!(
                                "execution {} runs in tmux session {session:?}, not {:?}",
                                open.execution_id, open.tmux_session_name
                            ))
                        }
                    });
                match checked {
                    Ok(session) => {
                        self.terminals
                            .attach(open, session, self.tmux.clone(), outbound.clone())
                    }
                    Err(why) => self.terminals.refuse(outbound, open.attach_id, why),
                }
            }
            M::TerminalInput(input) => self.terminals.input(&input.attach_id, input.data),
            M::TerminalResize(resize) => self.terminals.resize(&resize.attach_id, resize.size),
            M::TerminalGrant(grant) => self.terminals.grant(&grant.attach_id, grant.bytes),
            M::TerminalClose(close) => self.terminals.close(&close.attach_id),
            M::Discover(request) => {
                // Scanned beside the runs, answered on the stream it came on.
                if let Some(outbound) = &self.outbound {
                    info!(request_id = %request.request_id, binaries = request.binaries.len(),
                          "discovery scan asked");
                    discover::spawn(
                        request,
                        DiscoverOptions::from_env(self.fig_specs.clone()),
                        outbound.clone(),
                    );
                }
            }
            M::WorktreeRequest(request) => {
                if let Some(outbound) = &self.outbound {
                    tokio::spawn(answer_worktree_request(
                        request,
                        self.data_dir.clone(),
                        outbound.clone(),
                    ));
                }
            }
        }
    }

    /// Takes on an assignment; one with a worktree is started in it, once
    /// it exists (the ledger holds the run meanwhile: a cancel reaches it).
    fn on_assign(&mut self, assign: Assign) {
        let Some(spec) = assign.worktree.clone() else {
            if let Some(run) = self.ledger.on_assign(assign) {
                self.launch(run);
            }
            return;
        };
        let worktree =
            worktree::task_path(&self.data_dir, &assign.task_id).map(|path| TaskWorktree {
                task_id: assign.task_id.clone(),
                repository: PathBuf::from(&assign.working_dir),
                path,
                branch: spec.branch.clone(),
                base_ref: spec.base_ref.clone(),
            });
        let original = assign.clone();
        let Some(run) = self.ledger.on_assign(assign) else {
            return;
        };
        let launcher = self.launcher.clone();
        let agents = self.agents.clone();
        let scratch = self.data_dir.join(worktree::WORKTREES_DIR);
        let events = self.events_tx.clone();
        let channels = RunChannels {
            key: run.key,
            events: events.clone(),
            control: run.control,
            config: self.config_tx.subscribe(),
        };
        tokio::spawn(async move {
            let key = channels.key.clone();
            let started = match worktree {
                Err(e) => Err(e),
                Ok(worktree) if original.working_dir.is_empty() => Err(format!(
                    "worktree isolation needs a working directory in a git repository \
                     (the task's or its agent's); task {} has none",
                    worktree.task_id
                )),
                Ok(worktree) => worktree.prepare().await,
            };
            let cwd = match started {
                Ok(cwd) => cwd,
                Err(error) => {
                    warn!(execution_id = %key.execution_id, %error, "no worktree for the run");
                    let outcome = Outcome::failed(format!("FAILED_PRECONDITION: {error}"));
                    let _ = events
                        .send(RunEvent {
                            key,
                            kind: RunEventKind::Ended(outcome),
                        })
                        .await;
                    return;
                }
            };
            // Prepared again for the worktree: an agent protocol may carry
            // the directory (Codex's `cwd`), not only the process.
            let mut assign = original;
            assign.working_dir = cwd.to_string_lossy().into_owned();
            let prepared = match prepare(&assign, &agents) {
                Ok(prepared) => prepared,
                Err(error) => {
                    let _ = events
                        .send(RunEvent {
                            key,
                            kind: RunEventKind::Ended(Outcome::failed(error)),
                        })
                        .await;
                    return;
                }
            };
            // The run's events pass through here: its summary goes just
            // before its end.
            let (tx, mut rx) = tokio::sync::mpsc::channel(64);
            launcher.launch(
                prepared,
                RunChannels {
                    events: tx,
                    ..channels
                },
            );
            while let Some(event) = rx.recv().await {
                if matches!(event.kind, RunEventKind::Ended(_)) {
                    match worktree::summarize(&cwd, &scratch).await {
                        Ok(summary) => {
                            let _ = events
                                .send(RunEvent {
                                    key: event.key.clone(),
                                    kind: RunEventKind::Worktree(Box::new(summary)),
                                })
                                .await;
                        }
                        Err(error) => {
                            warn!(execution_id = %key.execution_id, %error,
                                  "summarizing the run's worktree failed")
                        }
                    }
                }
                if events.send(event).await.is_err() {
                    return;
                }
            }
        });
    }

    /// Removes the worktrees of tasks the server says are gone: keeping
    /// their branches, and any worktree with uncommitted changes.
    fn clean_gone_worktrees(&self, registered: &Registered) {
        for task_id in &registered.gone_worktree_task_ids {
            let Ok(path) = worktree::task_path(&self.data_dir, task_id) else {
                continue;
            };
            let task_id = task_id.clone();
            tokio::spawn(async move {
                match worktree::finish(&path, &path, "", false, false).await {
                    Ok(_) => info!(%task_id, path = %path.display(),
                                   "removed the worktree of a deleted task (its branch is kept)"),
                    Err(error) => warn!(%task_id, %error,
                                        "kept the worktree of a deleted task"),
                }
            });
        }
    }

    fn launch(&self, run: NewRun) {
        let NewRun {
            key,
            prepared,
            control,
        } = run;
        let channels = RunChannels {
            key,
            events: self.events_tx.clone(),
            control,
            config: self.config_tx.subscribe(),
        };
        self.launcher.launch(prepared, channels);
    }

    fn apply_config(&mut self, config: &WorkerConfig) {
        let new = RuntimeConfig::from_proto(config);
        if new == *self.config_tx.borrow() {
            return;
        }
        info!(?new, "worker config");
        self.ledger.set_config(new);
        self.config_tx.send_replace(new);
        keeper::set_grace(new.cancel_grace);
        self.link.set_heartbeat_period(new.heartbeat_interval);
    }

    /// Leaves: the ledger lets go of the stream (the request stream ends
    /// once every sender is dropped), and the link closes it.
    async fn close(&mut self) {
        self.ledger.link_down();
        self.link.close().await;
    }
}

/// Does what the server asks of a worktree and answers on the stream it
/// came on.
async fn answer_worktree_request(
    asked: WorktreeRequest,
    data_dir: PathBuf,
    outbound: crate::transport::Outbound,
) {
    let WorktreeRequest { request_id, action } = asked;
    let mut result = WorktreeResult {
        request_id,
        ..Default::default()
    };
    let outcome = match action {
        Some(worktree_request::Action::Diff(diff)) => worktree::diff(
            std::path::Path::new(&diff.repository),
            &diff.base_commit,
            &diff.snapshot_tree,
            u64::try_from(diff.max_bytes).unwrap_or(0),
        )
        .await
        .map(|(bytes, truncated)| {
            result.diff = bytes;
            result.truncated = truncated;
        }),
        Some(worktree_request::Action::Finish(finish)) => {
            match worktree::task_path(&data_dir, &finish.task_id) {
                Err(e) => Err(e),
                Ok(path) => worktree::finish(
                    &path,
                    std::path::Path::new(&finish.repository),
                    &finish.branch,
                    finish.remove_branch,
                    finish.force,
                )
                .await
                .map(|done| {
                    result.worktree_removed = done.worktree_removed;
                    result.branch_removed = done.branch_removed;
                }),
            }
        }
        None => Err("the request says nothing to do".to_string()),
    };
    if let Err(error) = outcome {
        result = WorktreeResult {
            request_id: result.request_id,
            error,
            ..Default::default()
        };
    }
    let _ = outbound.send(request(connect_request::Message::WorktreeResult(result)));
}
