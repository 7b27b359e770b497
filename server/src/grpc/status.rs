//! The one mapping from store failures to gRPC status codes.

use tonic::{Code, Status};

use crate::store::{StoreError, validate::cut_to_bytes};

/// Longest message a status carries. It travels in a header, and gRPC
/// clients refuse headers over 16 KiB by default: a longer message made the
/// real code unreadable (the client saw an h2 error instead).
const MAX_MESSAGE_BYTES: usize = 2048;

/// `message`, cut to [`MAX_MESSAGE_BYTES`] on a character boundary.
fn bounded(message: String) -> String {
    cut_to_bytes(message, MAX_MESSAGE_BYTES)
}

impl From<StoreError> for Status {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::InvalidArgument { .. } => {
                Status::invalid_argument(bounded(err.to_string()))
            }
            StoreError::NotFound { .. } => Status::not_found(bounded(err.to_string())),
            StoreError::AlreadyExists(message) => Status::already_exists(bounded(message)),
            StoreError::FailedPrecondition(message) => {
                Status::failed_precondition(bounded(message))
            }
            StoreError::Database(db_err) => {
                // The caller can't fix this; keep details in our logs, not on the wire.
                tracing::error!(error = %db_err, "database error");
                Status::new(Code::Internal, "internal database error")
            }
            StoreError::Internal(message) => {
                tracing::error!(error = %message, "internal error");
                Status::new(Code::Internal, bounded(message))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_stay_under_what_clients_read() {
        let status = Status::from(StoreError::invalid("f", "é".repeat(10_000)));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().len() <= MAX_MESSAGE_BYTES + 4);
        assert!(status.message().ends_with('…'));
    }
}
