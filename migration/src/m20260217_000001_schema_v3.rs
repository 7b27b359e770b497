//! Schema v3.0: the eight tables of the data model, with their enums, keys, checks and
//! indexes.
//!
//! The DDL lives beside this file, one script per backend and direction. Both scripts create
//! the same objects under the same names; `sqlite_up.sql` explains how each PostgreSQL type
//! is stored on SQLite.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The DDL for one direction of the migration, per backend.
struct Script {
    postgres: &'static str,
    sqlite: &'static str,
}

const UP: Script = Script {
    postgres: include_str!("m20260217_000001_schema_v3/postgres_up.sql"),
    sqlite: include_str!("m20260217_000001_schema_v3/sqlite_up.sql"),
};

const DOWN: Script = Script {
    postgres: include_str!("m20260217_000001_schema_v3/postgres_down.sql"),
    sqlite: include_str!("m20260217_000001_schema_v3/sqlite_down.sql"),
};

impl Script {
    async fn run(&self, manager: &SchemaManager<'_>) -> Result<(), DbErr> {
        let sql = match manager.get_database_backend() {
            DbBackend::Postgres => self.postgres,
            DbBackend::Sqlite => self.sqlite,
            other => {
                return Err(DbErr::Migration(format!(
                    "schema v3.0 supports PostgreSQL and SQLite, not {other:?}"
                )));
            }
        };
        // Unprepared: the script is several statements, which both drivers then run in order.
        manager.get_connection().execute_unprepared(sql).await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        UP.run(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        DOWN.run(manager).await
    }

    /// All or nothing on both backends (sea-orm only wraps PostgreSQL by default): a script
    /// that fails halfway must not leave half a schema behind.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
