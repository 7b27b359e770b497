//! `amon exec`: executions (runs of capabilities for tasks) and their control.

use amon_proto::v1::{
    ApproveExecutionRequest, CancelExecutionRequest, Execution, ExecutionStatus,
    GetExecutionRequest, ListExecutionsRequest, RetryExecutionRequest, WatchExecutionsRequest,
};
use clap::{Args, Subcommand};
use serde_json::Value;

use super::{missing, show, show_list, until_ctrl_c};
use crate::{
    client::{Ctx, PAGE_SIZE},
    enums, json, output, resolve,
    table::{self, AgentNames},
};

/// Executions: inspect and control runs. EXECUTION arguments accept an id or
/// an id prefix of at least 4 characters.
#[derive(Debug, Subcommand)]
pub enum ExecCmd {
    /// Show one execution, with the executions it continues.
    #[command(visible_alias = "show")]
    Get {
        /// Execution id or id prefix.
        execution: String,
    },
    /// List executions, newest first.
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Cancel an execution (a running one stops through `cancelling`).
    Cancel {
        /// Execution id or id prefix.
        execution: String,
        /// Why, recorded in the task's events.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Queue a finished execution again, as a new execution.
    Retry {
        /// Execution id or id prefix.
        execution: String,
    },
    /// Approve a queued execution of a capability that requires approval.
    Approve {
        /// Execution id or id prefix.
        execution: String,
    },
    /// Stream executions as their status changes, until Ctrl-C (NDJSON with --json).
    Watch(WatchArgs),
}

/// `amon exec list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only executions of this task (id or id prefix).
    #[arg(long, value_name = "TASK")]
    pub task: Option<String>,
    /// Only executions with this status.
    #[arg(long, value_parser = enums::parser::<ExecutionStatus>())]
    pub status: Option<ExecutionStatus>,
    /// Only executions of this agent (id, id prefix or slug).
    #[arg(long, value_name = "AGENT")]
    pub agent: Option<String>,
    /// Only executions run by this worker.
    #[arg(long, value_name = "WORKER_ID")]
    pub worker: Option<String>,
    /// At most this many (the newest); default: all.
    #[arg(long, short = 'n', value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: Option<u32>,
}

/// `amon exec watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Only executions of this task (id or id prefix).
    #[arg(long, value_name = "TASK")]
    pub task: Option<String>,
    /// Only this execution (id or id prefix).
    #[arg(long, value_name = "EXECUTION")]
    pub execution: Option<String>,
}

/// Runs `amon exec …`.
pub async fn run(ctx: &Ctx, cmd: ExecCmd) -> anyhow::Result<()> {
    match cmd {
        ExecCmd::Get { execution } => {
            let id = resolve::execution_id(ctx, &execution).await?;
            let response = ctx
                .executions()
                .get_execution(GetExecutionRequest { id })
                .await?
                .into_inner();
            let execution = response.execution.ok_or_else(|| missing("execution"))?;
            let ancestors = response.ancestor_execution_ids;
            let names = names_for(ctx).await;
            show(
                ctx,
                || {
                    // The execution, with the response's continuation chain
                    // as one more field, so `.status` works like elsewhere.
                    let mut value = json::execution(&execution);
                    if let Value::Object(map) = &mut value {
                        map.insert("ancestor_execution_ids".into(), ancestors.clone().into());
                    }
                    value
                },
                || table::execution(&execution, &ancestors, &names),
            )
        }
        ExecCmd::List(args) => {
            let task_id = resolve::opt_task_id(ctx, args.task.as_deref())
                .await?
                .unwrap_or_default();
            let agent_id = match &args.agent {
                Some(agent) => resolve::agent_id(ctx, agent).await?,
                None => String::new(),
            };
            let request = ListExecutionsRequest {
                page_size: PAGE_SIZE,
                page_token: String::new(),
                task_id,
                status: args.status.map(|s| s as i32).unwrap_or_default(),
                agent_id,
                worker_id: args.worker.clone().unwrap_or_default(),
            };
            let executions = list(ctx, request, args.limit.map(|n| n as usize)).await?;
            let names = if executions.is_empty() {
                AgentNames::new()
            } else {
                names_for(ctx).await
            };
            show_list(
                ctx,
                executions.iter().map(json::execution).collect(),
                "executions",
                || table::executions(&executions, &names),
            )
        }
        ExecCmd::Cancel { execution, reason } => {
            let id = resolve::execution_id(ctx, &execution).await?;
            let response = ctx
                .executions()
                .cancel_execution(CancelExecutionRequest { id, reason })
                .await?
                .into_inner();
            print_one(ctx, response.execution).await
        }
        ExecCmd::Retry { execution } => {
            let id = resolve::execution_id(ctx, &execution).await?;
            let response = ctx
                .executions()
                .retry_execution(RetryExecutionRequest { id })
                .await?
                .into_inner();
            print_one(ctx, response.execution).await
        }
        ExecCmd::Approve { execution } => {
            let id = resolve::execution_id(ctx, &execution).await?;
            let response = ctx
                .executions()
                .approve_execution(ApproveExecutionRequest { id })
                .await?
                .into_inner();
            print_one(ctx, response.execution).await
        }
        ExecCmd::Watch(args) => watch(ctx, args).await,
    }
}

