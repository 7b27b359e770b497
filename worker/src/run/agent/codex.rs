//! Codex `app-server`: JSON-RPC 2.0 over stdin/stdout, one JSON object per
//! line, without the `"jsonrpc"` member (as the app-server speaks it).
//!
//! Handshake and turn: `initialize` → `initialized` (notification) →
//! `thread/start {cwd}` (or `thread/resume {threadId}` for a continuation)
//! → `turn/start {threadId, input}` → wait for the `turn/completed`
//! notification, whose `turn.status` says how it went. The thread id is the
//! session ref. Requests from the app-server (approvals) are declined: a run
//! has nobody to ask, and the agent is started with `approvalPolicy: never`.
//!
//! Trouble: an `error` notification with `willRetry: true` (Codex 0.169 with
//! no network: `Reconnecting... 2/5` … `5/5`, then `Reconnecting... waiting
//! for network` every few seconds, for ever) is the run's live status and
//! starts the stall rule's clock; any `item/*` notification of the agent's
//! work stops it. `codexErrorInfo` says which trouble it is.

use serde_json::{Value, json};
use tokio::time::Instant;

use super::trouble::{AgentSettings, CODEX, Stall, Trouble, classify_text, explain};
use super::{Action, AgentProtocol, Exit, Verdict};
use crate::run::pane::StdioMode;

const INITIALIZE: u64 = 1;
const THREAD: u64 = 2;
const TURN: u64 = 3;

pub(crate) struct AppServer {
    prompt: String,
    cwd: String,
    resume: Option<String>,
    thread_id: Option<String>,
    finished: bool,
    worker: String,
    stall: Stall,
}

/// The trouble behind an `error` (a notification's, or a failed turn's):
/// its `codexErrorInfo` (a string, or an object keyed by the variant), else
/// its words.
fn trouble_of(error: &Value) -> (Trouble, String) {
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("no error message");
    let detail = match error.get("additionalDetails").and_then(Value::as_str) {
        Some(more) if !more.is_empty() => format!("{message}: {more}"),
        _ => message.to_string(),
    };
    let info = error.get("codexErrorInfo");
    let variant = info
        .and_then(Value::as_str)
        .or_else(|| info?.as_object()?.keys().next().map(String::as_str))
        .unwrap_or("");
    let trouble = match variant {
        "unauthorized" => Trouble::NotLoggedIn,
        "usageLimitExceeded" => Trouble::RateLimited,
        "httpConnectionFailed"
        | "responseStreamConnectionFailed"
        | "responseStreamDisconnected"
        | "responseTooManyFailedAttempts" => Trouble::Network,
        "badRequest" | "cyberPolicy" | "contextWindowExceeded" => Trouble::Refused,
        "serverOverloaded" | "internalServerError" => Trouble::Service,
        _ => classify_text(&detail),
    };
    (trouble, detail)
}

impl AppServer {
    pub fn new(
        prompt: String,
        cwd: String,
        resume: Option<String>,
        settings: &AgentSettings,
    ) -> Self {
        Self {
            prompt,
            cwd,
            resume,
            thread_id: None,
            finished: false,
            worker: settings.worker.clone(),
            stall: Stall::new(settings.stall_after),
        }
    }

    fn finish(&mut self, verdict: Verdict) -> Vec<Action> {
        self.finished = true;
        vec![Action::Finish(verdict)]
    }

