//! Runs end to end with real processes: a real server, real `amon-worker`
//! processes, real children, on SQLite and PostgreSQL. What a user would see:
//! statuses, exit codes, errors and the stored output.

use std::time::Duration;

use amon_proto::v1::{
    Agent, CancelExecutionRequest, Capability, ExecutionStatus, GetBoardRequest,
    ListWorkersRequest, Task, TaskInputContext, TaskStatus,
};
use amon_tests::{
    api::{Api, strings},
    both_backends,
    db::TestDb,
    fake_worker::FakeWorker,
    server::TestServer,
    worker::TestWorker,
};
use anyhow::Result;
use serde_json::json;
use tonic::{Code, Request, metadata::MetadataValue};

const WAIT: Duration = Duration::from_secs(30);

async fn start(db: &TestDb) -> (TestServer, Api) {
    let server = TestServer::start_with_args(Some(db.url()), &["--no-local-worker"]).await;
    let api = Api::new(server.channel().await);
    (server, api)
}

/// A `sh -c SCRIPT` capability; `{{…}}` in later tokens are the args.
async fn shell(
    api: &mut Api,
    agent: &Agent,
    key: &str,
    script: &str,
    extra: &[&str],
) -> Capability {
    let mut tokens = vec!["-c", script];
    tokens.extend_from_slice(extra);
    api.command(agent, key, &tokens).await
}

/// A template capability with no command tokens runs the agent's binary with
/// its base args alone: tools such as `date` or `uptime` take no arguments.
async fn capability_without_tokens(db: TestDb) -> Result<()> {
    let (server, mut api) = start(&db).await;
    let _worker = TestWorker::start(&server, "w1", 1, &[]);
    let echo = api
        .agent(Agent {
            name: "greet".into(),
            slug: "greet".into(),
            binary_path: "/bin/echo".into(),
            base_args: strings(&["hello", "world"]),
            ..Default::default()
        })
        .await;
    let greet = api
        .capability(Capability {
            agent_id: echo.id.clone(),
            key: "greet".into(),
            label: "Greet".into(),
            ..Default::default()
        })
        .await;
    assert!(greet.command_tokens.is_empty());
    let task = api.titled("no tokens").await;
    let run = api.run(&task, &greet, json!({}), 0).await;
    api.wait_for(&run.id, ExecutionStatus::Succeeded, WAIT)
        .await;
    assert_eq!(api.log(&run.id).await, b"hello world\n");
    Ok(())
}

