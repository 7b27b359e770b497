//! The web board (`web/`) in a real browser: Debian's `chromium` driven by
//! `playwright-core` (`web/tests/board.mjs`) against a real server and a real
//! worker process. The script checks the cards' markers, creates a task in
//! the page (and is refused a blank title at the field), drags it to In
//! progress and reorders a column, sees a task created by this test's own
//! gRPC client appear without a reload, edits a task, runs an echo capability
//! from the form generated from its schema (an argument the schema refuses
//! shows its message at the field) and sees its output, sees a running
//! sleep's coloured output live and cancels it, approves a run that needs
//! approval, adds an AI agent from a preset (the fake Claude Code) and runs
//! and continues it, has a log stream cut under it (a TCP proxy) and resumes
//! with every line once, opens the agents and workers pages, and gives a
//! server that demands a token its token once.
//!
//! A second script (`web/tests/runs.mjs`) opens a run's page: the terminal
//! of a fake Gemini CLI running in tmux (xterm.js, typed into and watched),
//! and the worktree summary and diff of a fake Claude run.
//!
//! Also, without a browser: the one port still serves `/mcp`, `/metrics`,
//! native gRPC and the page after every service was wrapped in gRPC-web,
//! and answers gRPC-web.
//!
//! SQLite only: the page is a client of the API, whose storage every other
//! test file runs on both backends. Needs node and chromium: `.ci/run`
//! installs both; without chromium the browser test is skipped with a
//! message, except under `CI=true`, where it fails.

use std::{path::PathBuf, process::Stdio, time::Duration};

use amon_proto::v1::{
    AddDependencyRequest, Agent, Capability, CreatePresetAgentRequest, CreateTaskRequest,
    ExecutionStatus, GetBoardRequest, GetExecutionDiffRequest, ListTaskEventsRequest, Task,
    TaskInputContext, WorktreeIsolation, task_service_client::TaskServiceClient,
};
use amon_tests::{
    api::{Api, object, strings},
    proxy::Proxy,
    server::TestServer,
    terminal::{GeminiRig, fixture},
    worker::TestWorker,
};
use anyhow::{Context, Result, ensure};
use serde_json::json;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    process::Command,
};
use tonic::{Request, metadata::MetadataValue};

/// The whole browser run takes about 10 s; the rest is a busy machine.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(180);
const TOKEN: &str = "web-board-client-token";

fn web_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web")
}

/// The browser, or `None` (skip) when it is absent outside CI.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if path.exists() {
        return Some(path);
    }
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!(
            "{} is missing and CI=true: install Debian's chromium (.ci/run does)",
            path.display()
        );
    }
    eprintln!(
        "SKIPPED: the web board's browser test needs chromium at {} (apt-get install chromium)",
        path.display()
    );
    None
}

/// `web/node_modules` from the lockfile, installed once with `npm ci` when
/// playwright-core is not there yet.
async fn node_modules() -> Result<()> {
    static INSTALLED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    INSTALLED
        .get_or_try_init(|| async {
            if web_dir().join("node_modules/playwright-core").exists() {
                return Ok(());
            }
            let status = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(web_dir())
                .stdin(Stdio::null())
                .status()
                .await
                .context("running npm ci in web/ (the browser test needs node and npm)")?;
            ensure!(status.success(), "npm ci in web/ failed: {status}");
            Ok(())
        })
        .await
        .copied()
}

