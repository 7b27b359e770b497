//! Spawning and supervising one child.
//!
//! - The child runs in its own process group (`process_group(0)`: its pgid
//!   is its pid), so stopping a run reaches everything it started, and a
//!   Ctrl-C at the worker's terminal does not hit it.
//! - stdin is `/dev/null`; stdout and stderr are the SAME pipe (one write
//!   end, duplicated), so the log keeps the exact interleaving the child
//!   wrote.
//! - The environment is exactly the spec's (see [`crate::env`]); `argv[0]`
//!   is resolved with the worker's PATH and the child still sees the
//!   original `argv[0]`.
//! - Stopping (timeout, cancel, drain timeout): SIGTERM to the group, SIGKILL
//!   to the group after the cancel grace if the child has not exited.
//! - End: when the child has exited AND its output pipe is at EOF. A
//!   grandchild that keeps the pipe open does not hold the run: after the
//!   child exits we wait [`EXIT_GRACE`] for EOF, then SIGKILL the group, wait
//!   [`EXIT_GRACE`] more, then stop reading. Whatever is left of the group
//!   when the run ends is SIGKILLed: a run leaves no processes behind (bar
//!   those that left its process group).

use std::collections::BTreeSet;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};
use tracing::{debug, info, warn};

use super::{Control, Outcome, ProcessSpec, RunEvent, RunEventKind, RunKey, StopReason};
use crate::config::RuntimeConfig;
use crate::env::resolve_binary;

/// How long output may keep flowing after the child exited, before the rest
/// of its group is killed (and again after that, before we stop reading).
pub(crate) const EXIT_GRACE: Duration = Duration::from_millis(500);

/// Read buffer: one read forwards whatever the pipe holds, up to this.
const READ_BUFFER: usize = 64 * 1024;

/// Runs `spec` to the end, reporting `Started`, `Output`s and `Ended` on
/// `events`. Never panics on a bad spec: failures become `Ended(FAILED)`.
pub(crate) async fn supervise(
    key: RunKey,
    spec: ProcessSpec,
    events: mpsc::Sender<RunEvent>,
    control: mpsc::UnboundedReceiver<Control>,
    config: watch::Receiver<RuntimeConfig>,
) {
    let report = |kind| RunEvent {
        key: key.clone(),
        kind,
    };
    let outcome = match spawn(&spec) {
        Err(error) => {
            info!(execution_id = %key.execution_id, %error, "run could not start");
            Outcome::failed(error)
        }
        Ok((child, reader)) => {
            let pid = child.id().unwrap_or_default();
            info!(execution_id = %key.execution_id, pid, argv = ?spec.argv, "run started");
            if events
                .send(report(RunEventKind::Started {
                    pid,
                    tmux_session: None,
                }))
                .await
                .is_err()
            {
                kill_group(pid, Signal::SIGKILL);
                return;
            }
            let supervisor = Supervisor {
                key: &key,
                pid,
                events: &events,
                config,
            };
            match supervisor.pump(child, reader, control, spec.timeout).await {
                Some(outcome) => outcome,
                None => return, // the worker is gone
            }
        }
    };
    debug!(execution_id = %key.execution_id, ?outcome, "run ended");
    let _ = events.send(report(RunEventKind::Ended(outcome))).await;
}

/// Checks the working directory, resolves the binary, spawns the child.
fn spawn(spec: &ProcessSpec) -> Result<(tokio::process::Child, pipe::Receiver), String> {
    let cwd = working_dir(spec.working_dir.as_deref())?;
    let argv0 = spec
        .argv
        .first()
        .ok_or_else(|| "the assignment has an empty argv".to_string())?;
    let binary = resolve_binary(argv0, std::env::var_os("PATH").as_deref(), &cwd)?;

    let (reader, writer) = io::pipe().map_err(|e| format!("creating the output pipe: {e}"))?;
    let writer2 = writer
        .try_clone()
        .map_err(|e| format!("creating the output pipe: {e}"))?;
    let mut command = tokio::process::Command::new(&binary);
    command
        .arg0(argv0)
        .args(&spec.argv[1..])
        .env_clear()
        .envs(&spec.env)
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::from(writer2))
        .process_group(0)
        .kill_on_drop(false);
    if let Some(dir) = &spec.working_dir {
        command.current_dir(dir);
    }
    let child = command
        .spawn()
        .map_err(|e| format!("failed to start {}: {e}", binary.display()));
    // Close our copies of the write end now, or the pipe never reaches EOF.
    drop(command);
    let child = child?;
    let reader = pipe::Receiver::from_owned_fd(OwnedFd::from(reader)).map_err(|e| {
        if let Some(pid) = child.id() {
            kill_group(pid, Signal::SIGKILL);
        }
        format!("reading the output pipe: {e}")
    })?;
    Ok((child, reader))
}

/// The run's working directory: `dir`, which must be a directory, or the
/// worker's own. The error is the run's one-line error.
pub(crate) fn working_dir(dir: Option<&std::path::Path>) -> Result<PathBuf, String> {
    let Some(dir) = dir else {
        return Ok(std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")));
    };
    let meta =
        std::fs::metadata(dir).map_err(|e| format!("working directory {}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!(
            "working directory {}: not a directory",
            dir.display()
        ));
    }
    Ok(dir.to_path_buf())
}

