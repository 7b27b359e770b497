//! One worker's stream, from its registration on: reconciling what it still
//! runs, then applying its reports (starts, output, heartbeats, finishes)
//! and answering them. `grpc::worker_service` decodes the wire into
//! [`FromWorker`] and feeds [`Session::handle`]; replies and pushed work go
//! through the worker's bounded outgoing queue.
//!
//! Reports are pipelined: [`Session::handle`] hands a report's write to the
//! store's group-commit writer and goes on to the next message; the answer
//! (an acknowledgement, a refusal) is taken by the stream's answerer task,
//! in the order the reports came. Waiting for each commit before reading
//! the next report capped a worker at one report per commit, so reports
//! from all streams never shared a batch.

use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::Utc;
use futures_util::future::BoxFuture;
use tokio::sync::{Notify, mpsc};
use uuid::Uuid;

use super::{
    Engine,
    hub::{IdInUse, WorkerInfo, WorkerSender},
    messages::{Attempt, FromWorker, Registration, Resumed, TRUNCATION_MARKER_ROOM, ToWorker},
};
use crate::store::{StoreError, batch::Answer, runs::RunOutcome, workers::Connected};

/// How often a run's log counters are written to its row while output flows.
const LOG_PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// Reports of one stream whose answers may be outstanding at once. Past it
/// the stream stops reading (and TCP pushes back on the worker).
const REPORTS_IN_FLIGHT: usize = 256;

/// One worker's stream.
pub struct Session {
    replies: Replies,
    session: u64,
    /// When each run's log counters were last written to its row.
    progress_written: HashMap<Uuid, tokio::time::Instant>,
    /// This stream as recorded for the other servers (PostgreSQL).
    connection: Option<Connected>,
    /// Told when a newer stream of this worker takes this one's place.
    superseded: Arc<Notify>,
    /// Answers of reports in flight, taken in order by the answerer task.
    answers: mpsc::Sender<BoxFuture<'static, ()>>,
    /// Told when the database failed under a report: the stream ends.
    broken: Arc<Notify>,
}

/// What answering a report needs, shared by the stream and its answerer.
#[derive(Clone)]
struct Replies {
    engine: Engine,
    worker_id: String,
    tx: WorkerSender,
}

fn id_in_use(worker_id: &str, held: IdInUse) -> StoreError {
    StoreError::AlreadyExists(format!(
        "worker id {} is in use by a connected worker on host {}: give each worker its own \
         id (amon-worker --name), or stop the other one",
        crate::store::validate::quoted(worker_id),
        crate::store::validate::quoted(&held.hostname),
    ))
}

