//! What grpcurl and any gRPC tooling sees of a fresh server: health for every
//! service, reflection (v1 and v1alpha) describing the whole contract, and a
//! clean stop on SIGTERM. Runs on the embedded SQLite default and on PostgreSQL.

use amon_tests::{
    db::{Backend, TestDb},
    server::TestServer,
};
use tokio_stream::StreamExt;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

const OUR_SERVICES: [&str; 4] = [
    "agentmonitor.v1.AgentService",
    "agentmonitor.v1.TaskService",
    "agentmonitor.v1.ExecutionService",
    "agentmonitor.v1.WorkerService",
];

async fn assert_health(server: &TestServer) {
    let mut health = HealthClient::new(server.channel().await);
    for service in OUR_SERVICES.iter().copied().chain([""]) {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("health check of {service:?}: {e}"))
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving, "health of {service:?}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "agentmonitor.v1.NoSuchService".into(),
        })
        .await
        .expect_err("an unknown service has no health");
    assert_eq!(unknown.code(), tonic::Code::NotFound);
}

/// Lists services and fetches the file declaring `symbol` over reflection v1.
async fn reflect_v1(server: &TestServer, symbol: &str) -> (Vec<String>, Vec<Vec<u8>>) {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut client = ServerReflectionClient::new(server.channel().await);
    let requests = [
        MessageRequest::ListServices(String::new()),
        MessageRequest::FileContainingSymbol(symbol.into()),
    ]
    .map(|message| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(message),
    });
    let mut responses = client
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .expect("reflection v1 stream")
        .into_inner();
    let mut services = Vec::new();
    let mut files = Vec::new();
    while let Some(response) = responses.next().await {
        match response.expect("reflection v1 response").message_response {
            Some(MessageResponse::ListServicesResponse(list)) => {
                services.extend(list.service.into_iter().map(|s| s.name));
            }
            Some(MessageResponse::FileDescriptorResponse(fds)) => {
                files.extend(fds.file_descriptor_proto);
            }
            other => panic!("unexpected reflection v1 answer: {other:?}"),
        }
    }
    (services, files)
}

/// The same over reflection v1alpha (what grpcurl 1.8 speaks).
async fn reflect_v1alpha(server: &TestServer, symbol: &str) -> (Vec<String>, Vec<Vec<u8>>) {
    use tonic_reflection::pb::v1alpha::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut client = ServerReflectionClient::new(server.channel().await);
    let requests = [
        MessageRequest::ListServices(String::new()),
        MessageRequest::FileContainingSymbol(symbol.into()),
    ]
    .map(|message| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(message),
    });
    let mut responses = client
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .expect("reflection v1alpha stream")
        .into_inner();
    let mut services = Vec::new();
    let mut files = Vec::new();
    while let Some(response) = responses.next().await {
        match response
            .expect("reflection v1alpha response")
            .message_response
        {
            Some(MessageResponse::ListServicesResponse(list)) => {
                services.extend(list.service.into_iter().map(|s| s.name));
            }
            Some(MessageResponse::FileDescriptorResponse(fds)) => {
                files.extend(fds.file_descriptor_proto);
            }
            other => panic!("unexpected reflection v1alpha answer: {other:?}"),
        }
    }
    (services, files)
}

/// Decodes reflected files and returns the RPC names of `service` in them.
fn rpc_names(files: &[Vec<u8>], service: &str) -> Vec<String> {
    use prost::Message;
    let (package, name) = service.rsplit_once('.').expect("qualified service name");
    files
        .iter()
        .map(|raw| prost_types::FileDescriptorProto::decode(raw.as_slice()).expect("descriptor"))
        .filter(|file| file.package() == package)
        .flat_map(|file| file.service)
        .filter(|s| s.name() == name)
        .flat_map(|s| s.method.into_iter().map(|m| m.name().to_owned()))
        .collect()
}

async fn assert_reflection(server: &TestServer) {
    for (version, (services, files)) in [
        (
            "v1",
            reflect_v1(server, "agentmonitor.v1.WorkerService").await,
        ),
        (
            "v1alpha",
            reflect_v1alpha(server, "agentmonitor.v1.WorkerService").await,
        ),
    ] {
        for service in OUR_SERVICES.iter().chain(&["grpc.health.v1.Health"]) {
            assert!(
                services.iter().any(|s| s == service),
                "reflection {version} lists {service}: {services:?}"
            );
        }
        let mut rpcs = rpc_names(&files, "agentmonitor.v1.WorkerService");
        rpcs.sort();
        assert_eq!(
            rpcs,
            [
                "Connect",
                "GetWorkerConfig",
                "ListWorkers",
                "SetWorkerConfig"
            ],
            "reflection {version} describes WorkerService"
        );
    }
    // Health's own descriptor is served too, so grpcurl can call it with no proto files.
    let (_, files) = reflect_v1(server, "grpc.health.v1.Health").await;
    assert_eq!(
        rpc_names(&files, "grpc.health.v1.Health"),
        ["Check", "Watch"]
    );
}

#[tokio::test]
async fn embedded_sqlite_default_serves_health_and_reflection() {
    // No database URL at all: the one-command start on a fresh machine.
    let server = TestServer::start_with_args(None, &[]).await;
    assert!(
        server.data_dir().join("amon.db").exists(),
        "the SQLite database lives in the data directory"
    );
    assert_health(&server).await;
    assert_reflection(&server).await;
    let status = server.shutdown().await;
    assert!(
        status.success(),
        "SIGTERM stops the server cleanly: {status}"
    );
}

#[tokio::test]
async fn postgres_serves_health_and_reflection() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let server = TestServer::start(db.url()).await;
    assert_health(&server).await;
    assert_reflection(&server).await;
    let status = server.shutdown().await;
    assert!(
        status.success(),
        "SIGTERM stops the server cleanly: {status}"
    );
}
