//! `agentmonitor.v1.WorkerService`.

use std::pin::Pin;

use amon_proto::v1::{
    worker_service_server::WorkerService,
    ConnectRequest, ConnectResponse, GetWorkerConfigRequest, GetWorkerConfigResponse, ListWorkersRequest, ListWorkersResponse, SetWorkerConfigRequest, SetWorkerConfigResponse,
};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use tonic::Streaming;

use super::not_built_yet;
use crate::app::AppState;

/// Handlers of `WorkerService`.
#[derive(Clone)]
pub struct WorkerApi {
    #[allow(dead_code)]
    state: AppState,
}

impl WorkerApi {
    /// Handlers over the shared server state.
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// A boxed server stream of one response type.
pub type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl WorkerService for WorkerApi {
    type ConnectStream = ResponseStream<ConnectResponse>;

    async fn list_workers(
        &self,
        _request: Request<ListWorkersRequest>,
    ) -> Result<Response<ListWorkersResponse>, Status> {
        Err(not_built_yet("WorkerService.ListWorkers"))
    }

    async fn get_worker_config(
        &self,
        _request: Request<GetWorkerConfigRequest>,
    ) -> Result<Response<GetWorkerConfigResponse>, Status> {
        Err(not_built_yet("WorkerService.GetWorkerConfig"))
    }

    async fn set_worker_config(
        &self,
        _request: Request<SetWorkerConfigRequest>,
    ) -> Result<Response<SetWorkerConfigResponse>, Status> {
        Err(not_built_yet("WorkerService.SetWorkerConfig"))
    }

    async fn connect(
        &self,
        _request: Request<Streaming<ConnectRequest>>,
    ) -> Result<Response<Self::ConnectStream>, Status> {
        Err(not_built_yet("WorkerService.Connect"))
    }

}
