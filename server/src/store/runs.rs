//! The worker side of a run: claiming queued work, attempt tokens, start,
//! output bookkeeping, finish (with automatic retries), heartbeats, the stale
//! reaper, and reconciliation after a reconnect.
//!
//! Every report from a worker carries the attempt token it was assigned.
//! The token is derived from the row (retry count and start time), so a run
//! that was reaped, requeued or claimed again has a new token, and a late
//! report from the old attempt is refused instead of completing someone
//! else's run.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement,
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    Actor, DEFAULT_WORKSPACE_ID, Runs, StoreError, StoreResult,
    batch::{Answer, OnCommit},
    columns::InputContext,
    execution_state::{self, AttemptKey, approval_covers, approved_among, is_terminal},
    stats,
    validate::{quoted, storable, storable_json},
    worktrees::{self, Isolation},
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

/// How many of the oldest runnable queued executions the claim orders by
/// priority. The data model's queue index is `(status, created_at)`, and
/// priority lives on the task, so a strict priority order over the whole
/// queue means sorting all of it on every claim (6.7 ms per claim with
/// 10,000 queued on SQLite, which capped throughput near 150 runs/s). The
/// window is an index walk: 0.3 ms at any queue length.
pub const PRIORITY_WINDOW: u64 = 256;

/// Queued executions that could start now, in claim order: the
/// [`PRIORITY_WINDOW`] oldest ones by task priority, then age. "Could start"
/// is decided in the statement, over sets computed once per claim: the agent
/// is active and below `max_concurrent`, the capability is enabled, an
/// approval is on record where one is required, and every dependency is
/// done. Filtering after the window instead let 256 runs of an agent at its
/// limit (or awaiting approval) fill it, and every other agent's runs queued
/// behind them waited until that queue drained. On PostgreSQL the rows are
/// locked with `SKIP LOCKED`, so concurrent claimers (several servers) never
/// take the same execution.
async fn candidates<C: ConnectionTrait>(
    conn: &C,
    limit: u64,
) -> StoreResult<Vec<executions::Model>> {
    // The derived table (with its own LIMIT) is computed first on both
    // backends: an index walk over the queue that stops after the window.
    const RUNNABLE: &str = "
        WITH blocked AS (
            -- Per agent, an index seek on (agent_id, status): counting the
            -- running ones by status alone scanned every execution (6 ms a
            -- claim with 100,000 queued on SQLite; 0.2 ms this way).
            SELECT a.id FROM agents a
            WHERE NOT a.is_active OR a.max_concurrent <= (
                SELECT COUNT(*) FROM executions r
                WHERE r.agent_id = a.id AND r.status IN ('running', 'cancelling')))
        SELECT e.* FROM (
            SELECT q.id FROM executions q
            JOIN agent_capabilities c ON c.id = q.capability_id
            WHERE q.status = 'queued'
              AND q.agent_id NOT IN (SELECT id FROM blocked)
              AND c.is_enabled
              AND (NOT c.requires_approval OR EXISTS (
                  SELECT 1 FROM task_events ev
                  WHERE ev.task_id = q.task_id AND ev.event_type = '{approved}'
                    AND {approval_names_run}))
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
    let sql = RUNNABLE
        .replace("{approved}", execution_state::APPROVED_EVENT)
        .replace("{window}", &PRIORITY_WINDOW.to_string());
    let sql = match backend {
        DbBackend::Postgres => format!(
            "{} FOR UPDATE OF e SKIP LOCKED",
            sql.replace(
                "{approval_names_run}",
                "ev.payload->>'execution_id' = q.id::text"
            )
            .replace("{workspace}", "$1")
            .replace("{limit}", "$2")
        ),
        // Ids are 16-byte blobs on SQLite; the approval names the run in
        // its text form.
        _ => sql
            .replace(
                "{approval_names_run}",
                "replace(json_extract(ev.payload, '$.execution_id'), '-', '') = lower(hex(q.id))",
            )
            .replace("{workspace}", "?")
            .replace("{limit}", "?"),
    };
    // The whole rows, in claim order: no second read by id.
    Ok(executions::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(
            backend,
            sql,
            [DEFAULT_WORKSPACE_ID.into(), (limit as i64).into()],
        ))
        .all(conn)
        .await?)
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

/// A hungry worker in a claim round.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    /// The worker.
    pub worker_id: String,
    /// The agents it runs; empty for any.
    pub agent_slugs: Vec<String>,
    /// Its free slots.
    pub limit: usize,
}