async fn outcomes_and_environment(db: TestDb) -> Result<()> {
    let (server, mut api) = start(&db).await;
    let _worker = TestWorker::start(
        &server,
        "w1",
        2,
        &[("AMON_TEST_ALLOWED", "yes"), ("AMON_TEST_SECRET", "leak")],
    );
    let sh = api.tool("sh", "/bin/sh", &["AMON_TEST_ALLOWED"]).await;
    let task = api.titled("outcomes").await;

    // Success: stdout and stderr interleaved, byte for byte; the task is done.
    let mixed = shell(
        &mut api,
        &sh,
        "mixed",
        "printf 'out 1\\n'; printf 'err 2\\n' >&2; printf 'out 3'",
        &[],
    )
    .await;
    let run = api.run(&task, &mixed, json!({}), 0).await;
    let done = api
        .wait_for(&run.id, ExecutionStatus::Succeeded, WAIT)
        .await;
    assert_eq!(done.exit_code, Some(0));
    assert_eq!(done.worker_id.as_deref(), Some("w1"));
    assert_eq!(api.log(&run.id).await, b"out 1\nerr 2\nout 3");
    assert_eq!((done.log_byte_size, done.log_line_count), (17, 2));
    let board = api.tasks.get_board(GetBoardRequest {}).await?.into_inner();
    let done_column = &board.columns[3];
    assert_eq!(done_column.status, TaskStatus::Done as i32);
    assert!(done_column.tasks.iter().any(|t| t.id == task.id));

    // Non-zero exit.
    let fails = shell(&mut api, &sh, "fails", "echo nope; exit 3", &[]).await;
    let run = api.run(&task, &fails, json!({}), 0).await;
    let failed = api.wait_for(&run.id, ExecutionStatus::Failed, WAIT).await;
    assert_eq!(failed.exit_code, Some(3));
    assert!(
        failed.error.as_deref().unwrap_or("").contains('3'),
        "{:?}",
        failed.error
    );
    assert_eq!(api.log(&run.id).await, b"nope\n");

    // A missing binary fails the run, not the worker.
    let ghost = api.tool("ghost", "/nonexistent/amon-ghost", &[]).await;
    let boo = api.command(&ghost, "boo", &["boo"]).await;
    let run = api.run(&task, &boo, json!({}), 0).await;
    let failed = api.wait_for(&run.id, ExecutionStatus::Failed, WAIT).await;
    assert!(
        failed.error.as_deref().unwrap_or("").contains("amon-ghost"),
        "{:?}",
        failed.error
    );

    // The child sees the allowlist and the task's overrides, nothing else.
    let env_task = api
        .task(Task {
            title: "env".into(),
            input_context: Some(TaskInputContext {
                env_overrides: [("AMON_TEST_OVERRIDE".to_string(), "set".to_string())].into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
    let env = api
        .tool("env", "/usr/bin/env", &["AMON_TEST_ALLOWED"])
        .await;
    let print = api
        .capability(Capability {
            agent_id: env.id.clone(),
            key: "print".into(),
            label: "print".into(),
            command_tokens: strings(&["-0"]),
            ..Default::default()
        })
        .await;
    let run = api.run(&env_task, &print, json!({}), 0).await;
    api.wait_for(&run.id, ExecutionStatus::Succeeded, WAIT)
        .await;
    let log = api.log(&run.id).await;
    let mut vars: Vec<String> = log
        .split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    vars.sort();
    assert_eq!(vars, ["AMON_TEST_ALLOWED=yes", "AMON_TEST_OVERRIDE=set"]);
    Ok(())
}

async fn timeout_cancel_and_output_cap(db: TestDb) -> Result<()> {
    let (server, mut api) = start(&db).await;
    api.tune(120_000, 30_000, 300).await;
    let _worker = TestWorker::start(&server, "w1", 3, &[]);
    let sh = api.tool("sh", "/bin/sh", &[]).await;
    let task = api.titled("limits").await;

    // Timeout: the child ignores SIGTERM; SIGKILL after the grace ends it.
    let stubborn = api
        .capability(Capability {
            agent_id: sh.id.clone(),
            key: "stubborn".into(),
            label: "stubborn".into(),
            command_tokens: strings(&["-c", "trap '' TERM; echo started; sleep 30"]),
            timeout_sec: Some(1),
            ..Default::default()
        })
        .await;
    let timed = api.run(&task, &stubborn, json!({}), 0).await;

    // Cancel a running sleep.
    let sleepy = shell(&mut api, &sh, "sleepy", "echo sleeping; exec sleep 30", &[]).await;
    let cancelled = api.run(&task, &sleepy, json!({}), 0).await;
    api.wait_for(&cancelled.id, ExecutionStatus::Running, WAIT)
        .await;
    api.executions
        .cancel_execution(CancelExecutionRequest {
            id: cancelled.id.clone(),
            reason: "test".into(),
        })
        .await?;

    // Output cap: the rest is dropped after one marker line; the run goes on.
    let chatty = api
        .capability(Capability {
            agent_id: sh.id.clone(),
            key: "chatty".into(),
            label: "chatty".into(),
            command_tokens: strings(&[
                "-c",
                "for i in $(seq 1 200); do echo line $i; done; echo end >&2",
            ]),
            max_output_bytes: Some(100),
            ..Default::default()
        })
        .await;
    let capped = api.run(&task, &chatty, json!({}), 0).await;

    let timed = api
        .wait_for(&timed.id, ExecutionStatus::TimedOut, WAIT)
        .await;
    assert!(api.log(&timed.id).await.starts_with(b"started\n"));
    let cancelled = api
        .wait_for(&cancelled.id, ExecutionStatus::Cancelled, WAIT)
        .await;
    assert!(cancelled.ended_at.is_some());
    api.wait_for(&capped.id, ExecutionStatus::Succeeded, WAIT)
        .await;
    let log = String::from_utf8(api.log(&capped.id).await)?;
    assert!(log.starts_with("line 1\nline 2\n"), "{log:?}");
    assert!(log.contains("truncated"), "{log:?}");
    assert!(!log.contains("end"), "nothing past the cap: {log:?}");
    assert!(log.len() < 200, "{} bytes kept", log.len());
    Ok(())
}

async fn retries_after_failure(db: TestDb) -> Result<()> {
    let (server, mut api) = start(&db).await;
    let _worker = TestWorker::start(&server, "w1", 1, &[]);
    let sh = api.tool("sh", "/bin/sh", &[]).await;
    let marker = tempfile::NamedTempFile::new()?.into_temp_path();
    let marker_path = marker.to_string_lossy().into_owned();
    std::fs::remove_file(&marker)?;
    let flaky = shell(
        &mut api,
        &sh,
        "flaky",
        "if [ -e \"$0\" ]; then echo second try; else : > \"$0\"; echo first try; exit 1; fi",
        &["{{ marker }}"],
    )
    .await;
    let task = api.titled("flaky").await;
    let run = api
        .run(&task, &flaky, json!({ "marker": marker_path }), 2)
        .await;
    let done = api
        .wait_for(&run.id, ExecutionStatus::Succeeded, WAIT)
        .await;
    assert_eq!(done.retry_count, 1);
    let log = String::from_utf8(api.log(&run.id).await)?;
    assert!(log.starts_with("first try\n"), "{log:?}");
    assert!(log.contains("=== amon: attempt 2 on worker w1"), "{log:?}");
    assert!(log.ends_with("second try\n"), "{log:?}");
    Ok(())
}

async fn a_killed_worker_s_run_finishes_elsewhere(db: TestDb) -> Result<()> {
    let (server, mut api) = start(&db).await;
    api.tune(1_500, 300, 300).await;
    let mut doomed = TestWorker::start(&server, "doomed", 1, &[]);
    let sh = api.tool("sh", "/bin/sh", &[]).await;
    let slow = shell(&mut api, &sh, "slow", "echo begin; sleep 1; echo end", &[]).await;
    let task = api.titled("survive").await;
    let run = api.run(&task, &slow, json!({}), 1).await;
    let running = api.wait_for(&run.id, ExecutionStatus::Running, WAIT).await;
    assert_eq!(running.worker_id.as_deref(), Some("doomed"));
    doomed.kill_hard();
    let _rescuer = TestWorker::start(&server, "rescuer", 1, &[]);
    let done = api
        .wait_for(&run.id, ExecutionStatus::Succeeded, WAIT)
        .await;
    assert_eq!(done.worker_id.as_deref(), Some("rescuer"));
    assert_eq!(done.retry_count, 1);
    let log = String::from_utf8(api.log(&run.id).await)?;
    assert!(log.ends_with("begin\nend\n"), "{log:?}");
    Ok(())
}

async fn drain_on_sigterm(db: TestDb) -> Result<()> {
    let (server, mut api) = start(&db).await;
    let worker = TestWorker::start(&server, "drainer", 1, &[]);
    let sh = api.tool("sh", "/bin/sh", &[]).await;
    let short = shell(&mut api, &sh, "short", "sleep 0.5; echo finished", &[]).await;
    let task = api.titled("drain").await;
    let run = api.run(&task, &short, json!({}), 0).await;
    api.wait_for(&run.id, ExecutionStatus::Running, WAIT).await;
    // Running is written at the claim: wait for the worker to have started
    // it (its pid reported). A worker told to stop before the assignment
    // reached it exits at once, and the run rightly goes back to the queue
    // (under a loaded machine this test saw that: "still Queued").
    let deadline = std::time::Instant::now() + WAIT;
    while api.execution(&run.id).await.pid.is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the run never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = worker.terminate(WAIT).await;
    assert!(status.success(), "a drained worker exits 0: {status}");
    let done = api
        .wait_for(&run.id, ExecutionStatus::Succeeded, WAIT)
        .await;
    assert_eq!(done.exit_code, Some(0));
    assert_eq!(api.log(&run.id).await, b"finished\n");
    let workers = api
        .workers
        .list_workers(ListWorkersRequest {
            connected_only: true,
        })
        .await?
        .into_inner();
    assert!(workers.workers.iter().all(|w| w.worker_id != "drainer"));
    Ok(())
}

async fn tokens_guard_each_side(db: TestDb) -> Result<()> {
    let server = TestServer::start_with_args(
        Some(db.url()),
        &[
            "--no-local-worker",
            "--worker-token",
            "w-secret",
            "--client-token",
            "c-secret",
        ],
    )
    .await;
    let channel = server.channel().await;
    let bearer = |token: &'static str| {
        move |mut request: Request<()>| {
            request
                .metadata_mut()
                .insert("authorization", MetadataValue::from_static(token));
            Ok(request)
        }
    };
    use amon_proto::v1::{GetBoardRequest, task_service_client::TaskServiceClient};
    let err = TaskServiceClient::new(channel.clone())
        .get_board(GetBoardRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = TaskServiceClient::with_interceptor(channel.clone(), bearer("Bearer w-secret"))
        .get_board(GetBoardRequest {})
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::PermissionDenied,
        "a worker token cannot call client RPCs"
    );
    TaskServiceClient::with_interceptor(channel.clone(), bearer("Bearer c-secret"))
        .get_board(GetBoardRequest {})
        .await?;
    // Health stays open.
    tonic_health::pb::health_client::HealthClient::new(channel.clone())
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await?;
    // A worker without its token cannot connect.
    let err = FakeWorker::connect(channel.clone(), FakeWorker::register("intruder", 1))
        .await
        .err()
        .expect("refused");
    assert_eq!(err.code(), Code::Unauthenticated);

    // Beyond loopback without tokens, the server refuses to start.
    let refused = tokio::process::Command::new(amon_tests::server::binary("amon-server"))
        .args([
            "--listen",
            "0.0.0.0:0",
            "--no-local-worker",
            "--database-url",
            db.url(),
        ])
        .output()
        .await?;
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--insecure"));
    Ok(())
}

/// The stream is cut (the server is killed and comes back) while the child
/// keeps writing: the stored log equals the child's output byte for byte.
async fn a_cut_stream_loses_no_byte(db: TestDb) -> Result<()> {
    let (mut server, mut api) = start(&db).await;
    let _worker = TestWorker::start(&server, "steady", 1, &[]);
    let sh = api.tool("sh", "/bin/sh", &[]).await;
    let counter = shell(
        &mut api,
        &sh,
        "count",
        "i=1; while [ $i -le 60 ]; do echo \"line $i\"; i=$((i+1)); sleep 0.05; done",
        &[],
    )
    .await;
    let task = api.titled("count").await;
    let run = api.run(&task, &counter, json!({}), 0).await;
    api.wait_for(&run.id, ExecutionStatus::Running, WAIT).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    server.restart().await;
    let mut api = Api::new(server.channel().await);
    let done = api
        .wait_for(&run.id, ExecutionStatus::Succeeded, WAIT)
        .await;
    let expected: String = (1..=60).map(|i| format!("line {i}\n")).collect();
    assert_eq!(String::from_utf8(api.log(&run.id).await)?, expected);
    assert_eq!(done.log_byte_size as usize, expected.len());
    Ok(())
}

/// Runs that cannot start (their agent at `max_concurrent`, or awaiting
/// approval) must not hold up the runs queued behind them: the claim used
/// to look at a window of the oldest queued runs only, so 40 such runs
/// filled it and another agent's run waited for that whole queue to drain.
async fn blocked_runs_do_not_starve_the_queue(db: TestDb) -> Result<()> {
    let (server, mut api) = start(&db).await;
    let _worker = TestWorker::start(&server, "w1", 2, &[]);
    let hog = api
        .agent(Agent {
            name: "hog".into(),
            slug: "hog".into(),
            binary_path: "/bin/sh".into(),
            max_concurrent: Some(1),
            ..Default::default()
        })
        .await;
    let slow = shell(&mut api, &hog, "slow", "sleep 60", &[]).await;
    let sh = api.tool("sh", "/bin/sh", &[]).await;
    let gated = api
        .capability(Capability {
            agent_id: sh.id.clone(),
            key: "gated".into(),
            label: "gated".into(),
            command_tokens: strings(&["-c", "echo approved"]),
            requires_approval: true,
            ..Default::default()
        })
        .await;
    let quick = shell(&mut api, &sh, "quick", "echo quick", &[]).await;
    let task = api.titled("crowded queue").await;
    let first = api.run(&task, &slow, json!({}), 0).await;
    api.wait_for(&first.id, ExecutionStatus::Running, WAIT)
        .await;
    let mut held = Vec::new();
    for _ in 0..40 {
        held.push(api.run(&task, &slow, json!({}), 0).await);
        held.push(api.run(&task, &gated, json!({}), 0).await);
    }
    let behind = api.run(&task, &quick, json!({}), 0).await;
    // Well under the hog's 60 s: before the fix it waited for all of them.
    let done = api
        .wait_for(
            &behind.id,
            ExecutionStatus::Succeeded,
            Duration::from_secs(15),
        )
        .await;
    assert_eq!(done.worker_id.as_deref(), Some("w1"));
    assert_eq!(api.log(&behind.id).await, b"quick\n");
    for run in &held {
        let now = api.execution(&run.id).await;
        assert_eq!(
            now.status,
            ExecutionStatus::Queued as i32,
            "held back: {}",
            run.id
        );
    }
    let mut executions = api.executions.clone();
    executions
        .cancel_execution(CancelExecutionRequest {
            id: first.id.clone(),
            reason: "done".into(),
        })
        .await?;
    Ok(())
}

both_backends!(
    blocked_runs_do_not_starve_the_queue,
    capability_without_tokens,
    a_cut_stream_loses_no_byte,
    outcomes_and_environment,
    timeout_cancel_and_output_cap,
    retries_after_failure,
    a_killed_worker_s_run_finishes_elsewhere,
    drain_on_sigterm,
    tokens_guard_each_side
);
