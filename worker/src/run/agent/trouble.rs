//! What goes wrong with an AI CLI that a person can fix, in their words,
//! and the stall rule.
//!
//! The CLIs report trouble in their own shapes (Claude's assistant `error`
//! codes and `api_retry` lines, Codex's `codexErrorInfo`, Gemini's
//! dialogs); each protocol sorts it into a [`Trouble`], and [`explain`]
//! says it the same way for all of them, naming the worker where it
//! happened: a login, a network or a quota is fixed on that machine.
//!
//! A CLI that cannot reach its service usually retries by itself, for
//! minutes or forever (Codex waits for the network with no end). [`Stall`]
//! is the rule that ends such a run: retryable errors and no progress for
//! [`AgentSettings::stall_after`] fail it with the last error, instead of
//! leaving it `running` until its timeout with nothing saying why.

use std::time::Duration;

use tokio::time::Instant;

/// Default of [`AgentSettings::stall_after`]: long enough for a CLI's own
/// backoff to ride out a blip, short against a run's hour.
pub const DEFAULT_STALL_AFTER: Duration = Duration::from_secs(5 * 60);

/// What every AI agent run on this worker shares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentSettings {
    /// The worker's id, named in errors a person has to act on.
    pub worker: String,
    /// How long an agent may report only retryable errors, with no
    /// progress, before its run fails with the last of them; zero turns
    /// the rule off.
    pub stall_after: Duration,
}

#[cfg(test)]
impl AgentSettings {
    pub fn new(worker: impl Into<String>) -> Self {
        Self {
            worker: worker.into(),
            stall_after: DEFAULT_STALL_AFTER,
        }
    }
}

/// Which CLI, as a person knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cli {
    /// "Claude Code".
    pub name: &'static str,
    /// The command a person runs to log in (`claude`).
    pub command: &'static str,
}

pub(crate) const CLAUDE: Cli = Cli {
    name: "Claude Code",
    command: "claude",
};
pub(crate) const CODEX: Cli = Cli {
    name: "Codex",
    command: "codex",
};
pub(crate) const GEMINI: Cli = Cli {
    name: "Gemini CLI",
    command: "gemini",
};

/// Kinds of trouble a person fixes differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Trouble {
    /// No login, or an expired one.
    NotLoggedIn,
    /// The service cannot be reached from the worker.
    Network,
    /// A rate or usage limit.
    RateLimited,
    /// The model or the service refused the request as asked.
    Refused,
    /// The service answered with its own error (overloaded, internal).
    Service,
    /// Anything else the CLI reported.
    Other,
}

/// `trouble` of `cli` on `worker`, with the CLI's own `detail`, as one
/// sentence saying what to do where.
pub(crate) fn explain(cli: Cli, trouble: Trouble, worker: &str, detail: &str) -> String {
    let detail = super::one_line(detail);
    let tail = if detail.is_empty() {
        String::new()
    } else {
        format!(" ({detail})")
    };
    let Cli { name, command } = cli;
    match trouble {
        Trouble::NotLoggedIn => format!(
            "{name} is not logged in on worker {worker}: run `{command}` there once and log in{tail}"
        ),
        Trouble::Network => format!(
            "{name} cannot reach its service from worker {worker}: check that machine's network \
             or proxy{tail}"
        ),
        Trouble::RateLimited => format!(
            "{name} is rate-limited on worker {worker}: its account's limit was reached, try \
             again later{tail}"
        ),
        Trouble::Refused => {
            format!("{name} on worker {worker}: the model refused the request{tail}")
        }
        Trouble::Service => format!(
            "{name} on worker {worker}: its service is overloaded or failing, nothing to fix on \
             this side{tail}"
        ),
        Trouble::Other if detail.is_empty() => format!("{name} failed on worker {worker}"),
        Trouble::Other => format!("{name} failed on worker {worker}: {detail}"),
    }
}

