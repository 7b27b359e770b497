//! Tasks and the board: create, read, update, delete, move, with the audit
//! trail written in the same transaction as each change.
//!
//! Deleting a task cascades to its audit trail (the schema's foreign key), so
//! the `deleted` event cannot outlive the row in `task_events`; it is still
//! recorded, committed in order, and delivered to live watchers from the
//! event hub's tombstones (see `events`). `ListTaskEvents` no longer shows a
//! deleted task's trail.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{
    Actor, DEFAULT_OWNER_ID, DEFAULT_WORKSPACE_ID, Store, StoreError, StoreResult, WriteTxn,
    page::{PageRequest, finish_page},
    sort_order,
};
use crate::entity::{agents, enums::TaskStatus, tasks};

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

/// `tasks.input_context`, with the data model's `TaskInputContext` keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InputContext {
    /// Working directory of the task's runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Variables set in the child's environment.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env_overrides: BTreeMap<String, String>,
    /// Default arguments of the task's executions.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub args: Map<String, Value>,
    /// Text added to AI agents' prompts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_additions: Option<String>,
}

impl InputContext {
    /// Reads a stored value; anything unreadable yields the empty context.
    pub fn from_json(value: &Value) -> Self {
        serde_json::from_value(value.clone()).unwrap_or_default()
    }

