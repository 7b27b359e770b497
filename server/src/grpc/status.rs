//! The one mapping from store failures to gRPC status codes.

use tonic::{Code, Status};

use crate::store::StoreError;

impl From<StoreError> for Status {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::InvalidArgument { .. } => Status::invalid_argument(err.to_string()),
            StoreError::NotFound { .. } => Status::not_found(err.to_string()),
            StoreError::AlreadyExists(message) => Status::already_exists(message),
            StoreError::FailedPrecondition(message) => Status::failed_precondition(message),
            StoreError::Database(db_err) => {
                // The caller can't fix this; keep details in our logs, not on the wire.
                tracing::error!(error = %db_err, "database error");
                Status::new(Code::Internal, "internal database error")
            }
            StoreError::Internal(message) => {
                tracing::error!(error = %message, "internal error");
                Status::new(Code::Internal, message)
            }
        }
    }
}
