//! Running one AI agent turn: a tmux session whose pane runs the agent
//! through the pane runner ([`crate::run::pane`]), its output captured byte
//! for byte, its protocol driven by an [`AgentProtocol`].
//!
//! Stopping works as for template runs, on the pane's process group
//! (SIGTERM, SIGKILL after the cancel grace). When the protocol finishes the
//! turn, a pipe-mode agent gets EOF on stdin (and SIGTERM if it lingers past
//! the grace), a terminal-mode agent SIGTERM. Whatever ends the run, its tmux
//! session and run directory are removed.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use nix::sys::signal::Signal;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::UnixListener;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, timeout};
use tracing::{debug, info, warn};

use super::discovery::{Discovery, RunContext};
use super::{Action, AgentProtocol, Exit, LineSplitter, Verdict};
use crate::config::RuntimeConfig;
use crate::env::resolve_binary;
use crate::run::pane::{
    CTL_SOCKET, IO_SOCKET, PANE_PIPE, PANE_RUN, PaneSpec, SPEC_FILE, StdioMode,
};
use crate::run::process::{EXIT_GRACE, GroupGuard, kill_group, sleep_opt, working_dir};
use crate::run::tmux::{Tmux, shell_quote};
use crate::run::{Control, Outcome, ProcessSpec, RunEvent, RunEventKind, RunKey, StopReason};

/// Longest wait for each step of starting the tmux session.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest protocol line parsed (longer ones are only logged).
const MAX_LINE: usize = 16 * 1024 * 1024;

/// A settings file the agent is pointed at through an environment variable
/// (Gemini's MCP servers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SettingsFile {
    pub env_var: String,
    pub file_name: String,
    pub contents: String,
}

/// Everything to run one agent turn.
pub(crate) struct AgentRun {
    /// argv (binary, base args, resume and MCP flags), cwd, env, timeout.
    pub spec: ProcessSpec,
    pub session_name: String,
    pub protocol: Box<dyn AgentProtocol>,
    pub discovery: Option<Discovery>,
    pub settings: Option<SettingsFile>,
}

/// What the worker lends every agent run.
#[derive(Clone, Debug)]
pub(crate) struct AgentHost {
    pub tmux: Tmux,
    /// Executable with the pane subcommands (the worker's own).
    pub exe: PathBuf,
}

/// How the pane runner said the agent ended.
#[derive(Debug)]
enum PaneExit {
    Exited(Exit),
    /// The agent could not be started.
    Error(String),
}

/// Runs `run` to the end, reporting like [`crate::run::process::supervise`]
/// plus the tmux session and the session id.
pub(crate) async fn supervise_agent(
    key: RunKey,
    mut run: AgentRun,
    host: AgentHost,
    events: mpsc::Sender<RunEvent>,
    control: mpsc::UnboundedReceiver<Control>,
    config: watch::Receiver<RuntimeConfig>,
) {
    let report = |kind| RunEvent {
        key: key.clone(),
        kind,
    };
    let name = run.session_name.clone();
    let outcome = match Prepared::new(&run) {
        Err(error) => Outcome::failed(error),
        Ok(prepared) => {
            let before = match &run.discovery {
                Some(discovery) => discovery.snapshot(&prepared.context()).await,
                None => Vec::new(),
            };
            let started_at = SystemTime::now();
            match start(&run, &host, &prepared).await {
                Err(error) => {
                    info!(execution_id = %key.execution_id, %error, "agent could not start");
                    host.tmux.kill_session(&name).await;
                    Outcome::failed(error)
                }
                Ok(wiring) => {
                    info!(execution_id = %key.execution_id, pid = wiring.pid, session = %name,
                          attach = %format!("tmux -L {} attach -t {name}", host.tmux.label()),
                          argv = ?run.spec.argv, "agent started");
                    if events
                        .send(report(RunEventKind::Started {
                            pid: wiring.pid,
                            tmux_session: Some(name.clone()),
                        }))
                        .await
                        .is_err()
                    {
                        kill_group(wiring.pid, Signal::SIGKILL);
                        host.tmux.kill_session(&name).await;
                        return;
                    }
                    let mut pump = Pump {
                        key: &key,
                        name: &name,
                        tmux: &host.tmux,
                        events: &events,
                        config,
                        protocol: run.protocol.as_mut(),
                        session_reported: false,
                    };
                    let outcome = pump.run(wiring, control, run.spec.timeout).await;
                    host.tmux.kill_session(&name).await;
                    let Some((outcome, session_reported)) = outcome else {
                        return; // the worker is gone
                    };
                    if !session_reported && let Some(discovery) = &run.discovery {
                        let mut ctx = prepared.context();
                        ctx.started = started_at;
                        match discovery.find(&ctx, &before).await {
                            Ok(id) => {
                                let _ = events.send(report(RunEventKind::Session(id))).await;
                            }
                            Err(e) => {
                                warn!(execution_id = %key.execution_id, error = %e,
                                      "the agent's session id was not found")
                            }
                        }
                    }
                    outcome
                }
            }
        }
    };
    debug!(execution_id = %key.execution_id, ?outcome, "agent run ended");
    let _ = events.send(report(RunEventKind::Ended(outcome))).await;
}

