//! One run's lifecycle, whatever kind of run it is: a plain child
//! ([`super::process`]) or an AI agent in its tmux pane
//! ([`super::agent::supervise`]). Both follow a process group through the
//! same steps, so a change to how runs are timed out, stopped or killed is
//! made here, once, for every kind:
//!
//! - **Start**: the kind starts its process (or fails: the run fails with
//!   that one-line error), `Started` is reported, and a [`GroupGuard`] holds
//!   the process group until the run ends, however it ends.
//! - **Stopping** (the run's timeout, [`Control::Stop`]): SIGTERM to the
//!   group, SIGKILL after the cancel grace, read live from the
//!   [`RuntimeConfig`] watch. [`Control::Abandon`]: SIGKILL at once. The
//!   worker going away (its channels close): SIGKILL, nothing more reported.
//! - **Settling**: a kind may decide the run's result before its process
//!   exits (an agent protocol's end of turn, [`Lifecycle::settle`]); no
//!   timeout or stop applies from then on, and the process is asked to end
//!   ([`Lifecycle::terminate`], [`Lifecycle::terminate_after_grace`]).
//! - **End**: when the process has exited AND its output is at EOF. A
//!   grandchild that keeps the output open does not hold the run: after the
//!   exit we wait [`EXIT_GRACE`] for EOF, then SIGKILL the group (and the
//!   kind removes its leftovers, e.g. the tmux session), wait [`EXIT_GRACE`]
//!   more, then stop reading. Whatever is left of the group is SIGKILLed, the
//!   kind works out the [`Outcome`], and `Ended` is reported last.
//!
//! What differs per kind (how output is read, how the exit is learnt, how
//! the result is decided, the tmux session) is a [`Supervised`].

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::{Control, Outcome, RunEvent, RunEventKind, RunKey, StopReason};
use crate::config::RuntimeConfig;
use crate::timer::sleep_opt;

/// How long output may keep flowing after the process exited, before the
/// rest of its group is killed (and again after that, before we stop
/// reading).
pub(crate) const EXIT_GRACE: Duration = Duration::from_millis(500);

/// What ties a run's supervisor to the worker.
pub(crate) struct RunChannels {
    pub key: RunKey,
    /// Where the run reports, in order (bounded: a flood of output waits
    /// for the worker).
    pub events: mpsc::Sender<RunEvent>,
    /// The worker's orders; closed when the worker is gone.
    pub control: mpsc::UnboundedReceiver<Control>,
    /// Live tuning: the cancel grace is read from here when it is needed.
    pub config: watch::Receiver<RuntimeConfig>,
}

/// The worker went away (its end of the events or control channel closed):
/// the run's group is killed and nothing more is reported.
#[derive(Debug)]
pub(crate) struct WorkerGone;

/// What a run's process did, as its kind saw it ([`Supervised::next`]).
#[derive(Debug)]
pub(crate) enum Seen {
    /// It wrote these bytes (stdout and stderr, in order).
    Output(Vec<u8>),
    /// Its output is at EOF (or unreadable: the kind logged why).
    OutputEnd,
    /// It exited (the kind keeps how, for [`Supervised::conclude`]).
    Exited,
    /// It can no longer be followed: the group is killed and the run fails
    /// with this error.
    Lost(String),
}

/// A run whose process is up: its process group (its pgid is `pid`) and
/// the kind's part.
pub(crate) struct Started<S> {
    pub pid: u32,
    /// For AI agents: the tmux session it runs in.
    pub tmux_session: Option<String>,
    pub run: S,
}

/// The part of a run that depends on its kind, plugged into the lifecycle.
/// Only [`next`](Self::next) and [`conclude`](Self::conclude) are needed;
/// the rest is for kinds that decide their own result (AI agents).
pub(crate) trait Supervised: Sized {
    /// Waits for the next thing the process does: output (while `output`),
    /// its exit (while `exit`). Cancel-safe: the lifecycle may drop it for
    /// a stop order or a timer.
    async fn next(&mut self, output: bool, exit: bool) -> Seen;

    /// The output `next` returned last was reported (a protocol reads it
    /// now, after the log has it).
    fn after_output(&mut self) {}

    /// When the kind wants [`on_deadline`](Self::on_deadline) called; only
    /// asked while nobody has decided how the run ends.
    fn deadline(&self) -> Option<Instant> {
        None
    }

    fn on_deadline(&mut self) {}

    /// Carries out what the kind decided since it was last asked (an agent
    /// protocol's actions): called once before anything happens and after
    /// everything that happens, never cut short by a stop order or a timer.
    async fn act(&mut self, _life: &mut Lifecycle<'_>) -> Result<(), WorkerGone> {
        Ok(())
    }

    /// The process exited but its output is still open, and its group was
    /// just killed: remove whatever else may hold the output.
    async fn kill_leftovers(&mut self) {}

