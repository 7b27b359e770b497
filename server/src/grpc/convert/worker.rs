//! The worker stream and worker tuning: wire <-> engine.
//!
//! Decoding a worker's message parses every id and enum here, so the engine
//! (`dispatch::session`) only ever sees well-formed reports; errors name the
//! wire field (`log_chunk.offset`).

use std::time::Duration;

use amon_proto::v1::{self as pb, connect_request, connect_response};
use prost_types::Duration as ProtoDuration;

use super::{
    agent::agent_to_proto, enums::WireEnum, json_to_struct, optional_struct_to_json, parse_id,
    timestamp,
};
use crate::{
    dispatch::{
        KnownWorker, WorkerInfo,
        messages::{
            Assignment, Attempt, Finished, FromWorker, Registration, Resumed, TerminalEnd,
            TerminalOpen, ToWorker, WorktreeAction, WorktreeAssignment, WorktreeDone,
        },
    },
    entity::enums::ExecutionStatus,
    store::{
        StoreError, StoreResult,
        validate::check_printable,
        worker_config::{SettingsPatch, WorkerSettings},
        worktrees::{FileChange, WorktreeSummary},
    },
};

/// Longest worker id: a host name's length, twice.
const MAX_WORKER_ID_CHARS: usize = 128;
/// Longest host name, version, label or agent slug a worker may send.
const MAX_LABEL_CHARS: usize = 256;

/// The updatable `WorkerConfig` fields.
pub const WORKER_CONFIG_FIELDS: [&str; 4] = [
    "stale_window",
    "heartbeat_interval",
    "cancel_grace",
    "log_chunk_bytes",
];

/// A std duration on the wire.
pub fn duration_to_proto(value: Duration) -> ProtoDuration {
    ProtoDuration {
        seconds: i64::try_from(value.as_secs()).unwrap_or(i64::MAX),
        nanos: value.subsec_nanos() as i32,
    }
}

/// A protobuf duration as a std duration; negative or malformed values are refused.
pub fn parse_duration(field: &str, value: &ProtoDuration) -> StoreResult<Duration> {
    if value.seconds < 0 || value.nanos < 0 || value.nanos >= 1_000_000_000 {
        return Err(StoreError::invalid(
            field,
            "must be a non-negative duration",
        ));
    }
    Ok(Duration::new(value.seconds as u64, value.nanos as u32))
}

/// The wire form of the tuning values.
pub fn config_to_proto(settings: &WorkerSettings) -> pb::WorkerConfig {
    let WorkerSettings {
        stale_window,
        heartbeat_interval,
        cancel_grace,
        log_chunk_bytes,
    } = *settings;
    pb::WorkerConfig {
        stale_window: Some(duration_to_proto(stale_window)),
        heartbeat_interval: Some(duration_to_proto(heartbeat_interval)),
        cancel_grace: Some(duration_to_proto(cancel_grace)),
        log_chunk_bytes: log_chunk_bytes as i32,
    }
}

/// The fields of a `SetWorkerConfig` named in its mask.
pub fn settings_patch(config: &pb::WorkerConfig, paths: &[String]) -> StoreResult<SettingsPatch> {
    let pb::WorkerConfig {
        stale_window,
        heartbeat_interval,
        cancel_grace,
        log_chunk_bytes,
    } = config;
    let required = |field: &str, value: &Option<ProtoDuration>| {
        let name = format!("config.{field}");
        value
            .as_ref()
            .ok_or_else(|| StoreError::invalid(&name, "must be set when named in update_mask"))
            .and_then(|v| parse_duration(&name, v))
    };
    let mut patch = SettingsPatch::default();
    for path in paths {
        match path.as_str() {
            "stale_window" => patch.stale_window = Some(required(path, stale_window)?),
            "heartbeat_interval" => {
                patch.heartbeat_interval = Some(required(path, heartbeat_interval)?)
            }
            "cancel_grace" => patch.cancel_grace = Some(required(path, cancel_grace)?),
            "log_chunk_bytes" => {
                patch.log_chunk_bytes = Some(u32::try_from(*log_chunk_bytes).map_err(|_| {
                    StoreError::invalid("config.log_chunk_bytes", "must not be negative")
                })?)
            }
            _ => unreachable!("mask_paths checked the paths"),
        }
    }
    Ok(patch)
}

