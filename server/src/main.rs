//! `amon-server`: serves the Agent Monitor gRPC API.

use amon_server::{app::BoundServer, config::ServerConfig};
use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    let config = ServerConfig::parse();
    let server = BoundServer::bind(&config).await?;
    let addr = server.local_addr()?;
    // One plain line on stdout so scripts (and the tests) learn the port chosen for `:0`.
    println!("listening on {addr}");
    tracing::info!(%addr, database = %config.database_backend_name(), "amon-server ready");
    server.serve(shutdown_signal()).await?;
    tracing::info!("amon-server stopped");
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("shutdown requested; finishing in-flight calls");
}