/// Process groups of the children alive now, for [`kill_all_groups`].
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
pub(crate) struct GroupGuard(u32);

impl GroupGuard {
    pub(crate) fn new(pgid: u32) -> Self {
        LIVE_GROUPS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(pgid);
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

/// Waits until `at`, or forever when `None`.
pub(crate) async fn sleep_opt(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

struct Supervisor<'a> {
    key: &'a RunKey,
    pid: u32,
    events: &'a mpsc::Sender<RunEvent>,
    config: watch::Receiver<RuntimeConfig>,
}

impl Supervisor<'_> {
    /// Forwards output, handles the timeout and stop orders, until the
    /// child exited and the pipe is done. `None`: the worker went away (the
    /// group was killed).
    async fn pump(
        &self,
        mut child: tokio::process::Child,
        mut reader: pipe::Receiver,
        mut control: mpsc::UnboundedReceiver<Control>,
        timeout: Option<Duration>,
    ) -> Option<Outcome> {
        let group = GroupGuard::new(self.pid);
        let started = Instant::now();
        let timeout_at = timeout.map(|t| started + t);
        let mut buf = vec![0u8; READ_BUFFER];
        let mut reading = true;
        let mut exit: Option<std::process::ExitStatus> = None;
        // Set while stopping, before the child exited.
        let mut stop: Option<StopReason> = None;
        let mut sigkill_at: Option<Instant> = None;
        // After the exit: when to kill the rest of the group / give up on EOF.
        let mut after_exit_at: Option<Instant> = None;
        let mut group_killed = false;

        while exit.is_none() || reading {
            tokio::select! {
                biased;
                read = reader.read(&mut buf), if reading => match read {
                    Ok(0) => reading = false,
                    Ok(n) => {
                        let event = RunEvent {
                            key: self.key.clone(),
                            kind: RunEventKind::Output(buf[..n].to_vec()),
                        };
                        if self.events.send(event).await.is_err() {
                            kill_group(self.pid, Signal::SIGKILL);
                            return None;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        warn!(execution_id = %self.key.execution_id, error = %e,
                              "reading the run's output failed; the rest is lost");
                        reading = false;
                    }
                },
                status = child.wait(), if exit.is_none() => {
                    match status {
                        Ok(status) => exit = Some(status),
                        Err(e) => {
                            warn!(execution_id = %self.key.execution_id, error = %e,
                                  "waiting for the child failed");
                            kill_group(self.pid, Signal::SIGKILL);
                            return Some(Outcome::failed(format!("waiting for the child: {e}")));
                        }
                    }
                    after_exit_at = Some(Instant::now() + EXIT_GRACE);
                }
                order = control.recv() => match order {
                    Some(Control::Stop(reason)) => {
                        if exit.is_none() && stop.is_none() {
                            self.begin_stop(&reason, &mut sigkill_at);
                            stop = Some(reason);
                        }
                    }
                    Some(Control::Abandon) => {
                        kill_group(self.pid, Signal::SIGKILL);
                        group_killed = true;
                        if exit.is_none() {
                            stop.get_or_insert(StopReason::Cancelled("superseded".into()));
                        }
                    }
                    None => {
                        // The worker is gone: leave nothing running.
                        kill_group(self.pid, Signal::SIGKILL);
                        return None;
                    }
                },
                _ = sleep_opt(timeout_at), if exit.is_none() && stop.is_none() => {
                    let reason = StopReason::TimedOut(timeout.unwrap_or_default());
                    self.begin_stop(&reason, &mut sigkill_at);
                    stop = Some(reason);
                }
                _ = sleep_opt(sigkill_at), if exit.is_none() => {
                    info!(execution_id = %self.key.execution_id, pgid = self.pid,
                          "grace period over: SIGKILL to the process group");
                    kill_group(self.pid, Signal::SIGKILL);
                    sigkill_at = None;
                }
                _ = sleep_opt(after_exit_at), if exit.is_some() && reading => {
                    if !group_killed {
                        debug!(execution_id = %self.key.execution_id,
                               "child exited but its output pipe is still open: killing its group");
                        kill_group(self.pid, Signal::SIGKILL);
                        group_killed = true;
                        after_exit_at = Some(Instant::now() + EXIT_GRACE);
                    } else {
                        warn!(execution_id = %self.key.execution_id,
                              "output pipe still open after the group was killed; \
                               a process outside the group holds it: no more output read");
                        reading = false;
                    }
                }
            }
        }
        // Nothing of the run outlives it.
        drop(group);
        let status = exit.expect("loop ends after the exit");
        Some(Outcome::from_exit(
            status.code(),
            status.signal(),
            stop.as_ref(),
        ))
    }

    fn begin_stop(&self, reason: &StopReason, sigkill_at: &mut Option<Instant>) {
        let grace = self.config.borrow().cancel_grace;
        info!(execution_id = %self.key.execution_id, pgid = self.pid, ?reason,
              grace = ?grace, "stopping the run: SIGTERM to the process group");
        kill_group(self.pid, Signal::SIGTERM);
        *sigkill_at = Some(Instant::now() + grace);
    }
}
