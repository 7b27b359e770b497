//! Server assembly: opening the database and logs, building the engine, and
//! serving the gRPC services until shutdown.

use std::{future::Future, net::SocketAddr};

use anyhow::Context;
use tokio::net::TcpListener;
use tonic::service::Routes;
use tower_layer::Layer;

use crate::{
    auth::{AuthLayer, Tokens},
    config::{LogStoreKind, ServerConfig},
    db,
    dispatch::Engine,
    grpc, http,
    http::tls::Tls,
    logs::LogStore,
    mcp,
    store::Store,
};

/// A server bound to its address, ready to serve.
pub struct BoundServer {
    listener: TcpListener,
    tokens: Tokens,
    tls: Option<Tls>,
    /// The server's end of in-process connections (the local worker's).
    in_process: tokio::sync::mpsc::UnboundedReceiver<tokio::io::DuplexStream>,
    local_connector: amon_worker::InProcess,
    engine: Engine,
    mcp_allowed_hosts: Option<Vec<String>>,
}

impl BoundServer {
    /// Opens (and migrates) the database and binds the listening socket.
    pub async fn bind(config: &ServerConfig) -> anyhow::Result<Self> {
        config.check_exposure()?;
        let data_dir = config.data_dir();
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("creating data directory {}", data_dir.display()))?;
        let url = config.database_url();
        let db = db::connect_and_migrate(&url)
            .await
            .with_context(|| format!("opening database {}", redact_url(&url)))?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let store = Store::open(db).await.context("opening the store")?;
        let in_database = config.log_store(store.is_postgres()) == LogStoreKind::Database;
        let logs = LogStore::new(&data_dir, &store, in_database)
            .with_context(|| format!("creating the log directory in {}", data_dir.display()))?;
        let settings = store
            .worker_config()
            .load()
            .await
            .context("loading worker config")?;
        let mut engine = Engine::new(store.clone(), logs, settings);
        engine.mcp_server_url = Some(config.mcp_url(listener.local_addr()?));
        let tls = config.tls_files().map(Tls::load).transpose()?;
        let mcp_allowed_hosts = config.mcp_allowed_hosts(listener.local_addr()?);
        let (local_connector, in_process) = amon_worker::InProcess::pair();
        Ok(Self {
            listener,
            tokens: config.tokens(),
            tls,
            in_process,
            local_connector,
            engine,
            mcp_allowed_hosts,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The server's TLS, to reload its certificate; `None` without TLS.
    pub fn tls(&self) -> Option<Tls> {
        self.tls.clone()
    }

    /// How a worker in this process reaches the server: through memory,
    /// past the network and TLS (see [`amon_worker::InProcess`]).
    pub fn local_connector(&self) -> amon_worker::InProcess {
        self.local_connector.clone()
    }

    /// Serves gRPC and the HTTP paths until `shutdown` completes, then lets
    /// in-flight calls finish.
    ///
    /// One router: the HTTP paths first, then each gRPC service added to it;
    /// the token layer in front of all of it decides gRPC calls by path as
    /// before and lets the HTTP paths through to their own checks.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        self.engine.spawn_background();
        let stop_mcp = tokio_util::sync::CancellationToken::new();
        let mcp = mcp::router(
            self.engine.clone(),
            mcp::McpOptions {
                tokens: self.tokens.clone(),
                allowed_hosts: self.mcp_allowed_hosts,
                stop: stop_mcp.clone(),
            },
        );
        let http = http::router(mcp, &self.engine, &self.tokens);
        let routes = grpc::add_services(Routes::from(http), self.engine).await?;
        let service = AuthLayer::new(self.tokens).layer(routes.prepare().into_axum_router());
        let shutdown = async move {
            shutdown.await;
            stop_mcp.cancel();
        };
        http::serve::serve(
            self.listener,
            self.tls,
            Some(self.in_process),
            service,
            shutdown,
        )
        .await;
        Ok(())
    }
}

/// The URL without its password, for messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _password)) => {
                    format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..])
                }
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
