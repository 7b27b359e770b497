//! The execution engine's live half: the registry of connected workers, the
//! dispatcher that pushes runnable work to them the moment it exists, and
//! the reaper of runs whose worker went silent.
//!
//! The dispatcher sleeps until woken: by any committed change to tasks or
//! executions (a new run, an approval, a dependency done, a slot freed),
//! this server's or, on PostgreSQL, another's (`store::cluster`), and by
//! workers granting slots or coming back to life. Nothing else wakes it: an
//! idle server does no work and makes no query.

mod assign;
pub mod discover;
pub mod discover_llm;
pub mod follow;
pub mod hub;
pub mod messages;
mod session;
pub mod terminal;
pub mod worktree;

use std::{sync::Arc, time::Duration};

use tokio::sync::watch;
use uuid::Uuid;

pub use self::{
    assign::tmux_session_name,
    hub::{WorkerHub, WorkerInfo},
    messages::{FromWorker, Outgoing, ToWorker},
    session::Session,
};
use crate::{
    entity::worker_heartbeats,
    logs::LogStore,
    store::{Store, StoreResult, runs::ClaimRequest, worker_config::WorkerSettings},
};

/// Largest assignment sent to a worker: gRPC peers refuse messages over
/// 4 MiB by default, and one that cannot be delivered used to break the
/// worker's stream on every attempt while the run sat in `running`. Field
/// caps keep real assignments far below; a run over it fails with the reason.
const MAX_ASSIGNMENT_BYTES: usize = 3 * 1024 * 1024;

/// Past the moment a heartbeat turns stale, when the reaper looks (the
/// database's `<` cutoff must find it stale, and clocks round).
const REAP_MARGIN: chrono::TimeDelta = chrono::TimeDelta::milliseconds(100);
/// After the database failed to say when to reap, when to ask again.
const REAP_RETRY: Duration = Duration::from_secs(1);

