//! Turning a claimed run into the [`Assignment`] a worker starts it from.

use std::time::Duration;

use chrono::Utc;

use super::{
    Engine,
    messages::{Assignment, WorktreeAssignment},
};
use crate::{
    entity::enums::InteractionMode,
    store::{
        columns::InputContext, columns::strings, executions::render_argv, runs::ClaimedRun,
        worktrees::Isolation,
    },
};

/// The assignment of `run`. Writes the attempt header into the log first when
/// this is a retry, so each attempt's output stays readable on its own.
pub async fn assignment(
    engine: &Engine,
    run: &ClaimedRun,
    worker_id: &str,
) -> Result<Assignment, String> {
    let execution = &run.execution;
    // Prompt mode: the CLI and its base args (a prompt-mode capability has
    // no tokens); the worker's adapter adds the protocol's own.
    let argv =
        render_argv(&run.agent, &run.capability, &execution.args).map_err(|e| e.to_string())?;
    let (resume_session_ref, tmux_session_name) = match execution.mode {
        InteractionMode::Template => (None, None),
        InteractionMode::Prompt => (
            run.parent_session_ref.clone(),
            Some(tmux_session_name(execution.id, execution.retry_count)),
        ),
    };
    let mcp_server_url = engine
        .mcp_server_url
        .clone()
        .filter(|_| run.agent.mcp_enabled && execution.mode == InteractionMode::Prompt);
    // Issued here, at the claim, for this attempt only: the MCP server
    // checks it against the run on every request, so it stops working when
    // the run ends or is requeued.
    let mcp_token = mcp_server_url
        .as_ref()
        .and_then(|_| engine.store.executions().run_token(execution));
    // A first attempt has no log yet (every requeue counts an attempt, and
    // a retry asked by a person is a new execution): nothing to read.
    let mut log = if execution.retry_count == 0 {
        crate::logs::LogSize::default()
    } else {
        engine
            .logs
            .size(execution.id)
            .await
            .map_err(|e| format!("opening the log: {e}"))?
    };
    if log.bytes > 0 || execution.retry_count > 0 {
        let header = format!(
            "{}=== amon: attempt {} on worker {worker_id} at {} ===\n",
            if log.bytes > 0 { "\n" } else { "" },
            execution.retry_count + 1,
            Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        );
        log = engine
            .logs
            .append(execution.id, log.bytes, header.as_bytes())
            .await
            .map_err(|e| format!("writing the log: {e}"))?
            .stored()
            .await
            .map_err(|e| format!("writing the log: {e}"))?;
    }
    engine.logs.attempt_starts(execution.id, log).await;
    let log_offset = log.bytes;
    let context = InputContext::from_json(&run.task.input_context);
    let working_dir = context
        .working_dir
        .clone()
        .or_else(|| run.agent.working_dir.clone())
        .unwrap_or_default();
    let worktree = Isolation::worktree(&context, &run.agent).then(|| WorktreeAssignment {
        branch: task_branch(run.task.id, &run.task.title),
        base_ref: context.base_ref.clone().unwrap_or_default(),
    });
    Ok(Assignment {
        execution_id: execution.id,
        attempt_token: run.attempt_token.clone(),
        task_id: execution.task_id,
        agent: run.agent.clone(),
        mode: execution.mode,
        argv,
        prompt: execution.prompt.clone(),
        working_dir,
        env: context.env_overrides,
        env_allowlist: strings(&run.agent.env_allowlist),
        timeout: Duration::from_secs(u64::try_from(run.capability.timeout_sec).unwrap_or(0)),
        max_output_bytes: i64::from(run.capability.max_output_bytes),
        attempt: execution.retry_count,
        resume_session_ref,
        tmux_session_name,
        log_offset,
        mcp_server_url,
        mcp_token,
        worktree,
    })
}

/// Most characters of a task's title in its branch name.
const BRANCH_SLUG_CHARS: usize = 40;

/// The branch of a task's worktree: `amon/<first 8 hex of its id>-<slug of
/// its title>`, the id part keeping two tasks of one title apart.
pub fn task_branch(task_id: uuid::Uuid, title: &str) -> String {
    let mut slug = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
        if slug.len() >= BRANCH_SLUG_CHARS {
            break;
        }
    }
    let slug = slug.trim_end_matches('-');
    let short = &task_id.simple().to_string()[..8];
    if slug.is_empty() {
        format!("amon/{short}")
    } else {
        format!("amon/{short}-{slug}")
    }
}

/// The tmux session of an AI agent run: the execution id, and the attempt
/// after the first (a retry may land on the worker that ran the first).
pub fn tmux_session_name(execution_id: uuid::Uuid, retry_count: i32) -> String {
    match retry_count {
        0 => format!("amon-{execution_id}"),
        n => format!("amon-{execution_id}-{}", n + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::task_branch;

    #[test]
    fn a_branch_is_named_after_the_task() {
        let id = uuid::Uuid::parse_str("0123abcd-0000-4000-8000-000000000000").unwrap();
        assert_eq!(
            task_branch(id, "Fix the login: bug #12!"),
            "amon/0123abcd-fix-the-login-bug-12"
        );
        assert_eq!(task_branch(id, "…"), "amon/0123abcd");
        assert_eq!(
            task_branch(id, &"x".repeat(100)),
            format!("amon/0123abcd-{}", "x".repeat(40))
        );
    }
}