/// A worker as `ListWorkers` shows it.
pub fn known_worker_to_proto(worker: KnownWorker) -> pb::Worker {
    let KnownWorker {
        connected,
        last_heartbeat,
    } = worker;
    match connected {
        Some(info) => {
            let WorkerInfo {
                worker_id,
                hostname,
                version,
                slots,
                agent_slugs: _,
                labels,
                draining,
                running,
                last_seen_at,
                instance_id: _,
            } = info;
            let mut running: Vec<String> = running.iter().map(uuid::Uuid::to_string).collect();
            running.sort();
            pb::Worker {
                current_executions: running.len() as i32,
                worker_id,
                hostname,
                version,
                connected: true,
                draining,
                slots,
                labels: labels.into_iter().collect(),
                running_execution_ids: running,
                last_seen_at: Some(timestamp(&last_seen_at.into())),
                metadata: last_heartbeat.map(|row| json_to_struct(&row.metadata)),
            }
        }
        None => {
            let row = last_heartbeat.expect("a known worker is connected or was seen");
            pb::Worker {
                worker_id: row.worker_id,
                connected: false,
                last_seen_at: Some(timestamp(&row.last_seen_at)),
                current_executions: row.current_executions,
                metadata: Some(json_to_struct(&row.metadata)),
                ..Default::default()
            }
        }
    }
}

/// The `register` a stream must start with.
pub fn registration(first: Option<pb::ConnectRequest>) -> StoreResult<Registration> {
    let Some(pb::ConnectRequest {
        message: Some(connect_request::Message::Register(register)),
    }) = first
    else {
        return Err(StoreError::invalid(
            "register",
            "the first message must be register",
        ));
    };
    let pb::Register {
        worker_id,
        hostname,
        version,
        slots,
        agent_slugs,
        labels,
        running,
        instance_id,
        worktree_task_ids,
    } = register;
    if worktree_task_ids.len() > MAX_WORKTREE_TASK_IDS {
        return Err(StoreError::invalid(
            "register.worktree_task_ids",
            format!("at most {MAX_WORKTREE_TASK_IDS} ids"),
        ));
    }
    for id in &worktree_task_ids {
        check_printable("register.worktree_task_ids", id, MAX_LABEL_CHARS)?;
    }
    let worker_id = worker_id.trim().to_owned();
    if worker_id.is_empty() {
        return Err(StoreError::invalid("register.worker_id", "is required"));
    }
    check_printable("register.worker_id", &worker_id, MAX_WORKER_ID_CHARS)?;
    check_printable("register.hostname", &hostname, MAX_LABEL_CHARS)?;
    check_printable("register.version", &version, MAX_LABEL_CHARS)?;
    check_printable("register.instance_id", &instance_id, MAX_LABEL_CHARS)?;
    for slug in &agent_slugs {
        check_printable("register.agent_slugs", slug, MAX_LABEL_CHARS)?;
    }
    for (key, value) in &labels {
        check_printable("register.labels", key, MAX_LABEL_CHARS)?;
        check_printable("register.labels", value, MAX_LABEL_CHARS)?;
    }
    if slots < 0 {
        return Err(StoreError::invalid(
            "register.slots",
            "must not be negative",
        ));
    }
    let running = running
        .into_iter()
        .map(
            |pb::RunningExecution {
                 execution_id,
                 attempt_token,
             }| {
                Ok((
                    parse_id("register.running.execution_id", &execution_id)?,
                    attempt_token,
                ))
            },
        )
        .collect::<StoreResult<_>>()?;
    Ok(Registration {
        worker_id,
        hostname,
        version,
        slots,
        agent_slugs,
        labels: labels.into_iter().collect(),
        running,
        instance_id,
        worktree_task_ids,
    })
}

