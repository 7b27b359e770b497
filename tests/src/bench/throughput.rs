//! Figure 1: executions per second end to end (create → claim → spawn
//! `true` → finish stored), beside the machine's raw spawn rate, the same
//! queue with the spawn taken out, and graphile-worker on the same
//! PostgreSQL.

use std::{fmt::Write as _, path::PathBuf, process::Stdio, sync::Arc, time::Duration};

use amon_proto::v1::{CreateExecutionRequest, Task};
use amon_tests::{api::object, db::Backend, worker::TestWorker};
use anyhow::Context;
use tokio::{sync::Semaphore, task::JoinSet};

use super::{Instant, Rig, Settings, Summary, repeat, summarize};

/// Workers and slots of the figure.
pub const WORKERS: usize = 2;
pub const SLOTS: u32 = 16;
/// Runs in flight for the raw spawn rate and the peer: the same 2 × 16.
pub const IN_FLIGHT: usize = WORKERS * SLOTS as usize;
/// Concurrent CreateExecution calls of the client.
const CREATORS: usize = 16;
/// The argv[0] workers treat as a no-op (bench only; see amon-worker's
/// `AMON_BENCH_NOOP_ARGV0`).
pub const NOOP_ARGV0: &str = "amon-bench-noop";

/// The raw rate (per second) at which a tokio program spawns and reaps
/// `true` with `IN_FLIGHT` in flight.
pub async fn raw_spawn_rate(count: usize) -> anyhow::Result<f64> {
    let semaphore = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut set = JoinSet::new();
    let start = Instant::now();
    for _ in 0..count {
        let permit = semaphore.clone().acquire_owned().await?;
        set.spawn(async move {
            let status = tokio::process::Command::new("true")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await;
            drop(permit);
            status
        });
        while let Some(done) = set.try_join_next() {
            anyhow::ensure!(done??.success(), "true failed");
        }
    }
    while let Some(done) = set.join_next().await {
        anyhow::ensure!(done??.success(), "true failed");
    }
    Ok(count as f64 / start.elapsed().as_secs_f64())
}

/// What one queue run measured.
pub struct QueueRun {
    pub rate: f64,
    /// Creates per second (until the last CreateExecution returned).
    pub create_rate: f64,
    pub failed: i64,
}

