//! Human output: kubectl-style tables for lists, aligned `key: value` views
//! for single resources, one line per task event. Ids are shortened to
//! their first 8 characters in tables (every command accepts such a prefix
//! back); detail views show them whole.

use std::collections::HashMap;

use amon_proto::v1::{
    ActorType, Agent, AgentKind, Capability, CapabilitySource, DiscoveryMethod, Execution,
    ExecutionStatus, InteractionMode, Task, TaskEvent, TaskStatus, Worker, WorkerConfig,
};
use comfy_table::{Cell, ColumnConstraint, ContentArrangement, Row, Table, Width, presets};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::{enums, json, output};

/// Agent ids → slugs, to show agents by name; may be empty (ids are shown).
pub type AgentNames = HashMap<String, String>;

/// Narrowest a flexible table column is cut to.
const FLEXIBLE_MIN: usize = 16;

/// Length of a short id.
pub const SHORT_ID: usize = 8;

/// The first 8 characters of an id.
pub fn short_id(id: &str) -> String {
    id.chars().take(SHORT_ID).collect()
}

/// `text` cut to `width` terminal columns, ending in `…` when cut.
pub fn truncate(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > width - 1 {
            break;
        }
        out.push(c);
        used += w;
    }
    // "Write the…", not "Write the …".
    let kept = out.trim_end().len();
    out.truncate(kept);
    out.push('…');
    out
}

/// `text` padded with spaces to `width` terminal columns (cut first if longer).
pub fn pad(text: &str, width: usize) -> String {
    let text = truncate(text, width);
    let fill = width.saturating_sub(text.width());
    format!("{text}{}", " ".repeat(fill))
}

fn agent_name(names: &AgentNames, id: &str) -> String {
    if id.is_empty() {
        return "-".to_string();
    }
    names.get(id).cloned().unwrap_or_else(|| short_id(id))
}

fn opt_agent_name(names: &AgentNames, id: Option<&String>) -> String {
    id.map(|id| agent_name(names, id))
        .unwrap_or_else(|| "-".to_string())
}

fn or_dash(value: Option<&String>) -> String {
    value
        .filter(|v| !v.is_empty())
        .cloned()
        .unwrap_or_else(|| "-".to_string())
}

fn opt_num<T: ToString>(value: Option<T>) -> String {
    value
        .map(|v| v.to_string())
        .unwrap_or_else(|| "-".to_string())
}

fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_string()
}

/// A timestamp for people: RFC 3339 in UTC to the second, `-` when unset.
pub fn time(ts: Option<&prost_types::Timestamp>) -> String {
    match ts {
        None => "-".to_string(),
        Some(ts) => {
            let nanos = u32::try_from(ts.nanos).unwrap_or(0);
            chrono::DateTime::from_timestamp(ts.seconds, nanos)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_else(|| json::rfc3339(ts))
        }
    }
}

/// A timestamp for tables: `2024-05-01 12:00` (UTC), `-` when unset.
pub fn short_time(ts: Option<&prost_types::Timestamp>) -> String {
    ts.and_then(|ts| chrono::DateTime::from_timestamp(ts.seconds, 0))
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "-".to_string())
}

/// A byte count for people (`512 B`, `1.5 KiB`, `3.2 MiB`).
pub fn bytes(n: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value.abs() >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn args_text(s: Option<&prost_types::Struct>) -> String {
    match s {
        Some(s) if !s.fields.is_empty() => json::struct_to_json(s).to_string(),
        _ => "-".to_string(),
    }
}

/// A list table: no borders, upper-case headers, columns two spaces apart.
/// On a terminal, the `flexible` columns (long free text: titles, labels,
/// commands) are cut with `…` to fit its width; the others keep their
/// content's width. Piped output is never cut.
pub fn list(headers: &[&str], flexible: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut table = Table::new();
    table.load_style(presets::NOTHING);
    table.set_header(headers.iter().map(|h| Cell::new(h.to_uppercase())));
    let width = output::terminal_width();
    if let Some(width) = width {
        table
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(u16::try_from(width).unwrap_or(u16::MAX))
            .set_truncation_indicator("…");
    }
    // A flexible column keeps at least its header and a few words.
    let minimum: Vec<u16> = headers
        .iter()
        .enumerate()
        .map(|(i, header)| {
            let content = rows
                .iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.width())
                .max()
                .unwrap_or(0);
            // + 2: the boundary counts the padding.
            u16::try_from(content.min(FLEXIBLE_MIN).max(header.len()) + 2).unwrap_or(u16::MAX)
        })
        .collect();
    for cells in rows {
        let mut row = Row::from(cells);
        if width.is_some() {
            row.max_height(1);
        }
        table.add_row(row);
    }
    for (i, (column, header)) in table.column_iter_mut().zip(headers).enumerate() {
        column.set_padding((0, 2));
        column.set_constraint(if flexible.contains(header) {
            ColumnConstraint::LowerBoundary(Width::Fixed(minimum[i]))
        } else {
            ColumnConstraint::ContentWidth
        });
    }
    table.trim_fmt()
}

