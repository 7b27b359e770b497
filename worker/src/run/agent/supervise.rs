//! Running one AI agent turn: a tmux session whose pane runs the agent
//! through the pane runner ([`crate::run::pane`]), its output captured byte
//! for byte, its protocol driven by an [`AgentProtocol`].
//!
//! The run's lifecycle (timeout, stop orders, SIGTERM then SIGKILL of the
//! pane's process group after the cancel grace, the end of the run) is the
//! one every run has ([`crate::run::lifecycle`]); this module plugs in the
//! agent's part, a [`Pane`]: output from the pane runner's socket, the exit
//! from its status line, the protocol's actions and verdict, the tmux
//! session. When the protocol finishes the turn, a pipe-mode agent gets EOF
//! on stdin (and SIGTERM if it lingers past the grace), a terminal-mode
//! agent SIGTERM. Whatever ends the run, its tmux session and run directory
//! are removed.

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
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};
use tracing::{debug, info, warn};

use super::discovery::{Discovery, RunContext};
use super::{Action, AgentProtocol, Exit, LineSplitter, Verdict};
use crate::run::lifecycle::{
    Lifecycle, RunChannels, Seen, Started, Supervised, WorkerGone, kill_group,
};
use crate::run::pane::{
    CTL_SOCKET, IO_SOCKET, PANE_PIPE, PANE_RUN, PaneSpec, SPEC_FILE, StdioMode,
};
use crate::run::process::{Located, locate};
use crate::run::tmux::{Tmux, shell_quote};
use crate::run::{Outcome, ProcessSpec, RunEventKind};

/// Longest wait for each step of starting the tmux session.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest protocol line parsed (longer ones are only logged).
const MAX_LINE: usize = 16 * 1024 * 1024;

/// A settings file written into the private run directory (0600), which
/// the agent is pointed at: its MCP servers (Claude's `--mcp-config`,
/// Gemini's system settings), with the run's token in them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SettingsFile {
    pub pass: PassPath,
    pub file_name: String,
    pub contents: String,
}

/// How the agent learns where its settings file is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PassPath {
    /// This environment variable holds the path.
    Env(String),
    /// This flag, followed by the path, ends argv (`--mcp-config=`).
    Flag(String),
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
pub(crate) async fn supervise_agent(channels: RunChannels, run: AgentRun, host: AgentHost) {
    let execution_id = channels.key.execution_id.clone();
    channels
        .supervise(run.spec.timeout, start_pane(execution_id, run, host))
        .await
}

/// Prepares the run directory, lists the sessions known before the run (for
/// discovery), starts the tmux session and its pane runner.
async fn start_pane(
    execution_id: String,
    run: AgentRun,
    host: AgentHost,
) -> Result<Started<Pane>, String> {
    let prepared = Prepared::new(&run)?;
    let before = match &run.discovery {
        Some(discovery) => discovery.snapshot(&prepared.context()).await,
        None => Vec::new(),
    };
    let started_at = SystemTime::now();
    let name = run.session_name.clone();
    let wiring = match start(&run, &host, &prepared).await {
        Ok(wiring) => wiring,
        Err(error) => {
            info!(%execution_id, %error, "agent could not start");
            host.tmux.kill_session(&name).await;
            return Err(error);
        }
    };
    info!(%execution_id, pid = wiring.pid, session = %name,
          attach = %format!("tmux -L {} attach -t {name}", host.tmux.label()),
          argv = ?prepared.argv, "agent started");
    let Wiring {
        pid,
        ctl_lines,
        ctl_write,
        io_read,
        io_write,
    } = wiring;
    let stdin = match prepared.mode {
        StdioMode::Pipes => Some(stdin_writer(io_write)),
        StdioMode::Terminal => {
            drop(io_write);
            None
        }
    };
    let AgentRun {
        mut protocol,
        discovery,
        ..
    } = run;
    let pending = protocol.start(Instant::now());
    Ok(Started {
        pid,
        tmux_session: Some(name.clone()),
        run: Pane {
            name,
            tmux: host.tmux,
            mode: prepared.mode,
            protocol,
            discovery,
            prepared,
            before,
            started_at,
            ctl_lines,
            _ctl_write: ctl_write,
            io_read,
            stdin,
            lines: LineSplitter::new(MAX_LINE),
            buf: vec![0u8; 64 * 1024],
            fresh: 0,
            exit: None,
            verdict: None,
            pending,
            session_reported: false,
        },
    })
}

