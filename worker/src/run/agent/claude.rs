//! Claude Code in `stream-json` mode (`claude -p --verbose --output-format
//! stream-json --input-format stream-json`).
//!
//! The prompt goes in as one user message on stdin; the CLI answers with one
//! JSON object per line: a `system`/`init` line carrying the session id,
//! `assistant`/`user` lines as the turn goes, and a final `result` line whose
//! `is_error` says how the turn went. stdin is then closed, which ends the
//! CLI. Lines that are not JSON are kept in the log and otherwise ignored.

use serde_json::{Value, json};
use tokio::time::Instant;

use super::{Action, AgentProtocol, Exit, Verdict, string_at};
use crate::run::pane::StdioMode;

/// Field of the session id when the agent's config names none.
pub(crate) const DEFAULT_SESSION_FIELD: &str = "session_id";

pub(crate) struct StreamJson {
    prompt: String,
    session_field: String,
    session: Option<String>,
    /// Lines that were not JSON objects.
    malformed: u64,
}

impl StreamJson {
    pub fn new(prompt: String, session_field: Option<String>) -> Self {
        Self {
            prompt,
            session_field: session_field
                .filter(|f| !f.is_empty())
                .unwrap_or_else(|| DEFAULT_SESSION_FIELD.into()),
            session: None,
            malformed: 0,
        }
    }
}

impl AgentProtocol for StreamJson {
    fn stdio(&self) -> StdioMode {
        StdioMode::Pipes
    }

    fn start(&mut self, _now: Instant) -> Vec<Action> {
        let message = json!({
            "type": "user",
            "message": {"role": "user", "content": self.prompt},
        });
        let mut line = message.to_string().into_bytes();
        line.push(b'\n');
        vec![Action::Write(line)]
    }

    fn on_line(&mut self, line: &[u8]) -> Vec<Action> {
        let value: Value = match serde_json::from_slice(line) {
            Ok(value @ Value::Object(_)) => value,
            _ => {
                if !line.iter().all(u8::is_ascii_whitespace) {
                    self.malformed += 1;
                }
                return Vec::new();
            }
        };
        let mut actions = Vec::new();
        if self.session.is_none()
            && let Some(id) = string_at(&value, &self.session_field)
        {
            self.session = Some(id.to_string());
            actions.push(Action::Session(id.to_string()));
        }
        if value.get("type").and_then(Value::as_str) == Some("result") {
            let is_error = value
                .get("is_error")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let verdict = if is_error {
                let subtype = value
                    .get("subtype")
                    .and_then(Value::as_str)
                    .unwrap_or("error");
                let detail = value
                    .get("result")
                    .and_then(Value::as_str)
                    .filter(|r| !r.trim().is_empty())
                    .map(str::to_string)
                    .or_else(|| {
                        value
                            .get("errors")
                            .and_then(Value::as_array)
                            .and_then(|errors| errors.first())
                            .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_string))
                    });
                Verdict::failure(match detail {
                    Some(detail) => format!("claude reported {subtype}: {detail}"),
                    None => format!("claude reported {subtype}"),
                })
            } else {
                Verdict::success()
            };
            actions.push(Action::Finish(verdict));
        }
        actions
    }

    fn on_exit(&mut self, exit: Exit) -> Verdict {
        let malformed = match self.malformed {
            0 => String::new(),
            1 => "; 1 output line was not JSON".to_string(),
            n => format!("; {n} output lines were not JSON"),
        };
        Verdict::failure(format!("claude {exit} without a result line{malformed}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(p: &mut StreamJson, line: &str) -> Vec<Action> {
        p.on_line(line.as_bytes())
    }

    #[test]
    fn a_turn() {
        let mut p = StreamJson::new("fix \"it\"\nnow".into(), None);
        let Action::Write(first) = &p.start(Instant::now())[0] else {
            panic!("writes the prompt first")
        };
        let sent: Value = serde_json::from_slice(first).unwrap();
        assert_eq!(sent["type"], "user");
        assert_eq!(sent["message"]["role"], "user");
        assert_eq!(sent["message"]["content"], "fix \"it\"\nnow");
        assert_eq!(first.iter().filter(|&&b| b == b'\n').count(), 1);

        assert_eq!(
            feed(
                &mut p,
                r#"{"type":"system","subtype":"init","session_id":"s-1","tools":[]}"#
            ),
            vec![Action::Session("s-1".into())]
        );
        assert!(feed(&mut p, "not json at all").is_empty());
        assert!(
            feed(
                &mut p,
                r#"{"type":"assistant","session_id":"s-1","message":{}}"#
            )
            .is_empty()
        );
        assert_eq!(
            feed(
                &mut p,
                r#"{"type":"result","subtype":"success","is_error":false,"result":"done","session_id":"s-1"}"#
            ),
            vec![Action::Finish(Verdict::success())]
        );
    }

    #[test]
    fn failures() {
        let mut p = StreamJson::new("x".into(), Some("sid".into()));
        assert_eq!(
            feed(&mut p, r#"{"type":"system","subtype":"init","sid":"abc"}"#),
            vec![Action::Session("abc".into())]
        );
        assert_eq!(
            feed(
                &mut p,
                r#"{"type":"result","subtype":"error_during_execution","is_error":true,"result":"quota\nexceeded"}"#
            ),
            vec![Action::Finish(Verdict::failure(
                "claude reported error_during_execution: quota"
            ))]
        );
        let mut p = StreamJson::new("x".into(), None);
        feed(&mut p, "{oops");
        feed(&mut p, "[1]");
        let v = p.on_exit(Exit {
            code: Some(0),
            signal: None,
        });
        assert_eq!(
            v.error.as_deref(),
            Some("claude exited with status 0 without a result line; 2 output lines were not JSON")
        );
    }
}