    fn on_response(&mut self, id: u64, value: &Value) -> Vec<Action> {
        if let Some(error) = value.get("error") {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no message");
            let call = match id {
                INITIALIZE => "initialize",
                THREAD if self.resume.is_some() => "thread/resume",
                THREAD => "thread/start",
                TURN => "turn/start",
                _ => return Vec::new(),
            };
            return self.finish(Verdict::failure(format!("codex {call} failed: {message}")));
        }
        let result = value.get("result").unwrap_or(&Value::Null);
        match id {
            INITIALIZE => {
                let thread = match &self.resume {
                    Some(thread_id) => {
                        request(THREAD, "thread/resume", json!({ "threadId": thread_id }))
                    }
                    None => request(
                        THREAD,
                        "thread/start",
                        json!({ "cwd": self.cwd, "approvalPolicy": "never" }),
                    ),
                };
                vec![
                    Action::Write(line(&json!({ "method": "initialized" }))),
                    Action::Write(thread),
                ]
            }
            THREAD => {
                let Some(thread_id) = result
                    .pointer("/thread/id")
                    .and_then(Value::as_str)
                    .filter(|id| !id.is_empty())
                else {
                    return self.finish(Verdict::failure(
                        "codex answered the thread request without a thread id",
                    ));
                };
                self.thread_id = Some(thread_id.to_string());
                vec![
                    Action::Session(thread_id.to_string()),
                    Action::Write(request(
                        TURN,
                        "turn/start",
                        json!({
                            "threadId": thread_id,
                            "input": [{ "type": "text", "text": self.prompt }],
                        }),
                    )),
                ]
            }
            _ => Vec::new(),
        }
    }

    fn on_notification(&mut self, method: &str, params: &Value, now: Instant) -> Vec<Action> {
        if method == "error" {
            let (trouble, detail) = trouble_of(params.get("error").unwrap_or(&Value::Null));
            let explained = explain(CODEX, trouble, &self.worker, &detail);
            if params.get("willRetry").and_then(Value::as_bool) == Some(true) {
                self.stall.trouble(now, explained.clone());
            }
            // A final error is followed by `turn/completed` (failed), which
            // ends the run; until then it is the status either way.
            return vec![Action::Status(Some(explained))];
        }
        if method.starts_with("item/") {
            // The user's own message comes back as an item before any
            // answer: not the agent's progress.
            if params.pointer("/item/type").and_then(Value::as_str) == Some("userMessage") {
                return Vec::new();
            }
            let was_stalling = self.stall.deadline().is_some();
            self.stall.progress();
            return if was_stalling {
                vec![Action::Status(None)]
            } else {
                Vec::new()
            };
        }
        if method != "turn/completed" {
            return Vec::new();
        }
        let turn = params.get("turn").unwrap_or(&Value::Null);
        let status = turn.get("status").and_then(Value::as_str).unwrap_or("");
        let verdict = match status {
            "completed" => Verdict::success(),
            "interrupted" => Verdict::failure("codex turn was interrupted"),
            other => {
                let error = turn.get("error").unwrap_or(&Value::Null);
                let (trouble, detail) = trouble_of(error);
                match trouble {
                    Trouble::Other => {
                        let status = if other.is_empty() { "unknown" } else { other };
                        Verdict::failure(format!("codex turn {status}: {detail}"))
                    }
                    trouble => Verdict::failure(explain(CODEX, trouble, &self.worker, &detail)),
                }
            }
        };
        self.finish(verdict)
    }
}

/// Answer to a request of the app-server: approvals are declined, anything
/// else is not something this client implements.
fn answer(id: &Value, method: &str) -> Action {
    let reply = if method.ends_with("requestApproval") {
        json!({ "id": id, "result": { "decision": "decline" } })
    } else {
        json!({
            "id": id,
            "error": { "code": -32601, "message": format!("{method} is not supported by Agent Monitor") },
        })
    };
    Action::Write(line(&reply))
}

fn request(id: u64, method: &str, params: Value) -> Vec<u8> {
    line(&json!({ "id": id, "method": method, "params": params }))
}

fn line(value: &Value) -> Vec<u8> {
    let mut out = value.to_string().into_bytes();
    out.push(b'\n');
    out
}

impl AgentProtocol for AppServer {
    fn stdio(&self) -> StdioMode {
        StdioMode::Pipes
    }

    fn start(&mut self, _now: Instant) -> Vec<Action> {
        vec![Action::Write(request(
            INITIALIZE,
            "initialize",
            json!({
                "clientInfo": {
                    "name": "agent-monitor",
                    "title": "Agent Monitor",
                    "version": env!("CARGO_PKG_VERSION"),
                },
            }),
        ))]
    }

