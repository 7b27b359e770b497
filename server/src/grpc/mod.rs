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
use tonic_health::{ServingStatus, server::HealthReporter};
use tonic_web::GrpcWebLayer;
use tower_layer::Layer;

use crate::dispatch::Engine;

pub use agent_service::AgentApi;
pub use execution_service::ExecutionApi;
pub use task_service::TaskApi;
pub use worker_service::WorkerApi;

/// Adds every gRPC service this server answers to `routes` (the HTTP
/// router of `crate::http`), one by one, each wrapped in the gRPC-web layer
/// so the web board (`web/`) calls the same services as every other client.
/// Per service, not server-wide: the layer answers 400 to any HTTP/1.1
/// request that is not gRPC-web, which would take `/mcp`, `/metrics` and
/// the page down with it. Native gRPC (HTTP/2) passes through it untouched.
/// `WorkerService/Connect` is bidirectional, which gRPC-web cannot carry; the
/// service's unary calls (workers and their tuning) work from the browser.
pub async fn add_services(routes: Routes, engine: Engine) -> anyhow::Result<Routes> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    // In force before the first request is served; then kept true.
    let reachable = engine.store.cluster().reachable();
    let up = *reachable.borrow();
    set_health(&health_reporter, up).await;
    tokio::spawn(report_health(health_reporter, reachable));

    let agent = AgentServiceServer::new(AgentApi::new(engine.clone()));
    let task = TaskServiceServer::new(TaskApi::new(engine.clone()));
    let execution = ExecutionServiceServer::new(ExecutionApi::new(engine.clone()));
    let worker = WorkerServiceServer::new(WorkerApi::new(engine));

    let web = GrpcWebLayer::new();
    Ok(routes
        .add_service(web.layer(agent))
        .add_service(web.layer(task))
        .add_service(web.layer(execution))
        .add_service(web.layer(worker))
        .add_service(web.layer(health_service))
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?))
}

/// Keeps `grpc.health.v1` true to the database: every service (and the
/// server as a whole, `""`) is SERVING while the database answers and
/// NOT_SERVING while it does not (on PostgreSQL, while the connection every
/// server listens on is down), so a load balancer stops sending to it.
async fn report_health(health: HealthReporter, mut reachable: tokio::sync::watch::Receiver<bool>) {
    while reachable.changed().await.is_ok() {
        let up = *reachable.borrow_and_update();
        set_health(&health, up).await;
    }
}

/// Every service, and the server as a whole (`""`), SERVING or NOT_SERVING.
async fn set_health(health: &HealthReporter, reachable: bool) {
    let status = if reachable {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    for name in [
        "",
        <AgentServiceServer<AgentApi> as NamedService>::NAME,
        <TaskServiceServer<TaskApi> as NamedService>::NAME,
        <ExecutionServiceServer<ExecutionApi> as NamedService>::NAME,
        <WorkerServiceServer<WorkerApi> as NamedService>::NAME,
    ] {
        health.set_service_status(name, status).await;
    }
}

/// Reflection over our descriptor set and health's, so grpcurl needs no proto
/// files. Built once per reflection version (v1 for current clients, v1alpha
/// for older ones such as grpcurl 1.8).
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(amon_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

/// The stream type of every server-streaming RPC here: a spawned task feeds
/// an mpsc channel, boxed so each service names one type.
pub type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;