    /// The run is over (its group killed): clean up and say how it ended.
    /// Whatever the kind holds is released before `Ended` is reported.
    async fn conclude(self, life: &Lifecycle<'_>) -> Outcome;

    /// The run ends without an outcome to work out (the worker is gone, or
    /// the process was lost): clean up.
    async fn release(self) {}
}

impl RunChannels {
    /// Runs one run to its end: `start` starts the process (its error is the
    /// run's one-line error), then the lifecycle follows it. Reports
    /// `Started`, the output, and `Ended` last; nothing once the worker is
    /// gone. Never panics on a bad run: failures become `Ended(FAILED)`.
    pub(crate) async fn supervise<S: Supervised>(
        self,
        timeout: Option<Duration>,
        start: impl Future<Output = Result<Started<S>, String>>,
    ) {
        let RunChannels {
            key,
            events,
            control,
            config,
        } = self;
        let reporter = Reporter { key, events };
        let outcome = match start.await {
            Err(error) => Outcome::failed(error),
            Ok(Started {
                pid,
                tmux_session,
                mut run,
            }) => {
                // From here on, nothing of the run outlives it.
                let group = GroupGuard::new(pid);
                let started = RunEventKind::Started { pid, tmux_session };
                if reporter.send(started).await.is_err() {
                    drop(group);
                    run.release().await;
                    return;
                }
                let mut life = Lifecycle {
                    reporter: &reporter,
                    config,
                    pid,
                    timeout,
                    timeout_at: timeout.map(|t| Instant::now() + t),
                    stop: None,
                    settled: false,
                    term_at: None,
                    sigkill_at: None,
                    after_exit_at: None,
                    group_killed: false,
                    exited: false,
                    reading: true,
                };
                let followed = life.follow(&mut run, control).await;
                drop(group);
                match followed {
                    Ok(Ok(())) => run.conclude(&life).await,
                    Ok(Err(error)) => {
                        run.release().await;
                        Outcome::failed(error)
                    }
                    Err(WorkerGone) => {
                        run.release().await;
                        return;
                    }
                }
            }
        };
        debug!(execution_id = %reporter.key.execution_id, ?outcome, "run ended");
        let _ = reporter.send(RunEventKind::Ended(outcome)).await;
    }
}

/// Reports a run's events to the worker.
struct Reporter {
    key: RunKey,
    events: mpsc::Sender<RunEvent>,
}

impl Reporter {
    async fn send(&self, kind: RunEventKind) -> Result<(), WorkerGone> {
        let event = RunEvent {
            key: self.key.clone(),
            kind,
        };
        self.events.send(event).await.map_err(|_| WorkerGone)
    }
}

/// A started run's process group, its timers and how it is ending; what a
/// [`Supervised`] may ask of it.
pub(crate) struct Lifecycle<'a> {
    reporter: &'a Reporter,
    config: watch::Receiver<RuntimeConfig>,
    /// The process group (its leader's pid).
    pid: u32,
    timeout: Option<Duration>,
    timeout_at: Option<Instant>,
    /// Set while stopping (stop order or timeout), before the exit.
    stop: Option<StopReason>,
    /// The kind decided the result ([`Self::settle`]).
    settled: bool,
    /// SIGTERM the group: a settled run's process that did not end.
    term_at: Option<Instant>,
    sigkill_at: Option<Instant>,
    /// After the exit: when to kill the rest of the group / give up on EOF.
    after_exit_at: Option<Instant>,
    group_killed: bool,
    exited: bool,
    reading: bool,
}