/// A detail view: one `key: value` line per field, values aligned; the
/// lines of a multi-line value are indented under the first.
pub fn detail(rows: &[(&str, String)]) -> String {
    let key_width = rows.iter().map(|(k, _)| k.len() + 1).max().unwrap_or(0);
    let mut out = String::new();
    for (key, value) in rows {
        let label = format!("{key}:");
        let mut lines = value.lines();
        let first = lines.next().unwrap_or("");
        out.push_str(format!("{label:<key_width$}  {first}").trim_end());
        out.push('\n');
        for more in lines {
            out.push_str(&" ".repeat(key_width + 2));
            out.push_str(more);
            out.push('\n');
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Agents and capabilities

/// Agents as a table.
pub fn agents(list_: &[Agent]) -> String {
    list(
        &["id", "slug", "name", "kind", "active", "max", "binary"],
        &["name", "binary"],
        list_
            .iter()
            .map(|a| {
                vec![
                    short_id(&a.id),
                    a.slug.clone(),
                    a.name.clone(),
                    enums::display::<AgentKind>(a.kind),
                    a.is_active.map(yes_no).unwrap_or_else(|| "-".into()),
                    opt_num(a.max_concurrent),
                    a.binary_path.clone(),
                ]
            })
            .collect(),
    )
}

/// One agent in full.
pub fn agent(a: &Agent) -> String {
    let metadata = a.metadata.clone().unwrap_or_default();
    let mut rows = vec![
        ("id", a.id.clone()),
        ("name", a.name.clone()),
        ("slug", a.slug.clone()),
        ("kind", enums::display::<AgentKind>(a.kind)),
        ("binary", a.binary_path.clone()),
        ("base args", list_text(&a.base_args)),
        ("working dir", or_dash(a.working_dir.as_ref())),
        ("env allowlist", list_text(&a.env_allowlist)),
        (
            "active",
            a.is_active.map(yes_no).unwrap_or_else(|| "-".into()),
        ),
        ("max concurrent", opt_num(a.max_concurrent)),
        ("mcp", yes_no(a.mcp_enabled)),
        (
            "discovery",
            enums::display::<DiscoveryMethod>(a.discovery_method),
        ),
        ("version", or_dash(a.version.as_ref())),
        ("tool type", or_dash(a.tool_type.as_ref())),
        ("description", or_dash(metadata.description.as_ref())),
    ];
    if let Some(config) = &a.session_config {
        rows.push((
            "session config",
            serde_json::to_string_pretty(&json::session_config(config)).unwrap_or_default(),
        ));
    }
    rows.push(("created", time(a.created_at.as_ref())));
    rows.push(("updated", time(a.updated_at.as_ref())));
    detail(&rows)
}

fn list_text(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_string()
    } else {
        serde_json::to_string(items).unwrap_or_default()
    }
}

fn mode_and_command(c: &Capability) -> String {
    if c.interaction_mode == InteractionMode::Prompt as i32 {
        c.prompt_template
            .as_deref()
            .map(|p| format!("prompt: {}", p.lines().next().unwrap_or("")))
            .unwrap_or_else(|| "prompt".into())
    } else {
        c.command_tokens.join(" ")
    }
}

/// Capabilities as a table.
pub fn capabilities(list_: &[Capability], names: &AgentNames) -> String {
    list(
        &[
            "id", "agent", "key", "label", "danger", "approval", "enabled", "command",
        ],
        &["label", "command"],
        list_
            .iter()
            .map(|c| {
                vec![
                    short_id(&c.id),
                    agent_name(names, &c.agent_id),
                    c.key.clone(),
                    c.label.clone(),
                    c.danger_level.to_string(),
                    yes_no(c.requires_approval),
                    c.is_enabled.map(yes_no).unwrap_or_else(|| "-".into()),
                    mode_and_command(c),
                ]
            })
            .collect(),
    )
}

/// One capability in full.
pub fn capability(c: &Capability, names: &AgentNames) -> String {
    let mut rows = vec![
        ("id", c.id.clone()),
        ("agent", agent_name(names, &c.agent_id)),
        ("agent id", c.agent_id.clone()),
        ("key", c.key.clone()),
        ("label", c.label.clone()),
        ("description", or_dash(c.description.as_ref())),
        (
            "mode",
            enums::display::<InteractionMode>(c.interaction_mode),
        ),
    ];
    if c.interaction_mode == InteractionMode::Prompt as i32 {
        rows.push(("prompt template", or_dash(c.prompt_template.as_ref())));
    } else {
        rows.push(("command tokens", list_text(&c.command_tokens)));
    }
    let schema = match &c.args_schema {
        Some(s) if !s.fields.is_empty() => {
            serde_json::to_string_pretty(&json::struct_to_json(s)).unwrap_or_default()
        }
        _ => "{}".to_string(),
    };
    rows.extend([
        ("args schema", schema),
        ("requires approval", yes_no(c.requires_approval)),
        (
            "enabled",
            c.is_enabled.map(yes_no).unwrap_or_else(|| "-".into()),
        ),
        ("danger level", c.danger_level.to_string()),
        (
            "timeout",
            c.timeout_sec
                .map(|s| format!("{s}s"))
                .unwrap_or_else(|| "-".into()),
        ),
        (
            "max output",
            c.max_output_bytes
                .map(|b| bytes(i64::from(b)))
                .unwrap_or_else(|| "-".into()),
        ),
        ("source", enums::display::<CapabilitySource>(c.source)),
        ("created", time(c.created_at.as_ref())),
    ]);
    detail(&rows)
}

// ---------------------------------------------------------------------------
// Tasks

/// Tasks as a table.
pub fn tasks(list_: &[Task], names: &AgentNames) -> String {
    list(
        &["id", "status", "pri", "title", "assignee", "due"],
        &["title"],
        list_
            .iter()
            .map(|t| {
                vec![
                    short_id(&t.id),
                    enums::display::<TaskStatus>(t.status),
                    opt_num(t.priority),
                    t.title.clone(),
                    opt_agent_name(names, t.assignee_agent_id.as_ref()),
                    short_time(t.due_at.as_ref()),
                ]
            })
            .collect(),
    )
}

/// One task in full.
pub fn task(t: &Task, names: &AgentNames) -> String {
    let context = t.input_context.clone().unwrap_or_default();
    let mut env: Vec<_> = context.env_overrides.iter().collect();
    env.sort();
    let env = if env.is_empty() {
        "-".to_string()
    } else {
        env.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    detail(&[
        ("id", t.id.clone()),
        ("title", t.title.clone()),
        ("status", enums::display::<TaskStatus>(t.status)),
        ("priority", opt_num(t.priority)),
        (
            "assignee",
            opt_agent_name(names, t.assignee_agent_id.as_ref()),
        ),
        ("parent", or_dash(t.parent_task_id.as_ref())),
        ("description", or_dash(t.description.as_ref())),
        ("working dir", or_dash(context.working_dir.as_ref())),
        ("env", env),
        ("args", args_text(context.args.as_ref())),
        (
            "prompt additions",
            or_dash(context.prompt_additions.as_ref()),
        ),
        ("due", time(t.due_at.as_ref())),
        ("sort order", t.sort_order.to_string()),
        ("created", time(t.created_at.as_ref())),
        ("updated", time(t.updated_at.as_ref())),
    ])
}

/// One related task in a dependency listing: short id, status, title.
pub fn task_line(id: &str, task: Option<&Task>) -> String {
    match task {
        Some(t) => format!(
            "{}  {:<11}  {}",
            short_id(id),
            enums::display::<TaskStatus>(t.status),
            t.title
        ),
        None => format!("{}  (not found)", short_id(id)),
    }
}

/// One task event on one line: `id time type task actor payload-json`.
pub fn event_line(e: &TaskEvent, names: &AgentNames) -> String {
    let actor = match (enums::name_of::<ActorType>(e.actor_type), &e.actor_id) {
        (Some("agent"), Some(id)) => format!("agent:{}", agent_name(names, id)),
        (Some(kind), Some(id)) if !id.is_empty() => format!("{kind}:{}", short_id(id)),
        (Some(kind), _) => kind.to_string(),
        (None, _) => "-".to_string(),
    };
    let payload = e
        .payload
        .as_ref()
        .map(|p| json::struct_to_json(p).to_string())
        .unwrap_or_else(|| "{}".to_string());
    format!(
        "{} {} {} {} {} {}",
        e.id,
        time(e.created_at.as_ref()),
        if e.event_type.is_empty() {
            "-"
        } else {
            &e.event_type
        },
        short_id(&e.task_id),
        actor,
        payload
    )
}

// ---------------------------------------------------------------------------
// Executions and workers

fn run_time(e: &Execution) -> String {
    match (&e.started_at, &e.ended_at) {
        (Some(start), Some(end)) => {
            let millis = (end.seconds - start.seconds) * 1000
                + i64::from(end.nanos - start.nanos) / 1_000_000;
            if millis < 10_000 {
                format!("{:.1}s", millis as f64 / 1000.0)
            } else {
                format!("{}s", millis / 1000)
            }
        }
        _ => "-".to_string(),
    }
}

/// Executions as a table.
pub fn executions(list_: &[Execution], names: &AgentNames) -> String {
    list(
        &[
            "id", "status", "task", "agent", "exit", "retries", "took", "output", "created",
        ],
        &["created"],
        list_
            .iter()
            .map(|e| {
                vec![
                    short_id(&e.id),
                    enums::display::<ExecutionStatus>(e.status),
                    short_id(&e.task_id),
                    agent_name(names, &e.agent_id),
                    opt_num(e.exit_code),
                    format!("{}/{}", e.retry_count, e.max_retries),
                    run_time(e),
                    bytes(e.log_byte_size),
                    short_time(e.created_at.as_ref()),
                ]
            })
            .collect(),
    )
}

/// One execution in full, with its continuation chain.
pub fn execution(e: &Execution, ancestors: &[String], names: &AgentNames) -> String {
    let mut rows = vec![
        ("id", e.id.clone()),
        ("status", enums::display::<ExecutionStatus>(e.status)),
        ("task", e.task_id.clone()),
        ("agent", agent_name(names, &e.agent_id)),
        ("capability", e.capability_id.clone()),
        ("mode", enums::display::<InteractionMode>(e.mode)),
        ("args", args_text(e.args.as_ref())),
    ];
    if let Some(prompt) = &e.prompt {
        rows.push(("prompt", prompt.clone()));
    }
    rows.extend([
        ("exit code", opt_num(e.exit_code)),
        ("error", or_dash(e.error.as_ref())),
        ("worker", or_dash(e.worker_id.as_ref())),
        ("pid", opt_num(e.pid)),
        ("session", or_dash(e.session_ref.as_ref())),
        ("tmux session", or_dash(e.tmux_session_name.as_ref())),
        ("retries", format!("{}/{}", e.retry_count, e.max_retries)),
        (
            "output",
            format!("{} in {} lines", bytes(e.log_byte_size), e.log_line_count),
        ),
        ("requested by", e.requested_by.clone()),
        ("created", time(e.created_at.as_ref())),
        ("started", time(e.started_at.as_ref())),
        ("ended", time(e.ended_at.as_ref())),
        ("took", run_time(e)),
        ("heartbeat", time(e.heartbeat_at.as_ref())),
        ("parent", or_dash(e.parent_execution_id.as_ref())),
    ]);
    if !ancestors.is_empty() {
        rows.push(("continues", ancestors.join("\n")));
    }
    detail(&rows)
}

/// Workers as a table.
pub fn workers(list_: &[Worker]) -> String {
    list(
        &[
            "worker",
            "host",
            "version",
            "connected",
            "draining",
            "running",
            "last seen",
            "labels",
        ],
        &["labels"],
        list_
            .iter()
            .map(|w| {
                let mut labels: Vec<_> = w.labels.iter().collect();
                labels.sort();
                vec![
                    w.worker_id.clone(),
                    w.hostname.clone(),
                    w.version.clone(),
                    yes_no(w.connected),
                    yes_no(w.draining),
                    format!("{}/{}", w.running_execution_ids.len(), w.slots),
                    short_time(w.last_seen_at.as_ref()),
                    labels
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(","),
                ]
            })
            .collect(),
    )
}

/// The worker tuning values.
pub fn worker_config(c: &WorkerConfig) -> String {
    let d = |d: Option<&prost_types::Duration>| {
        d.map(json::duration_string)
            .unwrap_or_else(|| "-".to_string())
    };
    detail(&[
        ("stale window", d(c.stale_window.as_ref())),
        ("heartbeat interval", d(c.heartbeat_interval.as_ref())),
        ("cancel grace", d(c.cancel_grace.as_ref())),
        ("log chunk bytes", c.log_chunk_bytes.to_string()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_by_display_width() {
        assert_eq!(truncate("hello", 10), "hello");
        assert_eq!(truncate("hello", 5), "hello");
        assert_eq!(truncate("hello world", 6), "hello…");
        assert_eq!(truncate("hello world", 7), "hello…");
        assert_eq!(truncate("hello", 1), "…");
        assert_eq!(truncate("hello", 0), "");
        // Wide characters take two columns each.
        assert_eq!(truncate("日本語のタスク", 7), "日本語…");
        assert_eq!(pad("日本", 6), "日本  ");
        assert_eq!(pad("abcdef", 4), "abc…");
    }

    #[test]
    fn detail_aligns_values_and_indents_continuations() {
        let text = detail(&[
            ("id", "abc".into()),
            ("description", "one\ntwo".into()),
            ("empty", String::new()),
        ]);
        assert_eq!(
            text,
            "id:           abc\ndescription:  one\n              two\nempty:\n"
        );
    }

    #[test]
    fn byte_counts() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(10 * 1024 * 1024), "10.0 MiB");
    }

    #[test]
    fn event_lines() {
        let e = TaskEvent {
            id: 42,
            task_id: "0123456789abcdef".into(),
            actor_type: ActorType::User as i32,
            actor_id: None,
            event_type: "status_changed".into(),
            payload: Some(json::pairs_to_struct(&[
                ("from".into(), serde_json::json!("todo")),
                ("to".into(), serde_json::json!("done")),
            ])),
            created_at: Some(prost_types::Timestamp {
                seconds: 1_714_564_800,
                nanos: 123,
            }),
        };
        assert_eq!(
            event_line(&e, &AgentNames::new()),
            r#"42 2024-05-01T12:00:00Z status_changed 01234567 user {"from":"todo","to":"done"}"#
        );
        let e = TaskEvent {
            actor_type: ActorType::Agent as i32,
            actor_id: Some("agent-id".into()),
            payload: None,
            ..e
        };
        let names: AgentNames = [("agent-id".to_string(), "git".to_string())].into();
        assert!(event_line(&e, &names).ends_with(" agent:git {}"));
    }

    #[test]
    fn tables_list_every_row() {
        let tasks = vec![
            Task {
                id: "11111111-aaaa".into(),
                title: "First".into(),
                status: TaskStatus::Todo as i32,
                priority: Some(1),
                ..Default::default()
            },
            Task {
                id: "22222222-bbbb".into(),
                title: "Second".into(),
                status: TaskStatus::InProgress as i32,
                assignee_agent_id: Some("a1".into()),
                ..Default::default()
            },
        ];
        let names: AgentNames = [("a1".to_string(), "claude".to_string())].into();
        let text = super::tasks(&tasks, &names);
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("ID"), "{text}");
        assert!(lines[1].starts_with("11111111  todo"), "{text}");
        assert!(lines[2].contains("in_progress") && lines[2].contains("claude"));
    }
}
