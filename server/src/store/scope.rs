//! The one place that scopes reads to the caller's workspace.
//!
//! Every record belongs to a workspace, directly (tasks, agents) or through
//! its parent (executions and events through their task, capabilities
//! through their agent). A record of another workspace is "not found"; so
//! every lookup and list of the store starts from `Entity::find…()` and
//! calls [`InWorkspace::in_workspace`], never a hand-written filter.

use sea_orm::{ColumnTrait, JoinType, QueryFilter, QuerySelect, RelationTrait, Select};

use super::DEFAULT_WORKSPACE_ID;
use crate::entity::{agent_capabilities, agents, executions, task_events, tasks};

/// A query narrowed to the caller's workspace.
pub(super) trait InWorkspace {
    /// Only the records of the caller's workspace.
    fn in_workspace(self) -> Self;
}

impl InWorkspace for Select<tasks::Entity> {
    fn in_workspace(self) -> Self {
        self.filter(tasks::Column::WorkspaceId.eq(DEFAULT_WORKSPACE_ID))
    }
}

impl InWorkspace for Select<agents::Entity> {
    fn in_workspace(self) -> Self {
        self.filter(agents::Column::WorkspaceId.eq(DEFAULT_WORKSPACE_ID))
    }
}

impl InWorkspace for Select<agent_capabilities::Entity> {
    fn in_workspace(self) -> Self {
        self.join(
            JoinType::InnerJoin,
            agent_capabilities::Relation::Agent.def(),
        )
        .filter(agents::Column::WorkspaceId.eq(DEFAULT_WORKSPACE_ID))
    }
}

impl InWorkspace for Select<executions::Entity> {
    fn in_workspace(self) -> Self {
        self.join(JoinType::InnerJoin, executions::Relation::Task.def())
            .filter(tasks::Column::WorkspaceId.eq(DEFAULT_WORKSPACE_ID))
    }
}

impl InWorkspace for Select<task_events::Entity> {
    fn in_workspace(self) -> Self {
        self.join(JoinType::InnerJoin, task_events::Relation::Task.def())
            .filter(tasks::Column::WorkspaceId.eq(DEFAULT_WORKSPACE_ID))
    }
}
