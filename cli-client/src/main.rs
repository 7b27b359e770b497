//! `amon`: the Agent Monitor command-line client. A thin client over the
//! `agentmonitor.v1` gRPC API: tables for people, `--json` for scripts.
//!
//! Layout: `main` (arguments, dispatch, exit), `client` (connection, auth,
//! errors and exit codes), `resolve` (slugs and id prefixes → ids), `json`
//! (Struct conversion, `--json` rendering), `table` and `board` (human
//! rendering), `enums`, `parse` and `mask` (values and field masks), and one
//! module per command group under `commands`.

mod board;
mod client;
mod commands;
mod enums;
mod json;
mod mask;
mod output;
mod parse;
mod resolve;
mod table;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::{
    client::Ctx,
    commands::{
        agents::AgentsCmd, board::BoardArgs, caps::CapsCmd, deps::DepsCmd, events::EventsArgs,
        exec::ExecCmd, logs::LogsArgs, run::ContinueArgs, run::RunArgs, tasks::TasksCmd,
        workers::WorkerConfigCmd, workers::WorkersArgs,
    },
};

const AFTER_HELP: &str = "\
References: tasks and executions by id or a prefix of at least 4 characters (as
the tables show 8); agents also by slug; capabilities also as AGENT/KEY.

Output: tables for people; with --json, a JSON document on stdout (one object
per line for `events` and `exec watch`), field names as in the protobuf API,
enums as short lowercase names (in_progress), times in RFC 3339.

Exit status: 0 success; 1 server or connection failure; 2 usage error or a
request refused for what it asked (INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS,
FAILED_PRECONDITION, PERMISSION_DENIED, UNAUTHENTICATED...). `amon run` and
`amon continue` exit with the run's result (see their --help).";

/// Agent Monitor: a task board that runs work on remote workers.
#[derive(Debug, Parser)]
#[command(name = "amon", version, after_help = AFTER_HELP, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: GlobalOpts,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
struct GlobalOpts {
    /// Server address: http://HOST:PORT or HOST:PORT.
    #[arg(long, global = true, env = "AMON_ADDR", default_value = client::DEFAULT_ADDR, hide_env_values = true, help_heading = "Global options")]
    addr: String,
    /// Bearer token sent with every call.
    #[arg(
        long,
        global = true,
        env = "AMON_TOKEN",
        hide_env_values = true,
        help_heading = "Global options"
    )]
    token: Option<String>,
    /// Machine output: JSON on stdout.
    #[arg(long, global = true, help_heading = "Global options")]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Agents: the tools and AI coding agents workers can run.
    #[command(subcommand, visible_alias = "agent")]
    Agents(AgentsCmd),
    /// Capabilities: the command or prompt templates of agents.
    #[command(subcommand, visible_alias = "cap")]
    Caps(CapsCmd),
    /// Tasks: the cards of the board.
    #[command(subcommand, visible_alias = "task")]
    Tasks(TasksCmd),
    /// Show the board: the five columns side by side.
    Board(BoardArgs),
    /// Dependencies between tasks.
    #[command(subcommand, visible_alias = "dep")]
    Deps(DepsCmd),
    /// List task events, or follow them live with -f.
    Events(EventsArgs),
    /// Run a capability for a task, stream its output, exit with its result.
    Run(RunArgs),
    /// Resume a prompt-mode run's agent session with a new prompt.
    Continue(ContinueArgs),
    /// Executions: inspect, cancel, retry, approve, watch.
    #[command(subcommand, visible_alias = "execs")]
    Exec(ExecCmd),
    /// Print an execution's output (raw bytes); -f follows it live.
    Logs(LogsArgs),
    /// List workers.
    Workers(WorkersArgs),
    /// Show or change the tuning shared by all workers.
    #[command(subcommand)]
    WorkerConfig(WorkerConfigCmd),
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let GlobalOpts { addr, token, json } = cli.global;
    let ctx = Ctx::connect(&addr, token.as_deref(), json).await?;
    match cli.command {
        Command::Agents(cmd) => commands::agents::run(&ctx, cmd).await,
        Command::Caps(cmd) => commands::caps::run(&ctx, cmd).await,
        Command::Tasks(cmd) => commands::tasks::run(&ctx, cmd).await,
        Command::Board(args) => commands::board::run(&ctx, args).await,
        Command::Deps(cmd) => commands::deps::run(&ctx, cmd).await,
        Command::Events(args) => commands::events::run(&ctx, args).await,
        Command::Run(args) => commands::run::run(&ctx, args).await,
        Command::Continue(args) => commands::run::continue_(&ctx, args).await,
        Command::Exec(cmd) => commands::exec::run(&ctx, cmd).await,
        Command::Logs(args) => commands::logs::run(&ctx, args).await,
        Command::Workers(args) => commands::workers::list(&ctx, args).await,
        Command::WorkerConfig(cmd) => commands::workers::config(&ctx, cmd).await,
    }
}

fn main() -> ExitCode {
    // Usage errors, --help and --version exit here (usage errors with 2).
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = client::normalize_addr(&cli.global.addr).unwrap_or_else(|_| cli.global.addr.clone());
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let (message, code) = client::describe(&error, &addr);
            if let Some(message) = message {
                output::note(&format!("error: {message}"));
            }
            ExitCode::from(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_go_anywhere() {
        let cli = Cli::try_parse_from([
            "amon", "tasks", "list", "--json", "--addr", "h:1", "--token", "t",
        ])
        .unwrap();
        assert!(cli.global.json);
        assert_eq!(cli.global.addr, "h:1");
        assert_eq!(cli.global.token.as_deref(), Some("t"));
    }
}
