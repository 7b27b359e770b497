//! Runs: one per assignment. [`adapter`] turns an assignment into what to
//! run: a plain child ([`process`] spawns it) or an AI agent ([`agent`]: its
//! protocols, run in a [`tmux`] session through the [`pane`] runner). Both
//! kinds live the one [`lifecycle`]: timeout, stop orders, SIGTERM → grace →
//! SIGKILL of the process group, the end of the run and its outcome.
//! [`output`] keeps a run's log until the server has stored it.

pub(crate) mod adapter;
pub(crate) mod agent;
pub(crate) mod keeper;
pub(crate) mod launch;
pub(crate) mod lifecycle;
pub(crate) mod output;
pub mod pane;
pub(crate) mod process;
pub(crate) mod tmux;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use amon_proto::v1::ExecutionStatus;

/// What to spawn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProcessSpec {
    /// `argv[0]` is the binary (path or name looked up in the worker's PATH).
    pub argv: Vec<String>,
    /// Working directory; `None` means the worker's own.
    pub working_dir: Option<PathBuf>,
    /// The child's whole environment.
    pub env: BTreeMap<OsString, OsString>,
    /// Time the run may take.
    pub timeout: Option<Duration>,
}

/// Identifies a run: the execution and the attempt.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct RunKey {
    pub execution_id: String,
    pub attempt_token: String,
}

/// What a run's supervisor reports, in order.
#[derive(Debug)]
pub(crate) struct RunEvent {
    pub key: RunKey,
    pub kind: RunEventKind,
}

#[derive(Debug)]
pub(crate) enum RunEventKind {
    /// The child is running (in that tmux session, for an AI agent).
    Started {
        pid: u32,
        tmux_session: Option<String>,
    },
    /// The AI agent's session id is known.
    Session(String),
    /// What the AI agent is going through now (a retry notice); `None`:
    /// that has passed.
    Status(Option<String>),
    /// Bytes the child wrote (stdout and stderr, in order).
    Output(Vec<u8>),
    /// What the run changed in its task's git worktree, just before `Ended`.
    Worktree(Box<amon_proto::v1::WorktreeSummary>),
    /// The child exited and its output is read (or the run never started).
    /// Always the last event of a run.
    Ended(Outcome),
}

/// Why a run is being stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// The server cancelled it (with its reason).
    Cancelled(String),
    /// The worker is draining and its drain timeout passed.
    DrainTimeout,
    /// The worker heard nothing from the server for this long (close to the
    /// stale window): the server gives its runs to someone else, so it
    /// stops them rather than run them twice.
    Fenced(Duration),
    /// Its timeout fired.
    TimedOut(Duration),
}

/// Orders for a run's supervisor.
#[derive(Debug)]
pub(crate) enum Control {
    /// SIGTERM the group, SIGKILL after the grace period.
    Stop(StopReason),
    /// SIGKILL the group now; nobody wants the result.
    Abandon,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub status: ExecutionStatus,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
}

impl Outcome {
    /// A run that failed before or while starting.
    pub fn failed(error: impl Into<String>) -> Self {
        Self {
            status: ExecutionStatus::Failed,
            exit_code: None,
            error: Some(error.into()),
        }
    }

    /// The outcome of an exit: `code` if it exited, else the `signal` that
    /// killed it; `stop` if we were stopping it when it exited.
    pub fn from_exit(code: Option<i32>, signal: Option<i32>, stop: Option<&StopReason>) -> Self {
        let how = match (code, signal) {
            (Some(code), _) => format!("exited with status {code}"),
            (None, Some(sig)) => format!("killed by signal {}", signal_name(sig)),
            (None, None) => "ended with an unknown status".to_string(),
        };
        let (status, error) = match stop {
            Some(StopReason::Cancelled(reason)) if reason.is_empty() => (
                ExecutionStatus::Cancelled,
                Some(format!("cancelled ({how})")),
            ),
            Some(StopReason::Cancelled(reason)) => (
                ExecutionStatus::Cancelled,
                Some(format!("cancelled: {reason} ({how})")),
            ),
            // Nobody cancelled these runs: they failed for a reason of the
            // worker's (and `cancelled` is only reachable through
            // `cancelling`, so the server refused it and the run sat in
            // `running` until reaped). Retries, if any, run elsewhere.
            Some(StopReason::DrainTimeout) => (
                ExecutionStatus::Failed,
                Some(format!(
                    "stopped: the worker shut down and its drain timeout passed ({how})"
                )),
            ),
            Some(StopReason::Fenced(after)) => (
                ExecutionStatus::Failed,
                Some(format!(
                    "stopped: the worker heard nothing from the server for {} and let the run \
                     go to another worker ({how})",
                    crate::config::human_duration(*after)
                )),
            ),
            Some(StopReason::TimedOut(after)) => (
                ExecutionStatus::TimedOut,
                Some(format!(
                    "timed out after {} ({how})",
                    crate::config::human_duration(*after)
                )),
            ),
            None if code == Some(0) => (ExecutionStatus::Succeeded, None),
            None => (ExecutionStatus::Failed, Some(how)),
        };
        Self {
            status,
            exit_code: code,
            error,
        }
    }
}

pub(crate) fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| sig.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes() {
        let ok = Outcome::from_exit(Some(0), None, None);
        assert_eq!(ok.status, ExecutionStatus::Succeeded);
        assert_eq!(ok.error, None);
        let failed = Outcome::from_exit(Some(3), None, None);
        assert_eq!(failed.status, ExecutionStatus::Failed);
        assert_eq!(failed.exit_code, Some(3));
        assert_eq!(failed.error.as_deref(), Some("exited with status 3"));
        let killed = Outcome::from_exit(None, Some(9), None);
        assert_eq!(killed.status, ExecutionStatus::Failed);
        assert_eq!(killed.error.as_deref(), Some("killed by signal SIGKILL"));
        let timed_out = Outcome::from_exit(
            None,
            Some(15),
            Some(&StopReason::TimedOut(Duration::from_secs(5))),
        );
        assert_eq!(timed_out.status, ExecutionStatus::TimedOut);
        assert_eq!(
            timed_out.error.as_deref(),
            Some("timed out after 5s (killed by signal SIGTERM)")
        );
        let cancelled = Outcome::from_exit(
            Some(0),
            None,
            Some(&StopReason::Cancelled("by alice".into())),
        );
        assert_eq!(cancelled.status, ExecutionStatus::Cancelled);
        assert_eq!(cancelled.exit_code, Some(0));
        // A run stopped by the worker's own leaving failed (cancelled is
        // only reachable through cancelling).
        let drained = Outcome::from_exit(None, Some(9), Some(&StopReason::DrainTimeout));
        assert_eq!(drained.status, ExecutionStatus::Failed);
        let fenced = Outcome::from_exit(
            None,
            Some(15),
            Some(&StopReason::Fenced(Duration::from_secs(90))),
        );
        assert_eq!(fenced.status, ExecutionStatus::Failed);
        assert!(fenced.error.unwrap().contains("90s"));
    }
}