/// The tools the script runs: `echo` (a shell printing its text `times`
/// times, the text passed as an argument, never as shell source) and `sleepy`
/// (prints three lines, then sleeps).
async fn seed(api: &mut Api) -> Capability {
    let echo = api.tool("echo", "/bin/sh", &[]).await;
    api.capability(Capability {
        agent_id: echo.id.clone(),
        key: "say".into(),
        label: "Say".into(),
        command_tokens: strings(&[
            "-c",
            "for i in $(seq {{ times }}); do echo \"$0\"; done",
            "{{ text }}",
        ]),
        args_schema: Some(object(json!({
            "type": "object",
            "properties": {
                "text": {"type": "string", "minLength": 1, "description": "What to print"},
                "times": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1}
            },
            "required": ["text", "times"]
        }))),
        ..Default::default()
    })
    .await;
    api.capability(Capability {
        agent_id: echo.id.clone(),
        key: "guarded".into(),
        label: "Guarded".into(),
        command_tokens: strings(&["-c", "echo approved and ran"]),
        args_schema: Some(object(json!({"type": "object"}))),
        requires_approval: true,
        ..Default::default()
    })
    .await;
    let sleepy = api
        .agent(Agent {
            name: "sleepy".into(),
            slug: "sleepy".into(),
            binary_path: "/bin/sh".into(),
            max_concurrent: Some(2),
            ..Default::default()
        })
        .await;
    api.capability(Capability {
        agent_id: sleepy.id.clone(),
        key: "sleep".into(),
        label: "Sleep".into(),
        command_tokens: strings(&[
            "-c",
            "for i in 1 2 3; do printf '\\033[1;32mline %s\\033[0m of 3: \\033[33mworking\\033[0m\\n' $i; done; exec sleep 60",
        ]),
        args_schema: Some(object(json!({"type": "object"}))),
        ..Default::default()
    })
    .await;

    // Twenty lines, a fifth of a second apart: long enough to cut the
    // network under the page mid-log.
    let ticker = api
        .command(
            &sleepy,
            "tick",
            &[
                "-c",
                "for i in $(seq 1 20); do echo tick $i; sleep 0.2; done",
            ],
        )
        .await;

    // Cards with every marker: priority, assignee, due date, a subtask, a
    // dependency.
    let review = api
        .task(Task {
            title: "Review the proto".into(),
            priority: Some(1),
            assignee_agent_id: Some(echo.id.clone()),
            due_at: Some(prost_types::Timestamp {
                seconds: 4_102_444_800, // 2100-01-01
                nanos: 0,
            }),
            ..Default::default()
        })
        .await;
    let lint = api
        .task(Task {
            title: "Lint the proto".into(),
            parent_task_id: Some(review.id.clone()),
            ..Default::default()
        })
        .await;
    api.tasks
        .add_dependency(AddDependencyRequest {
            task_id: lint.id.clone(),
            depends_on_task_id: review.id.clone(),
        })
        .await
        .expect("add dependency");
    ticker
}

#[tokio::test]
async fn the_board_in_a_browser() -> Result<()> {
    let Some(chromium) = chromium() else {
        return Ok(());
    };
    node_modules().await?;

    let server = TestServer::start_with_args(None, &["--no-local-worker"]).await;
    let _worker = TestWorker::start(&server, "w1", 2, &[]);
    let mut api = Api::new(server.channel().await);
    let ticker = seed(&mut api).await;
    let proxy = Proxy::start(server.addr()).await;

    let guarded = TestServer::start_with_args(None, &["--client-token", TOKEN]).await;
    let mut guarded_tasks = TaskServiceClient::new(guarded.channel().await);
    let mut request = Request::new(CreateTaskRequest {
        task: Some(Task {
            title: "Guarded task".into(),
            ..Default::default()
        }),
    });
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {TOKEN}"))?,
    );
    guarded_tasks.create_task(request).await?;

    let mut command = Command::new("node");
    command
        .arg("tests/board.mjs")
        .current_dir(web_dir())
        .env("AMON_URL", server.url())
        .env("AMON_TOKEN_URL", guarded.url())
        .env("AMON_TOKEN", TOKEN)
        .env("AMON_PROXY_URL", proxy.url())
        .env(
            "AMON_FAKE_CLAUDE",
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/fake-claude"),
        )
        .env("CHROMIUM", &chromium)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    if let Some(dir) = std::env::var_os("AMON_SCREENSHOTS") {
        command.env("AMON_SCREENSHOTS", dir);
    }
    let mut script = command
        .spawn()
        .context("running node web/tests/board.mjs")?;
    let mut stdin = script.stdin.take().expect("piped stdin");
    let mut lines = BufReader::new(script.stdout.take().expect("piped stdout")).lines();
    let mut steps = Vec::new();
    let run = async {
        while let Some(line) = lines.next_line().await? {
            println!("board.mjs: {line}");
            if line == "need other-client task" {
                // Another client: this test's own native gRPC channel.
                api.titled("Made by another client").await;
                stdin.write_all(b"created\n").await?;
            } else if line == "need ticker run" {
                let task = api.titled("Ticks").await;
                let run = api.run(&task, &ticker, json!({}), 0).await;
                stdin.write_all(format!("{}\n", run.id).as_bytes()).await?;
            } else if line == "cut the network" {
                proxy.cut();
                tokio::time::sleep(Duration::from_secs(1)).await;
                proxy.heal();
                stdin.write_all(b"healed\n").await?;
            }
            steps.push(line);
        }
        anyhow::Ok(script.wait().await?)
    };
    let status = tokio::time::timeout(BROWSER_TIMEOUT, run)
        .await
        .with_context(|| format!("the browser test did not finish within {BROWSER_TIMEOUT:?}"))??;
    ensure!(
        status.success(),
        "web/tests/board.mjs failed ({status}); steps passed: {steps:#?}"
    );
    for expected in [
        "ok the board watches from where GetBoard stood",
        "ok task created from the page appears in To do",
        "ok dragged to In progress",
        "ok another client's task appears live",
        "ok an args error shows at its field",
        "ok two fields changed before a render both keep their text",
        "ok echo run from the generated form",
        "ok a running run's duration counts up",
        "ok the running sleep cancelled",
        "ok a run awaiting approval approved",
        "ok a queued run that needs no approval offers no Approve",
        "ok an AI run from a preset agent, continued",
        "ok reordered within a column",
        "ok task edited from its page",
        "ok a dropped log stream resumes",
        "ok agents and workers pages",
        "ok the token is asked for once",
    ] {
        ensure!(
            steps.iter().any(|s| s.starts_with(expected)),
            "step {expected:?} missing: {steps:#?}"
        );
    }

    // What the page did is what the server recorded: the drag a MoveTask
    // to In progress (the runs since have moved the task on by themselves),
    // the reorder a MoveTask before its neighbour.
    let board = api.tasks.get_board(GetBoardRequest {}).await?.into_inner();
    let id = |title: &str| {
        board
            .columns
            .iter()
            .flat_map(|c| &c.tasks)
            .find(|t| t.title == title)
            .map(|t| t.id.clone())
            .with_context(|| format!("{title:?} is not on the board"))
    };
    let moves = |task_id: String| {
        let mut tasks = api.tasks.clone();
        async move {
            let events = tasks
                .list_task_events(ListTaskEventsRequest {
                    task_id,
                    page_size: 1000,
                    ..Default::default()
                })
                .await?
                .into_inner()
                .events;
            anyhow::Ok(
                events
                    .into_iter()
                    .filter(|e| e.event_type == "moved")
                    .map(|e| {
                        serde_json::to_string(&amon_server::grpc::convert::struct_to_json(
                            &e.payload.unwrap_or_default(),
                        ))
                        .unwrap()
                    })
                    .collect::<Vec<_>>(),
            )
        }
    };
    let dragged = moves(id("Write the web board")?).await?;
    ensure!(
        dragged.iter().any(|m| m.contains("in_progress")),
        "no move to In progress recorded: {dragged:?}"
    );
    let reordered = moves(id("Made by another client")?).await?;
    ensure!(
        reordered.iter().any(|m| m.contains("before_task_id")),
        "no move before a neighbour recorded: {reordered:?}"
    );
    Ok(())
}

