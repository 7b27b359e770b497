//! `amon-server`: serves the Agent Monitor gRPC API.

use amon_server::{app::BoundServer, config::ServerConfig};
use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The local worker's AI agent panes run this executable.
    if let Some(code) = amon_worker::pane_dispatch() {
        std::process::exit(if code == std::process::ExitCode::SUCCESS {
            0
        } else {
            1
        });
    }
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

    let (stop, stopping) = tokio::sync::watch::channel(false);
    let local_worker = local_worker_options(&config, addr).map(|options| {
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            let drained = async move {
                let _ = stopping.wait_for(|stop| *stop).await;
            };
            if let Err(err) = amon_worker::run(options, drained).await {
                tracing::error!(error = %err, "the local worker stopped");
            }
        })
    });
    let mut server_stopping = stopping.clone();
    let serving = tokio::spawn(server.serve(async move {
        let _ = server_stopping.wait_for(|stop| *stop).await;
    }));
    shutdown_signal().await;
    let _ = stop.send(true);
    // The local worker drains first (its runs finish and report) while the
    // server still answers; then the server finishes its in-flight calls.
    if let Some(worker) = local_worker {
        let _ = worker.await;
    }
    serving.await??;
    tracing::info!("amon-server stopped");
    Ok(())
}

/// The in-process worker's options, unless it is turned off. It connects
/// through the same protocol as remote workers, over loopback.
fn local_worker_options(
    config: &ServerConfig,
    addr: std::net::SocketAddr,
) -> Option<amon_worker::WorkerOptions> {
    if config.no_local_worker {
        return None;
    }
    if config.tls_cert.is_some() {
        tracing::warn!(
            "no local worker with TLS on (it speaks plaintext over loopback); run amon-worker with TLS support instead"
        );
        return None;
    }
    let loopback = if addr.is_ipv6() {
        std::net::Ipv6Addr::LOCALHOST.into()
    } else {
        std::net::Ipv4Addr::LOCALHOST.into()
    };
    let mut options = amon_worker::WorkerOptions::new(format!(
        "http://{}",
        std::net::SocketAddr::new(loopback, addr.port())
    ));
    options.worker_id = format!("local-{}", options.hostname);
    options.data_dir = Some(config.data_dir().join("local-worker"));
    options.slots = config.local_worker_slots.max(1);
    options.token = config.tokens().worker;
    options.labels.insert("local".into(), "true".into());
    // Per port: servers sharing the host (and the local worker id) keep
    // their AI agents' tmux servers apart.
    options.tmux_label = Some(format!("amon-local-{}", addr.port()));
    Some(options)
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
