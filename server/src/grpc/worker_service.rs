//! `agentmonitor.v1.WorkerService`: the workers' stream and their tuning.
//!
//! One `Connect` stream per worker carries everything. The incoming half is
//! read by a task of its own; replies and pushed work go through the
//! worker's bounded outgoing queue, which the tonic response stream drains.

use std::{collections::HashMap, time::Duration};

use amon_proto::v1::{
    ConnectRequest, ConnectResponse, GetWorkerConfigRequest, GetWorkerConfigResponse,
    ListWorkersRequest, ListWorkersResponse, LogAck, Register, Registered, ResumedExecution,
    RunFinished, SetWorkerConfigRequest, SetWorkerConfigResponse, Worker, connect_request,
    connect_response::Message, worker_service_server::WorkerService,
};
use chrono::Utc;
use sea_orm::EntityTrait;
use tokio::sync::mpsc;
use tokio_stream::{StreamExt, wrappers::ReceiverStream};
use tonic::{Request, Response, Status, Streaming};
use uuid::Uuid;

use super::ResponseStream;
use super::convert::{
    enums::WireEnum,
    execution::{WORKER_CONFIG_FIELDS, settings_patch},
    json_to_struct, mask_paths, optional_struct_to_json, parse_id,
};
use crate::{
    app::AppState,
    dispatch::{Engine, hub::WorkerInfo},
    entity::{enums::ExecutionStatus, worker_heartbeats},
    store::{StoreError, runs, worker_config},
};

/// Messages queued to one worker before the server stops pushing to it.
const OUTGOING_QUEUE: usize = 4096;
/// How often a run's log counters are written to its row while output flows.
const LOG_PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// Handlers of `WorkerService`.
#[derive(Clone)]
pub struct WorkerApi {
    state: AppState,
}