impl Engine {
    /// Registers a worker: reconciles what it still runs, answers
    /// `Registered`, and tells it to stop runs that are no longer its own.
    pub async fn open_session(
        &self,
        registration: Registration,
        tx: WorkerSender,
    ) -> Result<Session, StoreError> {
        let Registration {
            worker_id,
            hostname,
            version,
            slots,
            agent_slugs,
            labels,
            running,
            instance_id,
            worktree_task_ids,
        } = registration;
        // Before anything else: the runs of another live worker with this id
        // must not be reconciled against this stream's report.
        // A connected worker's id stays its own while it is alive; a second
        // worker registering with it meanwhile is refused, and after that
        // the silent one gives way.
        let alive_within = super::alive_within(self.settings().heartbeat_interval);
        self.workers
            .admit(&worker_id, &instance_id, alive_within)
            .map_err(|held| id_in_use(&worker_id, held))?;
        let verdict = self.store.runs().reconcile(&worker_id, &running).await?;
        // For the other servers' ListWorkers (PostgreSQL).
        let record = crate::store::workers::Registered {
            worker_id: worker_id.clone(),
            hostname: hostname.clone(),
            version: version.clone(),
            slots,
            labels: labels.clone(),
            agent_slugs: agent_slugs.clone(),
            draining: false,
        };
        let connection = self.store.workers().connected_here(&record).await?;
        let mut resumed = Vec::with_capacity(verdict.keep.len());
        let mut output_limits = Vec::with_capacity(verdict.keep.len());
        for (execution, token) in &verdict.keep {
            let stored = self
                .logs
                .size(execution.id)
                .await
                .map_err(|e| StoreError::Internal(format!("opening a log: {e}")))?;
            resumed.push(Resumed {
                execution_id: execution.id,
                attempt_token: token.clone(),
                acknowledged_offset: stored.bytes,
            });
            // Where the attempt began is not stored: allow one more cap
            // from what is there.
            let cap = self
                .store
                .capabilities()
                .get(execution.capability_id)
                .await
                .map(|c| u64::try_from(c.max_output_bytes).unwrap_or(0))
                .unwrap_or(0);
            output_limits.push((
                execution.id,
                token.clone(),
                stored.bytes + cap + TRUNCATION_MARKER_ROOM,
            ));
        }
        // Its worktrees of deleted tasks: it removes them (keeping
        // branches and uncommitted work).
        let gone_worktree_task_ids = self
            .store
            .worktrees()
            .gone_tasks(&worktree_task_ids)
            .await?;
        let registered = ToWorker::Registered {
            worker_id: worker_id.clone(),
            settings: self.settings(),
            resumed,
            gone_worktree_task_ids,
        };
        tx.send(Ok(registered)).await.map_err(|_| {
            StoreError::FailedPrecondition("the worker left during registration".into())
        })?;

        let info = WorkerInfo {
            worker_id: worker_id.clone(),
            hostname,
            version,
            slots,
            agent_slugs,
            labels,
            draining: false,
            running: verdict.keep.iter().map(|(e, _)| e.id).collect(),
            last_seen_at: Utc::now(),
            instance_id,
        };
        let admitted = self
            .workers
            .connect(info, tx.clone(), alive_within)
            .map_err(|held| id_in_use(&worker_id, held))?;
        let session = admitted.session;
        for (execution_id, token, limit) in output_limits {
            self.workers
                .keep_run(&worker_id, session, execution_id, &token, limit);
        }
        for (execution_id, token) in verdict.cancel {
            self.stop_run(
                &worker_id,
                execution_id,
                token,
                "cancelled while the worker was away",
            );
        }
        for (execution_id, token) in verdict.disown {
            self.disown_run(
                &worker_id,
                execution_id,
                token,
                "no longer this worker's run",
            );
        }
        for lost in verdict.lost {
            tracing::warn!(execution_id = %lost.execution.id, ?worker_id, status = ?lost.execution.status,
                           "the worker registered without this run: requeued at once");
            self.logs.close(lost.execution.id);
        }
        tracing::info!(?worker_id, session, "worker registered");
        let (answers, mut pending) = mpsc::channel::<BoxFuture<'static, ()>>(REPORTS_IN_FLIGHT);
        tokio::spawn(async move {
            while let Some(answer) = pending.recv().await {
                answer.await;
            }
        });
        Ok(Session {
            replies: Replies {
                engine: self.clone(),
                worker_id,
                tx,
            },
            session,
            progress_written: HashMap::new(),
            connection,
            superseded: admitted.superseded,
            answers,
            broken: Arc::new(Notify::new()),
        })
    }
}

impl Session {
    /// The worker's id.
    pub fn worker_id(&self) -> &str {
        &self.replies.worker_id
    }

    /// Completes when a newer stream of this worker (a reconnect of the same
    /// process, or a new process after this one went silent) took this
    /// stream's place; the stream should then end.
    pub async fn superseded(&self) {
        self.superseded.notified().await;
    }

    /// Completes when the database failed under one of this stream's
    /// reports (the error went down the stream): the stream should end, and
    /// the worker resends what was not acknowledged on its next one.
    pub async fn broken(&self) {
        self.broken.notified().await;
    }

    /// Ends a stream that was superseded, telling the worker why.
    pub async fn end_superseded(self) {
        let _ = self
            .replies
            .tx
            .send(Err(StoreError::FailedPrecondition(format!(
                "a newer connection of worker {} took this stream's place",
                crate::store::validate::quoted(self.worker_id())
            ))))
            .await;
        tracing::info!(worker_id = ?self.worker_id(), "stream superseded by a newer one");
        self.close();
    }

