//! Shared pieces of `amon-bench`: a server on a fresh database, agents made
//! for benchmarks, statistics, and the machine's description.

pub mod cluster;
pub mod latency;
pub mod logs;
pub mod reassign;
pub mod scale;
pub mod terminal;
pub mod throughput;

use std::{
    fmt::Write as _,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use amon_proto::v1::{
    Agent, Capability, ExecutionStatus, ListWorkersRequest, WatchExecutionsRequest,
    WatchExecutionsResponse,
};
use amon_tests::{
    api::{Api, object, strings},
    db::{Backend, TestDb},
    server::TestServer,
};
use anyhow::Context;
use sea_orm::{ConnectionTrait, Statement};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;

/// What the command line asked for.
#[derive(Debug, Clone)]
pub struct Settings {
    pub reps: usize,
    pub executions: usize,
    pub latency_runs: usize,
    pub log_bytes: u64,
    pub line_count: usize,
    pub scale_workers: usize,
    pub scale_followers: usize,
    /// Keys timed per repetition of the terminal figure.
    pub terminal_keys: usize,
    pub backends: Vec<Backend>,
    pub peer: bool,
    /// Path of this benchmark binary (the line writer child).
    pub self_exe: String,
}

/// A server (no local worker) on a fresh database of `backend`.
pub struct Rig {
    pub server: TestServer,
    pub api: Api,
    // Declared last: the database outlives the server using it.
    pub db: TestDb,
}

impl Rig {
    /// Queues one run of `capability_id` for `task_id`, with no args.
    pub async fn create(
        &mut self,
        task_id: &str,
        capability_id: &str,
    ) -> anyhow::Result<amon_proto::v1::Execution> {
        self.api
            .executions
            .create_execution(amon_proto::v1::CreateExecutionRequest {
                task_id: task_id.into(),
                capability_id: capability_id.into(),
                args: Some(object(serde_json::json!({}))),
                max_retries: 0,
            })
            .await?
            .into_inner()
            .execution
            .context("no execution")
    }

    /// Follows the log of `execution_id` from its first byte.
    pub async fn tail(
        &mut self,
        execution_id: &str,
    ) -> anyhow::Result<tonic::Streaming<amon_proto::v1::StreamLogsResponse>> {
        Ok(self
            .api
            .executions
            .stream_logs(amon_proto::v1::StreamLogsRequest {
                execution_id: execution_id.into(),
                offset: 0,
                follow: true,
            })
            .await?
            .into_inner())
    }

    /// A new server on a new database; `None` when PostgreSQL is unreachable.
    pub async fn start(backend: Backend, extra_args: &[&str]) -> Option<Rig> {
        let db = TestDb::new(backend).await?;
        let mut args = vec!["--no-local-worker"];
        args.extend_from_slice(extra_args);
        let server = TestServer::start_with_args(Some(db.url()), &args).await;
        let api = Api::new(server.channel().await);
        Some(Rig { server, api, db })
    }

    /// A template agent `slug` running `binary` with `tokens`, allowed
    /// `max_concurrent` runs at once, output up to 2 GiB; its capability.
    pub async fn tool(
        &mut self,
        slug: &str,
        binary: &str,
        tokens: &[&str],
        max_concurrent: i32,
    ) -> Capability {
        let agent = self
            .api
            .agent(Agent {
                name: slug.into(),
                slug: slug.into(),
                binary_path: binary.into(),
                max_concurrent: Some(max_concurrent),
                ..Default::default()
            })
            .await;
        self.api
            .capability(Capability {
                agent_id: agent.id.clone(),
                key: "run".into(),
                label: "run".into(),
                command_tokens: strings(tokens),
                args_schema: Some(object(serde_json::json!({"type": "object"}))),
                timeout_sec: Some(3600),
                max_output_bytes: Some(i32::MAX),
                ..Default::default()
            })
            .await
    }

    /// Waits until `count` workers are connected.
    pub async fn wait_workers(&mut self, count: usize) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let connected = self
                .api
                .workers
                .list_workers(ListWorkersRequest {
                    connected_only: true,
                })
                .await?
                .into_inner()
                .workers
                .len();
            if connected >= count {
                return Ok(());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "only {connected} of {count} workers connected after 60 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Executions by status, straight from the database.
    pub async fn status_counts(&self) -> anyhow::Result<Vec<(String, i64)>> {
        let rows = self
            .db
            .conn()
            .query_all_raw(Statement::from_string(
                self.db.conn().get_database_backend(),
                "SELECT CAST(status AS TEXT), COUNT(*) FROM executions GROUP BY status",
            ))
            .await?;
        let mut counts = Vec::new();
        for row in rows {
            counts.push((row.try_get_by_index::<String>(0)?, row.try_get_by_index(1)?));
        }
        Ok(counts)
    }

    /// Every change to executions from now on, with the time it arrived.
    pub async fn watch(&mut self) -> anyhow::Result<mpsc::UnboundedReceiver<(Instant, Watched)>> {
        let mut stream = self
            .api
            .executions
            .watch_executions(WatchExecutionsRequest::default())
            .await
            .context("watching executions")?
            .into_inner();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Ok(WatchExecutionsResponse {
                execution: Some(execution),
            })) = stream.next().await
            {
                let seen = Instant::now();
                let watched = Watched {
                    id: execution.id.clone(),
                    status: execution.status(),
                    pid: execution.pid,
                };
                if tx.send((seen, watched)).is_err() {
                    return;
                }
            }
        });
        Ok(rx)
    }
}

pub use std::time::Instant;