/// The run directory, resolved binary, cwd and environment.
struct Prepared {
    dir: tempfile::TempDir,
    binary: PathBuf,
    cwd: PathBuf,
    env: BTreeMap<OsString, OsString>,
    mode: StdioMode,
}

impl Prepared {
    fn new(run: &AgentRun) -> Result<Self, String> {
        let cwd = working_dir(run.spec.working_dir.as_deref())?;
        let argv0 = run
            .spec
            .argv
            .first()
            .ok_or_else(|| "the assignment has an empty argv".to_string())?;
        let binary = resolve_binary(argv0, std::env::var_os("PATH").as_deref(), &cwd)?;
        let mode = run.protocol.stdio();
        let mut env = run.spec.env.clone();
        if mode == StdioMode::Terminal {
            // A terminal program needs to know its terminal.
            env.entry("TERM".into())
                .or_insert_with(|| "xterm-256color".into());
        }
        // 0700, removed when dropped.
        let dir = tempfile::Builder::new()
            .prefix("amon-run-")
            .tempdir()
            .map_err(|e| format!("creating the run directory: {e}"))?;
        if let Some(settings) = &run.settings {
            let path = dir.path().join(&settings.file_name);
            write_private(&path, settings.contents.as_bytes())
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
            env.insert(settings.env_var.clone().into(), path.into_os_string());
        }
        Ok(Self {
            dir,
            binary,
            cwd,
            env,
            mode,
        })
    }

    fn context(&self) -> RunContext<'_> {
        RunContext {
            cwd: &self.cwd,
            env: &self.env,
            started: SystemTime::now(),
        }
    }
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    std::io::Write::write_all(&mut file, contents)
}

/// The connections to a started pane runner.
struct Wiring {
    pid: u32,
    ctl_lines: Lines<BufReader<OwnedReadHalf>>,
    _ctl_write: OwnedWriteHalf,
    io_read: OwnedReadHalf,
    io_write: OwnedWriteHalf,
}

