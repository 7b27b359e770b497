//! The real AI CLIs through the board, pinned: Claude Code 2.1.328, Codex
//! 0.169.0 and Gemini CLI 0.61.0, installed from the npm registry under the
//! build's target directory (once per pinned set), run by a real worker
//! through each preset, with no login: HOME and the CLIs' config homes are
//! empty temporary directories, and no API key reaches them (the presets'
//! allowlists name none). What each must end in is what a person would
//! agree with: a failure, saying why, naming the worker; never a success.
//!
//! The network may be open or closed: nothing here waits on it. Claude Code
//! without a login answers at once; Gemini CLI stops at its sign-in screen;
//! Codex tries to reach its service and, offline, retries for ever, which
//! the worker's stall rule (cut to 3 s here) ends.
//!
//! Needs npm (and node, which the CLIs run on). When the registry cannot be
//! reached the tests are skipped with a note, except under `CI=true`, where
//! they must run.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use amon_proto::v1::{
    Capability, ContinueExecutionRequest, CreatePresetAgentRequest, Execution, ExecutionStatus,
    Task, TaskInputContext,
};
use amon_tests::{
    api::Api,
    db::{Backend, TestDb},
    server::TestServer,
    worker::TestWorker,
};
use serde_json::json;
use tokio::process::Command;

/// The versions the presets were checked against (README, "AI coding agents").
const PINNED: &[(&str, &str)] = &[
    ("@anthropic-ai/claude-code", "2.1.328"),
    ("@openai/codex", "0.169.0"),
    ("@google/gemini-cli", "0.61.0"),
];
/// The Claude Code package alone is a ~370 MB download.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(900);
/// Every run here ends within seconds; this is the bound on a busy machine.
const WAIT: Duration = Duration::from_secs(60);
/// The worker's stall rule, cut for the tests (default 5 min).
const STALL: &str = "3s";

/// `node_modules/.bin` of the pinned CLIs, installed on first use; `None`
/// (skipped, with a note) when npm or the registry is out of reach and this
/// is not CI.
async fn installed() -> Option<PathBuf> {
    static INSTALLED: tokio::sync::OnceCell<Option<PathBuf>> = tokio::sync::OnceCell::const_new();
    INSTALLED
        .get_or_init(|| async {
            match install().await {
                Ok(bin) => Some(bin),
                Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
                    panic!("the real CLIs must be tested under CI=true: {e}")
                }
                Err(e) => {
                    eprintln!("note: real CLI tests skipped: {e}");
                    None
                }
            }
        })
        .await
        .clone()
}

