//! Agent Monitor worker: connects to the server's `WorkerService.Connect`
//! stream, takes assignments, runs them as child processes and streams their
//! output back.
//!
//! The library is what the `amon-worker` binary wraps, so a server (or a
//! test) can embed a worker in-process:
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let mut options = amon_worker::WorkerOptions::new("http://127.0.0.1:50051");
//! options.slots = 4;
//! // Completing the future starts the drain; `run` returns once it is over.
//! amon_worker::run(options, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
//!
//! Layout: [`config`] (options, command line, runtime tuning),
//! `connection` (the event loop: wires `link`, `ledger` and `run::launch`),
//! `link` (the stream to the server: connect, register, reconnect with
//! backoff, heartbeat timer, close), `ledger` (the runs held and what the
//! server still has to be told: chunks, finishes, acks, slots, drain; no
//! I/O), `transport` (channel, bearer token, backoff), `run` (one run:
//! `launch` starts its supervisor, `lifecycle` times it out, stops and ends
//! it whatever its kind, `process` spawns a plain child, `agent` runs an AI
//! agent in tmux, `output` keeps its log until it is stored, `adapter` turns
//! an assignment into what to run), `env` (the child's environment and
//! binary resolution), `timer` (an optional deadline in a `select!`),
//! `terminal` (remote viewers attached to runs' tmux sessions),
//! [`discover`] (what tools this machine has: discovery scans the server
//! asks for, one module per source).

pub mod config;
mod connection;
pub mod discover;
mod env;
mod ledger;
mod link;
mod run;
mod terminal;
mod timer;
mod transport;
mod worktree;

use std::future::Future;

pub use config::{Cli, RuntimeConfig, WorkerOptions};
pub use transport::InProcess;

/// Runs the worker's internal subcommands (the tmux pane runner of AI agent
/// runs) when this process was started as one, and returns its exit code.
/// Any binary that runs a worker calls it first thing in `main`, since the
/// pane runner is the worker's own executable.
pub fn pane_dispatch() -> Option<std::process::ExitCode> {
    let mut args = std::env::args_os().skip(1);
    let command = args.next()?;
    run::keeper::dispatch(&command, args).or_else(run::pane::dispatch_from_args)
}

/// SIGKILLs the process group of every run still going. For a hard exit
/// (`std::process::exit` runs no destructors); `run` itself never leaves
/// children behind when its runtime shuts down.
pub fn kill_all_runs() {
    run::lifecycle::kill_all_groups();
}

/// Runs a worker until `shutdown` completes and the drain that follows is
/// over: no new work, running children finish (cancelled after
/// `options.drain_timeout`), and every result is stored by the server.
///
/// Connection failures never end it: it reconnects with backoff and keeps
/// its runs meanwhile. It fails on invalid options (server URL, token), or
/// when a drain cannot deliver its results (30 s after the drain timeout
/// cancelled the runs).
pub async fn run(options: WorkerOptions, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    connection::run_worker(options, shutdown).await
}
