//! Tasks, dependencies and events: wire <-> store.

use amon_proto::v1 as pb;

use super::{
    enums::WireEnum, json_to_struct, optional_struct_to_json, optional_timestamp, parse_id,
    parse_optional_id, parse_timestamp, timestamp,
};
use crate::{
    entity::{enums::TaskStatus, task_dependencies, task_events, tasks},
    store::{
        StoreResult,
        tasks::{InputContext, TaskDraft},
    },
};

/// A stored task on the wire.
pub fn task_to_proto(task: &tasks::Model) -> pb::Task {
    pb::Task {
        id: task.id.to_string(),
        owner_id: task.owner_id.to_string(),
        workspace_id: task.workspace_id.to_string(),
        parent_task_id: task.parent_task_id.map(|id| id.to_string()),
        title: task.title.clone(),
        description: task.description.clone(),
        status: task.status.to_proto(),
        priority: Some(i32::from(task.priority)),
        sort_order: task.sort_order,
        assignee_agent_id: task.assignee_agent_id.map(|id| id.to_string()),
        input_context: Some(input_context_to_proto(&InputContext::from_json(
            &task.input_context,
        ))),
        due_at: optional_timestamp(&task.due_at),
        created_at: Some(timestamp(&task.created_at)),
        updated_at: Some(timestamp(&task.updated_at)),
    }
}

fn input_context_to_proto(context: &InputContext) -> pb::TaskInputContext {
    pb::TaskInputContext {
        working_dir: context.working_dir.clone(),
        env_overrides: context.env_overrides.clone().into_iter().collect(),
        args: Some(json_to_struct(&serde_json::Value::Object(
            context.args.clone(),
        ))),
        prompt_additions: context.prompt_additions.clone(),
    }
}

fn input_context_from_proto(context: Option<&pb::TaskInputContext>) -> InputContext {
    let Some(context) = context else {
        return InputContext::default();
    };
    let args = match optional_struct_to_json(&context.args) {
        serde_json::Value::Object(map) => map,
        _ => Default::default(),
    };
    InputContext {
        working_dir: context.working_dir.clone(),
        env_overrides: context.env_overrides.clone().into_iter().collect(),
        args,
        prompt_additions: context.prompt_additions.clone(),
    }
}

/// The caller-settable fields of a wire task.
pub fn task_draft(task: &pb::Task) -> StoreResult<TaskDraft> {
    Ok(TaskDraft {
        title: task.title.clone(),
        description: task.description.clone(),
        status: TaskStatus::from_proto("task.status", task.status)?,
        priority: task
            .priority
            .map(|p| {
                i16::try_from(p).map_err(|_| {
                    crate::store::StoreError::invalid(
                        "task.priority",
                        format!("{p} is out of range"),
                    )
                })
            })
            .transpose()?,
        parent_task_id: task
            .parent_task_id
            .as_deref()
            .map(|id| parse_optional_id("task.parent_task_id", id))
            .transpose()?
            .flatten(),
        assignee_agent_id: task
            .assignee_agent_id
            .as_deref()
            .map(|id| parse_optional_id("task.assignee_agent_id", id))
            .transpose()?
            .flatten(),
        input_context: input_context_from_proto(task.input_context.as_ref()),
        due_at: task
            .due_at
            .as_ref()
            .map(|t| parse_timestamp("task.due_at", t))
            .transpose()?,
    })
}

/// The id of a wire task in an update.
pub fn task_id(task: &pb::Task) -> StoreResult<uuid::Uuid> {
    parse_id("task.id", &task.id)
}

/// A stored dependency edge on the wire.
pub fn dependency_to_proto(edge: &task_dependencies::Model) -> pb::TaskDependency {
    pb::TaskDependency {
        task_id: edge.task_id.to_string(),
        depends_on_task_id: edge.depends_on_task_id.to_string(),
        created_at: Some(timestamp(&edge.created_at)),
    }
}

/// A stored event on the wire.
pub fn event_to_proto(event: &task_events::Model) -> pb::TaskEvent {
    pb::TaskEvent {
        id: event.id,
        task_id: event.task_id.to_string(),
        actor_type: event.actor_type.to_proto(),
        actor_id: event.actor_id.map(|id| id.to_string()),
        event_type: event.event_type.clone(),
        payload: Some(json_to_struct(&event.payload)),
        created_at: Some(timestamp(&event.created_at)),
    }
}
