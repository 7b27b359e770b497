//! The pane runner: what an AI agent's tmux pane runs.
//!
//! tmux starts processes itself (from its server, with its server's
//! environment, on a terminal), so the worker cannot hand the agent pipes or
//! an exact environment directly. Instead the pane runs the worker's own
//! executable as `<exe> __amon-pane-run <run-dir>`, which
//!
//! 1. connects to `<run-dir>/ctl.sock` and says `pid <its pid>`;
//! 2. in pipe mode, connects to `<run-dir>/io.sock` too (the agent's stdin
//!    and stdout);
//! 3. waits for `go` on the control connection (the worker sends it once the
//!    output capture is in place, so no byte is written before it is read);
//! 4. reads `<run-dir>/spec.json` (argv, cwd, the child's whole environment)
//!    and deletes it, then starts the agent without a shell:
//!    - **pipe mode** (stream-json, app-server): stdin is the io socket,
//!      stdout+stderr one pipe that the runner copies, byte for byte, to the
//!      io socket and to the pane (so a person attached sees the protocol go
//!      by);
//!    - **terminal mode** (interactive CLIs): the pane's terminal; the worker
//!      reads it with `pipe-pane` (`<exe> __amon-pane-pipe <run-dir>` copies
//!      the pane's output to `io.sock`);
//! 5. waits for the agent and reports `exit <code>` / `signal <n>` /
//!    `error <message>` on the control connection, then exits.
//!
//! The runner and the agent share the pane's process group, which is the
//! group the worker signals. If the worker goes away (its control
//! connection closes) while the agent runs, the runner kills that group: an
//! agent never outlives the worker that captures it. The runner survives SIGTERM/SIGHUP/SIGINT (a
//! handler, not SIG_IGN, so the agent does not inherit the disposition) to
//! report how the agent ended; SIGKILL ends both, and the worker then sees
//! the control connection close without a status.

use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Subcommand of the pane runner.
pub const PANE_RUN: &str = "__amon-pane-run";
/// Subcommand copying a pane's output (`pipe-pane`) to the worker.
pub const PANE_PIPE: &str = "__amon-pane-pipe";

pub(crate) const CTL_SOCKET: &str = "ctl.sock";
pub(crate) const IO_SOCKET: &str = "io.sock";
pub(crate) const SPEC_FILE: &str = "spec.json";

/// After the agent exited, how long its output may keep flowing.
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// How the agent's stdio is wired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StdioMode {
    /// stdin from the worker, stdout+stderr to the worker (structured protocols).
    Pipes,
    /// The pane's terminal (interactive CLIs).
    Terminal,
}

/// What the runner starts (written by the worker, 0600 in a 0700 directory).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct PaneSpec {
    /// Raw bytes of each argument (OS strings need not be UTF-8).
    pub argv: Vec<Vec<u8>>,
    pub binary: PathBuf,
    pub cwd: PathBuf,
    pub env: Vec<(Vec<u8>, Vec<u8>)>,
    pub mode: StdioMode,
}

/// Runs the pane subcommands when the process was started as one. Both
/// `amon-worker` and `amon-server` (whose local worker uses the same
/// executable) call this first thing in `main`.
pub fn dispatch_from_args() -> Option<ExitCode> {
    let mut args = std::env::args_os().skip(1);
    let command = args.next()?;
    let dir = args.next().map(PathBuf::from);
    let result = if command == PANE_RUN {
        dir.map(|dir| pane_run(&dir))
    } else if command == PANE_PIPE {
        dir.map(|dir| pane_pipe(&dir))
    } else {
        return None;
    };
    Some(match result {
        Some(Ok(())) => ExitCode::SUCCESS,
        Some(Err(e)) => {
            eprintln!("amon pane runner: {e}");
            // Keep the message on screen a moment for whoever is attached.
            std::thread::sleep(Duration::from_secs(1));
            ExitCode::FAILURE
        }
        None => {
            eprintln!("amon pane runner: missing run directory");
            ExitCode::from(2)
        }
    })
}

extern "C" fn ignore_signal(_: nix::libc::c_int) {}

fn survive_stop_signals() -> io::Result<()> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action = SigAction::new(
        SigHandler::Handler(ignore_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGTERM, Signal::SIGHUP, Signal::SIGINT] {
        // SAFETY: the handler does nothing, so it is async-signal-safe.
        unsafe { sigaction(signal, &action) }.map_err(io::Error::from)?;
    }
    Ok(())
}

