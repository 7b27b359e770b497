//! Tasks, dependencies and events: wire <-> store.

use amon_proto::v1 as pb;
use prost_types::FieldMask;

use super::{
    enums::WireEnum, json_to_struct, mask_paths, optional_struct_to_json, optional_timestamp,
    parse_id, parse_optional_id, parse_timestamp, timestamp,
};
use crate::{
    entity::{enums::TaskStatus, task_dependencies, task_events, tasks},
    store::{
        StoreError, StoreResult,
        columns::InputContext,
        tasks::{TaskDraft, TaskPatch},
    },
};

/// Paths `UpdateTask` accepts in its `update_mask`: every caller-settable field.
pub const TASK_UPDATABLE: &[&str] = &[
    "title",
    "description",
    "status",
    "priority",
    "parent_task_id",
    "assignee_agent_id",
    "input_context",
    "due_at",
];

/// A stored task on the wire.
pub fn task_to_proto(task: &tasks::Model) -> pb::Task {
    let tasks::Model {
        id,
        owner_id,
        workspace_id,
        parent_task_id,
        title,
        description,
        status,
        priority,
        sort_order,
        assignee_agent_id,
        input_context,
        due_at,
        created_at,
        updated_at,
    } = task;
    pb::Task {
        id: id.to_string(),
        owner_id: owner_id.to_string(),
        workspace_id: workspace_id.to_string(),
        parent_task_id: parent_task_id.map(|id| id.to_string()),
        title: title.clone(),
        description: description.clone(),
        status: status.to_proto(),
        priority: Some(i32::from(*priority)),
        sort_order: *sort_order,
        assignee_agent_id: assignee_agent_id.map(|id| id.to_string()),
        input_context: Some(input_context_to_proto(&InputContext::from_json(
            input_context,
        ))),
        due_at: optional_timestamp(due_at),
        created_at: Some(timestamp(created_at)),
        updated_at: Some(timestamp(updated_at)),
    }
}

/// Characters of a description a board card carries.
pub const BOARD_DESCRIPTION_CHARS: usize = 1000;

/// A task as a board card: its description cut to
/// [`BOARD_DESCRIPTION_CHARS`] (`GetTask` has all of it).
pub fn board_card(task: &tasks::Model) -> pb::Task {
    let mut card = task_to_proto(task);
    if let Some(description) = &mut card.description
        && let Some((cut, _)) = description.char_indices().nth(BOARD_DESCRIPTION_CHARS)
    {
        description.truncate(cut);
    }
    card
}

fn input_context_to_proto(context: &InputContext) -> pb::TaskInputContext {
    let InputContext {
        working_dir,
        env_overrides,
        args,
        prompt_additions,
        isolation,
        base_ref,
    } = context;
    pb::TaskInputContext {
        working_dir: working_dir.clone(),
        env_overrides: env_overrides.clone().into_iter().collect(),
        args: Some(json_to_struct(&serde_json::Value::Object(args.clone()))),
        prompt_additions: prompt_additions.clone(),
        isolation: isolation.map_or(0, WireEnum::to_proto),
        base_ref: base_ref.clone(),
    }
}

fn input_context_from_proto(context: Option<&pb::TaskInputContext>) -> StoreResult<InputContext> {
    let Some(pb::TaskInputContext {
        working_dir,
        env_overrides,
        args,
        prompt_additions,
        isolation,
        base_ref,
    }) = context
    else {
        return Ok(InputContext::default());
    };
    let args = match optional_struct_to_json(args) {
        serde_json::Value::Object(map) => map,
        _ => Default::default(),
    };
    Ok(InputContext {
        working_dir: working_dir.clone(),
        env_overrides: env_overrides.clone().into_iter().collect(),
        args,
        prompt_additions: prompt_additions.clone(),
        isolation: WireEnum::from_proto("task.input_context.isolation", *isolation)?,
        base_ref: base_ref.clone(),
    })
}