    /// Takes the worker off the registry (if this stream is still its current one).
    pub fn close(self) {
        let Replies {
            engine, worker_id, ..
        } = &self.replies;
        engine.workers.disconnect(worker_id, self.session);
        // Scans asked on this stream cannot be answered any more.
        engine.discoveries.worker_gone(worker_id);
        engine.worktree_calls.worker_gone(worker_id);
        // So can its terminals.
        engine.terminals.worker_gone(worker_id);
        if let Some(connection) = self.connection {
            let (store, worker_id) = (engine.store.clone(), worker_id.clone());
            tokio::spawn(async move {
                if let Err(err) = store
                    .workers()
                    .disconnected_here(&worker_id, connection)
                    .await
                {
                    tracing::warn!(?worker_id, error = %err, "recording a disconnection failed");
                }
            });
        }
        tracing::info!(?worker_id, "worker disconnected");
    }

    /// Applies one message; false when the stream must end. A refused
    /// report is logged and the stream goes on. Writes are handed to the
    /// store's writer; their answers are sent in order once committed.
    pub async fn handle(&mut self, message: FromWorker) -> bool {
        match self.apply(message).await {
            Ok(()) => true,
            Err(err @ StoreError::Database(_)) => {
                self.replies.database_failed(err, &self.broken).await;
                false
            }
            Err(other) => {
                self.refused(&other);
                true
            }
        }
    }

    /// Logs a report that was refused (stale, malformed, out of order).
    pub fn refused(&self, err: &StoreError) {
        self.replies.refused(err);
    }

    /// Queues the answer of a report whose write is in flight. Its outcome:
    /// a database failure ends the stream, a refusal is logged.
    async fn answer_later(
        &self,
        answer: impl std::future::Future<Output = Result<(), StoreError>> + Send + 'static,
    ) -> Result<(), StoreError> {
        let replies = self.replies.clone();
        let broken = self.broken.clone();
        let answer = Box::pin(async move {
            match answer.await {
                Ok(()) => {}
                Err(err @ StoreError::Database(_)) => replies.database_failed(err, &broken).await,
                Err(other) => replies.refused(&other),
            }
        });
        self.answers
            .send(answer)
            .await
            .map_err(|_| StoreError::Internal("the stream's answerer stopped".into()))
    }

