//! Executions: wire <-> store.

use amon_proto::v1 as pb;

use super::{enums::WireEnum, json_to_struct, optional_timestamp, timestamp};
use crate::entity::executions;

/// A stored execution on the wire.
pub fn execution_to_proto(execution: &executions::Model) -> pb::Execution {
    let executions::Model {
        id,
        task_id,
        agent_id,
        capability_id,
        requested_by,
        status,
        mode,
        args,
        prompt,
        pid,
        session_ref,
        tmux_session_name,
        parent_execution_id,
        started_at,
        ended_at,
        exit_code,
        error,
        worker_id,
        heartbeat_at,
        log_file_path,
        log_byte_size,
        log_line_count,
        log_updated_at,
        retry_count,
        max_retries,
        created_at,
    } = execution;
    pb::Execution {
        id: id.to_string(),
        task_id: task_id.to_string(),
        agent_id: agent_id.to_string(),
        capability_id: capability_id.to_string(),
        requested_by: requested_by.to_string(),
        status: status.to_proto(),
        mode: mode.to_proto(),
        args: Some(json_to_struct(args)),
        prompt: prompt.clone(),
        pid: *pid,
        session_ref: session_ref.clone(),
        tmux_session_name: tmux_session_name.clone(),
        parent_execution_id: parent_execution_id.map(|id| id.to_string()),
        started_at: optional_timestamp(started_at),
        ended_at: optional_timestamp(ended_at),
        exit_code: *exit_code,
        error: error.clone(),
        worker_id: worker_id.clone(),
        heartbeat_at: optional_timestamp(heartbeat_at),
        log_file_path: log_file_path.clone(),
        log_byte_size: *log_byte_size,
        log_line_count: *log_line_count,
        log_updated_at: optional_timestamp(log_updated_at),
        retry_count: *retry_count,
        max_retries: *max_retries,
        created_at: Some(timestamp(created_at)),
        // Not a column of the row: `execution_worktrees`, joined by the
        // handlers that show it (GetExecution, ListExecutions).
        worktree: None,
    }
}
