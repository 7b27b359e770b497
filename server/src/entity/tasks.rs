//! `tasks`: the cards on the board, with subtasks (`parent_task_id`) and dependencies
//! (`task_dependencies`).

use sea_orm::entity::prelude::*;

use super::enums::TaskStatus;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tasks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub owner_id: Uuid,
    pub workspace_id: Uuid,
    /// Set to `None` by the database when the parent is deleted.
    pub parent_task_id: Option<Uuid>,
    pub title: String,
    pub description: Option<String>,
    pub status: TaskStatus,
    pub priority: i16,
    /// Sparse order within a board column (gaps of 1000) for drag and drop.
    pub sort_order: i32,
    /// Set to `None` by the database when the agent is deleted.
    pub assignee_agent_id: Option<Uuid>,
    /// `TaskInputContext`: workingDir, envOverrides, args, promptAdditions.
    #[sea_orm(column_type = "JsonBinary")]
    pub input_context: Json,
    pub due_at: Option<DateTimeWithTimeZone>,
    pub created_at: DateTimeWithTimeZone,
    pub updated_at: DateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "Entity",
        from = "Column::ParentTaskId",
        to = "Column::Id",
        on_delete = "SetNull"
    )]
    Parent,
    #[sea_orm(has_many = "Entity", via_rel = "Relation::Parent")]
    Subtasks,
    #[sea_orm(
        belongs_to = "super::agents::Entity",
        from = "Column::AssigneeAgentId",
        to = "super::agents::Column::Id",
        on_delete = "SetNull"
    )]
    Assignee,
    /// Edges from this task to the tasks it waits for.
    #[sea_orm(
        has_many = "super::task_dependencies::Entity",
        via_rel = "Relation::Task"
    )]
    Dependencies,
    /// Edges from tasks that wait for this one.
    #[sea_orm(
        has_many = "super::task_dependencies::Entity",
        via_rel = "Relation::DependsOn"
    )]
    Dependents,
    #[sea_orm(has_many = "super::executions::Entity")]
    Executions,
    #[sea_orm(has_many = "super::task_events::Entity")]
    Events,
}

impl Related<super::agents::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Assignee.def()
    }
}

impl Related<super::executions::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Executions.def()
    }
}

impl Related<super::task_events::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Events.def()
    }
}

/// The tasks a task depends on: `task.find_linked(DependsOn)`.
pub struct DependsOn;

impl Linked for DependsOn {
    type FromEntity = Entity;
    type ToEntity = Entity;

    fn link(&self) -> Vec<RelationDef> {
        vec![
            Relation::Dependencies.def(),
            super::task_dependencies::Relation::DependsOn.def(),
        ]
    }
}

/// The tasks that depend on a task: `task.find_linked(Dependents)`.
pub struct Dependents;

impl Linked for Dependents {
    type FromEntity = Entity;
    type ToEntity = Entity;

    fn link(&self) -> Vec<RelationDef> {
        vec![
            Relation::Dependents.def(),
            super::task_dependencies::Relation::Task.def(),
        ]
    }
}

impl ActiveModelBehavior for ActiveModel {}
