//! Group commit: the hot writes — every worker stream's reports, the
//! dispatcher's claims, queued runs — go through one writer task that applies
//! everything pending in one transaction per batch.
//!
//! A run used to cost a chain of separate write transactions (claim, start,
//! log progress, finish), each paying its `BEGIN` and `COMMIT` (round trips
//! and a WAL flush on PostgreSQL) and, on SQLite, a turn at its single write
//! lock. Batching pays that once for everything that arrived
//! while the previous batch committed, so the cost per write falls as the
//! load rises, and a lone write is not delayed: a batch closes as soon as
//! the queue is empty (or at [`MAX_BATCH`]).
//!
//! A piece of work that is refused (a stale attempt token, a report about a
//! run that is gone) is answered with its error and the others commit. Most
//! pieces check before they write, so a refusal has written nothing and
//! needs no savepoint ([`Store::submit`]); a piece whose write itself may be
//! refused (an insert that meets a foreign key) runs in a savepoint on
//! PostgreSQL, where a failed statement aborts the whole transaction
//! ([`Store::submit_guarded`]; SQLite undoes just the failed statement). A
//! database failure in an unguarded piece fails the whole batch: nothing of
//! it is committed, and every caller gets the error. Savepoints are not
//! free: two statements each, a third of a report's cost. Every answer is sent
//! only after the batch's commit, so a report is acknowledged only once it is
//! durable: a server killed mid-batch loses nothing it acknowledged, and the
//! worker resends what was not.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use futures_util::future::BoxFuture;
use sea_orm::DbErr;
use tokio::sync::{mpsc, oneshot};

use super::{Store, StoreError, StoreResult, WriteTxn};

/// Most pieces of work applied in one transaction. Large enough that a
/// burst from many streams commits together, small enough that a request
/// writing outside the writer (an API call) waits for at most one batch:
/// at a few statements a piece, tens of milliseconds at full load.
pub const MAX_BATCH: usize = 256;

/// One piece of work, applied inside the batch's transaction.
pub(super) type Work<T> =
    Box<dyn for<'t> FnOnce(&'t mut WriteTxn) -> BoxFuture<'t, StoreResult<T>> + Send>;

/// What a piece's caller notes once its batch committed (what it counts
/// for `/metrics`), so a batch rolled back and written again counts once.
pub(super) type OnCommit<T> = Box<dyn FnOnce(&T) + Send>;

/// A piece of work waiting for its batch, with the way to answer it.
trait Job: Send {
    /// Whether it runs in a savepoint (on PostgreSQL).
    fn guarded(&self) -> bool;
    /// Applies the work: `Ok(true)` when it succeeded, `Ok(false)` when it
    /// was refused, `Err` when the database failed under it.
    fn apply<'t>(&'t mut self, txn: &'t mut WriteTxn) -> BoxFuture<'t, Result<bool, ()>>;
    /// Answers the caller once the batch's fate is known.
    fn answer(self: Box<Self>, committed: Result<(), String>);
}

struct Pending<T> {
    guarded: bool,
    work: Option<Work<T>>,
    output: Option<StoreResult<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
    on_commit: Option<OnCommit<T>>,
}

impl<T: Send + 'static> Job for Pending<T> {
    fn guarded(&self) -> bool {
        self.guarded
    }

    fn apply<'t>(&'t mut self, txn: &'t mut WriteTxn) -> BoxFuture<'t, Result<bool, ()>> {
        Box::pin(async move {
            let Some(work) = self.work.take() else {
                return Ok(false);
            };
            let output = work(txn).await;
            let verdict = match &output {
                Ok(_) => Ok(true),
                Err(StoreError::Database(_)) => Err(()),
                Err(_) => Ok(false),
            };
            self.output = Some(output);
            verdict
        })
    }

    fn answer(self: Box<Self>, committed: Result<(), String>) {
        let answer = match (self.output, committed) {
            // Its own failure was rolled back alone: the batch's fate is not its.
            (Some(Err(err)), _) => Err(err),
            (Some(Ok(value)), Ok(())) => {
                if let Some(note) = self.on_commit {
                    note(&value);
                }
                Ok(value)
            }
            (_, Err(why)) => Err(StoreError::Database(DbErr::Custom(why))),
            (None, Ok(())) => Err(StoreError::Internal(
                "a batched write was never applied".into(),
            )),
        };
        // The caller may have gone (a closed stream); the write stands.
        let _ = self.reply.send(answer);
    }
}

/// The way into the writer task.
#[derive(Clone)]
pub(crate) struct Writer {
    jobs: mpsc::UnboundedSender<Box<dyn Job>>,
}

/// The writer's end of the queue, until [`spawn`] takes it.
pub(super) struct Jobs(mpsc::UnboundedReceiver<Box<dyn Job>>);

impl Writer {
    pub(super) fn new() -> (Self, Jobs) {
        // Unbounded: whoever submits is bounded already (a worker stream
        // waits for its answers in a bounded queue, the dispatcher claims
        // one round at a time, callers wait for theirs).
        let (jobs, queue) = mpsc::unbounded_channel();
        (Self { jobs }, Jobs(queue))
    }
}