/// Sorts an error's text when the CLI gave no code: the words CLIs use for
/// a missing login, a network failure or a limit.
pub(crate) fn classify_text(text: &str) -> Trouble {
    let t = text.to_ascii_lowercase();
    let any = |words: &[&str]| words.iter().any(|w| t.contains(w));
    if any(&[
        "not logged in",
        "please run /login",
        "invalid api key",
        "unauthorized",
        "authentication",
    ]) {
        Trouble::NotLoggedIn
    } else if any(&[
        "rate limit",
        "rate-limit",
        "usage limit",
        "quota",
        "too many requests",
    ]) {
        Trouble::RateLimited
    } else if any(&["overloaded", "internal server error", "service unavailable"]) {
        Trouble::Service
    } else if any(&[
        "network",
        "connection",
        "connect",
        "resolve",
        "dns",
        "timed out",
        "econnrefused",
        "enotfound",
        "getaddrinfo",
        "fetch failed",
        "disconnected",
    ]) {
        Trouble::Network
    } else {
        Trouble::Other
    }
}

/// The stall rule for one run: the clock starts at the first retryable
/// error after the last progress, and runs out [`AgentSettings::stall_after`]
/// later unless the agent makes progress.
#[derive(Debug)]
pub(crate) struct Stall {
    after: Option<Duration>,
    since: Option<Instant>,
    /// The last retryable error, as [`explain`] says it.
    last: Option<String>,
}

impl Stall {
    pub fn new(after: Duration) -> Self {
        Self {
            after: (!after.is_zero()).then_some(after),
            since: None,
            last: None,
        }
    }

    /// A retryable error: the CLI keeps trying by itself.
    pub fn trouble(&mut self, now: Instant, explained: String) {
        self.since.get_or_insert(now);
        self.last = Some(explained);
    }

    /// The agent did something: the clock stops.
    pub fn progress(&mut self) {
        self.since = None;
        self.last = None;
    }

    pub fn deadline(&self) -> Option<Instant> {
        Some(self.since? + self.after?)
    }

    /// The error the run fails with, once the clock ran out at `now`.
    pub fn expired(&self, now: Instant) -> Option<String> {
        let after = self.after?;
        if self.deadline()? > now {
            return None;
        }
        let last = self.last.as_deref().unwrap_or("retryable errors");
        Some(format!(
            "{last}; no progress for {} while it retried, so the run was stopped",
            crate::config::human_duration(after)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(
            explain(
                CLAUDE,
                Trouble::NotLoggedIn,
                "w1",
                "Not logged in · Please run /login"
            ),
            "Claude Code is not logged in on worker w1: run `claude` there once and log in \
             (Not logged in · Please run /login)"
        );
        assert_eq!(
            explain(CODEX, Trouble::Other, "w1", ""),
            "Codex failed on worker w1"
        );
        assert_eq!(
            classify_text("Not logged in · Please run /login"),
            Trouble::NotLoggedIn
        );
        assert_eq!(
            classify_text("failed to lookup address information: Name does not resolve"),
            Trouble::Network
        );
        assert_eq!(
            classify_text("You exceeded your current quota"),
            Trouble::RateLimited
        );
        assert_eq!(classify_text("the model said no"), Trouble::Other);
        assert_eq!(classify_text("Overloaded"), Trouble::Service);
        assert_eq!(
            explain(CODEX, Trouble::Service, "w1", "503 Service Unavailable"),
            "Codex on worker w1: its service is overloaded or failing, nothing to fix on this \
             side (503 Service Unavailable)"
        );
    }

    #[test]
    fn stall_clock() {
        let t0 = Instant::now();
        let mut stall = Stall::new(Duration::from_secs(60));
        assert_eq!(stall.deadline(), None);
        stall.trouble(t0, "first".into());
        stall.trouble(t0 + Duration::from_secs(10), "second".into());
        // The clock runs from the first error, the message is the last.
        assert_eq!(stall.deadline(), Some(t0 + Duration::from_secs(60)));
        assert_eq!(stall.expired(t0 + Duration::from_secs(59)), None);
        assert_eq!(
            stall.expired(t0 + Duration::from_secs(60)).as_deref(),
            Some("second; no progress for 60s while it retried, so the run was stopped")
        );
        stall.progress();
        assert_eq!(stall.deadline(), None);
        stall.trouble(t0 + Duration::from_secs(70), "again".into());
        assert_eq!(stall.deadline(), Some(t0 + Duration::from_secs(130)));

        let mut off = Stall::new(Duration::ZERO);
        off.trouble(t0, "x".into());
        assert_eq!(off.deadline(), None);
        assert_eq!(off.expired(t0 + Duration::from_secs(3600)), None);
    }
}