fn pane_run(dir: &Path) -> io::Result<()> {
    survive_stop_signals()?;
    let mut ctl = UnixStream::connect(dir.join(CTL_SOCKET))?;
    writeln!(ctl, "pid {}", std::process::id())?;
    let raw = std::fs::read(dir.join(SPEC_FILE))?;
    let _ = std::fs::remove_file(dir.join(SPEC_FILE));
    let spec: PaneSpec = serde_json::from_slice(&raw).map_err(io::Error::other)?;
    let io_stream = match spec.mode {
        StdioMode::Pipes => Some(UnixStream::connect(dir.join(IO_SOCKET))?),
        StdioMode::Terminal => None,
    };
    let mut go = String::new();
    BufReader::new(ctl.try_clone()?).read_line(&mut go)?;
    if go.trim() != "go" {
        return Err(io::Error::other("the worker did not say go"));
    }
    // The agent never outlives its worker: when the worker's end of the
    // control connection closes before the agent ended, the whole pane
    // group (this runner included) is killed.
    let watch = ctl.try_clone()?;
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let mut watch = watch;
        loop {
            match watch.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = nix::sys::signal::killpg(nix::unistd::getpgrp(), nix::sys::signal::Signal::SIGKILL);
    });
    let status = match start_and_wait(&spec, io_stream) {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => format!("exit {code}"),
            (None, Some(signal)) => format!("signal {signal}"),
            (None, None) => "exit -1".to_string(),
        },
        Err(e) => format!("error {}", e.to_string().replace('\n', " ")),
    };
    writeln!(ctl, "{status}")?;
    Ok(())
}

fn start_and_wait(
    spec: &PaneSpec,
    io_stream: Option<UnixStream>,
) -> io::Result<std::process::ExitStatus> {
    let argv: Vec<OsString> = spec.argv.iter().cloned().map(OsString::from_vec).collect();
    let Some((argv0, rest)) = argv.split_first() else {
        return Err(io::Error::other("empty argv"));
    };
    let mut command = Command::new(&spec.binary);
    command
        .arg0(argv0)
        .args(rest)
        .env_clear()
        .envs(
            spec.env
                .iter()
                .map(|(k, v)| (OsString::from_vec(k.clone()), OsString::from_vec(v.clone()))),
        )
        .current_dir(&spec.cwd);
    let Some(io_stream) = io_stream else {
        let mut child = command.spawn().map_err(|e| {
            io::Error::other(format!("failed to start {}: {e}", spec.binary.display()))
        })?;
        return child.wait();
    };
    let (reader, writer) = io::pipe()?;
    command
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(
            io_stream.try_clone()?,
        )))
        .stdout(Stdio::from(writer.try_clone()?))
        .stderr(Stdio::from(writer));
    let spawned = command.spawn();
    drop(command); // our copies of the pipe's write end
    let mut child = spawned
        .map_err(|e| io::Error::other(format!("failed to start {}: {e}", spec.binary.display())))?;
    let (done_tx, done_rx) = mpsc::channel();
    let mut sink = io_stream;
    std::thread::spawn(move || {
        copy_to_worker_and_pane(reader, &mut sink);
        let _ = sink.shutdown(std::net::Shutdown::Write);
        let _ = done_tx.send(());
    });
    let status = child.wait()?;
    // A grandchild holding the pipe does not hold the report; the worker
    // kills the group when the run ends.
    let _ = done_rx.recv_timeout(DRAIN_GRACE);
    Ok(status)
}

/// Copies the agent's output to the worker (must not lose a byte) and to the
/// pane (best effort: a detached terminal must not stall the agent).
fn copy_to_worker_and_pane(mut reader: impl Read, sink: &mut UnixStream) {
    let mut pane = io::stdout().lock();
    let mut pane_ok = set_nonblocking(&pane).is_ok();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        if sink.write_all(&buf[..n]).is_err() {
            return;
        }
        if pane_ok {
            // A full terminal drops what it cannot take; anything else ends the echo.
            pane_ok = match pane.write(&buf[..n]) {
                Ok(_) => true,
                Err(e) => e.kind() == io::ErrorKind::WouldBlock,
            };
        }
    }
}

fn set_nonblocking(fd: &impl std::os::fd::AsFd) -> nix::Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map(drop)
}

fn pane_pipe(dir: &Path) -> io::Result<()> {
    let mut sink = UnixStream::connect(dir.join(IO_SOCKET))?;
    io::copy(&mut io::stdin().lock(), &mut sink)?;
    Ok(())
}
