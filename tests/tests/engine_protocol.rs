//! The execution engine seen from the worker's side of the wire: protocol
//! clients in the test play workers message by message, so each rule of
//! claiming, attempts, logs and reconciliation is checked exactly, on
//! SQLite and PostgreSQL.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use amon_proto::v1::{
    AddDependencyRequest, ApproveExecutionRequest, CancelExecutionRequest, Capability,
    ExecutionStatus, GetTaskRequest, ListTaskEventsRequest, MoveTaskRequest, RunningExecution,
    StreamLogsRequest, Task, TaskStatus, connect_response::Message,
};
use amon_tests::{
    api::{Api, object, strings},
    both_backends,
    db::TestDb,
    fake_worker::FakeWorker,
    server::TestServer,
};
use anyhow::Result;
use serde_json::json;
use tokio_stream::StreamExt;
use tonic::Code;

const SUCCEEDED: i32 = ExecutionStatus::Succeeded as i32;
const WAIT: Duration = Duration::from_secs(20);

async fn start(db: &TestDb) -> (TestServer, Api) {
    let server = TestServer::start_with_args(Some(db.url()), &["--no-local-worker"]).await;
    let api = Api::new(server.channel().await);
    (server, api)
}

async fn echo_setup(api: &mut Api) -> Capability {
    let agent = api.tool("echo", "/bin/echo", &[]).await;
    api.capability(Capability {
        agent_id: agent.id.clone(),
        key: "say".into(),
        label: "say a word".into(),
        command_tokens: strings(&["{{ word }}"]),
        args_schema: Some(object(json!({
            "type": "object",
            "properties": { "word": { "type": "string", "minLength": 1 } },
            "required": ["word"]
        }))),
        ..Default::default()
    })
    .await
}

