//! `agentmonitor.v1.ExecutionService`: parse → store → convert, plus the
//! two live streams (logs and status changes).

use amon_proto::v1::{
    ApproveExecutionRequest, ApproveExecutionResponse, CancelExecutionRequest,
    CancelExecutionResponse, ContinueExecutionRequest, ContinueExecutionResponse,
    CreateExecutionRequest, CreateExecutionResponse, GetExecutionRequest, GetExecutionResponse,
    ListExecutionsRequest, ListExecutionsResponse, RetryExecutionRequest, RetryExecutionResponse,
    StreamLogsRequest, StreamLogsResponse, WatchExecutionsRequest, WatchExecutionsResponse,
    execution_service_server::ExecutionService,
};
use tokio::sync::{broadcast::error::RecvError, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::ResponseStream;
use super::convert::{
    enums::WireEnum, execution::execution_to_proto, optional_struct_to_json, parse_id,
    parse_optional_id,
};
use crate::{
    dispatch::Engine,
    entity::enums::ExecutionStatus,
    store::{
        Actor, StoreError,
        execution_state::is_terminal,
        executions::{ExecutionFilter, NewExecution},
        page::{PageRequest, RESOURCE_PAGES},
    },
};

/// Largest piece of log sent in one StreamLogs message.
const LOG_MESSAGE_BYTES: usize = 256 * 1024;
/// Messages buffered per stream before it waits for its client.
const STREAM_BUFFER: usize = 64;

/// Sends stored bytes from `offset` up to `until` (or the end of the file),
/// advancing `offset`. Returns false when the client is gone or reading failed.
async fn send_stored(
    engine: &Engine,
    id: uuid::Uuid,
    offset: &mut u64,
    until: u64,
    tx: &mpsc::Sender<Result<StreamLogsResponse, Status>>,
) -> bool {
    while *offset < until {
        let want = (until - *offset).min(LOG_MESSAGE_BYTES as u64) as usize;
        let data = match engine.logs.read(id, *offset, want).await {
            Ok(data) if data.is_empty() => return true,
            Ok(data) => data,
            Err(err) => {
                let _ = tx
                    .send(Err(Status::internal(format!("reading the log: {err}"))))
                    .await;
                return false;
            }
        };
        let message = StreamLogsResponse {
            offset: *offset as i64,
            data,
        };
        *offset += message.data.len() as u64;
        if tx.send(Ok(message)).await.is_err() {
            return false;
        }
    }
    true
}

/// Handlers of `ExecutionService`.
#[derive(Clone)]
pub struct ExecutionApi {
    engine: Engine,
}

impl ExecutionApi {
    /// Handlers over the engine.
    pub fn new(engine: Engine) -> Self {
        Self { engine }
    }

    fn executions(&self) -> crate::store::Executions<'_> {
        self.engine.store.executions()
    }
}

#[tonic::async_trait]
impl ExecutionService for ExecutionApi {
    type StreamLogsStream = ResponseStream<StreamLogsResponse>;
    type WatchExecutionsStream = ResponseStream<WatchExecutionsResponse>;

    async fn create_execution(
        &self,
        request: Request<CreateExecutionRequest>,
    ) -> Result<Response<CreateExecutionResponse>, Status> {
        let request = request.into_inner();
        let args = match optional_struct_to_json(&request.args) {
            serde_json::Value::Object(map) => map,
            _ => Default::default(),
        };
        let new = NewExecution {
            task_id: parse_id("task_id", &request.task_id)?,
            capability_id: parse_id("capability_id", &request.capability_id)?,
            args,
            max_retries: request.max_retries,
        };
        let execution = self
            .executions()
            .create(new, None, None, Actor::user())
            .await?;
        Ok(Response::new(CreateExecutionResponse {
            execution: Some(execution_to_proto(&execution)),
        }))
    }

    async fn get_execution(
        &self,
        request: Request<GetExecutionRequest>,
    ) -> Result<Response<GetExecutionResponse>, Status> {
        let id = parse_id("id", &request.into_inner().id)?;
        let (execution, ancestors) = self.executions().get_with_ancestors(id).await?;
        Ok(Response::new(GetExecutionResponse {
            execution: Some(execution_to_proto(&execution)),
            ancestor_execution_ids: ancestors.iter().map(ToString::to_string).collect(),
        }))
    }

