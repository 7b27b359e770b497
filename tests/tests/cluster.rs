//! Several servers over one PostgreSQL database, as a team runs them when
//! one is not enough: work created on any server runs on a worker of any
//! other, logs are read live and byte for byte from every server, a cancel
//! sent to any server reaches the worker wherever it is connected, a worker
//! whose server dies moves to another and its runs go on, every run is
//! claimed once, and health tells the truth about the database. PostgreSQL
//! only: SQLite is one server's database.

use std::time::{Duration, Instant};

use amon_proto::v1::{
    CancelExecutionRequest, ExecutionStatus, ListTaskEventsRequest, ListWorkersRequest,
    StreamLogsRequest,
};
use amon_server::{
    logs::{AppendError, LogStore},
    store::Store,
};
use amon_tests::{
    api::{Api, object},
    db::{self, Backend, TestDb},
    proxy::Proxy,
    server::TestServer,
    worker::TestWorker,
};
use anyhow::{Context, Result, ensure};
use nix::sys::signal::{Signal, kill};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::json;
use tokio_stream::StreamExt;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(30);

/// A server over `db` as a team runs several: logs in the database.
async fn server(db: &TestDb) -> TestServer {
    TestServer::start_with_args(Some(db.url()), &["--no-local-worker"]).await
}

/// A `/bin/sh -c SCRIPT` capability and a task for it, on `api`.
async fn shell(api: &mut Api, slug: &str, script: &str) -> (String, String) {
    let agent = api.tool(slug, "/bin/sh", &[]).await;
    let capability = api.command(&agent, "run", &["-c", script]).await;
    let task = api.titled(&format!("{slug}: across servers")).await;
    (task.id, capability.id)
}

async fn queue(api: &mut Api, task: &str, capability: &str) -> Result<String> {
    Ok(api
        .executions
        .create_execution(amon_proto::v1::CreateExecutionRequest {
            task_id: task.into(),
            capability_id: capability.into(),
            args: Some(object(json!({}))),
            ..Default::default()
        })
        .await?
        .into_inner()
        .execution
        .context("execution")?
        .id)
}

/// `count` lines `line N of COUNT`, `pause` seconds apart.
fn lines_script(count: u32, pause: &str) -> (String, Vec<u8>) {
    let script = format!(
        "i=1; while [ $i -le {count} ]; do echo \"line $i of {count}\"; i=$((i+1)); sleep {pause}; done"
    );
    let expected = (1..=count)
        .map(|i| format!("line {i} of {count}\n"))
        .collect::<String>()
        .into_bytes();
    (script, expected)
}

/// The scenario of the issue: a run created through B, claimed by a worker
/// connected to A, tailed live from B byte for byte; the finished log is
/// the same read from either server.
async fn a_run_created_on_b_runs_on_a_and_is_tailed_live_from_b(db: TestDb) -> Result<()> {
    let (a, b) = tokio::join!(server(&db), server(&db));
    let _worker = TestWorker::start(&a, "on-a", 2, &[]);
    let mut api_b = Api::new(b.channel().await);
    let (script, expected) = lines_script(20, "0.05");
    let (task, capability) = shell(&mut api_b, "tail", &script).await;
    let id = queue(&mut api_b, &task, &capability).await?;

    let mut stream = api_b
        .executions
        .stream_logs(StreamLogsRequest {
            execution_id: id.clone(),
            offset: 0,
            follow: true,
        })
        .await?
        .into_inner();
    let mut bytes = Vec::new();
    let mut pieces = 0;
    let mut pieces_while_running = 0;
    let deadline = Instant::now() + WAIT;
    while let Some(piece) = tokio::time::timeout_at(deadline.into(), stream.next())
        .await
        .context("the log did not end in time")?
    {
        let piece = piece?;
        ensure!(
            piece.offset as usize == bytes.len(),
            "contiguous pieces: {} at {}",
            piece.offset,
            bytes.len()
        );
        bytes.extend(piece.data);
        pieces += 1;
        if api_b.execution(&id).await.status() == ExecutionStatus::Running {
            pieces_while_running += 1;
        }
    }
    ensure!(
        bytes == expected,
        "B's follower got {:?}",
        String::from_utf8_lossy(&bytes)
    );
    ensure!(
        pieces_while_running >= 2,
        "the log reached B live ({pieces} pieces, {pieces_while_running} while running)"
    );
    let done = api_b.wait_for(&id, ExecutionStatus::Succeeded, WAIT).await;
    ensure!(
        done.worker_id.as_deref() == Some("on-a"),
        "{:?}",
        done.worker_id
    );
    let mut api_a = Api::new(a.channel().await);
    ensure!(api_a.log(&id).await == expected, "A reads the same log");
    ensure!(api_b.log(&id).await == expected, "B reads the finished log");
    Ok(())
}

