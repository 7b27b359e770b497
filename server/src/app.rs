//! Server assembly: opening the database and logs, building the engine, and
//! serving the gRPC services until shutdown.

use std::{future::Future, net::SocketAddr};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Identity, ServerTlsConfig};

use crate::{
    auth::{AuthLayer, Tokens},
    config::ServerConfig,
    db,
    dispatch::Engine,
    grpc,
    logs::LogStore,
    store::Store,
};

/// A server bound to its address, ready to serve.
pub struct BoundServer {
    listener: TcpListener,
    tokens: Tokens,
    tls: Option<ServerTlsConfig>,
    engine: Engine,
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
        let logs = LogStore::new(&data_dir)
            .with_context(|| format!("creating the log directory in {}", data_dir.display()))?;
        let settings = store
            .worker_config()
            .load()
            .await
            .context("loading worker config")?;
        let mut engine = Engine::new(store.clone(), logs, settings);
        engine.mcp_server_url = Some(config.mcp_url(listener.local_addr()?));
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => {
                let cert = std::fs::read(cert)
                    .with_context(|| format!("reading TLS certificate {}", cert.display()))?;
                let key = std::fs::read(key)
                    .with_context(|| format!("reading TLS key {}", key.display()))?;
                Some(ServerTlsConfig::new().identity(Identity::from_pem(cert, key)))
            }
            _ => None,
        };
        Ok(Self {
            listener,
            tokens: config.tokens(),
            tls,
            engine,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves gRPC until `shutdown` completes, then lets in-flight calls finish.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        self.engine.spawn_background();
        let routes = grpc::routes(self.engine).await?;
        let mut builder = tonic::transport::Server::builder()
            // A worker frozen (SIGSTOP) or cut off keeps its TCP stream
            // looking open; HTTP/2 pings find out within ~30 s and end it.
            .http2_keepalive_interval(Some(std::time::Duration::from_secs(20)))
            .http2_keepalive_timeout(Some(std::time::Duration::from_secs(10)));
        if let Some(tls) = self.tls {
            builder = builder.tls_config(tls).context("configuring TLS")?;
        }
        builder
            .layer(AuthLayer::new(self.tokens))
            .add_routes(routes)
            .serve_with_incoming_shutdown(incoming(self.listener), shutdown)
            .await
            .context("serving gRPC")
    }
}

/// Accepted connections with Nagle's algorithm off. Tonic sets TCP_NODELAY
/// only on listeners it binds itself; without it every small streamed message
/// (an assignment, a watch event, a log line) waited up to 40 ms for the
/// peer's delayed ACK.
fn incoming(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    TcpListenerStream::new(listener).map(|accepted| {
        if let Ok(stream) = &accepted
            && let Err(e) = stream.set_nodelay(true)
        {
            tracing::debug!(error = %e, "setting TCP_NODELAY");
        }
        accepted
    })
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
