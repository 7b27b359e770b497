//! The tools' inputs: one typed struct per tool (its JSON Schema generated
//! from it), and the extractors that hand a tool its input and its caller.
//!
//! rmcp's own `Parameters` answers a malformed input with a JSON-RPC
//! protocol error whose text names no field for a wrong type ("invalid
//! type: string, expected i16"). A model reads tool errors, not protocol
//! errors, so ours deserializes with the path of the failing field and
//! [`super::McpServer`] turns its failure into a tool error. (The `#[tool]`
//! macro finds a tool's input schema by the name `Parameters`, hence ours
//! has that name too.)

use chrono::{DateTime, FixedOffset, NaiveDate};
use rmcp::{
    ErrorData,
    handler::server::{common::FromContextPart, tool::ToolCallContext},
};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, de::DeserializeOwned};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::auth::Caller;
use crate::{entity::enums::TaskStatus, store::StoreError};

/// Marks, in an [`ErrorData`]'s data, a caller's malformed input: answered
/// as a tool error, not a protocol error.
pub const BAD_INPUT: &str = "amon_bad_input";

/// A tool's input, deserialized naming the field that is wrong.
pub struct Parameters<T>(pub T);

impl<T: JsonSchema> JsonSchema for Parameters<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

impl<S, T: DeserializeOwned> FromContextPart<ToolCallContext<'_, S>> for Parameters<T> {
    fn from_context_part(context: &mut ToolCallContext<'_, S>) -> Result<Self, ErrorData> {
        let arguments = Value::Object(context.arguments.take().unwrap_or_default());
        serde_path_to_error::deserialize(arguments)
            .map(Parameters)
            .map_err(|err| {
                let path = err.path().to_string();
                let message = if path == "." {
                    err.inner().to_string()
                } else {
                    format!("{path}: {}", err.inner())
                };
                ErrorData::invalid_params(
                    format!("invalid arguments: {message}"),
                    Some(serde_json::json!({ BAD_INPUT: true })),
                )
            })
    }
}

impl<S> FromContextPart<ToolCallContext<'_, S>> for Caller {
    fn from_context_part(context: &mut ToolCallContext<'_, S>) -> Result<Self, ErrorData> {
        context
            .request_context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Caller>())
            .copied()
            .ok_or_else(|| ErrorData::internal_error("the caller was not authenticated", None))
    }
}

/// `Some(None)` for an explicit `null` (clear the field), `Some(Some(v))`
/// for a value; with `#[serde(default)]`, `None` when absent (keep it).
fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A column of the board.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not started.
    Todo,
    /// Being worked on.
    InProgress,
    /// Waiting on something.
    Blocked,
    /// Finished.
    Done,
    /// Dropped.
    Cancelled,
}

impl From<Status> for TaskStatus {
    fn from(status: Status) -> Self {
        match status {
            Status::Todo => TaskStatus::Todo,
            Status::InProgress => TaskStatus::InProgress,
            Status::Blocked => TaskStatus::Blocked,
            Status::Done => TaskStatus::Done,
            Status::Cancelled => TaskStatus::Cancelled,
        }
    }
}

/// `list_tasks`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListTasks {
    /// Only tasks in this column.
    pub status: Option<Status>,
    /// Only the subtasks of this task (a task id).
    pub parent_task_id: Option<String>,
    /// Only tasks assigned to this agent (its id or its slug, e.g. "claude").
    pub assignee: Option<String>,
    /// Only tasks whose title or description contains this text (case is ignored).
    pub text: Option<String>,
    /// At most this many tasks (default 50, at most 500).
    pub limit: Option<u32>,
    /// `next_page_token` of the previous answer, to read on.
    pub page_token: Option<String>,
}

/// `get_task`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetTask {
    /// The task's id.
    pub task_id: String,
}

/// `create_task`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTask {
    /// A short title (at most 500 characters).
    pub title: String,
    /// What is to be done, in as much detail as the one doing it needs.
    pub description: Option<String>,
    /// 1 (most urgent) to 5; 3 when not given.
    pub priority: Option<i16>,
    /// When it is due: RFC 3339 ("2026-03-01T17:00:00Z") or a date ("2026-03-01").
    pub due_at: Option<String>,
    /// The agent to assign it to (its id or slug).
    pub assignee: Option<String>,
    /// The parent task's id. An agent's run files subtasks of its own task
    /// when this is left out.
    pub parent_task_id: Option<String>,
    /// true: a task with no parent, even when called from a run.
    #[serde(default)]
    pub top_level: bool,
}