    async fn list_executions(
        &self,
        request: Request<ListExecutionsRequest>,
    ) -> Result<Response<ListExecutionsResponse>, Status> {
        let request = request.into_inner();
        let page = PageRequest::parse(request.page_size, &request.page_token, RESOURCE_PAGES)?;
        let filter = ExecutionFilter {
            task_id: parse_optional_id("task_id", &request.task_id)?,
            status: ExecutionStatus::from_proto("status", request.status)?,
            agent_id: parse_optional_id("agent_id", &request.agent_id)?,
            worker_id: Some(request.worker_id).filter(|w| !w.is_empty()),
        };
        let (rows, next_page_token) = self.executions().list(filter, page).await?;
        Ok(Response::new(ListExecutionsResponse {
            executions: rows.iter().map(execution_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn cancel_execution(
        &self,
        request: Request<CancelExecutionRequest>,
    ) -> Result<Response<CancelExecutionResponse>, Status> {
        let request = request.into_inner();
        let id = parse_id("id", &request.id)?;
        let reason = if request.reason.trim().is_empty() {
            "cancelled by a user".to_owned()
        } else {
            request.reason
        };
        let cancelled = self.executions().cancel(id, &reason, Actor::user()).await?;
        if let Some((worker_id, token)) = cancelled.stop_on_worker {
            self.engine.stop_run(&worker_id, id, token, &reason);
        }
        Ok(Response::new(CancelExecutionResponse {
            execution: Some(execution_to_proto(&cancelled.execution)),
        }))
    }

    async fn retry_execution(
        &self,
        request: Request<RetryExecutionRequest>,
    ) -> Result<Response<RetryExecutionResponse>, Status> {
        let id = parse_id("id", &request.into_inner().id)?;
        let execution = self.executions().retry(id, Actor::user()).await?;
        Ok(Response::new(RetryExecutionResponse {
            execution: Some(execution_to_proto(&execution)),
        }))
    }

    async fn approve_execution(
        &self,
        request: Request<ApproveExecutionRequest>,
    ) -> Result<Response<ApproveExecutionResponse>, Status> {
        let id = parse_id("id", &request.into_inner().id)?;
        let execution = self.executions().approve(id, Actor::user()).await?;
        Ok(Response::new(ApproveExecutionResponse {
            execution: Some(execution_to_proto(&execution)),
        }))
    }

    async fn continue_execution(
        &self,
        request: Request<ContinueExecutionRequest>,
    ) -> Result<Response<ContinueExecutionResponse>, Status> {
        let request = request.into_inner();
        let id = parse_id("id", &request.id)?;
        let execution = self
            .executions()
            .continue_session(id, request.prompt, Actor::user())
            .await?;
        Ok(Response::new(ContinueExecutionResponse {
            execution: Some(execution_to_proto(&execution)),
        }))
    }

    async fn stream_logs(
        &self,
        request: Request<StreamLogsRequest>,
    ) -> Result<Response<Self::StreamLogsStream>, Status> {
        let request = request.into_inner();
        let id = parse_id("execution_id", &request.execution_id)?;
        let mut offset = u64::try_from(request.offset)
            .map_err(|_| StoreError::invalid("offset", "must not be negative"))?;
        let engine = self.engine.clone();
        // Follow the status first, then read it, so no change slips between.
        let mut status = engine
            .store
            .execution_hub()
            .follow(id, ExecutionStatus::Queued);
        let execution = engine.store.executions().get(id).await?;
        let mut current = execution.status;
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        if !request.follow || is_terminal(current) {
            // Nothing more will be written: send the file as it is.
            tokio::spawn(async move {
                send_stored(&engine, id, &mut offset, u64::MAX, &tx).await;
            });
            return Ok(Response::new(Box::pin(ReceiverStream::new(rx))));
        }
        let mut sizes = engine
            .logs
            .follow(id)
            .await
            .map_err(|e| Status::internal(format!("opening the log: {e}")))?;
        tokio::spawn(async move {
            loop {
                let stored = sizes.borrow_and_update().bytes;
                if !send_stored(&engine, id, &mut offset, stored, &tx).await {
                    return;
                }
                if is_terminal(current) && offset >= stored {
                    // Release the file a re-follow may have reopened;
                    // closing is idempotent and other followers reopen on need.
                    engine.logs.close(id);
                    return;
                }
                tokio::select! {
                    changed = sizes.changed() => if changed.is_err() {
                        // The attempt ended and its log was closed: re-open
                        // (a retry may write more) and look again.
                        match engine.logs.follow(id).await {
                            Ok(reopened) => sizes = reopened,
                            Err(err) => {
                                let _ = tx.send(Err(Status::internal(format!("reopening the log: {err}")))).await;
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
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn watch_executions(
        &self,
        request: Request<WatchExecutionsRequest>,
    ) -> Result<Response<Self::WatchExecutionsStream>, Status> {
        let request = request.into_inner();
        let task_id = parse_optional_id("task_id", &request.task_id)?;
        let execution_id = parse_optional_id("execution_id", &request.execution_id)?;
        let mut changes = self.engine.store.execution_hub().subscribe();
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(async move {
            loop {
                let execution = tokio::select! {
                    received = changes.recv() => match received {
                        Ok(execution) => execution,
                        Err(RecvError::Lagged(missed)) => {
                            let _ = tx.send(Err(Status::resource_exhausted(format!(
                                "this watcher fell {missed} changes behind; watch again and re-read"
                            )))).await;
                            return;
                        }
                        Err(RecvError::Closed) => return,
                    },
                    _ = tx.closed() => return,
                };
                let wanted = task_id.is_none_or(|t| t == execution.task_id)
                    && execution_id.is_none_or(|e| e == execution.id);
                if wanted
                    && tx
                        .send(Ok(WatchExecutionsResponse {
                            execution: Some(execution_to_proto(&execution)),
                        }))
                        .await
                        .is_err()
                {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