impl WorkerApi {
    /// Handlers over the shared server state.
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl WorkerService for WorkerApi {
    type ConnectStream = ResponseStream<ConnectResponse>;

    async fn connect(
        &self,
        request: Request<Streaming<ConnectRequest>>,
    ) -> Result<Response<Self::ConnectStream>, Status> {
        let mut incoming = request.into_inner();
        let first = incoming
            .next()
            .await
            .ok_or_else(|| Status::invalid_argument("register: the stream closed before it"))??;
        let Some(connect_request::Message::Register(register)) = first.message else {
            return Err(
                StoreError::invalid("register", "the first message must be register").into(),
            );
        };
        let engine = self.state.engine.clone();
        let (tx, rx) = mpsc::channel(OUTGOING_QUEUE);
        let session = open_session(&engine, register, tx).await?;
        tokio::spawn(session.serve(incoming));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn list_workers(
        &self,
        request: Request<ListWorkersRequest>,
    ) -> Result<Response<ListWorkersResponse>, Status> {
        let connected_only = request.into_inner().connected_only;
        let connected = self.state.engine.workers.workers();
        let seen = worker_heartbeats::Entity::find()
            .all(self.state.store.db())
            .await
            .map_err(StoreError::from)?;
        let mut rows: HashMap<String, worker_heartbeats::Model> = seen
            .into_iter()
            .map(|row| (row.worker_id.clone(), row))
            .collect();
        let mut workers: Vec<Worker> = connected
            .into_iter()
            .map(|info| {
                let row = rows.remove(&info.worker_id);
                let mut running: Vec<String> = info.running.iter().map(Uuid::to_string).collect();
                running.sort();
                Worker {
                    current_executions: running.len() as i32,
                    worker_id: info.worker_id,
                    hostname: info.hostname,
                    version: info.version,
                    connected: true,
                    draining: info.draining,
                    slots: info.slots,
                    labels: info.labels.into_iter().collect(),
                    running_execution_ids: running,
                    last_seen_at: Some(super::convert::timestamp(&info.last_seen_at.into())),
                    metadata: row.map(|r| json_to_struct(&r.metadata)),
                }
            })
            .collect();
        workers.sort_by(|a, b| a.worker_id.cmp(&b.worker_id));
        if !connected_only {
            let mut offline: Vec<Worker> = rows
                .into_values()
                .map(|row| Worker {
                    worker_id: row.worker_id,
                    connected: false,
                    last_seen_at: Some(super::convert::timestamp(&row.last_seen_at)),
                    current_executions: row.current_executions,
                    metadata: Some(json_to_struct(&row.metadata)),
                    ..Default::default()
                })
                .collect();
            offline.sort_by(|a, b| a.worker_id.cmp(&b.worker_id));
            workers.extend(offline);
        }
        Ok(Response::new(ListWorkersResponse { workers }))
    }

    async fn get_worker_config(
        &self,
        _request: Request<GetWorkerConfigRequest>,
    ) -> Result<Response<GetWorkerConfigResponse>, Status> {
        let settings = worker_config::load(&self.state.store).await?;
        Ok(Response::new(GetWorkerConfigResponse {
            config: Some(crate::dispatch::config_to_proto(&settings)),
        }))
    }

    async fn set_worker_config(
        &self,
        request: Request<SetWorkerConfigRequest>,
    ) -> Result<Response<SetWorkerConfigResponse>, Status> {
        let request = request.into_inner();
        let paths = mask_paths("update_mask", &request.update_mask, &WORKER_CONFIG_FIELDS)?;
        let config = request
            .config
            .ok_or_else(|| StoreError::invalid("config", "is required"))?;
        let patch = settings_patch(&config, &paths)?;
        let settings = worker_config::update(&self.state.store, patch).await?;
        self.state.engine.set_settings(settings);
        Ok(Response::new(SetWorkerConfigResponse {
            config: Some(crate::dispatch::config_to_proto(&settings)),
        }))
    }
}

/// One worker's stream, from its registration on.
struct Session {
    engine: Engine,
    worker_id: String,
    session: u64,
    tx: mpsc::Sender<Result<ConnectResponse, Status>>,
    /// Attempts verified on this stream, so chunks skip the database check.
    verified: HashMap<Uuid, String>,
    /// When each run's log counters were last written to its row.
    progress_written: HashMap<Uuid, tokio::time::Instant>,
}

/// Registers the worker: reconciles what it still runs, answers
/// `registered`, and tells it to stop runs that are no longer its own.
async fn open_session(
    engine: &Engine,
    register: Register,
    tx: mpsc::Sender<Result<ConnectResponse, Status>>,
) -> Result<Session, Status> {
    let worker_id = register.worker_id.trim().to_owned();
    if worker_id.is_empty() {
        return Err(StoreError::invalid("register.worker_id", "is required").into());
    }
    if register.slots < 0 {
        return Err(StoreError::invalid("register.slots", "must not be negative").into());
    }
    let mut reported = Vec::with_capacity(register.running.len());
    for run in &register.running {
        reported.push((
            parse_id("register.running.execution_id", &run.execution_id)?,
            run.attempt_token.clone(),
        ));
    }
    let verdict = runs::reconcile(&engine.store, &worker_id, &reported).await?;
    let mut resumed = Vec::with_capacity(verdict.keep.len());
    let mut verified = HashMap::new();
    for (execution, token) in &verdict.keep {
        let stored = engine
            .logs
            .size(execution.id)
            .await
            .map_err(|e| Status::internal(format!("opening a log: {e}")))?;
        resumed.push(ResumedExecution {
            execution_id: execution.id.to_string(),
            attempt_token: token.clone(),
            acknowledged_offset: stored.bytes as i64,
        });
        verified.insert(execution.id, token.clone());
    }
    let registered = Message::Registered(Registered {
        worker_id: worker_id.clone(),
        config: Some(crate::dispatch::config_to_proto(&engine.settings())),
        resumed,
    });
    tx.send(Ok(ConnectResponse {
        message: Some(registered),
    }))
    .await
    .map_err(|_| Status::cancelled("worker left during registration"))?;

    let info = WorkerInfo {
        worker_id: worker_id.clone(),
        hostname: register.hostname,
        version: register.version,
        slots: register.slots,
        agent_slugs: register.agent_slugs,
        labels: register.labels.into_iter().collect(),
        draining: false,
        running: verdict.keep.iter().map(|(e, _)| e.id).collect(),
        last_seen_at: Utc::now(),
    };
    let session = engine.workers.connect(info, tx.clone());
    for (execution_id, token) in verdict.stop {
        engine.stop_run(
            &worker_id,
            execution_id,
            token,
            "no longer this worker's run",
        );
    }
    tracing::info!(worker_id, session, "worker registered");
    Ok(Session {
        engine: engine.clone(),
        worker_id,
        session,
        tx,
        verified,
        progress_written: HashMap::new(),
    })
}

impl Session {
    async fn serve(mut self, mut incoming: Streaming<ConnectRequest>) {
        loop {
            let message = match incoming.next().await {
                Some(Ok(ConnectRequest { message: Some(m) })) => m,
                Some(Ok(ConnectRequest { message: None })) => continue,
                Some(Err(status)) => {
                    tracing::info!(worker_id = %self.worker_id, %status, "worker stream broke");
                    break;
                }
                None => break,
            };
            if let Err(err) = self.handle(message).await {
                match err {
                    StoreError::Database(_) => {
                        tracing::error!(worker_id = %self.worker_id, error = %err, "handling a worker message failed");
                        let _ = self.tx.send(Err(err.into())).await;
                        break;
                    }
                    other => {
                        tracing::warn!(worker_id = %self.worker_id, error = %other, "refused a worker report")
                    }
                }
            }
        }
        self.engine
            .workers
            .disconnect(&self.worker_id, self.session);
        tracing::info!(worker_id = %self.worker_id, "worker disconnected");
    }

    async fn handle(&mut self, message: connect_request::Message) -> Result<(), StoreError> {
        use connect_request::Message as In;
        match message {
            In::Register(_) => Err(StoreError::invalid("register", "sent twice on one stream")),
            In::SlotGrant(grant) => {
                let count = usize::try_from(grant.count).unwrap_or(0);
                self.engine
                    .workers
                    .grant(&self.worker_id, self.session, count);
                Ok(())
            }
            In::Started(started) => {
                let id = parse_id("started.execution_id", &started.execution_id)?;
                let result = runs::run_started(
                    &self.engine.store,
                    &self.worker_id,
                    id,
                    &started.attempt_token,
                    started.pid,
                    started.tmux_session_name,
                )
                .await;
                self.refuse_if_stale(id, &started.attempt_token, result)
            }
            In::LogChunk(chunk) => {
                let id = parse_id("log_chunk.execution_id", &chunk.execution_id)?;
                if let Err(err) = self.verify(id, &chunk.attempt_token).await {
                    return self.refuse_if_stale(id, &chunk.attempt_token, Err(err));
                }
                let offset = u64::try_from(chunk.offset)
                    .map_err(|_| StoreError::invalid("log_chunk.offset", "must not be negative"))?;
                match self.engine.logs.append(id, offset, &chunk.data).await {
                    Ok(size) => {
                        self.ack(id, size.bytes).await;
                        self.write_progress_if_due(id, size.bytes, size.lines)
                            .await?;
                        Ok(())
                    }
                    Err(crate::logs::AppendError::Gap { stored, .. }) => {
                        // Tell the worker where the log really ends; it resends from there.
                        self.ack(id, stored).await;
                        Err(StoreError::invalid(
                            "log_chunk.offset",
                            format!("gap after {stored} bytes"),
                        ))
                    }
                    Err(err) => Err(StoreError::FailedPrecondition(err.to_string())),
                }
            }
            In::Heartbeat(heartbeat) => {
                let mut running = Vec::with_capacity(heartbeat.running_execution_ids.len());
                for id in &heartbeat.running_execution_ids {
                    running.push(parse_id("heartbeat.running_execution_ids", id)?);
                }
                self.engine.workers.seen(&self.worker_id, self.session);
                runs::heartbeat(
                    &self.engine.store,
                    &self.worker_id,
                    &running,
                    optional_struct_to_json(&heartbeat.metadata),
                )
                .await
            }
            In::Finished(finished) => self.finished(finished).await,
            In::SessionDetected(detected) => {
                let id = parse_id("session_detected.execution_id", &detected.execution_id)?;
                let result = runs::session_detected(
                    &self.engine.store,
                    &self.worker_id,
                    id,
                    &detected.attempt_token,
                    detected.session_ref,
                )
                .await;
                self.refuse_if_stale(id, &detected.attempt_token, result)
            }
            In::Drain(drain) => {
                tracing::info!(worker_id = %self.worker_id, reason = %drain.reason, "worker is draining");
                self.engine.workers.drain(&self.worker_id, self.session);
                Ok(())
            }
        }
    }

    async fn finished(&mut self, finished: RunFinished) -> Result<(), StoreError> {
        let id = parse_id("finished.execution_id", &finished.execution_id)?;
        let status = ExecutionStatus::from_proto("finished.status", finished.status)?
            .ok_or_else(|| StoreError::invalid("finished.status", "is required"))?;
        let stored = self
            .engine
            .logs
            .size(id)
            .await
            .map_err(|e| StoreError::FailedPrecondition(e.to_string()))?;
        let mut error = finished.error;
        if (stored.bytes as i64) < finished.log_byte_size {
            let gap = format!(
                "log incomplete: {} of {} bytes stored",
                stored.bytes, finished.log_byte_size
            );
            tracing::warn!(execution_id = %id, "{gap}");
            error = Some(error.map_or(gap.clone(), |e| format!("{e}; {gap}")));
        }
        runs::record_log_progress(&self.engine.store, id, stored.bytes, stored.lines).await?;
        let outcome = runs::RunOutcome {
            status,
            exit_code: finished.exit_code,
            error,
        };
        let result = runs::finish_run(
            &self.engine.store,
            &self.worker_id,
            id,
            &finished.attempt_token,
            outcome,
        )
        .await;
        // Whatever the verdict, the worker may forget this run's bytes now.
        self.ack(id, stored.bytes).await;
        self.verified.remove(&id);
        self.progress_written.remove(&id);
        self.engine.workers.run_ended(&self.worker_id, id);
        self.engine.logs.close(id);
        match result {
            Ok(_) => Ok(()),
            Err(StoreError::Database(err)) => Err(StoreError::Database(err)),
            Err(other) => {
                tracing::warn!(execution_id = %id, error = %other, "refused a late result");
                Ok(())
            }
        }
    }

    async fn verify(&mut self, id: Uuid, token: &str) -> Result<(), StoreError> {
        // The cache only stands while the run is still on record as ours: a
        // reap or a cancel elsewhere takes it off, and the database decides.
        let cached = self.verified.get(&id).is_some_and(|t| t == token);
        if cached && self.engine.workers.runs(&self.worker_id, self.session, id) {
            return Ok(());
        }
        runs::current_attempt(self.engine.store.db(), &self.worker_id, id, token).await?;
        self.verified.insert(id, token.to_owned());
        Ok(())
    }

    /// A report about an attempt that is not (or no longer) this worker's:
    /// refuse it and tell the worker to stop that run.
    fn refuse_if_stale(
        &mut self,
        id: Uuid,
        token: &str,
        result: Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        match result {
            Err(StoreError::FailedPrecondition(message))
            | Err(StoreError::NotFound {
                kind: _,
                id: message,
            }) => {
                self.verified.remove(&id);
                self.engine
                    .stop_run(&self.worker_id, id, token.to_owned(), "stale attempt");
                Err(StoreError::FailedPrecondition(message))
            }
            other => other,
        }
    }

    async fn ack(&self, id: Uuid, offset: u64) {
        let _ = self
            .tx
            .send(Ok(ConnectResponse {
                message: Some(Message::LogAck(LogAck {
                    execution_id: id.to_string(),
                    offset: offset as i64,
                })),
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
            runs::record_log_progress(&self.engine.store, id, bytes, lines).await?;
        }
        Ok(())
    }
}
