//! `executions`: runs of a capability for a task, queued in the database and claimed by
//! workers. The log's bookkeeping (file, size, line count) lives here too.

use sea_orm::entity::prelude::*;

use super::enums::{ExecutionStatus, InteractionMode};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "executions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub task_id: Uuid,
    pub agent_id: Uuid,
    pub capability_id: Uuid,
    pub requested_by: Uuid,
    pub status: ExecutionStatus,
    /// Copied from the capability at queue time, so history survives capability edits.
    pub mode: InteractionMode,
    /// Arguments validated against the capability's `args_schema`.
    #[sea_orm(column_type = "JsonBinary")]
    pub args: Json,
    /// The rendered prompt (prompt mode only).
    pub prompt: Option<String>,
    /// OS pid of the child (or tmux session), for SIGTERM/SIGKILL on cancel.
    pub pid: Option<i32>,
    /// The agent's own session id (e.g. a Claude session uuid), for resuming.
    pub session_ref: Option<String>,
    pub tmux_session_name: Option<String>,
    /// The execution this one continues; set to `None` when that one is deleted.
    pub parent_execution_id: Option<Uuid>,
    pub started_at: Option<DateTimeWithTimeZone>,
    pub ended_at: Option<DateTimeWithTimeZone>,
    pub exit_code: Option<i32>,
    /// One-line summary; the full output is in the log file.
    pub error: Option<String>,
    pub worker_id: Option<String>,
    /// Refreshed by the worker while running; stale rows are reaped.
    pub heartbeat_at: Option<DateTimeWithTimeZone>,
    pub log_file_path: Option<String>,
    pub log_byte_size: i64,
    pub log_line_count: i32,
    pub log_updated_at: Option<DateTimeWithTimeZone>,
    pub retry_count: i32,
    pub max_retries: i32,
    pub created_at: DateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// Deleted with the task.
    #[sea_orm(
        belongs_to = "super::tasks::Entity",
        from = "Column::TaskId",
        to = "super::tasks::Column::Id",
        on_delete = "Cascade"
    )]
    Task,
    /// Keeps its agent from being deleted.
    #[sea_orm(
        belongs_to = "super::agents::Entity",
        from = "Column::AgentId",
        to = "super::agents::Column::Id"
    )]
    Agent,
    /// Keeps its capability from being deleted.
    #[sea_orm(
        belongs_to = "super::agent_capabilities::Entity",
        from = "Column::CapabilityId",
        to = "super::agent_capabilities::Column::Id"
    )]
    Capability,
    /// The execution this one continues.
    #[sea_orm(
        belongs_to = "Entity",
        from = "Column::ParentExecutionId",
        to = "Column::Id",
        on_delete = "SetNull"
    )]
    Parent,
    /// Executions that continue this one.
    #[sea_orm(has_many = "Entity", via_rel = "Relation::Parent")]
    Continuations,
}

impl Related<super::tasks::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Task.def()
    }
}

impl Related<super::agents::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Agent.def()
    }
}

impl Related<super::agent_capabilities::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Capability.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
