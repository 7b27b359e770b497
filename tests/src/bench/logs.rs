//! Figure 3: log throughput (one run writing a lot to stdout, to disk and to
//! one tailing client, against a plain pipe) and line latency (a child
//! writing timestamped lines, a follower comparing arrival to the stamp).

use std::{fmt::Write as _, time::Duration};

use amon_proto::v1::{ExecutionStatus, Task};
use amon_tests::{db::Backend, worker::TestWorker};
use anyhow::Context;
use tokio_stream::StreamExt;

use super::{Instant, Rig, Settings, is_final, percentiles, repeat, summarize, unix_nanos};

/// The time `sh -c script` takes.
async fn timed_shell(script: &str) -> anyhow::Result<f64> {
    let start = Instant::now();
    let status = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .status()
        .await?;
    anyhow::ensure!(status.success(), "{script} failed");
    Ok(start.elapsed().as_secs_f64())
}

struct Bulk {
    /// MB/s child → log file stored (execution finished).
    disk: f64,
    /// MB/s child → one tailing client.
    tail: f64,
    /// MB/s of `head | cat > /dev/null`.
    pipe_null: f64,
    /// MB/s of `head | cat > file` in the server's data directory.
    pipe_file: f64,
}

fn mb_per_s(bytes: u64, seconds: f64) -> f64 {
    bytes as f64 / 1e6 / seconds
}

/// Where a run's log is stored: the backend, and the server's flags.
#[derive(Clone, Copy)]
struct Setup {
    backend: Backend,
    args: &'static [&'static str],
    label: &'static str,
}

/// The backends' log stores: files on SQLite; on PostgreSQL, the database
/// (its default) and files (`--log-store files`).
fn setups(backends: &[Backend]) -> Vec<Setup> {
    let mut setups = Vec::new();
    for &backend in backends {
        match backend {
            Backend::Sqlite => setups.push(Setup {
                backend,
                args: &[],
                label: "SQLite (log files)",
            }),
            Backend::Postgres => setups.extend([
                Setup {
                    backend,
                    args: &[],
                    label: "PostgreSQL (logs in the database)",
                },
                Setup {
                    backend,
                    args: &["--log-store", "files"],
                    label: "PostgreSQL (log files)",
                },
            ]),
        }
    }
    setups
}

async fn bulk(setup: Setup, bytes: u64) -> anyhow::Result<Bulk> {
    let backend = setup.backend;
    let mut rig = Rig::start(backend, setup.args)
        .await
        .context("PostgreSQL unreachable")?;
    let count = bytes.to_string();
    let capability = rig
        .tool("head", "head", &["-c", &count, "/dev/zero"], 10)
        .await;
    let task = rig
        .api
        .task(Task {
            title: "logs".into(),
            ..Default::default()
        })
        .await;
    let worker = TestWorker::start(&rig.server, "bench-logs", 1, &[]);
    rig.wait_workers(1).await?;

    let start = Instant::now();
    let execution = rig.create(&task.id, &capability.id).await?;
    let mut tail = rig.tail(&execution.id).await?;
    let tailer = tokio::spawn(async move {
        let mut received = 0u64;
        while let Some(chunk) = tail.next().await {
            received += chunk?.data.len() as u64;
            if received >= bytes {
                return anyhow::Ok((received, start.elapsed().as_secs_f64()));
            }
        }
        anyhow::Ok((received, start.elapsed().as_secs_f64()))
    });
    let deadline = Instant::now() + Duration::from_secs(900);
    let stored = loop {
        let now = rig.api.execution(&execution.id).await;
        if is_final(now.status()) {
            break now;
        }
        anyhow::ensure!(Instant::now() < deadline, "run not finished in 15 min");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let disk_seconds = start.elapsed().as_secs_f64();
    anyhow::ensure!(
        stored.status() == ExecutionStatus::Succeeded,
        "the run ended {:?}: {:?}",
        stored.status(),
        stored.error
    );
    // Stored: in a file, or in the database; the row's size is written
    // with the finish, from what was stored.
    let on_disk = match backend {
        Backend::Sqlite => std::fs::metadata(
            rig.server
                .data_dir()
                .join("logs")
                .join(format!("{}.log", execution.id)),
        )?
        .len(),
        _ => stored.log_byte_size as u64,
    };
    anyhow::ensure!(on_disk == bytes, "{on_disk} of {bytes} bytes stored");
    let (received, tail_seconds) = tailer.await??;
    anyhow::ensure!(
        received == bytes,
        "the tail got {received} of {bytes} bytes"
    );
    drop(worker);

    let pipe_null = timed_shell(&format!("head -c {bytes} /dev/zero | cat > /dev/null")).await?;
    let file = rig.server.data_dir().join("pipe-baseline.bin");
    let pipe_file = timed_shell(&format!(
        "head -c {bytes} /dev/zero | cat > '{}'",
        file.display()
    ))
    .await?;
    std::fs::remove_file(&file).ok();
    drop(rig);
    Ok(Bulk {
        disk: mb_per_s(bytes, disk_seconds),
        tail: mb_per_s(bytes, tail_seconds),
        pipe_null: mb_per_s(bytes, pipe_null),
        pipe_file: mb_per_s(bytes, pipe_file),
    })
}

/// Lines per second the line writer writes.
pub const LINE_RATE: u32 = 100;

/// The child of the line-latency run: `count` lines of
/// `<unix nanos> <padding>` at `rate` per second, flushed one by one.
pub fn line_writer(rate: u32, count: usize) -> std::io::Result<()> {
    use std::io::Write;
    let period = Duration::from_secs(1) / rate.max(1);
    let start = std::time::Instant::now();
    let mut stdout = std::io::stdout().lock();
    for i in 0..count {
        let due = start + period * i as u32;
        if let Some(wait) = due.checked_duration_since(std::time::Instant::now()) {
            std::thread::sleep(wait);
        }
        writeln!(
            stdout,
            "{} line {i} of the amon-bench line writer",
            unix_nanos()
        )?;
        stdout.flush()?;
    }
    Ok(())
}

/// Latencies (ms) from a line written to that line received by a tailing
/// client.
async fn line_latency(setup: Setup, self_exe: &str, count: usize) -> anyhow::Result<Vec<f64>> {
    let mut rig = Rig::start(setup.backend, setup.args)
        .await
        .context("PostgreSQL unreachable")?;
    let rate = LINE_RATE.to_string();
    let lines = count.to_string();
    let capability = rig
        .tool("lines", self_exe, &["line-writer", &rate, &lines], 10)
        .await;
    let task = rig
        .api
        .task(Task {
            title: "lines".into(),
            ..Default::default()
        })
        .await;
    let worker = TestWorker::start(&rig.server, "bench-lines", 1, &[]);
    rig.wait_workers(1).await?;
    let execution = rig.create(&task.id, &capability.id).await?;
    let mut tail = rig.tail(&execution.id).await?;
    let mut latencies = Vec::with_capacity(count);
    let mut pending: Vec<u8> = Vec::new();
    while let Some(chunk) = tail.next().await {
        let now = unix_nanos();
        pending.extend_from_slice(&chunk?.data);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let stamp = String::from_utf8_lossy(&line);
            if let Some(written) = stamp
                .split_whitespace()
                .next()
                .and_then(|s| s.parse::<u128>().ok())
            {
                latencies.push(now.saturating_sub(written) as f64 / 1e6);
            }
        }
    }
    let stored = rig.api.execution(&execution.id).await;
    anyhow::ensure!(
        stored.status() == ExecutionStatus::Succeeded,
        "the line writer ended {:?}: {:?}",
        stored.status(),
        stored.error
    );
    anyhow::ensure!(
        latencies.len() == count,
        "got {} of {count} lines",
        latencies.len()
    );
    drop(worker);
    drop(rig);
    Ok(latencies)
}

