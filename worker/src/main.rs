//! `amon-worker`: the worker binary, a thin wrapper around the library.

use std::process::ExitCode;

use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{error, info, warn};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    if let Some(code) = amon_worker::pane_dispatch() {
        return code;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    let options = match amon_worker::Cli::parse().into_options() {
        Ok(options) => options,
        Err(e) => {
            error!("{e:#}");
            return ExitCode::from(2);
        }
    };

    // Install the handlers before anything runs, so no signal is missed.
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(term), Ok(int)) => (term, int),
        (Err(e), _) | (_, Err(e)) => {
            error!("installing signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    // First SIGTERM/SIGINT: drain. Second: leave at once.
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => info!("SIGTERM: draining"),
            _ = int.recv() => info!("SIGINT: draining"),
        }
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            warn!("second signal: killing the runs and exiting without reporting them");
            amon_worker::kill_all_runs();
            std::process::exit(130);
        });
    };

    match amon_worker::run(options, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