/// `count` executions through a fresh server and 2 × 16 real workers:
/// spawning `true`, or (with `noop`) handled inside the worker. Created
/// while the workers run, or (with `drain`) all queued first, the clock
/// starting when the workers are started: the queue's own speed, with no
/// creates competing for the write path.
pub async fn queue_rate(
    backend: Backend,
    count: usize,
    noop: bool,
    drain: bool,
) -> anyhow::Result<QueueRun> {
    let mut rig = Rig::start(backend, &[])
        .await
        .context("PostgreSQL unreachable")?;
    let capability = if noop {
        rig.tool("noop", NOOP_ARGV0, &["x"], 1000).await
    } else {
        rig.tool("true", "true", &["x"], 1000).await
    };
    let task = rig
        .api
        .task(Task {
            title: "throughput".into(),
            ..Default::default()
        })
        .await;
    let start_workers = |rig: &Rig| -> Vec<TestWorker> {
        (0..WORKERS)
            .map(|i| {
                TestWorker::start(
                    &rig.server,
                    &format!("bench-{i}"),
                    SLOTS,
                    &[("AMON_BENCH_NOOP_ARGV0", NOOP_ARGV0)],
                )
            })
            .collect()
    };
    let mut workers = Vec::new();
    if !drain {
        workers = start_workers(&rig);
        rig.wait_workers(WORKERS).await?;
    }

    let start = Instant::now();
    let mut creators = JoinSet::new();
    for c in 0..CREATORS {
        let mut api = rig.api.clone();
        let request = CreateExecutionRequest {
            task_id: task.id.clone(),
            capability_id: capability.id.clone(),
            args: Some(object(serde_json::json!({}))),
            max_retries: 0,
        };
        let mine = (c..count).step_by(CREATORS).count();
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
    let create_rate = count as f64 / start.elapsed().as_secs_f64();
    let start = if drain {
        let start = Instant::now();
        workers = start_workers(&rig);
        start
    } else {
        start
    };
    let deadline = Instant::now() + Duration::from_secs(600);
    let (done, failed) = loop {
        let counts = rig.status_counts().await?;
        let of = |s: &str| counts.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| *n);
        let done = of("succeeded") + of("failed") + of("cancelled") + of("timed_out");
        if done as usize >= count {
            break (done, of("failed") + of("cancelled") + of("timed_out"));
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {done} of {count} executions done after 10 min: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let elapsed = start.elapsed().as_secs_f64();
    drop(workers);
    drop(rig);
    Ok(QueueRun {
        rate: done as f64 / elapsed,
        create_rate,
        failed,
    })
}

/// The peer: graphile-worker, installed from npm under `node_dir`.
pub struct Peer {
    node_dir: PathBuf,
    script: PathBuf,
}

/// Version of graphile-worker the peer runs.
pub const GRAPHILE_VERSION: &str = "0.16.6";

impl Peer {
    /// Installs graphile-worker (once) into `node_dir`; an error says why not.
    pub async fn install(node_dir: PathBuf) -> anyhow::Result<Peer> {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench/graphile-true.js");
        anyhow::ensure!(script.exists(), "{} is missing", script.display());
        let installed = node_dir.join("node_modules/graphile-worker/package.json");
        let wanted = format!("\"version\": \"{GRAPHILE_VERSION}\"");
        let fresh = std::fs::read_to_string(&installed).is_ok_and(|p| p.contains(&wanted));
        if !fresh {
            std::fs::create_dir_all(&node_dir)?;
            let output = tokio::time::timeout(
                Duration::from_secs(300),
                tokio::process::Command::new("npm")
                    .args(["install", "--no-audit", "--no-fund", "--silent"])
                    .arg(format!("graphile-worker@{GRAPHILE_VERSION}"))
                    .current_dir(&node_dir)
                    .stdin(Stdio::null())
                    .output(),
            )
            .await
            .context("npm install took more than 5 min")?
            .context("running npm")?;
            anyhow::ensure!(
                output.status.success(),
                "npm install graphile-worker failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(Peer { node_dir, script })
    }

    /// Jobs per second for `count` jobs spawning `true`, concurrency 32, on
    /// a fresh PostgreSQL database.
    pub async fn rate(&self, count: usize) -> anyhow::Result<f64> {
        let db = amon_tests::db::TestDb::new(Backend::Postgres)
            .await
            .context("PostgreSQL unreachable")?;
        let output = tokio::time::timeout(
            Duration::from_secs(900),
            tokio::process::Command::new("node")
                .arg(&self.script)
                .env("NODE_PATH", self.node_dir.join("node_modules"))
                .env("DATABASE_URL", db.url())
                .env("JOBS", count.to_string())
                .env("CONCURRENCY", IN_FLIGHT.to_string())
                .env("CREATORS", CREATORS.to_string())
                .stdin(Stdio::null())
                .output(),
        )
        .await
        .context("graphile-worker took more than 15 min")??;
        let stdout = String::from_utf8_lossy(&output.stdout);
        anyhow::ensure!(
            output.status.success(),
            "graphile-worker run failed: {}{}",
            stdout.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
        let result: serde_json::Value = serde_json::from_str(
            stdout
                .lines()
                .rev()
                .find(|l| l.starts_with('{'))
                .context("no result line from the peer script")?,
        )?;
        result["rate"]
            .as_f64()
            .context("no rate in the peer's result")
    }
}

/// Runs the figure; returns its Markdown section.
pub async fn run(settings: &Settings, node_dir: PathBuf) -> anyhow::Result<String> {
    let n = settings.executions;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## 1. Throughput\n\n{n} executions end to end per repetition (create → claim → spawn \
         `true` → finish stored), {WORKERS} real `amon-worker` processes × {SLOTS} slots, \
         {CREATORS} concurrent `CreateExecution` callers, a fresh server and database per \
         repetition; the clock runs from the first create until the database holds {n} \
         finished executions. A *drain* queues all {n} first, with no worker connected, and \
         runs the clock from the workers' start: the queue alone, no creates competing for \
         the write path. Executions per second, median (min–max) of {} repetitions.\n",
        settings.reps
    );

    eprintln!("[throughput] raw spawn rate");
    let mut raw = Vec::new();
    for _ in 0..settings.reps {
        raw.push(raw_spawn_rate(n).await?);
    }
    let raw = summarize(&raw);

    let mut rows: Vec<(String, Summary, String)> = Vec::new();
    let mut notes = Vec::new();
    for &backend in &settings.backends {
        for (noop, drain) in [(false, false), (true, false), (false, true), (true, true)] {
            let what = if noop {
                "no-op run (no spawn; queue cost only)"
            } else {
                "spawn `true`"
            };
            let label = if drain {
                format!("amon, {backend}, {what}, drain of {n} queued")
            } else {
                format!("amon, {backend}, {what}")
            };
            eprintln!("[throughput] {label}");
            let runs = repeat(settings.reps, &label, &mut notes, || {
                queue_rate(backend, n, noop, drain)
            })
            .await;
            let rates: Vec<f64> = runs.iter().map(|run| run.rate).collect();
            let creates: Vec<f64> = runs.iter().map(|run| run.create_rate).collect();
            let failed: i64 = runs.iter().map(|run| run.failed).sum();
            if !rates.is_empty() {
                let s = summarize(&rates);
                let mut note = if drain {
                    format!(
                        "queued first at {}/s, then {WORKERS} workers started",
                        summarize(&creates).show(0)
                    )
                } else {
                    format!(
                        "creates alone: {}/s (all {n} created while workers ran)",
                        summarize(&creates).show(0)
                    )
                };
                if failed > 0 {
                    let _ = write!(note, "; {failed} runs failed");
                }
                rows.push((label, s, note));
            }
        }
    }

    let mut peer = None;
    if settings.peer && settings.backends.contains(&Backend::Postgres) {
        eprintln!("[throughput] peer: graphile-worker");
        match Peer::install(node_dir).await {
            Ok(p) => {
                let rates =
                    repeat(settings.reps, "graphile-worker", &mut notes, || p.rate(n)).await;
                if !rates.is_empty() {
                    let s = summarize(&rates);
                    peer = Some(s);
                    rows.push((
                        format!(
                            "peer: graphile-worker {GRAPHILE_VERSION}, PostgreSQL, task spawns \
                             `true`, concurrency {IN_FLIGHT}"
                        ),
                        s,
                        String::new(),
                    ));
                }
            }
            Err(e) => notes.push(format!(
                "peer not measured: graphile-worker could not be installed from npm: {e:#}"
            )),
        }
    }

    let _ = writeln!(
        out,
        "| what | executions/s | × raw spawn | notes |\n|---|---|---|---|"
    );
    let _ = writeln!(
        out,
        "| raw: tokio program spawning and reaping `true`, {IN_FLIGHT} in flight (the limit) | {} | 1.00 | |",
        raw.show(0)
    );
    for (label, s, note) in &rows {
        let _ = writeln!(
            out,
            "| {label} | {} | {:.2} | {note} |",
            s.show(0),
            s.median / raw.median
        );
    }
    out.push('\n');
    if let Some(peer) = peer {
        for (label, s, _) in rows.iter().filter(|(l, ..)| l.contains("spawn `true`")) {
            // Drains compare with the peer best: it, too, drains a queue.
            let _ = writeln!(
                out,
                "- {label}: {:.2} × graphile-worker.",
                s.median / peer.median
            );
        }
    }
    for note in notes {
        let _ = writeln!(out, "- {note}");
    }
    out.push('\n');
    Ok(out)
}
