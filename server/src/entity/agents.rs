//! `agents`: the registry of runnable tools — plain CLIs and AI coding agents.

use sea_orm::entity::prelude::*;

use super::enums::{AgentKind, DiscoveryMethod};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "agents")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub owner_id: Uuid,
    pub workspace_id: Uuid,
    pub name: String,
    #[sea_orm(unique)]
    pub slug: String,
    pub kind: AgentKind,
    pub binary_path: String,
    /// `string[]`: arguments placed before every capability's tokens.
    #[sea_orm(column_type = "JsonBinary")]
    pub base_args: Json,
    pub working_dir: Option<String>,
    /// `string[]`: names of the worker's environment variables the child may see.
    #[sea_orm(column_type = "JsonBinary")]
    pub env_allowlist: Json,
    pub is_active: bool,
    /// Running executions allowed at once; checked when a worker claims work.
    pub max_concurrent: i32,
    pub discovery_method: DiscoveryMethod,
    /// Output of `--version`.
    pub version: Option<String>,
    /// dpkg package name, e.g. `git`.
    pub package_name: Option<String>,
    /// apt section, e.g. `vcs`.
    pub package_section: Option<String>,
    /// `cli-tool` | `ai-agent` | `daemon` | `shell-util`.
    pub tool_type: Option<String>,
    /// Launched with an `--mcp-config` pointing at Agent Monitor's MCP server.
    pub mcp_enabled: bool,
    /// `AgentSessionConfig` (AI agents only): how to find, resume and talk to sessions.
    #[sea_orm(column_type = "JsonBinary")]
    pub session_config: Option<Json>,
    pub last_scanned_at: Option<DateTimeWithTimeZone>,
    /// `AgentMetadata`: icon, color, description, homepage.
    #[sea_orm(column_type = "JsonBinary")]
    pub metadata: Json,
    pub created_at: DateTimeWithTimeZone,
    pub updated_at: DateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// Deleted with the agent.
    #[sea_orm(has_many = "super::agent_capabilities::Entity")]
    Capabilities,
    /// Tasks assigned to the agent; unassigned when it is deleted.
    #[sea_orm(has_many = "super::tasks::Entity")]
    AssignedTasks,
    /// Executions run by the agent; an agent with executions cannot be deleted.
    #[sea_orm(has_many = "super::executions::Entity")]
    Executions,
}

impl Related<super::agent_capabilities::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Capabilities.def()
    }
}

impl Related<super::tasks::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::AssignedTasks.def()
    }
}

impl Related<super::executions::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Executions.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
