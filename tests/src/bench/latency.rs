//! Figure 2: dispatch latency, created → started, with idle workers, one
//! execution after another.

use std::{fmt::Write as _, time::Duration};

use amon_proto::v1::{ExecutionStatus, Task};
use amon_tests::{db::Backend, worker::TestWorker};
use anyhow::Context;
use tokio::sync::mpsc;

use super::{
    Instant, Percentiles, Rig, Settings, Watched, is_final, micros_between, percentiles, repeat,
};

/// Latencies of one sequence, in milliseconds.
#[derive(Default)]
pub struct Sequence {
    /// Server-recorded: `started_at − created_at` (the claim, when the run is
    /// handed to a worker).
    pub server_claim: Vec<f64>,
    /// Client-observed: CreateExecution sent → WatchExecutions shows RUNNING.
    pub client_claim: Vec<f64>,
    /// Client-observed: CreateExecution sent → WatchExecutions shows the
    /// child's pid (the worker spawned it and reported it started).
    pub client_spawned: Vec<f64>,
}

/// Runs `count` executions of `capability_id` one after another, each
/// created once the previous one has finished; `watch` must see every change.
pub async fn sequence(
    rig: &mut Rig,
    watch: &mut mpsc::UnboundedReceiver<(Instant, Watched)>,
    task_id: &str,
    capability_id: &str,
    count: usize,
) -> anyhow::Result<Sequence> {
    let mut out = Sequence::default();
    for _ in 0..count {
        let sent = Instant::now();
        let created = rig.create(task_id, capability_id).await?;
        let (mut claimed, mut spawned) = (None, None);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (seen, change) = tokio::time::timeout(left, watch.recv())
                .await
                .context("execution not finished within 30 s")?
                .context("watch ended")?;
            if change.id != created.id {
                continue;
            }
            if claimed.is_none() && change.status == ExecutionStatus::Running {
                claimed = Some(seen);
            }
            if spawned.is_none() && change.pid.is_some() {
                spawned = Some(seen);
            }
            if is_final(change.status) {
                anyhow::ensure!(
                    change.status == ExecutionStatus::Succeeded,
                    "execution ended {:?}",
                    change.status
                );
                break;
            }
        }
        let ms = |t: Option<Instant>| t.map(|t| (t - sent).as_secs_f64() * 1e3);
        out.client_claim.extend(ms(claimed));
        out.client_spawned.extend(ms(spawned));
        let stored = rig.api.execution(&created.id).await;
        if let (Some(c), Some(s)) = (&stored.created_at, &stored.started_at) {
            out.server_claim.push(micros_between(c, s) / 1e3);
        }
    }
    Ok(out)
}

/// One repetition on a fresh server with two idle real workers.
async fn repetition(backend: Backend, count: usize) -> anyhow::Result<Sequence> {
    let mut rig = Rig::start(backend, &[])
        .await
        .context("PostgreSQL unreachable")?;
    let capability = rig.tool("true", "true", &["x"], 1000).await;
    let task = rig
        .api
        .task(Task {
            title: "latency".into(),
            ..Default::default()
        })
        .await;
    let workers: Vec<TestWorker> = (0..2)
        .map(|i| TestWorker::start(&rig.server, &format!("bench-{i}"), 16, &[]))
        .collect();
    rig.wait_workers(2).await?;
    let mut watch = rig.watch().await?;
    // A few runs to warm up connections and caches, not counted.
    sequence(&mut rig, &mut watch, &task.id, &capability.id, 10).await?;
    let result = sequence(&mut rig, &mut watch, &task.id, &capability.id, count).await?;
    drop(workers);
    drop(rig);
    Ok(result)
}

/// A table row: `label | p50 | p95 | p99 | max`.
pub fn row(label: &str, p: &Percentiles) -> String {
    format!(
        "| {label} | {} | {} | {} | {} |",
        p.p50.show(2),
        p.p95.show(2),
        p.p99.show(2),
        p.max.show(2)
    )
}

/// Runs the figure; returns its Markdown section.
pub async fn run(settings: &Settings) -> anyhow::Result<String> {
    let n = settings.latency_runs;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## 2. Dispatch latency\n\n{n} executions of `true` one after another (each created once \
         the previous one finished), 2 idle real workers × 16 slots, a fresh server per \
         repetition (10 warm-up runs not counted). Milliseconds; each cell is the median of the \
         repetitions' percentile (min–max across {} repetitions).\n\n\
         - *server: created → claimed* is what the server records: `started_at − created_at`, \
         where `started_at` is set when the dispatcher claims the run for a worker (the \
         assignment is sent right after that commit).\n\
         - *client: create sent → RUNNING seen* is observed by the client: from sending \
         `CreateExecution` to `WatchExecutions` delivering the RUNNING change.\n\
         - *client: create sent → child spawned* adds the worker's spawn of the child and its \
         `RunStarted` report (the change that carries the pid).\n",
        settings.reps
    );
    let _ = writeln!(
        out,
        "| backend, measure | p50 | p95 | p99 | max |\n|---|---|---|---|---|"
    );
    let mut notes = Vec::new();
    for &backend in &settings.backends {
        eprintln!("[latency] {backend}");
        let reps = repeat(settings.reps, &format!("{backend}"), &mut notes, || {
            repetition(backend, n)
        })
        .await;
        if reps.is_empty() {
            continue;
        }
        let of = |f: fn(&Sequence) -> &Vec<f64>| {
            percentiles(&reps.iter().map(|r| f(r).clone()).collect::<Vec<_>>())
        };
        let _ = writeln!(
            out,
            "{}",
            row(
                &format!("{backend}, server: created → claimed"),
                &of(|r| &r.server_claim)
            )
        );
        let _ = writeln!(
            out,
            "{}",
            row(
                &format!("{backend}, client: create sent → RUNNING seen"),
                &of(|r| &r.client_claim)
            )
        );
        let _ = writeln!(
            out,
            "{}",
            row(
                &format!("{backend}, client: create sent → child spawned"),
                &of(|r| &r.client_spawned)
            )
        );
    }
    out.push('\n');
    for note in notes {
        let _ = writeln!(out, "- {note}");
    }
    Ok(out)
}
