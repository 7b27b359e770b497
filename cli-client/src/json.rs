//! JSON: conversion between `serde_json::Value` and `google.protobuf.Struct`,
//! and the `--json` rendering of every message the CLI prints.
//!
//! Conventions of `--json` output (the README of the crate repeats them):
//! - field names are the protobuf field names (snake_case), every field is
//!   present: an unset optional field or message is `null`, an empty
//!   repeated field `[]`, an empty map `{}`;
//! - enums are their short lowercase names (`"in_progress"`,
//!   `"timed_out"`), `null` when unspecified, the bare number when this
//!   client does not know the value;
//! - timestamps are RFC 3339 strings in UTC (`"2024-05-01T12:00:00Z"`),
//!   durations protobuf-JSON strings (`"120s"`, `"1.5s"`);
//! - 64-bit integers are JSON numbers (ids and offsets stay far below 2^53);
//! - `Struct` fields (`args`, `args_schema`, `payload`, `metadata`) are plain
//!   JSON objects.

use std::collections::BTreeMap;

use amon_proto::v1::{
    ActorType, Agent, AgentKind, AgentMetadata, AgentSessionConfig, BidirectionalProtocol,
    BoardColumn, Capability, CapabilitySource, DiscoveryMethod, Execution, ExecutionStatus,
    InteractionMode, SessionIdSource, Task, TaskDependency, TaskEvent, TaskInputContext,
    TaskStatus, Worker, WorkerConfig, WorktreeIsolation, WorktreeSummary,
};
use prost_types::{ListValue, Struct, value::Kind};
use serde_json::{Map, Number, Value, json};

use crate::enums::{self, ProtoEnum};

// ---------------------------------------------------------------------------
// google.protobuf.Struct <-> serde_json::Value

/// A `Struct` as a JSON object.
pub fn struct_to_json(s: &Struct) -> Value {
    Value::Object(
        s.fields
            .iter()
            .map(|(k, v)| (k.clone(), value_to_json(v)))
            .collect(),
    )
}

/// An optional `Struct` as a JSON object, `null` when absent.
pub fn opt_struct_to_json(s: Option<&Struct>) -> Value {
    s.map(struct_to_json).unwrap_or(Value::Null)
}

/// A `google.protobuf.Value` as JSON. Whole numbers print without a
/// fraction (`42`, not `42.0`); NaN and infinities, which JSON cannot hold,
/// become `null`.
pub fn value_to_json(v: &prost_types::Value) -> Value {
    match &v.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        Some(Kind::NumberValue(n)) => number_to_json(*n),
        Some(Kind::StructValue(s)) => struct_to_json(s),
        Some(Kind::ListValue(l)) => Value::Array(l.values.iter().map(value_to_json).collect()),
    }
}

