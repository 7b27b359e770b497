//! Database connection: one code path for SQLite (the embedded default) and PostgreSQL.
//!
//! SQLite runs in WAL mode so readers never wait for the writer, with foreign
//! keys enforced and a busy timeout; write transactions are begun with
//! `BEGIN IMMEDIATE` (see [`begin_write`]) so two writers queue on the lock
//! instead of failing when a read transaction tries to upgrade.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
    sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous},
};

/// How long a SQLite writer waits for the lock before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Pool size: several connections so reads run beside a write.
const MAX_CONNECTIONS: u32 = 16;

/// Connects to `url` (SQLite or PostgreSQL) with the settings this server relies on.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(MAX_CONNECTIONS)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        // Fail fast on an unreachable server rather than hang the start.
        .connect_timeout(Duration::from_secs(5))
        // Every statement at DEBUG (`RUST_LOG=sqlx::query=debug` shows what
        // the server asks the database), one over a second at INFO; at the
        // default level a statement costs one cached level check.
        .sqlx_logging(true)
        .sqlx_logging_level(log::LevelFilter::Debug)
        .sqlx_slow_statements_logging_settings(log::LevelFilter::Info, Duration::from_secs(1))
        .map_sqlx_sqlite_opts(|opts| {
            opts.foreign_keys(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
        });
    Database::connect(options).await
}

/// Connects and brings the schema up to date.
pub async fn connect_and_migrate(url: &str) -> Result<DatabaseConnection, DbErr> {
    let db = connect(url).await?;
    if db.get_database_backend() != DbBackend::Postgres {
        Migrator::up(&db, None).await?;
        return Ok(db);
    }
    // Several servers starting at once over one database would run the
    // same migration side by side, and all but one fail half-way (a type
    // or table created twice). One migrates at a time, under a lock held
    // by a connection of its own; the next finds nothing left to do.
    let sqlx_error =
        |e: sea_orm::sqlx::Error| DbErr::Conn(sea_orm::RuntimeErr::SqlxError(e.into()));
    let mut holder = db
        .get_postgres_connection_pool()
        .acquire()
        .await
        .map_err(sqlx_error)?;
    let lock = |sql| sea_orm::sqlx::query(sql).bind(MIGRATION_LOCK_KEY);
    lock("SELECT pg_advisory_lock($1)")
        .execute(&mut *holder)
        .await
        .map_err(sqlx_error)?;
    let migrated = Migrator::up(&db, None).await;
    let unlocked = lock("SELECT pg_advisory_unlock($1)")
        .execute(&mut *holder)
        .await;
    migrated?;
    unlocked.map_err(sqlx_error)?;
    Ok(db)
}

/// Key of the advisory lock one server migrates under (ASCII "amonmig").
const MIGRATION_LOCK_KEY: i64 = 0x0061_6d6f_6e6d_6967;

/// Begins a transaction that will write. On SQLite it takes the write lock at
/// once (`BEGIN IMMEDIATE`), which makes concurrent writers wait their turn
/// (busy timeout) rather than fail with SQLITE_BUSY mid-transaction.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    match db.get_database_backend() {
        DbBackend::Sqlite => {
            db.begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await
        }
        _ => db.begin().await,
    }
}
