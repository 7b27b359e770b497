//! Figure 6: two servers over one PostgreSQL against one, with the same
//! database and the same workers: queue throughput (all runs queued, then
//! the workers started), and dispatch latency of a run created on one
//! server for a worker connected to the other (the wake-up crosses servers
//! through `LISTEN`/`NOTIFY`).

use std::{fmt::Write as _, time::Duration};

use amon_proto::v1::{CreateExecutionRequest, Task};
use amon_tests::{
    api::{Api, object},
    db::Backend,
    server::TestServer,
    worker::TestWorker,
};
use anyhow::Context;
use tokio::task::JoinSet;

use super::{
    Instant, Rig, Settings, latency, percentiles, repeat, summarize,
    throughput::{NOOP_ARGV0, SLOTS},
};

/// Concurrent CreateExecution calls per server.
const CREATORS: usize = 8;

/// One drain: `count` no-op runs queued (half through each server when
/// `two`), then one worker on each server (both on the first with one
/// server); runs per second from the workers' start to the last finish.
async fn drain(count: usize, two: bool) -> anyhow::Result<f64> {
    let mut rig = Rig::start(Backend::Postgres, &[])
        .await
        .context("PostgreSQL unreachable")?;
    let second = if two {
        Some(TestServer::start_with_args(Some(rig.db.url()), &["--no-local-worker"]).await)
    } else {
        None
    };
    let capability = rig.tool("noop", NOOP_ARGV0, &["x"], 1000).await;
    let task = rig
        .api
        .task(Task {
            title: "two servers".into(),
            ..Default::default()
        })
        .await;
    let mut apis = vec![rig.api.clone()];
    if let Some(second) = &second {
        apis.push(Api::new(second.channel().await));
    }
    let mut creators = JoinSet::new();
    let all = CREATORS * apis.len();
    for c in 0..all {
        let mut api = apis[c % apis.len()].clone();
        let request = CreateExecutionRequest {
            task_id: task.id.clone(),
            capability_id: capability.id.clone(),
            args: Some(object(serde_json::json!({}))),
            max_retries: 0,
        };
        let mine = (c..count).step_by(all).count();
        creators.spawn(async move {
            for _ in 0..mine {
                api.executions.create_execution(request.clone()).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = creators.join_next().await {
        done??;
    }
    let start = Instant::now();
    let env = [("AMON_BENCH_NOOP_ARGV0", NOOP_ARGV0)];
    let workers = [
        TestWorker::start(&rig.server, "bench-0", SLOTS, &env),
        TestWorker::start(
            second.as_ref().unwrap_or(&rig.server),
            "bench-1",
            SLOTS,
            &env,
        ),
    ];
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let counts = rig.status_counts().await?;
        let done: i64 = counts
            .iter()
            .filter(|(s, _)| s != "queued" && s != "running" && s != "cancelling")
            .map(|(_, n)| n)
            .sum();
        if done as usize >= count {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "not done after 10 min: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let rate = count as f64 / start.elapsed().as_secs_f64();
    drop(workers);
    drop(second);
    drop(rig);
    Ok(rate)
}

/// One latency sequence: runs created (and watched) through the second
/// server, run by idle workers connected to the first; with one server,
/// all through the first.
async fn crossing(count: usize, two: bool) -> anyhow::Result<latency::Sequence> {
    let mut rig = Rig::start(Backend::Postgres, &[])
        .await
        .context("PostgreSQL unreachable")?;
    let capability = rig.tool("true", "true", &["x"], 1000).await;
    let task = rig
        .api
        .task(Task {
            title: "latency across servers".into(),
            ..Default::default()
        })
        .await;
    let workers: Vec<TestWorker> = (0..2)
        .map(|i| TestWorker::start(&rig.server, &format!("bench-{i}"), 16, &[]))
        .collect();
    rig.wait_workers(2).await?;
    let second = if two {
        let second = TestServer::start_with_args(Some(rig.db.url()), &["--no-local-worker"]).await;
        rig.api = Api::new(second.channel().await);
        Some(second)
    } else {
        None
    };
    let mut watch = rig.watch().await?;
    latency::sequence(&mut rig, &mut watch, &task.id, &capability.id, 10).await?;
    let result = latency::sequence(&mut rig, &mut watch, &task.id, &capability.id, count).await?;
    drop(workers);
    drop(second);
    drop(rig);
    Ok(result)
}

/// Runs the figure; returns its Markdown section.
pub async fn run(settings: &Settings) -> anyhow::Result<String> {
    let mut out = String::new();
    if !settings.backends.contains(&Backend::Postgres) {
        let _ = writeln!(
            out,
            "## 6. Two servers over one PostgreSQL\n\nPostgreSQL only: not measured.\n"
        );
        return Ok(out);
    }
    let count = settings.executions;
    let n = settings.latency_runs;
    let _ = writeln!(
        out,
        "## 6. Two servers over one PostgreSQL\n\n\
         The same database, the same two workers × {SLOTS} slots. *Throughput*: {count} no-op \
         runs queued first (through both servers with two), then one worker started on each \
         server (both on the one server otherwise); runs per second from the workers' start to \
         the last finish; median (min–max) of {} repetitions. *Latency*: {n} runs of `true` one \
         after another, created and watched through the second server while the workers are \
         connected to the first (one server: all through it); milliseconds, median of the \
         repetitions' percentile.\n",
        settings.reps
    );
    let mut notes = Vec::new();
    let _ = writeln!(out, "| servers | runs/s |\n|---|---|");
    for two in [false, true] {
        let label = if two { "two" } else { "one" };
        eprintln!("[cluster] throughput, {label} server(s)");
        let reps = repeat(
            settings.reps,
            &format!("throughput, {label}"),
            &mut notes,
            || drain(count, two),
        )
        .await;
        if !reps.is_empty() {
            let _ = writeln!(out, "| {label} | {} |", summarize(&reps).show(0));
        }
    }
    let _ = writeln!(
        out,
        "\n| servers, measure | p50 | p95 | p99 | max |\n|---|---|---|---|---|"
    );
    for two in [false, true] {
        let label = if two {
            "two (created on B, worker on A)"
        } else {
            "one"
        };
        eprintln!("[cluster] latency, {label}");
        let reps = repeat(
            settings.reps,
            &format!("latency, {label}"),
            &mut notes,
            || crossing(n, two),
        )
        .await;
        if reps.is_empty() {
            continue;
        }
        let of = |f: fn(&latency::Sequence) -> &Vec<f64>| {
            percentiles(&reps.iter().map(|r| f(r).clone()).collect::<Vec<_>>())
        };
        let _ = writeln!(
            out,
            "{}",
            latency::row(
                &format!("{label}, server: created → claimed"),
                &of(|r| &r.server_claim)
            )
        );
        let _ = writeln!(
            out,
            "{}",
            latency::row(
                &format!("{label}, client: create sent → RUNNING seen"),
                &of(|r| &r.client_claim)
            )
        );
    }
    out.push('\n');
    for note in notes {
        let _ = writeln!(out, "- {note}");
    }
    Ok(out)
}
