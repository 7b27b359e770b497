//! The entities under their table names, and the enums, for `use crate::entity::prelude::*`.

pub use super::agent_capabilities::Entity as AgentCapabilities;
pub use super::agents::Entity as Agents;
pub use super::enums::*;
pub use super::execution_worktrees::Entity as ExecutionWorktrees;
pub use super::executions::Entity as Executions;
pub use super::task_dependencies::Entity as TaskDependencies;
pub use super::task_events::Entity as TaskEvents;
pub use super::tasks::Entity as Tasks;
pub use super::worker_config::Entity as WorkerConfig;
pub use super::worker_heartbeats::Entity as WorkerHeartbeats;
