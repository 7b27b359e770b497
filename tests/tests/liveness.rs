//! Fault tests of worker liveness and fencing: workers killed with SIGKILL,
//! frozen with SIGSTOP, cut off by a partition, drained past their timeout;
//! servers restarted under their workers. What must hold: no healthy run is
//! lost to a hiccup, and no run runs twice. Real servers and workers, on
//! SQLite and PostgreSQL; the stale window is tuned short.

use std::{path::Path, time::Duration};

use amon_proto::v1::{Agent, Capability, ExecutionStatus, Register};
use amon_tests::{
    api::{Api, strings},
    both_backends,
    db::TestDb,
    fake_worker::FakeWorker,
    proxy::Proxy,
    server::TestServer,
    worker::TestWorker,
};
use anyhow::Result;
use nix::sys::signal::Signal;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

async fn start(db: &TestDb) -> (TestServer, Api) {
    let server = TestServer::start_with_args(Some(db.url()), &["--no-local-worker"]).await;
    let api = Api::new(server.channel().await);
    (server, api)
}

/// A `sh -c SCRIPT` capability whose `{{ arg }}` is the script's `$0`.
async fn shell(api: &mut Api, script: &str) -> Capability {
    let sh = api
        .agent(Agent {
            name: "sh".into(),
            slug: "sh".into(),
            binary_path: "/bin/sh".into(),
            env_allowlist: strings(&["PATH", "AMON_TEST_TAG"]),
            max_concurrent: Some(8),
            ..Default::default()
        })
        .await;
    api.command(&sh, "script", &["-c", script, "{{ arg }}"])
        .await
}

/// Processes whose command line contains `needle`.
fn processes_with(needle: &str) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) {
            found.push(pid);
        }
    }
    found
}

fn exists(path: &Path) -> bool {
    std::fs::metadata(path).is_ok()
}

/// After SIGKILL of a worker, nothing of its runs goes on: their side
/// effects do not happen (they happened twice, with the retry, 6 of 6
/// times), whether its keeper lived to stop them or a restart of the
/// worker found them.
async fn runs_die_with_their_worker(db: TestDb) -> Result<()> {
    let (server, mut api) = start(&db).await;
    let marker_dir = tempfile::tempdir()?;
    let slow = shell(&mut api, "sleep 2; echo ran >> \"$0\"").await;

    // The keeper stops the runs of a worker that was killed.
    let mut worker = TestWorker::start(&server, "w1", 1, &[]);
    let task = api.titled("orphan").await;
    let marker = marker_dir.path().join("keeper");
    let run = api
        .run(&task, &slow, json!({"arg": marker.to_str().unwrap()}), 0)
        .await;
    api.wait_for(&run.id, ExecutionStatus::Running, WAIT).await;
    worker.kill_hard();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(!exists(&marker), "the run outlived its worker");

    // Its keeper killed too: a new life of the worker kills what the last
    // one left before it takes work.
    let mut worker = TestWorker::start(&server, "w2", 1, &[]);
    let marker = marker_dir.path().join("restart");
    let run = api
        .run(&task, &slow, json!({"arg": marker.to_str().unwrap()}), 0)
        .await;
    api.wait_for(&run.id, ExecutionStatus::Running, WAIT).await;
    let keepers = processes_with(&format!("__amon-keeper {}", worker.data_dir.display()));
    assert_eq!(keepers.len(), 1, "one keeper per worker");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(keepers[0]), Signal::SIGKILL)?;
    worker.kill_hard();
    let _again = TestWorker::start(&server, "w2", 1, &[]);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        !exists(&marker),
        "the restarted worker left its old run running"
    );
    Ok(())
}

