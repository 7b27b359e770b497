//! Server assembly: state shared by the services, and serving until shutdown.

use std::{future::Future, net::SocketAddr, path::PathBuf};

use anyhow::Context;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

use crate::{config::ServerConfig, db, grpc};

/// State shared by every service.
#[derive(Clone)]
pub struct AppState {
    /// The database (SQLite or PostgreSQL).
    pub db: DatabaseConnection,
    /// Directory holding execution logs (and the SQLite file by default).
    pub data_dir: PathBuf,
}

/// A server bound to its address, ready to serve.
pub struct BoundServer {
    listener: TcpListener,
    state: AppState,
}

impl BoundServer {
    /// Opens (and migrates) the database and binds the listening socket.
    pub async fn bind(config: &ServerConfig) -> anyhow::Result<Self> {
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
        Ok(Self {
            listener,
            state: AppState { db, data_dir },
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves gRPC until `shutdown` completes, then lets in-flight calls finish.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let routes = grpc::routes(self.state).await?;
        tonic::transport::Server::builder()
            .add_routes(routes)
            .serve_with_incoming_shutdown(TcpListenerStream::new(self.listener), shutdown)
            .await
            .context("serving gRPC")
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
