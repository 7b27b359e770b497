//! Figure 4: one server holding many connected workers (light protocol
//! clients) and many `StreamLogs` followers: its memory, its CPU while idle,
//! and dispatch latency under that load.

use std::{fmt::Write as _, time::Duration};

use amon_proto::v1::{
    ExecutionStatus, StreamLogsRequest, Task, connect_response::Message,
    execution_service_client::ExecutionServiceClient,
};
use amon_tests::{db::Backend, fake_worker::FakeWorker};
use anyhow::Context;
use tokio::task::JoinSet;
use tokio_stream::StreamExt;
use tonic::transport::{Channel, Endpoint};

use super::{Instant, Rig, Settings, cpu_time, latency, percentiles, repeat, rss_kib};

/// Executions held running for the followers to tail.
const HELD: usize = 10;
/// Followers per HTTP/2 connection (the server allows 200 concurrent
/// streams per connection, hyper's default).
const FOLLOWERS_PER_CHANNEL: usize = 100;
/// Idle window for the CPU figure.
const IDLE_WINDOW: Duration = Duration::from_secs(10);
/// argv[0] of runs the fake workers keep running (they report them
/// started and never finish them).
const HOLD: &str = "hold";

async fn channel(url: &str) -> anyhow::Result<Channel> {
    Ok(Endpoint::from_shared(url.to_owned())?
        .tcp_nodelay(true)
        .connect()
        .await?)
}

/// Connects `count` fake workers with one slot each, one TCP connection
/// each; each one reports its runs started at once, finishes them at once
/// (except [`HOLD`] runs, kept running), and grants its slot back.
async fn fake_workers(
    url: &str,
    first: usize,
    count: usize,
    set: &mut JoinSet<()>,
) -> anyhow::Result<()> {
    let mut connecting = JoinSet::new();
    for i in first..first + count {
        let url = url.to_owned();
        connecting.spawn(async move {
            let channel = channel(&url).await?;
            let worker =
                FakeWorker::connect(channel, FakeWorker::register(&format!("fake-{i:05}"), 1))
                    .await?;
            anyhow::Ok(worker)
        });
        // Keep the connection storm modest.
        if connecting.len() >= 64
            && let Some(done) = connecting.join_next().await
        {
            spawn_fake(done??, set).await;
        }
    }
    while let Some(done) = connecting.join_next().await {
        spawn_fake(done??, set).await;
    }
    Ok(())
}

async fn spawn_fake(mut worker: FakeWorker, set: &mut JoinSet<()>) {
    worker.grant(1).await;
    set.spawn(async move {
        while let Some(message) = worker.try_recv(Duration::from_secs(24 * 3600)).await {
            if let Message::Assign(assign) = message {
                worker.started(&assign, 1).await;
                if assign.argv.first().map(String::as_str) != Some(HOLD) {
                    worker
                        .finished(&assign, ExecutionStatus::Succeeded as i32, Some(0), 0)
                        .await;
                    worker.grant(1).await;
                }
            }
        }
    });
}

struct Load {
    workers: usize,
    followers: usize,
    rss_idle_mib: f64,
    rss_loaded_mib: f64,
    cpu_idle_percent: f64,
    base: latency::Sequence,
    loaded: latency::Sequence,
    setup_seconds: f64,
}

async fn repetition(backend: Backend, settings: &Settings) -> anyhow::Result<Load> {
    let mut rig = Rig::start(backend, &[])
        .await
        .context("PostgreSQL unreachable")?;
    let pid = rig.server.pid().context("server pid")?;
    let url = rig.server.url();
    // Runs held for a long time: no reaping during the measurement.
    rig.api.tune(3_600_000, 30_000, 10_000).await;
    let quick = rig.tool("quick", "quick", &["x"], 100_000).await;
    let hold = rig.tool(HOLD, HOLD, &["x"], 100_000).await;
    let task = rig
        .api
        .task(Task {
            title: "scale".into(),
            ..Default::default()
        })
        .await;
    let mut fakes = JoinSet::new();
    let mut watch = rig.watch().await?;

    // Baseline: one fake worker, nothing else.
    fake_workers(&url, 0, 1, &mut fakes).await?;
    rig.wait_workers(1).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle_mib = rss_kib(pid).unwrap_or(0) as f64 / 1024.0;
    latency::sequence(&mut rig, &mut watch, &task.id, &quick.id, 10).await?;
    let base = latency::sequence(
        &mut rig,
        &mut watch,
        &task.id,
        &quick.id,
        settings.latency_runs / 5,
    )
    .await?;

    // The load: the other workers, the held runs, the followers.
    let setup = Instant::now();
    let workers = settings.scale_workers.max(HELD);
    fake_workers(&url, 1, workers - 1, &mut fakes).await?;
    rig.wait_workers(workers).await?;
    let mut held = Vec::new();
    for _ in 0..HELD {
        held.push(rig.api.run(&task, &hold, serde_json::json!({}), 0).await.id);
    }
    for id in &held {
        rig.api
            .wait_for(id, ExecutionStatus::Running, Duration::from_secs(30))
            .await;
    }
    let mut followers = JoinSet::new();
    let channels = settings.scale_followers.div_ceil(FOLLOWERS_PER_CHANNEL);
    let mut opened = 0;
    for c in 0..channels {
        let client = ExecutionServiceClient::new(channel(&url).await?);
        let mut opening = JoinSet::new();
        for f in 0..FOLLOWERS_PER_CHANNEL.min(settings.scale_followers - opened) {
            let mut client = client.clone();
            let id = held[(c * FOLLOWERS_PER_CHANNEL + f) % HELD].clone();
            opening.spawn(async move {
                client
                    .stream_logs(StreamLogsRequest {
                        execution_id: id,
                        offset: 0,
                        follow: true,
                    })
                    .await
                    .map(tonic::Response::into_inner)
            });
        }
        while let Some(stream) = opening.join_next().await {
            let mut stream = stream??;
            opened += 1;
            followers.spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
        }
    }
    let setup_seconds = setup.elapsed().as_secs_f64();

    // Idle: nothing happens for a while.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu_before = cpu_time(pid).context("server CPU time")?;
    let window = Instant::now();
    tokio::time::sleep(IDLE_WINDOW).await;
    let cpu_after = cpu_time(pid).context("server CPU time")?;
    let cpu_idle_percent =
        (cpu_after - cpu_before).as_secs_f64() / window.elapsed().as_secs_f64() * 100.0;
    let rss_loaded_mib = rss_kib(pid).unwrap_or(0) as f64 / 1024.0;
    anyhow::ensure!(
        followers.len() == opened,
        "{} of {opened} followers ended early",
        opened - followers.len()
    );

    // Dispatch latency with all of that connected.
    let loaded = latency::sequence(
        &mut rig,
        &mut watch,
        &task.id,
        &quick.id,
        settings.latency_runs / 5,
    )
    .await?;
    let rss_loaded_mib = rss_loaded_mib.max(rss_kib(pid).unwrap_or(0) as f64 / 1024.0);

    followers.abort_all();
    fakes.abort_all();
    drop(watch);
    drop(rig);
    Ok(Load {
        workers,
        followers: opened,
        rss_idle_mib,
        rss_loaded_mib,
        cpu_idle_percent,
        base,
        loaded,
        setup_seconds,
    })
}