fn attempt(field: &str, execution_id: &str, token: String) -> StoreResult<Attempt> {
    Ok(Attempt {
        execution_id: parse_id(&format!("{field}.execution_id"), execution_id)?,
        token,
    })
}

/// A worker's message after its registration; `None` for an empty one.
pub fn from_worker(message: connect_request::Message) -> StoreResult<FromWorker> {
    use connect_request::Message as In;
    Ok(match message {
        In::Register(_) => FromWorker::Register,
        In::SlotGrant(pb::SlotGrant { count }) => FromWorker::SlotGrant {
            count: usize::try_from(count).unwrap_or(0),
        },
        In::Started(pb::RunStarted {
            execution_id,
            attempt_token,
            pid,
            tmux_session_name,
        }) => FromWorker::Started {
            attempt: attempt("started", &execution_id, attempt_token)?,
            pid,
            tmux_session_name,
        },
        In::LogChunk(pb::LogChunk {
            execution_id,
            attempt_token,
            offset,
            data,
        }) => FromWorker::LogChunk {
            attempt: attempt("log_chunk", &execution_id, attempt_token)?,
            offset: u64::try_from(offset)
                .map_err(|_| StoreError::invalid("log_chunk.offset", "must not be negative"))?,
            data,
        },
        In::Heartbeat(pb::Heartbeat {
            running_execution_ids,
            metadata,
        }) => FromWorker::Heartbeat {
            running: running_execution_ids
                .iter()
                .map(|id| parse_id("heartbeat.running_execution_ids", id))
                .collect::<StoreResult<_>>()?,
            metadata: optional_struct_to_json(&metadata),
        },
        In::Finished(pb::RunFinished {
            execution_id,
            attempt_token,
            status,
            exit_code,
            error,
            log_byte_size,
            worktree,
        }) => FromWorker::Finished(Finished {
            attempt: attempt("finished", &execution_id, attempt_token)?,
            status: ExecutionStatus::from_proto("finished.status", status)?
                .ok_or_else(|| StoreError::invalid("finished.status", "is required"))?,
            exit_code,
            error,
            log_byte_size,
            worktree: worktree.map(worktree_summary_from_proto),
        }),
        In::SessionDetected(pb::SessionDetected {
            execution_id,
            attempt_token,
            session_ref,
        }) => FromWorker::SessionDetected {
            attempt: attempt("session_detected", &execution_id, attempt_token)?,
            session_ref,
        },
        In::Drain(pb::Drain { reason }) => FromWorker::Drain { reason },
        In::DiscoverProgress(progress) => {
            let (request_id, progress) = super::discovery::progress_from_worker(progress)?;
            FromWorker::DiscoverProgress {
                request_id,
                progress,
            }
        }
        In::DiscoverResult(result) => {
            let (request_id, result) = super::discovery::result_from_worker(result)?;
            FromWorker::DiscoverResult { request_id, result }
        }
        In::WorktreeResult(result) => {
            let (request_id, result) = worktree_result_from_worker(result)?;
            FromWorker::WorktreeResult { request_id, result }
        }
        In::RunStatus(pb::RunStatus {
            execution_id,
            attempt_token,
            status,
        }) => FromWorker::RunStatus {
            attempt: attempt("run_status", &execution_id, attempt_token)?,
            status: status.filter(|s| !s.trim().is_empty()),
        },
        In::TerminalOpened(pb::TerminalOpened { attach_id }) => FromWorker::TerminalOpened {
            attach_id: parse_id("terminal_opened.attach_id", &attach_id)?,
        },
        In::TerminalOutput(pb::TerminalOutput { attach_id, data }) => FromWorker::TerminalOutput {
            attach_id: parse_id("terminal_output.attach_id", &attach_id)?,
            data,
        },
        In::TerminalClosed(pb::TerminalClosed {
            attach_id,
            reason,
            message,
        }) => FromWorker::TerminalClosed {
            attach_id: parse_id("terminal_closed.attach_id", &attach_id)?,
            end: TerminalEnd::new(
                super::terminal::reason_from_proto(reason),
                // The worker's words, shown to a person: bounded.
                crate::store::validate::cut_to_bytes(message, 1024),
            ),
        },
    })
}

