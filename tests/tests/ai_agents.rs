//! AI coding agents end to end: a real server, real `amon-worker` processes,
//! and fake CLIs (`tests/fixtures/`) speaking Claude Code's stream-json,
//! Codex's app-server JSON-RPC and an interactive Gemini-like terminal UI,
//! on SQLite and PostgreSQL. What a user sees: statuses, errors, session
//! refs, continuation chains, raw logs, and no tmux session left behind.

use std::path::{Path, PathBuf};
use std::time::Duration;

use amon_proto::v1::{
    Agent, AgentSessionConfig, Capability, ContinueExecutionRequest, CreatePresetAgentRequest,
    Execution, ExecutionStatus, GetExecutionRequest, Task, TaskInputContext, UpdateAgentRequest,
    UpdateCapabilityRequest,
};
use amon_tests::{
    api::{Api, strings},
    both_backends,
    db::TestDb,
    server::TestServer,
    worker::{TestWorker, unique_worker},
};
use anyhow::Result;
use serde_json::{Value, json};
use tonic::Code;

const WAIT: Duration = Duration::from_secs(30);

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

struct Setup {
    server: TestServer,
    api: Api,
    worker: Option<TestWorker>,
    worker_id: String,
    /// Where the fakes record how they were started.
    record: tempfile::TempDir,
    /// The worker's HOME.
    home: tempfile::TempDir,
}

impl Setup {
    async fn new(db: &TestDb, slots: u32) -> Self {
        Self::with_worker_args(db, slots, &[]).await
    }

    /// With `args` on the worker's command line.
    async fn with_worker_args(db: &TestDb, slots: u32, args: &[&str]) -> Self {
        let server = TestServer::start_with_args(Some(db.url()), &["--no-local-worker"]).await;
        let api = Api::new(server.channel().await);
        let worker_id = unique_worker("ai");
        // Its own HOME: the fakes keep their sessions there, as the real
        // CLIs do, and concurrent tests must not see each other's.
        let home = tempfile::tempdir().expect("tempdir");
        let worker = TestWorker::start_with(
            &server,
            &server.url(),
            &worker_id,
            slots,
            &[("HOME", home.path().to_str().unwrap())],
            args,
        );
        Self {
            server,
            api,
            worker: Some(worker),
            worker_id,
            record: tempfile::tempdir().expect("tempdir"),
            home,
        }
    }

    /// `tmux -L` label of the worker's tmux server.
    fn tmux_label(&self) -> String {
        format!("amon-{}", self.worker_id)
    }

    /// Sessions alive on the worker's tmux server.
    fn tmux_sessions(&self) -> Vec<String> {
        let output = std::process::Command::new("tmux")
            .args([
                "-L",
                &self.tmux_label(),
                "list-sessions",
                "-F",
                "#{session_name}",
            ])
            .output()
            .expect("running tmux");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn record_path(&self, name: &str) -> PathBuf {
        self.record.path().join(format!("{name}.jsonl"))
    }

    /// The JSON lines a fake recorded.
    fn recorded(&self, name: &str) -> Vec<Value> {
        std::fs::read_to_string(self.record_path(name))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("record line is JSON"))
            .collect()
    }

    async fn preset(
        &mut self,
        preset: &str,
        slug: &str,
        binary: &str,
        mcp: bool,
    ) -> (Agent, Capability) {
        let response = self
            .api
            .agents
            .create_preset_agent(CreatePresetAgentRequest {
                preset: preset.into(),
                binary_path: Some(fixture(binary)),
                slug: Some(slug.into()),
                mcp_enabled: mcp,
                max_concurrent: Some(4),
                ..Default::default()
            })
            .await
            .expect("create preset agent")
            .into_inner();
        (response.agent.unwrap(), response.capability.unwrap())
    }