/// Sleeps until `due`; forever when there is none.
async fn sleep_until_some(due: Option<tokio::time::Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

/// How long a worker counts as alive after it was last heard from: two
/// heartbeats and a second. A worker frozen with SIGSTOP keeps its TCP
/// stream open, so the stream alone said nothing: it kept getting work,
/// which waited there while another worker was idle.
pub fn alive_within(heartbeat_interval: Duration) -> Duration {
    heartbeat_interval * 2 + Duration::from_secs(1)
}

/// The engine: store, logs, workers and the tuning in force.
#[derive(Clone)]
pub struct Engine {
    /// The database.
    pub store: Store,
    /// Execution logs.
    pub logs: LogStore,
    /// Connected workers.
    pub workers: WorkerHub,
    settings: Arc<watch::Sender<WorkerSettings>>,
    /// Agent Monitor MCP server that `mcp_enabled` agents are launched to reach.
    pub mcp_server_url: Option<String>,
    /// What log followers may hold in memory, all together.
    followers: follow::FollowersBudget,
    /// When this server started: the reaper gives every worker one full
    /// stale window from here.
    started_at: chrono::DateTime<chrono::Utc>,
    /// Discovery scans waiting for their workers' answers.
    pub discoveries: discover::Discoveries,
    /// Worktree requests waiting for their workers' answers.
    pub worktree_calls: worktree::WorktreeCalls,
    /// Terminals attached to runs on this server's workers.
    pub terminals: terminal::Terminals,
}

impl Engine {
    /// An engine over `store` and `logs` with `settings` in force.
    pub fn new(store: Store, logs: LogStore, settings: WorkerSettings) -> Self {
        Self {
            store,
            logs,
            workers: WorkerHub::default(),
            settings: Arc::new(watch::Sender::new(settings)),
            mcp_server_url: None,
            followers: follow::FollowersBudget::default(),
            started_at: chrono::Utc::now(),
            discoveries: discover::Discoveries::default(),
            worktree_calls: worktree::WorktreeCalls::default(),
            terminals: terminal::Terminals::default(),
        }
    }

    /// The tuning in force.
    pub fn settings(&self) -> WorkerSettings {
        *self.settings.borrow()
    }

    /// Puts new tuning in force and tells every connected worker.
    pub fn set_settings(&self, settings: WorkerSettings) {
        self.settings.send_replace(settings);
        self.workers.broadcast(ToWorker::Config(settings));
    }

    /// Starts the dispatcher, the reaper and the relay of other servers'
    /// changes; they stop with the runtime.
    pub fn spawn_background(&self) {
        tokio::spawn(self.clone().dispatch_loop());
        tokio::spawn(self.clone().reap_loop());
        tokio::spawn(self.clone().relay_cancels());
        tokio::spawn(self.clone().follow_config());
    }

    /// A run cancelled through another server, whose worker is connected
    /// here, is told to stop (the cancel reaches the owner wherever it was
    /// asked).
    async fn relay_cancels(self) {
        let mut elsewhere = self.store.cluster().changed_elsewhere();
        loop {
            let execution = match elsewhere.recv().await {
                Ok(execution) => execution,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(
                        missed,
                        "fell behind other servers' changes; cancels are re-sent when workers reconnect"
                    );
                    continue;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            if execution.status != crate::entity::enums::ExecutionStatus::Cancelling {
                continue;
            }
            let Some(worker_id) = execution.worker_id.as_deref() else {
                continue;
            };
            if !self.workers.is_connected(worker_id) {
                continue;
            }
            if let Some(token) = self.store.attempt_token(&execution) {
                let reason = execution.error.as_deref().unwrap_or("cancelled");
                self.stop_run(worker_id, execution.id, token, reason);
            }
        }
    }

    /// Tuning changed through another server is put in force here too.
    async fn follow_config(self) {
        let mut changes = self.store.cluster().config_changes();
        while changes.changed().await.is_ok() {
            match self.store.worker_config().load().await {
                Ok(settings) => {
                    if settings != self.settings() {
                        self.set_settings(settings);
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "reading the worker tuning another server changed")
                }
            }
        }
    }

    async fn dispatch_loop(self) {
        let mut committed = self.store.event_hub().subscribe();
        loop {
            if let Err(err) = self.dispatch_once().await {
                tracing::error!(error = %err, "dispatching failed; retrying shortly");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            tokio::select! {
                _ = self.workers.woken() => {}
                changed = committed.changed() => if changed.is_err() { return },
            }
        }
    }

    /// Claims work for every worker with free slots, in one claim round
    /// (one batched write, whatever the number of workers).
    pub async fn dispatch_once(&self) -> anyhow::Result<()> {
        let runs = self.store.runs();
        let hungry = self
            .workers
            .hungry(alive_within(self.settings().heartbeat_interval));
        if hungry.is_empty() {
            return Ok(());
        }
        let requests = hungry
            .iter()
            .map(|worker| ClaimRequest {
                worker_id: worker.worker_id.clone(),
                agent_slugs: worker.agent_slugs.clone(),
                limit: worker.credits,
            })
            .collect();
        let logs = self.logs.clone();
        let began = std::time::Instant::now();
        let claimed = runs
            .claim(requests, Arc::new(move |id| logs.location(id)))
            .await?;
        crate::metrics::claim_round(began.elapsed());
        for (index, run) in claimed {
            crate::metrics::claimed(run.agent.id, &run.agent.slug);
            let worker = &hungry[index];
            let execution_id = run.execution.id;
            let token = run.attempt_token.clone();
            let assignment = assign::assignment(self, &run, &worker.worker_id)
                .await
                .and_then(|assignment| {
                    let size = assignment.approximate_size();
                    if size > MAX_ASSIGNMENT_BYTES {
                        Err(format!(
                            "the run's assignment is about {size} bytes, more than a \
                             worker's stream carries ({MAX_ASSIGNMENT_BYTES}): shorten the \
                             agent's base args, the task's environment or the prompt"
                        ))
                    } else {
                        Ok(assignment)
                    }
                });
            match assignment {
                Ok(assignment) => {
                    if self.workers.assign(
                        &worker.worker_id,
                        worker.session,
                        execution_id,
                        &token,
                        ToWorker::Assign(Box::new(assignment)),
                    ) {
                        crate::metrics::dispatched(&run.agent.slug, &run.execution);
                    } else {
                        // The worker vanished between claim and send.
                        // A registration that came meanwhile may have
                        // requeued it already: nothing left to release.
                        self.logs.close(execution_id);
                        if let Err(err @ crate::store::StoreError::Database(_)) = runs
                            .release_claim(&worker.worker_id, execution_id, &token)
                            .await
                        {
                            return Err(err.into());
                        }
                    }
                }
                Err(error) => {
                    // The run cannot be started as stored (e.g. its
                    // capability changed since it was queued): fail it
                    // with the reason rather than retrying forever.
                    runs.fail_unstartable(&worker.worker_id, execution_id, &token, error)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Reaps the runs whose worker went silent. It reads when the oldest
    /// heartbeat of a running run turns stale and sleeps until then; with
    /// nothing running it sleeps until a run starts (here, or on another
    /// server over the database): an idle server makes no periodic query.
    /// (It used to open a write transaction every stale window / 4.)
    async fn reap_loop(self) {
        let mut tuning = self.settings.subscribe();
        let mut started = self.store.execution_hub().runs_started();
        loop {
            // Seen before reading: a run started after the read wakes it.
            started.borrow_and_update();
            let settings = self.settings();
            let window = settings.stale_window;
            // A worker silent for the window stops its own runs (it fences
            // itself), which takes up to the cancel grace: requeue only once
            // that is done, and a second more for the messages in flight, so
            // two copies never run at once.
            let silence = window + settings.cancel_grace + Duration::from_secs(1);
            let grace_until = self.started_at
                + chrono::TimeDelta::from_std(window).unwrap_or(chrono::TimeDelta::MAX);
            let due = match self.store.runs().oldest_heartbeat().await {
                Ok(None) => None,
                Ok(Some(oldest)) => {
                    let stale_at = oldest
                        + chrono::TimeDelta::from_std(silence).unwrap_or(chrono::TimeDelta::MAX)
                        + REAP_MARGIN;
                    let wait = (stale_at.max(grace_until) - chrono::Utc::now())
                        .to_std()
                        .unwrap_or_default();
                    Some(tokio::time::Instant::now() + wait)
                }
                Err(err) => {
                    tracing::error!(error = %err, "reading the oldest heartbeat failed");
                    Some(tokio::time::Instant::now() + REAP_RETRY)
                }
            };
            tokio::select! {
                _ = sleep_until_some(due) => self.reap_now(window, silence, grace_until).await,
                changed = started.changed(), if due.is_none() => if changed.is_err() { return },
                // A shorter stale window set meanwhile takes effect now.
                changed = tuning.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    tuning.borrow_and_update();
                }
            }
        }
    }

    async fn reap_now(
        &self,
        window: Duration,
        silence: Duration,
        grace_until: chrono::DateTime<chrono::Utc>,
    ) {
        match self
            .store
            .runs()
            .reap_stale(window, silence, grace_until)
            .await
        {
            Ok(reaped) => {
                for run in reaped {
                    let id = run.execution.id;
                    tracing::warn!(execution_id = %id, status = ?run.execution.status, "reaped a run whose worker went silent");
                    if let Some(worker) = &run.worker_id {
                        self.workers
                            .run_ended(worker, id, run.attempt_token.as_deref());
                        if let Some(token) = run.attempt_token {
                            // If it is still connected, stop the orphan.
                            self.workers.cancel(
                                worker,
                                id,
                                token,
                                "reaped: the worker went silent",
                                true,
                            );
                        }
                    }
                    self.logs.close(id);
                }
            }
            Err(err) => tracing::error!(error = %err, "reaping stale runs failed"),
        }
    }

    /// Asks the owner of a run being cancelled to stop it (it still reports
    /// how the run ended).
    pub fn stop_run(
        &self,
        worker_id: &str,
        execution_id: Uuid,
        attempt_token: String,
        reason: &str,
    ) {
        self.tell_to_stop(worker_id, execution_id, attempt_token, reason, false);
    }

    /// Tells a worker that a run is no longer its own: it kills it at once
    /// and forgets it (nothing more about that attempt is accepted, so a
    /// worker waiting for acknowledgements would wait forever).
    pub fn disown_run(
        &self,
        worker_id: &str,
        execution_id: Uuid,
        attempt_token: String,
        reason: &str,
    ) {
        self.tell_to_stop(worker_id, execution_id, attempt_token, reason, true);
    }

    fn tell_to_stop(
        &self,
        worker_id: &str,
        execution_id: Uuid,
        attempt_token: String,
        reason: &str,
        forget: bool,
    ) {
        if !self
            .workers
            .cancel(worker_id, execution_id, attempt_token, reason, forget)
        {
            tracing::info!(%execution_id, worker_id, "owner not connected; the cancel is re-sent when it reconnects or the run is reaped");
        }
    }
}

/// A worker as `ListWorkers` shows it: connected now, seen through its last
/// heartbeat, or both.
#[derive(Debug, Clone)]
pub struct KnownWorker {
    /// Its registration, while its stream is open.
    pub connected: Option<WorkerInfo>,
    /// Its last heartbeat row, if it ever sent one.
    pub last_heartbeat: Option<worker_heartbeats::Model>,
}

impl Engine {
    /// The workers connected now (here, or to another server over the
    /// database), by id, then (unless `connected_only`) those only seen
    /// before, by id.
    pub async fn known_workers(&self, connected_only: bool) -> StoreResult<Vec<KnownWorker>> {
        let mut seen: std::collections::HashMap<String, worker_heartbeats::Model> = self
            .store
            .workers()
            .seen()
            .await?
            .into_iter()
            .map(|row| (row.worker_id.clone(), row))
            .collect();
        let mut connected = self.workers.workers();
        // Those connected to the other servers over the database too.
        let elsewhere = self
            .store
            .workers()
            .connected_elsewhere(alive_within(self.settings().heartbeat_interval))
            .await?;
        for worker in elsewhere {
            if connected
                .iter()
                .any(|here| here.worker_id == worker.registered.worker_id)
            {
                continue;
            }
            let crate::store::workers::ConnectedElsewhere {
                registered,
                last_seen_at,
                running,
            } = worker;
            let crate::store::workers::Registered {
                worker_id,
                hostname,
                version,
                slots,
                labels,
                agent_slugs,
                draining,
            } = registered;
            connected.push(WorkerInfo {
                worker_id,
                hostname,
                version,
                slots,
                agent_slugs,
                labels,
                draining,
                running: running.into_iter().collect(),
                last_seen_at,
                instance_id: String::new(),
            });
        }
        connected.sort_by(|a, b| a.worker_id.cmp(&b.worker_id));
        let mut known: Vec<KnownWorker> = connected
            .into_iter()
            .map(|info| KnownWorker {
                last_heartbeat: seen.remove(&info.worker_id),
                connected: Some(info),
            })
            .collect();
        if !connected_only {
            let mut offline: Vec<worker_heartbeats::Model> = seen.into_values().collect();
            offline.sort_by(|a, b| a.worker_id.cmp(&b.worker_id));
            known.extend(offline.into_iter().map(|row| KnownWorker {
                connected: None,
                last_heartbeat: Some(row),
            }));
        }
        Ok(known)
    }
}
