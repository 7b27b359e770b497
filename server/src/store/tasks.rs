//! Tasks and the board: create, read, update, delete, move, with the audit
//! trail written in the same transaction as each change.
//!
//! Deleting a task cascades to its audit trail (the schema's foreign key), so
//! the `deleted` event cannot outlive the row in `task_events`; it is still
//! recorded, committed in order, and delivered to live watchers from the
//! event hub's tombstones (see `events`). `ListTaskEvents` no longer shows a
//! deleted task's trail.

use chrono::{DateTime, FixedOffset, Utc};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder,
    sea_query::{Expr, ExprTrait, Func, LikeExpr},
};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{
    Actor, DEFAULT_OWNER_ID, DEFAULT_WORKSPACE_ID, StoreError, StoreResult, Tasks, WriteTxn,
    apply_patch,
    board::{Position, bottom_of, neighbours, renumber_column},
    columns::InputContext,
    page::PageRequest,
    scope::InWorkspace,
    sort_order,
    validate::{check_json_text, check_no_nul, check_time},
};
use crate::entity::{
    agents,
    enums::{ExecutionStatus, TaskStatus},
    executions, tasks,
};

/// Most urgent priority.
pub const PRIORITY_MIN: i16 = 1;
/// Least urgent priority.
pub const PRIORITY_MAX: i16 = 5;
/// Priority of a task created without one (the data model's default).
pub const PRIORITY_DEFAULT: i16 = 3;
/// Longest title accepted, in characters.
pub const TITLE_MAX_CHARS: usize = 500;

/// Board columns, left to right.
pub const BOARD_COLUMNS: [TaskStatus; 5] = [
    TaskStatus::Todo,
    TaskStatus::InProgress,
    TaskStatus::Blocked,
    TaskStatus::Done,
    TaskStatus::Cancelled,
];

/// The caller-settable fields of a task: what a create sends, or what a task
/// looks like after an update. `None` means "absent" (the default).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskDraft {
    /// Title (required, not blank).
    pub title: String,
    /// Description.
    pub description: Option<String>,
    /// Column; `None` means todo.
    pub status: Option<TaskStatus>,
    /// Priority; `None` means the default.
    pub priority: Option<i16>,
    /// Parent task.
    pub parent_task_id: Option<Uuid>,
    /// Assigned agent.
    pub assignee_agent_id: Option<Uuid>,
    /// Context for executions.
    pub input_context: InputContext,
    /// Due date.
    pub due_at: Option<DateTime<FixedOffset>>,
}

impl TaskDraft {
    /// A stored task as a draft, to apply a patch to.
    fn from_model(task: &tasks::Model) -> Self {
        Self {
            title: task.title.clone(),
            description: task.description.clone(),
            status: Some(task.status),
            priority: Some(task.priority),
            parent_task_id: task.parent_task_id,
            assignee_agent_id: task.assignee_agent_id,
            input_context: InputContext::from_json(&task.input_context),
            due_at: task.due_at,
        }
    }
}

/// The fields an update changes: `Some(value)` replaces the field with
/// `value` (whose `None`, for an optional field, means "absent": cleared, or
/// back to its default).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskPatch {
    pub title: Option<String>,
    pub description: Option<Option<String>>,
    pub status: Option<Option<TaskStatus>>,
    pub priority: Option<Option<i16>>,
    pub parent_task_id: Option<Option<Uuid>>,
    pub assignee_agent_id: Option<Option<Uuid>>,
    pub input_context: Option<InputContext>,
    pub due_at: Option<Option<DateTime<FixedOffset>>>,
}

impl TaskPatch {
    /// Moves each `Some` field onto `draft`.
    pub fn apply(self, draft: &mut TaskDraft) {
        apply_patch!(
            self,
            draft,
            [
                title,
                description,
                status,
                priority,
                parent_task_id,
                assignee_agent_id,
                input_context,
                due_at,
            ]
        );
    }
}

/// Reads one audited field of a task, as its event payloads show it.
type AuditedValue = fn(&tasks::Model) -> Value;