    /// A task whose runs give the fake `mode` and record to `record`.
    async fn task(&mut self, title: &str, mode: &str, record: &str) -> Task {
        let env = [
            ("FAKE_CLI_MODE".to_string(), mode.to_string()),
            (
                "FAKE_CLI_RECORD".to_string(),
                self.record_path(record).to_string_lossy().into_owned(),
            ),
        ];
        self.api
            .task(Task {
                title: title.into(),
                description: Some("Details of the task.".into()),
                input_context: Some(TaskInputContext {
                    env_overrides: env.into_iter().collect(),
                    prompt_additions: Some("Keep it short.".into()),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
    }

    async fn run_to_end(&mut self, task: &Task, capability: &Capability) -> Execution {
        let execution = self.api.run(task, capability, json!({}), 0).await;
        self.wait_end(&execution.id).await
    }

    async fn wait_end(&mut self, id: &str) -> Execution {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let execution = self.api.execution(id).await;
            if matches!(
                execution.status(),
                ExecutionStatus::Succeeded
                    | ExecutionStatus::Failed
                    | ExecutionStatus::Cancelled
                    | ExecutionStatus::TimedOut
            ) {
                return execution;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "execution {id} still {:?}",
                execution.status()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn continue_with(
        &mut self,
        parent: &str,
        prompt: &str,
    ) -> Result<Execution, tonic::Status> {
        self.api
            .executions
            .continue_execution(ContinueExecutionRequest {
                id: parent.into(),
                prompt: prompt.into(),
            })
            .await
            .map(|r| r.into_inner().execution.expect("execution"))
    }

    async fn ancestors(&mut self, id: &str) -> Vec<String> {
        self.api
            .executions
            .get_execution(GetExecutionRequest { id: id.into() })
            .await
            .expect("get execution")
            .into_inner()
            .ancestor_execution_ids
    }

    /// Asserts the run's tmux session is gone (and the run had one).
    fn assert_no_tmux_left(&self, execution: &Execution) {
        let name = execution
            .tmux_session_name
            .clone()
            .expect("an AI agent run records its tmux session");
        assert!(name.starts_with("amon-"), "{name}");
        assert!(
            !self.tmux_sessions().contains(&name),
            "tmux session {name} left behind"
        );
    }

    /// The tmux protocol's idle rule, shortened for a test (the preset
    /// waits 10 s).
    async fn set_completion_idle(&mut self, agent: &Agent, idle: Duration) {
        let mut config = agent.session_config.clone().unwrap();
        config.completion_idle = Some(prost_types::Duration {
            seconds: idle.as_secs() as i64,
            nanos: idle.subsec_nanos() as i32,
        });
        self.api
            .agents
            .update_agent(UpdateAgentRequest {
                agent: Some(Agent {
                    id: agent.id.clone(),
                    session_config: Some(config),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: strings(&["session_config"]),
                }),
            })
            .await
            .expect("update agent");
    }

    async fn set_capability_timeout(&mut self, capability: &Capability, seconds: i32) {
        self.api
            .agents
            .update_capability(UpdateCapabilityRequest {
                capability: Some(Capability {
                    id: capability.id.clone(),
                    timeout_sec: Some(seconds),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: strings(&["timeout_sec"]),
                }),
            })
            .await
            .expect("update capability");
    }
}

/// Waits (up to [`WAIT`]) until `done`.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited {WAIT:?} for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The lines of a log, each parsed as JSON (all must be).
fn json_lines(log: &[u8]) -> Vec<Value> {
    std::str::from_utf8(log)
        .expect("utf-8 log")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("log line {l:?}: {e}")))
        .collect()
}

fn argv(record: &Value) -> Vec<String> {
    record["argv"]
        .as_array()
        .expect("argv")
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

async fn claude_stream_json(db: TestDb) -> Result<()> {
    let mut s = Setup::new(&db, 2).await;
    let (_, prompt) = s.preset("claude", "claude", "fake-claude", false).await;
    let task = s.task("Fix the flaky test", "", "claude").await;

    let first = s.run_to_end(&task, &prompt).await;
    assert_eq!(first.status(), ExecutionStatus::Succeeded, "{first:?}");
    assert_eq!(first.exit_code, Some(0));
    assert_eq!(
        first.prompt.as_deref(),
        Some("Fix the flaky test\n\nDetails of the task.\n\nKeep it short.")
    );
    // The log is the CLI's stream-json, line for line: init, assistant, result.
    let log = s.api.log(&first.id).await;
    let lines = json_lines(&log);
    assert_eq!(lines.first().unwrap()["subtype"], "init");
    assert_eq!(lines.last().unwrap()["type"], "result");
    let session = lines[0]["session_id"].as_str().unwrap();
    assert_eq!(first.session_ref.as_deref(), Some(session));
    assert_eq!(first.log_byte_size as usize, log.len());
    s.assert_no_tmux_left(&first);

    // The prompt went in as one stream-json user message; no resume flag.
    let records = s.recorded("claude");
    assert_eq!(records.len(), 1);
    let args = argv(&records[0]);
    for flag in [
        "-p",
        "--verbose",
        "--output-format",
        "--input-format",
        "stream-json",
    ] {
        assert!(args.contains(&flag.to_string()), "{args:?}");
    }
    assert!(!args.contains(&"--resume".to_string()), "{args:?}");
    let stdin: Value = serde_json::from_str(records[0]["stdin"][0].as_str().unwrap())?;
    assert_eq!(stdin["type"], "user");
    assert_eq!(stdin["message"]["content"], first.prompt.clone().unwrap());

    // Continuation: a new execution resuming the session with --resume <ref>.
    let second = s.continue_with(&first.id, "Now add a comment").await?;
    assert_eq!(
        second.parent_execution_id.as_deref(),
        Some(first.id.as_str())
    );
    let second = s.wait_end(&second.id).await;
    assert_eq!(second.status(), ExecutionStatus::Succeeded, "{second:?}");
    assert_eq!(second.session_ref.as_deref(), Some(session));
    let records = s.recorded("claude");
    let args = argv(&records[1]);
    let at = args
        .iter()
        .position(|a| a == "--resume")
        .expect("--resume passed");
    assert_eq!(args[at + 1], session);
    assert!(String::from_utf8(s.api.log(&second.id).await)?.contains("echo: Now add a comment"));

    // A chain of continuations: GetExecution lists the ancestors in order.
    let third = s.continue_with(&second.id, "And a test").await?;
    let third = s.wait_end(&third.id).await;
    assert_eq!(third.status(), ExecutionStatus::Succeeded);
    assert_eq!(
        s.ancestors(&third.id).await,
        vec![first.id.clone(), second.id.clone()]
    );
    assert!(s.ancestors(&first.id).await.is_empty());
    s.assert_no_tmux_left(&third);
    Ok(())
}

async fn codex_app_server(db: TestDb) -> Result<()> {
    let mut s = Setup::new(&db, 2).await;
    let (_, prompt) = s.preset("codex", "codex", "fake-codex", false).await;
    let task = s.task("Refactor the parser", "", "codex").await;

    let first = s.run_to_end(&task, &prompt).await;
    assert_eq!(first.status(), ExecutionStatus::Succeeded, "{first:?}");
    let lines = json_lines(&s.api.log(&first.id).await);
    // Every JSON-RPC message the app-server wrote, unchanged.
    let thread = lines
        .iter()
        .find(|l| l["id"] == 2)
        .and_then(|l| l["result"]["thread"]["id"].as_str())
        .expect("thread/start result in the log")
        .to_string();
    assert_eq!(first.session_ref.as_deref(), Some(thread.as_str()));
    assert!(lines.iter().any(|l| l["method"] == "turn/completed"));
    assert!(
        lines
            .iter()
            .any(|l| l["method"] == "item/agentMessage/delta")
    );
    s.assert_no_tmux_left(&first);

    let records = s.recorded("codex");
    assert_eq!(argv(&records[0])[0], "app-server");
    assert_eq!(records[0]["threads"][0]["method"], "thread/start");
    assert_eq!(
        records[0]["threads"][0]["params"]["approvalPolicy"],
        "never"
    );

    // Continuation resumes the thread through the protocol: thread/resume.
    let second = s.continue_with(&first.id, "Also rename it").await?;
    let second = s.wait_end(&second.id).await;
    assert_eq!(second.status(), ExecutionStatus::Succeeded, "{second:?}");
    assert_eq!(second.session_ref.as_deref(), Some(thread.as_str()));
    let records = s.recorded("codex");
    assert_eq!(records[1]["threads"][0]["method"], "thread/resume");
    assert_eq!(
        records[1]["threads"][0]["params"]["threadId"],
        thread.as_str()
    );
    assert_eq!(s.ancestors(&second.id).await, vec![first.id.clone()]);

    // A failed turn is a failed run with the agent's message.
    let failing = s.task("Break", "error-result", "codex-fail").await;
    let failed = s.run_to_end(&failing, &prompt).await;
    assert_eq!(failed.status(), ExecutionStatus::Failed);
    let error = failed.error.unwrap_or_default();
    assert!(error.starts_with("codex turn failed: "), "{error}");
    Ok(())
}

async fn gemini_in_tmux(db: TestDb) -> Result<()> {
    let mut s = Setup::new(&db, 2).await;
    let (agent, prompt) = s.preset("gemini", "gemini", "fake-gemini", false).await;
    s.set_completion_idle(&agent, Duration::from_secs(1)).await;
    let task = s.task("Explain the build", "", "gemini").await;

    let first = s.run_to_end(&task, &prompt).await;
    assert_eq!(first.status(), ExecutionStatus::Succeeded, "{first:?}");
    let log = String::from_utf8_lossy(&s.api.log(&first.id).await).into_owned();
    // The terminal as the CLI drew it: banner, the typed prompt, the reply;
    // the run's folder was trusted and the terminal has true colour, so
    // neither the trust dialog nor the colour warning showed.
    assert!(log.contains("GEMINI"), "{log}");
    assert!(log.contains("echo: Explain the build"), "{log}");
    assert!(!log.contains("Do you trust the files"), "{log}");
    assert!(
        !log.contains("True color (24-bit) support not detected"),
        "{log}"
    );
    // The session id comes from `gemini --list-sessions` (run before and
    // after the turn, with the run's environment: those runs record too).
    let turns = |records: Vec<Value>| -> Vec<Value> {
        records
            .into_iter()
            .filter(|r| !argv(r).contains(&"--list-sessions".to_string()))
            .collect()
    };
    let records = turns(s.recorded("gemini"));
    assert_eq!(records.len(), 1, "{records:?}");
    let session = records[0]["session_id"].as_str().unwrap().to_string();
    assert_eq!(first.session_ref.as_deref(), Some(session.as_str()));
    s.assert_no_tmux_left(&first);

    // Continuation: --resume <ref> on the command line.
    let second = s.continue_with(&first.id, "Shorter please").await?;
    let second = s.wait_end(&second.id).await;
    assert_eq!(second.status(), ExecutionStatus::Succeeded, "{second:?}");
    let records = turns(s.recorded("gemini"));
    let args = argv(&records[1]);
    assert_eq!(args, vec!["--resume".to_string(), session.clone()]);

    // A CLI that exits after replying ends the run by itself.
    let exiting = s
        .task("One answer", "exit-after-reply", "gemini-exit")
        .await;
    let ended = s.run_to_end(&exiting, &prompt).await;
    assert_eq!(ended.status(), ExecutionStatus::Succeeded, "{ended:?}");
    assert_eq!(ended.exit_code, Some(0));
    s.assert_no_tmux_left(&ended);
    Ok(())
}

async fn misbehaving_clis(db: TestDb) -> Result<()> {
    let mut s = Setup::new(&db, 4).await;
    s.api.tune(120_000, 30_000, 500).await;
    let (_, claude) = s.preset("claude", "claude", "fake-claude", false).await;

    // Exits without a result line.
    let task = s.task("No result", "no-result", "no-result").await;
    let run = s.run_to_end(&task, &claude).await;
    assert_eq!(run.status(), ExecutionStatus::Failed);
    assert_eq!(
        run.error.as_deref(),
        Some("claude exited with status 0 without a result line")
    );
    assert!(
        run.session_ref.is_some(),
        "the init line still gave the session"
    );

    // Garbage between JSON lines: kept in the log, the turn still counts.
    let task = s.task("Malformed", "malformed", "malformed").await;
    let run = s.run_to_end(&task, &claude).await;
    assert_eq!(run.status(), ExecutionStatus::Succeeded, "{run:?}");
    let log = String::from_utf8(s.api.log(&run.id).await)?;
    let garbage: Vec<&str> = log
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).is_err())
        .collect();
    assert!(
        !garbage.is_empty(),
        "the malformed line is in the log: {log}"
    );

    // Only garbage: failed, no session, and it cannot be continued.
    let task = s.task("Garbage", "malformed-only", "garbage").await;
    let run = s.run_to_end(&task, &claude).await;
    assert_eq!(run.status(), ExecutionStatus::Failed);
    let error = run.error.clone().unwrap_or_default();
    assert!(error.contains("not JSON"), "{error}");
    assert_eq!(run.session_ref, None);
    let refused = s.continue_with(&run.id, "again").await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");

    // The agent reports an error.
    let task = s.task("Error", "error-result", "error").await;
    let run = s.run_to_end(&task, &claude).await;
    assert_eq!(run.status(), ExecutionStatus::Failed);
    let error = run.error.clone().unwrap_or_default();
    assert!(
        error.starts_with("claude reported error_during_execution"),
        "{error}"
    );

    // Never answers: timed out, and no tmux session or process left.
    s.set_capability_timeout(&claude, 2).await;
    let task = s.task("Hang", "hang", "hang").await;
    let run = s.run_to_end(&task, &claude).await;
    assert_eq!(run.status(), ExecutionStatus::TimedOut, "{run:?}");
    s.assert_no_tmux_left(&run);
    assert_gone(&s.recorded("hang")[0]).await;

    // Ignores SIGTERM: cancelled, SIGKILLed after the grace, nothing left.
    s.set_capability_timeout(&claude, 300).await;
    let task = s.task("Stubborn", "ignore-term", "stubborn").await;
    let execution = s.api.run(&task, &claude, json!({}), 0).await;
    s.api
        .wait_for(&execution.id, ExecutionStatus::Running, WAIT)
        .await;
    // Up for real once it recorded itself.
    eventually("the fake to start", || !s.recorded("stubborn").is_empty()).await;
    s.api
        .executions
        .cancel_execution(amon_proto::v1::CancelExecutionRequest {
            id: execution.id.clone(),
            reason: "changed my mind".into(),
        })
        .await?;
    let run = s.wait_end(&execution.id).await;
    assert_eq!(run.status(), ExecutionStatus::Cancelled, "{run:?}");
    let error = run.error.clone().unwrap_or_default();
    assert!(error.contains("SIGKILL"), "{error}");
    s.assert_no_tmux_left(&run);
    assert_gone(&s.recorded("stubborn")[0]).await;
    Ok(())
}

/// The fake's process is gone (a zombie awaiting its reaper counts as gone).
async fn assert_gone(record: &Value) {
    let pid = record["pid"].as_i64().expect("pid recorded");
    let alive = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                let state = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
                Some(state != 'Z' && state != 'X')
            })
            .unwrap_or(false)
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while alive() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the agent process {pid} outlived its run"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn worker_restart_leaves_no_session(db: TestDb) -> Result<()> {
    let mut s = Setup::new(&db, 1).await;
    s.api.tune(2_000, 500, 500).await;
    let (_, claude) = s.preset("claude", "claude", "fake-claude", false).await;
    let task = s.task("Long", "hang", "long").await;
    let execution = s.api.run(&task, &claude, json!({}), 0).await;
    let running = s
        .api
        .wait_for(&execution.id, ExecutionStatus::Running, WAIT)
        .await;
    // Up for real once it recorded itself.
    eventually("the fake to start", || !s.recorded("long").is_empty()).await;
    let name = s
        .api
        .execution(&running.id)
        .await
        .tmux_session_name
        .unwrap();
    assert!(s.tmux_sessions().contains(&name), "running inside tmux");

    // kill -9: nobody captures the agent any more, so it goes too (its pane
    // runner sees the worker's connection close), and with it the session.
    s.worker.as_mut().unwrap().kill_hard();
    drop(s.worker.take());
    assert_gone(&s.recorded("long")[0]).await;
    eventually("the tmux session to go", || {
        !s.tmux_sessions().contains(&name)
    })
    .await;
    // The worker comes back: the run is not left hanging.
    let worker = TestWorker::start(
        &s.server,
        &s.worker_id,
        1,
        &[("HOME", s.home.path().to_str().unwrap())],
    );
    let run = s.wait_end(&execution.id).await;
    assert_ne!(run.status(), ExecutionStatus::Succeeded);
    assert!(s.tmux_sessions().is_empty(), "{:?}", s.tmux_sessions());
    drop(worker);
    Ok(())
}

/// Two workers of one name on one machine, each with its own data
/// directory (connected to two servers, say, or the two backends of one
/// test side by side), leave each other's runs alone. A worker starting
/// used to kill the tmux server named after its id, and with it every
/// agent a namesake was running ("claude killed by signal SIGKILL without
/// a result line": discovery's `an_ai_agent_proposes_capabilities`, whose
/// two backends each start a worker "llm", failed so under load).
async fn a_namesake_worker_leaves_running_agents_alone(db: TestDb) -> Result<()> {
    let mut s = Setup::new(&db, 1).await;
    let (_, claude) = s.preset("claude", "claude", "fake-claude", false).await;
    let task = s.task("Long", "hang", "long").await;
    let execution = s.api.run(&task, &claude, json!({}), 0).await;
    s.api
        .wait_for(&execution.id, ExecutionStatus::Running, WAIT)
        .await;
    eventually("the fake to start", || !s.recorded("long").is_empty()).await;
    let agent_pid = s.recorded("long")[0]["pid"].as_i64().unwrap();

    // The namesake: another server, another data directory, the same id.
    let other = TestServer::start_with_args(None, &["--no-local-worker"]).await;
    let mut other_api = Api::new(other.channel().await);
    let other_home = tempfile::tempdir()?;
    let _namesake = TestWorker::start(
        &other,
        &s.worker_id,
        1,
        &[("HOME", other_home.path().to_str().unwrap())],
    );
    // Connected (so whatever it does when it starts is done): it runs work.
    let probe = other_api
        .agent(Agent {
            name: "probe".into(),
            slug: "probe".into(),
            binary_path: "/bin/true".into(),
            ..Default::default()
        })
        .await;
    let run = other_api.command(&probe, "run", &[]).await;
    let probe_task = other_api.titled("is the namesake there").await;
    let probe_run = other_api.run(&probe_task, &run, json!({}), 0).await;
    other_api
        .wait_for(&probe_run.id, ExecutionStatus::Succeeded, WAIT)
        .await;

    let state = std::fs::read_to_string(format!("/proc/{agent_pid}/stat")).unwrap_or_default();
    let alive = state
        .rsplit_once(") ")
        .is_some_and(|(_, rest)| !rest.starts_with('Z'));
    assert!(alive, "the first worker's agent was killed: {state:?}");
    let still = s.api.execution(&execution.id).await;
    assert_eq!(still.status(), ExecutionStatus::Running, "{still:?}");
    s.api
        .executions
        .cancel_execution(amon_proto::v1::CancelExecutionRequest {
            id: execution.id.clone(),
            reason: String::new(),
        })
        .await?;
    let ended = s.wait_end(&execution.id).await;
    assert_eq!(ended.status(), ExecutionStatus::Cancelled, "{ended:?}");
    Ok(())
}

async fn mcp_launch_configuration(db: TestDb) -> Result<()> {
    let mut s = Setup::new(&db, 2).await;
    let mcp_url = format!("http://{}/mcp", s.server.addr());
    let (_, claude) = s.preset("claude", "claude-mcp", "fake-claude", true).await;
    let (_, codex) = s.preset("codex", "codex-mcp", "fake-codex", true).await;
    let (_, plain) = s
        .preset("claude", "claude-plain", "fake-claude", false)
        .await;

    let task = s.task("With MCP", "", "claude-mcp").await;
    assert_eq!(
        s.run_to_end(&task, &claude).await.status(),
        ExecutionStatus::Succeeded
    );
    let record = &s.recorded("claude-mcp")[0];
    // A file in the run's private directory, holding the run's token: never argv.
    let path = record["mcp_config"][0].as_str().unwrap();
    assert!(path.ends_with("claude-mcp.json"), "{path}");
    let config = &record["mcp_config_contents"][0]["mcpServers"]["agent-monitor"];
    assert_eq!(config["url"], mcp_url.as_str());
    assert_eq!(config["type"], "http");
    let bearer = config["headers"]["Authorization"].as_str().unwrap();
    assert!(bearer.starts_with("Bearer amon_run_"), "{bearer}");
    let token = bearer.trim_start_matches("Bearer ");
    assert!(!argv(record).iter().any(|a| a.contains(token)), "{record}");
    assert!(argv(record).contains(&"--allowedTools=mcp__agent-monitor".to_string()));

    let task = s.task("With MCP", "", "codex-mcp").await;
    assert_eq!(
        s.run_to_end(&task, &codex).await.status(),
        ExecutionStatus::Succeeded
    );
    let record = &s.recorded("codex-mcp")[0];
    assert_eq!(
        record["config_overrides"][0],
        format!("mcp_servers.agent-monitor.url=\"{mcp_url}\"").as_str()
    );
    // The token itself is only in the child's environment.
    assert_eq!(
        record["config_overrides"][1],
        "mcp_servers.agent-monitor.bearer_token_env_var=\"AMON_MCP_TOKEN\""
    );
    assert!(
        record["env_AMON_keys"]
            .as_array()
            .is_some_and(|keys| keys.contains(&json!("AMON_MCP_TOKEN"))),
        "{record}"
    );

    // Gemini reads its MCP servers from a settings file the worker writes.
    let (_, gemini) = s.preset("gemini", "gemini-mcp", "fake-gemini", true).await;
    let task = s.task("With MCP", "exit-after-reply", "gemini-mcp").await;
    assert_eq!(
        s.run_to_end(&task, &gemini).await.status(),
        ExecutionStatus::Succeeded
    );
    let record = s
        .recorded("gemini-mcp")
        .into_iter()
        .find(|r| !argv(r).contains(&"--list-sessions".to_string()))
        .expect("the turn recorded");
    let settings = record["mcp_settings"].as_object().expect("mcp_settings");
    assert!(
        settings
            .iter()
            .any(|(path, names)| path.ends_with("gemini-settings.json")
                && names == &json!(["agent-monitor"])),
        "{settings:?}"
    );

    let task = s.task("Without", "", "plain").await;
    assert_eq!(
        s.run_to_end(&task, &plain).await.status(),
        ExecutionStatus::Succeeded
    );
    let record = &s.recorded("plain")[0];
    assert!(!argv(record).iter().any(|a| a.starts_with("--mcp-config")));
    Ok(())
}

async fn refusals(db: TestDb) -> Result<()> {
    let mut s = Setup::new(&db, 1).await;
    let unknown = s
        .api
        .agents
        .create_preset_agent(CreatePresetAgentRequest {
            preset: "cursor".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::InvalidArgument);
    assert!(unknown.message().contains("preset"), "{unknown:?}");
    let (agent, _) = s.preset("claude", "claude", "fake-claude", false).await;
    assert_eq!(agent.kind(), amon_proto::v1::AgentKind::Builtin);
    assert_eq!(
        agent.discovery_method(),
        amon_proto::v1::DiscoveryMethod::Preset
    );
    let taken = s
        .api
        .agents
        .create_preset_agent(CreatePresetAgentRequest {
            preset: "claude".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Code::AlreadyExists, "{taken:?}");
    assert!(taken.message().contains("(slug)"), "{taken:?}");
    // Errors name the request's fields, not the agent's it fills.
    for (request, field) in [
        (
            CreatePresetAgentRequest {
                preset: "codex".into(),
                binary_path: Some("  ".into()),
                slug: Some("Not A Slug".into()),
                ..Default::default()
            },
            "slug:",
        ),
        (
            CreatePresetAgentRequest {
                preset: "codex".into(),
                working_dir: Some(" ".into()),
                ..Default::default()
            },
            "working_dir:",
        ),
        (
            CreatePresetAgentRequest {
                preset: "codex".into(),
                extra_args: vec!["--ok".into(), "nul\0here".into()],
                ..Default::default()
            },
            "extra_args[1]:",
        ),
        (
            CreatePresetAgentRequest {
                preset: "codex".into(),
                max_concurrent: Some(0),
                ..Default::default()
            },
            "max_concurrent:",
        ),
    ] {
        let refused = s.api.agents.create_preset_agent(request).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
        assert!(
            refused.message().starts_with(field),
            "{field} in {refused:?}"
        );
    }

    // A prompt-mode capability on an agent that speaks no protocol.
    let bare = s
        .api
        .agent(Agent {
            name: "bare".into(),
            slug: "bare".into(),
            binary_path: fixture("fake-claude"),
            session_config: Some(AgentSessionConfig {
                session_id_source: amon_proto::v1::SessionIdSource::None as i32,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
    let capability = s
        .api
        .capability(Capability {
            agent_id: bare.id.clone(),
            key: "ask".into(),
            label: "Ask".into(),
            interaction_mode: amon_proto::v1::InteractionMode::Prompt as i32,
            prompt_template: Some("{{ task_title }}".into()),
            ..Default::default()
        })
        .await;
    let task = s.api.titled("t").await;
    let refused = s
        .api
        .executions
        .create_execution(amon_proto::v1::CreateExecutionRequest {
            task_id: task.id.clone(),
            capability_id: capability.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("bidirectional_protocol"),
        "{refused:?}"
    );
    Ok(())
}

/// Calls `tool` on the MCP server at `url` with a bearer token, as any
/// client would (initialize, then the call); the HTTP status and, when 200,
/// the JSON-RPC answer of the call.
async fn call_with_token(url: &str, token: &str, tool: &str, arguments: Value) -> (u16, Value) {
    let http = amon_tests::http::client();
    let post = |body: Value| {
        http.post(url)
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .json(&body)
            .send()
    };
    let init = post(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"}}}),
    )
    .await
    .expect("POST /mcp");
    if init.status() != 200 {
        return (init.status().as_u16(), Value::Null);
    }
    let call = post(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": tool, "arguments": arguments}}))
    .await
    .expect("POST /mcp");
    let status = call.status().as_u16();
    (status, call.json().await.unwrap_or(Value::Null))
}

/// The JSON a tool answered (its structured content).
fn tool_answer(call: &Value) -> &Value {
    &call["answer"]["result"]["structuredContent"]
}

/// An mcp_enabled agent's run reaches the MCP server with the token it was
/// launched with, acts as itself, and its token dies with the run.
async fn mcp_run_tokens(db: TestDb) -> Result<()> {
    let mut s = Setup::new(&db, 2).await;
    let mcp_url = format!("http://{}/mcp", s.server.addr());
    let (agent, claude) = s.preset("claude", "claude-mcp", "fake-claude", true).await;

    // A run whose prompt asks for the board: it reads its context and files a subtask.
    let task = s.task("Plan the release [mcp-demo]", "", "first").await;
    let first = s.run_to_end(&task, &claude).await;
    assert_eq!(first.status(), ExecutionStatus::Succeeded, "{first:?}");
    let record = &s.recorded("first")[0];
    let calls = record["mcp_calls"].as_array().expect("the fake used MCP");
    let context = tool_answer(&calls[1]);
    assert_eq!(calls[1]["tool"], "get_context", "{record}");
    assert_eq!(context["caller"]["kind"], "run", "{record}");
    assert_eq!(context["caller"]["execution_id"], first.id.as_str());
    assert_eq!(context["task"]["id"], task.id.as_str());
    assert_eq!(context["capability"]["ref"], "claude-mcp/prompt");
    let created = tool_answer(&calls[2]);
    assert_eq!(
        created["task"]["parent_task_id"],
        task.id.as_str(),
        "{record}"
    );
    assert_eq!(calls[3]["answer"]["result"]["isError"], false, "{record}");

    // The subtask is under the run's task, filed by the agent from that run.
    let subtasks = s
        .api
        .tasks
        .list_tasks(amon_proto::v1::ListTasksRequest {
            parent_task_id: task.id.clone(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .tasks;
    assert_eq!(subtasks.len(), 1);
    assert_eq!(subtasks[0].title, "Follow-up filed by fake-claude");
    let events = s
        .api
        .tasks
        .list_task_events(amon_proto::v1::ListTaskEventsRequest {
            task_id: subtasks[0].id.clone(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .events;
    let created_event = events
        .iter()
        .find(|e| e.event_type == "created")
        .expect("a created event");
    assert_eq!(created_event.actor_type(), amon_proto::v1::ActorType::Agent);
    assert_eq!(created_event.actor_id.as_deref(), Some(agent.id.as_str()));
    let payload = serde_json::to_value(
        created_event
            .payload
            .clone()
            .map(|p| amon_server::grpc::convert::struct_to_json(&p)),
    )?;
    assert_eq!(
        payload["actor_execution_id"],
        first.id.as_str(),
        "{payload}"
    );

    // The run is over: its token no longer opens /mcp.
    let first_token =
        record["mcp_config_contents"][0]["mcpServers"]["agent-monitor"]["headers"]["Authorization"]
            .as_str()
            .unwrap()
            .trim_start_matches("Bearer ")
            .to_string();
    let (status, _) = call_with_token(&mcp_url, &first_token, "get_context", json!({})).await;
    assert_eq!(status, 401, "an ended run's token is refused");

    // A second run that stays up after its MCP calls: its token works for
    // it alone, and the first run's token cannot be turned into its.
    let task = s.task("Second [mcp-demo]", "hang", "second").await;
    let second = s.api.run(&task, &claude, json!({}), 0).await;
    eventually("the second run's MCP calls", || {
        !s.recorded("second").is_empty()
    })
    .await;
    let record = &s.recorded("second")[0];
    let token =
        record["mcp_config_contents"][0]["mcpServers"]["agent-monitor"]["headers"]["Authorization"]
            .as_str()
            .unwrap()
            .trim_start_matches("Bearer ")
            .to_string();
    assert_ne!(token, first_token);
    let (status, answer) = call_with_token(&mcp_url, &token, "get_context", json!({})).await;
    assert_eq!(status, 200);
    let context = &answer["result"]["structuredContent"];
    assert_eq!(
        context["caller"]["execution_id"],
        second.id.as_str(),
        "{answer}"
    );
    assert_eq!(context["task"]["id"], task.id.as_str());
    let simple = |id: &str| id.replace('-', "");
    let forged = first_token.replace(&simple(&first.id), &simple(&second.id));
    assert_ne!(forged, first_token);
    let (status, _) = call_with_token(&mcp_url, &forged, "get_context", json!({})).await;
    assert_eq!(status, 401, "one run's token cannot act as another run");
    s.api
        .executions
        .cancel_execution(amon_proto::v1::CancelExecutionRequest {
            id: second.id.clone(),
            reason: String::new(),
        })
        .await?;
    let second = s.wait_end(&second.id).await;
    assert_eq!(second.status(), ExecutionStatus::Cancelled);
    let (status, _) = call_with_token(&mcp_url, &token, "get_context", json!({})).await;
    assert_eq!(status, 401, "a cancelled run's token is refused");
    Ok(())
}

/// What a person reads when a CLI cannot do the work: each failure in plain
/// words naming the worker, and never a success. The fakes replay what the
/// real CLIs did with no login and no network (see `real_clis.rs` for the
/// real ones). The stall rule is cut to 2 s on the worker's command line.
async fn plain_errors_and_stalls(db: TestDb) -> Result<()> {
    let mut s = Setup::with_worker_args(&db, 8, &["--agent-stall-timeout", "2s"]).await;
    let (_, claude) = s.preset("claude", "claude", "fake-claude", false).await;
    let (_, codex) = s.preset("codex", "codex", "fake-codex", false).await;
    let (gemini_agent, gemini) = s.preset("gemini", "gemini", "fake-gemini", false).await;
    s.set_completion_idle(&gemini_agent, Duration::from_secs(1))
        .await;
    let worker = s.worker_id.clone();

    // Watched from before the runs exist: the live status is pushed.
    let mut watch = s
        .api
        .executions
        .watch_executions(amon_proto::v1::WatchExecutionsRequest::default())
        .await?
        .into_inner();
    // All at once: each waits on its own clock.
    let mut runs = Vec::new();
    for (title, mode, record, capability) in [
        ("Hello", "not-logged-in", "claude-login", &claude),
        ("Hello", "api-retry", "claude-retry", &claude),
        ("Hello", "refusal", "claude-refusal", &claude),
        ("Hello", "offline", "codex-offline", &codex),
        ("Hello", "untrusted", "gemini-trust", &gemini),
        ("Hello", "no-login", "gemini-login", &gemini),
        ("Hello", "swallow", "gemini-swallow", &gemini),
    ] {
        let task = s.task(title, mode, record).await;
        let execution = s.api.run(&task, capability, json!({}), 0).await;
        runs.push((mode, execution.id));
    }
    // While Codex retries, the run's error says why, live.
    let offline_id = runs
        .iter()
        .find(|(mode, _)| *mode == "offline")
        .map(|(_, id)| id.clone())
        .expect("the offline run");
    let deadline = tokio::time::Instant::now() + WAIT;
    let live = loop {
        let change = tokio::time::timeout_at(deadline, tokio_stream::StreamExt::next(&mut watch))
            .await
            .expect("a live status in time")
            .expect("the watch goes on")?;
        let execution = change.execution.expect("execution");
        if execution.id != offline_id {
            continue;
        }
        if execution.status() == ExecutionStatus::Running
            && let Some(error) = execution.error.clone()
        {
            break error;
        }
        assert!(
            execution.status() == ExecutionStatus::Queued
                || execution.status() == ExecutionStatus::Running,
            "no live status before the end: {execution:?}"
        );
    };
    assert!(
        live.starts_with(&format!(
            "Codex cannot reach its service from worker {worker}"
        )) && live.contains("Reconnecting..."),
        "{live}"
    );
    let mut ended = std::collections::HashMap::new();
    for (mode, id) in runs {
        let run = s.wait_end(&id).await;
        assert_eq!(run.status(), ExecutionStatus::Failed, "{mode}: {run:?}");
        s.assert_no_tmux_left(&run);
        ended.insert(mode, run);
    }
    let error = |mode: &str| ended[mode].error.clone().unwrap_or_default();

    // Claude Code 2.1's "success" result with is_error: not "reported success".
    assert_eq!(
        error("not-logged-in"),
        format!(
            "Claude Code is not logged in on worker {worker}: run `claude` there once and log in \
             (Not logged in · Please run /login)"
        )
    );
    assert!(ended["not-logged-in"].session_ref.is_some());
    // A refusal is no success, whatever the result line says.
    assert_eq!(
        error("refusal"),
        format!(
            "Claude Code on worker {worker}: the model refused the request (This request \
             violates the usage policy.)"
        )
    );
    // Retries with no progress: failed after the stall window, well before
    // the hour's timeout, with the last error.
    let retry = error("api-retry");
    assert!(
        retry.starts_with(&format!(
            "Claude Code cannot reach its service from worker {worker}"
        )) && retry.ends_with("no progress for 2s while it retried, so the run was stopped"),
        "{retry}"
    );
    let offline = error("offline");
    assert!(
        offline.starts_with(&format!(
            "Codex cannot reach its service from worker {worker}"
        )) && offline.contains("Reconnecting...")
            && offline.contains("no progress for 2s"),
        "{offline}"
    );
    // The thread id is still the session ref.
    assert!(ended["offline"].session_ref.is_some());
    for mode in ["api-retry", "offline"] {
        let run = &ended[mode];
        let took = run.ended_at.unwrap().seconds - run.started_at.unwrap().seconds;
        assert!(took < 15, "{mode} took {took}s");
    }

    // Gemini: a dialog fails the run naming it, and the prompt is never
    // typed into it.
    assert_eq!(
        error("untrusted"),
        format!(
            "Gemini CLI on worker {worker} stopped at its folder trust screen (\"Do you trust the \
             files in this folder?\"), which waits for a person: nothing was asked of the model"
        )
    );
    // What the fake recorded of the turn itself (the session listings
    // before and after it record too).
    let turn = |name: &str| -> Value {
        s.recorded(name)
            .into_iter()
            .find(|r| !argv(r).contains(&"--list-sessions".to_string()))
            .unwrap_or_else(|| panic!("{name}: the turn recorded nothing"))
    };
    assert_eq!(turn("gemini-trust")["stdin"], json!([]));
    assert_eq!(
        error("no-login"),
        format!(
            "Gemini CLI is not logged in on worker {worker}: run `gemini` there once and log in \
             (its screen shows \"How would you like to authenticate\")"
        )
    );
    // A quiet screen with no answer is no success.
    let swallowed = error("swallow");
    assert!(
        swallowed.starts_with(
            "the agent's screen was quiet for 1s after the prompt but shows no answer"
        ),
        "{swallowed}"
    );
    assert_eq!(
        turn("gemini-swallow")["stdin"][0],
        json!("Hello"),
        "the prompt was typed"
    );
    Ok(())
}

/// The worker's own rules: the database plays no part, so SQLite alone.
#[tokio::test]
async fn plain_errors_and_stalls_sqlite() {
    amon_tests::db::run(amon_tests::db::Backend::Sqlite, plain_errors_and_stalls).await;
}

both_backends!(
    claude_stream_json,
    codex_app_server,
    gemini_in_tmux,
    misbehaving_clis,
    worker_restart_leaves_no_session,
    a_namesake_worker_leaves_running_agents_alone,
    mcp_launch_configuration,
    mcp_run_tokens,
    refusals,
);
