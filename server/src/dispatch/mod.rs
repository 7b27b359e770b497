//! The execution engine's live half: the registry of connected workers, the
//! dispatcher that pushes runnable work to them the moment it exists, and
//! the reaper of runs whose worker went silent.
//!
//! The dispatcher sleeps until woken: by any committed change to tasks or
//! executions (a new run, an approval, a dependency done, a slot freed) and
//! by workers granting slots. A slow safety tick covers changes made by
//! other servers sharing a PostgreSQL database.

mod assign;
pub mod hub;

use std::{sync::Arc, time::Duration};

use amon_proto::v1::connect_response::Message;
use tokio::sync::watch;
use uuid::Uuid;

pub use self::{assign::config_to_proto, hub::WorkerHub};
use crate::{
    logs::LogStore,
    store::{Store, runs, worker_config::WorkerSettings},
};

/// How often the dispatcher looks for work nobody told it about (another
/// server's writes). Local changes wake it at once.
const SAFETY_TICK: Duration = Duration::from_secs(2);

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
        }
    }

    /// The tuning in force.
    pub fn settings(&self) -> WorkerSettings {
        *self.settings.borrow()
    }

    /// Puts new tuning in force and tells every connected worker.
    pub fn set_settings(&self, settings: WorkerSettings) {
        self.settings.send_replace(settings);
        self.workers
            .broadcast(Message::Config(assign::config_to_proto(&settings)));
    }

    /// Starts the dispatcher and the reaper; they stop with the runtime.
    pub fn spawn_background(&self) {
        tokio::spawn(self.clone().dispatch_loop());
        tokio::spawn(self.clone().reap_loop());
    }

    async fn dispatch_loop(self) {
        let mut committed = self.store.events().subscribe();
        loop {
            if let Err(err) = self.dispatch_once().await {
                tracing::error!(error = %err, "dispatching failed; retrying shortly");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            tokio::select! {
                _ = self.workers.woken() => {}
                changed = committed.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(SAFETY_TICK) => {}
            }
        }
    }

    /// Claims work for every worker with free slots until none is left.
    pub async fn dispatch_once(&self) -> anyhow::Result<()> {
        for worker in self.workers.hungry() {
            let logs = self.logs.clone();
            let claimed = runs::claim_runs(
                &self.store,
                &worker.worker_id,
                &worker.agent_slugs,
                worker.credits,
                |id| logs.path(id).display().to_string(),
            )
            .await?;
            for run in claimed {
                let execution_id = run.execution.id;
                let token = run.attempt_token.clone();
                match assign::assign_message(self, &run, &worker.worker_id).await {
                    Ok(message) => {
                        if !self.workers.assign(
                            &worker.worker_id,
                            worker.session,
                            execution_id,
                            message,
                        ) {
                            // The worker vanished between claim and send.
                            runs::release_claim(
                                &self.store,
                                &worker.worker_id,
                                execution_id,
                                &token,
                            )
                            .await?;
                        }
                    }
                    Err(error) => {
                        // The run cannot be started as stored (e.g. its
                        // capability changed since it was queued): fail it
                        // with the reason rather than retrying forever.
                        runs::fail_unstartable(
                            &self.store,
                            &worker.worker_id,
                            execution_id,
                            &token,
                            error,
                        )
                        .await?;
                    }
                }
            }
        }
        Ok(())
    }

    async fn reap_loop(self) {
        let period = |window: Duration| {
            (window / 4).clamp(Duration::from_millis(100), Duration::from_secs(15))
        };
        let mut tuning = self.settings.subscribe();
        loop {
            let mut next = tokio::time::Instant::now() + period(self.settings().stale_window);
            // A shorter stale window set meanwhile takes effect now, not
            // after the old (up to 15 s) period.
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(next) => break,
                    changed = tuning.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        let window = tuning.borrow_and_update().stale_window;
                        next = next.min(tokio::time::Instant::now() + period(window));
                    }
                }
            }
            let window = self.settings().stale_window;
            match runs::reap_stale(&self.store, window).await {
                Ok(reaped) => {
                    for run in reaped {
                        let id = run.execution.id;
                        tracing::warn!(execution_id = %id, status = ?run.execution.status, "reaped a run whose worker went silent");
                        if let Some(worker) = &run.worker_id {
                            self.workers.run_ended(worker, id);
                            if let Some(token) = run.attempt_token {
                                // If it is still connected, stop the orphan.
                                self.workers.cancel(
                                    worker,
                                    id,
                                    token,
                                    "reaped: the worker went silent",
                                );
                            }
                        }
                        self.logs.close(id);
                    }
                }
                Err(err) => tracing::error!(error = %err, "reaping stale runs failed"),
            }
        }
    }

    /// Asks the owner of a run being cancelled to stop it.
    pub fn stop_run(
        &self,
        worker_id: &str,
        execution_id: Uuid,
        attempt_token: String,
        reason: &str,
    ) {
        if !self
            .workers
            .cancel(worker_id, execution_id, attempt_token, reason)
        {
            tracing::info!(%execution_id, worker_id, "owner not connected; the cancel is re-sent when it reconnects or the run is reaped");
        }
    }
}