/// The one port after every gRPC service was wrapped in gRPC-web: the page,
/// gRPC-web, native gRPC, `/mcp` and `/metrics` all answer, unknown paths stay
/// 404 and unknown RPCs UNIMPLEMENTED.
#[tokio::test]
async fn one_port_serves_the_page_grpc_web_and_everything_else() -> Result<()> {
    let server = TestServer::start_with_args(None, &["--no-local-worker"]).await;
    let http = amon_tests::http::client();
    let base = server.url();

    let page = http.get(format!("{base}/")).send().await?;
    ensure!(page.status() == 200, "GET / answered {}", page.status());
    ensure!(
        page.headers()["content-type"]
            .to_str()?
            .starts_with("text/html")
    );
    ensure!(page.headers()["cache-control"] == "no-cache");
    let policy = page.headers()["content-security-policy"].to_str()?;
    ensure!(policy.contains("frame-ancestors 'none'") && policy.contains("script-src 'self'"));
    let html = page.text().await?;
    let script = html
        .split("src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .context("index.html names its script")?
        .to_owned();
    let asset = http.get(format!("{base}/{script}")).send().await?;
    ensure!(
        asset.status() == 200,
        "GET /{script} answered {}",
        asset.status()
    );
    ensure!(
        asset.headers()["content-type"]
            .to_str()?
            .starts_with("text/javascript")
    );
    ensure!(
        asset.headers()["cache-control"]
            .to_str()?
            .contains("immutable")
    );
    ensure!(http.get(format!("{base}/tasks/1")).send().await?.status() == 404);
    ensure!(
        http.get(format!("{base}/assets/nope.js"))
            .send()
            .await?
            .status()
            == 404
    );

    // gRPC-web over HTTP/1.1: GetBoard's empty request in one frame; the
    // reply holds a message frame and a trailer frame with grpc-status 0.
    let reply = http
        .post(format!("{base}/agentmonitor.v1.TaskService/GetBoard"))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(vec![0u8, 0, 0, 0, 0])
        .send()
        .await?;
    ensure!(
        reply.status() == 200,
        "gRPC-web answered {}",
        reply.status()
    );
    ensure!(
        reply.headers()["content-type"]
            .to_str()?
            .starts_with("application/grpc-web")
    );
    let body = reply.bytes().await?;
    let trailers = String::from_utf8_lossy(&body);
    ensure!(
        trailers.contains("grpc-status:0"),
        "no OK trailer in {trailers:?}"
    );

    // Native gRPC (HTTP/2) through the same wrapped service.
    let mut tasks = TaskServiceClient::new(server.channel().await);
    ensure!(
        tasks
            .get_board(GetBoardRequest {})
            .await?
            .into_inner()
            .columns
            .len()
            == 5
    );

    // /mcp and /metrics are not the gRPC-web layer's: not its 400.
    let mcp = http
        .post(format!("{base}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "web-board-test", "version": "1"}}})
            .to_string(),
        )
        .send()
        .await?;
    ensure!(
        mcp.status() == 200,
        "/mcp initialize answered {}",
        mcp.status()
    );
    let metrics = http.get(format!("{base}/metrics")).send().await?;
    ensure!(
        metrics.status() == 200,
        "/metrics answered {}",
        metrics.status()
    );

    // An unknown RPC is still UNIMPLEMENTED, gRPC-web or not.
    let unknown = http
        .post(format!("{base}/agentmonitor.v1.NoService/Nothing"))
        .header("content-type", "application/grpc-web+proto")
        .body(vec![0u8, 0, 0, 0, 0])
        .send()
        .await?;
    ensure!(
        unknown.headers()["grpc-status"] == "12",
        "{:?}",
        unknown.headers()
    );
    Ok(())
}

/// A refused gRPC-web call says why, in a reply the browser's client reads
/// (its own content type, the status in the headers).
#[tokio::test]
async fn a_refused_grpc_web_call_says_why() -> Result<()> {
    let server = TestServer::start_with_args(None, &["--client-token", TOKEN]).await;
    let reply = amon_tests::http::client()
        .post(format!(
            "{}/agentmonitor.v1.TaskService/GetBoard",
            server.url()
        ))
        .header("content-type", "application/grpc-web+proto")
        .body(vec![0u8, 0, 0, 0, 0])
        .send()
        .await?;
    ensure!(reply.headers()["content-type"] == "application/grpc-web+proto");
    ensure!(
        reply.headers()["grpc-status"] == "16",
        "{:?}",
        reply.headers()
    );
    ensure!(
        reply.headers()["grpc-message"]
            .to_str()?
            .contains("client%20token")
            || reply.headers()["grpc-message"]
                .to_str()?
                .contains("client token"),
        "{:?}",
        reply.headers()
    );
    Ok(())
}

/// `git -C dir args` as the test's own identity; must succeed.
fn git(dir: &std::path::Path, args: &[&str]) {
    let status = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=test",
            "-c",
            "user.email=test@example.invalid",
        ])
        .args(args)
        .status()
        .expect("running git");
    assert!(status.success(), "git {args:?} in {}", dir.display());
}