/// A cancel sent to B stops a run whose worker is connected to A.
async fn a_cancel_sent_to_b_reaches_the_worker_on_a(db: TestDb) -> Result<()> {
    let (a, b) = tokio::join!(server(&db), server(&db));
    let _worker = TestWorker::start(&a, "holder", 1, &[]);
    let mut api_b = Api::new(b.channel().await);
    let (task, capability) = shell(&mut api_b, "sleeper", "echo started; exec sleep 60").await;
    let id = queue(&mut api_b, &task, &capability).await?;
    api_b.wait_for(&id, ExecutionStatus::Running, WAIT).await;
    let asked = Instant::now();
    api_b
        .executions
        .cancel_execution(CancelExecutionRequest {
            id: id.clone(),
            reason: "stopped from B".into(),
        })
        .await?;
    let done = api_b
        .wait_for(&id, ExecutionStatus::Cancelled, Duration::from_secs(20))
        .await;
    ensure!(
        asked.elapsed() < Duration::from_secs(15),
        "cancelled after {:?}",
        asked.elapsed()
    );
    ensure!(done.ended_at.is_some());
    Ok(())
}

/// A worker given both servers moves to B when A is killed (SIGKILL): its
/// run goes on and finishes with a gap-free log, without being requeued.
async fn a_worker_moves_to_another_server_and_its_run_goes_on(db: TestDb) -> Result<()> {
    let (a, b) = tokio::join!(server(&db), server(&db));
    let both = format!("{},{}", a.url(), b.url());
    let _worker = TestWorker::start_with(&a, &both, "mover", 1, &[], &[]);
    let mut api_b = Api::new(b.channel().await);
    let (script, expected) = lines_script(30, "0.1");
    let (task, capability) = shell(&mut api_b, "mover", &script).await;
    let id = queue(&mut api_b, &task, &capability).await?;
    api_b.wait_for(&id, ExecutionStatus::Running, WAIT).await;
    // Some output first, through A.
    let deadline = Instant::now() + WAIT;
    while api_b.execution(&id).await.log_byte_size < 40 {
        ensure!(Instant::now() < deadline, "no output through A");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = nix::unistd::Pid::from_raw(a.pid().context("A's pid")? as i32);
    kill(pid, Signal::SIGKILL)?;

    let done = api_b
        .wait_for(&id, ExecutionStatus::Succeeded, Duration::from_secs(60))
        .await;
    ensure!(done.retry_count == 0, "requeued: {done:?}");
    ensure!(done.worker_id.as_deref() == Some("mover"));
    let log = api_b.log(&id).await;
    ensure!(
        log == expected,
        "gap-free log: {:?}",
        String::from_utf8_lossy(&log)
    );
    ensure!(done.log_byte_size as usize == expected.len());
    let events = api_b
        .tasks
        .list_task_events(ListTaskEventsRequest {
            task_id: task.clone(),
            page_size: 500,
            ..Default::default()
        })
        .await?
        .into_inner()
        .events;
    let running = events
        .iter()
        .filter(|e| e.event_type == "execution_running")
        .count();
    ensure!(running == 1, "started {running} times");
    drop(a);
    Ok(())
}

/// 1,000 runs created half on A and half on B, run by workers on both:
/// each is claimed exactly once.
async fn a_thousand_runs_over_two_servers_are_each_claimed_once(db: TestDb) -> Result<()> {
    let (a, b) = tokio::join!(server(&db), server(&db));
    let _workers = [
        TestWorker::start(&a, "a1", 16, &[]),
        TestWorker::start(&a, "a2", 16, &[]),
        TestWorker::start(&b, "b1", 16, &[]),
        TestWorker::start(&b, "b2", 16, &[]),
    ];
    let mut api_a = Api::new(a.channel().await);
    let mut api_b = Api::new(b.channel().await);
    let (task, capability) = shell(&mut api_a, "many", "true").await;
    let mut ids = Vec::new();
    for n in 0..1000 {
        let api = if n % 2 == 0 { &mut api_a } else { &mut api_b };
        ids.push(queue(api, &task, &capability).await?);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    for id in &ids {
        let left = deadline.saturating_duration_since(Instant::now());
        api_a.wait_for(id, ExecutionStatus::Succeeded, left).await;
    }
    let mut events = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = api_b
            .tasks
            .list_task_events(ListTaskEventsRequest {
                task_id: task.clone(),
                page_size: 1000,
                page_token: page_token.clone(),
            })
            .await?
            .into_inner();
        events.extend(page.events);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let mut claims = std::collections::HashMap::<String, usize>::new();
    let mut workers = std::collections::HashSet::new();
    for event in events
        .iter()
        .filter(|e| e.event_type == "execution_running")
    {
        let id = payload_field(&event.payload, "execution_id")
            .with_context(|| format!("execution id in {:?}", event.payload))?;
        *claims.entry(id).or_default() += 1;
    }
    for id in &ids {
        let execution = api_a.execution(id).await;
        ensure!(execution.retry_count == 0, "{id} was retried");
        workers.insert(execution.worker_id.unwrap_or_default());
        ensure!(
            claims.get(id) == Some(&1),
            "{id} started {:?} times",
            claims.get(id)
        );
    }
    ensure!(claims.len() == 1000, "{} runs started", claims.len());
    ensure!(
        workers.len() == 4,
        "work went to every worker on both servers: {workers:?}"
    );
    Ok(())
}

/// A log that comes fast is stored whole, byte for byte, and in batches of
/// chunks: one statement per chunk stored 1.5 MB/s (each waited out a
/// delayed ACK, as sqlx leaves Nagle's algorithm on).
async fn a_fast_log_is_stored_whole_in_batches(db: TestDb) -> Result<()> {
    let (a, b) = tokio::join!(server(&db), server(&db));
    let _worker = TestWorker::start(&a, "fast", 1, &[]);
    let mut api_a = Api::new(a.channel().await);
    // 10,088,888 bytes (under the default 10 MiB cap): some 150 chunks of
    // 64 KiB, as fast as seq writes them.
    let (task, capability) = shell(&mut api_a, "fast", "seq 1 1400000").await;
    let id = queue(&mut api_a, &task, &capability).await?;
    let done = api_a.wait_for(&id, ExecutionStatus::Succeeded, WAIT).await;
    let expected = (1..=1_400_000)
        .map(|i| format!("{i}\n"))
        .collect::<String>()
        .into_bytes();
    ensure!(done.error.is_none(), "no error: {:?}", done.error);
    ensure!(
        done.log_byte_size == expected.len() as i64 && done.log_line_count == 1_400_000,
        "counted {} bytes, {} lines",
        done.log_byte_size,
        done.log_line_count
    );
    let mut api_b = Api::new(b.channel().await);
    ensure!(api_b.log(&id).await == expected, "B reads it byte for byte");

    let chunks = db
        .conn()
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT count(*) AS chunks FROM execution_log_chunks WHERE execution_id = $1",
            [Uuid::parse_str(&id)?.into()],
        ))
        .await?
        .context("count")?
        .try_get::<i64>("", "chunks")?;
    let metrics = amon_tests::http::client()
        .get(format!("{}/metrics", a.url()))
        .send()
        .await?
        .text()
        .await?;
    let statements: f64 = metrics
        .lines()
        .find_map(|line| {
            line.strip_prefix("amon_db_transaction_seconds_count{kind=\"log_chunks\"} ")
        })
        .context("A counts its log statements")?
        .parse()?;
    ensure!(
        statements > 0.0 && statements * 4.0 <= chunks as f64,
        "{chunks} chunks stored in {statements} statements"
    );
    Ok(())
}

