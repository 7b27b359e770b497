//! The schema's enumerations.
//!
//! The first six are PostgreSQL enum types (`db_type = "Enum"` with the type's name), which
//! SQLite stores as checked `TEXT`; sea-orm only emits the casts on PostgreSQL, so one
//! definition serves both. [`ActorType`] is a checked `text` column on both backends.
//! Variants are listed in the database's label order.

use sea_orm::entity::prelude::*;

/// `tasks.status`: the Kanban column a task is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "Enum", enum_name = "task_status")]
pub enum TaskStatus {
    #[sea_orm(string_value = "todo")]
    Todo,
    #[sea_orm(string_value = "in_progress")]
    InProgress,
    #[sea_orm(string_value = "blocked")]
    Blocked,
    #[sea_orm(string_value = "done")]
    Done,
    #[sea_orm(string_value = "cancelled")]
    Cancelled,
}

/// `executions.status`: a run's place in the execution state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "Enum", enum_name = "execution_status")]
pub enum ExecutionStatus {
    #[sea_orm(string_value = "queued")]
    Queued,
    #[sea_orm(string_value = "running")]
    Running,
    /// Cancel requested while running; the worker is stopping the process.
    #[sea_orm(string_value = "cancelling")]
    Cancelling,
    #[sea_orm(string_value = "succeeded")]
    Succeeded,
    #[sea_orm(string_value = "failed")]
    Failed,
    #[sea_orm(string_value = "cancelled")]
    Cancelled,
    #[sea_orm(string_value = "timed_out")]
    TimedOut,
}

/// `agent_capabilities.interaction_mode` and `executions.mode`: how a run is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "Enum", enum_name = "interaction_mode")]
pub enum InteractionMode {
    /// A CLI tool run from `command_tokens`.
    #[sea_orm(string_value = "template")]
    Template,
    /// An AI agent CLI given a prompt rendered from `prompt_template`.
    #[sea_orm(string_value = "prompt")]
    Prompt,
}

/// `agents.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "Enum", enum_name = "agent_kind")]
pub enum AgentKind {
    #[sea_orm(string_value = "builtin")]
    Builtin,
    #[sea_orm(string_value = "custom")]
    Custom,
}

/// `agent_capabilities.source`: where a capability definition came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "Enum", enum_name = "capability_source")]
pub enum CapabilitySource {
    #[sea_orm(string_value = "manual")]
    Manual,
    #[sea_orm(string_value = "builtin")]
    Builtin,
    #[sea_orm(string_value = "preset")]
    Preset,
    #[sea_orm(string_value = "scan_help")]
    ScanHelp,
    #[sea_orm(string_value = "scan_completion")]
    ScanCompletion,
    #[sea_orm(string_value = "scan_fig")]
    ScanFig,
    #[sea_orm(string_value = "scan_mcp")]
    ScanMcp,
    #[sea_orm(string_value = "scan_man")]
    ScanMan,
    #[sea_orm(string_value = "llm_generated")]
    LlmGenerated,
}

/// `agents.discovery_method`: how an agent was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "Enum", enum_name = "discovery_method")]
pub enum DiscoveryMethod {
    #[sea_orm(string_value = "preset")]
    Preset,
    #[sea_orm(string_value = "path_scan")]
    PathScan,
    #[sea_orm(string_value = "manual")]
    Manual,
}

/// `task_events.actor_type`: who caused an event. A `text` column with a `CHECK`, not a
/// PostgreSQL enum, so no cast is involved on either backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum ActorType {
    #[sea_orm(string_value = "user")]
    User,
    #[sea_orm(string_value = "agent")]
    Agent,
    #[sea_orm(string_value = "system")]
    System,
}
