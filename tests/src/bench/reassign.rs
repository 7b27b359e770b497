//! Figure 5: reassignment. Stale window 5 s: kill -9 the worker holding a
//! run and time until the run's next attempt starts on the other worker.

use std::{fmt::Write as _, time::Duration};

use amon_proto::v1::{ExecutionStatus, Task};
use amon_tests::{db::Backend, worker::TestWorker};
use anyhow::Context;
use nix::{
    sys::signal::{Signal, killpg},
    unistd::Pid,
};

use super::{Instant, Rig, Settings, repeat, summarize};

/// The stale window of the figure, and the heartbeat the workers use.
pub const STALE_MS: u64 = 5_000;
pub const HEARTBEAT_MS: u64 = 1_000;

struct Reassigned {
    /// kill -9 → the run claimed for the other worker (RUNNING, new attempt).
    claimed: f64,
    /// kill -9 → the other worker reported the new child started (pid).
    spawned: f64,
}

async fn repetition(backend: Backend) -> anyhow::Result<Reassigned> {
    let mut rig = Rig::start(backend, &[])
        .await
        .context("PostgreSQL unreachable")?;
    rig.api.tune(STALE_MS, HEARTBEAT_MS, 1_000).await;
    let capability = rig.tool("sleep", "sleep", &["60"], 10).await;
    let task = rig
        .api
        .task(Task {
            title: "reassign".into(),
            ..Default::default()
        })
        .await;
    let mut workers = vec![
        TestWorker::start(&rig.server, "bench-a", 1, &[]),
        TestWorker::start(&rig.server, "bench-b", 1, &[]),
    ];
    rig.wait_workers(2).await?;
    let execution = rig
        .api
        .run(&task, &capability, serde_json::json!({}), 1)
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let first = loop {
        let now = rig.api.execution(&execution.id).await;
        if now.status() == ExecutionStatus::Running && now.pid.is_some() {
            break now;
        }
        anyhow::ensure!(Instant::now() < deadline, "the run did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let holder = first.worker_id.clone().context("no worker on the run")?;
    let victim = workers
        .iter()
        .position(|w| w.worker_id == holder)
        .context("run held by an unknown worker")?;
    // Let a heartbeat or two go by, as in a run that has been going a while.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let killed = Instant::now();
    workers[victim].kill_hard();
    let mut claimed = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    let second = loop {
        let now = rig.api.execution(&execution.id).await;
        let moved = now.status() == ExecutionStatus::Running
            && now.retry_count == first.retry_count + 1
            && now.worker_id.as_deref() != Some(holder.as_str());
        if moved && claimed.is_none() {
            claimed = Some(killed.elapsed());
        }
        if moved && now.pid.is_some() {
            break now;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "no new attempt 60 s after the kill: {:?} on {:?}",
            now.status(),
            now.worker_id
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let spawned = killed.elapsed();
    // The killed worker's child outlived it (its own process group).
    for pid in [first.pid, second.pid].into_iter().flatten() {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
    drop(workers);
    drop(rig);
    Ok(Reassigned {
        claimed: claimed.unwrap_or(spawned).as_secs_f64(),
        spawned: spawned.as_secs_f64(),
    })
}

/// Runs the figure; returns its Markdown section.
pub async fn run(settings: &Settings) -> anyhow::Result<String> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## 5. Reassignment\n\nStale window {} s, heartbeat {} s (`SetWorkerConfig`), two real \
         workers with one slot each, a run of `sleep 60` with one retry allowed. After it has \
         run 1.5 s, its worker is killed with SIGKILL; the client polls `GetExecution` every \
         2 ms. Seconds from the kill, median (min–max) of {} repetitions. The floor is the \
         stale window itself (the last heartbeat is up to one interval old when the worker \
         dies, the reaper checks every window/4).\n",
        STALE_MS / 1000,
        HEARTBEAT_MS / 1000,
        settings.reps
    );
    let _ = writeln!(
        out,
        "| backend | kill → claimed on the other worker | kill → new child started |\n|---|---|---|"
    );
    let mut notes = Vec::new();
    for &backend in &settings.backends {
        eprintln!("[reassign] {backend}");
        let reps = repeat(settings.reps, &format!("{backend}"), &mut notes, || {
            repetition(backend)
        })
        .await;
        if reps.is_empty() {
            continue;
        }
        let claimed = summarize(&reps.iter().map(|r| r.claimed).collect::<Vec<_>>());
        let spawned = summarize(&reps.iter().map(|r| r.spawned).collect::<Vec<_>>());
        let _ = writeln!(
            out,
            "| {backend} | {} | {} |",
            claimed.show(2),
            spawned.show(2)
        );
    }
    out.push('\n');
    for note in notes {
        let _ = writeln!(out, "- {note}");
    }
    Ok(out)
}