/// Where a run's log is kept, recorded on its row at the claim.
pub type LogPath = std::sync::Arc<dyn Fn(Uuid) -> String + Send + Sync>;

/// Stores a log's size and line count on its run's row.
async fn write_log_progress<C: ConnectionTrait>(
    conn: &C,
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
        .exec(conn)
        .await?;
    Ok(())
}

/// Rows by id, read in one statement.
async fn by_id<E, C>(
    conn: &C,
    column: E::Column,
    ids: Vec<Uuid>,
) -> StoreResult<HashMap<Uuid, E::Model>>
where
    E: EntityTrait,
    E::Model: HasId,
    C: ConnectionTrait,
{
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(E::find()
        .filter(column.is_in(ids))
        .all(conn)
        .await?
        .into_iter()
        .map(|row| (row.id(), row))
        .collect())
}

/// Rows with a `Uuid` primary key.
trait HasId {
    fn id(&self) -> Uuid;
}

macro_rules! has_id {
    ($($module:ident),+) => {$(
        impl HasId for $module::Model {
            fn id(&self) -> Uuid {
                self.id
            }
        }
    )+};
}
has_id!(executions, tasks, agents, agent_capabilities);

/// The claim round, inside the batch's transaction: every read it needs is
/// one statement over the whole candidate set (executions, agents locked in
/// id order, capabilities, running counts, approvals, tasks, parents), and
/// each run claimed costs its transition (an update and its audit event).
async fn claim_in(
    txn: &mut super::WriteTxn,
    key: AttemptKey,
    requests: Vec<ClaimRequest>,
    log_path: LogPath,
) -> StoreResult<Vec<(usize, ClaimedRun)>> {
    let wanted: usize = requests.iter().map(|r| r.limit).sum();
    // Over-fetch: some candidates may be held back (another worker's agent,
    // two runs of an agent with one slot left).
    let rows = candidates(&**txn, (wanted * 2 + 16) as u64).await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = rows.iter().map(|e| e.id).collect();
    let mut queued: HashMap<Uuid, executions::Model> =
        rows.into_iter().map(|e| (e.id, e)).collect();
    let mut agent_ids: Vec<Uuid> = queued.values().map(|e| e.agent_id).collect();
    agent_ids.sort();
    agent_ids.dedup();
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
        .all(&**txn)
        .await?
        .into_iter()
        .map(|a| (a.id, a))
        .collect();
    let capabilities = by_id::<agent_capabilities::Entity, _>(
        &**txn,
        agent_capabilities::Column::Id,
        queued.values().map(|e| e.capability_id).collect(),
    )
    .await?;
    let tasks = by_id::<tasks::Entity, _>(
        &**txn,
        tasks::Column::Id,
        queued.values().map(|e| e.task_id).collect(),
    )
    .await?;
    // Read in this transaction: moving them to in progress needs no second read.
    for task in tasks.values() {
        txn.note_task_status(task.id, task.status);
    }
    let parents = by_id::<executions::Entity, _>(
        &**txn,
        executions::Column::Id,
        queued
            .values()
            .filter_map(|e| e.parent_execution_id)
            .collect(),
    )
    .await?;
    // A run of a task whose worktree a worker holds goes to that worker
    // only: its retries and continuations find the files the earlier runs
    // left there (another worker would start a fresh worktree from the
    // base). It waits, queued, while that worker is away.
    let in_worktree: HashMap<Uuid, Uuid> = queued
        .values()
        .filter(|e| match (tasks.get(&e.task_id), agents.get(&e.agent_id)) {
            (Some(task), Some(agent)) => {
                Isolation::worktree(&InputContext::from_json(&task.input_context), agent)
            }
            _ => false,
        })
        .map(|e| (e.id, e.task_id))
        .collect();
    let holders = worktrees::holders(
        &**txn,
        in_worktree
            .values()
            .copied()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect(),
    )
    .await?;
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
        .all(&**txn)
        .await?
        .into_iter()
        .collect();
    let needs_approval: Vec<&executions::Model> = queued
        .values()
        .filter(|e| {
            capabilities
                .get(&e.capability_id)
                .is_some_and(|c| c.requires_approval)
        })
        .collect();
    let approved = approved_among(&**txn, &needs_approval).await?;

    let mut credits: Vec<usize> = requests.iter().map(|r| r.limit).collect();
    let mut claimed = Vec::new();
    for id in ids {
        if credits.iter().all(|c| *c == 0) {
            break;
        }
        let Some(execution) = queued.remove(&id) else {
            continue;
        };
        if execution.status != ExecutionStatus::Queued {
            // Another server claimed it between the two reads: skip it
            // rather than fail the whole round on its transition.
            continue;
        }
        let (Some(agent), Some(capability), Some(task)) = (
            agents.get(&execution.agent_id),
            capabilities.get(&execution.capability_id),
            tasks.get(&execution.task_id),
        ) else {
            continue;
        };
        let running = active.entry(agent.id).or_default();
        let approval = approved.get(&execution.id);
        let runnable = agent.is_active
            && capability.is_enabled
            && *running < i64::from(agent.max_concurrent)
            && (!capability.requires_approval || approval.is_some());
        if !runnable {
            continue;
        }
        // The worker with the most free slots among those running this
        // agent (the one holding the task's worktree, if its runs use one).
        let holder = in_worktree
            .get(&execution.id)
            .and_then(|task_id| holders.get(task_id));
        let Some(worker) = (0..requests.len())
            .filter(|&i| credits[i] > 0)
            .filter(|&i| {
                requests[i].agent_slugs.is_empty() || requests[i].agent_slugs.contains(&agent.slug)
            })
            .filter(|&i| holder.is_none_or(|holder| requests[i].worker_id == *holder))
            .max_by_key(|&i| (credits[i], std::cmp::Reverse(i)))
        else {
            continue;
        };
        if let Some(approval) = approval
            && !approval_covers(approval, task)
        {
            let error = "the task's working directory or environment overrides changed \
                         after this run was approved; approve a new run";
            execution_state::transition(
                txn,
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
        credits[worker] -= 1;
        let worker_id = requests[worker].worker_id.clone();
        let started = now_micros();
        let path = log_path(execution.id);
        let parent_session_ref = execution
            .parent_execution_id
            .and_then(|parent| parents.get(&parent))
            .and_then(|parent| parent.session_ref.clone());
        let execution = execution_state::transition(
            txn,
            execution,
            ExecutionStatus::Running,
            Actor::system(),
            json!({ "worker_id": worker_id }),
            |row| {
                row.worker_id = Set(Some(worker_id.clone()));
                row.started_at = Set(Some(started));
                row.heartbeat_at = Set(Some(started));
                row.log_file_path = Set(Some(path));
                row.pid = Set(None);
                row.exit_code = Set(None);
                row.ended_at = Set(None);
            },
        )
        .await?;
        let attempt_token = key.token(&execution).unwrap_or_default();
        claimed.push((
            worker,
            ClaimedRun {
                execution,
                task: task.clone(),
                agent: agent.clone(),
                capability: capability.clone(),
                attempt_token,
                parent_session_ref,
            },
        ));
    }
    Ok(claimed)
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
    /// What the run changed in its task's git worktree.
    pub worktree: Option<super::worktrees::WorktreeSummary>,
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

    /// One claim round for every hungry worker, in one batched write: up to
    /// each request's `limit` runnable executions (see [`candidates`]), the
    /// agent one the worker runs (any, when its `agent_slugs` is empty) and
    /// below `max_concurrent` running executions across all workers and
    /// servers. Runs go to the worker with the most free slots left, so a
    /// burst spreads over the workers. Answers (request index, run) pairs.
    pub fn claim(
        &self,
        requests: Vec<ClaimRequest>,
        log_path: LogPath,
    ) -> Answer<Vec<(usize, ClaimedRun)>> {
        if requests.iter().all(|r| r.limit == 0) {
            return Answer::ready(Ok(Vec::new()));
        }
        let key = self.0.attempts().clone();
        self.0
            .submit(move |txn| Box::pin(claim_in(txn, key, requests, log_path)))
    }

    /// Records the child's pid (and tmux session) once it started.
    pub fn started(
        &self,
        worker_id: &str,
        execution_id: Uuid,
        token: &str,
        pid: i32,
        tmux_session_name: Option<String>,
    ) -> Answer<()> {
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
    }

    /// Records the agent's session id.
    pub fn session_detected(
        &self,
        worker_id: &str,
        execution_id: Uuid,
        token: &str,
        session_ref: String,
    ) -> Answer<()> {
        self.record(
            worker_id,
            execution_id,
            token,
            executions::Entity::update_many().col_expr(
                executions::Column::SessionRef,
                Some(storable(session_ref)).into(),
            ),
        )
    }

    /// Shows what a running agent is going through (a retry notice) as its
    /// execution's `error`, or clears it: the row has no other place for a
    /// live status, and the run's end writes `error` for good. Only while
    /// `running`: a run being cancelled keeps what it has. Published, so
    /// `WatchExecutions` shows it live (notices are rare: only when the
    /// agent's trouble changes).
    pub fn run_status(
        &self,
        worker_id: &str,
        execution_id: Uuid,
        token: &str,
        status: Option<String>,
    ) -> Answer<()> {
        let key = self.0.attempts().clone();
        let (worker_id, token) = (worker_id.to_owned(), token.to_owned());
        self.0.submit(move |txn| {
            Box::pin(async move {
                let mut execution =
                    current_attempt(&**txn, &key, &worker_id, execution_id, &token).await?;
                if execution.status != ExecutionStatus::Running {
                    return Ok(());
                }
                let status = status.map(storable);
                executions::Entity::update_many()
                    .col_expr(executions::Column::Error, status.clone().into())
                    .filter(executions::Column::Id.eq(execution_id))
                    .filter(executions::Column::Status.eq(ExecutionStatus::Running))
                    .exec(&**txn)
                    .await?;
                execution.error = status;
                txn.execution_changed(execution);
                Ok(())
            })
        })
    }

    /// Applies `update` to a run's row if the report's attempt is current.
    fn record(
        &self,
        worker_id: &str,
        execution_id: Uuid,
        token: &str,
        update: sea_orm::UpdateMany<executions::Entity>,
    ) -> Answer<()> {
        let key = self.0.attempts().clone();
        let (worker_id, token) = (worker_id.to_owned(), token.to_owned());
        self.0.submit(move |txn| {
            Box::pin(async move {
                current_attempt(&**txn, &key, &worker_id, execution_id, &token).await?;
                update
                    .filter(executions::Column::Id.eq(execution_id))
                    .exec(&**txn)
                    .await?;
                Ok(())
            })
        })
    }

    /// Stores the log's size and line count as the log store knows them.
    pub fn log_progress(&self, execution_id: Uuid, byte_size: u64, line_count: u64) -> Answer<()> {
        self.0.submit(move |txn| {
            Box::pin(async move {
                write_log_progress(&**txn, execution_id, byte_size, line_count).await
            })
        })
    }

    /// Applies a worker's result, with the log's final size and line count.
    /// A failed or timed-out run with retries left goes back to the queue
    /// with `retry_count + 1`.
    pub fn finish(
        &self,
        worker_id: &str,
        execution_id: Uuid,
        token: &str,
        outcome: RunOutcome,
        log: (u64, u64),
    ) -> Answer<executions::Model> {
        let outcome = RunOutcome {
            error: outcome.error.map(storable),
            ..outcome
        };
        if !is_terminal(outcome.status) {
            return Answer::ready(Err(StoreError::invalid(
                "finished.status",
                "must be succeeded, failed, timed_out or cancelled",
            )));
        }
        let key = self.0.attempts().clone();
        let (worker_id, token) = (worker_id.to_owned(), token.to_owned());
        let attempt = outcome.status;
        let counted: OnCommit<executions::Model> = Box::new(move |run| {
            let agent = crate::metrics::agent_or_id(run.agent_id);
            crate::metrics::run_ended(agent, run.status, Some(attempt))
        });
        self.0.submit_then(counted, move |txn| {
            Box::pin(async move {
                let execution =
                    current_attempt(&**txn, &key, &worker_id, execution_id, &token).await?;
                stats::agent_label(&**txn, execution.agent_id).await; // for `counted`
                if let Some(summary) = &outcome.worktree {
                    super::worktrees::record(
                        &**txn,
                        execution_id,
                        execution.task_id,
                        &worker_id,
                        summary,
                    )
                    .await?;
                }
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
                if retry {
                    write_log_progress(&**txn, execution_id, log.0, log.1).await?;
                    requeue(txn, execution, outcome.exit_code, outcome.error, details).await
                } else {
                    // The log's final counters ride on the transition's own
                    // update: one statement less per run.
                    execution_state::transition(
                        txn,
                        execution,
                        outcome.status,
                        Actor::system(),
                        details,
                        |row| {
                            row.exit_code = Set(outcome.exit_code);
                            row.error = Set(outcome.error.clone());
                            row.log_byte_size = Set(log.0 as i64);
                            row.log_line_count = Set(log.1.min(i32::MAX as u64) as i32);
                            row.log_updated_at = Set(Some(Utc::now().into()));
                        },
                    )
                    .await
                }
            })
        })
    }

    /// Records a worker's heartbeat: its runs' `heartbeat_at` and its row in
    /// `worker_heartbeats`.
    pub fn heartbeat(&self, worker_id: &str, running: Vec<Uuid>, metadata: Value) -> Answer<()> {
        let metadata = storable_json(metadata);
        let worker_id = worker_id.to_owned();
        self.0.submit(move |txn| {
            Box::pin(async move {
                let now: DateTime<FixedOffset> = Utc::now().into();
                if !running.is_empty() {
                    executions::Entity::update_many()
                        .col_expr(executions::Column::HeartbeatAt, Some(now).into())
                        .filter(executions::Column::Id.is_in(running.clone()))
                        .filter(executions::Column::WorkerId.eq(worker_id.as_str()))
                        .filter(
                            executions::Column::Status
                                .is_in([ExecutionStatus::Running, ExecutionStatus::Cancelling]),
                        )
                        .exec(&**txn)
                        .await?;
                }
                let row = worker_heartbeats::ActiveModel {
                    worker_id: Set(worker_id.clone()),
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
                    .exec(&**txn)
                    .await?;
                Ok(())
            })
        })
    }

    /// The oldest heartbeat of a run in a worker's hands (running or
    /// cancelling); `None` when there is none.
    pub async fn oldest_heartbeat(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let oldest: Option<Option<DateTime<FixedOffset>>> = executions::Entity::find()
            .select_only()
            .column_as(executions::Column::HeartbeatAt.min(), "oldest")
            .filter(
                executions::Column::Status
                    .is_in([ExecutionStatus::Running, ExecutionStatus::Cancelling]),
            )
            .into_tuple()
            .one(self.0.db())
            .await?;
        Ok(oldest.flatten().map(|at| at.with_timezone(&Utc)))
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
        stats::count_lost(self.0.db(), &reaped, true).await;
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
        stats::count_lost(self.0.db(), &verdict.lost, false).await;
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
        let failed = execution_state::transition(
            &mut txn,
            execution,
            ExecutionStatus::Failed,
            Actor::system(),
            json!({ "error": error }),
            |row| row.error = Set(Some(error.clone())),
        )
        .await?;
        txn.commit().await?;
        stats::count_ended(self.0.db(), &failed).await;
        Ok(())
    }
}
