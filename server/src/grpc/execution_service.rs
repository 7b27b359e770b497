//! `agentmonitor.v1.ExecutionService`: parse → store → convert, plus the
//! live streams (logs, status changes, and attached terminals, relayed by
//! `dispatch::terminal`).

use amon_proto::v1::{
    ApproveExecutionRequest, ApproveExecutionResponse, AttachTerminalInputRequest,
    AttachTerminalInputResponse, AttachTerminalOutputRequest, AttachTerminalOutputResponse,
    AttachTerminalRequest, AttachTerminalResizeRequest, AttachTerminalResizeResponse,
    AttachTerminalResponse, CancelExecutionRequest, CancelExecutionResponse,
    ContinueExecutionRequest, ContinueExecutionResponse, CreateExecutionRequest,
    CreateExecutionResponse, GetExecutionDiffRequest, GetExecutionDiffResponse,
    GetExecutionRequest, GetExecutionResponse, ListExecutionsRequest, ListExecutionsResponse,
    RetryExecutionRequest, RetryExecutionResponse, StreamLogsRequest, StreamLogsResponse,
    WatchExecutionsRequest, WatchExecutionsResponse, attach_terminal_output_response,
    attach_terminal_request, attach_terminal_response, execution_service_server::ExecutionService,
};
use tokio::sync::{broadcast::error::RecvError, mpsc};
use tokio_stream::{StreamExt, wrappers::ReceiverStream};
use tonic::{Request, Response, Status, Streaming};

use super::ResponseStream;
use super::convert::{
    enums::WireEnum, execution::execution_to_proto, optional_struct_to_json, page_reply, parse_id,
    parse_optional_id, terminal, worker::worktree_summary_to_proto,
};
use crate::{
    dispatch::{Engine, follow::LogPiece, worktree::MAX_DIFF_BYTES},
    entity::enums::ExecutionStatus,
    store::{
        Actor, StoreError,
        execution_state::is_terminal,
        executions::{ExecutionFilter, NewExecution},
        page::{PageRequest, RESOURCE_PAGES},
        validate::check_printable,
    },
};