    async fn apply(&mut self, message: FromWorker) -> Result<(), StoreError> {
        let worker_id = self.replies.worker_id.clone();
        match message {
            FromWorker::Register => {
                Err(StoreError::invalid("register", "sent twice on one stream"))
            }
            FromWorker::SlotGrant { count } => {
                self.replies
                    .engine
                    .workers
                    .grant(&worker_id, self.session, count);
                Ok(())
            }
            FromWorker::Started {
                attempt,
                pid,
                tmux_session_name,
            } => {
                self.run_report(attempt, |runs, worker_id, id, token| {
                    runs.started(worker_id, id, token, pid, tmux_session_name)
                })
                .await
            }
            FromWorker::LogChunk {
                attempt,
                offset,
                data,
            } => {
                if let Err(err) = self.verify(&attempt).await {
                    return self.replies.refuse_if_stale(&attempt, Err(err));
                }
                let id = attempt.execution_id;
                let engine = &self.replies.engine;
                // The worker cuts a run's output at its cap; a worker that
                // does not is cut here, and what it sends past the cap is
                // acknowledged (so it stops resending) but not stored.
                let limit = engine
                    .workers
                    .output_limit(&worker_id, self.session, id)
                    .unwrap_or(u64::MAX);
                let end = offset.saturating_add(data.len() as u64);
                if offset >= limit {
                    self.replies.ack(id, &attempt.token, end).await;
                    return Err(StoreError::invalid(
                        "log_chunk.offset",
                        format!("output past the run's cap (its log ends at {limit} bytes)"),
                    ));
                }
                let kept = &data[..data.len().min((limit - offset) as usize)];
                match engine.logs.append(id, offset, kept).await {
                    Ok(appended) => {
                        // What was past the cap counts as received.
                        let acked = if kept.len() < data.len() {
                            end
                        } else {
                            appended.size.bytes
                        };
                        let size = appended.size;
                        if appended.is_stored() {
                            // In the log file already: acknowledged at once.
                            self.replies.ack(id, &attempt.token, acked).await;
                        } else {
                            // Queued to the database's log writer: acknowledged
                            // once its batch commits, in order with the other
                            // answers, while this stream reads on.
                            let replies = self.replies.clone();
                            let token = attempt.token.clone();
                            self.answer_later(async move {
                                appended.stored().await.map_err(log_failure)?;
                                replies.ack(id, &token, acked).await;
                                Ok(())
                            })
                            .await?;
                        }
                        // Counted on the row now, in order with the run's
                        // other writes (written once the batch commits, it
                        // could land after the run's finish and undo it).
                        self.write_progress_if_due(id, size.bytes, size.lines).await
                    }
                    Err(crate::logs::AppendError::Gap { stored, .. }) => {
                        // Tell the worker where the log really ends; it resends from there.
                        self.replies.ack(id, &attempt.token, stored).await;
                        Err(StoreError::invalid(
                            "log_chunk.offset",
                            format!("gap after {stored} bytes"),
                        ))
                    }
                    Err(err) => Err(log_failure(err)),
                }
            }
            FromWorker::Heartbeat { running, metadata } => {
                let engine = &self.replies.engine;
                engine.workers.seen(
                    &worker_id,
                    self.session,
                    super::alive_within(engine.settings().heartbeat_interval),
                );
                let written = self
                    .replies
                    .engine
                    .store
                    .runs()
                    .heartbeat(&worker_id, running, metadata);
                let tx = self.replies.tx.clone();
                self.answer_later(async move {
                    written.await?;
                    // Proof of contact: a worker that hears nothing for the
                    // stale window stops its runs (they are someone else's).
                    let _ = tx.send(Ok(ToWorker::HeartbeatAck)).await;
                    Ok(())
                })
                .await
            }
            FromWorker::Finished(finished) => self.finished(finished).await,
            FromWorker::SessionDetected {
                attempt,
                session_ref,
            } => {
                self.run_report(attempt, |runs, worker_id, id, token| {
                    runs.session_detected(worker_id, id, token, session_ref)
                })
                .await
            }
            FromWorker::RunStatus { attempt, status } => {
                self.run_report(attempt, |runs, worker_id, id, token| {
                    runs.run_status(worker_id, id, token, status)
                })
                .await
            }
            FromWorker::Drain { reason } => {
                tracing::info!(?worker_id, ?reason, "worker is draining");
                self.replies.engine.workers.drain(&worker_id, self.session);
                if let Some(connection) = self.connection {
                    let workers = self.replies.engine.store.workers();
                    if let Err(err) = workers.draining_here(&worker_id, connection).await {
                        // Only what the other servers list: the drain holds.
                        tracing::warn!(?worker_id, error = %err, "recording a drain failed");
                    }
                }
                Ok(())
            }
            FromWorker::DiscoverProgress {
                request_id,
                progress,
            } => {
                self.replies.engine.discoveries.answer(
                    &worker_id,
                    request_id,
                    super::discover::DiscoveryEvent::Progress(progress),
                );
                Ok(())
            }
            FromWorker::DiscoverResult { request_id, result } => {
                self.replies.engine.discoveries.answer(
                    &worker_id,
                    request_id,
                    super::discover::DiscoveryEvent::Done(result),
                );
                Ok(())
            }
            FromWorker::WorktreeResult { request_id, result } => {
                self.replies
                    .engine
                    .worktree_calls
                    .answer(&worker_id, request_id, result);
                Ok(())
            }
            // Terminal traffic is handed on without waiting: a viewer never
            // holds up this stream (see `dispatch::terminal`).
            FromWorker::TerminalOpened { attach_id } => {
                self.replies.engine.terminals.opened(&worker_id, attach_id);
                Ok(())
            }
            FromWorker::TerminalOutput { attach_id, data } => {
                let engine = &self.replies.engine;
                engine.terminals.output(engine, &worker_id, attach_id, data);
                Ok(())
            }
            FromWorker::TerminalClosed { attach_id, end } => {
                self.replies
                    .engine
                    .terminals
                    .closed(&worker_id, attach_id, end);
                Ok(())
            }
        }
    }

