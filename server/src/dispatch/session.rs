//! One worker's stream, from its registration on: reconciling what it still
//! runs, then applying its reports (starts, output, heartbeats, finishes)
//! and answering them. `grpc::worker_service` decodes the wire into
//! [`FromWorker`] and feeds [`Session::handle`]; replies and pushed work go
//! through the worker's bounded outgoing queue.

use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::Utc;
use tokio::sync::Notify;
use uuid::Uuid;

use super::{
    Engine,
    hub::{IdInUse, WorkerInfo, WorkerSender},
    messages::{Attempt, FromWorker, Registration, Resumed, TRUNCATION_MARKER_ROOM, ToWorker},
};
use crate::store::{StoreError, runs::RunOutcome};

/// How often a run's log counters are written to its row while output flows.
const LOG_PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// One worker's stream.
pub struct Session {
    engine: Engine,
    worker_id: String,
    session: u64,
    tx: WorkerSender,
    /// Attempts verified on this stream, so chunks skip the database check.
    verified: HashMap<Uuid, String>,
    /// When each run's log counters were last written to its row.
    progress_written: HashMap<Uuid, tokio::time::Instant>,
    /// Told when a newer stream of this worker takes this one's place.
    superseded: Arc<Notify>,
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
        let mut resumed = Vec::with_capacity(verdict.keep.len());
        let mut verified = HashMap::new();
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
            verified.insert(execution.id, token.clone());
            // Where the attempt began is not stored: allow one more cap
            // from what is there.
            let cap = self
                .store
                .capabilities()
                .get(execution.capability_id)
                .await
                .map(|c| u64::try_from(c.max_output_bytes).unwrap_or(0))
                .unwrap_or(0);
            output_limits.push((execution.id, stored.bytes + cap + TRUNCATION_MARKER_ROOM));
        }
        let registered = ToWorker::Registered {
            worker_id: worker_id.clone(),
            settings: self.settings(),
            resumed,
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
        for (execution_id, limit) in output_limits {
            self.workers
                .set_output_limit(&worker_id, session, execution_id, limit);
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
        Ok(Session {
            engine: self.clone(),
            worker_id,
            session,
            tx,
            verified,
            progress_written: HashMap::new(),
            superseded: admitted.superseded,
        })
    }
}

impl Session {
    /// The worker's id.
    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// Completes when a newer stream of this worker (a reconnect of the same
    /// process, or a new process after this one went silent) took this
    /// stream's place; the stream should then end.
    pub async fn superseded(&self) {
        self.superseded.notified().await;
    }

    /// Ends a stream that was superseded, telling the worker why.
    pub async fn end_superseded(self) {
        let _ = self
            .tx
            .send(Err(StoreError::FailedPrecondition(format!(
                "a newer connection of worker {} took this stream's place",
                crate::store::validate::quoted(&self.worker_id)
            ))))
            .await;
        tracing::info!(worker_id = ?self.worker_id, "stream superseded by a newer one");
        self.close();
    }

    /// Takes the worker off the registry (if this stream is still its current one).
    pub fn close(self) {
        self.engine
            .workers
            .disconnect(&self.worker_id, self.session);
        tracing::info!(worker_id = ?self.worker_id, "worker disconnected");
    }

