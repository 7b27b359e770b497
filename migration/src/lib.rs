//! Agent Monitor's database schema as sea-orm migrations, for SQLite and PostgreSQL.
//!
//! The schema is the data model v3.0 (`data-model.md`). Each migration carries one SQL script
//! per backend rather than sea-query builder calls: the two backends differ in almost every
//! column type (native enums, `uuid`, `jsonb` and `timestamptz` on PostgreSQL; checked `TEXT`,
//! `BLOB` and STRICT tables on SQLite), and the parts that matter most — the partial queue
//! index, the identity column, named checks — are plain SQL on both anyway. A reviewer reads
//! the exact DDL each database gets; the schema tests in `amon-tests` check the live result
//! against the data model on both.
//!
//! ```ignore
//! use migration::{Migrator, MigratorTrait};
//! Migrator::up(&db, None).await?;
//! ```

pub use sea_orm_migration::prelude::*;

mod m20260217_000001_schema_v3;
mod m20261204_000001_log_chunks;
mod m20261204_000002_worker_connections;
mod m20261205_000001_execution_worktrees;

/// Every migration of the schema, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20260217_000001_schema_v3::Migration),
            Box::new(m20261204_000001_log_chunks::Migration),
            Box::new(m20261204_000002_worker_connections::Migration),
            Box::new(m20261205_000001_execution_worktrees::Migration),
        ]
    }
}