/// Messages buffered per watch stream before it waits for its client.
const STREAM_BUFFER: usize = 64;
/// Output messages buffered per attached terminal before its relay waits
/// for the viewer (and so stops giving the worker window back).
const TERMINAL_BUFFER: usize = 16;

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
    type AttachTerminalStream = ResponseStream<AttachTerminalResponse>;
    type AttachTerminalOutputStream = ResponseStream<AttachTerminalOutputResponse>;

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
        let mut execution = execution_to_proto(&execution);
        if let Some(record) = self.engine.store.worktrees().of_execution(id).await? {
            execution.worktree = Some(worktree_summary_to_proto(&record.summary));
        }
        Ok(Response::new(GetExecutionResponse {
            execution: Some(execution),
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
            worker_id: Some(request.worker_id)
                .filter(|w| !w.is_empty())
                .map(|w| check_printable("worker_id", &w, 1024).map(|()| w))
                .transpose()?,
        };
        let (rows, next_page_token) = self.executions().list(filter, page).await?;
        let mut worktrees = self
            .engine
            .store
            .worktrees()
            .of_executions(rows.iter().map(|e| e.id).collect())
            .await?;
        let (executions, next_page_token) = page_reply(
            rows.iter()
                .map(|row| {
                    let mut execution = execution_to_proto(row);
                    execution.worktree = worktrees
                        .remove(&row.id)
                        .map(|record| worktree_summary_to_proto(&record.summary));
                    execution
                })
                .collect(),
            page,
            next_page_token,
        );
        Ok(Response::new(ListExecutionsResponse {
            executions,
            next_page_token,
        }))
    }

    async fn get_execution_diff(
        &self,
        request: Request<GetExecutionDiffRequest>,
    ) -> Result<Response<GetExecutionDiffResponse>, Status> {
        let request = request.into_inner();
        let id = parse_id("execution_id", &request.execution_id)?;
        let max_bytes = match request.max_bytes {
            0 => MAX_DIFF_BYTES,
            n => u64::try_from(n).map_err(|_| {
                StoreError::invalid("max_bytes", "must not be negative (0: the most)")
            })?,
        };
        let (done, record) = self.engine.execution_diff(id, max_bytes).await?;
        Ok(Response::new(GetExecutionDiffResponse {
            diff: done.diff,
            truncated: done.truncated,
            worktree: Some(worktree_summary_to_proto(&record.summary)),
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
        let offset = u64::try_from(request.offset)
            .map_err(|_| StoreError::invalid("offset", "must not be negative"))?;
        let pieces = self
            .engine
            .follow_log(id, offset, request.follow)
            .await?
            .map(|piece| {
                piece
                    .map(|LogPiece { offset, data }| StreamLogsResponse {
                        offset: offset as i64,
                        data,
                    })
                    .map_err(Status::from)
            });
        Ok(Response::new(Box::pin(pieces)))
    }

    async fn watch_executions(
        &self,
        request: Request<WatchExecutionsRequest>,
    ) -> Result<Response<Self::WatchExecutionsStream>, Status> {
        let request = request.into_inner();
        let task_id = parse_optional_id("task_id", &request.task_id)?;
        let execution_id = parse_optional_id("execution_id", &request.execution_id)?;
        let mut changes = self.engine.store.execution_hub().subscribe();
        let store = self.engine.store.clone();
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
                if !wanted {
                    continue;
                }
                let mut message = execution_to_proto(&execution);
                // What a run changed in its worktree is recorded with its
                // finish (in its own table): a finished run carries it, as
                // GetExecution's does.
                if is_terminal(execution.status) {
                    match store.worktrees().of_execution(execution.id).await {
                        Ok(record) => {
                            message.worktree =
                                record.map(|record| worktree_summary_to_proto(&record.summary));
                        }
                        Err(err) => {
                            let _ = tx.send(Err(err.into())).await;
                            return;
                        }
                    }
                }
                let reply = WatchExecutionsResponse {
                    execution: Some(message),
                };
                if tx.send(Ok(reply)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn attach_terminal(
        &self,
        request: Request<Streaming<AttachTerminalRequest>>,
    ) -> Result<Response<Self::AttachTerminalStream>, Status> {
        use attach_terminal_request::Message as In;
        use attach_terminal_response::Message as Out;
        let mut incoming = request.into_inner();
        let open = match incoming.message().await? {
            Some(AttachTerminalRequest {
                message: Some(In::Open(open)),
            }) => open,
            Some(_) => return Err(StoreError::invalid("open", "must be the first message").into()),
            None => {
                return Err(StoreError::invalid("open", "the stream closed before it").into());
            }
        };
        let (execution_id, read_only, size) = terminal::open_from_proto("open", Some(open))?;
        let mut attached = self
            .engine
            .attach_terminal(execution_id, read_only, size)
            .await?;
        let opened = Out::Opened(terminal::opened_to_proto(&attached));
        let (tx, rx) = mpsc::channel(TERMINAL_BUFFER);
        let reply = |message| {
            Ok(AttachTerminalResponse {
                message: Some(message),
            })
        };
        tokio::spawn(async move {
            if tx.send(reply(opened)).await.is_err() {
                return;
            }
            // Ends when the attach does, the viewer's request stream ends
            // (a detach), or the viewer sends what cannot be relayed.
            loop {
                tokio::select! {
                    event = attached.next() => {
                        let Some(event) = event else { return };
                        let last = matches!(event, crate::dispatch::terminal::TerminalEvent::Ended(_));
                        if tx.send(reply(terminal::event_to_proto(event))).await.is_err() || last {
                            return;
                        }
                    }
                    request = incoming.message() => {
                        let relayed = match request {
                            Ok(Some(AttachTerminalRequest { message: Some(In::Input(data)) })) => {
                                terminal::check_input("input", &data)
                                    .and_then(|()| attached.input(data))
                            }
                            Ok(Some(AttachTerminalRequest { message: Some(In::Resize(size)) })) => {
                                terminal::size_from_proto("resize", Some(size))
                                    .and_then(|size| attached.resize(size))
                            }
                            Ok(Some(AttachTerminalRequest { message: Some(In::Open(_)) })) => {
                                Err(StoreError::invalid("open", "sent twice on one stream"))
                            }
                            Ok(Some(AttachTerminalRequest { message: None })) => Ok(()),
                            Ok(None) | Err(_) => return,
                        };
                        if let Err(err) = relayed {
                            let _ = tx.send(Err(Status::from(err))).await;
                            return;
                        }
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn attach_terminal_output(
        &self,
        request: Request<AttachTerminalOutputRequest>,
    ) -> Result<Response<Self::AttachTerminalOutputStream>, Status> {
        use attach_terminal_output_response::Message as Out;
        let AttachTerminalOutputRequest { open } = request.into_inner();
        let (execution_id, read_only, size) = terminal::open_from_proto("open", open)?;
        let mut attached = self
            .engine
            .attach_terminal(execution_id, read_only, size)
            .await?;
        let opened = Out::Opened(terminal::opened_to_proto(&attached));
        let (tx, rx) = mpsc::channel(TERMINAL_BUFFER);
        let reply = |message| {
            Ok(AttachTerminalOutputResponse {
                message: Some(message),
            })
        };
        tokio::spawn(async move {
            if tx.send(reply(opened)).await.is_err() {
                return;
            }
            loop {
                let event = tokio::select! {
                    event = attached.next() => event,
                    // The viewer closed the stream: detach.
                    () = tx.closed() => return,
                };
                let Some(event) = event else { return };
                let last = matches!(event, crate::dispatch::terminal::TerminalEvent::Ended(_));
                if tx
                    .send(reply(terminal::output_event_to_proto(event)))
                    .await
                    .is_err()
                    || last
                {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn attach_terminal_input(
        &self,
        request: Request<AttachTerminalInputRequest>,
    ) -> Result<Response<AttachTerminalInputResponse>, Status> {
        let AttachTerminalInputRequest { attach_id, data } = request.into_inner();
        let attach_id = parse_id("attach_id", &attach_id)?;
        terminal::check_input("data", &data)?;
        self.engine.terminals.input(&self.engine, attach_id, data)?;
        Ok(Response::new(AttachTerminalInputResponse {}))
    }

    async fn attach_terminal_resize(
        &self,
        request: Request<AttachTerminalResizeRequest>,
    ) -> Result<Response<AttachTerminalResizeResponse>, Status> {
        let AttachTerminalResizeRequest { attach_id, size } = request.into_inner();
        let attach_id = parse_id("attach_id", &attach_id)?;
        if size.is_none() {
            return Err(StoreError::invalid("size", "is required").into());
        }
        let size = terminal::size_from_proto("size", size)?;
        self.engine
            .terminals
            .resize(&self.engine, attach_id, size)?;
        Ok(Response::new(AttachTerminalResizeResponse {}))
    }
}
