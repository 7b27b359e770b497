//! The one timer helper of the crate: an optional deadline in a `select!`.

use tokio::time::{Instant, sleep_until};

/// Waits until `at`, or forever when `None`: a `select!` arm whose deadline
/// may be unset (guard it with `if at.is_some()` to skip polling it).
pub(crate) async fn sleep_opt(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}
