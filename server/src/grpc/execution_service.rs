//! `agentmonitor.v1.ExecutionService`.

use std::pin::Pin;

use amon_proto::v1::{
    execution_service_server::ExecutionService,
    ApproveExecutionRequest, ApproveExecutionResponse, CancelExecutionRequest, CancelExecutionResponse, ContinueExecutionRequest, ContinueExecutionResponse, CreateExecutionRequest, CreateExecutionResponse, GetExecutionRequest, GetExecutionResponse, ListExecutionsRequest, ListExecutionsResponse, RetryExecutionRequest, RetryExecutionResponse, StreamLogsRequest, StreamLogsResponse, WatchExecutionsRequest, WatchExecutionsResponse,
};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::not_built_yet;
use crate::app::AppState;

/// Handlers of `ExecutionService`.
#[derive(Clone)]
pub struct ExecutionApi {
    #[allow(dead_code)]
    state: AppState,
}

impl ExecutionApi {
    /// Handlers over the shared server state.
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// A boxed server stream of one response type.
pub type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl ExecutionService for ExecutionApi {
    type StreamLogsStream = ResponseStream<StreamLogsResponse>;

    type WatchExecutionsStream = ResponseStream<WatchExecutionsResponse>;

    async fn create_execution(
        &self,
        _request: Request<CreateExecutionRequest>,
    ) -> Result<Response<CreateExecutionResponse>, Status> {
        Err(not_built_yet("ExecutionService.CreateExecution"))
    }

    async fn get_execution(
        &self,
        _request: Request<GetExecutionRequest>,
    ) -> Result<Response<GetExecutionResponse>, Status> {
        Err(not_built_yet("ExecutionService.GetExecution"))
    }

    async fn list_executions(
        &self,
        _request: Request<ListExecutionsRequest>,
    ) -> Result<Response<ListExecutionsResponse>, Status> {
        Err(not_built_yet("ExecutionService.ListExecutions"))
    }

    async fn cancel_execution(
        &self,
        _request: Request<CancelExecutionRequest>,
    ) -> Result<Response<CancelExecutionResponse>, Status> {
        Err(not_built_yet("ExecutionService.CancelExecution"))
    }

    async fn retry_execution(
        &self,
        _request: Request<RetryExecutionRequest>,
    ) -> Result<Response<RetryExecutionResponse>, Status> {
        Err(not_built_yet("ExecutionService.RetryExecution"))
    }

    async fn approve_execution(
        &self,
        _request: Request<ApproveExecutionRequest>,
    ) -> Result<Response<ApproveExecutionResponse>, Status> {
        Err(not_built_yet("ExecutionService.ApproveExecution"))
    }

    async fn continue_execution(
        &self,
        _request: Request<ContinueExecutionRequest>,
    ) -> Result<Response<ContinueExecutionResponse>, Status> {
        Err(not_built_yet("ExecutionService.ContinueExecution"))
    }

    async fn stream_logs(
        &self,
        _request: Request<StreamLogsRequest>,
    ) -> Result<Response<Self::StreamLogsStream>, Status> {
        Err(not_built_yet("ExecutionService.StreamLogs"))
    }

    async fn watch_executions(
        &self,
        _request: Request<WatchExecutionsRequest>,
    ) -> Result<Response<Self::WatchExecutionsStream>, Status> {
        Err(not_built_yet("ExecutionService.WatchExecutions"))
    }

}
