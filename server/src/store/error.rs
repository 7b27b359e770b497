//! What can go wrong in the store, in terms a caller can act on. The mapping
//! to gRPC status codes lives in `grpc::status`, nowhere else.

use sea_orm::{DbErr, SqlErr};

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The caller sent a value that can never be accepted; `field` names it.
    #[error("{field}: {message}")]
    InvalidArgument {
        /// Request field path, e.g. `agent.slug`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The named resource does not exist (in the caller's workspace).
    #[error("{kind} {id} not found")]
    NotFound {
        /// Resource kind, e.g. "task".
        kind: &'static str,
        /// The id (or key) asked for.
        id: String,
    },
    /// A resource with the same unique key exists.
    #[error("{0}")]
    AlreadyExists(String),
    /// The request is valid but the current state forbids it (illegal
    /// transition, dependency cycle, resource in use).
    #[error("{0}")]
    FailedPrecondition(String),
    /// The database failed; not the caller's fault.
    #[error("database error: {0}")]
    Database(DbErr),
    /// Something else of the server's own failed (a log file, say); not the
    /// caller's fault.
    #[error("{0}")]
    Internal(String),
}

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// An invalid argument named by its request field path.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A missing resource.
    pub fn not_found(kind: &'static str, id: impl ToString) -> Self {
        Self::NotFound {
            kind,
            id: id.to_string(),
        }
    }
}

impl From<DbErr> for StoreError {
    fn from(err: DbErr) -> Self {
        // Constraint violations that slipped past validation (typically a
        // concurrent insert of the same key) are the caller's conflict, not
        // an internal failure.
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(detail)) => {
                Self::AlreadyExists(format!("already exists: {detail}"))
            }
            Some(SqlErr::ForeignKeyConstraintViolation(detail)) => Self::FailedPrecondition(
                format!("a referenced resource is missing or still in use: {detail}"),
            ),
            _ => Self::Database(err),
        }
    }
}