/// The fields the audit trail records, by their data-model names: all of a
/// new task in its `created` event, the changed ones (but status and
/// assignee, which have events of their own) in `updated`.
const AUDITED: [(&str, AuditedValue); 8] = [
    ("title", |t| json!(t.title)),
    ("description", |t| json!(t.description)),
    ("status", |t| json!(status_name(t.status))),
    ("priority", |t| json!(t.priority)),
    ("parent_task_id", |t| json!(t.parent_task_id)),
    ("assignee_agent_id", |t| json!(t.assignee_agent_id)),
    ("input_context", |t| t.input_context.clone()),
    ("due_at", |t| json!(t.due_at.map(|at| at.to_rfc3339()))),
];

/// The stored name of a status (`in_progress`), for event payloads.
pub fn status_name(status: TaskStatus) -> &'static str {
    match status {
        TaskStatus::Todo => "todo",
        TaskStatus::InProgress => "in_progress",
        TaskStatus::Blocked => "blocked",
        TaskStatus::Done => "done",
        TaskStatus::Cancelled => "cancelled",
    }
}

/// Filters of `list_tasks`.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    /// Only this column.
    pub status: Option<TaskStatus>,
    /// Only tasks assigned to this agent.
    pub assignee_agent_id: Option<Uuid>,
    /// Only subtasks of this task.
    pub parent_task_id: Option<Uuid>,
    /// Only tasks whose title or description contains this text, ignoring
    /// case (ASCII case on SQLite, whose `LOWER` knows no other).
    pub text: Option<String>,
}

/// Longest text a task search takes.
pub const SEARCH_MAX_CHARS: usize = 1000;

/// `text` as a `LIKE` pattern matching it anywhere, its own `%`, `_` and
/// `\` taken literally.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

fn validate_draft(draft: &TaskDraft) -> StoreResult<()> {
    if draft.title.trim().is_empty() {
        return Err(StoreError::invalid("task.title", "is required"));
    }
    if draft.title.chars().count() > TITLE_MAX_CHARS {
        return Err(StoreError::invalid(
            "task.title",
            format!("is longer than {TITLE_MAX_CHARS} characters"),
        ));
    }
    if let Some(priority) = draft.priority
        && !(PRIORITY_MIN..=PRIORITY_MAX).contains(&priority)
    {
        return Err(StoreError::invalid(
            "task.priority",
            format!(
                "must be between {PRIORITY_MIN} (most urgent) and {PRIORITY_MAX}, got {priority}"
            ),
        ));
    }
    // PostgreSQL cannot store NUL in text or jsonb, nor years outside 1-9999:
    // refuse them here, as the caller's mistake they are, on both backends.
    check_no_nul("task.title", &draft.title)?;
    if let Some(description) = &draft.description {
        check_no_nul("task.description", description)?;
    }
    check_json_text("task.input_context", &draft.input_context.to_json())?;
    if let Some(due_at) = &draft.due_at {
        check_time("task.due_at", due_at)?;
    }
    draft.input_context.validate("task.input_context")
}

/// A task of the caller's workspace, or NOT_FOUND.
pub async fn find_task<C: ConnectionTrait>(conn: &C, id: Uuid) -> StoreResult<tasks::Model> {
    tasks::Entity::find_by_id(id)
        .in_workspace()
        .one(conn)
        .await?
        .ok_or_else(|| StoreError::not_found("task", id))
}

/// Like [`find_task`], reporting a missing task as NOT_FOUND of the named field.
pub(super) async fn find_referenced_task<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
    field: &str,
) -> StoreResult<tasks::Model> {
    find_task(conn, id).await.map_err(|err| match err {
        StoreError::NotFound { .. } => StoreError::NotFound {
            kind: "task",
            id: format!("{id} ({field})"),
        },
        other => other,
    })
}

async fn check_assignee<C: ConnectionTrait>(conn: &C, agent_id: Option<Uuid>) -> StoreResult<()> {
    if let Some(agent_id) = agent_id {
        let exists = agents::Entity::find_by_id(agent_id)
            .in_workspace()
            .count(conn)
            .await?
            > 0;
        if !exists {
            return Err(StoreError::NotFound {
                kind: "agent",
                id: format!("{agent_id} (task.assignee_agent_id)"),
            });
        }
    }
    Ok(())
}

