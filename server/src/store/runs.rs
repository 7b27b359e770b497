//! The worker side of a run: claiming queued work, attempt tokens, start,
//! output bookkeeping, finish (with automatic retries), heartbeats, the stale
//! reaper, and reconciliation after a reconnect.
//!
//! Every report from a worker carries the attempt token it was assigned.
//! The token is derived from the row (retry count and start time), so a run
//! that was reaped, requeued or claimed again has a new token, and a late
//! report from the old attempt is refused instead of completing someone
//! else's run.

use std::collections::HashMap;

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect, Statement,
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    Actor, DEFAULT_WORKSPACE_ID, Runs, StoreError, StoreResult,
    execution_state::{self, AttemptKey, approval_covers, approved_among, is_terminal},
    validate::{quoted, storable, storable_json},
};
use crate::entity::{
    agent_capabilities, agents, enums::ExecutionStatus, executions, tasks, worker_heartbeats,
};

/// A run handed to a worker.
#[derive(Debug, Clone)]
pub struct ClaimedRun {
    /// The execution, now running on the worker.
    pub execution: executions::Model,
    /// Its task.
    pub task: tasks::Model,
    /// Its agent.
    pub agent: agents::Model,
    /// Its capability.
    pub capability: agent_capabilities::Model,
    /// The token the worker must quote in every report.
    pub attempt_token: String,
    /// A continuation's parent session, which the run resumes.
    pub parent_session_ref: Option<String>,
}

/// Now, at the microsecond precision both backends store, so a token
/// computed before the write equals one computed from the row read back.
fn now_micros() -> DateTime<FixedOffset> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros())
        .unwrap_or(now)
        .into()
}

#[derive(Debug, FromQueryResult)]
struct CandidateId {
    id: Uuid,
}

/// How many of the oldest runnable queued executions the claim orders by
/// priority. The data model's queue index is `(status, created_at)`, and
/// priority lives on the task, so a strict priority order over the whole
/// queue means sorting all of it on every claim (6.7 ms per claim with
/// 10,000 queued on SQLite, which capped throughput near 150 runs/s). The
/// window is an index walk: 0.3 ms at any queue length.
pub const PRIORITY_WINDOW: u64 = 256;

/// Queued executions whose dependencies are all done, in claim order: the
/// [`PRIORITY_WINDOW`] oldest runnable ones, by task priority, then age. On
/// PostgreSQL the rows are locked with `SKIP LOCKED`, so concurrent claimers
/// (several servers) never take the same execution.
async fn candidates<C: ConnectionTrait>(conn: &C, limit: u64) -> StoreResult<Vec<Uuid>> {
    // The derived table (with its own LIMIT) is computed first on both
    // backends: an index walk that stops after the window.
    const RUNNABLE: &str = "
        FROM (
            SELECT q.id FROM executions q
            WHERE q.status = 'queued'
              AND NOT EXISTS (
                  SELECT 1 FROM task_dependencies d
                  JOIN tasks dt ON dt.id = d.depends_on_task_id
                  WHERE d.task_id = q.task_id AND dt.status <> 'done')
            ORDER BY q.created_at, q.id
            LIMIT {window}) w
        JOIN executions e ON e.id = w.id
        JOIN tasks t ON t.id = e.task_id
        WHERE t.workspace_id = {workspace}
          -- Checked again on the locked row: PostgreSQL re-evaluates this
          -- row's conditions after waiting for a concurrent claimer, so a
          -- run another server just took is skipped, not returned running.
          AND e.status = 'queued'
        ORDER BY t.priority, e.created_at, e.id
        LIMIT {limit}";
    let backend = conn.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => format!(
            "SELECT e.id {} FOR UPDATE OF e SKIP LOCKED",
            RUNNABLE
                .replace("{window}", &PRIORITY_WINDOW.to_string())
                .replace("{workspace}", "$1")
                .replace("{limit}", "$2")
        ),
        _ => format!(
            "SELECT e.id {}",
            RUNNABLE
                .replace("{window}", &PRIORITY_WINDOW.to_string())
                .replace("{workspace}", "?")
                .replace("{limit}", "?")
        ),
    };
    let rows = CandidateId::find_by_statement(Statement::from_sql_and_values(
        backend,
        sql,
        [DEFAULT_WORKSPACE_ID.into(), (limit as i64).into()],
    ))
    .all(conn)
    .await?;
    Ok(rows.into_iter().map(|row| row.id).collect())
}

