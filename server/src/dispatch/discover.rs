//! Discovery scans relayed to workers: `AgentService.DiscoverAgents` asks a
//! connected worker over its `Connect` stream (`ToWorker::Discover`, with a
//! request id of its own), and the worker's answers (`DiscoverProgress`,
//! then one `DiscoverResult`) come back on the same stream and are routed
//! to the caller waiting for that id.
//!
//! An answer is taken only from the worker the request went to: another
//! worker quoting the id is ignored. When that worker's stream ends (it
//! left, or a newer stream took its place) its pending scans end at once,
//! so a caller never waits for an answer that cannot come; the caller's
//! own deadline bounds a worker that is connected but never answers.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::sync::mpsc;
use uuid::Uuid;

use super::{
    Engine,
    messages::{DiscoverProgress, DiscoverRequest, ToWorker},
};
use crate::store::{StoreError, StoreResult, discovery::Found, validate::quoted};

/// Progress messages held for a slow caller before the newest are dropped
/// (progress only: the result always has room, being the last message).
const PROGRESS_BUFFER: usize = 64;

/// What a waiting caller hears about its scan.
#[derive(Debug)]
pub enum DiscoveryEvent {
    /// How far the scan is.
    Progress(DiscoverProgress),
    /// What it found, or why the worker could not scan.
    Done(Result<Found, String>),
}

/// Scans under way on this server's workers, by request id.
#[derive(Clone, Default)]
pub struct Discoveries {
    pending: Arc<Mutex<HashMap<Uuid, Waiting>>>,
}

struct Waiting {
    worker_id: String,
    events: mpsc::Sender<DiscoveryEvent>,
}

impl Discoveries {
    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Waiting>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands a worker's answer to the caller waiting for it; ignored when
    /// nobody waits (the caller left, or timed out) or the request went to
    /// another worker.
    pub fn answer(&self, worker_id: &str, request_id: Uuid, event: DiscoveryEvent) {
        let mut pending = self.pending();
        let Some(waiting) = pending.get(&request_id) else {
            tracing::debug!(%request_id, worker_id, "a discovery answer nobody waits for");
            return;
        };
        if waiting.worker_id != worker_id {
            tracing::warn!(%request_id, worker_id, "a discovery answer from a worker not asked");
            return;
        }
        match event {
            DiscoveryEvent::Progress(_) => {
                // A caller reading slowly misses some progress, never the
                // result: the last free place is kept for it.
                if waiting.events.capacity() > 1 {
                    let _ = waiting.events.try_send(event);
                }
            }
            DiscoveryEvent::Done(_) => {
                if let Some(waiting) = pending.remove(&request_id) {
                    // The result must get through: the channel keeps one
                    // place free for it (see `Engine::discover`).
                    let _ = waiting.events.try_send(event);
                }
            }
        }
    }

    /// Ends every scan pending on `worker_id`'s stream: its callers hear
    /// the channel close.
    pub fn worker_gone(&self, worker_id: &str) {
        self.pending().retain(|_, w| w.worker_id != worker_id);
    }

    fn forget(&self, request_id: Uuid) {
        self.pending().remove(&request_id);
    }
}

/// A scan under way: its events, until the result (or the channel closing,
/// when the worker left). Dropping it forgets the request.
pub struct PendingScan {
    /// The request id sent to the worker.
    pub request_id: Uuid,
    events: mpsc::Receiver<DiscoveryEvent>,
    discoveries: Discoveries,
}

impl PendingScan {
    /// The next event; `None` once the worker's stream ended without a result.
    pub async fn next(&mut self) -> Option<DiscoveryEvent> {
        self.events.recv().await
    }
}

impl Drop for PendingScan {
    fn drop(&mut self) {
        self.discoveries.forget(self.request_id);
    }
}

impl Engine {
    /// Whether `worker_id` is connected to this server, so a request can
    /// be relayed to it over its stream (`what` names the request in the
    /// errors): NOT_FOUND for a worker never seen, FAILED_PRECONDITION for
    /// one connected to another server over the database (saying so) or
    /// not connected at all.
    pub(super) async fn reachable(&self, worker_id: &str, what: &str) -> StoreResult<()> {
        if self.workers.is_connected(worker_id) {
            return Ok(());
        }
        let alive_within = super::alive_within(self.settings().heartbeat_interval);
        if let Some(elsewhere) = self
            .store
            .workers()
            .connected_elsewhere(alive_within)
            .await?
            .into_iter()
            .find(|w| w.registered.worker_id == worker_id)
        {
            return Err(StoreError::FailedPrecondition(format!(
                "worker {} (host {}) is connected to another server over this database: \
                 {what} is relayed by the server a worker is connected to; ask that one",
                quoted(worker_id),
                quoted(&elsewhere.registered.hostname)
            )));
        }
        let seen = self
            .store
            .workers()
            .seen()
            .await?
            .into_iter()
            .find(|row| row.worker_id == worker_id);
        Err(match seen {
            Some(row) => StoreError::FailedPrecondition(format!(
                "worker {} is not connected to this server (last seen {}): {what} needs \
                 the worker connected; ask the server it is connected to, or start it",
                quoted(worker_id),
                row.last_seen_at.to_rfc3339()
            )),
            None => StoreError::NotFound {
                kind: "worker",
                id: format!("{} (worker_id)", quoted(worker_id)),
            },
        })
    }

    /// Asks the connected worker `worker_id` to scan its machine. NOT_FOUND
    /// for a worker never seen, FAILED_PRECONDITION for one connected to
    /// another server over the database (saying so), gone, or whose stream
    /// is full.
    pub async fn discover(
        &self,
        worker_id: &str,
        request: DiscoverRequest,
    ) -> StoreResult<PendingScan> {
        self.reachable(worker_id, "a scan").await?;
        let request_id = Uuid::new_v4();
        // One more than the progress buffer: the result always has a place.
        let (tx, rx) = mpsc::channel(PROGRESS_BUFFER + 1);
        self.discoveries.pending().insert(
            request_id,
            Waiting {
                worker_id: worker_id.to_owned(),
                events: tx,
            },
        );
        let pending = PendingScan {
            request_id,
            events: rx,
            discoveries: self.discoveries.clone(),
        };
        if !self.workers.send(
            worker_id,
            ToWorker::Discover {
                request_id,
                request,
            },
        ) {
            return Err(StoreError::FailedPrecondition(format!(
                "worker {} left, or its stream is full: try again",
                quoted(worker_id)
            )));
        }
        Ok(pending)
    }
}