/// A run's page in a browser (`web/tests/runs.mjs`): the terminal of a
/// running fake Gemini CLI in tmux (typed into, watched read-only, closed
/// and reopened, ended by the run with its reason), and the worktree summary
/// and coloured diff of a fake Claude run isolated in a git worktree of a
/// repository made here, still shown when its worker is away.
#[tokio::test]
async fn a_runs_terminal_and_worktree_in_a_browser() -> Result<()> {
    let Some(chromium) = chromium() else {
        return Ok(());
    };
    node_modules().await?;

    let worker_id = format!("web-term-{}", std::process::id());
    let mut rig = GeminiRig::start(None, &worker_id).await;

    // A finished fake Claude run that wrote (and committed) a file in its
    // task's worktree of a repository made here.
    let scratch = tempfile::tempdir()?;
    let repo = scratch.path().join("repo");
    std::fs::create_dir_all(&repo)?;
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("README"), "line one\n")?;
    git(&repo, &["add", "README"]);
    git(&repo, &["commit", "-q", "-m", "initial"]);
    let claude = rig
        .api
        .agents
        .create_preset_agent(CreatePresetAgentRequest {
            preset: "claude".into(),
            binary_path: Some(fixture("fake-claude")),
            slug: Some("claude".into()),
            ..Default::default()
        })
        .await?
        .into_inner()
        .capability
        .context("the preset's prompt capability")?;
    let task = rig
        .api
        .task(Task {
            title: "Write the notes".into(),
            input_context: Some(TaskInputContext {
                working_dir: Some(repo.to_string_lossy().into_owned()),
                env_overrides: [
                    ("FAKE_CLI_WRITE".to_string(), "notes.txt".to_string()),
                    ("FAKE_CLI_COMMIT".to_string(), "notes".to_string()),
                ]
                .into_iter()
                .collect(),
                isolation: WorktreeIsolation::Worktree as i32,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
    let changed = rig.api.run(&task, &claude, json!({}), 0).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let changed = loop {
        let now = rig.api.execution(&changed.id).await;
        if now.status() == ExecutionStatus::Succeeded && now.worktree.is_some() {
            break now;
        }
        ensure!(
            !matches!(
                now.status(),
                ExecutionStatus::Failed | ExecutionStatus::Cancelled | ExecutionStatus::TimedOut
            ),
            "the fake Claude run failed: {now:?}"
        );
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the fake Claude run did not end: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let summary = changed.worktree.clone().context("a worktree summary")?;
    let file = summary.files.first().context("a changed file")?;
    ensure!(file.path == "notes.txt", "{summary:?}");
    let first_line = changed
        .prompt
        .as_deref()
        .and_then(|p| p.lines().next())
        .context("the run's prompt")?
        .to_owned();

    // A fake Gemini run waiting for its next prompt in tmux.
    let title = "Explain the board";
    let running = rig.running(title).await;

    let mut command = Command::new("node");
    command
        .arg("tests/runs.mjs")
        .current_dir(web_dir())
        .env("AMON_URL", rig.server.url())
        .env("AMON_TERMINAL_RUN", &running.id)
        .env("AMON_TERMINAL_TITLE", title)
        .env("AMON_DIFF_RUN", &changed.id)
        .env("AMON_DIFF_FILE", &file.path)
        .env("AMON_DIFF_ADDED", file.added.to_string())
        .env("AMON_DIFF_LINE", &first_line)
        .env("CHROMIUM", &chromium)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    if let Some(dir) = std::env::var_os("AMON_SCREENSHOTS") {
        command.env("AMON_SCREENSHOTS", dir);
    }
    let mut script = command.spawn().context("running node web/tests/runs.mjs")?;
    let mut stdin = script.stdin.take().expect("piped stdin");
    let mut lines = BufReader::new(script.stdout.take().expect("piped stdout")).lines();
    let mut steps = Vec::new();
    let run = async {
        while let Some(line) = lines.next_line().await? {
            println!("runs.mjs: {line}");
            if line == "need worker gone" {
                rig.worker.kill_hard();
                // Gone once the server says so to a diff.
                let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
                loop {
                    let refused = rig
                        .api
                        .executions
                        .get_execution_diff(GetExecutionDiffRequest {
                            execution_id: changed.id.clone(),
                            max_bytes: 0,
                        })
                        .await;
                    if refused
                        .as_ref()
                        .is_err_and(|s| s.code() == tonic::Code::FailedPrecondition)
                    {
                        break;
                    }
                    ensure!(
                        tokio::time::Instant::now() < deadline,
                        "the server still reaches the killed worker: {refused:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                stdin.write_all(b"gone\n").await?;
            }
            steps.push(line);
        }
        anyhow::Ok(script.wait().await?)
    };
    let status = tokio::time::timeout(BROWSER_TIMEOUT, run)
        .await
        .with_context(|| format!("the browser test did not finish within {BROWSER_TIMEOUT:?}"))??;
    ensure!(
        status.success(),
        "web/tests/runs.mjs failed ({status}); steps passed: {steps:#?}"
    );
    for expected in [
        "ok a run's worktree summary and its coloured diff",
        "ok a running run's terminal: a line typed in xterm is answered",
        "ok a read-only viewer watches the same screen",
        "ok closed and reopened",
        "ok a run that ended closes its terminals with the reason",
        "ok with its worker away",
    ] {
        ensure!(
            steps.iter().any(|s| s.starts_with(expected)),
            "step {expected:?} missing: {steps:#?}"
        );
    }
    // The watcher's keys never reached the run: the fake recorded no such line.
    let log = String::from_utf8_lossy(&rig.api.log(&running.id).await).into_owned();
    ensure!(log.contains("echo: typed in the browser"), "{log}");
    ensure!(
        !log.contains("not sent"),
        "a read-only viewer's keys reached the run: {log}"
    );
    Ok(())
}