/// The execution a worker's report is about, if the report's attempt is the
/// current one and the worker owns it; FAILED_PRECONDITION otherwise.
async fn current_attempt<C: ConnectionTrait>(
    conn: &C,
    key: &AttemptKey,
    worker_id: &str,
    execution_id: Uuid,
    token: &str,
) -> StoreResult<executions::Model> {
    let execution = executions::Entity::find_by_id(execution_id)
        .one(conn)
        .await?
        .ok_or_else(|| StoreError::not_found("execution", execution_id))?;
    let current = matches!(
        execution.status,
        ExecutionStatus::Running | ExecutionStatus::Cancelling
    ) && execution.worker_id.as_deref() == Some(worker_id)
        && key.verify(&execution, token);
    if current {
        Ok(execution)
    } else {
        Err(StoreError::FailedPrecondition(format!(
            "stale attempt {} of execution {execution_id}: the run is no longer this worker's",
            quoted(token)
        )))
    }
}

/// How a worker says a run ended.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// Succeeded, failed, timed out or cancelled.
    pub status: ExecutionStatus,
    /// Exit code, if the child exited.
    pub exit_code: Option<i32>,
    /// One-line error.
    pub error: Option<String>,
}

/// Puts a running execution back in the queue for its next attempt.
async fn requeue(
    txn: &mut super::WriteTxn,
    execution: executions::Model,
    exit_code: Option<i32>,
    error: Option<String>,
    mut details: Value,
) -> StoreResult<executions::Model> {
    let next_attempt = execution.retry_count + 1;
    if let Value::Object(map) = &mut details {
        map.insert("requeued_for_attempt".into(), json!(next_attempt + 1));
    }
    execution_state::transition(
        txn,
        execution,
        ExecutionStatus::Queued,
        Actor::system(),
        details,
        |row| {
            row.retry_count = Set(next_attempt);
            row.exit_code = Set(exit_code);
            row.error = Set(error);
            row.worker_id = Set(None);
            row.pid = Set(None);
            row.heartbeat_at = Set(None);
        },
    )
    .await
}

/// A run taken from a silent worker.
#[derive(Debug, Clone)]
pub struct Reaped {
    /// The execution after reaping (queued again, failed or cancelled).
    pub execution: executions::Model,
    /// The worker that went silent.
    pub worker_id: Option<String>,
    /// The attempt it held, so it can be told to stop if it comes back.
    pub attempt_token: Option<String>,
}

/// What registration decided about a worker's runs.
#[derive(Debug, Clone, Default)]
pub struct Reconciled {
    /// Runs the worker keeps: (execution, token).
    pub keep: Vec<(executions::Model, String)>,
    /// Kept runs cancelled while it was away: to be stopped (it still
    /// reports how they end).
    pub cancel: Vec<(Uuid, String)>,
    /// Reported runs that are not its own any more: to be killed and
    /// forgotten.
    pub disown: Vec<(Uuid, String)>,
    /// Runs on record for it that it did not report, requeued or failed.
    pub lost: Vec<Reaped>,
}