async fn install() -> Result<PathBuf, String> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("real-clis");
    let specs: Vec<String> = PINNED.iter().map(|(p, v)| format!("{p}@{v}")).collect();
    let wanted = specs.join("\n");
    let marker = dir.join(".pinned");
    let bin = dir.join("node_modules").join(".bin");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(bin);
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let npm = Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--prefix",
        ])
        .arg(&dir)
        .args(&specs)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(INSTALL_TIMEOUT, npm)
        .await
        .map_err(|_| {
            format!(
                "npm install {} took over {INSTALL_TIMEOUT:?}",
                specs.join(" ")
            )
        })?
        .map_err(|e| format!("cannot run npm ({e}); the real CLI tests need npm and node"))?;
    if !output.status.success() {
        return Err(format!(
            "npm install {} failed (is the registry reachable?): {}",
            specs.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    std::fs::write(&marker, wanted).map_err(|e| format!("writing {}: {e}", marker.display()))?;
    Ok(bin)
}

/// A server (SQLite: the database plays no part) and one worker whose HOME
/// and CLI config homes are empty, with the stall rule cut to [`STALL`].
struct Setup {
    _server: TestServer,
    api: Api,
    worker: TestWorker,
    bin: PathBuf,
    _db: TestDb,
    _home: tempfile::TempDir,
    /// The runs' working directory: a folder no CLI has seen.
    workdir: tempfile::TempDir,
}

impl Setup {
    async fn new(name: &str) -> Option<Self> {
        let bin = installed().await?;
        let db = TestDb::new(Backend::Sqlite).await.expect("SQLite");
        let server = TestServer::start_with_args(Some(db.url()), &["--no-local-worker"]).await;
        let api = Api::new(server.channel().await);
        let home = tempfile::tempdir().expect("tempdir");
        let h = |sub: &str| {
            let path = home.path().join(sub);
            std::fs::create_dir_all(&path).expect("mkdir");
            path.to_string_lossy().into_owned()
        };
        let env = [
            ("HOME", h("")),
            ("XDG_CONFIG_HOME", h(".config")),
            ("XDG_DATA_HOME", h(".local/share")),
            ("XDG_CACHE_HOME", h(".cache")),
            ("XDG_STATE_HOME", h(".local/state")),
            ("CLAUDE_CONFIG_DIR", h(".claude")),
            ("CODEX_HOME", h(".codex")),
            ("GEMINI_CLI_HOME", h("")),
        ];
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let worker_id = format!("real-{name}-{}", std::process::id());
        let worker = TestWorker::start_with(
            &server,
            &server.url(),
            &worker_id,
            2,
            &env,
            &["--agent-stall-timeout", STALL],
        );
        Some(Self {
            _server: server,
            api,
            worker,
            bin,
            _db: db,
            _home: home,
            workdir: tempfile::tempdir().expect("tempdir"),
        })
    }

    /// The preset agent `preset` with the installed CLI, MCP on (its flags
    /// are a superset of the plain preset's).
    async fn preset(&mut self, preset: &str, cli: &str) -> Capability {
        self.api
            .agents
            .create_preset_agent(CreatePresetAgentRequest {
                preset: preset.into(),
                binary_path: Some(self.bin.join(cli).to_string_lossy().into_owned()),
                mcp_enabled: true,
                working_dir: Some(self.workdir.path().to_string_lossy().into_owned()),
                ..Default::default()
            })
            .await
            .expect("create preset agent")
            .into_inner()
            .capability
            .expect("capability")
    }

    async fn task(&mut self, title: &str, env: &[(&str, &str)]) -> Task {
        self.api
            .task(Task {
                title: title.into(),
                input_context: Some(TaskInputContext {
                    env_overrides: env
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
    }

    async fn wait_end(&mut self, id: &str) -> Execution {
        self.wait(id, |e| {
            matches!(
                e.status(),
                ExecutionStatus::Succeeded
                    | ExecutionStatus::Failed
                    | ExecutionStatus::Cancelled
                    | ExecutionStatus::TimedOut
            )
        })
        .await
    }

    async fn wait(&mut self, id: &str, done: impl Fn(&Execution) -> bool) -> Execution {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let execution = self.api.execution(id).await;
            if done(&execution) {
                return execution;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "execution {id} still {:?} after {WAIT:?}",
                execution.status()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn worker_id(&self) -> &str {
        &self.worker.worker_id
    }

    async fn log(&mut self, id: &str) -> String {
        String::from_utf8_lossy(&self.api.log(id).await).into_owned()
    }
}

fn took(run: &Execution) -> i64 {
    run.ended_at.unwrap().seconds - run.started_at.unwrap().seconds
}

/// Claude Code 2.1.328 with no login: `init` gives the session, the result
/// says "Not logged in" as a success with `is_error`; the run fails saying
/// so, and a continuation (`--resume <session>`) does the same.
#[tokio::test]
async fn claude_code_not_logged_in() {
    let Some(mut s) = Setup::new("claude").await else {
        return;
    };
    let prompt = s.preset("claude", "claude").await;
    let task = s.task("Say hello", &[]).await;
    let run = s.api.run(&task, &prompt, json!({}), 0).await;
    let run = s.wait_end(&run.id).await;
    let expected = format!(
        "Claude Code is not logged in on worker {}: run `claude` there once and log in \
         (Not logged in · Please run /login)",
        s.worker_id()
    );
    assert_eq!(run.status(), ExecutionStatus::Failed, "{run:?}");
    assert_eq!(run.error.as_deref(), Some(expected.as_str()));
    let session = run
        .session_ref
        .clone()
        .expect("init carries the session id");
    assert!(s.log(&run.id).await.contains(r#""subtype":"init""#));

    let next = s
        .api
        .executions
        .continue_execution(ContinueExecutionRequest {
            id: run.id.clone(),
            prompt: "Again".into(),
        })
        .await
        .expect("continue")
        .into_inner()
        .execution
        .expect("execution");
    let next = s.wait_end(&next.id).await;
    assert_eq!(next.status(), ExecutionStatus::Failed, "{next:?}");
    assert_eq!(next.error.as_deref(), Some(expected.as_str()));
    assert_eq!(next.session_ref.as_deref(), Some(session.as_str()));
}

/// Codex 0.169.0 with no login: the handshake and `thread/start` work, the
/// thread id becomes the session ref, and cancel stops it. Left alone, the
/// turn cannot reach the service: offline it retries for ever and the stall
/// rule fails it with the last error; online, without a login, the service
/// refuses it. Either way a failure naming Codex and the worker, in seconds.
#[tokio::test]
async fn codex_thread_cancel_and_stall() {
    let Some(mut s) = Setup::new("codex").await else {
        return;
    };
    let prompt = s.preset("codex", "codex").await;
    let task = s.task("Say hello", &[]).await;

    let run = s.api.run(&task, &prompt, json!({}), 0).await;
    let running = s.wait(&run.id, |e| e.session_ref.is_some()).await;
    let thread = running.session_ref.clone().unwrap();
    assert_eq!(thread.len(), 36, "a thread id (UUID): {thread}");
    s.api
        .executions
        .cancel_execution(amon_proto::v1::CancelExecutionRequest {
            id: run.id.clone(),
            reason: "enough".into(),
        })
        .await
        .expect("cancel");
    let cancelled = s.wait_end(&run.id).await;
    let worker = s.worker_id().to_string();
    match cancelled.status() {
        ExecutionStatus::Cancelled => {}
        // With a network, the refusal may come before the cancel lands.
        ExecutionStatus::Failed => {
            let error = cancelled.error.clone().unwrap_or_default();
            assert!(
                error.starts_with(&format!("Codex is not logged in on worker {worker}")),
                "{error}"
            );
        }
        other => panic!("cancelled run ended {other:?}: {cancelled:?}"),
    }
    assert_eq!(cancelled.session_ref.as_deref(), Some(thread.as_str()));

    let run = s.api.run(&task, &prompt, json!({}), 0).await;
    let run = s.wait_end(&run.id).await;
    assert_eq!(run.status(), ExecutionStatus::Failed, "{run:?}");
    let error = run.error.clone().unwrap_or_default();
    let offline = error.starts_with(&format!(
        "Codex cannot reach its service from worker {worker}"
    )) && error
        .ends_with("no progress for 3s while it retried, so the run was stopped");
    let refused = error.starts_with(&format!("Codex is not logged in on worker {worker}"));
    assert!(offline || refused, "{error}");
    assert!(run.session_ref.is_some());
    assert!(took(&run) < 30, "took {}s", took(&run));
}

/// Gemini CLI 0.61.0 in a folder it has never seen: the worker trusts the
/// run's folder and gives the pane true colour, so neither the trust dialog
/// nor the colour warning shows; with no login the sign-in screen does, and
/// the run fails saying so, never a success. A task that clears the
/// worker's trust setting sees the trust dialog, and the run fails naming it.
#[tokio::test]
async fn gemini_cli_screens() {
    let Some(mut s) = Setup::new("gemini").await else {
        return;
    };
    let prompt = s.preset("gemini", "gemini").await;
    let worker = s.worker_id().to_string();

    let task = s.task("Say hello", &[]).await;
    let run = s.api.run(&task, &prompt, json!({}), 0).await;
    let run = s.wait_end(&run.id).await;
    assert_eq!(run.status(), ExecutionStatus::Failed, "{run:?}");
    assert_eq!(
        run.error.as_deref(),
        Some(
            format!(
                "Gemini CLI is not logged in on worker {worker}: run `gemini` there once and log \
                 in (its screen shows \"How would you like to authenticate\")"
            )
            .as_str()
        )
    );
    let log = s.log(&run.id).await;
    assert!(log.contains("authentication"), "{log}");
    assert!(
        !log.contains("Do you trust the files in this folder?"),
        "{log}"
    );
    assert!(
        !log.contains("True color (24-bit) support not detected"),
        "{log}"
    );
    // It stopped at the screen: the idle rule (10 s) played no part.
    assert!(took(&run) < 10, "took {}s", took(&run));

    // Empty: Gemini asks (`false` would mean untrusted without asking).
    let untrusting = s
        .task("Say hello", &[("GEMINI_CLI_TRUST_WORKSPACE", "")])
        .await;
    let run = s.api.run(&untrusting, &prompt, json!({}), 0).await;
    let run = s.wait_end(&run.id).await;
    assert_eq!(run.status(), ExecutionStatus::Failed, "{run:?}");
    assert_eq!(
        run.error.as_deref(),
        Some(
            format!(
                "Gemini CLI on worker {worker} stopped at its folder trust screen (\"Do you trust \
                 the files in this folder?\"), which waits for a person: nothing was asked of the \
                 model"
            )
            .as_str()
        )
    );
}