fn number_to_json(n: f64) -> Value {
    // 2^53: every integer up to here is exact in an f64.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if n.fract() == 0.0 && n.abs() <= EXACT {
        Value::Number(Number::from(n as i64))
    } else {
        Number::from_f64(n)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

/// The fields of a JSON object as a `Struct`.
pub fn map_to_struct(map: &Map<String, Value>) -> Struct {
    Struct {
        fields: map
            .iter()
            .map(|(k, v)| (k.clone(), json_to_value(v)))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// Key/value pairs as a `Struct`; a later key replaces an earlier one.
pub fn pairs_to_struct(pairs: &[(String, Value)]) -> Struct {
    Struct {
        fields: pairs
            .iter()
            .map(|(k, v)| (k.clone(), json_to_value(v)))
            .collect(),
    }
}

/// A JSON value as a `google.protobuf.Value`. Numbers become f64, as
/// protobuf holds them (integers beyond 2^53 lose precision).
pub fn json_to_value(v: &Value) -> prost_types::Value {
    let kind = match v {
        Value::Null => Kind::NullValue(prost_types::NullValue::NullValue as i32),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(items) => Kind::ListValue(ListValue {
            values: items.iter().map(json_to_value).collect(),
        }),
        Value::Object(map) => Kind::StructValue(map_to_struct(map)),
    };
    prost_types::Value { kind: Some(kind) }
}

// ---------------------------------------------------------------------------
// Scalars

/// A timestamp in RFC 3339, UTC, with as many fraction digits as it needs.
pub fn rfc3339(ts: &prost_types::Timestamp) -> String {
    let nanos = u32::try_from(ts.nanos).unwrap_or(0);
    match chrono::DateTime::from_timestamp(ts.seconds, nanos) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        None => format!("{}s after the epoch", ts.seconds),
    }
}

/// An optional timestamp as JSON: an RFC 3339 string or `null`.
pub fn timestamp(ts: Option<&prost_types::Timestamp>) -> Value {
    ts.map(|t| Value::String(rfc3339(t))).unwrap_or(Value::Null)
}

/// A duration in protobuf-JSON form: seconds with an `s` suffix and only the
/// fraction digits it needs (`"120s"`, `"1.5s"`, `"-0.25s"`).
pub fn duration_string(d: &prost_types::Duration) -> String {
    let negative = d.seconds < 0 || d.nanos < 0;
    let seconds = d.seconds.unsigned_abs();
    let nanos = d.nanos.unsigned_abs();
    let sign = if negative { "-" } else { "" };
    if nanos == 0 {
        format!("{sign}{seconds}s")
    } else {
        let fraction = format!("{nanos:09}");
        format!("{sign}{seconds}.{}s", fraction.trim_end_matches('0'))
    }
}

/// An optional duration as JSON: a string or `null`.
pub fn duration(d: Option<&prost_types::Duration>) -> Value {
    d.map(|d| Value::String(duration_string(d)))
        .unwrap_or(Value::Null)
}

/// An enum field as JSON: its short name, `null` when unspecified, the
/// number when unknown to this client.
pub fn enumeration<E: ProtoEnum>(number: i32) -> Value {
    match enums::name_of::<E>(number) {
        Some(name) => Value::String(name.to_string()),
        None if number == 0 => Value::Null,
        None => Value::Number(number.into()),
    }
}

fn string_map(map: &std::collections::HashMap<String, String>) -> Value {
    // Sorted, so output is stable.
    Value::Object(
        map.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<BTreeMap<_, _>>()
            .into_iter()
            .collect(),
    )
}

// ---------------------------------------------------------------------------
// Messages

/// An `Agent`.
pub fn agent(a: &Agent) -> Value {
    json!({
        "id": a.id,
        "owner_id": a.owner_id,
        "workspace_id": a.workspace_id,
        "name": a.name,
        "slug": a.slug,
        "kind": enumeration::<AgentKind>(a.kind),
        "binary_path": a.binary_path,
        "base_args": a.base_args,
        "working_dir": a.working_dir,
        "env_allowlist": a.env_allowlist,
        "is_active": a.is_active,
        "max_concurrent": a.max_concurrent,
        "discovery_method": enumeration::<DiscoveryMethod>(a.discovery_method),
        "version": a.version,
        "package_name": a.package_name,
        "package_section": a.package_section,
        "tool_type": a.tool_type,
        "mcp_enabled": a.mcp_enabled,
        "session_config": a.session_config.as_ref().map(session_config),
        "last_scanned_at": timestamp(a.last_scanned_at.as_ref()),
        "metadata": a.metadata.as_ref().map(agent_metadata),
        "created_at": timestamp(a.created_at.as_ref()),
        "updated_at": timestamp(a.updated_at.as_ref()),
    })
}

/// An `AgentMetadata`.
pub fn agent_metadata(m: &AgentMetadata) -> Value {
    json!({
        "icon": m.icon,
        "color": m.color,
        "description": m.description,
        "homepage": m.homepage,
    })
}

/// An `AgentSessionConfig`.
pub fn session_config(c: &AgentSessionConfig) -> Value {
    json!({
        "session_id_source": enumeration::<SessionIdSource>(c.session_id_source),
        "session_id_field": c.session_id_field,
        "session_file_glob": c.session_file_glob,
        "list_sessions_command": c.list_sessions_command,
        "list_sessions_pattern": c.list_sessions_pattern,
        "resume_flags": c.resume_flags,
        "continue_flags": c.continue_flags,
        "bidirectional_protocol": enumeration::<BidirectionalProtocol>(c.bidirectional_protocol),
        "completion_idle": duration(c.completion_idle.as_ref()),
    })
}

/// A `Capability`.
pub fn capability(c: &Capability) -> Value {
    json!({
        "id": c.id,
        "agent_id": c.agent_id,
        "key": c.key,
        "label": c.label,
        "description": c.description,
        "source": enumeration::<CapabilitySource>(c.source),
        "interaction_mode": enumeration::<InteractionMode>(c.interaction_mode),
        "command_tokens": c.command_tokens,
        "prompt_template": c.prompt_template,
        "args_schema": opt_struct_to_json(c.args_schema.as_ref()),
        "requires_approval": c.requires_approval,
        "is_enabled": c.is_enabled,
        "danger_level": c.danger_level,
        "timeout_sec": c.timeout_sec,
        "max_output_bytes": c.max_output_bytes,
        "created_at": timestamp(c.created_at.as_ref()),
    })
}

/// A `Task`.
pub fn task(t: &Task) -> Value {
    json!({
        "id": t.id,
        "owner_id": t.owner_id,
        "workspace_id": t.workspace_id,
        "parent_task_id": t.parent_task_id,
        "title": t.title,
        "description": t.description,
        "status": enumeration::<TaskStatus>(t.status),
        "priority": t.priority,
        "sort_order": t.sort_order,
        "assignee_agent_id": t.assignee_agent_id,
        "input_context": t.input_context.as_ref().map(input_context),
        "due_at": timestamp(t.due_at.as_ref()),
        "created_at": timestamp(t.created_at.as_ref()),
        "updated_at": timestamp(t.updated_at.as_ref()),
    })
}

/// A `TaskInputContext`.
pub fn input_context(c: &TaskInputContext) -> Value {
    json!({
        "working_dir": c.working_dir,
        "env_overrides": string_map(&c.env_overrides),
        "args": opt_struct_to_json(c.args.as_ref()),
        "prompt_additions": c.prompt_additions,
        "isolation": match WorktreeIsolation::try_from(c.isolation) {
            Ok(WorktreeIsolation::Worktree) => Some("worktree"),
            Ok(WorktreeIsolation::None) => Some("none"),
            _ => None,
        },
        "base_ref": c.base_ref,
    })
}

/// A `TaskDependency`.
pub fn dependency(d: &TaskDependency) -> Value {
    json!({
        "task_id": d.task_id,
        "depends_on_task_id": d.depends_on_task_id,
        "created_at": timestamp(d.created_at.as_ref()),
    })
}

/// A `TaskEvent`.
pub fn event(e: &TaskEvent) -> Value {
    json!({
        "id": e.id,
        "task_id": e.task_id,
        "actor_type": enumeration::<ActorType>(e.actor_type),
        "actor_id": e.actor_id,
        "event_type": e.event_type,
        "payload": opt_struct_to_json(e.payload.as_ref()),
        "created_at": timestamp(e.created_at.as_ref()),
    })
}

/// A `BoardColumn`.
pub fn board_column(c: &BoardColumn) -> Value {
    json!({
        "status": enumeration::<TaskStatus>(c.status),
        "tasks": c.tasks.iter().map(task).collect::<Vec<_>>(),
        "truncated": c.truncated,
    })
}

/// An `Execution`.
pub fn execution(e: &Execution) -> Value {
    json!({
        "id": e.id,
        "task_id": e.task_id,
        "agent_id": e.agent_id,
        "capability_id": e.capability_id,
        "requested_by": e.requested_by,
        "status": enumeration::<ExecutionStatus>(e.status),
        "mode": enumeration::<InteractionMode>(e.mode),
        "args": opt_struct_to_json(e.args.as_ref()),
        "prompt": e.prompt,
        "pid": e.pid,
        "session_ref": e.session_ref,
        "tmux_session_name": e.tmux_session_name,
        "parent_execution_id": e.parent_execution_id,
        "started_at": timestamp(e.started_at.as_ref()),
        "ended_at": timestamp(e.ended_at.as_ref()),
        "exit_code": e.exit_code,
        "error": e.error,
        "worker_id": e.worker_id,
        "heartbeat_at": timestamp(e.heartbeat_at.as_ref()),
        "log_file_path": e.log_file_path,
        "log_byte_size": e.log_byte_size,
        "log_line_count": e.log_line_count,
        "log_updated_at": timestamp(e.log_updated_at.as_ref()),
        "retry_count": e.retry_count,
        "max_retries": e.max_retries,
        "created_at": timestamp(e.created_at.as_ref()),
        "worktree": e.worktree.as_ref().map(worktree_summary),
    })
}

/// A `WorktreeSummary`: what a run changed in its task's git worktree.
pub fn worktree_summary(w: &WorktreeSummary) -> Value {
    json!({
        "repository": w.repository,
        "path": w.path,
        "branch": w.branch,
        "base_ref": w.base_ref,
        "base_commit": w.base_commit,
        "head_commit": w.head_commit,
        "commits": w.commits,
        "files": w.files.iter().map(|f| json!({
            "path": f.path, "added": f.added, "removed": f.removed, "binary": f.binary,
        })).collect::<Vec<_>>(),
        "files_truncated": w.files_truncated,
        "dirty": w.dirty,
        "snapshot_tree": w.snapshot_tree,
    })
}

/// A `Worker`.
pub fn worker(w: &Worker) -> Value {
    json!({
        "worker_id": w.worker_id,
        "hostname": w.hostname,
        "version": w.version,
        "connected": w.connected,
        "draining": w.draining,
        "slots": w.slots,
        "labels": string_map(&w.labels),
        "running_execution_ids": w.running_execution_ids,
        "last_seen_at": timestamp(w.last_seen_at.as_ref()),
        "current_executions": w.current_executions,
        "metadata": opt_struct_to_json(w.metadata.as_ref()),
    })
}

/// A `WorkerConfig`.
pub fn worker_config(c: &WorkerConfig) -> Value {
    json!({
        "stale_window": duration(c.stale_window.as_ref()),
        "heartbeat_interval": duration(c.heartbeat_interval.as_ref()),
        "cancel_grace": duration(c.cancel_grace.as_ref()),
        "log_chunk_bytes": c.log_chunk_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_round_trips_through_json() {
        let doc = json!({
            "count": 3,
            "ratio": 0.5,
            "name": "hello",
            "flag": true,
            "nothing": null,
            "list": [1, "two", [3], {"four": 4}],
            "nested": {"a": {"b": []}},
            "big": 9007199254740992i64,
            "negative": -12,
        });
        let s = map_to_struct(doc.as_object().unwrap());
        assert_eq!(struct_to_json(&s), doc);
        // And through a google.protobuf.Value holding it.
        assert_eq!(value_to_json(&json_to_value(&doc)), doc);
    }

    #[test]
    fn whole_numbers_print_without_fraction() {
        let v = json_to_value(&json!(42));
        assert_eq!(v.kind, Some(Kind::NumberValue(42.0)));
        assert_eq!(value_to_json(&v).to_string(), "42");
        assert_eq!(
            value_to_json(&json_to_value(&json!(1.25))).to_string(),
            "1.25"
        );
        assert_eq!(number_to_json(f64::NAN), Value::Null);
        assert_eq!(number_to_json(f64::INFINITY), Value::Null);
        // Beyond 2^53 the f64 is kept as a float.
        assert!(number_to_json(1e300).is_f64());
    }

    #[test]
    fn pairs_make_a_struct_last_wins() {
        let s = pairs_to_struct(&[
            ("a".into(), json!(1)),
            ("b".into(), json!({"c": true})),
            ("a".into(), json!("again")),
        ]);
        assert_eq!(struct_to_json(&s), json!({"a": "again", "b": {"c": true}}));
    }

    #[test]
    fn empty_value_kind_is_null() {
        assert_eq!(
            value_to_json(&prost_types::Value { kind: None }),
            Value::Null
        );
    }

    #[test]
    fn timestamps_and_durations() {
        let ts = prost_types::Timestamp {
            seconds: 1_714_564_800,
            nanos: 0,
        };
        assert_eq!(rfc3339(&ts), "2024-05-01T12:00:00Z");
        let ts = prost_types::Timestamp {
            seconds: 1_714_564_800,
            nanos: 250_000_000,
        };
        assert_eq!(rfc3339(&ts), "2024-05-01T12:00:00.250Z");
        assert_eq!(timestamp(None), Value::Null);

        let d = |seconds, nanos| prost_types::Duration { seconds, nanos };
        assert_eq!(duration_string(&d(120, 0)), "120s");
        assert_eq!(duration_string(&d(1, 500_000_000)), "1.5s");
        assert_eq!(duration_string(&d(0, 1)), "0.000000001s");
        assert_eq!(duration_string(&d(0, -250_000_000)), "-0.25s");
    }

    #[test]
    fn enums_are_short_names_or_null() {
        assert_eq!(enumeration::<TaskStatus>(2), json!("in_progress"));
        assert_eq!(enumeration::<TaskStatus>(0), Value::Null);
        assert_eq!(enumeration::<TaskStatus>(99), json!(99));
    }

    #[test]
    fn task_json_has_every_field() {
        let t = Task {
            id: "t1".into(),
            title: "Write docs".into(),
            status: TaskStatus::Blocked as i32,
            priority: Some(2),
            input_context: Some(TaskInputContext {
                env_overrides: [("B".to_string(), "2".to_string()), ("A".into(), "1".into())]
                    .into(),
                args: Some(pairs_to_struct(&[("n".into(), json!(3))])),
                ..Default::default()
            }),
            ..Default::default()
        };
        let v = task(&t);
        assert_eq!(v["status"], "blocked");
        assert_eq!(v["priority"], 2);
        assert_eq!(v["description"], Value::Null);
        assert_eq!(v["due_at"], Value::Null);
        assert_eq!(v["input_context"]["args"], json!({"n": 3}));
        assert_eq!(
            v["input_context"]["env_overrides"].to_string(),
            r#"{"A":"1","B":"2"}"#
        );
        assert_eq!(v.as_object().unwrap().len(), 14);
    }

    #[test]
    fn execution_and_worker_config_json() {
        let e = Execution {
            id: "e1".into(),
            status: ExecutionStatus::TimedOut as i32,
            mode: InteractionMode::Template as i32,
            exit_code: None,
            log_byte_size: 5_000_000_000,
            ..Default::default()
        };
        let v = execution(&e);
        assert_eq!(v["status"], "timed_out");
        assert_eq!(v["mode"], "template");
        assert_eq!(v["exit_code"], Value::Null);
        assert_eq!(v["log_byte_size"], 5_000_000_000i64);
        assert_eq!(v["args"], Value::Null);

        let c = WorkerConfig {
            stale_window: Some(prost_types::Duration {
                seconds: 120,
                nanos: 0,
            }),
            log_chunk_bytes: 65536,
            ..Default::default()
        };
        assert_eq!(
            worker_config(&c),
            json!({"stale_window": "120s", "heartbeat_interval": null, "cancel_grace": null, "log_chunk_bytes": 65536})
        );
    }
}