impl Runs<'_> {
    /// The execution a worker's report is about, if the report's attempt is
    /// the current one and the worker owns it; FAILED_PRECONDITION otherwise.
    pub async fn current_attempt(
        &self,
        worker_id: &str,
        execution_id: Uuid,
        token: &str,
    ) -> StoreResult<executions::Model> {
        current_attempt(
            self.0.db(),
            self.0.attempts(),
            worker_id,
            execution_id,
            token,
        )
        .await
    }

    /// Claims up to `limit` runnable executions for `worker_id` in one
    /// transaction: queued, dependencies done, approved where required, agent
    /// active and (when `agent_slugs` is not empty) one the worker runs, and the
    /// agent below `max_concurrent` running executions across all workers.
    pub async fn claim(
        &self,
        worker_id: &str,
        agent_slugs: &[String],
        limit: usize,
        log_path: impl Fn(Uuid) -> String,
    ) -> StoreResult<Vec<ClaimedRun>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut txn = self.0.write().await?;
        // Over-fetch: some candidates may be held back by concurrency or approval.
        let ids = candidates(&*txn, (limit * 4 + 16) as u64).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let queued = executions::Entity::find()
            .filter(executions::Column::Id.is_in(ids.clone()))
            .all(&*txn)
            .await?;
        let mut by_id: HashMap<Uuid, executions::Model> =
            queued.into_iter().map(|e| (e.id, e)).collect();
        let agent_ids: Vec<Uuid> = by_id.values().map(|e| e.agent_id).collect();
        // Lock the agents (in id order, so claimers never deadlock) while their
        // running counts are checked and raised: max_concurrent holds across
        // every worker and server.
        let mut agent_query = agents::Entity::find()
            .filter(agents::Column::Id.is_in(agent_ids.clone()))
            .order_by_asc(agents::Column::Id);
        if txn.get_database_backend() == DbBackend::Postgres {
            agent_query = agent_query.lock_exclusive();
        }
        let agents: HashMap<Uuid, agents::Model> = agent_query
            .all(&*txn)
            .await?
            .into_iter()
            .map(|a| (a.id, a))
            .collect();
        let capabilities: HashMap<Uuid, agent_capabilities::Model> =
            agent_capabilities::Entity::find()
                .filter(
                    agent_capabilities::Column::Id
                        .is_in(by_id.values().map(|e| e.capability_id).collect::<Vec<_>>()),
                )
                .all(&*txn)
                .await?
                .into_iter()
                .map(|c| (c.id, c))
                .collect();
        let mut active: HashMap<Uuid, i64> = executions::Entity::find()
            .select_only()
            .column(executions::Column::AgentId)
            .column_as(executions::Column::Id.count(), "active")
            .filter(executions::Column::AgentId.is_in(agent_ids))
            .filter(
                executions::Column::Status
                    .is_in([ExecutionStatus::Running, ExecutionStatus::Cancelling]),
            )
            .group_by(executions::Column::AgentId)
            .into_tuple::<(Uuid, i64)>()
            .all(&*txn)
            .await?
            .into_iter()
            .collect();
        let needs_approval: Vec<&executions::Model> = by_id
            .values()
            .filter(|e| {
                capabilities
                    .get(&e.capability_id)
                    .is_some_and(|c| c.requires_approval)
            })
            .collect();
        let approved = approved_among(&*txn, &needs_approval).await?;

        let mut claimed = Vec::new();
        for id in ids {
            if claimed.len() == limit {
                break;
            }
            let Some(execution) = by_id.remove(&id) else {
                continue;
            };
            if execution.status != ExecutionStatus::Queued {
                // Another server claimed it between the two reads: skip it
                // rather than fail the whole round on its transition.
                continue;
            }
            let (Some(agent), Some(capability)) = (
                agents.get(&execution.agent_id),
                capabilities.get(&execution.capability_id),
            ) else {
                continue;
            };
            let running = active.entry(agent.id).or_default();
            let approval = approved.get(&execution.id);
            let runnable = agent.is_active
                && capability.is_enabled
                && (agent_slugs.is_empty() || agent_slugs.contains(&agent.slug))
                && *running < i64::from(agent.max_concurrent)
                && (!capability.requires_approval || approval.is_some());
            if !runnable {
                continue;
            }
            let task = tasks::Entity::find_by_id(execution.task_id)
                .one(&*txn)
                .await?
                .ok_or_else(|| StoreError::not_found("task", execution.task_id))?;
            if let Some(approval) = approval
                && !approval_covers(approval, &task)
            {
                let error = "the task's working directory or environment overrides changed \
                             after this run was approved; approve a new run";
                execution_state::transition(
                    &mut txn,
                    execution,
                    ExecutionStatus::Failed,
                    Actor::system(),
                    json!({ "error": error }),
                    |row| row.error = Set(Some(error.to_owned())),
                )
                .await?;
                continue;
            }
            *running += 1;
            let started = now_micros();
            let path = log_path(execution.id);
            let execution = execution_state::transition(
                &mut txn,
                execution,
                ExecutionStatus::Running,
                Actor::system(),
                json!({ "worker_id": worker_id }),
                |row| {
                    row.worker_id = Set(Some(worker_id.to_owned()));
                    row.started_at = Set(Some(started));
                    row.heartbeat_at = Set(Some(started));
                    row.log_file_path = Set(Some(path));
                    row.pid = Set(None);
                    row.exit_code = Set(None);
                    row.ended_at = Set(None);
                },
            )
            .await?;
            let attempt_token = self.0.attempts().token(&execution).unwrap_or_default();
            let parent_session_ref = match execution.parent_execution_id {
                Some(parent_id) => executions::Entity::find_by_id(parent_id)
                    .one(&*txn)
                    .await?
                    .and_then(|parent| parent.session_ref),
                None => None,
            };
            claimed.push(ClaimedRun {
                execution,
                task,
                agent: agent.clone(),
                capability: capability.clone(),
                attempt_token,
                parent_session_ref,
            });
        }
        txn.commit().await?;
        Ok(claimed)
    }

    /// Records the child's pid (and tmux session) once it started.
    pub async fn started(
        &self,
        worker_id: &str,
        execution_id: Uuid,
        token: &str,
        pid: i32,
        tmux_session_name: Option<String>,
    ) -> StoreResult<()> {
        self.record(
            worker_id,
            execution_id,
            token,
            executions::Entity::update_many()
                .col_expr(executions::Column::Pid, Some(pid).into())
                .col_expr(
                    executions::Column::TmuxSessionName,
                    tmux_session_name.map(storable).into(),
                ),
        )
        .await
    }

    /// Records the agent's session id.
    pub async fn session_detected(
        &self,
        worker_id: &str,
        execution_id: Uuid,
        token: &str,
        session_ref: String,
    ) -> StoreResult<()> {
        self.record(
            worker_id,
            execution_id,
            token,
            executions::Entity::update_many().col_expr(
                executions::Column::SessionRef,
                Some(storable(session_ref)).into(),
            ),
        )
        .await
    }

    /// Applies `update` to a run's row if the report's attempt is current.
    async fn record(
        &self,
        worker_id: &str,
        execution_id: Uuid,
        token: &str,
        update: sea_orm::UpdateMany<executions::Entity>,
    ) -> StoreResult<()> {
        let txn = self.0.write().await?;
        current_attempt(&*txn, self.0.attempts(), worker_id, execution_id, token).await?;
        update
            .filter(executions::Column::Id.eq(execution_id))
            .exec(&*txn)
            .await?;
        txn.commit().await
    }

    /// Stores the log's size and line count as the log store knows them.
    pub async fn log_progress(
        &self,
        execution_id: Uuid,
        byte_size: u64,
        line_count: u64,
    ) -> StoreResult<()> {
        executions::Entity::update_many()
            .col_expr(executions::Column::LogByteSize, (byte_size as i64).into())
            .col_expr(
                executions::Column::LogLineCount,
                (line_count.min(i32::MAX as u64) as i32).into(),
            )
            .col_expr(
                executions::Column::LogUpdatedAt,
                Some(DateTime::<FixedOffset>::from(Utc::now())).into(),
            )
            .filter(executions::Column::Id.eq(execution_id))
            .exec(self.0.db())
            .await?;
        Ok(())
    }

    /// Applies a worker's result. A failed or timed-out run with retries left
    /// goes back to the queue with `retry_count + 1`.
    pub async fn finish(
        &self,
        worker_id: &str,
        execution_id: Uuid,
        token: &str,
        outcome: RunOutcome,
    ) -> StoreResult<executions::Model> {
        let outcome = RunOutcome {
            error: outcome.error.map(storable),
            ..outcome
        };
        if !is_terminal(outcome.status) {
            return Err(StoreError::invalid(
                "finished.status",
                "must be succeeded, failed, timed_out or cancelled",
            ));
        }
        let mut txn = self.0.write().await?;
        let execution =
            current_attempt(&*txn, self.0.attempts(), worker_id, execution_id, token).await?;
        let details = json!({
            "worker_id": worker_id,
            "exit_code": outcome.exit_code,
            "error": outcome.error,
        });
        let retry = matches!(
            outcome.status,
            ExecutionStatus::Failed | ExecutionStatus::TimedOut
        ) && execution.status == ExecutionStatus::Running
            && execution.retry_count < execution.max_retries;
        let updated = if retry {
            requeue(
                &mut txn,
                execution,
                outcome.exit_code,
                outcome.error,
                details,
            )
            .await?
        } else {
            execution_state::transition(
                &mut txn,
                execution,
                outcome.status,
                Actor::system(),
                details,
                |row| {
                    row.exit_code = Set(outcome.exit_code);
                    row.error = Set(outcome.error.clone());
                },
            )
            .await?
        };
        txn.commit().await?;
        Ok(updated)
    }

    /// Records a worker's heartbeat: its runs' `heartbeat_at` and its row in
    /// `worker_heartbeats`.
    pub async fn heartbeat(
        &self,
        worker_id: &str,
        running: &[Uuid],
        metadata: Value,
    ) -> StoreResult<()> {
        let metadata = storable_json(metadata);
        let now: DateTime<FixedOffset> = Utc::now().into();
        let txn = self.0.write().await?;
        if !running.is_empty() {
            executions::Entity::update_many()
                .col_expr(executions::Column::HeartbeatAt, Some(now).into())
                .filter(executions::Column::Id.is_in(running.to_vec()))
                .filter(executions::Column::WorkerId.eq(worker_id))
                .filter(
                    executions::Column::Status
                        .is_in([ExecutionStatus::Running, ExecutionStatus::Cancelling]),
                )
                .exec(&*txn)
                .await?;
        }
        let row = worker_heartbeats::ActiveModel {
            worker_id: Set(worker_id.to_owned()),
            last_seen_at: Set(now),
            current_executions: Set(running.len() as i32),
            metadata: Set(metadata),
        };
        worker_heartbeats::Entity::insert(row)
            .on_conflict(
                sea_orm::sea_query::OnConflict::column(worker_heartbeats::Column::WorkerId)
                    .update_columns([
                        worker_heartbeats::Column::LastSeenAt,
                        worker_heartbeats::Column::CurrentExecutions,
                        worker_heartbeats::Column::Metadata,
                    ])
                    .to_owned(),
            )
            .exec(&*txn)
            .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Reaps runs whose worker has been silent for `silence` (the stale
    /// window and the time its worker takes to stop them itself): requeued
    /// while retries remain, else failed; a run being cancelled is
    /// cancelled. Nothing is reaped before `grace_until`: a server that
    /// started gives every worker one full window from its own start, or its
    /// own downtime would count as the workers' silence (a 9 s restart with a
    /// 10 s window failed 6 of 6 healthy runs).
    pub async fn reap_stale(
        &self,
        stale_window: std::time::Duration,
        silence: std::time::Duration,
        grace_until: DateTime<Utc>,
    ) -> StoreResult<Vec<Reaped>> {
        let now = Utc::now();
        if now < grace_until {
            return Ok(Vec::new());
        }
        let cutoff: DateTime<FixedOffset> =
            (now - TimeDelta::from_std(silence).unwrap_or(TimeDelta::MAX)).into();
        let mut txn = self.0.write().await?;
        let stale = executions::Entity::find()
            .filter(
                executions::Column::Status
                    .is_in([ExecutionStatus::Running, ExecutionStatus::Cancelling]),
            )
            .filter(executions::Column::HeartbeatAt.lt(cutoff))
            .all(&*txn)
            .await?;
        let mut reaped = Vec::with_capacity(stale.len());
        for execution in stale {
            let silent_worker = execution.worker_id.clone().unwrap_or_default();
            let error = format!(
                "worker {silent_worker} went silent for more than {}s",
                stale_window.as_secs()
            );
            reaped.push(self.lose(&mut txn, execution, error).await?);
        }
        txn.commit().await?;
        Ok(reaped)
    }

    /// A run its worker no longer has (silent past the window, or restarted
    /// without it): requeued while retries remain, else failed; a run being
    /// cancelled is cancelled.
    async fn lose(
        &self,
        txn: &mut super::WriteTxn,
        execution: executions::Model,
        error: String,
    ) -> StoreResult<Reaped> {
        let old_worker = execution.worker_id.clone();
        let old_token = self.0.attempts().token(&execution);
        let details = json!({
            "worker_id": old_worker.clone().unwrap_or_default(),
            "reaped": true,
            "error": error,
        });
        let updated = if execution.status == ExecutionStatus::Cancelling {
            execution_state::transition(
                txn,
                execution,
                ExecutionStatus::Cancelled,
                Actor::system(),
                details,
                |row| row.error = Set(Some(error.clone())),
            )
            .await?
        } else if execution.retry_count < execution.max_retries {
            requeue(txn, execution, None, Some(error), details).await?
        } else {
            execution_state::transition(
                txn,
                execution,
                ExecutionStatus::Failed,
                Actor::system(),
                details,
                |row| row.error = Set(Some(format!("{error}; no retries left"))),
            )
            .await?
        };
        Ok(Reaped {
            execution: updated,
            worker_id: old_worker,
            attempt_token: old_token,
        })
    }

    /// Sorts a registering worker's runs: those still its own are kept (and
    /// their heartbeat refreshed: registering is hearing from it), a kept run
    /// cancelled meanwhile is also to be stopped, reported runs that are not
    /// its own any more are disowned. Runs on record for this worker that it
    /// did not report are gone with a previous connection or incarnation:
    /// they are requeued (or failed) at once instead of waiting for the
    /// reaper's window.
    pub async fn reconcile(
        &self,
        worker_id: &str,
        reported: &[(Uuid, String)],
    ) -> StoreResult<Reconciled> {
        let mut txn = self.0.write().await?;
        let mut verdict = Reconciled::default();
        for (execution_id, token) in reported {
            match current_attempt(&*txn, self.0.attempts(), worker_id, *execution_id, token).await {
                Ok(execution) => {
                    if execution.status == ExecutionStatus::Cancelling {
                        verdict.cancel.push((*execution_id, token.clone()));
                    }
                    verdict.keep.push((execution, token.clone()));
                }
                Err(StoreError::Database(err)) => return Err(StoreError::Database(err)),
                Err(_) => verdict.disown.push((*execution_id, token.clone())),
            }
        }
        let kept: Vec<Uuid> = verdict.keep.iter().map(|(e, _)| e.id).collect();
        if !kept.is_empty() {
            executions::Entity::update_many()
                .col_expr(
                    executions::Column::HeartbeatAt,
                    Some(DateTime::<FixedOffset>::from(Utc::now())).into(),
                )
                .filter(executions::Column::Id.is_in(kept.clone()))
                .exec(&*txn)
                .await?;
        }
        let forgotten = executions::Entity::find()
            .filter(executions::Column::WorkerId.eq(worker_id))
            .filter(
                executions::Column::Status
                    .is_in([ExecutionStatus::Running, ExecutionStatus::Cancelling]),
            )
            .filter(executions::Column::Id.is_not_in(kept))
            .all(&*txn)
            .await?;
        for execution in forgotten {
            let error = format!(
                "worker {} registered again without this run (it restarted, or the run never \
                 reached it)",
                quoted(worker_id)
            );
            verdict
                .lost
                .push(self.lose(&mut txn, execution, error).await?);
        }
        txn.commit().await?;
        Ok(verdict)
    }

    /// Gives back a claimed run that never reached its worker (the worker
    /// vanished between the claim and the send): queued again, same attempt count.
    pub async fn release_claim(
        &self,
        worker_id: &str,
        execution_id: Uuid,
        token: &str,
    ) -> StoreResult<()> {
        let mut txn = self.0.write().await?;
        let execution =
            current_attempt(&*txn, self.0.attempts(), worker_id, execution_id, token).await?;
        execution_state::transition(
            &mut txn,
            execution,
            ExecutionStatus::Queued,
            Actor::system(),
            json!({ "worker_id": worker_id, "released": true }),
            |row| {
                row.worker_id = Set(None);
                row.heartbeat_at = Set(None);
                row.started_at = Set(None);
            },
        )
        .await?;
        txn.commit().await
    }

    /// Fails a claimed run that cannot be started as stored.
    pub async fn fail_unstartable(
        &self,
        worker_id: &str,
        execution_id: Uuid,
        token: &str,
        error: String,
    ) -> StoreResult<()> {
        let mut txn = self.0.write().await?;
        let execution =
            current_attempt(&*txn, self.0.attempts(), worker_id, execution_id, token).await?;
        execution_state::transition(
            &mut txn,
            execution,
            ExecutionStatus::Failed,
            Actor::system(),
            json!({ "error": error }),
            |row| row.error = Set(Some(error.clone())),
        )
        .await?;
        txn.commit().await
    }
}
