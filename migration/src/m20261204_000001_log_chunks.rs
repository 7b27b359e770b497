//! Execution logs in the database, for several servers over one PostgreSQL.
//!
//! Beyond the data model (which keeps a log as a file on the server that
//! received it, `executions.log_file_path`): with several servers, a
//! follower on any of them must read a log live and byte for byte, and a
//! finished run's log must outlive the server that received it, so on
//! PostgreSQL the bytes are stored here, in the chunks the workers sent.
//! SQLite has one server, whose files stay: this migration does nothing there.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = "
CREATE TABLE execution_log_chunks (
    execution_id uuid   NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    -- Offset of the chunk's first byte in the log; chunks never overlap.
    byte_offset  bigint NOT NULL CHECK (byte_offset >= 0),
    data         bytea  NOT NULL CHECK (octet_length(data) > 0),
    -- Newlines in data, so a log's line count is a sum, not a scan.
    line_count   integer NOT NULL CHECK (line_count >= 0),
    PRIMARY KEY (execution_id, byte_offset)
);
";

const DOWN: &str = "DROP TABLE execution_log_chunks;";

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
