//! The task dependency graph: edges, and the cycle check that keeps it a DAG.
//!
//! The check walks the graph inside the transaction that inserts the edge.
//! Two concurrent insertions could each see an acyclic graph and together
//! close a cycle, so every graph change first takes a transaction-scoped lock
//! on the workspace's graph (PostgreSQL: `pg_advisory_xact_lock`; SQLite's
//! single writer already serializes them). Reads need no lock.

use std::collections::{HashMap, HashSet, VecDeque};

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait,
    QueryFilter, QueryOrder, Statement,
};
use serde_json::json;
use uuid::Uuid;

use super::{Actor, Dependencies, StoreError, StoreResult, tasks::find_task};
use crate::entity::task_dependencies;

/// Namespace of the graph lock's key (ASCII "amdg"); the workspace id fills the rest.
const GRAPH_LOCK_NAMESPACE: i32 = 0x616d_6467;

/// The dependencies of a task in both directions.
#[derive(Debug, Clone, Default)]
pub struct TaskDependencies {
    /// What the task depends on.
    pub dependencies: Vec<task_dependencies::Model>,
    /// What depends on the task.
    pub dependents: Vec<task_dependencies::Model>,
}

async fn lock_graph<C: ConnectionTrait>(conn: &C, workspace_id: Uuid) -> StoreResult<()> {
    if conn.get_database_backend() == DbBackend::Postgres {
        // Two-key form: (namespace, 32 bits of the workspace id).
        let workspace_key = workspace_id.as_u128() as u32 as i32;
        conn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1, $2)",
            [GRAPH_LOCK_NAMESPACE.into(), workspace_key.into()],
        ))
        .await?;
    }
    Ok(())
}

/// A path `from → … → to` along dependency edges, if one exists.
pub async fn find_path<C: ConnectionTrait>(
    conn: &C,
    from: Uuid,
    to: Uuid,
) -> StoreResult<Option<Vec<Uuid>>> {
    let mut came_from: HashMap<Uuid, Uuid> = HashMap::new();
    let mut seen: HashSet<Uuid> = HashSet::from([from]);
    let mut frontier: VecDeque<Uuid> = VecDeque::from([from]);
    while !frontier.is_empty() {
        // One query per breadth level keeps round trips at the graph's depth.
        let level: Vec<Uuid> = frontier.drain(..).collect();
        let edges = task_dependencies::Entity::find()
            .filter(task_dependencies::Column::TaskId.is_in(level))
            .all(conn)
            .await?;
        for edge in edges {
            if !seen.insert(edge.depends_on_task_id) {
                continue;
            }
            came_from.insert(edge.depends_on_task_id, edge.task_id);
            if edge.depends_on_task_id == to {
                let mut path = vec![to];
                let mut cursor = to;
                while let Some(previous) = came_from.get(&cursor) {
                    path.push(*previous);
                    cursor = *previous;
                }
                path.reverse();
                return Ok(Some(path));
            }
            frontier.push_back(edge.depends_on_task_id);
        }
    }
    Ok(None)
}

impl Dependencies<'_> {
    /// Makes `task_id` depend on `depends_on_task_id`.
    pub async fn add(
        &self,
        task_id: Uuid,
        depends_on_task_id: Uuid,
        actor: Actor,
    ) -> StoreResult<task_dependencies::Model> {
        if task_id == depends_on_task_id {
            return Err(StoreError::invalid(
                "depends_on_task_id",
                "a task cannot depend on itself",
            ));
        }
        let mut txn = self.0.write().await?;
        let task = find_task(&*txn, task_id).await?;
        find_task(&*txn, depends_on_task_id).await.map_err(|_| {
            StoreError::not_found("task", format!("{depends_on_task_id} (depends_on_task_id)"))
        })?;
        lock_graph(&*txn, task.workspace_id).await?;

        let existing = task_dependencies::Entity::find_by_id((task_id, depends_on_task_id))
            .one(&*txn)
            .await?;
        if existing.is_some() {
            return Err(StoreError::AlreadyExists(format!(
                "task {task_id} already depends on {depends_on_task_id}"
            )));
        }
        if let Some(path) = find_path(&*txn, depends_on_task_id, task_id).await? {
            let cycle: Vec<String> = std::iter::once(task_id)
                .chain(path)
                .map(|id| id.to_string())
                .collect();
            return Err(StoreError::FailedPrecondition(format!(
                "dependency would close a cycle: {}",
                cycle.join(" -> ")
            )));
        }

        let edge = task_dependencies::ActiveModel {
            task_id: Set(task_id),
            depends_on_task_id: Set(depends_on_task_id),
            created_at: Set(Utc::now().into()),
        }
        .insert(&*txn)
        .await?;
        txn.record_event(
            task_id,
            actor,
            "dependency_added",
            json!({ "depends_on_task_id": depends_on_task_id }),
        )
        .await?;
        txn.commit().await?;
        Ok(edge)
    }

    /// Removes the edge `task_id → depends_on_task_id`.
    pub async fn remove(
        &self,
        task_id: Uuid,
        depends_on_task_id: Uuid,
        actor: Actor,
    ) -> StoreResult<()> {
        let mut txn = self.0.write().await?;
        let task = find_task(&*txn, task_id).await?;
        lock_graph(&*txn, task.workspace_id).await?;
        let removed = task_dependencies::Entity::delete_by_id((task_id, depends_on_task_id))
            .exec(&*txn)
            .await?;
        if removed.rows_affected == 0 {
            return Err(StoreError::not_found(
                "dependency",
                format!("{task_id} -> {depends_on_task_id}"),
            ));
        }
        txn.record_event(
            task_id,
            actor,
            "dependency_removed",
            json!({ "depends_on_task_id": depends_on_task_id }),
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }

    /// What a task depends on and what depends on it, oldest edges first.
    pub async fn list(&self, task_id: Uuid) -> StoreResult<TaskDependencies> {
        let db = self.0.db();
        find_task(db, task_id).await?;
        let dependencies = task_dependencies::Entity::find()
            .filter(task_dependencies::Column::TaskId.eq(task_id))
            .order_by_asc(task_dependencies::Column::CreatedAt)
            .all(db)
            .await?;
        let dependents = task_dependencies::Entity::find()
            .filter(task_dependencies::Column::DependsOnTaskId.eq(task_id))
            .order_by_asc(task_dependencies::Column::CreatedAt)
            .all(db)
            .await?;
        Ok(TaskDependencies {
            dependencies,
            dependents,
        })
    }
}
