//! Running a found binary to ask it about itself (`--version`, `--help`),
//! safely: nothing else is ever run with a found binary.
//!
//! Every probe has a timeout (the child's process group is killed when it
//! passes), an EMPTY environment but for `PATH`, a `C` locale, and `HOME`
//! and `TMPDIR` in the scan's own directory (a tool's
//! help must not depend on the worker's secrets, and English is what the
//! parsers read), no stdin (`/dev/null`: a tool waiting for input sees end of
//! file instead of hanging), a working directory of its own (an empty
//! temporary directory: a tool that ignores `--help` and acts acts on
//! nothing), and a cap on output (a flood is cut and the child killed).
//! Stdout and stderr are read together: many tools print help on stderr.
//! The probe dies with the worker (`PR_SET_PDEATHSIG`).

use std::ffi::OsString;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

/// How a probe ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// It exited (with any code) within the timeout: what it wrote.
    Exited {
        /// Exit code (None when killed by a signal: see `Crashed`).
        code: i32,
        /// Stdout then stderr, lossily decoded.
        output: String,
    },
    /// Still running at the timeout: killed.
    TimedOut,
    /// Wrote more than the cap: killed.
    Flooded,
    /// Killed by a signal it did not get from us.
    Crashed(String),
    /// Could not be started.
    Unstartable(String),
}

/// The limits of one probe.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest it may run.
    pub timeout: Duration,
    /// Most bytes of output kept before it counts as a flood.
    pub max_output: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(3),
            max_output: 512 * 1024,
        }
    }
}

/// Runs `binary args…` under the probe rules; `path` is the `PATH` it sees.
pub async fn run(
    binary: &Path,
    args: &[&str],
    path: Option<&OsString>,
    cwd: &Path,
    limits: Limits,
) -> Probe {
    run_with_env(binary, args, path, &[], cwd, limits).await
}

/// [`run`] with a few more variables (for the worker's own helpers, such
/// as `man -w` with the worker's `MANPATH`; never for a found binary).
pub async fn run_with_env(
    binary: &Path,
    args: &[&str],
    path: Option<&OsString>,
    env: &[(&str, OsString)],
    cwd: &Path,
    limits: Limits,
) -> Probe {
    let mut command = Command::new(binary);
    command
        .args(args)
        .env_clear()
        .env("LC_ALL", "C")
        .env("LANG", "C")
        // No pager, no colour, no terminal: a help text is read, not shown.
        .env("TERM", "dumb")
        .env("PAGER", "cat")
        .env("MANPAGER", "cat")
        .env("NO_COLOR", "1")
        // What a tool writes on the side (a temporary file, a config
        // directory made on first start) lands in the scan's own directory,
        // removed with it: on this machine, a full scan left 113 files,
        // pipes and directories in /tmp before.
        .env("HOME", cwd)
        .env("TMPDIR", cwd)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(path) = path {
        command.env("PATH", path);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    // A probe is not a run: the keeper does not know it. If the worker
    // dies mid-probe, the kernel kills the probe with it (a hanging binary
    // would otherwise outlive the worker).
    // SAFETY: the closure runs between fork and exec; prctl is
    // async-signal-safe and nothing is allocated.
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
        });
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return Probe::Unstartable(e.to_string()),
    };
    let group = child.id().map(|id| Pid::from_raw(id as i32));
    let kill_group = || {
        if let Some(group) = group {
            let _ = killpg(group, Signal::SIGKILL);
        }
    };
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let cap = limits.max_output;
    let read = async {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut buf_out = [0u8; 8192];
        let mut buf_err = [0u8; 8192];
        let (mut out_open, mut err_open) = (true, true);
        while out_open || err_open {
            tokio::select! {
                n = stdout.read(&mut buf_out), if out_open => match n {
                    Ok(0) | Err(_) => out_open = false,
                    Ok(n) => out.extend_from_slice(&buf_out[..n]),
                },
                n = stderr.read(&mut buf_err), if err_open => match n {
                    Ok(0) | Err(_) => err_open = false,
                    Ok(n) => err.extend_from_slice(&buf_err[..n]),
                },
            }
            if out.len() + err.len() > cap {
                return None;
            }
        }
        out.extend_from_slice(&err);
        Some(out)
    };
    let outcome = tokio::time::timeout(limits.timeout, async {
        let output = read.await;
        match output {
            None => Err(Probe::Flooded),
            Some(output) => Ok((output, child.wait().await)),
        }
    })
    .await;
    // Whatever happened, nothing the probe started stays behind (a tool
    // that forked a daemon keeps its group).
    kill_group();
    match outcome {
        Err(_) => Probe::TimedOut,
        Ok(Err(flooded)) => flooded,
        Ok(Ok((_, Err(e)))) => Probe::Unstartable(e.to_string()),
        Ok(Ok((output, Ok(status)))) => {
            use std::os::unix::process::ExitStatusExt;
            match (status.code(), status.signal()) {
                (Some(code), _) => Probe::Exited {
                    code,
                    output: printable(&String::from_utf8_lossy(&output)),
                },
                (None, Some(signal)) => Probe::Crashed(
                    Signal::try_from(signal)
                        .map(|s| s.as_str().to_owned())
                        .unwrap_or_else(|_| format!("signal {signal}")),
                ),
                (None, None) => Probe::Crashed("unknown".into()),
            }
        }
    }
}