/// `update_task`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTask {
    /// The task's id.
    pub task_id: String,
    /// New title.
    pub title: Option<String>,
    /// New description; null clears it.
    #[serde(default, deserialize_with = "nullable")]
    pub description: Option<Option<String>>,
    /// New priority, 1 (most urgent) to 5.
    pub priority: Option<i16>,
    /// New due date (RFC 3339 or a date); null clears it.
    #[serde(default, deserialize_with = "nullable")]
    pub due_at: Option<Option<String>>,
    /// New assignee (an agent's id or slug); null unassigns.
    #[serde(default, deserialize_with = "nullable")]
    pub assignee: Option<Option<String>>,
}

/// `move_task`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveTask {
    /// The task's id.
    pub task_id: String,
    /// The column to move it to; its current column when left out.
    pub status: Option<Status>,
    /// Place it right after this task of the column (a task id).
    pub after_task_id: Option<String>,
    /// Place it right before this task of the column (a task id).
    pub before_task_id: Option<String>,
}

/// `add_dependency`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddDependency {
    /// The task that must wait.
    pub task_id: String,
    /// The task it waits for: runs of `task_id` start only once this one is done.
    pub depends_on_task_id: String,
}

/// `add_comment`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddComment {
    /// The task to comment on; an agent's run comments on its own task when
    /// this is left out.
    pub task_id: Option<String>,
    /// The note (at most 16 KiB).
    pub text: String,
}

/// `list_capabilities`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListCapabilities {
    /// Only this agent's capabilities (its id or slug).
    pub agent: Option<String>,
}

/// `run_capability`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunCapability {
    /// The capability: "<agent slug>/<key>" as list_capabilities shows it
    /// (e.g. "git/status"), or its id.
    pub capability: String,
    /// The task the run is for; an agent's run uses its own task when this
    /// is left out. The task's status follows the run (running: in_progress,
    /// succeeded: done).
    pub task_id: Option<String>,
    /// Arguments, checked against the capability's args_schema.
    #[serde(default)]
    pub args: Map<String, Value>,
    /// Automatic retries if the run fails (0 to 10, default 0).
    #[serde(default)]
    pub max_retries: i32,
    /// Must be true to queue a capability that requires a person's
    /// approval: the run then waits, unstarted, until someone approves it.
    #[serde(default)]
    pub await_approval: bool,
}

/// `get_execution`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetExecution {
    /// The execution's id.
    pub execution_id: String,
}

/// `get_execution_diff`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetExecutionDiff {
    /// The execution's id.
    pub execution_id: String,
    /// At most this many bytes of diff (default 65536, at most 262144).
    pub max_bytes: Option<u32>,
}

/// `read_log`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadLog {
    /// The execution's id.
    pub execution_id: String,
    /// Byte offset to read from (default 0); a negative number counts from
    /// the end (-4096: about the last 4 KiB).
    #[serde(default)]
    pub offset: i64,
    /// At most this many bytes (default 16384, at most 262144).
    pub max_bytes: Option<u32>,
}

/// Parses an id sent in `field`.
pub fn id(field: &str, value: &str) -> Result<Uuid, StoreError> {
    Uuid::try_parse(value.trim())
        .map_err(|_| StoreError::invalid(field, format!("{value:?} is not an id (a UUID)")))
}

/// Parses an optional id sent in `field`.
pub fn optional_id(field: &str, value: Option<&str>) -> Result<Option<Uuid>, StoreError> {
    value.map(|value| id(field, value)).transpose()
}

/// Parses a due date: RFC 3339, or a plain date (midnight UTC).
pub fn due(field: &str, value: &str) -> Result<DateTime<FixedOffset>, StoreError> {
    let value = value.trim();
    DateTime::parse_from_rfc3339(value)
        .or_else(|_| {
            NaiveDate::parse_from_str(value, "%Y-%m-%d").map(|date| {
                date.and_hms_opt(0, 0, 0)
                    .expect("midnight exists")
                    .and_utc()
                    .fixed_offset()
            })
        })
        .map_err(|_| {
            StoreError::invalid(
                field,
                format!(
                    "{value:?} is neither RFC 3339 (2026-03-01T17:00:00Z) nor a date (2026-03-01)"
                ),
            )
        })
}
