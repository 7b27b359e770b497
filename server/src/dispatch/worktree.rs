//! Requests about tasks' git worktrees relayed to the workers that hold
//! them (`ExecutionService.GetExecutionDiff`, `TaskService.FinishTaskWorktree`),
//! the way discovery scans are (`discover`): the server asks over the
//! worker's `Connect` stream (`ToWorker::Worktree`, with a request id of its
//! own) and the worker's one answer (`WorktreeResult`) is routed back to the
//! caller waiting for that id. The worker stays the only one touching its
//! disk.
//!
//! An answer is taken only from the worker asked; when that worker's
//! stream ends its pending requests end at once, and the caller's own
//! deadline bounds a worker that is connected but never answers.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::oneshot;
use uuid::Uuid;

use super::{
    Engine,
    messages::{ToWorker, WorktreeAction, WorktreeDone},
};
use crate::store::{StoreError, StoreResult, validate::quoted, worktrees::WorktreeRecord};

/// Longest a worktree request may take: git on a big repository, a
/// diff of megabytes. Measured: a diff of a 4 MB change answers in ~0.1 s.
const ANSWER_WITHIN: Duration = Duration::from_secs(60);

/// Worktree requests waiting for their workers' answers, by request id.
#[derive(Clone, Default)]
pub struct WorktreeCalls {
    pending: Arc<Mutex<HashMap<Uuid, Waiting>>>,
}

struct Waiting {
    worker_id: String,
    answer: oneshot::Sender<Result<WorktreeDone, String>>,
}

impl WorktreeCalls {
    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Waiting>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands a worker's answer to the caller waiting for it; ignored when
    /// nobody waits or the request went to another worker.
    pub fn answer(&self, worker_id: &str, request_id: Uuid, result: Result<WorktreeDone, String>) {
        let mut pending = self.pending();
        match pending.get(&request_id) {
            None => {
                tracing::debug!(%request_id, worker_id, "a worktree answer nobody waits for")
            }
            Some(waiting) if waiting.worker_id != worker_id => {
                tracing::warn!(%request_id, worker_id, "a worktree answer from a worker not asked")
            }
            Some(_) => {
                let waiting = pending.remove(&request_id).expect("checked");
                let _ = waiting.answer.send(result);
            }
        }
    }

    /// Ends every request pending on `worker_id`'s stream.
    pub fn worker_gone(&self, worker_id: &str) {
        self.pending().retain(|_, w| w.worker_id != worker_id);
    }

    fn forget(&self, request_id: Uuid) {
        self.pending().remove(&request_id);
    }
}

impl Engine {
    /// Asks worker `worker_id` to do `action` and waits for its answer.
    /// FAILED_PRECONDITION when the worker is not connected here (saying
    /// where it is), leaves before answering, does not answer in time, or
    /// answers that it could not do it (its one-line reason).
    pub async fn ask_worktree(
        &self,
        worker_id: &str,
        action: WorktreeAction,
    ) -> StoreResult<WorktreeDone> {
        let what = match &action {
            WorktreeAction::Diff { .. } => "a diff of the worktree",
            WorktreeAction::Finish { .. } => "finishing the worktree",
        };
        // The worker is on record (it ran the task): never seen by its
        // heartbeats only means it left before its first one.
        self.reachable(worker_id, what)
            .await
            .map_err(|err| match err {
                StoreError::NotFound { kind: "worker", .. } => {
                    StoreError::FailedPrecondition(format!(
                        "worker {} is not connected to this server: {what} needs it connected",
                        quoted(worker_id)
                    ))
                }
                err => err,
            })?;
        let request_id = Uuid::new_v4();
        let (tx, rx) = oneshot::channel();
        self.worktree_calls.pending().insert(
            request_id,
            Waiting {
                worker_id: worker_id.to_owned(),
                answer: tx,
            },
        );
        let calls = self.worktree_calls.clone();
        let _forget = scopeguard(move || calls.forget(request_id));
        if !self
            .workers
            .send(worker_id, ToWorker::Worktree { request_id, action })
        {
            return Err(StoreError::FailedPrecondition(format!(
                "worker {} left, or its stream is full: try again",
                quoted(worker_id)
            )));
        }
        match tokio::time::timeout(ANSWER_WITHIN, rx).await {
            Ok(Ok(Ok(done))) => Ok(done),
            Ok(Ok(Err(reason))) => Err(StoreError::FailedPrecondition(format!(
                "worker {}: {reason}",
                quoted(worker_id)
            ))),
            Ok(Err(_)) => Err(StoreError::FailedPrecondition(format!(
                "worker {} left before answering: try again when it is back",
                quoted(worker_id)
            ))),
            Err(_) => Err(StoreError::FailedPrecondition(format!(
                "worker {} did not answer within {}s",
                quoted(worker_id),
                ANSWER_WITHIN.as_secs()
            ))),
        }
    }
}

