//! Claude Code in `stream-json` mode (`claude -p --verbose --output-format
//! stream-json --input-format stream-json`).
//!
//! The prompt goes in as one user message on stdin; the CLI answers with one
//! JSON object per line: a `system`/`init` line carrying the session id,
//! `assistant`/`user` lines as the turn goes, and a final `result` line whose
//! `is_error` says how the turn went. stdin is then closed, which ends the
//! CLI. Lines that are not JSON are kept in the log and otherwise ignored.
//!
//! What went wrong is read from the CLI's own codes: an `assistant` line
//! with an `error` (`authentication_failed`, `rate_limit`…) comes before a
//! failed `result`, and a `system`/`api_retry` line says it is retrying an
//! API call (the run's live status, and the stall rule's clock). Claude Code
//! 2.1 ends a turn that never reached the model (no login) with
//! `subtype: "success"` and `is_error: true`: `is_error` decides.

use serde_json::{Value, json};
use tokio::time::Instant;

use super::trouble::{AgentSettings, CLAUDE, Stall, Trouble, classify_text, explain};
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
    worker: String,
    /// The `error` code of the last assistant message that carried one.
    error_code: Option<String>,
    /// The model refused the turn (`system`/`model_refusal_no_fallback`),
    /// with its explanation.
    refusal: Option<String>,
    stall: Stall,
    finished: bool,
}

/// The kind of trouble behind an assistant message's `error` code.
fn code_trouble(code: &str) -> Trouble {
    match code {
        "authentication_failed" | "oauth_org_not_allowed" | "verification_required" => {
            Trouble::NotLoggedIn
        }
        "rate_limit" => Trouble::RateLimited,
        "invalid_request" | "model_not_found" => Trouble::Refused,
        "overloaded" | "server_error" => Trouble::Service,
        _ => Trouble::Other,
    }
}

impl StreamJson {
    pub fn new(prompt: String, session_field: Option<String>, settings: &AgentSettings) -> Self {
        Self {
            prompt,
            session_field: session_field
                .filter(|f| !f.is_empty())
                .unwrap_or_else(|| DEFAULT_SESSION_FIELD.into()),
            session: None,
            malformed: 0,
            worker: settings.worker.clone(),
            error_code: None,
            refusal: None,
            stall: Stall::new(settings.stall_after),
            finished: false,
        }
    }