/// Runs the figure; returns its Markdown section.
pub async fn run(settings: &Settings) -> anyhow::Result<String> {
    let bytes = settings.log_bytes;
    let mib = bytes as f64 / 1024.0 / 1024.0;
    let mut out = String::new();
    let mut notes = Vec::new();
    let _ = writeln!(
        out,
        "## 3. Logs\n\n### Throughput\n\nOne run of `head -c {bytes} /dev/zero` ({mib:.0} MiB to \
         stdout) on one real worker, with one `StreamLogs` follower tailing from offset 0. \
         *To disk*: from `CreateExecution` sent until the run is stored as finished (its log \
         then holds every byte, checked); on PostgreSQL both log stores, the database \
         (its default) and files (`--log-store files`). *To tail*: until the follower has received every \
         byte. Beside it, in the same repetition, the same bytes through a plain pipe: \
         `head -c {bytes} /dev/zero | cat > /dev/null` and `… | cat > FILE` with FILE in the \
         server's data directory. MB/s (10^6 bytes), median (min–max) of the repetitions.\n"
    );
    let _ = writeln!(
        out,
        "| backend | to disk | to tail | pipe → /dev/null | pipe → file | disk ÷ pipe→null | disk ÷ pipe→file |\n|---|---|---|---|---|---|---|"
    );
    for setup in setups(&settings.backends) {
        let backend = setup.label;
        eprintln!("[logs] throughput, {backend}");
        let runs = repeat(
            settings.reps,
            &format!("throughput on {backend}"),
            &mut notes,
            || bulk(setup, bytes),
        )
        .await;
        if runs.is_empty() {
            continue;
        }
        let of = |f: fn(&Bulk) -> f64| summarize(&runs.iter().map(f).collect::<Vec<_>>());
        let ratio_null = of(|b| b.disk / b.pipe_null);
        let ratio_file = of(|b| b.disk / b.pipe_file);
        let _ = writeln!(
            out,
            "| {backend} | {} | {} | {} | {} | {} | {} |",
            of(|b| b.disk).show(0),
            of(|b| b.tail).show(0),
            of(|b| b.pipe_null).show(0),
            of(|b| b.pipe_file).show(0),
            ratio_null.show(2),
            ratio_file.show(2),
        );
    }
    let _ = writeln!(
        out,
        "\n### Line latency\n\nA child (`amon-bench line-writer`) writes {} lines at {LINE_RATE} \
         lines/s, each stamped with the wall-clock time it was written and flushed at once; a \
         `StreamLogs` follower on the same machine compares each line's arrival with its stamp. \
         Milliseconds, median (min–max) of the repetitions' percentiles.\n",
        settings.line_count
    );
    let _ = writeln!(
        out,
        "| backend | p50 | p95 | p99 | max |\n|---|---|---|---|---|"
    );
    for setup in setups(&settings.backends) {
        let backend = setup.label;
        eprintln!("[logs] line latency, {backend}");
        let reps = repeat(
            settings.reps,
            &format!("line latency on {backend}"),
            &mut notes,
            || line_latency(setup, &settings.self_exe, settings.line_count),
        )
        .await;
        if reps.is_empty() {
            continue;
        }
        let _ = writeln!(out, "{}", super::latency::row(backend, &percentiles(&reps)));
    }
    out.push('\n');
    for note in notes {
        let _ = writeln!(out, "- {note}");
    }
    Ok(out)
}