async fn start(run: &AgentRun, host: &AgentHost, prepared: &Prepared) -> Result<Wiring, String> {
    let dir = prepared.dir.path();
    let ctl_listener = UnixListener::bind(dir.join(CTL_SOCKET))
        .map_err(|e| format!("creating the control socket: {e}"))?;
    let io_listener = UnixListener::bind(dir.join(IO_SOCKET))
        .map_err(|e| format!("creating the output socket: {e}"))?;
    let spec = PaneSpec {
        argv: run
            .spec
            .argv
            .iter()
            .map(|a| a.as_bytes().to_vec())
            .collect(),
        binary: prepared.binary.clone(),
        cwd: prepared.cwd.clone(),
        env: prepared
            .env
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect(),
        mode: prepared.mode,
    };
    let json = serde_json::to_vec(&spec).map_err(|e| format!("writing the run spec: {e}"))?;
    write_private(&dir.join(SPEC_FILE), &json).map_err(|e| format!("writing the run spec: {e}"))?;

    let name = &run.session_name;
    // A session of that name left by an earlier attempt on this worker.
    host.tmux.kill_session(name).await;
    host.tmux
        .new_session(
            name,
            &prepared.cwd,
            &[host.exe.as_os_str(), PANE_RUN.as_ref(), dir.as_os_str()],
        )
        .await?;
    let (ctl, _) = timeout(SETUP_TIMEOUT, ctl_listener.accept())
        .await
        .map_err(|_| format!("the tmux session {name} did not start its pane runner within 10s"))?
        .map_err(|e| format!("accepting the pane runner: {e}"))?;
    let (ctl_read, mut ctl_write) = ctl.into_split();
    let mut ctl_lines = BufReader::new(ctl_read).lines();
    let hello = timeout(SETUP_TIMEOUT, ctl_lines.next_line())
        .await
        .map_err(|_| "the pane runner did not say hello within 10s".to_string())?
        .map_err(|e| format!("reading the pane runner: {e}"))?
        .unwrap_or_default();
    let pid = hello
        .strip_prefix("pid ")
        .and_then(|p| p.trim().parse::<u32>().ok())
        .ok_or_else(|| format!("the pane runner said {hello:?} instead of its pid"))?;
    if prepared.mode == StdioMode::Terminal {
        let command = format!(
            "exec {} {PANE_PIPE} {}",
            shell_quote(host.exe.as_os_str()),
            shell_quote(dir.as_os_str())
        );
        if let Err(e) = host.tmux.pipe_pane(name, &command).await {
            kill_group(pid, Signal::SIGKILL);
            return Err(e);
        }
    }
    let accepted = timeout(SETUP_TIMEOUT, io_listener.accept()).await;
    let (io, _) = match accepted {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => {
            kill_group(pid, Signal::SIGKILL);
            return Err(format!("accepting the agent's output: {e}"));
        }
        Err(_) => {
            kill_group(pid, Signal::SIGKILL);
            return Err("the agent's output was not connected within 10s".into());
        }
    };
    if let Err(e) = ctl_write.write_all(b"go\n").await {
        kill_group(pid, Signal::SIGKILL);
        return Err(format!("starting the agent: {e}"));
    }
    let (io_read, io_write) = io.into_split();
    Ok(Wiring {
        pid,
        ctl_lines,
        _ctl_write: ctl_write,
        io_read,
        io_write,
    })
}

/// Writes to the agent's stdin off the output path: a slow reader never
/// holds up the capture of its output. `None` closes stdin.
fn stdin_writer(mut write: OwnedWriteHalf) -> mpsc::UnboundedSender<Option<Vec<u8>>> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Option<Vec<u8>>>();
    tokio::spawn(async move {
        while let Some(item) = rx.recv().await {
            match item {
                Some(bytes) => {
                    if let Err(e) = write.write_all(&bytes).await {
                        debug!(error = %e, "the agent's stdin is closed");
                        return;
                    }
                }
                None => break,
            }
        }
        let _ = write.shutdown().await;
    });
    tx
}

struct Pump<'a> {
    key: &'a RunKey,
    name: &'a str,
    tmux: &'a Tmux,
    events: &'a mpsc::Sender<RunEvent>,
    config: watch::Receiver<RuntimeConfig>,
    protocol: &'a mut dyn AgentProtocol,
    session_reported: bool,
}

/// Timers and verdicts of a pump.
#[derive(Default)]
struct Ending {
    stop: Option<StopReason>,
    verdict: Option<Verdict>,
    /// SIGTERM the group (a finished pipe-mode agent that did not exit).
    term_at: Option<Instant>,
    sigkill_at: Option<Instant>,
}

