//! `amon run` and `amon continue`: queue a run, stream its output, exit
//! with its result.
//!
//! Exit status: the run's own exit code when it failed with one (0 when it
//! succeeded), 1 when it failed without one, 124 when it timed out (as
//! `timeout(1)`), 130 when it was cancelled or the command was interrupted
//! with Ctrl-C (the run then keeps going). Errors of `amon` itself use 1
//! and 2 as everywhere.

use std::{io::IsTerminal, time::Duration};

use amon_proto::v1::{
    ContinueExecutionRequest, CreateExecutionRequest, Execution, ExecutionStatus,
    GetExecutionRequest,
};
use clap::Args;
use serde_json::Value;

use super::{
    exec,
    logs::{self, Cursor, Sink},
    missing,
};
use crate::{
    client::{Ctx, Exit},
    enums, json, output, parse, resolve,
};

const RUN_HELP: &str = "\
The run's output goes to standard output byte for byte; with --json it goes to
standard error and the finished execution is printed as JSON on standard output.

Exit status: the run's exit code (0 when it succeeded), 1 when it failed without
one, 124 when it timed out, 130 when it was cancelled or on Ctrl-C (the run keeps
going on its worker: `amon logs -f` follows it again, `amon exec cancel` stops it).

--arg k=v values are JSON when they parse as JSON (n=42, flag=true), otherwise
strings; they are merged over the task's own args.";

/// `amon run`.
#[derive(Debug, Args)]
#[command(after_help = RUN_HELP)]
pub struct RunArgs {
    /// Task id or id prefix.
    pub task: String,
    /// Capability: id, id prefix, AGENT/KEY (git/log) or a key only one agent has.
    pub capability: String,
    /// Argument of the run (repeat).
    #[arg(long = "arg", value_name = "KEY=VALUE", value_parser = parse::key_json_value)]
    pub args: Vec<(String, Value)>,
    /// Automatic retries after a failure or timeout (0-10).
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(i32).range(0..=10))]
    pub max_retries: i32,
    /// Queue it and print the execution; do not wait.
    #[arg(long, short = 'd')]
    pub detach: bool,
}

/// `amon continue`.
#[derive(Debug, Args)]
#[command(after_help = RUN_HELP)]
pub struct ContinueArgs {
    /// The prompt-mode execution whose agent session to resume (id or id prefix).
    pub execution: String,
    /// The follow-up prompt.
    pub prompt: String,
    /// Queue it and print the execution; do not wait.
    #[arg(long, short = 'd')]
    pub detach: bool,
}

/// Runs `amon run`.
pub async fn run(ctx: &Ctx, args: RunArgs) -> anyhow::Result<()> {
    let task_id = resolve::task_id(ctx, &args.task).await?;
    let capability_id = resolve::capability_id(ctx, &args.capability).await?;
    let response = ctx
        .executions()
        .create_execution(CreateExecutionRequest {
            task_id,
            capability_id,
            args: (!args.args.is_empty()).then(|| json::pairs_to_struct(&args.args)),
            max_retries: args.max_retries,
        })
        .await?
        .into_inner();
    let execution = response.execution.ok_or_else(|| missing("execution"))?;
    attach(ctx, execution, args.detach).await
}

/// Runs `amon continue`.
pub async fn continue_(ctx: &Ctx, args: ContinueArgs) -> anyhow::Result<()> {
    let id = resolve::execution_id(ctx, &args.execution).await?;
    let response = ctx
        .executions()
        .continue_execution(ContinueExecutionRequest {
            id,
            prompt: args.prompt,
        })
        .await?
        .into_inner();
    let execution = response.execution.ok_or_else(|| missing("execution"))?;
    attach(ctx, execution, args.detach).await
}

