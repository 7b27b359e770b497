//! The gRPC surface: the four `agentmonitor.v1` services, standard health and
//! server reflection, assembled in one place.
//!
//! Every service is marked SERVING in health as it is added; reflection serves the descriptor set the code was
//! generated from, so what `grpcurl list` shows and what is served cannot drift.

mod agent_service;
pub mod convert;
mod execution_service;
mod status;
mod task_service;
mod worker_service;

use amon_proto::v1::{
    agent_service_server::AgentServiceServer, execution_service_server::ExecutionServiceServer,
    task_service_server::TaskServiceServer, worker_service_server::WorkerServiceServer,
};
use std::pin::Pin;

use tokio_stream::Stream;
use tonic::{Status, server::NamedService, service::Routes};
use tonic_health::server::HealthReporter;

use crate::dispatch::Engine;

pub use agent_service::AgentApi;
pub use execution_service::ExecutionApi;
pub use task_service::TaskApi;
pub use worker_service::WorkerApi;

/// Adds every gRPC service this server answers to `routes` (the HTTP
/// router of `crate::http`), one by one, so a layer can later wrap each
/// service on its own (gRPC-web).
pub async fn add_services(routes: Routes, engine: Engine) -> anyhow::Result<Routes> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();

    let agent = AgentServiceServer::new(AgentApi::new(engine.store.clone()));
    mark_serving(&health_reporter, &agent).await;
    let task = TaskServiceServer::new(TaskApi::new(engine.store.clone()));
    mark_serving(&health_reporter, &task).await;
    let execution = ExecutionServiceServer::new(ExecutionApi::new(engine.clone()));
    mark_serving(&health_reporter, &execution).await;
    let worker = WorkerServiceServer::new(WorkerApi::new(engine));
    mark_serving(&health_reporter, &worker).await;

    Ok(routes
        .add_service(agent)
        .add_service(task)
        .add_service(execution)
        .add_service(worker)
        .add_service(health_service)
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?))
}

/// Reflection over our descriptor set and health's, so grpcurl needs no proto
/// files. Built once per reflection version (v1 for current clients, v1alpha
/// for older ones such as grpcurl 1.8).
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(amon_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

/// Reports `service` as SERVING on `grpc.health.v1` under its full name.
async fn mark_serving<S: NamedService>(health: &HealthReporter, _service: &S) {
    health.set_serving::<S>().await;
}

/// The stream type of every server-streaming RPC here: a spawned task feeds
/// an mpsc channel, boxed so each service names one type.
pub type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;