impl Pump<'_> {
    async fn run(
        &mut self,
        wiring: Wiring,
        mut control: mpsc::UnboundedReceiver<Control>,
        timeout: Option<Duration>,
    ) -> Option<(Outcome, bool)> {
        let Wiring {
            pid,
            mut ctl_lines,
            _ctl_write,
            mut io_read,
            io_write,
        } = wiring;
        let group = GroupGuard::new(pid);
        let mode = self.protocol.stdio();
        let stdin = match mode {
            StdioMode::Pipes => Some(stdin_writer(io_write)),
            StdioMode::Terminal => {
                drop(io_write);
                None
            }
        };
        let timeout_at = timeout.map(|t| Instant::now() + t);
        let mut end = Ending::default();
        let mut lines = LineSplitter::new(MAX_LINE);
        let mut buf = vec![0u8; 64 * 1024];
        let mut io_open = true;
        let mut ctl_open = true;
        let mut exit: Option<PaneExit> = None;
        let mut after_exit_at: Option<Instant> = None;
        let mut group_killed = false;

        let actions = self.protocol.start(Instant::now());
        if !self.apply(actions, pid, &stdin, &mut end).await {
            return None;
        }
        while ctl_open || io_open {
            let protocol_due = match (&end.stop, &end.verdict, ctl_open) {
                (None, None, true) => self.protocol.deadline(),
                _ => None,
            };
            let mut actions = Vec::new();
            tokio::select! {
                biased;
                read = io_read.read(&mut buf), if io_open => match read {
                    Ok(0) | Err(_) => {
                        io_open = false;
                        if mode == StdioMode::Pipes {
                            let protocol = &mut *self.protocol;
                            lines.finish(|line| actions.extend(protocol.on_line(line)));
                        }
                    }
                    Ok(n) => {
                        let event = RunEvent {
                            key: self.key.clone(),
                            kind: RunEventKind::Output(buf[..n].to_vec()),
                        };
                        if self.events.send(event).await.is_err() {
                            kill_group(pid, Signal::SIGKILL);
                            return None;
                        }
                        match mode {
                            StdioMode::Pipes => {
                                let protocol = &mut *self.protocol;
                                lines.push(&buf[..n], |line| actions.extend(protocol.on_line(line)));
                            }
                            StdioMode::Terminal => self.protocol.on_output(Instant::now()),
                        }
                    }
                },
                line = ctl_lines.next_line(), if ctl_open => match line {
                    Ok(Some(line)) => exit = parse_status(&line).or(exit),
                    Ok(None) | Err(_) => {
                        ctl_open = false;
                        after_exit_at = Some(Instant::now() + EXIT_GRACE);
                    }
                },
                order = control.recv() => match order {
                    Some(Control::Stop(reason)) => {
                        if ctl_open && end.stop.is_none() && end.verdict.is_none() {
                            self.begin_stop(pid, &reason, &mut end);
                            end.stop = Some(reason);
                        }
                    }
                    Some(Control::Abandon) => {
                        kill_group(pid, Signal::SIGKILL);
                        group_killed = true;
                        if end.verdict.is_none() {
                            end.stop.get_or_insert(StopReason::Cancelled("superseded".into()));
                        }
                    }
                    None => {
                        kill_group(pid, Signal::SIGKILL);
                        return None;
                    }
                },
                _ = sleep_opt(timeout_at), if ctl_open && end.stop.is_none() && end.verdict.is_none() => {
                    let reason = StopReason::TimedOut(timeout.unwrap_or_default());
                    self.begin_stop(pid, &reason, &mut end);
                    end.stop = Some(reason);
                }
                _ = sleep_opt(protocol_due), if protocol_due.is_some() => {
                    actions = self.protocol.on_deadline(Instant::now());
                }
                _ = sleep_opt(end.term_at), if ctl_open && end.term_at.is_some() => {
                    info!(execution_id = %self.key.execution_id,
                          "the agent did not exit after its turn: SIGTERM");
                    kill_group(pid, Signal::SIGTERM);
                    end.term_at = None;
                    end.sigkill_at = Some(Instant::now() + self.grace());
                }
                _ = sleep_opt(end.sigkill_at), if ctl_open && end.sigkill_at.is_some() => {
                    info!(execution_id = %self.key.execution_id, pgid = pid,
                          "grace period over: SIGKILL to the agent's process group");
                    kill_group(pid, Signal::SIGKILL);
                    end.sigkill_at = None;
                }
                _ = sleep_opt(after_exit_at), if !ctl_open && io_open => {
                    if !group_killed {
                        kill_group(pid, Signal::SIGKILL);
                        group_killed = true;
                        self.tmux.kill_session(self.name).await;
                        after_exit_at = Some(Instant::now() + EXIT_GRACE);
                    } else {
                        warn!(execution_id = %self.key.execution_id,
                              "agent output still open after its group was killed; no more output read");
                        io_open = false;
                    }
                }
            }
            if !actions.is_empty() && !self.apply(actions, pid, &stdin, &mut end).await {
                return None;
            }
        }
        drop(group);
        let exited = match &exit {
            Some(PaneExit::Exited(exit)) => *exit,
            Some(PaneExit::Error(_)) => Exit {
                code: None,
                signal: None,
            },
            // The runner was killed with the agent (SIGKILL).
            None => Exit {
                code: None,
                signal: Some(9),
            },
        };
        let outcome = if let Some(reason) = &end.stop {
            Outcome::from_exit(exited.code, exited.signal, Some(reason))
        } else if let Some(verdict) = end.verdict {
            verdict_outcome(verdict, exited.code)
        } else if let Some(PaneExit::Error(error)) = exit {
            Outcome::failed(error)
        } else {
            verdict_outcome(self.protocol.on_exit(exited), exited.code)
        };
        Some((outcome, self.session_reported))
    }

    fn grace(&self) -> Duration {
        self.config.borrow().cancel_grace
    }

    fn begin_stop(&self, pid: u32, reason: &StopReason, end: &mut Ending) {
        info!(execution_id = %self.key.execution_id, pgid = pid, ?reason,
              "stopping the agent: SIGTERM to its process group");
        kill_group(pid, Signal::SIGTERM);
        end.term_at = None;
        end.sigkill_at = Some(Instant::now() + self.grace());
    }

    /// Carries out the protocol's actions; false if the worker is gone.
    async fn apply(
        &mut self,
        actions: Vec<Action>,
        pid: u32,
        stdin: &Option<mpsc::UnboundedSender<Option<Vec<u8>>>>,
        end: &mut Ending,
    ) -> bool {
        for action in actions {
            match action {
                Action::Write(bytes) => {
                    if let Some(stdin) = stdin {
                        let _ = stdin.send(Some(bytes));
                    }
                }
                Action::TypeLine(text) => {
                    if let Err(e) = self.tmux.send_line(self.name, &text).await {
                        self.finish(
                            pid,
                            Verdict::failure(format!("typing the prompt: {e}")),
                            stdin,
                            end,
                        );
                    }
                }
                Action::Session(id) => {
                    if !self.session_reported {
                        self.session_reported = true;
                        let event = RunEvent {
                            key: self.key.clone(),
                            kind: RunEventKind::Session(id),
                        };
                        if self.events.send(event).await.is_err() {
                            kill_group(pid, Signal::SIGKILL);
                            return false;
                        }
                    }
                }
                Action::Finish(verdict) => self.finish(pid, verdict, stdin, end),
            }
        }
        true
    }

    fn finish(
        &mut self,
        pid: u32,
        verdict: Verdict,
        stdin: &Option<mpsc::UnboundedSender<Option<Vec<u8>>>>,
        end: &mut Ending,
    ) {
        if end.verdict.is_some() || end.stop.is_some() {
            return;
        }
        info!(execution_id = %self.key.execution_id, ok = verdict.ok, error = ?verdict.error,
              "the agent's turn is over");
        end.verdict = Some(verdict);
        match stdin {
            // EOF on stdin ends a stream-json / app-server CLI.
            Some(stdin) => {
                let _ = stdin.send(None);
                end.term_at = Some(Instant::now() + self.grace());
            }
            None => {
                kill_group(pid, Signal::SIGTERM);
                end.sigkill_at = Some(Instant::now() + self.grace());
            }
        }
    }
}