impl Lifecycle<'_> {
    pub(crate) fn key(&self) -> &RunKey {
        &self.reporter.key
    }

    /// Reports an event of the run (the agent's session id).
    pub(crate) async fn report(&self, kind: RunEventKind) -> Result<(), WorkerGone> {
        self.reporter.send(kind).await
    }

    /// Why the run was stopped, if it was stopped before it exited.
    pub(crate) fn stop_reason(&self) -> Option<&StopReason> {
        self.stop.as_ref()
    }

    /// The kind has decided the run's result: no timeout or stop order
    /// applies from now on. False (and nothing changes) when the run is
    /// already being stopped or was settled before.
    pub(crate) fn settle(&mut self) -> bool {
        if self.stop.is_some() || self.settled {
            return false;
        }
        self.settled = true;
        true
    }

    /// SIGTERM to the group now, SIGKILL after the grace.
    pub(crate) fn terminate(&mut self) {
        kill_group(self.pid, Signal::SIGTERM);
        self.term_at = None;
        self.sigkill_at = Some(Instant::now() + self.grace());
    }

    /// Lets the process end by itself within the grace; then
    /// [`terminate`](Self::terminate).
    pub(crate) fn terminate_after_grace(&mut self) {
        self.term_at = Some(Instant::now() + self.grace());
    }

    fn grace(&self) -> Duration {
        self.config.borrow().cancel_grace
    }

    /// Nobody has decided yet how the run ends: its timeout, stop orders and
    /// the kind's own deadline apply.
    fn undecided(&self) -> bool {
        !self.exited && self.stop.is_none() && !self.settled
    }

    fn begin_stop(&mut self, reason: StopReason) {
        info!(execution_id = %self.key().execution_id, pgid = self.pid, ?reason,
              grace = ?self.grace(), "stopping the run: SIGTERM to the process group");
        self.terminate();
        self.stop = Some(reason);
    }

    /// Forwards output, handles the timeout, stop orders and the kind's
    /// decisions, until the process exited and its output is done.
    /// `Ok(Err)`: the process was lost.
    async fn follow<S: Supervised>(
        &mut self,
        run: &mut S,
        mut control: mpsc::UnboundedReceiver<Control>,
    ) -> Result<Result<(), String>, WorkerGone> {
        run.act(self).await?;
        while !self.exited || self.reading {
            let own_due = if self.undecided() {
                run.deadline()
            } else {
                None
            };
            tokio::select! {
                biased;
                seen = run.next(self.reading, !self.exited) => match seen {
                    Seen::Output(data) => {
                        self.report(RunEventKind::Output(data)).await?;
                        run.after_output();
                    }
                    Seen::OutputEnd => self.reading = false,
                    Seen::Exited => {
                        self.exited = true;
                        self.after_exit_at = Some(Instant::now() + EXIT_GRACE);
                    }
                    Seen::Lost(error) => return Ok(Err(error)),
                },
                order = control.recv() => match order {
                    Some(Control::Stop(reason)) => {
                        if self.undecided() {
                            self.begin_stop(reason);
                        }
                    }
                    Some(Control::Abandon) => {
                        kill_group(self.pid, Signal::SIGKILL);
                        self.group_killed = true;
                        if !self.exited && !self.settled {
                            self.stop.get_or_insert(StopReason::Cancelled("superseded".into()));
                        }
                    }
                    // The worker is gone: leave nothing running (the
                    // caller's guard kills the group).
                    None => return Err(WorkerGone),
                },
                _ = sleep_opt(self.timeout_at), if self.undecided() => {
                    self.begin_stop(StopReason::TimedOut(self.timeout.unwrap_or_default()));
                }
                _ = sleep_opt(own_due), if own_due.is_some() => run.on_deadline(),
                _ = sleep_opt(self.term_at), if !self.exited && self.term_at.is_some() => {
                    info!(execution_id = %self.key().execution_id,
                          "the process did not exit after its turn: SIGTERM");
                    self.terminate();
                }
                _ = sleep_opt(self.sigkill_at), if !self.exited && self.sigkill_at.is_some() => {
                    info!(execution_id = %self.key().execution_id, pgid = self.pid,
                          "grace period over: SIGKILL to the process group");
                    kill_group(self.pid, Signal::SIGKILL);
                    self.sigkill_at = None;
                }
                _ = sleep_opt(self.after_exit_at), if self.exited && self.reading => {
                    if !self.group_killed {
                        debug!(execution_id = %self.key().execution_id,
                               "the process exited but its output is still open: killing its group");
                        kill_group(self.pid, Signal::SIGKILL);
                        self.group_killed = true;
                        run.kill_leftovers().await;
                        self.after_exit_at = Some(Instant::now() + EXIT_GRACE);
                    } else {
                        warn!(execution_id = %self.key().execution_id,
                              "output still open after the group was killed; a process \
                               outside the group holds it: no more output read");
                        self.reading = false;
                    }
                }
            }
            run.act(self).await?;
        }
        Ok(Ok(()))
    }
}

/// Process groups of the runs alive now, for [`kill_all_groups`].
static LIVE_GROUPS: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

/// SIGKILLs every run's process group (a hard exit leaves nothing behind).
pub(crate) fn kill_all_groups() {
    let groups = LIVE_GROUPS.lock().unwrap_or_else(|e| e.into_inner());
    for &pgid in groups.iter() {
        kill_group(pgid, Signal::SIGKILL);
    }
}

/// Holds a run's process group: listed in [`LIVE_GROUPS`] while it lives,
/// SIGKILLed when dropped, whatever ends the supervision (the run's end, the
/// worker going away, the runtime shutting down).
struct GroupGuard(u32);

impl GroupGuard {
    fn new(pgid: u32) -> Self {
        LIVE_GROUPS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(pgid);
        super::keeper::watch(pgid);
        Self(pgid)
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        kill_group(self.0, Signal::SIGKILL);
        LIVE_GROUPS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.0);
        super::keeper::unwatch(self.0);
    }
}

/// SIGNALs the run's process group; a group that is already gone is fine.
pub(crate) fn kill_group(pgid: u32, signal: Signal) {
    let Ok(raw) = i32::try_from(pgid) else { return };
    if raw <= 1 {
        return; // never signal "every process" or init's group
    }
    match killpg(Pid::from_raw(raw), signal) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => warn!(pgid, %signal, error = %e, "signalling the process group failed"),
    }
}
