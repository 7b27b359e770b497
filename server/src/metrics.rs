//! What this server process did, for Prometheus (`GET /metrics`, served by
//! `http::metrics`).
//!
//! Events are recorded where they happen through the `metrics` facade into
//! one Prometheus recorder per process, installed on first use (the server
//! binary is one process per server; tests that run store code in one
//! process share it, which is harmless). Each metric has one recording
//! function here, so every name, label and unit is written in this file
//! only, and [`describe`] documents them all.
//!
//! Figures that live in the database (runs by status, the queue) and those
//! the engine holds in memory (connected workers, free slots) are not kept
//! here: `http::metrics` reads them when scraped, so they cannot drift, and
//! an idle server does nothing periodic for its metrics.
//!
//! Labels: `agent` is the agent's slug (agents are a registry people keep,
//! tens of them, not a per-run value); never a run, task or worker id.

use std::{
    collections::HashMap,
    sync::{
        LazyLock, OnceLock, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use chrono::Utc;
pub use metrics::SharedString;
use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use uuid::Uuid;

use crate::entity::{enums::ExecutionStatus, executions};

/// Bounds of latency histograms on the database's scale (claims,
/// transactions), in seconds.
const DATABASE_SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// Bounds of the dispatch latency, in seconds: milliseconds when workers
/// are free, minutes when runs wait for a slot.
const DISPATCH_SECONDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];
/// Bounds of the batch size histogram (at most `store::batch::MAX_BATCH`).
const BATCH_SIZES: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// Histogram samples wait in the recorder until a scrape folds them into
/// their buckets; without scrapes they would pile up, so every this many
/// samples the recorder folds them itself.
const UPKEEP_EVERY: u64 = 4096;

/// The process's recorder, installed on first use.
static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();
/// Histogram samples recorded since the last upkeep.
static SAMPLES: AtomicU64 = AtomicU64::new(0);
/// Agents' slugs by id, so counters recorded where only the id is at hand
/// carry the slug (see [`agent_label`]).
static AGENTS: LazyLock<RwLock<HashMap<Uuid, SharedString>>> = LazyLock::new(Default::default);

/// The handle that renders this process's metrics, installing the recorder
/// the first time. If another recorder was installed globally first (only
/// possible in a test process embedding the server), the handle renders
/// nothing of the events: `/metrics` still shows what it reads when scraped.
pub fn handle() -> &'static PrometheusHandle {
    RECORDER.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(BATCH_SIZE.into()), BATCH_SIZES)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(DISPATCH.into()), DISPATCH_SECONDS)
            })
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Suffix("_seconds".into()), DATABASE_SECONDS)
            })
            .expect("bucket lists are not empty")
            .build_recorder();
        let handle = recorder.handle();
        match metrics::set_global_recorder(recorder) {
            Ok(()) => {
                describe();
                // Counters without labels show from the start, at 0.
                counter!(BATCHES, "result" => "committed").absolute(0);
                counter!(BATCHES, "result" => "failed").absolute(0);
                counter!(LOG_RECEIVED).absolute(0);
                counter!(LOG_WRITTEN).absolute(0);
                gauge!(FOLLOWERS).set(0.0);
            }
            Err(_) => tracing::warn!(
                "a metrics recorder was installed before the server's own: /metrics shows only \
                 the figures read when scraped"
            ),
        }
        handle
    })
}

fn installed() {
    handle();
}

const CLAIMS: &str = "amon_claims_total";
const CLAIM_ROUND: &str = "amon_claim_duration_seconds";
const DISPATCH: &str = "amon_dispatch_latency_seconds";
const FINISHED: &str = "amon_runs_finished_total";
const RETRIES: &str = "amon_run_retries_total";
const REAPED: &str = "amon_runs_reaped_total";
const BATCHES: &str = "amon_write_batches_total";
const BATCH_SIZE: &str = "amon_write_batch_size";
const TRANSACTION: &str = "amon_db_transaction_seconds";
const LOG_RECEIVED: &str = "amon_log_bytes_received_total";
const LOG_WRITTEN: &str = "amon_log_bytes_written_total";
const FOLLOWERS: &str = "amon_log_followers";

/// Documents every metric recorded here (`# HELP` lines).
fn describe() {
    describe_counter!(
        CLAIMS,
        Unit::Count,
        "Runs claimed for a worker by this server."
    );
    describe_histogram!(
        CLAIM_ROUND,
        Unit::Seconds,
        "One claim round (every worker with free slots at once), as the dispatcher waits for \
         it: from handing it to the writer to its commit."
    );
    describe_histogram!(
        DISPATCH,
        Unit::Seconds,
        "From a run's creation to its assignment handed to its worker's stream (first attempts \
         only: includes any wait for a free slot, an approval or a dependency)."
    );
    describe_counter!(
        FINISHED,
        Unit::Count,
        "Runs that ended after being claimed, by outcome (succeeded, failed, timed_out, \
         cancelled); retried attempts are counted in amon_run_retries_total instead."
    );
    describe_counter!(
        RETRIES,
        Unit::Count,
        "Attempts that ended and put their run back in the queue, by reason (failed, \
         timed_out, worker_lost)."
    );
    describe_counter!(
        REAPED,
        Unit::Count,
        "Runs taken from their worker, by reason: silent (no heartbeat for the stale window) \
         or worker_restarted (it registered again without them)."
    );
    describe_counter!(
        BATCHES,
        Unit::Count,
        "Group-commit batches of the hot writes, by result (committed, failed)."
    );
    describe_histogram!(
        BATCH_SIZE,
        Unit::Count,
        "Pieces of work (reports, claims, queued runs) applied in one batch."
    );
    describe_histogram!(
        TRANSACTION,
        Unit::Seconds,
        "Time of a write transaction, from asking for it (SQLite: the wait for the write lock \
         included) to its commit, by kind (batch: the group-commit writer)."
    );
    describe_counter!(
        LOG_RECEIVED,
        Unit::Bytes,
        "Log bytes received from workers (a chunk resent after a reconnect counts again)."
    );
    describe_counter!(
        LOG_WRITTEN,
        Unit::Bytes,
        "Log bytes stored (each byte once, resends not counted)."
    );
    describe_gauge!(
        FOLLOWERS,
        Unit::Count,
        "Clients following a run's log live (StreamLogs with follow) on this server."
    );
}