/// Prints a queued execution (detached), or follows it to its end.
async fn attach(ctx: &Ctx, execution: Execution, detach: bool) -> anyhow::Result<()> {
    if detach {
        return exec::print_one(ctx, Some(execution)).await;
    }
    let id = execution.id.clone();
    if std::io::stderr().is_terminal() {
        output::note(&format!("amon: execution {id} queued"));
    }
    let sink = if ctx.json { Sink::Stderr } else { Sink::Stdout };
    let finished = tokio::select! {
        finished = follow_to_end(ctx, &id, sink) => finished?,
        _ = tokio::signal::ctrl_c() => {
            output::note(&format!(
                "\namon: detached; execution {id} keeps running \
                 (amon logs -f {id} to follow it, amon exec cancel {id} to stop it)"
            ));
            return Err(Exit(130).into());
        }
    };
    if ctx.json {
        output::json(&json::execution(&finished))?;
    }
    let code = exit_code(&finished);
    if code != 0 {
        let status = enums::display::<ExecutionStatus>(finished.status);
        let mut message = format!("amon: execution {id} {status}");
        if let Some(exit) = finished.exit_code {
            message.push_str(&format!(" (exit code {exit})"));
        }
        if let Some(error) = finished.error.as_deref().filter(|e| !e.is_empty()) {
            message.push_str(&format!(": {error}"));
        }
        output::note(&message);
        return Err(Exit(code).into());
    }
    Ok(())
}

/// Whether a status is final.
fn is_final(status: i32) -> bool {
    [
        ExecutionStatus::Succeeded,
        ExecutionStatus::Failed,
        ExecutionStatus::Cancelled,
        ExecutionStatus::TimedOut,
    ]
    .iter()
    .any(|s| *s as i32 == status)
}

/// Streams the output of `id` until the execution has reached a final
/// status, and returns it. A log stream that ends early (a retry queued
/// the run again, the server restarted the stream) is opened again from
/// the last byte received.
async fn follow_to_end(ctx: &Ctx, id: &str, sink: Sink) -> anyhow::Result<Execution> {
    let mut cursor = Cursor::new(0);
    let mut final_rounds = 0;
    loop {
        logs::stream(ctx, id, &mut cursor, true, sink).await?;
        let execution = ctx
            .executions()
            .get_execution(GetExecutionRequest { id: id.to_string() })
            .await?
            .into_inner()
            .execution
            .ok_or_else(|| missing("execution"))?;
        if is_final(execution.status) {
            // Normally every byte has been sent by now; a server that
            // stores more than it streams gets two more tries, not a hang.
            final_rounds += 1;
            if cursor.next() >= execution.log_byte_size || final_rounds > 2 {
                return Ok(execution);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The exit status of `amon run` for a finished execution.
pub fn exit_code(execution: &Execution) -> u8 {
    match ExecutionStatus::try_from(execution.status) {
        Ok(ExecutionStatus::Succeeded) => 0,
        Ok(ExecutionStatus::TimedOut) => 124,
        Ok(ExecutionStatus::Cancelled) => 130,
        Ok(ExecutionStatus::Failed) => match execution.exit_code {
            Some(code) if (1..=255).contains(&code) => code as u8,
            _ => 1,
        },
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(status: ExecutionStatus, exit_code: Option<i32>) -> Execution {
        Execution {
            status: status as i32,
            exit_code,
            ..Default::default()
        }
    }

    #[test]
    fn exit_codes_follow_the_run() {
        assert_eq!(exit_code(&finished(ExecutionStatus::Succeeded, Some(0))), 0);
        assert_eq!(exit_code(&finished(ExecutionStatus::Failed, Some(3))), 3);
        assert_eq!(exit_code(&finished(ExecutionStatus::Failed, None)), 1);
        assert_eq!(exit_code(&finished(ExecutionStatus::Failed, Some(0))), 1);
        assert_eq!(exit_code(&finished(ExecutionStatus::Failed, Some(-9))), 1);
        assert_eq!(exit_code(&finished(ExecutionStatus::Failed, Some(300))), 1);
        assert_eq!(exit_code(&finished(ExecutionStatus::TimedOut, None)), 124);
        assert_eq!(
            exit_code(&finished(ExecutionStatus::Cancelled, Some(143))),
            130
        );
        assert_eq!(exit_code(&finished(ExecutionStatus::Running, None)), 1);
    }

    #[test]
    fn final_statuses() {
        assert!(is_final(ExecutionStatus::Succeeded as i32));
        assert!(is_final(ExecutionStatus::TimedOut as i32));
        assert!(!is_final(ExecutionStatus::Queued as i32));
        assert!(!is_final(ExecutionStatus::Cancelling as i32));
        assert!(!is_final(0));
    }
}