/// Every caller-settable field of a wire task, parsed when `wanted` names
/// it (output-only fields are ignored).
fn task_fields(task: &pb::Task, wanted: impl Fn(&str) -> bool) -> StoreResult<TaskPatch> {
    let pb::Task {
        id: _,
        owner_id: _,
        workspace_id: _,
        parent_task_id,
        title,
        description,
        status,
        priority,
        sort_order: _,
        assignee_agent_id,
        input_context,
        due_at,
        created_at: _,
        updated_at: _,
    } = task;
    let optional_id = |field: &str, id: &Option<String>| {
        id.as_deref()
            .map(|id| parse_optional_id(field, id))
            .transpose()
            .map(Option::flatten)
    };
    let field = |name: &str| wanted(name);
    Ok(TaskPatch {
        title: field("title").then(|| title.clone()),
        description: field("description").then(|| description.clone()),
        status: field("status")
            .then(|| TaskStatus::from_proto("task.status", *status))
            .transpose()?,
        priority: field("priority")
            .then(|| {
                priority
                    .map(|p| {
                        i16::try_from(p).map_err(|_| {
                            StoreError::invalid("task.priority", format!("{p} is out of range"))
                        })
                    })
                    .transpose()
            })
            .transpose()?,
        parent_task_id: field("parent_task_id")
            .then(|| optional_id("task.parent_task_id", parent_task_id))
            .transpose()?,
        assignee_agent_id: field("assignee_agent_id")
            .then(|| optional_id("task.assignee_agent_id", assignee_agent_id))
            .transpose()?,
        input_context: field("input_context")
            .then(|| input_context_from_proto(input_context.as_ref()))
            .transpose()?,
        due_at: field("due_at")
            .then(|| {
                due_at
                    .as_ref()
                    .map(|t| parse_timestamp("task.due_at", t))
                    .transpose()
            })
            .transpose()?,
    })
}

/// The caller-settable fields of a `CreateTaskRequest`'s task.
pub fn task_draft(task: &pb::Task) -> StoreResult<TaskDraft> {
    let mut draft = TaskDraft::default();
    task_fields(task, |_| true)?.apply(&mut draft);
    Ok(draft)
}

/// The id and the changes of an `UpdateTaskRequest`. Only the fields named
/// in the mask are read; a named field left unset takes its creation default
/// (optional fields are cleared), but `status`, which has no default there.
pub fn task_patch(
    task: Option<&pb::Task>,
    mask: &Option<FieldMask>,
) -> StoreResult<(uuid::Uuid, TaskPatch)> {
    let task = task.ok_or_else(|| StoreError::invalid("task", "is required"))?;
    let id = parse_id("task.id", &task.id)?;
    let paths = mask_paths("update_mask", mask, TASK_UPDATABLE)?;
    let patch = task_fields(task, |name| paths.iter().any(|path| path == name))?;
    if patch.status == Some(None) {
        return Err(StoreError::invalid(
            "task.status",
            "must be set when named in update_mask",
        ));
    }
    Ok((id, patch))
}

/// A stored dependency edge on the wire.
pub fn dependency_to_proto(edge: &task_dependencies::Model) -> pb::TaskDependency {
    let task_dependencies::Model {
        task_id,
        depends_on_task_id,
        created_at,
    } = edge;
    pb::TaskDependency {
        task_id: task_id.to_string(),
        depends_on_task_id: depends_on_task_id.to_string(),
        created_at: Some(timestamp(created_at)),
    }
}

/// A stored event on the wire.
pub fn event_to_proto(event: &task_events::Model) -> pb::TaskEvent {
    let task_events::Model {
        id,
        task_id,
        actor_type,
        actor_id,
        event_type,
        payload,
        created_at,
    } = event;
    pb::TaskEvent {
        id: *id,
        task_id: task_id.to_string(),
        actor_type: actor_type.to_proto(),
        actor_id: actor_id.map(|id| id.to_string()),
        event_type: event_type.clone(),
        payload: Some(json_to_struct(payload)),
        created_at: Some(timestamp(created_at)),
    }
}