    /// The stored form.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| json!({}))
    }

    fn validate(&self, field: &str) -> StoreResult<()> {
        if let Some(dir) = &self.working_dir
            && dir.trim().is_empty()
        {
            return Err(StoreError::invalid(
                format!("{field}.working_dir"),
                "must not be blank when set",
            ));
        }
        for name in self.env_overrides.keys() {
            if !is_env_var_name(name) {
                return Err(StoreError::invalid(
                    format!("{field}.env_overrides"),
                    format!(
                        "{name:?} is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Whether `name` is a portable environment variable name.
pub fn is_env_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// The caller-settable fields of a task.
#[derive(Debug, Clone, Default)]
pub struct TaskDraft {
    /// Title (required, not blank).
    pub title: String,
    /// Description.
    pub description: Option<String>,
    /// Column; `None` means todo on create.
    pub status: Option<TaskStatus>,
    /// Priority; `None` means the default on create.
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

/// A task field an update can change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskField {
    /// `title`
    Title,
    /// `description`
    Description,
    /// `status`
    Status,
    /// `priority`
    Priority,
    /// `parent_task_id`
    ParentTaskId,
    /// `assignee_agent_id`
    AssigneeAgentId,
    /// `input_context`
    InputContext,
    /// `due_at`
    DueAt,
}

impl TaskField {
    /// Every updatable field, by its wire name.
    pub const ALL: [(&'static str, TaskField); 8] = [
        ("title", TaskField::Title),
        ("description", TaskField::Description),
        ("status", TaskField::Status),
        ("priority", TaskField::Priority),
        ("parent_task_id", TaskField::ParentTaskId),
        ("assignee_agent_id", TaskField::AssigneeAgentId),
        ("input_context", TaskField::InputContext),
        ("due_at", TaskField::DueAt),
    ];

    /// The wire names, for error messages and mask checks.
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|(name, _)| *name).collect()
    }

    /// The field of a wire name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, field)| *field)
    }

    /// The field's value in a stored task, as JSON (for the audit trail).
    fn value_of(self, task: &tasks::Model) -> Value {
        match self {
            TaskField::Title => json!(task.title),
            TaskField::Description => json!(task.description),
            TaskField::Status => json!(status_name(task.status)),
            TaskField::Priority => json!(task.priority),
            TaskField::ParentTaskId => json!(task.parent_task_id),
            TaskField::AssigneeAgentId => json!(task.assignee_agent_id),
            TaskField::InputContext => task.input_context.clone(),
            TaskField::DueAt => json!(task.due_at.map(|t| t.to_rfc3339())),
        }
    }
}

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
}

/// Where a moved card lands in its column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// At the top of the column.
    Top,
    /// Right after this card.
    After(Uuid),
    /// Right before this card.
    Before(Uuid),
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
    super::agents::check_no_nul("task.title", &draft.title)?;
    if let Some(description) = &draft.description {
        super::agents::check_no_nul("task.description", description)?;
    }
    super::agents::check_json_text("task.input_context", &draft.input_context.to_json())?;
    if let Some(due_at) = &draft.due_at {
        super::agents::check_time("task.due_at", due_at)?;
    }
    draft.input_context.validate("task.input_context")
}

/// A task of the caller's workspace, or NOT_FOUND.
pub async fn find_task<C: ConnectionTrait>(conn: &C, id: Uuid) -> StoreResult<tasks::Model> {
    tasks::Entity::find_by_id(id)
        .filter(tasks::Column::WorkspaceId.eq(DEFAULT_WORKSPACE_ID))
        .one(conn)
        .await?
        .ok_or_else(|| StoreError::not_found("task", id))
}

/// Like [`find_task`], reporting a missing task as NOT_FOUND of the named field.
async fn find_referenced_task<C: ConnectionTrait>(
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
            .filter(agents::Column::WorkspaceId.eq(DEFAULT_WORKSPACE_ID))
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

/// The position below the last card of `status`'s column.
async fn bottom_of<C: ConnectionTrait>(conn: &C, status: TaskStatus) -> StoreResult<i32> {
    let last: Option<i32> = tasks::Entity::find()
        .select_only()
        .column(tasks::Column::SortOrder)
        .filter(tasks::Column::WorkspaceId.eq(DEFAULT_WORKSPACE_ID))
        .filter(tasks::Column::Status.eq(status))
        .order_by_desc(tasks::Column::SortOrder)
        .limit(1)
        .into_tuple()
        .one(conn)
        .await?;
    match sort_order::between(last, None) {
        Some(position) => Ok(position),
        None => Ok(renumber_column(conn, status, None).await?),
    }
}

/// Renumbers a column with fresh gaps, leaving room at the bottom (when
/// `insert` is `None`) or at `insert`'s index; returns the free position.
async fn renumber_column<C: ConnectionTrait>(
    conn: &C,
    status: TaskStatus,
    insert: Option<(Uuid, Position)>,
) -> StoreResult<i32> {
    let mut column: Vec<Uuid> = tasks::Entity::find()
        .select_only()
        .column(tasks::Column::Id)
        .filter(tasks::Column::WorkspaceId.eq(DEFAULT_WORKSPACE_ID))
        .filter(tasks::Column::Status.eq(status))
        .order_by_asc(tasks::Column::SortOrder)
        .order_by_asc(tasks::Column::Id)
        .into_tuple()
        .all(conn)
        .await?;
    let slot = match insert {
        None => column.len(),
        Some((moving, position)) => {
            column.retain(|id| *id != moving);
            match position {
                Position::Top => 0,
                Position::After(id) => column
                    .iter()
                    .position(|c| *c == id)
                    .map_or(column.len(), |i| i + 1),
                Position::Before(id) => column.iter().position(|c| *c == id).unwrap_or(0),
            }
        }
    };
    let mut order: Vec<Option<Uuid>> = column.into_iter().map(Some).collect();
    order.insert(slot, None);
    let mut free = 0;
    for (id, position) in order.iter().zip(sort_order::renumbered(order.len())) {
        match id {
            None => free = position,
            Some(id) => {
                tasks::Entity::update_many()
                    .col_expr(tasks::Column::SortOrder, position.into())
                    .filter(tasks::Column::Id.eq(*id))
                    .exec(conn)
                    .await?;
            }
        }
    }
    Ok(free)
}

/// Creates a task at the bottom of its column.
pub async fn create_task(
    store: &Store,
    draft: TaskDraft,
    actor: Actor,
) -> StoreResult<tasks::Model> {
    validate_draft(&draft)?;
    let mut txn = store.write().await?;
    check_parent(&*txn, None, draft.parent_task_id).await?;
    check_assignee(&*txn, draft.assignee_agent_id).await?;
    let status = draft.status.unwrap_or(TaskStatus::Todo);
    let sort_order = bottom_of(&*txn, status).await?;
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
    let snapshot: Map<String, Value> = TaskField::ALL
        .iter()
        .map(|(name, field)| ((*name).to_owned(), field.value_of(&task)))
        .collect();
    txn.record_event(task.id, actor, "created", Value::Object(snapshot))
        .await?;
    txn.commit().await?;
    Ok(task)
}

/// Lists tasks, oldest first.
pub async fn list_tasks(
    store: &Store,
    filter: TaskFilter,
    page: PageRequest,
) -> StoreResult<(Vec<tasks::Model>, String)> {
    let mut query =
        tasks::Entity::find().filter(tasks::Column::WorkspaceId.eq(DEFAULT_WORKSPACE_ID));
    if let Some(status) = filter.status {
        query = query.filter(tasks::Column::Status.eq(status));
    }
    if let Some(agent) = filter.assignee_agent_id {
        query = query.filter(tasks::Column::AssigneeAgentId.eq(agent));
    }
    if let Some(parent) = filter.parent_task_id {
        query = query.filter(tasks::Column::ParentTaskId.eq(parent));
    }
    let rows = query
        .order_by_asc(tasks::Column::CreatedAt)
        .order_by_asc(tasks::Column::Id)
        .offset(page.offset)
        .limit(page.limit + 1)
        .all(store.db())
        .await?;
    Ok(finish_page(page, rows))
}

/// Applies the fields of `draft` named in `fields` to a task.
pub async fn update_task(
    store: &Store,
    id: Uuid,
    fields: &[TaskField],
    draft: TaskDraft,
    actor: Actor,
) -> StoreResult<tasks::Model> {
    let mut txn = store.write().await?;
    let before = find_task(&*txn, id).await?;
    let mut merged = TaskDraft {
        title: before.title.clone(),
        description: before.description.clone(),
        status: Some(before.status),
        priority: Some(before.priority),
        parent_task_id: before.parent_task_id,
        assignee_agent_id: before.assignee_agent_id,
        input_context: InputContext::from_json(&before.input_context),
        due_at: before.due_at,
    };
    for field in fields {
        match field {
            TaskField::Title => merged.title = draft.title.clone(),
            TaskField::Description => merged.description = draft.description.clone(),
            TaskField::Status => {
                merged.status = Some(draft.status.ok_or_else(|| {
                    StoreError::invalid("task.status", "must be set when named in update_mask")
                })?)
            }
            TaskField::Priority => {
                merged.priority = Some(draft.priority.unwrap_or(PRIORITY_DEFAULT))
            }
            TaskField::ParentTaskId => merged.parent_task_id = draft.parent_task_id,
            TaskField::AssigneeAgentId => merged.assignee_agent_id = draft.assignee_agent_id,
            TaskField::InputContext => merged.input_context = draft.input_context.clone(),
            TaskField::DueAt => merged.due_at = draft.due_at,
        }
    }
    validate_draft(&merged)?;
    if fields.contains(&TaskField::ParentTaskId) {
        check_parent(&*txn, Some(id), merged.parent_task_id).await?;
    }
    if fields.contains(&TaskField::AssigneeAgentId) {
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
        active.sort_order = Set(bottom_of(&*txn, status).await?);
    }
    active.updated_at = Set(Utc::now().into());
    let after = active.update(&*txn).await?;
    record_changes(&mut txn, &before, &after, actor).await?;
    txn.commit().await?;
    Ok(after)
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
    for (name, field) in TaskField::ALL {
        if matches!(field, TaskField::Status | TaskField::AssigneeAgentId) {
            continue;
        }
        let (old, new) = (field.value_of(before), field.value_of(after));
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

/// Deletes a task (its dependencies, executions and events go with it; its
/// subtasks lose their parent).
pub async fn delete_task(store: &Store, id: Uuid, actor: Actor) -> StoreResult<()> {
    let mut txn = store.write().await?;
    let task = find_task(&*txn, id).await?;
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
pub async fn move_task(
    store: &Store,
    id: Uuid,
    status: Option<TaskStatus>,
    position: Position,
    actor: Actor,
) -> StoreResult<tasks::Model> {
    let mut txn = store.write().await?;
    let before = find_task(&*txn, id).await?;
    let status = status.unwrap_or(before.status);
    let (above, below) = neighbours(&*txn, &before, status, position).await?;
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

/// Sort orders of the cards that will sit above and below the moved card.
async fn neighbours<C: ConnectionTrait>(
    conn: &C,
    moving: &tasks::Model,
    status: TaskStatus,
    position: Position,
) -> StoreResult<(Option<i32>, Option<i32>)> {
    let column = |query: sea_orm::Select<tasks::Entity>| {
        query
            .select_only()
            .column(tasks::Column::SortOrder)
            .filter(tasks::Column::WorkspaceId.eq(DEFAULT_WORKSPACE_ID))
            .filter(tasks::Column::Status.eq(status))
            .filter(tasks::Column::Id.ne(moving.id))
    };
    let anchor = |id: Uuid, field: &'static str| async move {
        if id == moving.id {
            return Err(StoreError::invalid(
                field,
                "a task cannot be placed next to itself",
            ));
        }
        let anchor = find_referenced_task(conn, id, field).await?;
        if anchor.status != status {
            return Err(StoreError::FailedPrecondition(format!(
                "{field}: task {id} is in column {}, not {}",
                status_name(anchor.status),
                status_name(status)
            )));
        }
        Ok(anchor.sort_order)
    };
    Ok(match position {
        Position::Top => {
            let first: Option<i32> = column(tasks::Entity::find())
                .order_by_asc(tasks::Column::SortOrder)
                .limit(1)
                .into_tuple()
                .one(conn)
                .await?;
            (None, first)
        }
        Position::After(id) => {
            let above = anchor(id, "after_task_id").await?;
            let below: Option<i32> = column(tasks::Entity::find())
                .filter(tasks::Column::SortOrder.gt(above))
                .order_by_asc(tasks::Column::SortOrder)
                .limit(1)
                .into_tuple()
                .one(conn)
                .await?;
            (Some(above), below)
        }
        Position::Before(id) => {
            let below = anchor(id, "before_task_id").await?;
            let above: Option<i32> = column(tasks::Entity::find())
                .filter(tasks::Column::SortOrder.lt(below))
                .order_by_desc(tasks::Column::SortOrder)
                .limit(1)
                .into_tuple()
                .one(conn)
                .await?;
            (above, Some(below))
        }
    })
}

/// The board: every column in order, each sorted by position.
pub async fn board(store: &Store) -> StoreResult<Vec<(TaskStatus, Vec<tasks::Model>)>> {
    let all = tasks::Entity::find()
        .filter(tasks::Column::WorkspaceId.eq(DEFAULT_WORKSPACE_ID))
        .order_by_asc(tasks::Column::SortOrder)
        .order_by_asc(tasks::Column::Id)
        .all(store.db())
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

/// Moves a task to the status its run implies (running → in progress,
/// succeeded → done), at the bottom of that column, recording the change.
/// Does nothing when the task is already there.
pub async fn follow_run(
    txn: &mut WriteTxn,
    task_id: Uuid,
    status: TaskStatus,
    execution_id: Uuid,
) -> StoreResult<()> {
    let before = find_task(&**txn, task_id).await?;
    if before.status == status {
        return Ok(());
    }
    let mut active = before.clone().into_active_model();
    active.status = Set(status);
    active.sort_order = Set(bottom_of(&**txn, status).await?);
    active.updated_at = Set(Utc::now().into());
    active.update(&**txn).await?;
    txn.record_event(
        task_id,
        Actor::system(),
        "status_changed",
        json!({
            "from": status_name(before.status),
            "to": status_name(status),
            "execution_id": execution_id,
        }),
    )
    .await?;
    Ok(())
}
