//! Figures about runs for `/metrics`, read when it is scraped (an idle
//! server asks the database nothing on its own): runs by agent and status,
//! and the queue's depth and oldest run by agent. Two aggregate statements
//! over indexes (`(agent_id, status)`, read alone: `COUNT(*)`, as
//! `COUNT(id)` made SQLite read every row too, 3 times slower; and the
//! queue's partial index) and the agents' slugs; they are the database's
//! figures, the same from every server over it.

use std::collections::HashMap;

use chrono::{DateTime, FixedOffset};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, sea_query::Expr,
};
use uuid::Uuid;

use super::{Store, StoreResult, runs::Reaped};
use crate::{
    entity::{agents, enums::ExecutionStatus, executions},
    metrics::{self, SharedString},
};

/// What the database says about runs, when asked.
#[derive(Debug, Clone, Default)]
pub struct RunFigures {
    /// Every agent: id and slug, by slug.
    pub agents: Vec<(Uuid, String)>,
    /// Runs by agent and status (absent: none).
    pub by_status: HashMap<(Uuid, ExecutionStatus), u64>,
    /// Queued runs by agent: how many, and when the oldest was created.
    pub queued: HashMap<Uuid, (u64, DateTime<FixedOffset>)>,
}

impl Store {
    /// Runs by agent and status, and the queue by agent.
    pub async fn run_figures(&self) -> StoreResult<RunFigures> {
        let db = self.db();
        let mut agents: Vec<(Uuid, String)> = agents::Entity::find()
            .select_only()
            .column(agents::Column::Id)
            .column(agents::Column::Slug)
            .into_tuple()
            .all(db)
            .await?;
        agents.sort_by(|a, b| a.1.cmp(&b.1));
        for (id, slug) in &agents {
            metrics::remember_agent(*id, slug);
        }
        let by_status = executions::Entity::find()
            .select_only()
            .column(executions::Column::AgentId)
            .column(executions::Column::Status)
            .column_as(Expr::cust("COUNT(*)"), "runs")
            .group_by(executions::Column::AgentId)
            .group_by(executions::Column::Status)
            .into_tuple::<(Uuid, ExecutionStatus, i64)>()
            .all(db)
            .await?
            .into_iter()
            .map(|(agent, status, runs)| ((agent, status), runs.max(0) as u64))
            .collect();
        let queued = executions::Entity::find()
            .select_only()
            .column(executions::Column::AgentId)
            .column_as(Expr::cust("COUNT(*)"), "runs")
            .column_as(executions::Column::CreatedAt.min(), "oldest")
            .filter(executions::Column::Status.eq(ExecutionStatus::Queued))
            .group_by(executions::Column::AgentId)
            .into_tuple::<(Uuid, i64, DateTime<FixedOffset>)>()
            .all(db)
            .await?
            .into_iter()
            .map(|(agent, runs, oldest)| (agent, (runs.max(0) as u64, oldest)))
            .collect();
        Ok(RunFigures {
            agents,
            by_status,
            queued,
        })
    }
}

/// The `agent` label of a run's agent: its slug, read from the database
/// (through `conn`, the caller's transaction) the first time an agent is
/// met; its id if even that fails, rather than failing the write measured.
pub(crate) async fn agent_label<C: ConnectionTrait>(conn: &C, agent_id: Uuid) -> SharedString {
    if let Some(label) = metrics::known_agent(agent_id) {
        return label;
    }
    let slug = agents::Entity::find_by_id(agent_id)
        .select_only()
        .column(agents::Column::Slug)
        .into_tuple::<String>()
        .one(conn)
        .await;
    match slug {
        Ok(Some(slug)) => {
            metrics::remember_agent(agent_id, &slug);
            SharedString::from(slug)
        }
        _ => SharedString::from(agent_id.to_string()),
    }
}

/// Counts runs taken from their worker, once the transaction that took
/// them committed: reaped (`silent`) or lost with a worker that registered
/// again, and requeued or ended.
pub(super) async fn count_lost<C: ConnectionTrait>(conn: &C, lost: &[Reaped], silent: bool) {
    for run in lost {
        let agent = agent_label(conn, run.execution.agent_id).await;
        metrics::run_reaped(agent.clone(), silent);
        metrics::run_ended(agent, run.execution.status, None);
    }
}

/// Counts a claimed run ended by the server (it could not start), once
/// committed.
pub(super) async fn count_ended<C: ConnectionTrait>(conn: &C, run: &executions::Model) {
    let agent = agent_label(conn, run.agent_id).await;
    metrics::run_ended(agent, run.status, None);
}
