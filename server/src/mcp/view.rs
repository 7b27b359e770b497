//! What the tools answer: records as JSON a model reads at a glance, with
//! the data model's field names, statuses as their stored names, times in
//! RFC 3339. (The gRPC layer has its own conversions to protobuf; these are
//! for MCP clients, which read JSON.)

use sea_orm::ActiveEnum;
use serde_json::{Value, json};

use crate::{
    entity::{agent_capabilities, agents, executions, task_dependencies, task_events, tasks},
    store::{execution_state, tasks::status_name, worktrees::WorktreeSummary},
};

/// Characters of a description kept in a list (the whole of it is one
/// `get_task` away): lists of long tasks would otherwise fill the model's
/// context with text it did not ask for.
const LIST_DESCRIPTION_CHARS: usize = 280;

fn time(at: &Option<sea_orm::prelude::DateTimeWithTimeZone>) -> Value {
    json!(at.map(|at| at.to_rfc3339()))
}

/// A task, whole.
pub fn task(task: &tasks::Model) -> Value {
    json!({
        "id": task.id,
        "title": task.title,
        "description": task.description,
        "status": status_name(task.status),
        "priority": task.priority,
        "parent_task_id": task.parent_task_id,
        "assignee_agent_id": task.assignee_agent_id,
        "due_at": time(&task.due_at),
        "input_context": task.input_context,
        "created_at": task.created_at.to_rfc3339(),
        "updated_at": task.updated_at.to_rfc3339(),
    })
}

/// A task in a list: its description cut short.
pub fn task_summary(task: &tasks::Model) -> Value {
    let description = task.description.as_deref().map(|d| {
        if d.chars().count() > LIST_DESCRIPTION_CHARS {
            let cut: String = d.chars().take(LIST_DESCRIPTION_CHARS).collect();
            format!("{cut}… (cut; get_task shows all)")
        } else {
            d.to_owned()
        }
    });
    json!({
        "id": task.id,
        "title": task.title,
        "description": description,
        "status": status_name(task.status),
        "priority": task.priority,
        "parent_task_id": task.parent_task_id,
        "assignee_agent_id": task.assignee_agent_id,
        "due_at": time(&task.due_at),
    })
}

/// A dependency edge.
pub fn dependency(edge: &task_dependencies::Model) -> Value {
    json!({
        "task_id": edge.task_id,
        "depends_on_task_id": edge.depends_on_task_id,
        "created_at": edge.created_at.to_rfc3339(),
    })
}

/// An execution.
pub fn execution(execution: &executions::Model) -> Value {
    json!({
        "id": execution.id,
        "task_id": execution.task_id,
        "agent_id": execution.agent_id,
        "capability_id": execution.capability_id,
        "status": execution_state::status_name(execution.status),
        "mode": execution.mode.to_value(),
        "args": execution.args,
        "parent_execution_id": execution.parent_execution_id,
        "session_ref": execution.session_ref,
        "worker_id": execution.worker_id,
        "exit_code": execution.exit_code,
        "error": execution.error,
        "retry_count": execution.retry_count,
        "max_retries": execution.max_retries,
        "log_byte_size": execution.log_byte_size,
        "log_line_count": execution.log_line_count,
        "created_at": execution.created_at.to_rfc3339(),
        "started_at": time(&execution.started_at),
        "ended_at": time(&execution.ended_at),
    })
}

/// What a run changed in its task's git worktree, as its worker recorded it.
pub fn worktree(summary: &WorktreeSummary) -> Value {
    let WorktreeSummary {
        repository,
        path,
        branch,
        base_ref,
        base_commit,
        head_commit,
        commits,
        files,
        files_truncated,
        dirty,
        snapshot_tree: _,
    } = summary;
    json!({
        "repository": repository,
        "path": path,
        "branch": branch,
        "base_ref": base_ref,
        "base_commit": base_commit,
        "head_commit": head_commit,
        "commits": commits,
        "files": files.iter().map(|f| json!({
            "path": f.path,
            "added": f.added,
            "removed": f.removed,
            "binary": f.binary,
        })).collect::<Vec<_>>(),
        "files_truncated": files_truncated,
        "dirty": dirty,
    })
}

/// An agent, without what only its workers need (binary, environment).
pub fn agent(agent: &agents::Model) -> Value {
    json!({
        "id": agent.id,
        "slug": agent.slug,
        "name": agent.name,
        "kind": agent.kind.to_value(),
        "is_active": agent.is_active,
        "max_concurrent": agent.max_concurrent,
        "tool_type": agent.tool_type,
        "mcp_enabled": agent.mcp_enabled,
    })
}

/// A capability, with what a caller needs to run it: its reference
/// (`agent/key`), its arguments' schema, and whether a person must approve.
pub fn capability(capability: &agent_capabilities::Model, agent_slug: &str) -> Value {
    json!({
        "id": capability.id,
        "ref": format!("{agent_slug}/{}", capability.key),
        "agent_id": capability.agent_id,
        "key": capability.key,
        "label": capability.label,
        "description": capability.description,
        "mode": capability.interaction_mode.to_value(),
        "args_schema": capability.args_schema,
        "requires_approval": capability.requires_approval,
        "danger_level": capability.danger_level,
        "danger": match capability.danger_level {
            0 => "safe",
            1 => "caution",
            2 => "dangerous",
            _ => "destructive",
        },
        "is_enabled": capability.is_enabled,
        "timeout_sec": capability.timeout_sec,
    })
}

/// An audit event.
pub fn event(event: &task_events::Model) -> Value {
    json!({
        "id": event.id,
        "task_id": event.task_id,
        "event_type": event.event_type,
        "actor_type": event.actor_type.to_value(),
        "actor_id": event.actor_id,
        "payload": event.payload,
        "created_at": event.created_at.to_rfc3339(),
    })
}
