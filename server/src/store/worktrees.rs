//! Git worktrees of tasks (issue 18): whether a task's runs get one, and
//! what each run changed in it (`execution_worktrees`, written with the
//! run's result). The worktrees themselves live on the workers' disks; the
//! server only knows what the workers reported.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::columns::{AgentMetadata, InputContext};
use super::{StoreResult, Worktrees};
use crate::entity::{agents, enums::ExecutionStatus, execution_worktrees, executions, tasks};

/// Whether a task's runs work in a git worktree of their own
/// (`input_context.isolation`, `agents.metadata.defaultIsolation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// In the working directory itself.
    None,
    /// In a worktree of the task's own.
    Worktree,
}

impl Isolation {
    /// Whether a run of a task (its input `context`) by `agent` works in the
    /// task's worktree: the task's own choice, else the agent's default
    /// (neither chose: no).
    pub fn worktree(context: &InputContext, agent: &agents::Model) -> bool {
        context
            .isolation
            .or_else(|| AgentMetadata::from_json(&agent.metadata).default_isolation)
            == Some(Self::Worktree)
    }
}

/// What a run changed in its task's worktree, as its worker reported it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WorktreeSummary {
    pub repository: String,
    pub path: String,
    pub branch: String,
    pub base_ref: String,
    pub base_commit: String,
    pub head_commit: String,
    pub commits: i32,
    pub files: Vec<FileChange>,
    pub files_truncated: bool,
    pub dirty: bool,
    pub snapshot_tree: String,
}

/// One file a run changed (`git diff --numstat`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FileChange {
    pub path: String,
    pub added: i32,
    pub removed: i32,
    pub binary: bool,
}

/// A run's worktree record: where it is and what the run changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorktreeRecord {
    pub execution_id: Uuid,
    pub task_id: Uuid,
    /// The worker holding the worktree.
    pub worker_id: String,
    pub summary: WorktreeSummary,
}

impl WorktreeRecord {
    fn from_row(row: execution_worktrees::Model) -> Self {
        let summary = serde_json::from_value(row.summary).unwrap_or_else(|err| {
            tracing::warn!(error = %err, "execution_worktrees.summary has an unexpected shape");
            WorktreeSummary::default()
        });
        Self {
            execution_id: row.execution_id,
            task_id: row.task_id,
            worker_id: row.worker_id,
            summary,
        }
    }
}

/// Records what run `execution_id` of `task_id` changed, in the caller's
/// transaction (the run's finish); a later attempt's report replaces an
/// earlier one's.
pub(super) async fn record<C: ConnectionTrait>(
    conn: &C,
    execution_id: Uuid,
    task_id: Uuid,
    worker_id: &str,
    summary: &WorktreeSummary,
) -> StoreResult<()> {
    let row = execution_worktrees::ActiveModel {
        execution_id: Set(execution_id),
        task_id: Set(task_id),
        worker_id: Set(worker_id.to_owned()),
        summary: Set(serde_json::to_value(summary).expect("a summary serializes")),
        recorded_at: Set(Utc::now().into()),
    };
    execution_worktrees::Entity::insert(row)
        .on_conflict(
            sea_orm::sea_query::OnConflict::column(execution_worktrees::Column::ExecutionId)
                .update_columns([
                    execution_worktrees::Column::WorkerId,
                    execution_worktrees::Column::Summary,
                    execution_worktrees::Column::RecordedAt,
                ])
                .to_owned(),
        )
        .exec(conn)
        .await?;
    Ok(())
}

/// Of `task_ids`, the worker holding each one's worktree (the latest run
/// that reported one), in one statement: a run of such a task goes to that
/// worker, where its files are.
pub(super) async fn holders<C: ConnectionTrait>(
    conn: &C,
    task_ids: Vec<Uuid>,
) -> StoreResult<HashMap<Uuid, String>> {
    if task_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(Uuid, String)> = execution_worktrees::Entity::find()
        .select_only()
        .column(execution_worktrees::Column::TaskId)
        .column(execution_worktrees::Column::WorkerId)
        .filter(execution_worktrees::Column::TaskId.is_in(task_ids))
        .order_by_asc(execution_worktrees::Column::RecordedAt)
        .into_tuple()
        .all(conn)
        .await?;
    // Ascending: the latest of each task is inserted last and stays.
    Ok(rows.into_iter().collect())
}

impl Worktrees<'_> {
    /// The record of one run, if it had a worktree.
    pub async fn of_execution(&self, execution_id: Uuid) -> StoreResult<Option<WorktreeRecord>> {
        Ok(execution_worktrees::Entity::find_by_id(execution_id)
            .one(self.0.db())
            .await?
            .map(WorktreeRecord::from_row))
    }

    /// The records of several runs, by execution (one statement).
    pub async fn of_executions(
        &self,
        ids: Vec<Uuid>,
    ) -> StoreResult<HashMap<Uuid, WorktreeRecord>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        Ok(execution_worktrees::Entity::find()
            .filter(execution_worktrees::Column::ExecutionId.is_in(ids))
            .all(self.0.db())
            .await?
            .into_iter()
            .map(|row| (row.execution_id, WorktreeRecord::from_row(row)))
            .collect())
    }

    /// The latest record of a task's runs: where its worktree is.
    pub async fn latest_of_task(&self, task_id: Uuid) -> StoreResult<Option<WorktreeRecord>> {
        Ok(execution_worktrees::Entity::find()
            .filter(execution_worktrees::Column::TaskId.eq(task_id))
            .order_by_desc(execution_worktrees::Column::RecordedAt)
            .one(self.0.db())
            .await?
            .map(WorktreeRecord::from_row))
    }

    /// Runs of the task that are running or being cancelled: its worktree
    /// is in use.
    pub async fn runs_under_way(&self, task_id: Uuid) -> StoreResult<u64> {
        Ok(executions::Entity::find()
            .filter(executions::Column::TaskId.eq(task_id))
            .filter(
                executions::Column::Status
                    .is_in([ExecutionStatus::Running, ExecutionStatus::Cancelling]),
            )
            .count(self.0.db())
            .await?)
    }

    /// Of `task_ids` (as a worker sent them), those that name no task: their
    /// worktrees may go. Ids that are not UUIDs are not tasks either.
    pub async fn gone_tasks(&self, task_ids: &[String]) -> StoreResult<Vec<String>> {
        let parsed: Vec<(String, Option<Uuid>)> = task_ids
            .iter()
            .map(|id| (id.clone(), Uuid::parse_str(id).ok()))
            .collect();
        let ids: Vec<Uuid> = parsed.iter().filter_map(|(_, id)| *id).collect();
        let existing: HashSet<Uuid> = if ids.is_empty() {
            HashSet::new()
        } else {
            tasks::Entity::find()
                .filter(tasks::Column::Id.is_in(ids))
                .all(self.0.db())
                .await?
                .into_iter()
                .map(|t| t.id)
                .collect()
        };
        Ok(parsed
            .into_iter()
            .filter(|(_, id)| id.is_none_or(|id| !existing.contains(&id)))
            .map(|(text, _)| text)
            .collect())
    }
}