/// Queue → assign → started → output → finished, and what a user sees.
async fn a_run_from_queue_to_done(db: TestDb) -> Result<()> {
    let (server, mut api) = start(&db).await;
    let say = echo_setup(&mut api).await;
    let task = api.titled("greet").await;

    // Bad args never reach the queue.
    let err = api
        .executions
        .create_execution(amon_proto::v1::CreateExecutionRequest {
            task_id: task.id.clone(),
            capability_id: say.id.clone(),
            args: Some(object(json!({ "word": "" }))),
            max_retries: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("args/word"), "{}", err.message());
    let err = api
        .executions
        .create_execution(amon_proto::v1::CreateExecutionRequest {
            task_id: task.id.clone(),
            capability_id: uuid::Uuid::new_v4().to_string(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("capability_id"));

    let execution = api
        .run(&task, &say, json!({ "word": "hello world" }), 0)
        .await;
    assert_eq!(execution.status, ExecutionStatus::Queued as i32);

    let mut worker =
        FakeWorker::connect(server.channel().await, FakeWorker::register("w1", 1)).await?;
    worker.grant(1).await;
    let assign = worker.next_assign().await;
    assert_eq!(assign.execution_id, execution.id);
    assert_eq!(
        assign.argv,
        ["/bin/echo", "hello world"],
        "one token, one argument"
    );
    assert_eq!(assign.log_offset, 0);
    assert!(!assign.attempt_token.is_empty());
    let running = api.execution(&execution.id).await;
    assert_eq!(running.status, ExecutionStatus::Running as i32);
    assert_eq!(running.worker_id.as_deref(), Some("w1"));
    let in_progress = api
        .tasks
        .get_task(GetTaskRequest {
            id: task.id.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(
        in_progress.task.unwrap().status,
        TaskStatus::InProgress as i32
    );

    // A tail started now gets every byte, live.
    let mut tail = api.clone();
    let tail_id = execution.id.clone();
    let tail = tokio::spawn(async move { tail.follow_log(&tail_id, 0, true).await });

    worker.started(&assign, 4242).await;
    worker.output(&assign, 0, b"hello ").await;
    worker.output(&assign, 6, b"world\n").await;
    let mut acked = 0;
    while acked < 12 {
        if let Message::LogAck(ack) = worker.recv().await {
            acked = ack.offset;
        }
    }
    worker.finished(&assign, SUCCEEDED, Some(0), 12).await;
    let done = api
        .wait_for(&execution.id, ExecutionStatus::Succeeded, WAIT)
        .await;
    assert_eq!(done.exit_code, Some(0));
    assert_eq!(done.pid, Some(4242));
    assert_eq!((done.log_byte_size, done.log_line_count), (12, 1));
    assert!(done.ended_at.is_some());
    assert_eq!(api.log(&execution.id).await, b"hello world\n");
    assert_eq!(tokio::time::timeout(WAIT, tail).await??, b"hello world\n");
    let task = api
        .tasks
        .get_task(GetTaskRequest {
            id: task.id.clone(),
        })
        .await?
        .into_inner()
        .task
        .unwrap();
    assert_eq!(
        task.status,
        TaskStatus::Done as i32,
        "a succeeded run finishes its task"
    );

    let events = api
        .tasks
        .list_task_events(ListTaskEventsRequest {
            task_id: task.id.clone(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .events;
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    for expected in [
        "execution_queued",
        "execution_running",
        "execution_succeeded",
        "status_changed",
    ] {
        assert!(types.contains(&expected), "{expected} in {types:?}");
    }
    Ok(())
}

/// A reaped attempt's late reports are refused; the next attempt owns the run.
async fn stale_attempts_are_refused(db: TestDb) -> Result<()> {
    let (server, mut api) = start(&db).await;
    let say = echo_setup(&mut api).await;
    let task = api.titled("flaky").await;
    api.tune(800, 200, 100).await;
    let execution = api.run(&task, &say, json!({ "word": "x" }), 1).await;

    let mut lost =
        FakeWorker::connect(server.channel().await, FakeWorker::register("lost", 1)).await?;
    lost.grant(1).await;
    let first = lost.next_assign().await;
    lost.started(&first, 1).await;
    lost.output(&first, 0, b"first attempt\n").await;
    // No heartbeats: the run is reaped and queued again for attempt 2.
    let requeued = api
        .wait_for(&execution.id, ExecutionStatus::Queued, WAIT)
        .await;
    assert_eq!(requeued.retry_count, 1);
    assert!(
        requeued
            .error
            .as_deref()
            .unwrap_or("")
            .contains("went silent")
    );

    let mut fresh =
        FakeWorker::connect(server.channel().await, FakeWorker::register("fresh", 1)).await?;
    fresh.grant(1).await;
    let second = fresh.next_assign().await;
    assert_eq!(second.attempt, 1);
    assert_ne!(second.attempt_token, first.attempt_token);
    assert!(
        second.log_offset > 14,
        "an attempt header follows the first attempt's output"
    );

    // The lost worker comes back to life: its reports are refused and it is told to stop.
    lost.output(&first, 14, b"late bytes\n").await;
    lost.finished(&first, SUCCEEDED, Some(0), 25).await;
    let mut told_to_stop = false;
    while let Some(message) = lost.try_recv(Duration::from_secs(2)).await {
        if let Message::Cancel(cancel) = message {
            assert_eq!(cancel.execution_id, execution.id);
            told_to_stop = true;
            break;
        }
    }
    assert!(told_to_stop, "a stale report is answered with a cancel");
    let still = api.execution(&execution.id).await;
    assert_eq!(still.status, ExecutionStatus::Running as i32);
    assert_eq!(still.worker_id.as_deref(), Some("fresh"));

    fresh.heartbeat(vec![execution.id.clone()]).await;
    fresh
        .output(&second, second.log_offset, b"second attempt\n")
        .await;
    let end = second.log_offset + 15;
    fresh.finished(&second, SUCCEEDED, Some(0), end).await;
    api.wait_for(&execution.id, ExecutionStatus::Succeeded, WAIT)
        .await;
    let log = String::from_utf8(api.log(&execution.id).await)?;
    assert!(log.starts_with("first attempt\n"), "{log:?}");
    assert!(
        log.contains("=== amon: attempt 2 on worker fresh"),
        "{log:?}"
    );
    assert!(log.ends_with("second attempt\n"), "{log:?}");
    assert!(
        !log.contains("late bytes"),
        "a stale attempt cannot write: {log:?}"
    );
    Ok(())
}

/// Many workers claiming at once: every run is assigned exactly once.
async fn concurrent_claimers_never_share_a_run(db: TestDb) -> Result<()> {
    let (server, mut api) = start(&db).await;
    let say = echo_setup(&mut api).await;
    const RUNS: usize = 120;
    const WORKERS: usize = 4;
    let mut ids = HashSet::new();
    for i in 0..RUNS {
        let task = api.titled(&format!("t{i}")).await;
        ids.insert(api.run(&task, &say, json!({ "word": "x" }), 0).await.id);
    }
    let mut handles = Vec::new();
    for w in 0..WORKERS {
        let channel = server.channel().await;
        handles.push(tokio::spawn(async move {
            let mut worker =
                FakeWorker::connect(channel, FakeWorker::register(&format!("w{w}"), 8))
                    .await
                    .expect("connect");
            worker.grant(8).await;
            let mut got = Vec::new();
            while let Some(message) = worker.try_recv(Duration::from_secs(3)).await {
                if let Message::Assign(assign) = message {
                    worker.finished(&assign, SUCCEEDED, Some(0), 0).await;
                    worker.grant(1).await;
                    got.push(assign.execution_id);
                }
            }
            got
        }));
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut per_worker = Vec::new();
    for handle in handles {
        let got = handle.await?;
        per_worker.push(got.len());
        for id in got {
            *seen.entry(id).or_default() += 1;
        }
    }
    assert_eq!(
        seen.len(),
        RUNS,
        "every run assigned (per worker: {per_worker:?})"
    );
    assert!(seen.values().all(|n| *n == 1), "no run assigned twice");
    assert_eq!(seen.keys().cloned().collect::<HashSet<_>>(), ids);
    for id in &ids {
        assert_eq!(api.execution(id).await.status, SUCCEEDED);
    }
    Ok(())
}

/// Gating: dependencies, approval, per-agent concurrency and priority order.
async fn only_runnable_work_is_claimed_in_priority_order(db: TestDb) -> Result<()> {
    let (server, mut api) = start(&db).await;
    let say = echo_setup(&mut api).await;

    // Approval: a capability that requires it waits for ApproveExecution.
    let careful = api
        .capability(Capability {
            agent_id: say.agent_id.clone(),
            key: "careful".into(),
            label: "careful".into(),
            command_tokens: strings(&["careful"]),
            requires_approval: true,
            ..Default::default()
        })
        .await;
    let gated = api.titled("gated").await;
    let needs_ok = api.run(&gated, &careful, json!({}), 0).await;
    // Dependencies: `after` waits for `before` to be done.
    let before = api.titled("before").await;
    let after = api.titled("after").await;
    api.tasks
        .add_dependency(AddDependencyRequest {
            task_id: after.id.clone(),
            depends_on_task_id: before.id.clone(),
        })
        .await?;
    let blocked = api.run(&after, &say, json!({ "word": "after" }), 0).await;

    let mut worker =
        FakeWorker::connect(server.channel().await, FakeWorker::register("w", 4)).await?;
    worker.grant(4).await;
    assert!(
        worker.try_recv(Duration::from_millis(500)).await.is_none(),
        "nothing is runnable yet"
    );
    api.executions
        .approve_execution(ApproveExecutionRequest {
            id: needs_ok.id.clone(),
        })
        .await?;
    let err = api
        .executions
        .approve_execution(ApproveExecutionRequest {
            id: needs_ok.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "approving twice");
    let assign = worker.next_assign().await;
    assert_eq!(assign.execution_id, needs_ok.id);
    worker.finished(&assign, SUCCEEDED, Some(0), 0).await;
    api.wait_for(&needs_ok.id, ExecutionStatus::Succeeded, WAIT)
        .await;

    api.tasks
        .move_task(MoveTaskRequest {
            id: before.id.clone(),
            status: TaskStatus::Done as i32,
            position: None,
            ..Default::default()
        })
        .await?;
    let assign = worker.next_assign().await;
    assert_eq!(
        assign.execution_id, blocked.id,
        "a done dependency releases the run"
    );
    worker.finished(&assign, SUCCEEDED, Some(0), 0).await;
    api.wait_for(&blocked.id, ExecutionStatus::Succeeded, WAIT)
        .await;
    drop(worker);
    // Until the server notices "w" left, it could still hand it work.
    wait_until_gone(&mut api, "w").await;

    // Priority, then age; and max_concurrent = 1 across two workers.
    let single = api
        .agent(amon_proto::v1::Agent {
            name: "single".into(),
            slug: "single".into(),
            binary_path: "/bin/true".into(),
            max_concurrent: Some(1),
            ..Default::default()
        })
        .await;
    let go = api.command(&single, "go", &["go"]).await;
    let mut queued = Vec::new();
    for (title, priority) in [("low", 5), ("urgent", 1), ("normal", 3), ("urgent too", 1)] {
        let task = api
            .task(Task {
                title: title.into(),
                priority: Some(priority),
                ..Default::default()
            })
            .await;
        queued.push((title, api.run(&task, &go, json!({}), 0).await.id));
    }
    let mut a = FakeWorker::connect(server.channel().await, FakeWorker::register("a", 2)).await?;
    let mut b = FakeWorker::connect(server.channel().await, FakeWorker::register("b", 2)).await?;
    a.grant(2).await;
    b.grant(2).await;
    let mut order = Vec::new();
    for _ in 0..queued.len() {
        // Exactly one of the two workers gets the next run; the other stays idle.
        let deadline = tokio::time::Instant::now() + WAIT;
        let (assign, owner) = loop {
            if let Some(Message::Assign(x)) = a.try_recv(Duration::from_millis(50)).await {
                break (x, "a");
            }
            if let Some(Message::Assign(x)) = b.try_recv(Duration::from_millis(50)).await {
                break (x, "b");
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no run assigned (order so far: {order:?})"
            );
        };
        order.push(
            queued
                .iter()
                .find(|(_, id)| *id == assign.execution_id)
                .unwrap()
                .0,
        );
        let running = api
            .executions
            .list_executions(amon_proto::v1::ListExecutionsRequest {
                agent_id: single.id.clone(),
                status: ExecutionStatus::Running as i32,
                ..Default::default()
            })
            .await?
            .into_inner()
            .executions;
        assert_eq!(running.len(), 1, "max_concurrent holds across workers");
        assert_eq!(running[0].id, assign.execution_id);
        assert_eq!(running[0].worker_id.as_deref(), Some(owner));
        let worker = if owner == "a" { &a } else { &b };
        worker.finished(&assign, SUCCEEDED, Some(0), 0).await;
        worker.grant(1).await;
        api.wait_for(&assign.execution_id, ExecutionStatus::Succeeded, WAIT)
            .await;
    }
    assert_eq!(order, ["urgent", "urgent too", "normal", "low"]);
    Ok(())
}

async fn wait_until_gone(api: &mut Api, worker_id: &str) {
    for _ in 0..500 {
        let workers = api
            .workers
            .list_workers(amon_proto::v1::ListWorkersRequest {
                connected_only: true,
            })
            .await
            .expect("list workers")
            .into_inner()
            .workers;
        if workers.iter().all(|w| w.worker_id != worker_id) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("worker {worker_id} still connected");
}

/// Cancel: queued at once; running through cancelling and the worker.
async fn cancel_queued_and_running(db: TestDb) -> Result<()> {
    let (server, mut api) = start(&db).await;
    let say = echo_setup(&mut api).await;
    let task = api.titled("cancel me").await;
    let queued = api.run(&task, &say, json!({ "word": "a" }), 0).await;
    let cancelled = api
        .executions
        .cancel_execution(CancelExecutionRequest {
            id: queued.id.clone(),
            reason: "changed my mind".into(),
        })
        .await?
        .into_inner()
        .execution
        .unwrap();
    assert_eq!(cancelled.status, ExecutionStatus::Cancelled as i32);
    let err = api
        .executions
        .cancel_execution(CancelExecutionRequest {
            id: queued.id.clone(),
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let err = api
        .executions
        .cancel_execution(CancelExecutionRequest {
            id: "not-a-uuid".into(),
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    let running = api.run(&task, &say, json!({ "word": "b" }), 0).await;
    let mut worker =
        FakeWorker::connect(server.channel().await, FakeWorker::register("w", 1)).await?;
    worker.grant(1).await;
    let assign = worker.next_assign().await;
    assert_eq!(assign.execution_id, running.id);
    let cancelling = api
        .executions
        .cancel_execution(CancelExecutionRequest {
            id: running.id.clone(),
            reason: String::new(),
        })
        .await?
        .into_inner()
        .execution
        .unwrap();
    assert_eq!(cancelling.status, ExecutionStatus::Cancelling as i32);
    let cancel = loop {
        if let Message::Cancel(cancel) = worker.recv().await {
            break cancel;
        }
    };
    assert_eq!(
        (cancel.execution_id.as_str(), cancel.attempt_token.as_str()),
        (running.id.as_str(), assign.attempt_token.as_str())
    );
    worker
        .finished(&assign, ExecutionStatus::Cancelled as i32, None, 0)
        .await;
    api.wait_for(&running.id, ExecutionStatus::Cancelled, WAIT)
        .await;

    // Retry makes a new execution with the same task, capability and args.
    let retried = api
        .executions
        .retry_execution(amon_proto::v1::RetryExecutionRequest {
            id: running.id.clone(),
        })
        .await?
        .into_inner()
        .execution
        .unwrap();
    assert_ne!(retried.id, running.id);
    assert_eq!(
        (retried.task_id, retried.capability_id),
        (running.task_id, running.capability_id)
    );
    assert_eq!(retried.args, running.args);
    Ok(())
}

/// A worker that reconnects mid-run resumes from the acknowledged offset;
/// resent bytes are not doubled.
async fn reconnect_resumes_without_loss_or_doubling(db: TestDb) -> Result<()> {
    let (server, mut api) = start(&db).await;
    let say = echo_setup(&mut api).await;
    let task = api.titled("long").await;
    let execution = api.run(&task, &say, json!({ "word": "x" }), 0).await;
    let mut first =
        FakeWorker::connect(server.channel().await, FakeWorker::register("w", 1)).await?;
    first.grant(1).await;
    let assign = first.next_assign().await;
    first.output(&assign, 0, b"0123456789").await;
    loop {
        if let Message::LogAck(ack) = first.recv().await {
            if ack.offset == 10 {
                break;
            }
        }
    }
    drop(first); // the stream is cut; the child (here: the test) keeps its bytes

    let mut register = FakeWorker::register("w", 1);
    register.running = vec![RunningExecution {
        execution_id: assign.execution_id.clone(),
        attempt_token: assign.attempt_token.clone(),
    }];
    let again = FakeWorker::connect(server.channel().await, register).await?;
    let resumed = &again.registered.resumed;
    assert_eq!(resumed.len(), 1);
    assert_eq!(resumed[0].acknowledged_offset, 10);
    // Resend overlapping what was stored, then the rest.
    again.output(&assign, 6, b"6789abcdef").await;
    again.finished(&assign, SUCCEEDED, Some(0), 16).await;
    api.wait_for(&execution.id, ExecutionStatus::Succeeded, WAIT)
        .await;
    assert_eq!(api.log(&execution.id).await, b"0123456789abcdef");

    // A worker claiming a run it does not own is told to stop it.
    let mut register = FakeWorker::register("other", 1);
    register.running = vec![RunningExecution {
        execution_id: execution.id.clone(),
        attempt_token: assign.attempt_token.clone(),
    }];
    let mut stranger = FakeWorker::connect(server.channel().await, register).await?;
    assert!(stranger.registered.resumed.is_empty());
    assert!(matches!(stranger.recv().await, Message::Cancel(_)));
    Ok(())
}

/// Followers see bytes from any offset, live, and the stream ends with the run.
async fn many_tails_get_the_same_bytes(db: TestDb) -> Result<()> {
    let (server, mut api) = start(&db).await;
    let say = echo_setup(&mut api).await;
    let task = api.titled("tail").await;
    let execution = api.run(&task, &say, json!({ "word": "x" }), 0).await;
    let mut worker =
        FakeWorker::connect(server.channel().await, FakeWorker::register("w", 1)).await?;
    worker.grant(1).await;
    let assign = worker.next_assign().await;
    worker.output(&assign, 0, b"line 1\n").await;
    let mut tails = Vec::new();
    for offset in [0, 3, 7] {
        let mut api = api.clone();
        let id = execution.id.clone();
        tails.push((
            offset,
            tokio::spawn(async move { api.follow_log(&id, offset, true).await }),
        ));
    }
    let mut expected = b"line 1\n".to_vec();
    let mut offset = 7;
    for i in 2..=50 {
        let line = format!("line {i}\n");
        worker.output(&assign, offset, line.as_bytes()).await;
        offset += line.len() as i64;
        expected.extend(line.as_bytes());
    }
    worker.finished(&assign, SUCCEEDED, Some(0), offset).await;
    for (from, tail) in tails {
        let got = tokio::time::timeout(WAIT, tail).await??;
        assert_eq!(got, expected[from as usize..], "tail from {from}");
    }
    // Past the end: nothing, and no error.
    let mut stream = api
        .executions
        .stream_logs(StreamLogsRequest {
            execution_id: execution.id.clone(),
            offset: 10_000,
            follow: true,
        })
        .await?
        .into_inner();
    assert!(stream.next().await.is_none());
    let err = api
        .executions
        .stream_logs(StreamLogsRequest {
            execution_id: execution.id.clone(),
            offset: -1,
            follow: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    Ok(())
}

/// Reports applied together in one batch each get their own answer: a stale
/// one is refused and rolled back alone, and the others commit. Driven
/// through the store itself, beside a server that creates the runs.
async fn a_batch_with_a_stale_report_commits_the_others(db: TestDb) -> Result<()> {
    use amon_server::store::{
        Store, StoreError,
        runs::{ClaimRequest, RunOutcome},
    };
    let (_server, mut api) = start(&db).await;
    let echo = echo_setup(&mut api).await;
    let task = api.titled("batched").await;
    let mut ids = Vec::new();
    for text in ["a", "b", "c"] {
        ids.push(api.run(&task, &echo, json!({ "word": text }), 0).await.id);
    }
    let store = Store::open(amon_tests::db::connect(db.url()).await?).await?;
    let claimed = store
        .runs()
        .claim(
            vec![ClaimRequest {
                worker_id: "batcher".into(),
                agent_slugs: Vec::new(),
                limit: 3,
            }],
            std::sync::Arc::new(|id| format!("/nowhere/{id}.log")),
        )
        .await?;
    assert_eq!(claimed.len(), 3);
    // Submitted back to back: on this single-threaded runtime the writer
    // runs only once the answers are awaited, so all three share a batch.
    let answers: Vec<_> = claimed
        .iter()
        .enumerate()
        .map(|(i, (_, run))| {
            let token = match i {
                1 => format!("{}-stale", run.attempt_token),
                _ => run.attempt_token.clone(),
            };
            let outcome = RunOutcome {
                status: amon_server::entity::enums::ExecutionStatus::Succeeded,
                exit_code: Some(0),
                error: None,
                worktree: None,
            };
            store
                .runs()
                .finish("batcher", run.execution.id, &token, outcome, (0, 0))
        })
        .collect();
    let results = futures_util::future::join_all(answers).await;
    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert!(
        matches!(results[1], Err(StoreError::FailedPrecondition(_))),
        "{:?}",
        results[1]
    );
    assert!(results[2].is_ok(), "{:?}", results[2]);
    let statuses: Vec<i32> = {
        let mut statuses = Vec::new();
        for (_, run) in &claimed {
            statuses.push(api.execution(&run.execution.id.to_string()).await.status);
        }
        statuses
    };
    assert_eq!(
        statuses,
        [
            ExecutionStatus::Succeeded as i32,
            ExecutionStatus::Running as i32,
            ExecutionStatus::Succeeded as i32
        ]
    );
    assert_eq!(ids.len(), 3);
    Ok(())
}

/// Once a report is refused as stale, the stream takes the attempt off:
/// its later output is refused too, not stored on the strength of the
/// token it was assigned with. The run is requeued behind this server's
/// back, as another server over the same database would after a reap.
async fn a_refused_attempt_stores_no_more_output(db: TestDb) -> Result<()> {
    use amon_server::entity::{enums, executions};
    use sea_orm::{ActiveModelTrait, ActiveValue::Set};

    let (server, mut api) = start(&db).await;
    let say = echo_setup(&mut api).await;
    let task = api.titled("requeued elsewhere").await;
    let execution = api.run(&task, &say, json!({ "word": "x" }), 1).await;
    let mut worker =
        FakeWorker::connect(server.channel().await, FakeWorker::register("w", 1)).await?;
    worker.grant(1).await;
    let assign = worker.next_assign().await;
    worker.output(&assign, 0, b"mine\n").await;

    executions::ActiveModel {
        id: Set(execution.id.parse()?),
        status: Set(enums::ExecutionStatus::Queued),
        worker_id: Set(None),
        retry_count: Set(1),
        ..Default::default()
    }
    .update(db.conn())
    .await?;

    worker.started(&assign, 7).await;
    let mut told_to_stop = false;
    while let Some(message) = worker.try_recv(Duration::from_secs(5)).await {
        if let Message::Cancel(cancel) = message {
            assert_eq!(cancel.execution_id, execution.id);
            told_to_stop = true;
            break;
        }
    }
    assert!(told_to_stop, "the stale report is answered with a cancel");
    worker.output(&assign, 5, b"stale bytes\n").await;
    // A round trip on the same stream: the chunk was handled before it.
    worker.heartbeat(Vec::new()).await;
    while let Some(message) = worker.try_recv(Duration::from_secs(5)).await {
        if matches!(message, Message::HeartbeatAck(_)) {
            break;
        }
    }
    assert_eq!(api.log(&execution.id).await, b"mine\n");
    Ok(())
}

both_backends!(
    a_refused_attempt_stores_no_more_output,
    a_batch_with_a_stale_report_commits_the_others,
    a_run_from_queue_to_done,
    stale_attempts_are_refused,
    concurrent_claimers_never_share_a_run,
    only_runnable_work_is_claimed_in_priority_order,
    cancel_queued_and_running,
    reconnect_resumes_without_loss_or_doubling,
    many_tails_get_the_same_bytes
);
