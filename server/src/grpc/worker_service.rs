//! `agentmonitor.v1.WorkerService`: the workers' stream and their tuning.
//!
//! One `Connect` stream per worker carries everything. The incoming half is
//! read by a task of its own, each message decoded (`convert::worker`) and
//! handed to the worker's `dispatch::Session`; replies and pushed work go
//! through the worker's bounded outgoing queue, encoded as the tonic
//! response stream drains it.

use amon_proto::v1::{
    ConnectRequest, ConnectResponse, GetWorkerConfigRequest, GetWorkerConfigResponse,
    ListWorkersRequest, ListWorkersResponse, SetWorkerConfigRequest, SetWorkerConfigResponse,
    worker_service_server::WorkerService,
};
use tokio::sync::mpsc;
use tokio_stream::{StreamExt, wrappers::ReceiverStream};
use tonic::{Request, Response, Status, Streaming};

use super::ResponseStream;
use super::convert::{
    mask_paths,
    worker::{
        WORKER_CONFIG_FIELDS, config_to_proto, from_worker, known_worker_to_proto, registration,
        settings_patch, to_worker,
    },
};
use crate::{
    dispatch::{Engine, FromWorker, Session},
    store::StoreError,
};

/// Messages queued to one worker before the server stops pushing to it.
const OUTGOING_QUEUE: usize = 4096;

/// Handlers of `WorkerService`.
#[derive(Clone)]
pub struct WorkerApi {
    engine: Engine,
}

impl WorkerApi {
    /// Handlers over the engine.
    pub fn new(engine: Engine) -> Self {
        Self { engine }
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
        let registration = registration(Some(first))?;
        let (tx, rx) = mpsc::channel(OUTGOING_QUEUE);
        let session = self.engine.open_session(registration, tx).await?;
        tokio::spawn(serve(session, incoming));
        let outgoing = ReceiverStream::new(rx).map(|message| match message {
            Ok(message) => Ok(to_worker(message)),
            Err(err) => Err(Status::from(err)),
        });
        Ok(Response::new(Box::pin(outgoing)))
    }

    async fn list_workers(
        &self,
        request: Request<ListWorkersRequest>,
    ) -> Result<Response<ListWorkersResponse>, Status> {
        let ListWorkersRequest { connected_only } = request.into_inner();
        let known = self.engine.known_workers(connected_only).await?;
        Ok(Response::new(ListWorkersResponse {
            workers: known.into_iter().map(known_worker_to_proto).collect(),
        }))
    }

    async fn get_worker_config(
        &self,
        _request: Request<GetWorkerConfigRequest>,
    ) -> Result<Response<GetWorkerConfigResponse>, Status> {
        let settings = self.engine.store.worker_config().load().await?;
        Ok(Response::new(GetWorkerConfigResponse {
            config: Some(config_to_proto(&settings)),
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
        let settings = self.engine.store.worker_config().update(patch).await?;
        self.engine.set_settings(settings);
        Ok(Response::new(SetWorkerConfigResponse {
            config: Some(config_to_proto(&settings)),
        }))
    }
}

/// Reads a worker's stream until it ends, breaks, or the engine gives up on it.
async fn serve(mut session: Session, mut incoming: Streaming<ConnectRequest>) {
    loop {
        let next = tokio::select! {
            next = incoming.next() => next,
            () = session.superseded() => {
                session.end_superseded().await;
                return;
            }
            () = session.broken() => break,
        };
        let message = match next {
            Some(Ok(ConnectRequest { message: Some(m) })) => m,
            Some(Ok(ConnectRequest { message: None })) => continue,
            Some(Err(status)) => {
                tracing::info!(worker_id = ?session.worker_id(), %status, "worker stream broke");
                break;
            }
            None => break,
        };
        match from_worker(message) {
            Ok(message) => {
                if let FromWorker::LogChunk { data, .. } = &message {
                    crate::metrics::log_bytes_received(data.len());
                }
                if !session.handle(message).await {
                    break;
                }
            }
            Err(err) => session.refused(&err),
        }
    }
    session.close();
}
