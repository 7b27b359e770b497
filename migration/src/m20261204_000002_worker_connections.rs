//! Which server each worker is connected to, for several servers over one
//! PostgreSQL.
//!
//! Beyond the data model (where who is connected is the server's memory):
//! with several servers, `ListWorkers` on one of them must show the workers
//! connected to the others as connected, with what they registered. A server
//! writes a row when a worker registers with it and deletes it when the
//! stream ends; a row left by a server that died counts only while the
//! worker's heartbeat is fresh. SQLite has one server: this migration does
//! nothing there.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = "
CREATE TABLE worker_connections (
    worker_id    text        PRIMARY KEY,
    -- The server holding the worker's stream (its id for this process's life).
    server_id    uuid        NOT NULL,
    hostname     text        NOT NULL,
    version      text        NOT NULL,
    slots        integer     NOT NULL,
    labels       jsonb       NOT NULL DEFAULT '{}',
    agent_slugs  jsonb       NOT NULL DEFAULT '[]',
    draining     boolean     NOT NULL DEFAULT false,
    connected_at timestamptz NOT NULL DEFAULT now()
);
";

const DOWN: &str = "DROP TABLE worker_connections;";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            manager.get_connection().execute_unprepared(UP).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            manager.get_connection().execute_unprepared(DOWN).await?;
        }
        Ok(())
    }
}