fn verdict_outcome(verdict: Verdict, exit_code: Option<i32>) -> Outcome {
    use amon_proto::v1::ExecutionStatus;
    Outcome {
        status: if verdict.ok {
            ExecutionStatus::Succeeded
        } else {
            ExecutionStatus::Failed
        },
        exit_code,
        error: verdict.error,
    }
}

/// `exit <code>`, `signal <n>` or `error <message>` from the pane runner.
fn parse_status(line: &str) -> Option<PaneExit> {
    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
    match word {
        "exit" => rest.trim().parse().ok().map(|code| {
            PaneExit::Exited(Exit {
                code: Some(code),
                signal: None,
            })
        }),
        "signal" => rest.trim().parse().ok().map(|signal| {
            PaneExit::Exited(Exit {
                code: None,
                signal: Some(signal),
            })
        }),
        "error" => Some(PaneExit::Error(rest.trim().to_string())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert!(matches!(
            parse_status("exit 3"),
            Some(PaneExit::Exited(Exit {
                code: Some(3),
                signal: None
            }))
        ));
        assert!(matches!(
            parse_status("signal 15"),
            Some(PaneExit::Exited(Exit {
                code: None,
                signal: Some(15)
            }))
        ));
        assert!(
            matches!(parse_status("error no such file"), Some(PaneExit::Error(e)) if e == "no such file")
        );
        assert!(parse_status("pid 4").is_none());
    }
}
