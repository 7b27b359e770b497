//! `task_dependencies`: the edges of the task DAG; `task_id` waits for `depends_on_task_id`.
//!
//! The database refuses a self-edge (`no_self_dependency`) and deletes edges with either
//! task; cycles are the service layer's to refuse. Walk the graph from a task with
//! [`super::tasks::DependsOn`] and [`super::tasks::Dependents`].

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "task_dependencies")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub task_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub depends_on_task_id: Uuid,
    pub created_at: DateTimeWithTimeZone,
}

/// Both relations lead to `tasks`, so there is no `Related<tasks::Entity>`: name the one
/// meant.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The waiting task.
    #[sea_orm(
        belongs_to = "super::tasks::Entity",
        from = "Column::TaskId",
        to = "super::tasks::Column::Id",
        on_delete = "Cascade"
    )]
    Task,
    /// The task waited for.
    #[sea_orm(
        belongs_to = "super::tasks::Entity",
        from = "Column::DependsOnTaskId",
        to = "super::tasks::Column::Id",
        on_delete = "Cascade"
    )]
    DependsOn,
}

impl ActiveModelBehavior for ActiveModel {}