/// A batch the database refuses takes the chunks queued behind it with it:
/// the log never gets a hole, and the next append learns where it ends.
async fn a_refused_log_write_leaves_no_hole(db: TestDb) -> Result<()> {
    let server = server(&db).await;
    let mut api = Api::new(server.channel().await);
    let (task, capability) = shell(&mut api, "hole", "true").await;
    // Queued, never claimed (no worker): a row for the chunks to belong to.
    let id = Uuid::parse_str(&queue(&mut api, &task, &capability).await?)?;
    let store = Store::open(db::connect(db.url()).await?).await?;
    let dir = tempfile::tempdir()?;
    let logs = LogStore::new(dir.path(), &store, true)?;

    logs.append(id, 0, &[b'a'; 600]).await?.stored().await?;
    db.conn()
        .execute_unprepared(
            "ALTER TABLE execution_log_chunks ADD CONSTRAINT refuse_past_1000
             CHECK (byte_offset + octet_length(data) <= 1000)",
        )
        .await?;
    // Both queued before the first is refused.
    let second = logs.append(id, 600, &[b'b'; 600]).await?;
    let third = logs.append(id, 1200, &[b'c'; 600]).await?;
    ensure!(second.stored().await.is_err(), "past the constraint");
    ensure!(
        third.stored().await.is_err(),
        "queued behind a refused chunk"
    );
    db.conn()
        .execute_unprepared("ALTER TABLE execution_log_chunks DROP CONSTRAINT refuse_past_1000")
        .await?;

    match logs.append(id, 1800, b"d").await {
        Err(AppendError::Gap { stored: 600, .. }) => {}
        Err(other) => anyhow::bail!("expected a gap after 600 bytes, got {other}"),
        Ok(appended) => anyhow::bail!("stored past a hole: {:?}", appended.size),
    }
    ensure!(logs.size(id).await?.bytes == 600);
    let resent = logs.append(id, 600, &[b'b'; 1200]).await?.stored().await?;
    ensure!(resent.bytes == 1800, "{resent:?}");
    let mut expected = vec![b'a'; 600];
    expected.extend([b'b'; 1200]);
    ensure!(logs.read(id, 0, 1 << 20).await? == expected);
    Ok(())
}