/// A message to a worker on the wire.
pub fn to_worker(message: ToWorker) -> pb::ConnectResponse {
    use connect_response::Message as Out;
    let message = match message {
        ToWorker::Registered {
            worker_id,
            settings,
            resumed,
            gone_worktree_task_ids,
        } => Out::Registered(pb::Registered {
            worker_id,
            gone_worktree_task_ids,
            config: Some(config_to_proto(&settings)),
            resumed: resumed
                .into_iter()
                .map(
                    |Resumed {
                         execution_id,
                         attempt_token,
                         acknowledged_offset,
                     }| pb::ResumedExecution {
                        execution_id: execution_id.to_string(),
                        attempt_token,
                        acknowledged_offset: acknowledged_offset as i64,
                    },
                )
                .collect(),
        }),
        ToWorker::Assign(assignment) => Out::Assign(assign_to_proto(*assignment)),
        ToWorker::LogAck {
            execution_id,
            attempt_token,
            offset,
        } => Out::LogAck(pb::LogAck {
            execution_id: execution_id.to_string(),
            offset: offset as i64,
            attempt_token,
        }),
        ToWorker::FinishedAck {
            execution_id,
            attempt_token,
            refused,
        } => Out::FinishedAck(pb::RunFinishedAck {
            execution_id: execution_id.to_string(),
            attempt_token,
            accepted: refused.is_none(),
            error: refused.unwrap_or_default(),
        }),
        ToWorker::HeartbeatAck => Out::HeartbeatAck(pb::HeartbeatAck {}),
        ToWorker::Cancel {
            execution_id,
            attempt_token,
            reason,
            forget,
        } => Out::Cancel(pb::Cancel {
            execution_id: execution_id.to_string(),
            attempt_token,
            reason,
            forget,
        }),
        ToWorker::Config(settings) => Out::Config(config_to_proto(&settings)),
        ToWorker::Discover {
            request_id,
            request,
        } => Out::Discover(super::discovery::discover_to_proto(request_id, request)),
        ToWorker::Worktree { request_id, action } => {
            Out::WorktreeRequest(worktree_action_to_proto(request_id, action))
        }
        ToWorker::TerminalOpen(TerminalOpen {
            attach_id,
            execution_id,
            attempt_token,
            tmux_session_name,
            read_only,
            size,
            window,
        }) => Out::TerminalOpen(pb::TerminalOpen {
            attach_id: attach_id.to_string(),
            execution_id: execution_id.to_string(),
            attempt_token,
            tmux_session_name,
            read_only,
            size: Some(super::terminal::size_to_proto(size)),
            window: i64::try_from(window).unwrap_or(i64::MAX),
        }),
        ToWorker::TerminalInput { attach_id, data } => Out::TerminalInput(pb::TerminalInput {
            attach_id: attach_id.to_string(),
            data,
        }),
        ToWorker::TerminalResize { attach_id, size } => Out::TerminalResize(pb::TerminalResize {
            attach_id: attach_id.to_string(),
            size: Some(super::terminal::size_to_proto(size)),
        }),
        ToWorker::TerminalGrant { attach_id, bytes } => Out::TerminalGrant(pb::TerminalGrant {
            attach_id: attach_id.to_string(),
            bytes: i64::try_from(bytes).unwrap_or(i64::MAX),
        }),
        ToWorker::TerminalClose { attach_id } => Out::TerminalClose(pb::TerminalClose {
            attach_id: attach_id.to_string(),
        }),
    };
    pb::ConnectResponse {
        message: Some(message),
    }
}

