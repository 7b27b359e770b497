//! Test databases: a fresh, empty database per test, on SQLite or PostgreSQL.
//!
//! Every test that touches a database runs on both backends, each with a database of its
//! own so tests run in parallel and never see each other's rows:
//!
//! - **SQLite**: a file in a temporary directory (removed, with its WAL files, on drop).
//! - **PostgreSQL**: a database `amon_t_<uuid>` created on the server named by
//!   `AMON_TEST_DATABASE_URL` (default [`DEFAULT_POSTGRES_URL`]) and dropped `WITH (FORCE)`
//!   on drop. The drop runs on a thread of its own with its own runtime, so it completes
//!   even while the test's runtime is shutting down or unwinding from a panic.
//!
//! When PostgreSQL cannot be reached, the PostgreSQL half of a test is skipped with a note
//! on stderr, so `cargo test` works on a machine without it, except under `CI=true`, where
//! a missing server fails the test: CI must never pass by skipping.
//!
//! Write the body once and get both tests with [`both_backends!`](crate::both_backends).

use std::{fmt, io::Write, sync::OnceLock};

use sea_orm::{ConnectionTrait, DatabaseConnection};

/// The PostgreSQL server tests use when `AMON_TEST_DATABASE_URL` is not set.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A database engine the product supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        })
    }
}

/// Connects to `url` exactly the way the server does (foreign keys, WAL and a
/// busy timeout on every pooled SQLite connection).
pub use amon_server::db::connect;

/// A fresh, empty database (no schema: run the migrations, or start a server on it),
/// removed when dropped.
pub struct TestDb {
    backend: Backend,
    url: String,
    conn: DatabaseConnection,
    // Held for their `Drop`, and declared after `conn` so that the pool goes first: the
    // directory holding the SQLite file, or the PostgreSQL database.
    _sqlite_dir: Option<tempfile::TempDir>,
    _postgres_database: Option<DropDatabase>,
}

impl TestDb {
    /// A fresh database on `backend`, or `None` when the backend is PostgreSQL, the server is
    /// unreachable and this is not CI (see the module documentation).
    ///
    /// # Panics
    /// When the database cannot be made: no usable temporary directory, a PostgreSQL server
    /// that refuses `CREATE DATABASE`, or an unreachable PostgreSQL under `CI=true`.
    pub async fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => Some(Self::sqlite().await),
            Backend::Postgres => Self::postgres().await,
        }
    }

    async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("creating a directory for the SQLite database");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("amon.db").display());
        let conn = connect(&url)
            .await
            .unwrap_or_else(|e| panic!("opening SQLite database {url}: {e}"));
        TestDb {
            backend: Backend::Sqlite,
            url,
            conn,
            _sqlite_dir: Some(dir),
            _postgres_database: None,
        }
    }

    async fn postgres() -> Option<TestDb> {
        let server_url =
            std::env::var("AMON_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into());
        // Once one test has found the server unreachable, the others skip without waiting
        // out the connect timeout again.
        static UNREACHABLE: OnceLock<String> = OnceLock::new();
        let admin = match UNREACHABLE.get() {
            Some(reason) => return unreachable(&server_url, reason),
            None => match connect(&server_url).await {
                Ok(admin) => admin,
                Err(e) => {
                    return unreachable(&server_url, UNREACHABLE.get_or_init(|| e.to_string()));
                }
            },
        };
        let name = format!("amon_t_{}", uuid::Uuid::new_v4().simple());
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("creating database {name} on {server_url}: {e}"));
        // From here on the database exists: make sure it is dropped even if connecting fails.
        let cleanup = DropDatabase {
            server_url: server_url.clone(),
            name: name.clone(),
        };
        admin.close().await.ok();

        let url = with_database(&server_url, &name);
        let conn = connect(&url)
            .await
            .unwrap_or_else(|e| panic!("connecting to the new database {url}: {e}"));
        Some(TestDb {
            backend: Backend::Postgres,
            url,
            conn,
            _sqlite_dir: None,
            _postgres_database: Some(cleanup),
        })
    }

    /// The backend this database runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL of the database, for a server under test or for [`connect`].
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A connection pool to the database, made by [`connect`].
    pub fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }
}

/// Skips the test (`None`), or fails it under `CI=true`.
fn unreachable(server_url: &str, reason: &str) -> Option<TestDb> {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("PostgreSQL unreachable at {server_url} (CI=true, so this fails): {reason}");
    }
    // Straight to stderr: `eprintln!` would be captured, and hidden, by the test harness.
    let note = format!("skipped: PostgreSQL unreachable at {server_url}: {reason}\n");
    std::io::stderr().write_all(note.as_bytes()).ok();
    None
}

/// Drops a PostgreSQL test database when dropped itself.
struct DropDatabase {
    server_url: String,
    name: String,
}

impl Drop for DropDatabase {
    fn drop(&mut self) {
        // Drop cannot await, and the test's runtime may be single-threaded, busy dropping us,
        // or gone: do the work on a thread with a runtime of its own, and wait for it, so the
        // database is gone before the test is reported done.
        let server_url = self.server_url.clone();
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let admin = connect(&server_url).await?;
                // FORCE: the test's own pool may still hold connections.
                let dropped = admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
                admin.close().await.ok();
                dropped.map(drop)
            })?;
            anyhow::Ok(())
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: test database {} not dropped: {e}", self.name),
            Err(_) => eprintln!("warning: test database {} not dropped: panic", self.name),
        }
    }
}

/// `server_url` with its database name replaced by `database`, keeping any query string:
/// `postgres://u@h:5432/test?sslmode=disable` → `postgres://u@h:5432/<database>?sslmode=disable`.
fn with_database(server_url: &str, database: &str) -> String {
    let (base, query) = match server_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (server_url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut url = format!("{}/{database}", &base[..authority_end]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

/// Defines a test module `$name` with a `sqlite` and a `postgres` test, each of which runs
/// the async function `$name(TestDb) -> anyhow::Result<()>` on a fresh database of that
/// backend (the PostgreSQL one is skipped when the server is unreachable, outside CI).
///
/// ```ignore
/// async fn deletes_cascade(db: TestDb) -> anyhow::Result<()> { … }
/// both_backends!(deletes_cascade);   // tests deletes_cascade::sqlite, deletes_cascade::postgres
/// ```
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[::tokio::test]
            async fn sqlite() {
                $crate::db::run($crate::db::Backend::Sqlite, super::$name).await;
            }

            #[::tokio::test]
            async fn postgres() {
                $crate::db::run($crate::db::Backend::Postgres, super::$name).await;
            }
        }
    )+};
}

/// Runs `test` on a fresh database of `backend`, failing on its error; used by
/// [`both_backends!`](crate::both_backends).
pub async fn run<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    if let Some(db) = TestDb::new(backend).await
        && let Err(e) = test(db).await
    {
        panic!("on {backend}: {e:#}");
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn with_database_replaces_only_the_database_name() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "amon_t_1"),
            "postgres://postgres@127.0.0.1:5432/amon_t_1"
        );
        assert_eq!(
            with_database("postgres://u:p@db:5432/test?sslmode=disable", "x"),
            "postgres://u:p@db:5432/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://db", "x"), "postgres://db/x");
    }
}