/// A server restart under running workers loses no healthy run: the
/// server gives every worker a full window from its start, and registering
/// again counts as being heard from.
async fn a_server_restart_loses_no_healthy_run(db: TestDb) -> Result<()> {
    let (mut server, mut api) = start(&db).await;
    // Down 2.5 s (and restarting) within an 8 s window: its workers wait.
    // (With 5 s, a restart slowed by the other tests running beside this
    // one on 2 cores sometimes took the rest of the window: 1 run in 7.)
    api.tune(8_000, 300, 300).await;
    let _worker = TestWorker::start(&server, "w", 2, &[]);
    let sleep = shell(&mut api, "sleep 5").await;
    let task = api.titled("restart").await;
    let a = api.run(&task, &sleep, json!({"arg": "a"}), 1).await;
    let b = api.run(&task, &sleep, json!({"arg": "b"}), 1).await;
    api.wait_for(&a.id, ExecutionStatus::Running, WAIT).await;
    api.wait_for(&b.id, ExecutionStatus::Running, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.restart_after(Duration::from_millis(2_500)).await;
    let mut api = Api::new(server.channel().await);
    for run in [&a, &b] {
        let done = api
            .wait_for(&run.id, ExecutionStatus::Succeeded, WAIT)
            .await;
        assert_eq!(done.retry_count, 0, "a healthy run was retried: {done:?}");
    }
    Ok(())
}

/// A worker that comes back (a new process under the same id) without the
/// runs the last one held has told the server they are gone: they are
/// requeued at once, not after the stale window (2 minutes here).
async fn a_restarted_worker_s_runs_are_requeued_at_once(db: TestDb) -> Result<()> {
    let (server, mut api) = start(&db).await;
    let say = shell(&mut api, "echo $0").await;
    let task = api.titled("requeue").await;
    let register = |instance: &str| Register {
        instance_id: instance.into(),
        ..FakeWorker::register("w", 1)
    };
    let mut first = FakeWorker::connect(server.channel().await, register("first")).await?;
    first.grant(1).await;
    let run = api.run(&task, &say, json!({"arg": "x"}), 1).await;
    let assign = first.next_assign().await;
    first.started(&assign, 1).await;
    drop(first);
    let began = tokio::time::Instant::now();
    let second = loop {
        match FakeWorker::connect(server.channel().await, register("second")).await {
            Ok(second) => break second,
            // The first stream may not be seen gone yet.
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let requeued = api.execution(&run.id).await;
    assert_eq!(requeued.status(), ExecutionStatus::Queued, "{requeued:?}");
    assert_eq!(requeued.retry_count, 1);
    assert!(began.elapsed() < Duration::from_secs(10));
    drop(second);
    Ok(())
}

/// A drain whose timeout stops a run reports it failed with the reason,
/// and the worker exits: the run does not sit in `running` until reaped.
async fn a_drain_timeout_ends_the_run(db: TestDb) -> Result<()> {
    let (server, mut api) = start(&db).await;
    api.tune(60_000, 300, 300).await;
    let worker = TestWorker::start_with(
        &server,
        &server.url(),
        "drainer",
        1,
        &[],
        &["--drain-timeout", "1s"],
    );
    let sleep = shell(&mut api, "sleep 60").await;
    let task = api.titled("drain").await;
    let run = api.run(&task, &sleep, json!({"arg": "x"}), 0).await;
    api.wait_for(&run.id, ExecutionStatus::Running, WAIT).await;
    let status = worker.terminate(Duration::from_secs(20)).await;
    assert!(status.success(), "{status}");
    let ended = api.execution(&run.id).await;
    assert_eq!(ended.status(), ExecutionStatus::Failed, "{ended:?}");
    assert!(ended.error.unwrap_or_default().contains("drain timeout"));
    Ok(())
}

/// A frozen worker (SIGSTOP) keeps its TCP stream but not its liveness: new
/// work goes to the live worker.
async fn a_frozen_worker_gets_no_new_work(db: TestDb) -> Result<()> {
    let (server, mut api) = start(&db).await;
    api.tune(20_000, 300, 300).await;
    let frozen = TestWorker::start(&server, "frozen", 4, &[]);
    let live = TestWorker::start(&server, "live", 1, &[]);
    let say = shell(&mut api, "echo $0").await;
    let task = api.titled("frozen").await;
    // Both take work first.
    let warm = api.run(&task, &say, json!({"arg": "warm"}), 0).await;
    api.wait_for(&warm.id, ExecutionStatus::Succeeded, WAIT)
        .await;
    frozen.signal(Signal::SIGSTOP);
    tokio::time::sleep(Duration::from_secs(2)).await;
    for index in 0..4 {
        let run = api.run(&task, &say, json!({"arg": index}), 0).await;
        let done = api
            .wait_for(&run.id, ExecutionStatus::Succeeded, WAIT)
            .await;
        assert_eq!(done.worker_id.as_deref(), Some("live"));
    }
    frozen.signal(Signal::SIGCONT);
    drop(live);
    Ok(())
}

/// A worker thawed after the server gave its run away stops the run (it
/// fences itself, and the server disowns the run), and that run no longer
/// holds its drain: SIGTERM ends it in seconds, not the drain timeout.
async fn a_disowned_run_does_not_hold_the_drain(db: TestDb) -> Result<()> {
    let (server, mut api) = start(&db).await;
    api.tune(1_500, 300, 300).await;
    let worker = TestWorker::start(&server, "thawed", 1, &[]);
    let sleep = shell(&mut api, "sleep 60").await;
    let task = api.titled("stale").await;
    let run = api.run(&task, &sleep, json!({"arg": "x"}), 0).await;
    api.wait_for(&run.id, ExecutionStatus::Running, WAIT).await;
    worker.signal(Signal::SIGSTOP);
    api.wait_for(&run.id, ExecutionStatus::Failed, WAIT).await;
    worker.signal(Signal::SIGCONT);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = worker.terminate(Duration::from_secs(15)).await;
    assert!(status.success(), "{status}");
    Ok(())
}

/// During a partition longer than the stale window, the cut-off worker
/// stops its run before the server starts it elsewhere: the two copies
/// never run at the same time (they ran together for 21-24 s).
async fn a_partitioned_worker_fences_itself(db: TestDb) -> Result<()> {
    let (server, mut api) = start(&db).await;
    api.tune(3_000, 300, 300).await;
    let proxy = Proxy::start(server.addr()).await;
    let log = tempfile::NamedTempFile::new()?;
    let _a = TestWorker::start_with(
        &server,
        &proxy.url(),
        "cut-off",
        1,
        &[("AMON_TEST_TAG", "a")],
        &[],
    );
    let ticker = shell(
        &mut api,
        "while :; do echo \"$AMON_TEST_TAG $(date +%s%N)\" >> \"$0\"; sleep 0.05; done",
    )
    .await;
    let task = api.titled("partition").await;
    let run = api
        .run(
            &task,
            &ticker,
            json!({"arg": log.path().to_str().unwrap()}),
            1,
        )
        .await;
    api.wait_for(&run.id, ExecutionStatus::Running, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.cut();
    let _b = TestWorker::start(&server, "other", 1, &[("AMON_TEST_TAG", "b")]);
    // The server reaps after the window, the other worker takes the retry.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(log.path())?;
        if text.lines().filter(|l| l.starts_with("b ")).count() >= 10 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the retry never ran"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let text = std::fs::read_to_string(log.path())?;
    let stamp = |tag: &str| -> Vec<u128> {
        text.lines()
            .filter_map(|l| l.strip_prefix(tag))
            .filter_map(|t| t.trim().parse().ok())
            .collect()
    };
    let (a, b) = (stamp("a "), stamp("b "));
    let last_a = *a.iter().max().expect("the first copy ran");
    let first_b = *b.iter().min().expect("the second copy ran");
    assert!(
        last_a < first_b,
        "both copies ran at once for {} ms",
        (last_a - first_b) / 1_000_000
    );
    api.executions
        .cancel_execution(amon_proto::v1::CancelExecutionRequest {
            id: run.id.clone(),
            reason: String::new(),
        })
        .await?;
    proxy.heal();
    Ok(())
}

/// Two servers claiming from one PostgreSQL database never hand out the
/// same run twice, and never fail a dispatch round on a run the other just
/// took (the claim re-checks the locked row: 2-6 rounds per 2,000 runs
/// failed, each with a 200 ms pause).
#[tokio::test]
async fn two_servers_claim_each_run_once() -> Result<()> {
    let Some(db) = TestDb::new(amon_tests::db::Backend::Postgres).await else {
        return Ok(());
    };
    let a = TestServer::start_with_args(Some(db.url()), &["--no-local-worker"]).await;
    let b = TestServer::start_with_args(Some(db.url()), &["--no-local-worker"]).await;
    let mut api = Api::new(a.channel().await);
    let say = shell(&mut api, "echo $0").await;
    let task = api.titled("race").await;
    let mut workers = Vec::new();
    for (index, server) in [&a, &b, &a, &b].into_iter().enumerate() {
        let register = FakeWorker::register(&format!("w{index}"), 32);
        let worker = FakeWorker::connect(server.channel().await, register).await?;
        worker.grant(32).await;
        workers.push(worker);
    }
    const RUNS: usize = 1_000;
    let (assigned_tx, mut assigned) = tokio::sync::mpsc::unbounded_channel();
    for mut worker in workers {
        let assigned = assigned_tx.clone();
        tokio::spawn(async move {
            while let Some(message) = worker.try_recv(Duration::from_secs(60)).await {
                if let amon_proto::v1::connect_response::Message::Assign(assign) = message {
                    worker.started(&assign, 1).await;
                    worker
                        .finished(&assign, ExecutionStatus::Succeeded as i32, Some(0), 0)
                        .await;
                    worker.grant(1).await;
                    if assigned.send(assign.execution_id).is_err() {
                        return;
                    }
                }
            }
        });
    }
    drop(assigned_tx);
    for index in 0..RUNS {
        api.run(&task, &say, json!({"arg": index}), 0).await;
    }
    let mut seen = std::collections::HashSet::new();
    while seen.len() < RUNS {
        let id = tokio::time::timeout(WAIT, assigned.recv())
            .await?
            .expect("workers alive");
        assert!(seen.insert(id.clone()), "{id} was handed out twice");
    }
    for server in [&a, &b] {
        let failed = server.logged("dispatching failed");
        assert!(failed.is_empty(), "{failed:?}");
    }
    Ok(())
}

/// A server killed with SIGKILL in the middle of a stream of batched
/// reports, and restarted: every run ends, none is finished twice, and every
/// byte a worker was told was stored is in the log. Reports are
/// acknowledged only after the batch holding them committed, so the workers
/// resend whatever the dead server had not answered.
async fn a_server_killed_mid_batch_loses_nothing(db: TestDb) -> Result<()> {
    use amon_server::entity::{enums, executions, task_events};
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

    const RUNS: usize = 300;
    let (mut server, mut api) = start(&db).await;
    api.tune(10_000, 300, 300).await;
    let script = shell(&mut api, "seq -f \"$0 line %g\" 1 40").await;
    let task = api.titled("killed mid-batch").await;
    let mut runs = Vec::with_capacity(RUNS);
    for i in 0..RUNS {
        let tag = format!("run-{i}");
        let run = api.run(&task, &script, json!({ "arg": tag }), 2).await;
        runs.push((run.id, tag));
    }
    // Workers start once everything is queued, so the kill lands in the
    // middle of the drain, not after it (creates would race the runs).
    let _workers = [
        TestWorker::start(&server, "w1", 16, &[]),
        TestWorker::start(&server, "w2", 16, &[]),
    ];
    let finished = || {
        executions::Entity::find()
            .filter(executions::Column::Status.is_in([
                enums::ExecutionStatus::Succeeded,
                enums::ExecutionStatus::Failed,
                enums::ExecutionStatus::Cancelled,
                enums::ExecutionStatus::TimedOut,
            ]))
            .count(db.conn())
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    let killed_at = loop {
        let done = finished().await?;
        if done >= (RUNS / 5) as u64 {
            break done;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "runs never finished"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    server.restart().await;
    assert!(
        killed_at < RUNS as u64 / 2,
        "the kill came late in the drain ({killed_at} of {RUNS} finished)"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while finished().await? < RUNS as u64 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {RUNS} runs finished after the restart",
            finished().await?
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut api = Api::new(server.channel().await);
    for (id, tag) in &runs {
        let run = api.execution(id).await;
        assert_eq!(run.status, ExecutionStatus::Succeeded as i32, "{run:?}");
        let expected: String = (1..=40).map(|n| format!("{tag} line {n}\n")).collect();
        let log = String::from_utf8(api.log(id).await)?;
        if run.retry_count == 0 {
            assert_eq!(log, expected, "run {id}");
        } else {
            assert!(log.ends_with(&expected), "run {id}: {log:?}");
        }
        assert_eq!(run.log_byte_size as usize, log.len(), "run {id}");
    }
    let succeeded = task_events::Entity::find()
        .filter(task_events::Column::EventType.eq("execution_succeeded"))
        .all(db.conn())
        .await?;
    let mut seen = std::collections::HashSet::new();
    for event in &succeeded {
        let id = event.payload["execution_id"].as_str().unwrap_or_default();
        assert!(seen.insert(id.to_owned()), "{id} finished twice");
    }
    assert_eq!(seen.len(), RUNS);
    eprintln!("killed with {killed_at} of {RUNS} runs finished");
    Ok(())
}

/// An idle server makes no periodic query: with nothing running the reaper
/// sleeps until a run starts (it used to query every stale window / 4:
/// here every 100 ms), and it still reaps a silent worker's run then.
async fn an_idle_server_does_not_poll_for_stale_runs(db: TestDb) -> Result<()> {
    let server = TestServer::start_with_env(
        Some(db.url()),
        &["--no-local-worker"],
        &[("RUST_LOG", "warn,sqlx::query=debug")],
    )
    .await;
    let mut api = Api::new(server.channel().await);
    api.tune(400, 100, 200).await;
    let reads = || server.logged("heartbeat_at").len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = reads();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = reads() - before;
    anyhow::ensure!(
        idle == 0,
        "{idle} reads of heartbeats in 2 s with nothing running"
    );

    let slow = shell(&mut api, "sleep 30").await;
    let worker = TestWorker::start(&server, "frozen", 1, &[]);
    let task = api.titled("reaped").await;
    let run = api.run(&task, &slow, json!({"arg": "x"}), 0).await;
    api.wait_for(&run.id, ExecutionStatus::Running, WAIT).await;
    worker.signal(Signal::SIGSTOP);
    // Silent for the window, the grace and a second: reaped, no retry left.
    let reaped = api.wait_for(&run.id, ExecutionStatus::Failed, WAIT).await;
    worker.signal(Signal::SIGCONT);
    anyhow::ensure!(
        reaped.error().contains("went silent"),
        "reaped for silence: {:?}",
        reaped.error
    );
    Ok(())
}

both_backends!(
    an_idle_server_does_not_poll_for_stale_runs,
    a_server_killed_mid_batch_loses_nothing,
    runs_die_with_their_worker,
    a_server_restart_loses_no_healthy_run,
    a_restarted_worker_s_runs_are_requeued_at_once,
    a_drain_timeout_ends_the_run,
    a_frozen_worker_gets_no_new_work,
    a_disowned_run_does_not_hold_the_drain,
    a_partitioned_worker_fences_itself
);
