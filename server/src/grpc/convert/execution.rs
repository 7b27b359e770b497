//! Executions and worker tuning: wire <-> store.

use amon_proto::v1 as pb;

use super::{enums::WireEnum, json_to_struct, optional_timestamp, timestamp};
use crate::{
    entity::executions,
    store::{StoreError, StoreResult, worker_config::SettingsPatch},
};

/// A stored execution on the wire.
pub fn execution_to_proto(execution: &executions::Model) -> pb::Execution {
    pb::Execution {
        id: execution.id.to_string(),
        task_id: execution.task_id.to_string(),
        agent_id: execution.agent_id.to_string(),
        capability_id: execution.capability_id.to_string(),
        requested_by: execution.requested_by.to_string(),
        status: execution.status.to_proto(),
        mode: execution.mode.to_proto(),
        args: Some(json_to_struct(&execution.args)),
        prompt: execution.prompt.clone(),
        pid: execution.pid,
        session_ref: execution.session_ref.clone(),
        tmux_session_name: execution.tmux_session_name.clone(),
        parent_execution_id: execution.parent_execution_id.map(|id| id.to_string()),
        started_at: optional_timestamp(&execution.started_at),
        ended_at: optional_timestamp(&execution.ended_at),
        exit_code: execution.exit_code,
        error: execution.error.clone(),
        worker_id: execution.worker_id.clone(),
        heartbeat_at: optional_timestamp(&execution.heartbeat_at),
        log_file_path: execution.log_file_path.clone(),
        log_byte_size: execution.log_byte_size,
        log_line_count: execution.log_line_count,
        log_updated_at: optional_timestamp(&execution.log_updated_at),
        retry_count: execution.retry_count,
        max_retries: execution.max_retries,
        created_at: Some(timestamp(&execution.created_at)),
    }
}

/// A protobuf duration as a std duration; negative or malformed values are refused.
pub fn parse_duration(
    field: &str,
    value: &prost_types::Duration,
) -> StoreResult<std::time::Duration> {
    if value.seconds < 0 || value.nanos < 0 || value.nanos >= 1_000_000_000 {
        return Err(StoreError::invalid(
            field,
            "must be a non-negative duration",
        ));
    }
    Ok(std::time::Duration::new(
        value.seconds as u64,
        value.nanos as u32,
    ))
}

/// The fields of a `SetWorkerConfig` named in its mask.
pub fn settings_patch(config: &pb::WorkerConfig, paths: &[String]) -> StoreResult<SettingsPatch> {
    let required = |field: &str, value: &Option<prost_types::Duration>| {
        let name = format!("config.{field}");
        value
            .as_ref()
            .ok_or_else(|| StoreError::invalid(&name, "must be set when named in update_mask"))
            .and_then(|v| parse_duration(&name, v))
    };
    let mut patch = SettingsPatch::default();
    for path in paths {
        match path.as_str() {
            "stale_window" => patch.stale_window = Some(required(path, &config.stale_window)?),
            "heartbeat_interval" => {
                patch.heartbeat_interval = Some(required(path, &config.heartbeat_interval)?)
            }
            "cancel_grace" => patch.cancel_grace = Some(required(path, &config.cancel_grace)?),
            "log_chunk_bytes" => {
                patch.log_chunk_bytes =
                    Some(u32::try_from(config.log_chunk_bytes).map_err(|_| {
                        StoreError::invalid("config.log_chunk_bytes", "must not be negative")
                    })?)
            }
            _ => unreachable!("mask_paths checked the paths"),
        }
    }
    Ok(patch)
}

/// The updatable `WorkerConfig` fields.
pub const WORKER_CONFIG_FIELDS: [&str; 4] = [
    "stale_window",
    "heartbeat_interval",
    "cancel_grace",
    "log_chunk_bytes",
];
