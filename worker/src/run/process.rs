//! Spawning a plain child, and following it for the run's
//! [lifecycle](super::lifecycle) (which times it out, stops it and ends it).
//!
//! - The child runs in its own process group (`process_group(0)`: its pgid
//!   is its pid), so stopping a run reaches everything it started, and a
//!   Ctrl-C at the worker's terminal does not hit it.
//! - It dies with the worker: the keeper stops its group, and until the
//!   keeper knows it, the kernel's parent-death signal does.
//! - stdin is `/dev/null`; stdout and stderr are the SAME pipe (one write
//!   end, duplicated), so the log keeps the exact interleaving the child
//!   wrote.
//! - The environment is exactly the spec's (see [`crate::env`]); `argv[0]`
//!   is resolved with the worker's PATH and the child still sees the
//!   original `argv[0]`.
//! - The run's result is the child's exit (`from_exit`), or the stop that
//!   ended it.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use nix::sys::signal::Signal;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tracing::{info, warn};

use super::lifecycle::{Lifecycle, RunChannels, Seen, Started, Supervised, kill_group};
use super::{Outcome, ProcessSpec};
use crate::env::resolve_binary;

/// Read buffer: one read forwards whatever the pipe holds, up to this.
const READ_BUFFER: usize = 64 * 1024;

/// Runs `spec` to the end, reporting `Started`, `Output`s and `Ended` on
/// `channels.events`. Never panics on a bad spec: failures become
/// `Ended(FAILED)`.
pub(crate) async fn supervise(channels: RunChannels, spec: ProcessSpec) {
    let execution_id = channels.key.execution_id.clone();
    channels
        .supervise(spec.timeout, async move {
            let (child, reader) = spawn(&spec).inspect_err(|error| {
                info!(%execution_id, %error, "run could not start");
            })?;
            let pid = child.id().unwrap_or_default();
            // The program and the number of arguments, not their values:
            // arguments may carry secrets, and logs are kept and shared.
            let program = spec.argv.first().map(String::as_str).unwrap_or_default();
            info!(%execution_id, pid, program, args = spec.argv.len().saturating_sub(1), "run started");
            Ok(Started {
                pid,
                tmux_session: None,
                run: Child {
                    execution_id,
                    child,
                    reader,
                    buf: vec![0u8; READ_BUFFER],
                    status: None,
                },
            })
        })
        .await
}

/// A spawned child, as its lifecycle follows it: output from its pipe, its
/// exit status.
struct Child {
    execution_id: String,
    child: tokio::process::Child,
    reader: pipe::Receiver,
    buf: Vec<u8>,
    status: Option<ExitStatus>,
}

impl Supervised for Child {
    async fn next(&mut self, output: bool, exit: bool) -> Seen {
        loop {
            tokio::select! {
                biased;
                read = self.reader.read(&mut self.buf), if output => match read {
                    Ok(0) => return Seen::OutputEnd,
                    Ok(n) => return Seen::Output(self.buf[..n].to_vec()),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        warn!(execution_id = %self.execution_id, error = %e,
                              "reading the run's output failed; the rest is lost");
                        return Seen::OutputEnd;
                    }
                },
                status = self.child.wait(), if exit => match status {
                    Ok(status) => {
                        self.status = Some(status);
                        return Seen::Exited;
                    }
                    Err(e) => {
                        warn!(execution_id = %self.execution_id, error = %e,
                              "waiting for the child failed");
                        return Seen::Lost(format!("waiting for the child: {e}"));
                    }
                },
                else => return std::future::pending().await,
            }
        }
    }

    async fn conclude(self, life: &Lifecycle<'_>) -> Outcome {
        let status = self.status.expect("the lifecycle ends after the exit");
        Outcome::from_exit(status.code(), status.signal(), life.stop_reason())
    }
}

/// Where a spec runs: its working directory, and the binary `argv[0]`
/// names.
pub(crate) struct Located {
    pub cwd: PathBuf,
    pub binary: PathBuf,
}

/// Checks the working directory and resolves the binary (with the worker's
/// PATH). The error is the run's one-line error.
pub(crate) fn locate(spec: &ProcessSpec) -> Result<Located, String> {
    let cwd = working_dir(spec.working_dir.as_deref())?;
    let argv0 = spec
        .argv
        .first()
        .ok_or_else(|| "the assignment has an empty argv".to_string())?;
    let binary = resolve_binary(argv0, std::env::var_os("PATH").as_deref(), &cwd)?;
    Ok(Located { cwd, binary })
}

/// Checks the working directory, resolves the binary, spawns the child.
fn spawn(spec: &ProcessSpec) -> Result<(tokio::process::Child, pipe::Receiver), String> {
    let Located { binary, .. } = locate(spec)?;
    let argv0 = &spec.argv[0];

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
    // The keeper learns of the run's group only once the child is spawned:
    // a worker killed in between (as a crash right at a claim does) left it
    // running with nobody to stop it. The kernel closes that window: the
    // child gets SIGTERM (the keeper's own first signal) when the worker
    // goes, and is not started at all if the worker is already gone. (The
    // kernel's "parent" is the spawning thread: runs are spawned from tokio
    // worker threads, which live as long as the worker; spawning from
    // `spawn_blocking`, whose threads end when idle, would kill runs.)
    let worker = std::process::id();
    // SAFETY: the closure runs between fork and exec; prctl and getppid are
    // async-signal-safe, and nothing is allocated (the error is an errno).
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(io::Error::from)?;
            if nix::unistd::getppid().as_raw().cast_unsigned() != worker {
                return Err(io::Error::from(nix::errno::Errno::ESRCH));
            }
            Ok(())
        });
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
fn working_dir(dir: Option<&Path>) -> Result<PathBuf, String> {
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use nix::sys::wait::{WaitStatus, waitpid};
    use nix::unistd::Pid;

    use super::*;

    /// A run whose spawner goes before the keeper could hear of it gets
    /// SIGTERM from the kernel. The kernel counts the spawning thread as
    /// the parent: a thread that spawns and ends stands for a worker killed
    /// right after the spawn.
    #[test]
    fn a_run_dies_with_its_spawner() {
        let spec = ProcessSpec {
            argv: vec!["/bin/sleep".into(), "30".into()],
            working_dir: None,
            env: BTreeMap::new(),
            timeout: None,
        };
        let pid = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let (child, _reader) = spawn(&spec).expect("spawning sleep");
                child.id().expect("a pid")
            })
        })
        .join()
        .unwrap();
        let status = waitpid(Pid::from_raw(pid.cast_signed()), None).expect("waiting for it");
        assert!(
            matches!(status, WaitStatus::Signaled(_, Signal::SIGTERM, _)),
            "{status:?}"
        );
    }
}
