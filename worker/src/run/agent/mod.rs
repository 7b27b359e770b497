//! AI coding agents: one [`AgentProtocol`] per way of talking to a CLI.
//!
//! A protocol is a state machine without I/O: the supervisor
//! ([`supervise`]) feeds it what the agent wrote and the clock, and carries
//! out the [`Action`]s it returns (write to the agent's stdin, type into its
//! terminal, report the session id, end the turn). That keeps every
//! protocol's rules testable line by line, and the process, tmux and socket
//! handling in one place for all of them.
//!
//! - [`claude`]: Claude Code `stream-json` over stdin/stdout;
//! - [`codex`]: Codex `app-server`, JSON-RPC over stdin/stdout;
//! - [`gemini`]: an interactive CLI in a terminal (Gemini), driven with
//!   tmux keys and read from the pane.
//!
//! [`trouble`] puts what goes wrong in a person's words, and holds the
//! stall rule every protocol applies to a CLI that only retries.

pub(crate) mod claude;
pub(crate) mod codex;
pub(crate) mod discovery;
pub(crate) mod gemini;
pub(crate) mod supervise;
pub(crate) mod trouble;

use tokio::time::Instant;

use super::pane::StdioMode;

/// What the supervisor is asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Write these bytes to the agent's stdin (pipe mode).
    Write(Vec<u8>),
    /// Type this text into the agent's terminal, then Enter (terminal mode).
    TypeLine(String),
    /// The agent's session id is known.
    Session(String),
    /// The turn is over (or cannot go on): end the agent with this verdict.
    Finish(Verdict),
    /// The agent is stuck (retrying with no end): end it now with this
    /// verdict, without the grace a finished turn gets to exit by itself.
    Abort(Verdict),
    /// What the agent is going through now, for the run's live status (a
    /// retry notice); `None`: that has passed.
    Status(Option<String>),
    /// Read the terminal as it is drawn now and hand it to
    /// [`AgentProtocol::on_screen`] (terminal mode).
    ReadScreen,
}

/// How a turn ended, in the protocol's own terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub ok: bool,
    /// One-line error when not ok.
    pub error: Option<String>,
}

impl Verdict {
    pub fn success() -> Self {
        Self {
            ok: true,
            error: None,
        }
    }

    pub fn failure(error: impl Into<String>) -> Self {
        Self {
            ok: false,
            error: Some(one_line(&error.into())),
        }
    }
}

/// How the agent process ended, for [`AgentProtocol::on_exit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Exit {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exited with status {code}"),
            (None, Some(signal)) => write!(f, "killed by signal {}", super::signal_name(signal)),
            (None, None) => write!(f, "ended with an unknown status"),
        }
    }
}

/// One way of talking to an AI coding agent CLI.
pub(crate) trait AgentProtocol: Send + Sync {
    /// How the agent's stdio is wired.
    fn stdio(&self) -> StdioMode;
    /// What to do once the agent is started.
    fn start(&mut self, now: Instant) -> Vec<Action>;
    /// A complete line of the agent's output, without its newline (pipe mode).
    fn on_line(&mut self, _line: &[u8], _now: Instant) -> Vec<Action> {
        Vec::new()
    }
    /// The agent wrote something (terminal mode).
    fn on_output(&mut self, _now: Instant) {}
    /// The terminal's text as drawn, after [`Action::ReadScreen`] (its
    /// scrollback first, one line per row, no escape sequences); `Err`:
    /// it could not be read.
    fn on_screen(&mut self, _screen: Result<&str, &str>, _now: Instant) -> Vec<Action> {
        Vec::new()
    }
    /// When [`on_deadline`](Self::on_deadline) wants to be called.
    fn deadline(&self) -> Option<Instant> {
        None
    }
    fn on_deadline(&mut self, _now: Instant) -> Vec<Action> {
        Vec::new()
    }
    /// The agent ended before the protocol finished the turn.
    fn on_exit(&mut self, exit: Exit) -> Verdict;
}

/// The first line of `text`, trimmed and at most 500 characters: what
/// `executions.error` holds.
pub(crate) fn one_line(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let mut out: String = line.chars().take(500).collect();
    if line.chars().count() > 500 {
        out.push('…');
    }
    out
}

/// Splits a byte stream into lines; a line longer than `max` is skipped (it
/// is still in the log, only not parsed).
#[derive(Debug)]
pub(crate) struct LineSplitter {
    partial: Vec<u8>,
    overflowed: bool,
    max: usize,
}

impl LineSplitter {
    pub fn new(max: usize) -> Self {
        Self {
            partial: Vec::new(),
            overflowed: false,
            max,
        }
    }

    /// Calls `each` for every line completed by `data`.
    pub fn push(&mut self, mut data: &[u8], mut each: impl FnMut(&[u8])) {
        while let Some(pos) = data.iter().position(|&b| b == b'\n') {
            let (head, rest) = data.split_at(pos);
            if !self.overflowed {
                if self.partial.is_empty() {
                    each(strip_cr(head));
                } else {
                    self.partial.extend_from_slice(head);
                    each(strip_cr(&self.partial));
                }
            }
            self.partial.clear();
            self.overflowed = false;
            data = &rest[1..];
        }
        if !self.overflowed {
            self.partial.extend_from_slice(data);
            if self.partial.len() > self.max {
                self.partial = Vec::new();
                self.overflowed = true;
            }
        }
    }

    /// The unterminated last line, at EOF.
    pub fn finish(&mut self, each: impl FnOnce(&[u8])) {
        if !self.overflowed && !self.partial.is_empty() {
            each(strip_cr(&self.partial));
        }
        self.partial.clear();
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// `value` at a dotted path (`"session_id"`, `"result.thread.id"`) as a
/// non-empty string.
pub(crate) fn string_at<'a>(value: &'a serde_json::Value, path: &str) -> Option<&'a str> {
    path.split('.')
        .try_fold(value, |v, key| v.get(key))?
        .as_str()
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let mut s = LineSplitter::new(8);
        let mut got = Vec::new();
        s.push(b"ab\r\ncd", |l| got.push(l.to_vec()));
        s.push(b"e\n\nxxxxxxxxxxxxxxx", |l| got.push(l.to_vec()));
        s.push(b"yyy\nok", |l| got.push(l.to_vec()));
        s.finish(|l| got.push(l.to_vec()));
        assert_eq!(
            got,
            vec![b"ab".to_vec(), b"cde".to_vec(), vec![], b"ok".to_vec()]
        );
    }

    #[test]
    fn paths_and_lines() {
        let v = serde_json::json!({"a": {"b": "x"}, "e": ""});
        assert_eq!(string_at(&v, "a.b"), Some("x"));
        assert_eq!(string_at(&v, "e"), None);
        assert_eq!(string_at(&v, "a.c"), None);
        assert_eq!(one_line("\n  boom \nmore"), "boom");
    }
}