/// Notes an observation; every [`UPKEEP_EVERY`] the recorder folds the
/// samples waiting into their buckets.
fn sampled() {
    if SAMPLES.fetch_add(1, Ordering::Relaxed) % UPKEEP_EVERY == UPKEEP_EVERY - 1 {
        handle().run_upkeep();
    }
}

/// The label of an agent known by id: its slug when known (see
/// [`remember_agent`]), else `None` and the caller looks it up.
pub fn known_agent(agent_id: Uuid) -> Option<SharedString> {
    AGENTS
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(&agent_id)
        .cloned()
}

/// Remembers an agent's slug for the counters recorded by id.
pub fn remember_agent(agent_id: Uuid, slug: &str) {
    if known_agent(agent_id).as_deref() == Some(slug) {
        return;
    }
    AGENTS
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .insert(agent_id, SharedString::from(slug.to_owned()));
}

/// A run was claimed for a worker.
pub fn claimed(agent_id: Uuid, agent: &str) {
    installed();
    remember_agent(agent_id, agent);
    counter!(CLAIMS, "agent" => agent.to_owned()).increment(1);
}

/// A claim round took `elapsed`, from the dispatcher's point of view.
pub fn claim_round(elapsed: Duration) {
    installed();
    histogram!(CLAIM_ROUND).record(elapsed);
    sampled();
}

/// A run's assignment was handed to its worker's stream (retries are left
/// out: when they were queued again is not on record).
pub fn dispatched(agent: &str, run: &executions::Model) {
    if run.retry_count > 0 {
        return;
    }
    installed();
    let waited = (Utc::now() - run.created_at.to_utc())
        .to_std()
        .unwrap_or_default();
    histogram!(DISPATCH, "agent" => agent.to_owned()).record(waited);
    sampled();
}

/// The label of an execution status.
fn status_label(status: ExecutionStatus) -> &'static str {
    match status {
        ExecutionStatus::Queued => "queued",
        ExecutionStatus::Running => "running",
        ExecutionStatus::Cancelling => "cancelling",
        ExecutionStatus::Succeeded => "succeeded",
        ExecutionStatus::Failed => "failed",
        ExecutionStatus::Cancelled => "cancelled",
        ExecutionStatus::TimedOut => "timed_out",
    }
}

/// The label of an agent known by id: its slug when known, else its id.
pub fn agent_or_id(agent_id: Uuid) -> SharedString {
    known_agent(agent_id).unwrap_or_else(|| SharedString::from(agent_id.to_string()))
}

/// An attempt of a claimed run ended, and the run is now `status`: queued
/// again (a retry; `attempt` is how the attempt ended, `None` when its
/// worker was lost) or ended for good.
pub fn run_ended(agent: SharedString, status: ExecutionStatus, attempt: Option<ExecutionStatus>) {
    installed();
    if status == ExecutionStatus::Queued {
        let reason = attempt.map_or("worker_lost", status_label);
        counter!(RETRIES, "agent" => agent, "reason" => reason).increment(1);
    } else {
        counter!(FINISHED, "agent" => agent, "outcome" => status_label(status)).increment(1);
    }
}

/// A run was taken from its worker: `silent` when the reaper found its
/// heartbeat stale, else its worker registered again without it.
pub fn run_reaped(agent: SharedString, silent: bool) {
    installed();
    let reason = if silent { "silent" } else { "worker_restarted" };
    counter!(REAPED, "agent" => agent, "reason" => reason).increment(1);
}

/// A group-commit batch of `size` pieces held its transaction for
/// `elapsed`, and committed or not.
pub fn write_batch(size: usize, elapsed: Duration, committed: bool) {
    installed();
    let result = if committed { "committed" } else { "failed" };
    counter!(BATCHES, "result" => result).increment(1);
    histogram!(BATCH_SIZE).record(size as f64);
    histogram!(TRANSACTION, "kind" => "batch").record(elapsed);
    sampled();
    sampled();
}

/// A write transaction of `kind` held the database for `elapsed`.
pub fn transaction(kind: &'static str, elapsed: Duration) {
    installed();
    histogram!(TRANSACTION, "kind" => kind).record(elapsed);
    sampled();
}

/// A worker sent `bytes` of a run's output.
pub fn log_bytes_received(bytes: usize) {
    installed();
    counter!(LOG_RECEIVED).increment(bytes as u64);
}

/// `bytes` of a run's output were stored for the first time.
pub fn log_bytes_written(bytes: usize) {
    installed();
    counter!(LOG_WRITTEN).increment(bytes as u64);
}

/// A client following a log live, counted in `amon_log_followers` while it
/// lives.
pub struct Follower(());

impl Follower {
    /// Counts a follower until the value is dropped.
    pub fn start() -> Self {
        installed();
        gauge!(FOLLOWERS).increment(1.0);
        Self(())
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        gauge!(FOLLOWERS).decrement(1.0);
    }
}