/// Output as text a person can read and the server accepts: terminal
/// escape sequences (a coloured `--version`) and backspace overstrikes (bold
/// in a man-formatted help) removed, other control characters but newlines
/// and tabs dropped.
pub fn printable(text: &str) -> String {
    static ESCAPES: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-_])|.\x08")
            .expect("escape pattern")
    });
    ESCAPES
        .replace_all(text, "")
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_and_controls_are_removed() {
        assert_eq!(
            super::printable("\x1b[1;32mtool\x1b[0m 1.0\r\nB\x08Bold\x07\n"),
            "tool 1.0\nBold\n"
        );
    }

    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[tokio::test]
    async fn hangs_floods_and_crashes_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let path = Some(OsString::from("/usr/bin:/bin"));
        let limits = Limits {
            timeout: Duration::from_millis(500),
            max_output: 4096,
        };
        let cwd = dir.path();
        let ok = script(cwd, "ok", "echo \"v1 $USER\"; echo err >&2; exit 3");
        assert_eq!(
            run(&ok, &["--version"], path.as_ref(), cwd, limits).await,
            Probe::Exited {
                code: 3,
                output: "v1 \nerr\n".into()
            }
        );
        // The worker's own variables stay out; home and temp are the scan's.
        let env = script(cwd, "env", "echo \"$HOME|$TMPDIR|$USER|$LC_ALL\"");
        assert_eq!(
            run(&env, &[], path.as_ref(), cwd, limits).await,
            Probe::Exited {
                code: 0,
                output: format!("{0}|{0}||C\n", cwd.display())
            }
        );
        let began = std::time::Instant::now();
        let hang = script(cwd, "hang", "sleep 30");
        assert_eq!(
            run(&hang, &[], path.as_ref(), cwd, limits).await,
            Probe::TimedOut
        );
        assert!(began.elapsed() < Duration::from_secs(5));
        let flood = script(cwd, "flood", "yes flood");
        assert_eq!(
            run(&flood, &[], path.as_ref(), cwd, limits).await,
            Probe::Flooded
        );
        let crash = script(cwd, "crash", "kill -SEGV $$");
        assert_eq!(
            run(&crash, &[], path.as_ref(), cwd, limits).await,
            Probe::Crashed("SIGSEGV".into())
        );
        let reads = script(cwd, "reads", "read line; echo \"got [$line]\"");
        assert_eq!(
            run(&reads, &[], path.as_ref(), cwd, limits).await,
            Probe::Exited {
                code: 0,
                output: "got []\n".into()
            }
        );
    }
}
