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
    if let Some(tls) = server.tls() {
        tokio::spawn(reload_tls_on_sighup(tls));
    }
    let local_worker =
        local_worker_options(&config, addr, server.local_connector()).map(|options| {
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

/// The in-process worker's options, unless it is turned off. It speaks
/// the same protocol as remote workers, through an in-memory pipe to this
/// process's server rather than its port: no TLS to verify (with TLS on,
/// the local worker works the same), nothing on the network.
fn local_worker_options(
    config: &ServerConfig,
    addr: std::net::SocketAddr,
    connector: amon_worker::InProcess,
) -> Option<amon_worker::WorkerOptions> {
    if config.no_local_worker {
        return None;
    }
    // The URL only names the server in the worker's messages; the pipe is
    // what it dials.
    let mut options = amon_worker::WorkerOptions::new(format!("http://in-process:{}", addr.port()));
    options.in_process = Some(connector);
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

/// Reads the TLS certificate, key and client CA again on every SIGHUP
/// (certificates are renewed every few weeks; a restart is not needed).
/// A failed reload keeps the certificate in force.
async fn reload_tls_on_sighup(tls: amon_server::http::tls::Tls) {
    let mut hangups = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(hangups) => hangups,
        Err(e) => {
            tracing::warn!(error = %e, "no SIGHUP handler: TLS reload by signal is off");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        match tls.reload() {
            Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
            Err(e) => tracing::error!(
                error = format!("{e:#}"),
                "SIGHUP: TLS certificate not reloaded; the previous one stays in force"
            ),
        }
    }
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
