//! The worker's tmux server: one per worker id (`tmux -L amon-<worker id>`),
//! so its sessions never mix with a person's own. Namesake workers on one
//! machine may share it (each session is named after its execution), so it
//! is never killed as a whole: each run removes its own session.
//!
//! tmux itself is driven with argv (never through a shell, except the fixed
//! `pipe-pane` command, which holds only the worker's executable and a run
//! directory the worker made), with a minimal environment: the tmux server
//! inherits its first client's, and no agent may see the worker's.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;
use tokio::time::timeout;

/// Longest time one tmux command may take.
const TMUX_COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// Terminal size of a new session (wide, so few lines wrap).
const COLUMNS: &str = "200";
const ROWS: &str = "50";
/// Rows of the screen as drawn, at the end of [`Tmux::capture`]'s text.
pub(crate) const SCREEN_ROWS: usize = 50;
/// Scrollback lines [`Tmux::capture`] reads above the screen.
const CAPTURE_HISTORY: &str = "-2000";

/// The tmux server of one worker.
#[derive(Clone, Debug)]
pub(crate) struct Tmux {
    /// `-L` socket label.
    label: String,
}

impl Tmux {
    /// The server of worker `worker_id`.
    pub fn for_worker(worker_id: &str) -> Self {
        let mut label: String = worker_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .take(48)
            .collect();
        if label.is_empty() {
            label.push_str("worker");
        }
        Self {
            label: format!("amon-{label}"),
        }
    }

    /// The server labelled `label` exactly.
    pub fn with_label(label: &str) -> Self {
        Self {
            label: label.to_string(),
        }
    }

    /// The `-L` label, for `tmux -L <label> attach -t <session>`.
    pub fn label(&self) -> &str {
        &self.label
    }

    fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = self.client(args);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// A tmux client of this server with `args`, the minimal environment,
    /// and the caller's stdio.
    fn client<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = Command::new("tmux");
        command
            .arg("-L")
            .arg(&self.label)
            .args(args)
            .env_clear()
            .kill_on_drop(true);
        for name in [
            "PATH",
            "HOME",
            "USER",
            "LOGNAME",
            "LANG",
            "LC_ALL",
            "TMUX_TMPDIR",
        ] {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        // The pane's terminal type; the agent's own TERM comes from its spec.
        command.env("TERM", "xterm-256color");
        command
    }

    /// Runs a tmux command; its stdout, or an error naming what failed.
    async fn run<I, S>(&self, what: &str, args: I) -> Result<String, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let output = match timeout(TMUX_COMMAND_TIMEOUT, self.command(args).output()).await {
            Err(_) => return Err(format!("tmux {what}: no answer in 10s")),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(format!(
                    "tmux {what}: tmux is not installed on this worker (AI agents run inside tmux)"
                ));
            }
            Ok(Err(e)) => return Err(format!("tmux {what}: {e}")),
            Ok(Ok(output)) => output,
        };
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(format!(
                "tmux {what}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }

    /// Starts detached session `name` running `argv` (executed directly by
    /// tmux: more than one argument means no shell) in `cwd`.
    pub async fn new_session(&self, name: &str, cwd: &Path, argv: &[&OsStr]) -> Result<(), String> {
        let mut args: Vec<&OsStr> = vec![
            "new-session".as_ref(),
            "-d".as_ref(),
            "-s".as_ref(),
            name.as_ref(),
            "-x".as_ref(),
            COLUMNS.as_ref(),
            "-y".as_ref(),
            ROWS.as_ref(),
            "-c".as_ref(),
            cwd.as_os_str(),
        ];
        args.extend_from_slice(argv);
        self.run("new-session", args).await.map(drop)
    }

    /// Pipes the pane's output to `shell_command` (run by tmux's shell).
    pub async fn pipe_pane(&self, name: &str, shell_command: &str) -> Result<(), String> {
        self.run(
            "pipe-pane",
            ["pipe-pane", "-O", "-t", &pane(name), shell_command],
        )
        .await
        .map(drop)
    }

    /// Types `text` literally into the session, then presses Enter (a
    /// separate key, so a TUI sees the text before the submit).
    pub async fn send_line(&self, name: &str, text: &str) -> Result<(), String> {
        self.run("send-keys", ["send-keys", "-t", &pane(name), "-l", text])
            .await?;
        self.run("send-keys", ["send-keys", "-t", &pane(name), "Enter"])
            .await
            .map(drop)
    }

    /// The pane's text as drawn: up to 2,000 lines of scrollback, then the
    /// screen's [`SCREEN_ROWS`] rows (wrapped lines joined, no escapes).
    pub async fn capture(&self, name: &str) -> Result<String, String> {
        self.run(
            "capture-pane",
            [
                "capture-pane",
                "-p",
                "-J",
                "-S",
                CAPTURE_HISTORY,
                "-t",
                &pane(name),
            ],
        )
        .await
    }

    /// `tmux attach-session` to session `name` (`-r`: read-only), for the
    /// caller to run on a terminal of its own (a remote viewer's).
    pub fn attach_command(&self, name: &str, read_only: bool) -> Command {
        let target = target(name);
        let mut args = vec!["attach-session", "-t", target.as_str()];
        if read_only {
            args.push("-r");
        }
        self.client(args)
    }

    /// Whether session `name` exists.
    pub async fn has_session(&self, name: &str) -> bool {
        self.run("has-session", ["has-session", "-t", &target(name)])
            .await
            .is_ok()
    }

    /// Removes session `name`; one that is already gone is fine.
    pub async fn kill_session(&self, name: &str) {
        let _ = self
            .run("kill-session", ["kill-session", "-t", &target(name)])
            .await;
    }
}

/// An exact-match session target (`=name`), so `amon-1` never matches `amon-12`.
fn target(name: &str) -> String {
    format!("={name}")
}

/// The active pane of session `name` (exact match).
fn pane(name: &str) -> String {
    format!("={name}:")
}

/// Quotes `value` for tmux's `/bin/sh` (for the fixed pipe-pane command).
pub(crate) fn shell_quote(value: &OsStr) -> String {
    let text = value.to_string_lossy();
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_socket_safe() {
        assert_eq!(Tmux::for_worker("w-1").label(), "amon-w-1");
        assert_eq!(
            Tmux::for_worker("host.example/x").label(),
            "amon-host_example_x"
        );
        assert_eq!(Tmux::for_worker("").label(), "amon-worker");
        assert!(Tmux::for_worker(&"x".repeat(200)).label().len() <= 53);
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote(OsStr::new("/a b/c")), "'/a b/c'");
        assert_eq!(shell_quote(OsStr::new("it's")), r"'it'\''s'");
    }
}