/// The answer to a piece of work: resolves once its batch committed (or
/// with the error that stopped it). Submitting does not wait, so a caller
/// may queue several pieces in order and collect the answers later.
#[must_use = "the write is applied either way; the answer says whether it was"]
pub struct Answer<T>(AnswerState<T>);

enum AnswerState<T> {
    Ready(Option<StoreResult<T>>),
    Waiting(oneshot::Receiver<StoreResult<T>>),
}

impl<T> Answer<T> {
    /// An answer known without writing (a request refused before it
    /// reached the writer).
    pub fn ready(result: StoreResult<T>) -> Self {
        Self(AnswerState::Ready(Some(result)))
    }
}

// Never pinned in place: the value is only moved out, never borrowed.
impl<T> Unpin for Answer<T> {}

impl<T> Future for Answer<T> {
    type Output = StoreResult<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<StoreResult<T>> {
        match &mut self.get_mut().0 {
            AnswerState::Ready(result) => Poll::Ready(result.take().unwrap_or_else(|| {
                Err(StoreError::Internal("an answer was awaited twice".into()))
            })),
            AnswerState::Waiting(receiver) => Pin::new(receiver).poll(cx).map(|answer| {
                answer.unwrap_or_else(|_| {
                    Err(StoreError::Internal(
                        "the store's writer stopped before answering".into(),
                    ))
                })
            }),
        }
    }
}

impl Store {
    /// Queues `work` for the next batch and returns its answer, which
    /// resolves after the batch holding it committed. The work must check
    /// before it writes: when it answers with a refusal it must have
    /// written nothing, for no savepoint undoes what it did.
    pub(super) fn submit<T, F>(&self, work: F) -> Answer<T>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut WriteTxn) -> BoxFuture<'t, StoreResult<T>> + Send + 'static,
    {
        self.enqueue(false, Box::new(work), None)
    }

    /// Like [`Store::submit`], and `on_commit` is called with `work`'s
    /// output once its batch committed (whether or not the caller still
    /// waits for the answer).
    pub(super) fn submit_then<T, F>(&self, on_commit: OnCommit<T>, work: F) -> Answer<T>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut WriteTxn) -> BoxFuture<'t, StoreResult<T>> + Send + 'static,
    {
        self.enqueue(false, Box::new(work), Some(on_commit))
    }

    /// Like [`Store::submit`], for work whose writes themselves may be
    /// refused (a foreign key): on PostgreSQL it runs in a savepoint, rolled
    /// back alone when it fails.
    pub(super) fn submit_guarded<T, F>(&self, work: F) -> Answer<T>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut WriteTxn) -> BoxFuture<'t, StoreResult<T>> + Send + 'static,
    {
        self.enqueue(true, Box::new(work), None)
    }

    fn enqueue<T: Send + 'static>(
        &self,
        guarded: bool,
        work: Work<T>,
        on_commit: Option<OnCommit<T>>,
    ) -> Answer<T> {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Pending {
            guarded,
            work: Some(work),
            output: None,
            reply,
            on_commit,
        });
        match self.writer.jobs.send(job) {
            Ok(()) => Answer(AnswerState::Waiting(answer)),
            Err(_) => Answer::ready(Err(StoreError::Internal(
                "the store's writer has stopped".into(),
            ))),
        }
    }
}

/// Starts the writer task over `store`; it runs as long as the runtime.
pub(super) fn spawn(store: Store, Jobs(mut queue): Jobs) {
    tokio::spawn(async move {
        let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
        while let Some(first) = queue.recv().await {
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let began = std::time::Instant::now();
            let committed = apply(&store, &mut batch).await;
            crate::metrics::write_batch(batch.len(), began.elapsed(), committed.is_ok());
            for job in batch.drain(..) {
                job.answer(committed.clone());
            }
        }
    });
}

/// Applies a batch in one transaction; guarded jobs in savepoints on
/// PostgreSQL.
async fn apply(store: &Store, batch: &mut [Box<dyn Job>]) -> Result<(), String> {
    let size = batch.len();
    let failed = |err: StoreError| format!("a batch of {size} writes failed: {err}");
    let savepoints = store.is_postgres();
    let mut txn = store.write().await.map_err(failed)?;
    for job in batch.iter_mut() {
        if savepoints && job.guarded() {
            let mut savepoint = txn.savepoint().await.map_err(failed)?;
            if job.apply(&mut savepoint).await == Ok(true) {
                savepoint.release_into(&mut txn).await.map_err(failed)?;
            } else {
                savepoint.roll_back().await.map_err(failed)?;
            }
        } else if job.apply(&mut txn).await.is_err() {
            // Unguarded, the database failed under it: what it wrote may
            // be half done, so none of the batch commits.
            return Err(format!(
                "a batch of {size} writes was rolled back: one failed in the database"
            ));
        }
    }
    txn.commit().await.map_err(failed)
}