    /// A report that changes its run's row: checked against this stream,
    /// handed to the writer, and answered (a stale one refused and its run
    /// disowned) once committed.
    async fn run_report(
        &mut self,
        attempt: Attempt,
        write: impl FnOnce(crate::store::Runs<'_>, &str, Uuid, &str) -> Answer<()>,
    ) -> Result<(), StoreError> {
        if let Err(err) = self.verify(&attempt).await {
            return self.replies.refuse_if_stale(&attempt, Err(err));
        }
        let store = self.replies.engine.store.clone();
        let written = write(
            store.runs(),
            &self.replies.worker_id,
            attempt.execution_id,
            &attempt.token,
        );
        let replies = self.replies.clone();
        self.answer_later(async move {
            let result = written.await;
            replies.refuse_if_stale(&attempt, result)
        })
        .await
    }

    async fn finished(&mut self, finished: super::messages::Finished) -> Result<(), StoreError> {
        let super::messages::Finished {
            attempt,
            status,
            exit_code,
            error,
            log_byte_size,
            worktree,
        } = finished;
        // Check before touching anything: a refused report changes nothing
        // (a foreign finish used to close, and so cut, another run's log).
        if let Err(err) = self.verify(&attempt).await {
            // Answered in order with the reports still in flight.
            let replies = self.replies.clone();
            return self
                .answer_later(async move {
                    replies.finished_ack(&attempt, Some(err.to_string())).await;
                    replies.refuse_if_stale(&attempt, Err(err))
                })
                .await;
        }
        let id = attempt.execution_id;
        let engine = self.replies.engine.clone();
        let stored = engine
            .logs
            .size(id)
            .await
            .map_err(|e| StoreError::FailedPrecondition(e.to_string()))?;
        let mut error = error;
        if (stored.bytes as i64) < log_byte_size {
            let gap = format!(
                "log incomplete: {} of {log_byte_size} bytes stored",
                stored.bytes
            );
            tracing::warn!(execution_id = %id, "{gap}");
            error = Some(error.map_or(gap.clone(), |e| format!("{e}; {gap}")));
        }
        let outcome = RunOutcome {
            status,
            exit_code,
            error,
            worktree,
        };
        let written = engine.store.runs().finish(
            &self.replies.worker_id,
            id,
            &attempt.token,
            outcome,
            (stored.bytes, stored.lines),
        );
        self.progress_written.remove(&id);
        let replies = self.replies.clone();
        self.answer_later(async move {
            let result = written.await;
            if let Err(StoreError::Database(err)) = result {
                // Not applied, not answered: the worker resends it on its
                // next stream.
                return Err(StoreError::Database(err));
            }
            // Whatever the verdict, the worker may forget this run now: its
            // bytes are stored and its result applied, or refused for good.
            replies.ack(id, &attempt.token, stored.bytes).await;
            replies
                .engine
                .workers
                .run_ended(&replies.worker_id, id, Some(&attempt.token));
            replies.engine.logs.close(id);
            let refused = result.err().map(|err| {
                tracing::warn!(execution_id = %id, error = %err, "refused a late result");
                err.to_string()
            });
            replies.finished_ack(&attempt, refused).await;
            Ok(())
        })
        .await
    }

    /// Accepts a report only about a run assigned on this very stream (or
    /// kept by it at registration) whose attempt token is the current one.
    async fn verify(&self, attempt: &Attempt) -> Result<(), StoreError> {
        let id = attempt.execution_id;
        let Replies {
            engine, worker_id, ..
        } = &self.replies;
        if !engine.workers.runs(worker_id, self.session, id) {
            return Err(StoreError::FailedPrecondition(format!(
                "execution {id} is not running on this stream of worker {}",
                crate::store::validate::quoted(worker_id)
            )));
        }
        // The attempt the hub holds stands while the run is on record as
        // this stream's: a reap, a finish or a refusal takes it off, and
        // then the database decides.
        if engine
            .workers
            .assigned_with(worker_id, self.session, id, &attempt.token)
        {
            return Ok(());
        }
        engine
            .store
            .runs()
            .current_attempt(worker_id, id, &attempt.token)
            .await?;
        Ok(())
    }

    async fn write_progress_if_due(
        &mut self,
        id: Uuid,
        bytes: u64,
        lines: u64,
    ) -> Result<(), StoreError> {
        let now = tokio::time::Instant::now();
        let due = self
            .progress_written
            .get(&id)
            .is_none_or(|last| now.duration_since(*last) >= LOG_PROGRESS_INTERVAL);
        if !due {
            return Ok(());
        }
        self.progress_written.insert(id, now);
        let written = self
            .replies
            .engine
            .store
            .runs()
            .log_progress(id, bytes, lines);
        self.answer_later(written).await
    }
}

/// A log the database did not store is a database failure: the stream
/// ends, and the worker resends from its last acknowledged byte on the
/// next. A log file that could not be written is refused.
fn log_failure(err: crate::logs::AppendError) -> StoreError {
    match err {
        crate::logs::AppendError::Database(err) => {
            StoreError::Database(sea_orm::DbErr::Custom(format!("storing the log: {err}")))
        }
        other => StoreError::FailedPrecondition(other.to_string()),
    }
}

impl Replies {
    /// Logs a report that was refused (stale, malformed, out of order).
    fn refused(&self, err: &StoreError) {
        // Quoted and cut: a report is the worker's text, and a hostile one
        // could be megabytes or forge log lines.
        let error = crate::store::validate::quoted_up_to(&err.to_string(), 300);
        tracing::warn!(worker_id = ?self.worker_id, %error, "refused a worker report");
    }