    fn result_verdict(&self, value: &Value) -> Verdict {
        // A refused turn did none of the work, whatever the result says.
        if let Some(explanation) = &self.refusal {
            return Verdict::failure(explain(CLAUDE, Trouble::Refused, &self.worker, explanation));
        }
        let is_error = value
            .get("is_error")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if !is_error {
            return Verdict::success();
        }
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
            })
            .unwrap_or_default();
        let trouble = match self.error_code.as_deref().map(code_trouble) {
            Some(Trouble::Other) | None => classify_text(&detail),
            Some(trouble) => trouble,
        };
        Verdict::failure(match (trouble, subtype) {
            // An error of the turn's own work: Claude's words for it.
            (Trouble::Other, subtype) if subtype != "success" && detail.is_empty() => {
                format!("claude reported {subtype}")
            }
            (Trouble::Other, subtype) if subtype != "success" => {
                format!("claude reported {subtype}: {detail}")
            }
            (trouble, _) => explain(CLAUDE, trouble, &self.worker, &detail),
        })
    }

    /// `system`/`api_retry`: the CLI is retrying an API call.
    fn retrying(&mut self, value: &Value, now: Instant) -> Vec<Action> {
        let code = value.get("error").and_then(Value::as_str).unwrap_or("");
        let status = value.get("error_status").and_then(Value::as_i64);
        let trouble = match code_trouble(code) {
            Trouble::Other if status.is_none() => Trouble::Network,
            Trouble::Other => classify_text(code),
            trouble => trouble,
        };
        let mut detail = if code.is_empty() {
            "API error".to_string()
        } else {
            code.to_string()
        };
        if let Some(status) = status {
            detail.push_str(&format!(", HTTP {status}"));
        }
        let attempt = value.get("attempt").and_then(Value::as_i64);
        let max = value.get("max_retries").and_then(Value::as_i64);
        if let (Some(attempt), Some(max)) = (attempt, max) {
            detail.push_str(&format!("; retry {attempt} of {max}"));
        }
        let explained = explain(CLAUDE, trouble, &self.worker, &detail);
        self.stall.trouble(now, explained.clone());
        vec![Action::Status(Some(explained))]
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

    fn on_line(&mut self, line: &[u8], now: Instant) -> Vec<Action> {
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
        let kind = value.get("type").and_then(Value::as_str).unwrap_or("");
        let subtype = value.get("subtype").and_then(Value::as_str).unwrap_or("");
        match (kind, subtype) {
            ("result", _) => {
                self.finished = true;
                actions.push(Action::Finish(self.result_verdict(&value)));
            }
            ("system", "api_retry") => actions.extend(self.retrying(&value, now)),
            ("system", "model_refusal_no_fallback") => {
                let said = |key| {
                    value
                        .get(key)
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                };
                self.refusal = Some(
                    said("api_refusal_explanation")
                        .or_else(|| said("content"))
                        .unwrap_or("no explanation")
                        .to_string(),
                );
            }
            ("assistant", _) if value.get("error").is_some_and(|e| !e.is_null()) => {
                self.error_code = value
                    .get("error")
                    .and_then(Value::as_str)
                    .map(str::to_string);
            }
            // The model answered (or a tool ran): the turn is moving.
            ("assistant" | "user" | "stream_event", _) => {
                if self.stall.deadline().is_some() {
                    actions.push(Action::Status(None));
                }
                self.stall.progress();
            }
            _ => {}
        }
        actions
    }

    fn deadline(&self) -> Option<Instant> {
        if self.finished {
            return None;
        }
        self.stall.deadline()
    }

    fn on_deadline(&mut self, now: Instant) -> Vec<Action> {
        match self.stall.expired(now) {
            Some(error) if !self.finished => {
                self.finished = true;
                vec![Action::Abort(Verdict::failure(error))]
            }
            _ => Vec::new(),
        }
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
        p.on_line(line.as_bytes(), Instant::now())
    }

    fn settings() -> AgentSettings {
        AgentSettings {
            worker: "w1".into(),
            stall_after: std::time::Duration::from_secs(60),
        }
    }

    #[test]
    fn a_turn() {
        let mut p = StreamJson::new("fix \"it\"\nnow".into(), None, &settings());
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
        let mut p = StreamJson::new("x".into(), Some("sid".into()), &settings());
        assert_eq!(
            feed(&mut p, r#"{"type":"system","subtype":"init","sid":"abc"}"#),
            vec![Action::Session("abc".into())]
        );
        assert_eq!(
            feed(
                &mut p,
                r#"{"type":"result","subtype":"error_during_execution","is_error":true,"result":"disk\nfull"}"#
            ),
            vec![Action::Finish(Verdict::failure(
                "claude reported error_during_execution: disk"
            ))]
        );
        let mut p = StreamJson::new("x".into(), None, &settings());
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

    /// What Claude Code 2.1.328 printed with no login (HOME empty), cut to
    /// the fields that matter.
    #[test]
    fn not_logged_in_is_said_plainly() {
        let mut p = StreamJson::new("hi".into(), None, &settings());
        feed(
            &mut p,
            r#"{"type":"system","subtype":"init","session_id":"s-2"}"#,
        );
        assert!(
            feed(
                &mut p,
                r#"{"type":"assistant","message":{"content":[{"type":"text","text":"Not logged in · Please run /login"}]},"error":"authentication_failed","is_api_error_message":true}"#
            )
            .is_empty()
        );
        let actions = feed(
            &mut p,
            r#"{"type":"result","subtype":"success","is_error":true,"result":"Not logged in · Please run /login","terminal_reason":"api_error"}"#,
        );
        assert_eq!(
            actions,
            vec![Action::Finish(Verdict::failure(
                "Claude Code is not logged in on worker w1: run `claude` there once and log in \
                 (Not logged in · Please run /login)"
            ))]
        );
        // Success's subtype with is_error and no known trouble: not "reported success".
        let mut p = StreamJson::new("hi".into(), None, &settings());
        let actions = feed(
            &mut p,
            r#"{"type":"result","subtype":"success","is_error":true,"result":"something odd"}"#,
        );
        assert_eq!(
            actions,
            vec![Action::Finish(Verdict::failure(
                "Claude Code failed on worker w1: something odd"
            ))]
        );
    }

    /// Claude Code 2.1.328 says a refusal with no fallback model in a system
    /// line (shape from its SDK schema); the run fails saying so.
    #[test]
    fn a_refusal_fails_the_turn() {
        let mut p = StreamJson::new("hi".into(), None, &settings());
        feed(
            &mut p,
            r#"{"type":"system","subtype":"model_refusal_no_fallback","original_model":"m","request_id":null,"api_refusal_explanation":"This request violates the usage policy.","content":"I can't help with that."}"#,
        );
        assert_eq!(
            feed(
                &mut p,
                r#"{"type":"result","subtype":"success","is_error":false,"result":"I can't help with that."}"#
            ),
            vec![Action::Finish(Verdict::failure(
                "Claude Code on worker w1: the model refused the request (This request violates \
                 the usage policy.)"
            ))]
        );
    }

    #[test]
    fn retries_are_a_status_and_stall_the_run() {
        let t0 = Instant::now();
        let mut p = StreamJson::new("hi".into(), None, &settings());
        let retry = r#"{"type":"system","subtype":"api_retry","attempt":2,"max_retries":10,"retry_delay_ms":1000,"error_status":null,"error":"unknown"}"#;
        let actions = p.on_line(retry.as_bytes(), t0);
        let [Action::Status(Some(status))] = actions.as_slice() else {
            panic!("{actions:?}")
        };
        assert_eq!(
            status,
            "Claude Code cannot reach its service from worker w1: check that machine's network \
             or proxy (unknown; retry 2 of 10)"
        );
        assert_eq!(p.deadline(), Some(t0 + std::time::Duration::from_secs(60)));
        let busy = r#"{"type":"system","subtype":"api_retry","attempt":3,"max_retries":10,"error_status":529,"error":"overloaded"}"#;
        assert_eq!(
            p.on_line(busy.as_bytes(), t0),
            vec![Action::Status(Some(
                "Claude Code on worker w1: its service is overloaded or failing, nothing to fix \
                 on this side (overloaded, HTTP 529; retry 3 of 10)"
                    .into()
            ))]
        );
        // An answer is progress: the status clears, the clock stops.
        assert_eq!(
            p.on_line(br#"{"type":"assistant","message":{}}"#, t0),
            vec![Action::Status(None)]
        );
        assert_eq!(p.deadline(), None);
        let rate = r#"{"type":"system","subtype":"api_retry","attempt":1,"max_retries":10,"error_status":429,"error":"rate_limit"}"#;
        p.on_line(rate.as_bytes(), t0);
        let due = p.deadline().expect("the clock runs");
        assert!(
            p.on_deadline(due - std::time::Duration::from_millis(1))
                .is_empty()
        );
        let actions = p.on_deadline(due);
        let [Action::Abort(verdict)] = actions.as_slice() else {
            panic!("the stall ends the turn: {actions:?}")
        };
        assert_eq!(
            verdict.error.as_deref(),
            Some(
                "Claude Code is rate-limited on worker w1: its account's limit was reached, try \
                 again later (rate_limit, HTTP 429; retry 1 of 10); no progress for 60s while it \
                 retried, so the run was stopped"
            )
        );
        assert_eq!(p.deadline(), None);
    }
}