/// Agent names for human output; none needed with `--json`.
async fn names_for(ctx: &Ctx) -> AgentNames {
    if ctx.json {
        AgentNames::new()
    } else {
        resolve::agent_names(ctx).await
    }
}

/// Prints the execution a control RPC answered with.
pub async fn print_one(ctx: &Ctx, execution: Option<Execution>) -> anyhow::Result<()> {
    let execution = execution.ok_or_else(|| missing("execution"))?;
    let names = names_for(ctx).await;
    show(
        ctx,
        || json::execution(&execution),
        || table::execution(&execution, &[], &names),
    )
}

/// Every execution `request` matches, at most `limit`.
async fn list(
    ctx: &Ctx,
    mut request: ListExecutionsRequest,
    limit: Option<usize>,
) -> anyhow::Result<Vec<Execution>> {
    let mut client = ctx.executions();
    let mut executions = Vec::new();
    loop {
        if let Some(limit) = limit {
            let left = limit.saturating_sub(executions.len());
            request.page_size = i32::try_from(left).unwrap_or(PAGE_SIZE).min(PAGE_SIZE);
        }
        let response = client.list_executions(request.clone()).await?.into_inner();
        executions.extend(response.executions);
        if let Some(limit) = limit
            && executions.len() >= limit
        {
            executions.truncate(limit);
            return Ok(executions);
        }
        if response.next_page_token.is_empty() || response.next_page_token == request.page_token {
            return Ok(executions);
        }
        request.page_token = response.next_page_token;
    }
}

/// One line per status change for people: when it was seen, the
/// execution, its status, task and agent, then its exit code and error.
fn watch_line(e: &Execution, names: &AgentNames) -> String {
    let mut line = format!(
        "{} {} {} task={} agent={}",
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        e.id,
        enums::display::<ExecutionStatus>(e.status),
        table::short_id(&e.task_id),
        names
            .get(&e.agent_id)
            .cloned()
            .unwrap_or_else(|| table::short_id(&e.agent_id)),
    );
    if let Some(code) = e.exit_code {
        line.push_str(&format!(" exit={code}"));
    }
    if let Some(error) = &e.error {
        line.push_str(&format!(" error={error:?}"));
    }
    line
}

async fn watch(ctx: &Ctx, args: WatchArgs) -> anyhow::Result<()> {
    let task_id = resolve::opt_task_id(ctx, args.task.as_deref())
        .await?
        .unwrap_or_default();
    let execution_id = match &args.execution {
        Some(e) => resolve::execution_id(ctx, e).await?,
        None => String::new(),
    };
    let names = names_for(ctx).await;
    let stream = ctx
        .executions()
        .watch_executions(WatchExecutionsRequest {
            task_id,
            execution_id,
        })
        .await?
        .into_inner();
    // Ctrl-C and the end of the stream both end the command with success.
    until_ctrl_c(stream, |response| match response.execution {
        Some(e) if ctx.json => output::json_line(&json::execution(&e)),
        Some(e) => output::line(&watch_line(&e, &names)),
        None => Ok(()),
    })
    .await?;
    Ok(())
}