/// Most bytes of diff a caller gets: replies stay under the 4 MiB gRPC
/// clients accept by default, with room for the recorded summary.
pub const MAX_DIFF_BYTES: u64 = 4_000_000;

/// What became of a task's worktree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedWorktree {
    /// The worktree was removed (false: it was gone already).
    pub worktree_removed: bool,
    /// The branch was deleted.
    pub branch_removed: bool,
    /// The task's branch.
    pub branch: String,
}

impl Engine {
    /// The diff of what execution `id` changed, from the worker holding its
    /// task's repository, cut at `max_bytes`: (diff, cut, the record).
    /// NOT_FOUND for no such execution; FAILED_PRECONDITION when it recorded
    /// no worktree or its worker cannot be asked.
    pub async fn execution_diff(
        &self,
        id: Uuid,
        max_bytes: u64,
    ) -> StoreResult<(WorktreeDone, WorktreeRecord)> {
        self.store.executions().get(id).await?;
        let record = self
            .store
            .worktrees()
            .of_execution(id)
            .await?
            .ok_or_else(|| {
                StoreError::FailedPrecondition(format!(
                    "execution {id} recorded no worktree: its task runs without worktree \
                 isolation, or the run has not ended"
                ))
            })?;
        let summary = &record.summary;
        let done = self
            .ask_worktree(
                &record.worker_id,
                WorktreeAction::Diff {
                    repository: summary.repository.clone(),
                    base_commit: summary.base_commit.clone(),
                    snapshot_tree: summary.snapshot_tree.clone(),
                    max_bytes: max_bytes.min(MAX_DIFF_BYTES),
                },
            )
            .await?;
        Ok((done, record))
    }

    /// Finishes task `task_id`'s worktree on the worker holding it: removes
    /// it (refused when it has uncommitted changes, unless `force`), and its
    /// branch when `remove_branch`. `None` when no run of the task recorded
    /// a worktree. NOT_FOUND for no such task; FAILED_PRECONDITION while a
    /// run of it is under way, or when the worker refuses or cannot be asked.
    pub async fn finish_task_worktree(
        &self,
        task_id: Uuid,
        remove_branch: bool,
        force: bool,
    ) -> StoreResult<Option<FinishedWorktree>> {
        self.store.tasks().get(task_id).await?;
        let running = self.store.worktrees().runs_under_way(task_id).await?;
        if running > 0 {
            return Err(StoreError::FailedPrecondition(format!(
                "task {task_id} has {running} run(s) under way in its worktree: cancel them \
                 (CancelExecution) and wait for them to end first"
            )));
        }
        let Some(record) = self.store.worktrees().latest_of_task(task_id).await? else {
            return Ok(None);
        };
        let branch = record.summary.branch.clone();
        let done = self
            .ask_worktree(
                &record.worker_id,
                WorktreeAction::Finish {
                    task_id,
                    repository: record.summary.repository.clone(),
                    branch: branch.clone(),
                    remove_branch,
                    force,
                },
            )
            .await?;
        Ok(Some(FinishedWorktree {
            worktree_removed: done.worktree_removed,
            branch_removed: done.branch_removed,
            branch,
        }))
    }
}

/// Runs `f` when dropped: a caller that goes away forgets its request.
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}