    fn on_line(&mut self, raw: &[u8], now: Instant) -> Vec<Action> {
        if self.finished {
            return Vec::new();
        }
        let Ok(value @ Value::Object(_)) = serde_json::from_slice::<Value>(raw) else {
            return Vec::new();
        };
        let method = value.get("method").and_then(Value::as_str);
        match (value.get("id"), method) {
            (Some(id), Some(method)) => vec![answer(id, method)],
            (Some(id), None) => match id.as_u64() {
                Some(id) => self.on_response(id, &value),
                None => Vec::new(),
            },
            (None, Some(method)) => {
                self.on_notification(method, value.get("params").unwrap_or(&Value::Null), now)
            }
            (None, None) => Vec::new(),
        }
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
        let stage = match self.thread_id {
            None => "before a thread was started",
            Some(_) => "before the turn completed",
        };
        Verdict::failure(format!("codex app-server {exit} {stage}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AgentSettings {
        AgentSettings {
            worker: "w1".into(),
            stall_after: std::time::Duration::from_secs(30),
        }
    }

    /// `on_line` at one instant: these tests are about the order of lines.
    trait Feed {
        fn line(&mut self, raw: &[u8]) -> Vec<Action>;
    }

    impl Feed for AppServer {
        fn line(&mut self, raw: &[u8]) -> Vec<Action> {
            self.on_line(raw, Instant::now())
        }
    }

    fn sent(actions: &[Action]) -> Vec<Value> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Write(bytes) => Some(serde_json::from_slice(bytes).unwrap()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn new_thread() {
        let mut p = AppServer::new("hello".into(), "/work".into(), None, &settings());
        let init = sent(&p.start(Instant::now()));
        assert_eq!(init[0]["method"], "initialize");
        assert_eq!(init[0]["id"], 1);
        assert!(init[0].get("jsonrpc").is_none());
        let next = sent(&p.line(br#"{"id":1,"result":{"userAgent":"codex/1"}}"#));
        assert_eq!(next[0]["method"], "initialized");
        assert_eq!(next[1]["method"], "thread/start");
        assert_eq!(next[1]["params"]["cwd"], "/work");
        let actions = p.line(br#"{"id":2,"result":{"thread":{"id":"thr_9"}}}"#);
        assert_eq!(actions[0], Action::Session("thr_9".into()));
        let turn = sent(&actions);
        assert_eq!(turn[0]["method"], "turn/start");
        assert_eq!(turn[0]["params"]["threadId"], "thr_9");
        assert_eq!(turn[0]["params"]["input"][0]["text"], "hello");
        assert!(
            p.line(br#"{"method":"item/agentMessage/delta","params":{"delta":"hi"}}"#)
                .is_empty()
        );
        let approval = sent(
            &p.line(br#"{"id":"s1","method":"item/commandExecution/requestApproval","params":{}}"#),
        );
        assert_eq!(approval[0]["id"], "s1");
        assert_eq!(approval[0]["result"]["decision"], "decline");
        assert_eq!(
            p.line(br#"{"method":"turn/completed","params":{"threadId":"thr_9","turn":{"id":"t","status":"completed"}}}"#),
            vec![Action::Finish(Verdict::success())]
        );
    }

    #[test]
    fn resume_and_failures() {
        let mut p = AppServer::new("more".into(), "/".into(), Some("thr_1".into()), &settings());
        p.start(Instant::now());
        let next = sent(&p.line(br#"{"id":1,"result":{}}"#));
        assert_eq!(next[1]["method"], "thread/resume");
        assert_eq!(next[1]["params"]["threadId"], "thr_1");
        p.line(br#"{"id":2,"result":{"thread":{"id":"thr_1"}}}"#);
        assert_eq!(
            p.line(br#"{"method":"turn/completed","params":{"turn":{"status":"failed","error":{"message":"usage limit"}}}}"#),
            vec![Action::Finish(Verdict::failure("Codex is rate-limited on worker w1: its account's limit was reached, try again later (usage limit)"))]
        );

        let mut p = AppServer::new("x".into(), "/".into(), None, &settings());
        p.start(Instant::now());
        assert_eq!(
            p.line(br#"{"id":1,"error":{"code":-1,"message":"not logged in"}}"#),
            vec![Action::Finish(Verdict::failure(
                "codex initialize failed: not logged in"
            ))]
        );
        let mut p = AppServer::new("x".into(), "/".into(), None, &settings());
        assert_eq!(
            p.on_exit(Exit {
                code: Some(1),
                signal: None
            })
            .error
            .as_deref(),
            Some("codex app-server exited with status 1 before a thread was started")
        );
    }

    /// What Codex 0.169.0 sent with no network (trimmed): retries, then
    /// waiting for the network for ever; the stall rule ends it.
    #[test]
    fn offline_retries_stall() {
        let t0 = Instant::now();
        let mut p = AppServer::new("hi".into(), "/".into(), None, &settings());
        p.start(t0);
        p.on_line(br#"{"id":1,"result":{}}"#, t0);
        p.on_line(br#"{"id":2,"result":{"thread":{"id":"thr_1"}}}"#, t0);
        let user =
            br#"{"method":"item/started","params":{"item":{"type":"userMessage","id":"u"}}}"#;
        assert!(p.on_line(user, t0).is_empty());
        assert_eq!(p.deadline(), None);
        let retry = br#"{"method":"error","params":{"error":{"message":"Reconnecting... 2/5","codexErrorInfo":{"responseStreamDisconnected":{"httpStatusCode":null}},"additionalDetails":"stream disconnected before completion: failed to lookup address information: Name does not resolve"},"willRetry":true,"threadId":"thr_1"}}"#;
        let actions = p.on_line(retry, t0);
        let expected = "Codex cannot reach its service from worker w1: check that machine's \
                        network or proxy (Reconnecting... 2/5: stream disconnected before \
                        completion: failed to lookup address information: Name does not resolve)";
        assert_eq!(actions, vec![Action::Status(Some(expected.into()))]);
        let later = t0 + std::time::Duration::from_secs(20);
        let waiting = br#"{"method":"error","params":{"error":{"message":"Reconnecting... waiting for network","codexErrorInfo":{"responseStreamDisconnected":{"httpStatusCode":null}},"additionalDetails":"Connection failed: error sending request"},"willRetry":true}}"#;
        p.on_line(waiting, later);
        // The clock runs from the first retry.
        let due = t0 + std::time::Duration::from_secs(30);
        assert_eq!(p.deadline(), Some(due));
        let actions = p.on_deadline(due);
        let [Action::Abort(verdict)] = actions.as_slice() else {
            panic!("{actions:?}")
        };
        assert_eq!(
            verdict.error.as_deref(),
            Some(
                "Codex cannot reach its service from worker w1: check that machine's network or \
                 proxy (Reconnecting... waiting for network: Connection failed: error sending \
                 request); no progress for 30s while it retried, so the run was stopped"
            )
        );
        assert_eq!(p.deadline(), None);

        // The agent's own items are progress: the clock stops.
        let mut p = AppServer::new("hi".into(), "/".into(), None, &settings());
        p.on_line(retry, t0);
        assert!(p.deadline().is_some());
        let delta = br#"{"method":"item/agentMessage/delta","params":{"delta":"hi"}}"#;
        assert_eq!(p.on_line(delta, t0), vec![Action::Status(None)]);
        assert_eq!(p.deadline(), None);
        // A turn that fails for want of a login says so.
        let failed = br#"{"method":"turn/completed","params":{"turn":{"status":"failed","error":{"message":"401 Unauthorized","codexErrorInfo":"unauthorized"}}}}"#;
        assert_eq!(
            p.on_line(failed, t0),
            vec![Action::Finish(Verdict::failure(
                "Codex is not logged in on worker w1: run `codex` there once and log in \
                 (401 Unauthorized)"
            ))]
        );
    }
}