/// Raises the open-file limit to its hard maximum (the server inherits it).
pub fn raise_nofile() -> String {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((_, hard)) => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => format!("open files limit raised to {hard}"),
            Err(e) => format!("open files limit not raised: {e}"),
        },
        Err(e) => format!("open files limit unknown: {e}"),
    }
}

/// Runs the figure; returns its Markdown section.
pub async fn run(settings: &Settings) -> anyhow::Result<String> {
    let limit = raise_nofile();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## 4. Scale\n\nOne server, {} fake workers (light protocol clients from \
         `tests/src/fake_worker.rs`, one TCP connection each, one slot each, granted) and {} \
         `StreamLogs` followers (follow = true) spread over {HELD} running executions held by \
         fake workers, {FOLLOWERS_PER_CHANNEL} streams per HTTP/2 connection ({limit}). \
         *RSS* is the server's VmRSS; *idle CPU* its user + system time over {} s with \
         everything connected and nothing happening. Dispatch latency is measured with fake \
         workers (they report started and finished at once, so no spawn), first with one \
         worker and nothing else connected, then under the load, {} runs each.\n",
        settings.scale_workers,
        settings.scale_followers,
        IDLE_WINDOW.as_secs(),
        settings.latency_runs / 5,
    );
    let mut notes = Vec::new();
    let mut table = String::from(
        "| backend | workers | followers | setup s | RSS idle, 1 worker MiB | RSS loaded MiB | idle CPU % of one core |\n|---|---|---|---|---|---|---|\n",
    );
    let mut latency_table =
        String::from("| backend, measure | p50 | p95 | p99 | max |\n|---|---|---|---|---|\n");
    for &backend in &settings.backends {
        eprintln!("[scale] {backend}");
        let reps = repeat(settings.reps, &format!("{backend}"), &mut notes, || {
            repetition(backend, settings)
        })
        .await;
        if reps.is_empty() {
            continue;
        }
        let of = |f: fn(&Load) -> f64| super::summarize(&reps.iter().map(f).collect::<Vec<_>>());
        let _ = writeln!(
            table,
            "| {backend} | {} | {} | {} | {} | {} | {} |",
            reps[0].workers,
            reps[0].followers,
            of(|l| l.setup_seconds).show(1),
            of(|l| l.rss_idle_mib).show(0),
            of(|l| l.rss_loaded_mib).show(0),
            of(|l| l.cpu_idle_percent).show(2),
        );
        type Pick = fn(&latency::Sequence) -> &Vec<f64>;
        let rows: [(&str, fn(&Load) -> &latency::Sequence, Pick); 4] = [
            (
                "1 worker, server: created → claimed",
                |l| &l.base,
                |s| &s.server_claim,
            ),
            (
                "1 worker, client: create sent → RUNNING seen",
                |l| &l.base,
                |s| &s.client_claim,
            ),
            (
                "loaded, server: created → claimed",
                |l| &l.loaded,
                |s| &s.server_claim,
            ),
            (
                "loaded, client: create sent → RUNNING seen",
                |l| &l.loaded,
                |s| &s.client_claim,
            ),
        ];
        for (label, which, pick) in rows {
            let samples: Vec<Vec<f64>> = reps.iter().map(|l| pick(which(l)).clone()).collect();
            let _ = writeln!(
                latency_table,
                "{}",
                latency::row(&format!("{backend}, {label}"), &percentiles(&samples))
            );
        }
    }
    out.push_str(&table);
    out.push('\n');
    out.push_str("Dispatch latency (ms), median (min–max) of the repetitions' percentiles:\n\n");
    out.push_str(&latency_table);
    out.push('\n');
    for note in notes {
        let _ = writeln!(out, "- {note}");
    }
    Ok(out)
}
