//! Reading an execution's log for a client: what is stored, then (when
//! following) each new byte as it is stored, until the run has ended and
//! every byte was sent.
//!
//! Read only as fast as the client takes it: a follower holds at most one
//! piece waiting for its client ([`PIECE_BYTES`]), and all followers of a
//! server together at most [`FOLLOWERS_BUDGET_BYTES`] (a piece waits for the
//! budget, it is never dropped). A follower that stopped reading used to
//! make the server buffer 16 MB for it: 200 of them on a 10 MiB log took the
//! server from 112 MB to 2.2 GB.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_stream::{Stream, StreamExt, wrappers::ReceiverStream};
use uuid::Uuid;

use super::Engine;
use crate::{
    entity::enums::ExecutionStatus,
    store::{StoreError, StoreResult, execution_state::is_terminal},
};

/// Largest piece of log read and sent at once.
pub const PIECE_BYTES: usize = 64 * 1024;
/// Most log bytes all of a server's followers hold between the file and
/// their clients.
pub const FOLLOWERS_BUDGET_BYTES: usize = 64 * 1024 * 1024;
/// The budget's unit: a permit per KiB.
const BUDGET_UNIT: usize = 1024;

/// Bytes of a log from `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPiece {
    /// Offset of the first byte in the log.
    pub offset: u64,
    /// The bytes, as stored.
    pub data: Vec<u8>,
}

/// The budget all followers of one server share.
#[derive(Clone)]
pub struct FollowersBudget(Arc<Semaphore>);

impl Default for FollowersBudget {
    fn default() -> Self {
        Self(Arc::new(Semaphore::new(
            FOLLOWERS_BUDGET_BYTES / BUDGET_UNIT,
        )))
    }
}

/// A piece on its way to the client, holding its share of the budget until
/// the client's stream takes it.
struct InFlight {
    piece: StoreResult<LogPiece>,
    _budget: Option<OwnedSemaphorePermit>,
}

/// Where a follower stops sending.
enum Sent {
    /// Everything up to the target was sent.
    Done,
    /// The client is gone, or reading failed (the error was sent).
    Stop,
}

impl Engine {
    /// The log of execution `id` from `offset`: what is stored, and with
    /// `follow` every byte stored after, until the run ended and all of it
    /// was sent. NOT_FOUND for an unknown execution.
    pub async fn follow_log(
        &self,
        id: Uuid,
        offset: u64,
        follow: bool,
    ) -> StoreResult<impl Stream<Item = StoreResult<LogPiece>> + Send + 'static> {
        // Follow the status first, then read it, so no change slips between.
        let mut status = self
            .store
            .execution_hub()
            .follow(id, ExecutionStatus::Queued);
        let execution = self.store.executions().get(id).await?;
        let mut current = execution.status;
        let (tx, rx) = mpsc::channel::<InFlight>(1);
        let engine = self.clone();
        let mut offset = offset;
        if !follow || is_terminal(current) {
            // Nothing more will be written: send the file as it is.
            tokio::spawn(async move {
                engine.send_stored(id, &mut offset, u64::MAX, &tx).await;
            });
        } else {
            let mut sizes = self
                .logs
                .follow(id)
                .await
                .map_err(|e| StoreError::Internal(format!("opening the log: {e}")))?;
            tokio::spawn(async move {
                let _follower = crate::metrics::Follower::start();
                loop {
                    let stored = sizes.borrow_and_update().bytes;
                    if let Sent::Stop = engine.send_stored(id, &mut offset, stored, &tx).await {
                        return;
                    }
                    if is_terminal(current) {
                        // Nothing more will be written: send the rest as
                        // stored, whatever size news is still on its way
                        // (another server's may trail its status).
                        if let Sent::Stop = engine.send_stored(id, &mut offset, u64::MAX, &tx).await
                        {
                            return;
                        }
                        // Release the file a re-follow may have reopened;
                        // closing is idempotent and other followers reopen on need.
                        engine.logs.close(id);
                        return;
                    }
                    tokio::select! {
                        changed = sizes.changed() => if changed.is_err() {
                            // The attempt ended and its log was closed:
                            // re-open (a retry may write more) and look again.
                            match engine.logs.follow(id).await {
                                Ok(reopened) => sizes = reopened,
                                Err(err) => {
                                    let error = StoreError::Internal(format!("reopening the log: {err}"));
                                    let _ = tx.send(InFlight { piece: Err(error), _budget: None }).await;
                                    return;
                                }
                            }
                        },
                        changed = status.changed() => {
                            if changed.is_err() { return }
                            current = *status.borrow_and_update();
                        }
                        _ = tx.closed() => return,
                    }
                }
            });
        }
        Ok(ReceiverStream::new(rx).map(|in_flight| in_flight.piece))
    }

    /// Sends stored bytes from `offset` up to `until` (or the end of the
    /// file), advancing `offset`, one piece at a time and only when the
    /// client took the last one.
    async fn send_stored(
        &self,
        id: Uuid,
        offset: &mut u64,
        until: u64,
        tx: &mpsc::Sender<InFlight>,
    ) -> Sent {
        while *offset < until {
            // Room for one more piece first, then the budget, then the read.
            let Ok(slot) = tx.reserve().await else {
                return Sent::Stop;
            };
            let want = (until - *offset).min(PIECE_BYTES as u64) as usize;
            let units = want.div_ceil(BUDGET_UNIT) as u32;
            let Ok(budget) = self.followers.0.clone().acquire_many_owned(units).await else {
                return Sent::Stop;
            };
            match self.logs.read(id, *offset, want).await {
                Ok(data) if data.is_empty() => return Sent::Done,
                Ok(data) => {
                    let piece = LogPiece {
                        offset: *offset,
                        data,
                    };
                    *offset += piece.data.len() as u64;
                    slot.send(InFlight {
                        piece: Ok(piece),
                        _budget: Some(budget),
                    });
                }
                Err(err) => {
                    slot.send(InFlight {
                        piece: Err(StoreError::Internal(format!("reading the log: {err}"))),
                        _budget: None,
                    });
                    return Sent::Stop;
                }
            }
        }
        Sent::Done
    }
}
