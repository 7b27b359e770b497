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

use std::{ffi::OsString, process::ExitCode};

use clap::{
    ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, parser::ValueSource,
};

use crate::{
    client::Ctx,
    commands::{
        agents::AgentsCmd, attach::AttachArgs, board::BoardArgs, caps::CapsCmd, deps::DepsCmd,
        events::EventsArgs, exec::ExecCmd, logs::LogsArgs, mcp::McpConfigArgs, run::ContinueArgs,
        run::RunArgs, tasks::TasksCmd, workers::WorkerConfigCmd, workers::WorkersArgs,
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
    /// Server address: https://HOST:PORT (TLS), http://HOST:PORT or HOST:PORT.
    // `--server` as for amon-worker; `--addr` (and `AMON_ADDR`, see
    // `FORMER_SERVER_ENV`), its former name, still works but is not shown.
    #[arg(
        id = "addr",
        long = "server",
        alias = "addr",
        value_name = "ADDR",
        global = true,
        env = "AMON_SERVER",
        default_value = client::DEFAULT_ADDR,
        hide_env_values = true,
        help_heading = "Global options"
    )]
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
    /// PEM certificate of the authority that signed the server's
    /// certificate (a private CA); default: the system's roots.
    #[arg(
        long,
        global = true,
        env = "AMON_CA_CERT",
        help_heading = "Global options"
    )]
    ca_cert: Option<std::path::PathBuf>,
    /// PEM client certificate, for a server that demands one (mutual TLS).
    #[arg(
        long,
        global = true,
        env = "AMON_CLIENT_CERT",
        requires = "client_key",
        help_heading = "Global options"
    )]
    client_cert: Option<std::path::PathBuf>,
    /// PEM private key of --client-cert.
    #[arg(
        long,
        global = true,
        env = "AMON_CLIENT_KEY",
        requires = "client_cert",
        help_heading = "Global options"
    )]
    client_key: Option<std::path::PathBuf>,
    /// Machine output: JSON on stdout.
    #[arg(long, global = true, help_heading = "Global options")]
    json: bool,
}

/// The former name of `AMON_SERVER`, still read when neither `--server`
/// nor `AMON_SERVER` gives the address.
const FORMER_SERVER_ENV: &str = "AMON_ADDR";

impl Cli {
    /// The command line of this process; exits on a usage error, `--help`
    /// or `--version` (as `Parser::parse`).
    fn from_command_line() -> Self {
        let mut matches = Self::command().get_matches();
        Self::from_matches(&mut matches, std::env::var_os(FORMER_SERVER_ENV))
            .unwrap_or_else(|e| e.format(&mut Self::command()).exit())
    }

    /// The arguments `matches` holds; `former_server_env` (the value of
    /// `AMON_ADDR`) is the address when only the default would give one.
    fn from_matches(
        matches: &mut ArgMatches,
        former_server_env: Option<OsString>,
    ) -> Result<Self, clap::Error> {
        let defaulted = matches.value_source("addr") == Some(ValueSource::DefaultValue);
        let mut cli = Self::from_arg_matches_mut(matches)?;
        if defaulted && let Some(addr) = former_server_env {
            cli.global.addr = addr.to_string_lossy().into_owned();
        }
        Ok(cli)
    }
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
    /// Show what a run changed in its task's git worktree (a coloured diff).
    Diff(commands::diff::DiffArgs),
    /// Attach to a running AI agent's terminal: watch it and type into it.
    Attach(AttachArgs),
    /// List workers.
    Workers(WorkersArgs),
    /// Show or change the tuning shared by all workers.
    #[command(subcommand)]
    WorkerConfig(WorkerConfigCmd),
    /// Print how to add this server's MCP endpoint (/mcp) to an MCP client
    /// (Claude Code, Codex, Gemini CLI), with the token given to amon.
    McpConfig(McpConfigArgs),
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let GlobalOpts {
        addr,
        token,
        ca_cert,
        client_cert,
        client_key,
        json,
    } = cli.global;
    let tls = amon_proto::client::ClientTls {
        ca_cert,
        client_cert,
        client_key,
    };
    let command = match cli.command {
        // Prints only: no connection needed.
        Command::McpConfig(args) => {
            print!(
                "{}",
                commands::mcp::snippet(&args, &addr, token.as_deref())?
            );
            return Ok(());
        }
        command => command,
    };
    let ctx = Ctx::connect(&addr, token.as_deref(), &tls, json).await?;
    match command {
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
        Command::Diff(args) => commands::diff::run(&ctx, args).await,
        Command::Attach(args) => commands::attach::run(&ctx, args).await,
        Command::Workers(args) => commands::workers::list(&ctx, args).await,
        Command::WorkerConfig(cmd) => commands::workers::config(&ctx, cmd).await,
        Command::McpConfig(args) => {
            print!(
                "{}",
                commands::mcp::snippet(&args, &addr, token.as_deref())?
            );
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    // Usage errors, --help and --version exit here (usage errors with 2).
    let cli = Cli::from_command_line();
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

    #[test]
    fn the_server_flag_has_two_spellings() {
        for flag in ["--server", "--addr"] {
            let before = Cli::try_parse_from(["amon", flag, "h:2", "board"]).unwrap();
            assert_eq!(before.global.addr, "h:2", "{flag}");
            let after = Cli::try_parse_from(["amon", "exec", "list", flag, "h:3"]).unwrap();
            assert_eq!(after.global.addr, "h:3", "{flag}");
        }
    }

    #[test]
    fn help_documents_server_only() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("--server <ADDR>"), "{help}");
        assert!(help.contains("AMON_SERVER"), "{help}");
        assert!(!help.contains("--addr"), "{help}");
        assert!(!help.contains("AMON_ADDR"), "{help}");
    }

    /// `Cli::from_matches` on `args`, whatever `AMON_SERVER` holds here.
    fn parse_with_former_env(args: &[&str], amon_addr: Option<&str>) -> Cli {
        let command = Cli::command().mut_arg("addr", |arg| arg.env(None));
        let mut matches = command.try_get_matches_from(args).unwrap();
        Cli::from_matches(&mut matches, amon_addr.map(OsString::from)).unwrap()
    }

    #[test]
    fn amon_addr_still_gives_the_address() {
        let cli = parse_with_former_env(&["amon", "board"], Some("old:1"));
        assert_eq!(cli.global.addr, "old:1");
        let cli = parse_with_former_env(&["amon", "board"], None);
        assert_eq!(cli.global.addr, client::DEFAULT_ADDR);
        // A flag, either spelling, wins over it.
        let cli = parse_with_former_env(&["amon", "board", "--addr", "h:1"], Some("old:1"));
        assert_eq!(cli.global.addr, "h:1");
        let cli = parse_with_former_env(&["amon", "--server", "h:2", "board"], Some("old:1"));
        assert_eq!(cli.global.addr, "h:2");
    }
}