/// Refuses a parent that is the task itself or one of its descendants.
async fn check_parent<C: ConnectionTrait>(
    conn: &C,
    task_id: Option<Uuid>,
    parent_id: Option<Uuid>,
) -> StoreResult<()> {
    let Some(parent_id) = parent_id else {
        return Ok(());
    };
    let mut chain = vec![parent_id];
    let mut cursor = Some(find_referenced_task(conn, parent_id, "task.parent_task_id").await?);
    while let Some(ancestor) = cursor {
        if Some(ancestor.id) == task_id {
            let path: Vec<String> = std::iter::once(ancestor.id)
                .chain(chain.iter().rev().copied())
                .map(|id| id.to_string())
                .collect();
            return Err(StoreError::FailedPrecondition(format!(
                "task.parent_task_id: would make a parent cycle: {}",
                path.join(" -> ")
            )));
        }
        cursor = match ancestor.parent_task_id {
            Some(next) if !chain.contains(&next) => {
                chain.push(next);
                tasks::Entity::find_by_id(next).one(conn).await?
            }
            _ => None,
        };
    }
    Ok(())
}

/// Writes `updated` (before and after of each changed field),
/// `status_changed` and `assigned` events for a change of `before` into `after`.
async fn record_changes(
    txn: &mut WriteTxn,
    before: &tasks::Model,
    after: &tasks::Model,
    actor: Actor,
) -> StoreResult<()> {
    let mut changes = Map::new();
    for (name, value_of) in AUDITED {
        if matches!(name, "status" | "assignee_agent_id") {
            continue;
        }
        let (old, new) = (value_of(before), value_of(after));
        if old != new {
            changes.insert(name.to_owned(), json!({ "before": old, "after": new }));
        }
    }
    if !changes.is_empty() {
        txn.record_event(after.id, actor, "updated", json!({ "changes": changes }))
            .await?;
    }
    if before.status != after.status {
        txn.record_event(
            after.id,
            actor,
            "status_changed",
            json!({ "from": status_name(before.status), "to": status_name(after.status) }),
        )
        .await?;
    }
    if before.assignee_agent_id != after.assignee_agent_id {
        txn.record_event(
            after.id,
            actor,
            "assigned",
            json!({ "from": before.assignee_agent_id, "to": after.assignee_agent_id }),
        )
        .await?;
    }
    Ok(())
}

/// Moves a task to the status its run implies (running → in progress,
/// succeeded → done), at the bottom of that column, recording the change.
/// Does nothing when the task is already there.
pub async fn follow_run(
    txn: &mut WriteTxn,
    task_id: Uuid,
    status: TaskStatus,
    execution_id: Uuid,
) -> StoreResult<()> {
    // Only run transitions move a task inside the transactions that make
    // many of them (a batch of claims and finishes), so a status read or
    // set earlier in the transaction still stands.
    let from = match txn.known_task_status(task_id) {
        Some(known) => known,
        None => find_task(&**txn, task_id).await?.status,
    };
    txn.note_task_status(task_id, status);
    if from == status {
        return Ok(());
    }
    let sort_order = bottom_of(txn, status).await?;
    tasks::ActiveModel {
        id: sea_orm::ActiveValue::Unchanged(task_id),
        status: Set(status),
        sort_order: Set(sort_order),
        updated_at: Set(Utc::now().into()),
        ..Default::default()
    }
    .update(&**txn)
    .await?;
    txn.record_event(
        task_id,
        Actor::system(),
        "status_changed",
        json!({
            "from": status_name(from),
            "to": status_name(status),
            "execution_id": execution_id,
        }),
    )
    .await?;
    Ok(())
}

