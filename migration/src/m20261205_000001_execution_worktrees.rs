//! What each run changed in its task's git worktree (issue 18).
//!
//! Beyond the data model, which has no worktrees: a run of a task with
//! worktree isolation reports, when it ends, the worktree's state against
//! its base (branch, commits, files with line counts, dirtiness, a snapshot
//! tree for its diff). It belongs to the execution, and the task's latest
//! row says which worker holds the task's worktree (to finish it, or to ask
//! for a diff). No existing column fits: `executions.args` is the caller's
//! validated input (copied by retries and continuations), and
//! `tasks.input_context` is what a person set; a run's result in either
//! would be overwritten by, or leak into, what people edit. One row per
//! execution, gone with it (and with its task).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const POSTGRES_UP: &str = "
CREATE TABLE execution_worktrees (
    execution_id uuid        PRIMARY KEY REFERENCES executions (id) ON DELETE CASCADE,
    task_id      uuid        NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    -- The worker holding the worktree.
    worker_id    text        NOT NULL,
    -- WorktreeSummary with camelCase keys (store::worktrees::WorktreeSummary).
    summary      jsonb       NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_execution_worktrees_task ON execution_worktrees (task_id, recorded_at);
";

const SQLITE_UP: &str = "
CREATE TABLE execution_worktrees (
    execution_id BLOB NOT NULL PRIMARY KEY,
    task_id      BLOB NOT NULL,
    worker_id    TEXT NOT NULL,
    summary      TEXT NOT NULL,
    recorded_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    CONSTRAINT execution_worktrees_execution_id_executions_id_fk
        FOREIGN KEY (execution_id) REFERENCES executions (id) ON DELETE CASCADE,
    CONSTRAINT execution_worktrees_task_id_tasks_id_fk
        FOREIGN KEY (task_id) REFERENCES tasks (id) ON DELETE CASCADE
) STRICT;
CREATE INDEX idx_execution_worktrees_task ON execution_worktrees (task_id, recorded_at);
";

const DOWN: &str = "DROP TABLE execution_worktrees;";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let up = match manager.get_database_backend() {
            DbBackend::Postgres => POSTGRES_UP,
            _ => SQLITE_UP,
        };
        manager.get_connection().execute_unprepared(up).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(DOWN).await?;
        Ok(())
    }
}