fn assign_to_proto(assignment: Assignment) -> pb::Assign {
    let Assignment {
        execution_id,
        attempt_token,
        task_id,
        agent,
        mode,
        argv,
        prompt,
        working_dir,
        env,
        env_allowlist,
        timeout,
        max_output_bytes,
        attempt,
        resume_session_ref,
        tmux_session_name,
        log_offset,
        mcp_server_url,
        mcp_token,
        worktree,
    } = assignment;
    pb::Assign {
        execution_id: execution_id.to_string(),
        attempt_token,
        task_id: task_id.to_string(),
        agent: Some(agent_to_proto(&agent)),
        mode: mode.to_proto(),
        argv,
        prompt,
        working_dir,
        env: env.into_iter().collect(),
        env_allowlist,
        timeout: Some(duration_to_proto(timeout)),
        max_output_bytes,
        attempt,
        resume_session_ref,
        tmux_session_name,
        log_offset: log_offset as i64,
        mcp_server_url,
        mcp_token,
        worktree: worktree.map(
            |WorktreeAssignment { branch, base_ref }| pb::WorktreeAssignment { branch, base_ref },
        ),
    }
}

/// Most worktrees a worker may list at registration: far more than a worker
/// holds, and few enough for one query.
const MAX_WORKTREE_TASK_IDS: usize = 10_000;

/// A worktree summary as a worker reported it (lengths bounded by the
/// stream's message limit; stored as reported).
pub fn worktree_summary_from_proto(summary: pb::WorktreeSummary) -> WorktreeSummary {
    let pb::WorktreeSummary {
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
        snapshot_tree,
    } = summary;
    WorktreeSummary {
        repository,
        path,
        branch,
        base_ref,
        base_commit,
        head_commit,
        commits,
        files: files
            .into_iter()
            .map(
                |pb::WorktreeFileChange {
                     path,
                     added,
                     removed,
                     binary,
                 }| FileChange {
                    path,
                    added,
                    removed,
                    binary,
                },
            )
            .collect(),
        files_truncated,
        dirty,
        snapshot_tree,
    }
}

/// The wire form of a recorded worktree summary.
pub fn worktree_summary_to_proto(summary: &WorktreeSummary) -> pb::WorktreeSummary {
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
        snapshot_tree,
    } = summary;
    pb::WorktreeSummary {
        repository: repository.clone(),
        path: path.clone(),
        branch: branch.clone(),
        base_ref: base_ref.clone(),
        base_commit: base_commit.clone(),
        head_commit: head_commit.clone(),
        commits: *commits,
        files: files
            .iter()
            .map(
                |FileChange {
                     path,
                     added,
                     removed,
                     binary,
                 }| pb::WorktreeFileChange {
                    path: path.clone(),
                    added: *added,
                    removed: *removed,
                    binary: *binary,
                },
            )
            .collect(),
        files_truncated: *files_truncated,
        dirty: *dirty,
        snapshot_tree: snapshot_tree.clone(),
    }
}

fn worktree_action_to_proto(request_id: uuid::Uuid, action: WorktreeAction) -> pb::WorktreeRequest {
    use pb::worktree_request::Action;
    let action = match action {
        WorktreeAction::Diff {
            repository,
            base_commit,
            snapshot_tree,
            max_bytes,
        } => Action::Diff(pb::WorktreeDiff {
            repository,
            base_commit,
            snapshot_tree,
            max_bytes: i64::try_from(max_bytes).unwrap_or(i64::MAX),
        }),
        WorktreeAction::Finish {
            task_id,
            repository,
            branch,
            remove_branch,
            force,
        } => Action::Finish(pb::WorktreeFinish {
            task_id: task_id.to_string(),
            repository,
            branch,
            remove_branch,
            force,
        }),
    };
    pb::WorktreeRequest {
        request_id: request_id.to_string(),
        action: Some(action),
    }
}

fn worktree_result_from_worker(
    result: pb::WorktreeResult,
) -> StoreResult<(uuid::Uuid, Result<WorktreeDone, String>)> {
    let pb::WorktreeResult {
        request_id,
        error,
        diff,
        truncated,
        worktree_removed,
        branch_removed,
    } = result;
    let request_id = parse_id("worktree_result.request_id", &request_id)?;
    if !error.is_empty() {
        return Ok((request_id, Err(error)));
    }
    Ok((
        request_id,
        Ok(WorktreeDone {
            diff,
            truncated,
            worktree_removed,
            branch_removed,
        }),
    ))
}