/// `ListWorkers` on any server lists the workers connected to every
/// server, as connected, with what they registered and the runs they hold;
/// a worker that goes away is no longer listed as connected.
async fn every_server_lists_every_worker(db: TestDb) -> Result<()> {
    let (a, b) = tokio::join!(server(&db), server(&db));
    let mut worker = TestWorker::start(&a, "on-a", 3, &[]);
    let mut api_b = Api::new(b.channel().await);
    let (task, capability) = shell(&mut api_b, "listed", "sleep 30").await;
    let id = queue(&mut api_b, &task, &capability).await?;
    api_b.wait_for(&id, ExecutionStatus::Running, WAIT).await;

    let connected_on_b = |api: &mut Api| {
        let mut workers = api.workers.clone();
        async move {
            anyhow::Ok(
                workers
                    .list_workers(ListWorkersRequest {
                        connected_only: true,
                    })
                    .await?
                    .into_inner()
                    .workers,
            )
        }
    };
    let listed = connected_on_b(&mut api_b).await?;
    let on_a = listed
        .iter()
        .find(|w| w.worker_id == "on-a")
        .with_context(|| format!("B lists the worker on A: {listed:?}"))?;
    ensure!(on_a.connected && on_a.slots == 3, "{on_a:?}");
    ensure!(
        !on_a.hostname.is_empty() && !on_a.version.is_empty(),
        "{on_a:?}"
    );
    ensure!(on_a.running_execution_ids == [id.clone()], "{on_a:?}");

    worker.kill_hard();
    let deadline = Instant::now() + WAIT;
    loop {
        let listed = connected_on_b(&mut api_b).await?;
        if !listed.iter().any(|w| w.worker_id == "on-a") {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "still listed as connected: {listed:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

fn payload_field(payload: &Option<prost_types::Struct>, key: &str) -> Option<String> {
    match &payload.as_ref()?.fields.get(key)?.kind {
        Some(prost_types::value::Kind::StringValue(s)) => Some(s.clone()),
        _ => None,
    }
}

#[tokio::test]
async fn run_created_on_b_runs_on_a_and_is_tailed_live_from_b() {
    db::run(
        Backend::Postgres,
        a_run_created_on_b_runs_on_a_and_is_tailed_live_from_b,
    )
    .await;
}

#[tokio::test]
async fn cancel_sent_to_b_reaches_the_worker_on_a() {
    db::run(
        Backend::Postgres,
        a_cancel_sent_to_b_reaches_the_worker_on_a,
    )
    .await;
}

#[tokio::test]
async fn worker_moves_to_another_server_and_its_run_goes_on() {
    db::run(
        Backend::Postgres,
        a_worker_moves_to_another_server_and_its_run_goes_on,
    )
    .await;
}

#[tokio::test]
async fn thousand_runs_over_two_servers_are_each_claimed_once() {
    db::run(
        Backend::Postgres,
        a_thousand_runs_over_two_servers_are_each_claimed_once,
    )
    .await;
}

#[tokio::test]
async fn every_server_lists_every_worker_connected() {
    db::run(Backend::Postgres, every_server_lists_every_worker).await;
}

#[tokio::test]
async fn fast_log_is_stored_whole_in_batches() {
    db::run(Backend::Postgres, a_fast_log_is_stored_whole_in_batches).await;
}

#[tokio::test]
async fn refused_log_write_leaves_no_hole() {
    db::run(Backend::Postgres, a_refused_log_write_leaves_no_hole).await;
}

/// While the database cannot be reached, health says NOT_SERVING; when it
/// comes back, SERVING again, and the server works.
#[tokio::test]
async fn health_follows_the_database() {
    db::run(Backend::Postgres, |db| async move {
        let proxy = Proxy::start("127.0.0.1:5432".parse()?).await;
        let through_proxy = db.url().replacen(
            "127.0.0.1:5432",
            proxy.url().trim_start_matches("http://"),
            1,
        );
        ensure!(
            through_proxy != db.url(),
            "the test database is on 127.0.0.1:5432"
        );
        let server =
            TestServer::start_with_args(Some(&through_proxy), &["--no-local-worker"]).await;
        let mut health = HealthClient::new(server.channel().await);
        let status = |service: &str| HealthCheckRequest {
            service: service.into(),
        };
        let wait_for = |want: ServingStatus| {
            let mut health = health.clone();
            async move {
                let deadline = Instant::now() + Duration::from_secs(20);
                loop {
                    let now = health
                        .check(status("agentmonitor.v1.TaskService"))
                        .await?
                        .into_inner()
                        .status();
                    let whole = health.check(status("")).await?.into_inner().status();
                    if now == want && whole == want {
                        return anyhow::Ok(());
                    }
                    ensure!(
                        Instant::now() < deadline,
                        "health stayed {now:?}, wanted {want:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        wait_for(ServingStatus::Serving).await?;
        proxy.cut();
        wait_for(ServingStatus::NotServing).await?;
        proxy.heal();
        wait_for(ServingStatus::Serving).await?;
        let mut api = Api::new(server.channel().await);
        api.titled("after the database came back").await;
        drop(health.check(status("")).await?);
        Ok(())
    })
    .await;
}