    /// Applies one message; false when the stream must end. A database
    /// failure ends it (the error goes down the stream first); a refused
    /// report is logged and the stream goes on.
    pub async fn handle(&mut self, message: FromWorker) -> bool {
        match self.apply(message).await {
            Ok(()) => true,
            Err(err @ StoreError::Database(_)) => {
                tracing::error!(worker_id = ?self.worker_id, error = %err, "handling a worker message failed");
                let _ = self.tx.send(Err(err)).await;
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
        // Quoted and cut: a report is the worker's text, and a hostile one
        // could be megabytes or forge log lines.
        let error = crate::store::validate::quoted_up_to(&err.to_string(), 300);
        tracing::warn!(worker_id = ?self.worker_id, %error, "refused a worker report");
    }

    async fn apply(&mut self, message: FromWorker) -> Result<(), StoreError> {
        let store = self.engine.store.clone();
        let runs = store.runs();
        match message {
            FromWorker::Register => {
                Err(StoreError::invalid("register", "sent twice on one stream"))
            }
            FromWorker::SlotGrant { count } => {
                self.engine
                    .workers
                    .grant(&self.worker_id, self.session, count);
                Ok(())
            }
            FromWorker::Started {
                attempt,
                pid,
                tmux_session_name,
            } => {
                if let Err(err) = self.verify(&attempt).await {
                    return self.refuse_if_stale(&attempt, Err(err));
                }
                let result = runs
                    .started(
                        &self.worker_id,
                        attempt.execution_id,
                        &attempt.token,
                        pid,
                        tmux_session_name,
                    )
                    .await;
                self.refuse_if_stale(&attempt, result)
            }
            FromWorker::LogChunk {
                attempt,
                offset,
                data,
            } => {
                if let Err(err) = self.verify(&attempt).await {
                    return self.refuse_if_stale(&attempt, Err(err));
                }
                let id = attempt.execution_id;
                // The worker cuts a run's output at its cap; a worker that
                // does not is cut here, and what it sends past the cap is
                // acknowledged (so it stops resending) but not stored.
                let limit = self
                    .engine
                    .workers
                    .output_limit(&self.worker_id, self.session, id)
                    .unwrap_or(u64::MAX);
                let end = offset.saturating_add(data.len() as u64);
                if offset >= limit {
                    self.ack(id, &attempt.token, end).await;
                    return Err(StoreError::invalid(
                        "log_chunk.offset",
                        format!("output past the run's cap (its log ends at {limit} bytes)"),
                    ));
                }
                let kept = &data[..data.len().min((limit - offset) as usize)];
                match self.engine.logs.append(id, offset, kept).await {
                    Ok(size) => {
                        let acked = if kept.len() < data.len() {
                            end
                        } else {
                            size.bytes
                        };
                        self.ack(id, &attempt.token, acked).await;
                        self.write_progress_if_due(id, size.bytes, size.lines)
                            .await?;
                        Ok(())
                    }
                    Err(crate::logs::AppendError::Gap { stored, .. }) => {
                        // Tell the worker where the log really ends; it resends from there.
                        self.ack(id, &attempt.token, stored).await;
                        Err(StoreError::invalid(
                            "log_chunk.offset",
                            format!("gap after {stored} bytes"),
                        ))
                    }
                    Err(err) => Err(StoreError::FailedPrecondition(err.to_string())),
                }
            }
            FromWorker::Heartbeat { running, metadata } => {
                self.engine.workers.seen(&self.worker_id, self.session);
                runs.heartbeat(&self.worker_id, &running, metadata).await?;
                // Proof of contact: a worker that hears nothing for the
                // stale window stops its runs (they are someone else's).
                let _ = self.tx.send(Ok(ToWorker::HeartbeatAck)).await;
                Ok(())
            }
            FromWorker::Finished(finished) => self.finished(finished).await,
            FromWorker::SessionDetected {
                attempt,
                session_ref,
            } => {
                if let Err(err) = self.verify(&attempt).await {
                    return self.refuse_if_stale(&attempt, Err(err));
                }
                let result = runs
                    .session_detected(
                        &self.worker_id,
                        attempt.execution_id,
                        &attempt.token,
                        session_ref,
                    )
                    .await;
                self.refuse_if_stale(&attempt, result)
            }
            FromWorker::Drain { reason } => {
                tracing::info!(worker_id = ?self.worker_id, ?reason, "worker is draining");
                self.engine.workers.drain(&self.worker_id, self.session);
                Ok(())
            }
        }
    }

    async fn finished(&mut self, finished: super::messages::Finished) -> Result<(), StoreError> {
        let super::messages::Finished {
            attempt,
            status,
            exit_code,
            error,
            log_byte_size,
        } = finished;
        // Check before touching anything: a refused report changes nothing
        // (a foreign finish used to close, and so cut, another run's log).
        if let Err(err) = self.verify(&attempt).await {
            self.finished_ack(&attempt, Some(err.to_string())).await;
            return self.refuse_if_stale(&attempt, Err(err));
        }
        let id = attempt.execution_id;
        let stored = self
            .engine
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
        let runs = self.engine.store.runs();
        runs.log_progress(id, stored.bytes, stored.lines).await?;
        let outcome = RunOutcome {
            status,
            exit_code,
            error,
        };
        let result = runs
            .finish(&self.worker_id, id, &attempt.token, outcome)
            .await;
        if let Err(StoreError::Database(err)) = result {
            // Not applied, not answered: the worker resends it on its next
            // stream.
            return Err(StoreError::Database(err));
        }
        // Whatever the verdict, the worker may forget this run now: its
        // bytes are stored and its result applied, or refused for good.
        self.ack(id, &attempt.token, stored.bytes).await;
        self.verified.remove(&id);
        self.progress_written.remove(&id);
        self.engine.workers.run_ended(&self.worker_id, id);
        self.engine.logs.close(id);
        let refused = result.err().map(|err| {
            tracing::warn!(execution_id = %id, error = %err, "refused a late result");
            err.to_string()
        });
        self.finished_ack(&attempt, refused).await;
        Ok(())
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

    /// Accepts a report only about a run assigned on this very stream (or
    /// kept by it at registration) whose attempt token is the current one.
    async fn verify(&mut self, attempt: &Attempt) -> Result<(), StoreError> {
        let id = attempt.execution_id;
        if !self.engine.workers.runs(&self.worker_id, self.session, id) {
            self.verified.remove(&id);
            return Err(StoreError::FailedPrecondition(format!(
                "execution {id} is not running on this stream of worker {}",
                crate::store::validate::quoted(&self.worker_id)
            )));
        }
        // The cache only stands while the run is still on record as ours: a
        // reap or a cancel elsewhere takes it off, and the database decides.
        if self.verified.get(&id).is_some_and(|t| *t == attempt.token) {
            return Ok(());
        }
        self.engine
            .store
            .runs()
            .current_attempt(&self.worker_id, id, &attempt.token)
            .await?;
        self.verified.insert(id, attempt.token.clone());
        Ok(())
    }

    /// A report about an attempt that is not (or no longer) this worker's:
    /// refuse it and tell the worker to stop that run.
    fn refuse_if_stale(
        &mut self,
        attempt: &Attempt,
        result: Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        match result {
            Err(StoreError::FailedPrecondition(message))
            | Err(StoreError::NotFound {
                kind: _,
                id: message,
            }) => {
                self.verified.remove(&attempt.execution_id);
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
        if due {
            self.progress_written.insert(id, now);
            self.engine
                .store
                .runs()
                .log_progress(id, bytes, lines)
                .await?;
        }
        Ok(())
    }
}