/// The run directory, resolved binary, argv, cwd and environment.
struct Prepared {
    dir: tempfile::TempDir,
    binary: PathBuf,
    argv: Vec<String>,
    cwd: PathBuf,
    env: BTreeMap<OsString, OsString>,
    mode: StdioMode,
}

impl Prepared {
    fn new(run: &AgentRun) -> Result<Self, String> {
        let Located { cwd, binary } = locate(&run.spec)?;
        let mode = run.protocol.stdio();
        let mut env = run.spec.env.clone();
        if mode == StdioMode::Terminal {
            // A terminal program needs to know its terminal.
            env.entry("TERM".into())
                .or_insert_with(|| "xterm-256color".into());
            // tmux draws 24-bit colour; without this Gemini CLI warns on
            // screen that true colour was not detected.
            env.entry("COLORTERM".into())
                .or_insert_with(|| "truecolor".into());
        }
        // 0700, removed when dropped.
        let dir = tempfile::Builder::new()
            .prefix("amon-run-")
            .tempdir()
            .map_err(|e| format!("creating the run directory: {e}"))?;
        let mut argv = run.spec.argv.clone();
        if let Some(settings) = &run.settings {
            let path = dir.path().join(&settings.file_name);
            write_private(&path, settings.contents.as_bytes())
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
            match &settings.pass {
                PassPath::Env(name) => {
                    env.insert(name.clone().into(), path.into_os_string());
                }
                PassPath::Flag(flag) => argv.push(format!("{flag}{}", path.display())),
            }
        }
        Ok(Self {
            dir,
            binary,
            argv,
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
    ctl_write: OwnedWriteHalf,
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
        argv: prepared
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
        ctl_write,
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

/// An agent running in its tmux pane, as its lifecycle follows it.
struct Pane {
    /// The tmux session.
    name: String,
    tmux: Tmux,
    mode: StdioMode,
    protocol: Box<dyn AgentProtocol>,
    discovery: Option<Discovery>,
    /// Holds the run directory until the run's outcome is worked out.
    prepared: Prepared,
    /// Session ids listed before the run, and when it started (discovery).
    before: Vec<String>,
    started_at: SystemTime,
    /// The pane runner's status lines.
    ctl_lines: Lines<BufReader<OwnedReadHalf>>,
    /// Kept open: the pane runner kills its agent when this closes.
    _ctl_write: OwnedWriteHalf,
    /// The agent's output.
    io_read: OwnedReadHalf,
    /// The agent's stdin (pipe mode); `None` on it closes stdin.
    stdin: Option<mpsc::UnboundedSender<Option<Vec<u8>>>>,
    lines: LineSplitter,
    buf: Vec<u8>,
    /// How much of `buf` was read last (reported, not yet parsed).
    fresh: usize,
    /// How the pane runner said the agent ended.
    exit: Option<PaneExit>,
    /// How the protocol said the turn ended.
    verdict: Option<Verdict>,
    /// Protocol actions not yet carried out.
    pending: Vec<Action>,
    session_reported: bool,
}

impl Supervised for Pane {
    async fn next(&mut self, output: bool, exit: bool) -> Seen {
        loop {
            tokio::select! {
                biased;
                read = self.io_read.read(&mut self.buf), if output => match read {
                    Ok(0) | Err(_) => {
                        if self.mode == StdioMode::Pipes {
                            let (protocol, pending) = (&mut self.protocol, &mut self.pending);
                            let now = Instant::now();
                            self.lines.finish(|line| pending.extend(protocol.on_line(line, now)));
                        }
                        return Seen::OutputEnd;
                    }
                    Ok(n) => {
                        self.fresh = n;
                        return Seen::Output(self.buf[..n].to_vec());
                    }
                },
                line = self.ctl_lines.next_line(), if exit => match line {
                    Ok(Some(line)) => self.exit = parse_status(&line).or(self.exit.take()),
                    Ok(None) | Err(_) => return Seen::Exited,
                },
                else => return std::future::pending().await,
            }
        }
    }

    fn after_output(&mut self) {
        let data = &self.buf[..self.fresh];
        match self.mode {
            StdioMode::Pipes => {
                let (protocol, pending) = (&mut self.protocol, &mut self.pending);
                let now = Instant::now();
                self.lines
                    .push(data, |line| pending.extend(protocol.on_line(line, now)));
            }
            StdioMode::Terminal => self.protocol.on_output(Instant::now()),
        }
    }

    fn deadline(&self) -> Option<Instant> {
        self.protocol.deadline()
    }

    fn on_deadline(&mut self) {
        let actions = self.protocol.on_deadline(Instant::now());
        self.pending.extend(actions);
    }

    async fn act(&mut self, life: &mut Lifecycle<'_>) -> Result<(), WorkerGone> {
        // Reading the screen gives the protocol more to do: until it is done.
        while !self.pending.is_empty() {
            self.act_once(life).await?;
        }
        Ok(())
    }

    async fn kill_leftovers(&mut self) {
        self.tmux.kill_session(&self.name).await;
    }

    async fn conclude(mut self, life: &Lifecycle<'_>) -> Outcome {
        let exited = match &self.exit {
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
        let outcome = if let Some(reason) = life.stop_reason() {
            Outcome::from_exit(exited.code, exited.signal, Some(reason))
        } else if let Some(verdict) = self.verdict.take() {
            verdict_outcome(verdict, exited.code)
        } else if let Some(PaneExit::Error(error)) = self.exit.take() {
            Outcome::failed(error)
        } else {
            verdict_outcome(self.protocol.on_exit(exited), exited.code)
        };
        self.tmux.kill_session(&self.name).await;
        if !self.session_reported
            && let Some(discovery) = &self.discovery
        {
            let mut ctx = self.prepared.context();
            ctx.started = self.started_at;
            match discovery.find(&ctx, &self.before).await {
                Ok(id) => {
                    let _ = life.report(RunEventKind::Session(id)).await;
                }
                Err(e) => {
                    warn!(execution_id = %life.key().execution_id, error = %e,
                          "the agent's session id was not found")
                }
            }
        }
        outcome
    }

    async fn release(self) {
        self.tmux.kill_session(&self.name).await;
    }
}

impl Pane {
    /// Carries out the protocol's actions pending now (which may add more).
    async fn act_once(&mut self, life: &mut Lifecycle<'_>) -> Result<(), WorkerGone> {
        for action in std::mem::take(&mut self.pending) {
            match action {
                Action::Write(bytes) => {
                    if let Some(stdin) = &self.stdin {
                        let _ = stdin.send(Some(bytes));
                    }
                }
                Action::TypeLine(text) => {
                    if let Err(e) = self.tmux.send_line(&self.name, &text).await {
                        self.finish(life, Verdict::failure(format!("typing the prompt: {e}")));
                    }
                }
                Action::Session(id) => {
                    if !self.session_reported {
                        self.session_reported = true;
                        life.report(RunEventKind::Session(id)).await?;
                    }
                }
                Action::Finish(verdict) => self.finish(life, verdict),
                Action::Abort(verdict) => {
                    if life.settle() {
                        info!(execution_id = %life.key().execution_id, error = ?verdict.error,
                              "the agent is stuck: ending it");
                        self.verdict = Some(verdict);
                        life.terminate();
                    }
                }
                Action::Status(status) => life.report(RunEventKind::Status(status)).await?,
                Action::ReadScreen => {
                    let screen = self.tmux.capture(&self.name).await;
                    let screen = screen.as_deref().map_err(String::as_str);
                    let more = self.protocol.on_screen(screen, Instant::now());
                    self.pending.extend(more);
                }
            }
        }
        Ok(())
    }

    /// The protocol ended the turn: no stop or timeout applies any more,
    /// and the agent is asked to end.
    fn finish(&mut self, life: &mut Lifecycle<'_>, verdict: Verdict) {
        if !life.settle() {
            return;
        }
        info!(execution_id = %life.key().execution_id, ok = verdict.ok, error = ?verdict.error,
              "the agent's turn is over");
        self.verdict = Some(verdict);
        match &self.stdin {
            // EOF on stdin ends a stream-json / app-server CLI.
            Some(stdin) => {
                let _ = stdin.send(None);
                life.terminate_after_grace();
            }
            None => life.terminate(),
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