    /// The database failed under a report: the error goes down the stream,
    /// which ends.
    async fn database_failed(&self, err: StoreError, broken: &Notify) {
        tracing::error!(worker_id = ?self.worker_id, error = %err, "handling a worker message failed");
        let _ = self.tx.send(Err(err)).await;
        broken.notify_one();
    }

    /// A report about an attempt that is not (or no longer) this worker's:
    /// refuse it and tell the worker to stop that run.
    fn refuse_if_stale(
        &self,
        attempt: &Attempt,
        result: Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        match result {
            Err(StoreError::FailedPrecondition(message))
            | Err(StoreError::NotFound {
                kind: _,
                id: message,
            }) => {
                // No longer this stream's: later reports quoting it meet
                // the database (or the refusal), not the hub's record.
                self.engine.workers.run_ended(
                    &self.worker_id,
                    attempt.execution_id,
                    Some(&attempt.token),
                );
                self.engine.disown_run(
                    &self.worker_id,
                    attempt.execution_id,
                    attempt.token.clone(),
                    "stale attempt",
                );
                Err(StoreError::FailedPrecondition(message))
            }
            other => other,
        }
    }

    /// Answers a finish report: the worker forgets the run only once it has
    /// this answer (a finish lost with a stream is resent on the next one).
    async fn finished_ack(&self, attempt: &Attempt, refused: Option<String>) {
        let _ = self
            .tx
            .send(Ok(ToWorker::FinishedAck {
                execution_id: attempt.execution_id,
                attempt_token: attempt.token.clone(),
                refused,
            }))
            .await;
    }

    async fn ack(&self, execution_id: Uuid, attempt_token: &str, offset: u64) {
        let _ = self
            .tx
            .send(Ok(ToWorker::LogAck {
                execution_id,
                attempt_token: attempt_token.to_owned(),
                offset,
            }))
            .await;
    }
}