impl Tasks<'_> {
    /// The task `id` of the caller's workspace.
    pub async fn get(&self, id: Uuid) -> StoreResult<tasks::Model> {
        find_task(self.0.db(), id).await
    }

    /// Creates a task at the bottom of its column.
    pub async fn create(&self, draft: TaskDraft, actor: Actor) -> StoreResult<tasks::Model> {
        validate_draft(&draft)?;
        let mut txn = self.0.write().await?;
        check_parent(&*txn, None, draft.parent_task_id).await?;
        check_assignee(&*txn, draft.assignee_agent_id).await?;
        let status = draft.status.unwrap_or(TaskStatus::Todo);
        let sort_order = bottom_of(&txn, status).await?;
        let now: DateTime<FixedOffset> = Utc::now().into();
        let task = tasks::ActiveModel {
            id: Set(Uuid::new_v4()),
            owner_id: Set(DEFAULT_OWNER_ID),
            workspace_id: Set(DEFAULT_WORKSPACE_ID),
            parent_task_id: Set(draft.parent_task_id),
            title: Set(draft.title),
            description: Set(draft.description),
            status: Set(status),
            priority: Set(draft.priority.unwrap_or(PRIORITY_DEFAULT)),
            sort_order: Set(sort_order),
            assignee_agent_id: Set(draft.assignee_agent_id),
            input_context: Set(draft.input_context.to_json()),
            due_at: Set(draft.due_at),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&*txn)
        .await?;
        let snapshot: Map<String, Value> = AUDITED
            .iter()
            .map(|(name, value_of)| ((*name).to_owned(), value_of(&task)))
            .collect();
        txn.record_event(task.id, actor, "created", Value::Object(snapshot))
            .await?;
        txn.commit().await?;
        Ok(task)
    }

    /// Lists tasks, oldest first.
    pub async fn list(
        &self,
        filter: TaskFilter,
        page: PageRequest,
    ) -> StoreResult<(Vec<tasks::Model>, String)> {
        let mut query = tasks::Entity::find().in_workspace();
        if let Some(status) = filter.status {
            query = query.filter(tasks::Column::Status.eq(status));
        }
        if let Some(agent) = filter.assignee_agent_id {
            query = query.filter(tasks::Column::AssigneeAgentId.eq(agent));
        }
        if let Some(parent) = filter.parent_task_id {
            query = query.filter(tasks::Column::ParentTaskId.eq(parent));
        }
        if let Some(text) = filter.text.filter(|t| !t.is_empty()) {
            if text.chars().count() > SEARCH_MAX_CHARS {
                return Err(StoreError::invalid(
                    "text",
                    format!("is longer than {SEARCH_MAX_CHARS} characters"),
                ));
            }
            check_no_nul("text", &text)?;
            let pattern = contains_pattern(&text);
            let contains = |column: tasks::Column| {
                Expr::expr(Func::lower(Expr::col((tasks::Entity, column))))
                    .like(LikeExpr::new(pattern.clone()).escape('\\'))
            };
            query = query.filter(
                Condition::any()
                    .add(contains(tasks::Column::Title))
                    .add(contains(tasks::Column::Description)),
            );
        }
        page.fetch(
            query
                .order_by_asc(tasks::Column::CreatedAt)
                .order_by_asc(tasks::Column::Id),
            self.0.db(),
        )
        .await
    }

    /// Applies `patch` to a task, re-validating the whole result.
    pub async fn update(
        &self,
        id: Uuid,
        patch: TaskPatch,
        actor: Actor,
    ) -> StoreResult<tasks::Model> {
        let mut txn = self.0.write().await?;
        let before = find_task(&*txn, id).await?;
        let parent_changes = patch.parent_task_id.is_some();
        let assignee_changes = patch.assignee_agent_id.is_some();
        let mut merged = TaskDraft::from_model(&before);
        patch.apply(&mut merged);
        validate_draft(&merged)?;
        if parent_changes {
            check_parent(&*txn, Some(id), merged.parent_task_id).await?;
        }
        if assignee_changes {
            check_assignee(&*txn, merged.assignee_agent_id).await?;
        }
        let status = merged.status.unwrap_or(before.status);
        let mut active = before.clone().into_active_model();
        active.title = Set(merged.title);
        active.description = Set(merged.description);
        active.priority = Set(merged.priority.unwrap_or(PRIORITY_DEFAULT));
        active.parent_task_id = Set(merged.parent_task_id);
        active.assignee_agent_id = Set(merged.assignee_agent_id);
        active.input_context = Set(merged.input_context.to_json());
        active.due_at = Set(merged.due_at);
        if status != before.status {
            active.status = Set(status);
            active.sort_order = Set(bottom_of(&txn, status).await?);
        }
        active.updated_at = Set(Utc::now().into());
        let after = active.update(&*txn).await?;
        record_changes(&mut txn, &before, &after, actor).await?;
        txn.commit().await?;
        Ok(after)
    }

    /// Deletes a task (its dependencies, executions and events go with it; its
    /// subtasks lose their parent).
    pub async fn delete(&self, id: Uuid, actor: Actor) -> StoreResult<()> {
        let mut txn = self.0.write().await?;
        let task = find_task(&*txn, id).await?;
        // Its executions go with it, so none may be running: a child would
        // outlive its record, and the worker would hold a run forever.
        let running = executions::Entity::find()
            .filter(executions::Column::TaskId.eq(id))
            .filter(
                executions::Column::Status
                    .is_in([ExecutionStatus::Running, ExecutionStatus::Cancelling]),
            )
            .count(&*txn)
            .await?;
        if running > 0 {
            return Err(StoreError::FailedPrecondition(format!(
                "task {id} has {running} running execution(s); cancel them \
                 (CancelExecution) and wait for them to end before deleting the task"
            )));
        }
        let event = txn
            .record_event(
                task.id,
                actor,
                "deleted",
                json!({ "title": task.title, "status": status_name(task.status) }),
            )
            .await?;
        txn.keep_as_tombstone(task.workspace_id, event);
        tasks::Entity::delete_by_id(task.id).exec(&*txn).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Moves a task to `status` (its current column when `None`) at `position`.
    pub async fn move_to(
        &self,
        id: Uuid,
        status: Option<TaskStatus>,
        position: Position,
        actor: Actor,
    ) -> StoreResult<tasks::Model> {
        let mut txn = self.0.write().await?;
        let before = find_task(&*txn, id).await?;
        let status = status.unwrap_or(before.status);
        let (above, below) = neighbours(&txn, &before, status, position).await?;
        let sort_order = match sort_order::between(above, below) {
            Some(position) => position,
            None => renumber_column(&*txn, status, Some((id, position))).await?,
        };
        let mut active = before.clone().into_active_model();
        active.status = Set(status);
        active.sort_order = Set(sort_order);
        active.updated_at = Set(Utc::now().into());
        let after = active.update(&*txn).await?;
        let (field, neighbour) = match position {
            Position::Top => ("top", None),
            Position::After(id) => ("after_task_id", Some(id)),
            Position::Before(id) => ("before_task_id", Some(id)),
        };
        txn.record_event(
            id,
            actor,
            "moved",
            json!({
                "from": { "status": status_name(before.status), "sort_order": before.sort_order },
                "to": { "status": status_name(after.status), "sort_order": after.sort_order },
                "position": field,
                "neighbour_task_id": neighbour,
            }),
        )
        .await?;
        if before.status != after.status {
            txn.record_event(
                id,
                actor,
                "status_changed",
                json!({ "from": status_name(before.status), "to": status_name(after.status) }),
            )
            .await?;
        }
        txn.commit().await?;
        Ok(after)
    }

    /// The board: every column in order, each sorted by position.
    pub async fn board(&self) -> StoreResult<Vec<(TaskStatus, Vec<tasks::Model>)>> {
        let all = tasks::Entity::find()
            .in_workspace()
            .order_by_asc(tasks::Column::SortOrder)
            .order_by_asc(tasks::Column::Id)
            .all(self.0.db())
            .await?;
        let mut columns: Vec<(TaskStatus, Vec<tasks::Model>)> = BOARD_COLUMNS
            .iter()
            .map(|status| (*status, Vec::new()))
            .collect();
        for task in all {
            if let Some((_, column)) = columns
                .iter_mut()
                .find(|(status, _)| *status == task.status)
            {
                column.push(task);
            }
        }
        Ok(columns)
    }
}
