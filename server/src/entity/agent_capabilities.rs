//! `agent_capabilities`: the things an agent can be asked to do, each a command template
//! (template mode) or a prompt template (prompt mode).

use sea_orm::entity::prelude::*;

use super::enums::{CapabilitySource, InteractionMode};

/// Unique per agent: `(agent_id, key)` (`uq_agent_capability_key`). The database refuses a
/// template-mode capability without `command_tokens` (`capability_mode_consistency`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "agent_capabilities")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub agent_id: Uuid,
    pub key: String,
    pub label: String,
    pub description: Option<String>,
    pub source: CapabilitySource,
    /// Picks the template or the prompt execution path in the worker.
    pub interaction_mode: InteractionMode,
    /// `string[]`, each token rendered on its own; `None` only in prompt mode.
    #[sea_orm(column_type = "JsonBinary")]
    pub command_tokens: Option<Json>,
    /// Prompt mode: a template with placeholders such as `{{task_title}}`.
    pub prompt_template: Option<String>,
    /// JSON Schema object validating an execution's `args`.
    #[sea_orm(column_type = "JsonBinary")]
    pub args_schema: Json,
    pub requires_approval: bool,
    pub is_enabled: bool,
    /// 0 safe, 1 caution, 2 dangerous, 3 destructive.
    pub danger_level: i16,
    pub timeout_sec: i32,
    pub max_output_bytes: i32,
    pub created_at: DateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::agents::Entity",
        from = "Column::AgentId",
        to = "super::agents::Column::Id",
        on_delete = "Cascade"
    )]
    Agent,
    /// A capability with executions cannot be deleted.
    #[sea_orm(has_many = "super::executions::Entity")]
    Executions,
}

impl Related<super::agents::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Agent.def()
    }
}

impl Related<super::executions::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Executions.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