/// What a watcher needs of a change.
#[derive(Debug, Clone)]
pub struct Watched {
    pub id: String,
    pub status: ExecutionStatus,
    pub pid: Option<i32>,
}

/// Whether the status is final.
/// Runs `rep` `reps` times; the first failure is noted (after `what`) and
/// ends the series, keeping the repetitions measured so far.
pub async fn repeat<T, Fut>(
    reps: usize,
    what: &str,
    notes: &mut Vec<String>,
    mut rep: impl FnMut() -> Fut,
) -> Vec<T>
where
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let mut done = Vec::new();
    for _ in 0..reps {
        match rep().await {
            Ok(value) => done.push(value),
            Err(e) => {
                notes.push(format!("{what}: {e:#}"));
                break;
            }
        }
    }
    done
}

pub fn is_final(status: ExecutionStatus) -> bool {
    matches!(
        status,
        ExecutionStatus::Succeeded
            | ExecutionStatus::Failed
            | ExecutionStatus::Cancelled
            | ExecutionStatus::TimedOut
    )
}

/// Microseconds between two protobuf timestamps (`b − a`).
pub fn micros_between(a: &prost_types::Timestamp, b: &prost_types::Timestamp) -> f64 {
    let a = a.seconds as f64 * 1e6 + f64::from(a.nanos) / 1e3;
    let b = b.seconds as f64 * 1e6 + f64::from(b.nanos) / 1e3;
    b - a
}

/// Nanoseconds since the epoch.
pub fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

/// Median and spread of repetitions.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

/// Median, min and max of `values` (which must not be empty).
pub fn summarize(values: &[f64]) -> Summary {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    Summary {
        median,
        min: sorted.first().copied().unwrap_or(f64::NAN),
        max: sorted.last().copied().unwrap_or(f64::NAN),
        n,
    }
}

impl Summary {
    /// `median (min–max, n=…)` with `digits` decimals.
    pub fn show(&self, digits: usize) -> String {
        format!(
            "{:.d$} ({:.d$}–{:.d$}, n={})",
            self.median,
            self.min,
            self.max,
            self.n,
            d = digits
        )
    }
}

/// The `p`-th percentile (0–100) of `values`, nearest rank.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// p50/p95/p99 of each repetition, summarized across repetitions.
#[derive(Debug, Clone, Copy)]
pub struct Percentiles {
    pub p50: Summary,
    pub p95: Summary,
    pub p99: Summary,
    pub max: Summary,
}

/// Percentiles of several repetitions' samples.
pub fn percentiles(reps: &[Vec<f64>]) -> Percentiles {
    let of = |p: f64| summarize(&reps.iter().map(|r| percentile(r, p)).collect::<Vec<_>>());
    Percentiles {
        p50: of(50.0),
        p95: of(95.0),
        p99: of(99.0),
        max: of(100.0),
    }
}

/// Output of a command, trimmed ("?" when it fails).
pub fn command_output(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "?".into())
}

/// The machine and software the figures were measured on, as Markdown.
pub async fn machine_description() -> String {
    let lscpu = command_output("lscpu", &[]);
    let field = |name: &str| {
        lscpu
            .lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
            .unwrap_or_else(|| "?".into())
    };
    let mem_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0);
    let postgres = postgres_version().await;
    let mut out = String::new();
    let _ = writeln!(out, "| | |\n|---|---|");
    let _ = writeln!(out, "| CPU | {} |", field("Model name:"));
    let _ = writeln!(
        out,
        "| cores | {} online CPUs ({} thread(s) per core) |",
        command_output("nproc", &[]),
        field("Thread(s) per core:")
    );
    let _ = writeln!(
        out,
        "| memory | {:.1} GiB |",
        mem_kib as f64 / 1024.0 / 1024.0
    );
    let _ = writeln!(out, "| kernel | {} |", command_output("uname", &["-sr"]));
    let _ = writeln!(
        out,
        "| rustc | {} |",
        command_output("rustc", &["--version"])
    );
    let _ = writeln!(out, "| PostgreSQL | {postgres} |");
    let _ = writeln!(out, "| node | {} |", command_output("node", &["--version"]));
    let commit = command_output("git", &["rev-parse", "--short=12", "HEAD"]);
    let dirty = !command_output("git", &["status", "--porcelain", "--untracked-files=no"])
        .trim()
        .is_empty();
    let _ = writeln!(
        out,
        "| git commit | {commit}{} |",
        if dirty { " (with local changes)" } else { "" }
    );
    let _ = writeln!(
        out,
        "| date | {} |",
        command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
    );
    let _ = writeln!(
        out,
        "| load average at start | {} |",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    out
}

async fn postgres_version() -> String {
    let url = std::env::var("AMON_TEST_DATABASE_URL")
        .unwrap_or_else(|_| amon_tests::db::DEFAULT_POSTGRES_URL.into());
    let Ok(conn) = amon_tests::db::connect(&url).await else {
        return "unreachable".into();
    };
    let version = conn
        .query_one_raw(Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SHOW server_version",
        ))
        .await
        .ok()
        .flatten()
        .and_then(|row| row.try_get_by_index::<String>(0).ok())
        .unwrap_or_else(|| "?".into());
    conn.close().await.ok();
    version
}

/// Resident memory (VmRSS, KiB) of a process.
pub fn rss_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// CPU time (user + system) a process has used so far.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let hz: u64 = command_output("getconf", &["CLK_TCK"])
        .parse()
        .unwrap_or(100);
    Some(Duration::from_secs_f64(ticks as f64 / hz as f64))
}
