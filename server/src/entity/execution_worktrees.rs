//! `execution_worktrees`: what a run changed in its task's git worktree,
//! reported by its worker when it ended (beyond the data model; see the
//! migration `m20261205_000001_execution_worktrees`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "execution_worktrees")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub execution_id: Uuid,
    pub task_id: Uuid,
    /// The worker holding the worktree.
    pub worker_id: String,
    /// `store::worktrees::WorktreeSummary`, camelCase keys.
    #[sea_orm(column_type = "JsonBinary")]
    pub summary: Json,
    pub recorded_at: DateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// Deleted with the execution.
    #[sea_orm(
        belongs_to = "super::executions::Entity",
        from = "Column::ExecutionId",
        to = "super::executions::Column::Id",
        on_delete = "Cascade"
    )]
    Execution,
    /// Deleted with the task.
    #[sea_orm(
        belongs_to = "super::tasks::Entity",
        from = "Column::TaskId",
        to = "super::tasks::Column::Id",
        on_delete = "Cascade"
    )]
    Task,
}

impl ActiveModelBehavior for ActiveModel {}
