//! Workers that misbehave, on purpose or by accident: a second worker with a
//! live worker's id, a worker reporting on another's run, output past the
//! cap, text the database cannot store. Protocol clients in the test play
//! them message by message against a real server, on SQLite and PostgreSQL.

use std::time::Duration;

use amon_proto::v1::{
    Capability, ExecutionStatus, Heartbeat, LogChunk, Register, RunFinished, RunStarted,
    connect_request, connect_response::Message,
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
use tonic::Code;

const WAIT: Duration = Duration::from_secs(20);
const SUCCEEDED: i32 = ExecutionStatus::Succeeded as i32;
const FAILED: i32 = ExecutionStatus::Failed as i32;

async fn start(db: &TestDb) -> (TestServer, Api) {
    let server = TestServer::start_with_args(Some(db.url()), &["--no-local-worker"]).await;
    let api = Api::new(server.channel().await);
    (server, api)
}

/// An `echo {{ word }}` capability whose output is capped at `cap` bytes.
async fn echo(api: &mut Api, cap: i32) -> Capability {
    let agent = api.tool("echo", "/bin/echo", &[]).await;
    api.capability(Capability {
        agent_id: agent.id.clone(),
        key: "say".into(),
        label: "say".into(),
        command_tokens: strings(&["{{ word }}"]),
        args_schema: Some(object(
            json!({"type": "object", "additionalProperties": true}),
        )),
        max_output_bytes: Some(cap),
        ..Default::default()
    })
    .await
}

fn process(worker_id: &str, instance: &str) -> Register {
    Register {
        instance_id: instance.into(),
        ..FakeWorker::register(worker_id, 1)
    }
}

/// Registering with the id of a connected, live worker is refused, and the
/// live worker keeps getting work; its own reconnect replaces its stream; a
/// silent holder gives way.
async fn one_live_worker_per_id(db: TestDb) -> Result<()> {
    let (server, mut api) = start(&db).await;
    api.tune(5_000, 300, 300).await;
    let say = echo(&mut api, 1024).await;
    let task = api.titled("ids").await;

    let mut first = FakeWorker::connect(server.channel().await, process("w", "first")).await?;
    first.grant(2).await;
    let refused = FakeWorker::connect(server.channel().await, process("w", "second"))
        .await
        .err()
        .expect("a second live worker with the same id is refused");
    assert_eq!(refused.code(), Code::AlreadyExists, "{refused:?}");
    assert!(refused.message().contains("--name"), "{refused:?}");
    // The refused stream came and went: the first worker still gets work.
    api.run(&task, &say, json!({"word": "a"}), 0).await;
    let assign = first.next_assign().await;
    first.started(&assign, 1).await;
    first.output(&assign, 0, b"a\n").await;
    first.finished(&assign, SUCCEEDED, Some(0), 2).await;
    api.wait_for(&assign.execution_id, ExecutionStatus::Succeeded, WAIT)
        .await;

    // The same process reconnecting takes its id back at once; the old
    // stream is told why it ends.
    let mut again = FakeWorker::connect(server.channel().await, process("w", "first")).await?;
    let ended = first.end(WAIT).await.expect("the old stream ends");
    let status = ended.expect_err("with an error that says why");
    assert!(status.message().contains("newer connection"), "{status:?}");
    again.grant(1).await;
    api.run(&task, &say, json!({"word": "b"}), 0).await;
    let assign = again.next_assign().await;

    // Silent for two heartbeats and a second, the holder gives way.
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    let newcomer = FakeWorker::connect(server.channel().await, process("w", "third")).await?;
    assert!(again.end(WAIT).await.expect("superseded").is_err());
    // The new process does not hold the old one's run: it is told to stop it.
    let _ = assign;
    newcomer.grant(1).await;

    // A worker id that could forge a log line is refused.
    let forged = FakeWorker::connect(
        server.channel().await,
        process("w\nINFO amon_server: worker registered", "x"),
    )
    .await
    .err()
    .expect("refused");
    assert_eq!(forged.code(), Code::InvalidArgument, "{forged:?}");
    assert!(
        forged.message().contains("register.worker_id"),
        "{forged:?}"
    );
    Ok(())
}

/// Only the stream a run was assigned on may report on it, with a token
/// nobody can derive from what `GetExecution` shows: another worker holding
/// the worker token and the run's token can neither write its log, nor
/// finish it, nor cut its log short.
async fn reports_only_from_the_owning_stream(db: TestDb) -> Result<()> {
    let (server, mut api) = start(&db).await;
    let say = echo(&mut api, 1 << 20).await;
    let task = api.titled("owned").await;
    let mut owner = FakeWorker::connect(server.channel().await, process("owner", "o")).await?;
    owner.grant(1).await;
    let run = api.run(&task, &say, json!({"word": "x"}), 0).await;
    let assign = owner.next_assign().await;
    owner.started(&assign, 7).await;
    owner.output(&assign, 0, b"hello ").await;

    // What GetExecution shows does not give the token away.
    let shown = api.wait_for(&run.id, ExecutionStatus::Running, WAIT).await;
    let started = shown.started_at.expect("started");
    let micros = started.seconds * 1_000_000 + i64::from(started.nanos) / 1_000;
    let old_style = format!("{}.{micros}", shown.retry_count);
    assert_ne!(assign.attempt_token, old_style);
    assert!(assign.attempt_token.len() >= 40, "{}", assign.attempt_token);

    let intruder = FakeWorker::connect(server.channel().await, process("intruder", "i")).await?;
    for token in [assign.attempt_token.clone(), old_style] {
        let send = |message| intruder.send(message);
        send(connect_request::Message::Started(RunStarted {
            execution_id: run.id.clone(),
            attempt_token: token.clone(),
            pid: 666,
            tmux_session_name: None,
        }))
        .await;
        send(connect_request::Message::LogChunk(LogChunk {
            execution_id: run.id.clone(),
            attempt_token: token.clone(),
            offset: 6,
            data: b"forged".to_vec(),
        }))
        .await;
        send(connect_request::Message::Finished(RunFinished {
            execution_id: run.id.clone(),
            attempt_token: token.clone(),
            status: SUCCEEDED,
            exit_code: Some(0),
            error: None,
            log_byte_size: 12,
            worktree: None,
        }))
        .await;
    }
    // The owner's stream goes on: its next bytes are no gap, and its finish
    // is the one that counts.
    owner.output(&assign, 6, b"world\n").await;
    owner.finished(&assign, SUCCEEDED, Some(0), 12).await;
    let done = api
        .wait_for(&run.id, ExecutionStatus::Succeeded, WAIT)
        .await;
    assert_eq!(done.pid, Some(7), "the intruder's start was refused");
    assert_eq!(done.worker_id.as_deref(), Some("owner"));
    assert_eq!(api.log(&run.id).await, b"hello world\n");
    assert_eq!(done.error, None);

    // A finish for an execution nobody runs leaves no log file behind.
    let stranger = uuid::Uuid::new_v4().to_string();
    intruder
        .send(connect_request::Message::Finished(RunFinished {
            execution_id: stranger.clone(),
            attempt_token: "x".into(),
            status: SUCCEEDED,
            exit_code: Some(0),
            error: None,
            log_byte_size: 0,
            worktree: None,
        }))
        .await;
    intruder.heartbeat(Vec::new()).await; // a round trip after the finish
    tokio::time::sleep(Duration::from_millis(300)).await;
    let logs = server.data_dir().join("logs");
    assert!(!logs.join(format!("{stranger}.log")).exists());
    Ok(())
}

/// A worker that does not cut a run's output at its cap is cut by the
/// server: acknowledged (so it stops resending), not stored.
async fn the_server_enforces_the_output_cap(db: TestDb) -> Result<()> {
    let (server, mut api) = start(&db).await;
    let say = echo(&mut api, 1024).await;
    let task = api.titled("capped").await;
    let mut worker = FakeWorker::connect(server.channel().await, process("w", "w")).await?;
    worker.grant(1).await;
    let run = api.run(&task, &say, json!({"word": "x"}), 0).await;
    let assign = worker.next_assign().await;
    worker.started(&assign, 1).await;
    let chunk = vec![b'y'; 10 * 1024];
    let mut acked = 0;
    for index in 0..5 {
        worker.output(&assign, index * 10 * 1024, &chunk).await;
        loop {
            if let Message::LogAck(ack) = worker.recv().await {
                acked = ack.offset;
                break;
            }
        }
    }
    assert_eq!(acked, 50 * 1024, "everything sent is acknowledged");
    worker
        .finished(&assign, SUCCEEDED, Some(0), 50 * 1024)
        .await;
    let done = api
        .wait_for(&run.id, ExecutionStatus::Succeeded, WAIT)
        .await;
    let stored = api.log(&run.id).await.len();
    assert!(
        stored <= 1024 + 256,
        "{stored} bytes stored for a 1 KiB cap"
    );
    assert_eq!(done.log_byte_size as usize, stored);
    Ok(())
}

/// Text PostgreSQL cannot store (NUL) in a worker's reports is made
/// storable, not an internal error that closes the worker's stream.
async fn worker_text_is_stored_safely(db: TestDb) -> Result<()> {
    let (server, mut api) = start(&db).await;
    let say = echo(&mut api, 1024).await;
    let task = api.titled("nul").await;
    let mut worker = FakeWorker::connect(server.channel().await, process("w", "w")).await?;
    worker
        .send(connect_request::Message::Heartbeat(Heartbeat {
            running_execution_ids: Vec::new(),
            metadata: Some(object(json!({"load\u{0}": "high\u{0}"}))),
        }))
        .await;
    worker.grant(1).await;
    let run = api.run(&task, &say, json!({"word": "x"}), 0).await;
    let assign = worker.next_assign().await;
    worker
        .send(connect_request::Message::Started(RunStarted {
            execution_id: assign.execution_id.clone(),
            attempt_token: assign.attempt_token.clone(),
            pid: 1,
            tmux_session_name: Some("amon\u{0}x".into()),
        }))
        .await;
    worker
        .send(connect_request::Message::Finished(RunFinished {
            execution_id: assign.execution_id.clone(),
            attempt_token: assign.attempt_token.clone(),
            status: FAILED,
            exit_code: Some(1),
            error: Some("bad\u{0}thing".into()),
            log_byte_size: 0,
            worktree: None,
        }))
        .await;
    let done = api.wait_for(&run.id, ExecutionStatus::Failed, WAIT).await;
    assert_eq!(done.error.as_deref(), Some("bad\u{FFFD}thing"));
    assert!(
        worker.end(Duration::from_millis(500)).await.is_none(),
        "the stream stays open"
    );
    Ok(())
}

both_backends!(
    one_live_worker_per_id,
    reports_only_from_the_owning_stream,
    the_server_enforces_the_output_cap,
    worker_text_is_stored_safely
);
