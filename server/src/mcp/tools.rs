//! The tools. Each parses its input, calls the store (the same methods the
//! gRPC services call, with the caller's actor), and answers JSON; a
//! failure is a tool error naming what is wrong.

use rmcp::{
    model::{CallToolResult, ContentBlock},
    tool, tool_router,
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    McpServer,
    args::{self, Parameters, id, optional_id},
    auth::Caller,
    view,
};
use crate::{
    entity::{agent_capabilities, agents, enums::ExecutionStatus, tasks},
    store::{
        StoreError, StoreResult,
        agents::AgentFilter,
        board::Position,
        capabilities::CapabilityFilter,
        execution_state::is_terminal,
        executions::{ExecutionFilter, NewExecution},
        page::PageRequest,
        tasks::{BOARD_COLUMNS, TaskDraft, TaskFilter, TaskPatch, status_name},
    },
};

/// Bytes `read_log` returns when not told.
const READ_LOG_DEFAULT: u32 = 16 * 1024;
/// Bytes of diff `get_execution_diff` returns when not told.
const DIFF_DEFAULT: u32 = 64 * 1024;
/// Most bytes one `read_log` (or `get_execution_diff`) returns: a model's
/// context is the limit, and more is one call away.
const READ_LOG_MAX: u32 = 256 * 1024;
/// Subtasks, dependencies and per-column tasks shown by `get_context` and
/// `get_task`.
const CONTEXT_ITEMS: u64 = 50;
/// Agents and capabilities listed (a board has tens, not hundreds).
const CATALOG_ITEMS: u64 = 500;
/// Executions of a task shown by `get_task`.
const TASK_EXECUTIONS: u64 = 10;

/// A tool's outcome before it becomes a tool result.
type Answer = StoreResult<Value>;

/// The tool result of `answer`: its JSON (as text and as structured
/// content), or a tool error a model can act on.
fn reply(answer: Answer) -> CallToolResult {
    match answer {
        Ok(value) => CallToolResult::structured(value),
        Err(err) => CallToolResult::error(vec![ContentBlock::text(error_text(err))]),
    }
}

/// Longest tool error text: the store's messages may quote what was sent
/// (up to 256 KiB), and a model needs the field and the reason, not its own
/// input read back.
const MAX_ERROR_BYTES: usize = 4096;

/// The text of a tool error: what kind of failure, then the store's own
/// message, which names the field or the record.
fn error_text(err: StoreError) -> String {
    crate::store::validate::cut_to_bytes(error_text_whole(err), MAX_ERROR_BYTES)
}

fn error_text_whole(err: StoreError) -> String {
    match err {
        StoreError::InvalidArgument { field, message } => {
            // The store names fields as the gRPC requests nest them
            // (`task.title`); the tools take them at the top level.
            let field = field.strip_prefix("task.").unwrap_or(&field);
            format!("invalid argument: {field}: {message}")
        }
        StoreError::NotFound { .. } => format!("not found: {err}"),
        StoreError::AlreadyExists(message) => format!("already exists: {message}"),
        StoreError::FailedPrecondition(message) => format!("not possible now: {message}"),
        StoreError::Database(db_err) => {
            tracing::error!(error = %db_err, "database error in an MCP tool");
            "internal database error: nothing was changed; try again".into()
        }
        StoreError::Internal(message) => {
            tracing::error!(error = %message, "internal error in an MCP tool");
            format!("internal error: {message}")
        }
    }
}

fn first(limit: u64) -> PageRequest {
    PageRequest { offset: 0, limit }
}

/// The `max_bytes` a reading tool was given (`default` when not): 1 to
/// [`READ_LOG_MAX`].
fn max_bytes(given: Option<u32>, default: u32) -> StoreResult<u32> {
    let max = given.unwrap_or(default);
    if max == 0 || max > READ_LOG_MAX {
        return Err(StoreError::invalid(
            "max_bytes",
            format!("must be between 1 and {READ_LOG_MAX}"),
        ));
    }
    Ok(max)
}

/// Drops the start of a character cut off by the end of `bytes` (unless
/// that is all there is), so a reply never splits a character.
fn cut_to_whole_characters(bytes: &mut Vec<u8>) {
    let tail = incomplete_tail(bytes);
    if tail < bytes.len() {
        bytes.truncate(bytes.len() - tail);
    }
}

/// How many trailing bytes of `bytes` are the start of a character cut off
/// by the end of the slice (0 when it ends on a whole character).
fn incomplete_tail(bytes: &[u8]) -> usize {
    for back in 1..=bytes.len().min(4) {
        let byte = bytes[bytes.len() - back];
        if byte & 0xC0 != 0x80 {
            let length = match byte {
                0xC0..=0xDF => 2,
                0xE0..=0xEF => 3,
                0xF0..=0xF7 => 4,
                _ => 1,
            };
            return if length > back { back } else { 0 };
        }
    }
    0
}

#[tool_router(vis = "pub(super)")]
impl McpServer {
    #[tool(
        description = "Where you are. Called by an agent the board started: your own task (with its \
        description and input), its parent task, its subtasks, the tasks it depends on and those \
        depending on it, your execution and the capability it runs. Called from a person's client: \
        the board in brief (tasks per column, agents, running executions). Start here.",
        annotations(read_only_hint = true)
    )]
    async fn get_context(&self, caller: Caller) -> CallToolResult {
        reply(match caller {
            Caller::Run(run) => self.run_context(run.execution_id).await,
            Caller::Person => self.workspace_context().await,
        })
    }

    #[tool(
        description = "Lists tasks, oldest first, with their descriptions cut short (get_task \
        shows one whole). Filter by column (status), parent task, assignee (an agent's id or \
        slug) or text in the title or description; all filters combine. Answers \
        next_page_token when more tasks match: pass it back as page_token.",
        annotations(read_only_hint = true)
    )]
    async fn list_tasks(&self, Parameters(input): Parameters<args::ListTasks>) -> CallToolResult {
        reply(self.list_tasks_answer(input).await)
    }

    #[tool(
        description = "One task, whole: title, description, status, priority, parent, assignee, \
        due date, input context; with its subtasks, its dependencies (both ways) and its latest \
        executions.",
        annotations(read_only_hint = true)
    )]
    async fn get_task(&self, Parameters(input): Parameters<args::GetTask>) -> CallToolResult {
        reply(async { self.task_answer(id("task_id", &input.task_id)?).await }.await)
    }

    #[tool(
        description = "Files a new task at the bottom of the todo column. Called by an agent \
        the board started, it becomes a subtask of your own task unless you give \
        parent_task_id or top_level: true. Recorded on the task's audit trail as yours. Answers \
        the task, with its id.",
        annotations(destructive_hint = false, idempotent_hint = false)
    )]
    async fn create_task(
        &self,
        caller: Caller,
        Parameters(input): Parameters<args::CreateTask>,
    ) -> CallToolResult {
        reply(self.create_task_answer(caller, input).await)
    }

    #[tool(
        description = "Changes a task's title, description, priority (1 most urgent to 5), due \
        date or assignee. Give only what changes; null clears a description, due date or \
        assignee. To change its column use move_task.",
        annotations(destructive_hint = false, idempotent_hint = true)
    )]
    async fn update_task(
        &self,
        caller: Caller,
        Parameters(input): Parameters<args::UpdateTask>,
    ) -> CallToolResult {
        reply(self.update_task_answer(caller, input).await)
    }

    #[tool(
        description = "Moves a task to another column (todo, in_progress, blocked, done, \
        cancelled) and/or another place in it: right after after_task_id, right before \
        before_task_id, or at the top when neither is given. A task's column also follows its \
        runs on its own (running: in_progress, succeeded: done).",
        annotations(destructive_hint = false, idempotent_hint = true)
    )]
    async fn move_task(
        &self,
        caller: Caller,
        Parameters(input): Parameters<args::MoveTask>,
    ) -> CallToolResult {
        reply(self.move_task_answer(caller, input).await)
    }

    #[tool(
        description = "Makes task_id wait for depends_on_task_id: runs of task_id are not \
        started until depends_on_task_id is done. Refused when it would close a cycle (the \
        error shows the cycle).",
        annotations(destructive_hint = false, idempotent_hint = false)
    )]
    async fn add_dependency(
        &self,
        caller: Caller,
        Parameters(input): Parameters<args::AddDependency>,
    ) -> CallToolResult {
        reply(
            async {
                let task_id = id("task_id", &input.task_id)?;
                let depends_on = id("depends_on_task_id", &input.depends_on_task_id)?;
                let edge = self
                    .engine
                    .store
                    .dependencies()
                    .add(task_id, depends_on, caller.actor())
                    .await?;
                Ok(json!({ "dependency": view::dependency(&edge) }))
            }
            .await,
        )
    }

    #[tool(
        description = "Adds a note to a task's audit trail: progress, a finding, a question for \
        a person. Everyone watching the board sees it at once. Called by an agent the board \
        started, it goes on your own task unless you give task_id.",
        annotations(destructive_hint = false, idempotent_hint = false)
    )]
    async fn add_comment(
        &self,
        caller: Caller,
        Parameters(input): Parameters<args::AddComment>,
    ) -> CallToolResult {
        reply(
            async {
                let task_id = self.task_or_own(&caller, input.task_id.as_deref())?;
                let event = self
                    .engine
                    .store
                    .events()
                    .comment(task_id, &input.text, caller.actor())
                    .await?;
                Ok(json!({ "event": view::event(&event) }))
            }
            .await,
        )
    }

    #[tool(
        description = "The agents the board can run (command-line tools and AI coding agents), \
        each with its capabilities in brief (\"<agent>/<key>\", label, whether a person must \
        approve each run, how dangerous it is). list_capabilities gives their argument schemas.",
        annotations(read_only_hint = true)
    )]
    async fn list_agents(&self) -> CallToolResult {
        reply(self.list_agents_answer().await)
    }

    #[tool(
        description = "Capabilities: what agents can be asked to run, each with its reference \
        (\"<agent>/<key>\", what run_capability takes), description, args_schema (the JSON \
        Schema its args must satisfy), requires_approval and danger level. All agents', or one \
        agent's (its id or slug).",
        annotations(read_only_hint = true)
    )]
    async fn list_capabilities(
        &self,
        Parameters(input): Parameters<args::ListCapabilities>,
    ) -> CallToolResult {
        reply(self.list_capabilities_answer(input).await)
    }

    #[tool(
        description = "Starts work: queues a run (an execution) of a capability for a task, \
        with args checked against the capability's args_schema, under the same rules as any \
        client's. Workers pick it up at once unless the task waits on dependencies or the \
        capability requires a person's approval (then pass await_approval: true, and it waits \
        until approved). Answers the execution; follow it with get_execution and read its \
        output with read_log.",
        annotations(
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn run_capability(
        &self,
        caller: Caller,
        Parameters(input): Parameters<args::RunCapability>,
    ) -> CallToolResult {
        reply(self.run_capability_answer(caller, input).await)
    }

    #[tool(
        description = "One execution (a run of a capability for a task): status (queued, \
        running, cancelling, succeeded, failed, cancelled, timed_out), exit code, error, times, \
        how much output it has logged (log_byte_size), and the runs it continues.",
        annotations(read_only_hint = true)
    )]
    async fn get_execution(
        &self,
        Parameters(input): Parameters<args::GetExecution>,
    ) -> CallToolResult {
        reply(
            async {
                self.execution_answer(id("execution_id", &input.execution_id)?)
                    .await
            }
            .await,
        )
    }

    #[tool(
        description = "What a run changed, for runs of tasks with git worktree isolation: the \
        unified diff of its task's worktree (from the base the worktree started at to the \
        state the run left), asked of the worker that holds it, up to max_bytes (truncated says \
        when cut), with the recorded summary (branch, commits, files with added and removed \
        lines, whether uncommitted changes remain). get_execution gives the summary alone.",
        annotations(read_only_hint = true)
    )]
    async fn get_execution_diff(
        &self,
        Parameters(input): Parameters<args::GetExecutionDiff>,
    ) -> CallToolResult {
        reply(self.execution_diff_answer(input).await)
    }

    #[tool(
        description = "Reads an execution's output log: up to max_bytes from offset (a \
        negative offset counts from the end), as text (invalid UTF-8 replaced). Answers \
        next_offset to continue from; at_end is true once the run has ended and everything has \
        been read. While the run goes on, call again with next_offset for more.",
        annotations(read_only_hint = true)
    )]
    async fn read_log(&self, Parameters(input): Parameters<args::ReadLog>) -> CallToolResult {
        reply(self.read_log_answer(input).await)
    }
}

impl McpServer {
    /// `task_id` if given, else the calling run's own task.
    fn task_or_own(&self, caller: &Caller, task_id: Option<&str>) -> StoreResult<Uuid> {
        match (task_id, caller.run()) {
            (Some(task_id), _) => id("task_id", task_id),
            (None, Some(run)) => Ok(run.task_id),
            (None, None) => Err(StoreError::invalid(
                "task_id",
                "is required (only an agent the board started has a task of its own)",
            )),
        }
    }

    /// The agent `reference` names: its id or its slug.
    async fn agent(&self, field: &str, reference: &str) -> StoreResult<agents::Model> {
        match Uuid::try_parse(reference.trim()) {
            Ok(agent_id) => {
                self.engine
                    .store
                    .agents()
                    .get(agent_id)
                    .await
                    .map_err(|err| match err {
                        StoreError::NotFound { .. } => StoreError::NotFound {
                            kind: "agent",
                            id: format!("{agent_id} ({field})"),
                        },
                        other => other,
                    })
            }
            Err(_) => {
                self.engine
                    .store
                    .agents()
                    .by_slug(reference.trim(), field)
                    .await
            }
        }
    }

    async fn task_summaries(&self, ids: impl IntoIterator<Item = Uuid>) -> StoreResult<Vec<Value>> {
        let mut summaries = Vec::new();
        for task_id in ids {
            match self.engine.store.tasks().get(task_id).await {
                Ok(task) => summaries.push(view::task_summary(&task)),
                Err(StoreError::NotFound { .. }) => {} // deleted meanwhile
                Err(err) => return Err(err),
            }
        }
        Ok(summaries)
    }

    /// A task's neighbourhood: subtasks, and dependencies both ways.
    async fn relations(&self, task: &tasks::Model) -> StoreResult<Value> {
        let store = &self.engine.store;
        let (subtasks, more) = store
            .tasks()
            .list(
                TaskFilter {
                    parent_task_id: Some(task.id),
                    ..TaskFilter::default()
                },
                first(CONTEXT_ITEMS),
            )
            .await?;
        let edges = store.dependencies().list(task.id).await?;
        // Owned ids: an iterator borrowing the edges across the awaits trips
        // rustc's Send check of the tool's future (rust-lang/rust#104382).
        let depends_on: Vec<Uuid> = edges
            .dependencies
            .iter()
            .map(|e| e.depends_on_task_id)
            .collect();
        let dependents: Vec<Uuid> = edges.dependents.iter().map(|e| e.task_id).collect();
        let depends_on = self.task_summaries(depends_on).await?;
        let dependents = self.task_summaries(dependents).await?;
        let parent = match task.parent_task_id {
            Some(parent) => self.task_summaries([parent]).await?.pop(),
            None => None,
        };
        Ok(json!({
            "parent": parent,
            "subtasks": subtasks.iter().map(view::task_summary).collect::<Vec<_>>(),
            "more_subtasks": !more.is_empty(),
            "depends_on": depends_on,
            "dependents": dependents,
        }))
    }

    async fn run_context(&self, execution_id: Uuid) -> Answer {
        let store = &self.engine.store;
        let execution = store.executions().get(execution_id).await?;
        let task = store.tasks().get(execution.task_id).await?;
        let agent = store.agents().get(execution.agent_id).await?;
        let capability = store.capabilities().get(execution.capability_id).await?;
        let mut context = json!({
            "caller": { "kind": "run", "execution_id": execution.id, "agent": view::agent(&agent) },
            "task": view::task(&task),
            "execution": view::execution(&execution),
            "capability": view::capability(&capability, &agent.slug),
        });
        if let (Value::Object(context), Value::Object(relations)) =
            (&mut context, self.relations(&task).await?)
        {
            context.extend(relations);
        }
        Ok(context)
    }

    async fn workspace_context(&self) -> Answer {
        let store = &self.engine.store;
        let board = store.tasks().board().await?;
        let columns: serde_json::Map<String, Value> = board
            .iter()
            .map(|(status, tasks)| {
                (
                    status_name(*status).to_owned(),
                    json!({
                        "count": tasks.len(),
                        "top": tasks
                            .iter()
                            .take(CONTEXT_ITEMS as usize)
                            .map(view::task_summary)
                            .collect::<Vec<_>>(),
                    }),
                )
            })
            .collect();
        let (agents, _) = store
            .agents()
            .list(AgentFilter::default(), first(CATALOG_ITEMS))
            .await?;
        let mut running = Vec::new();
        for status in [ExecutionStatus::Running, ExecutionStatus::Queued] {
            let (rows, _) = store
                .executions()
                .list(
                    ExecutionFilter {
                        status: Some(status),
                        ..ExecutionFilter::default()
                    },
                    first(CONTEXT_ITEMS),
                )
                .await?;
            running.extend(rows.iter().map(view::execution));
        }
        Ok(json!({
            "caller": { "kind": "person" },
            "board": columns,
            "column_order": BOARD_COLUMNS.map(status_name),
            "agents": agents.iter().map(view::agent).collect::<Vec<_>>(),
            "running_and_queued_executions": running,
        }))
    }

    async fn list_tasks_answer(&self, input: args::ListTasks) -> Answer {
        let assignee_agent_id = match &input.assignee {
            Some(reference) => Some(self.agent("assignee", reference).await?.id),
            None => None,
        };
        let page = PageRequest::parse(
            i32::try_from(input.limit.unwrap_or(0)).unwrap_or(i32::MAX),
            input.page_token.as_deref().unwrap_or(""),
            crate::store::page::RESOURCE_PAGES,
        )
        .map_err(|err| match err {
            StoreError::InvalidArgument { field, message } if field == "page_size" => {
                StoreError::invalid("limit", message)
            }
            other => other,
        })?;
        let filter = TaskFilter {
            status: input.status.map(Into::into),
            assignee_agent_id,
            parent_task_id: optional_id("parent_task_id", input.parent_task_id.as_deref())?,
            text: input.text,
        };
        let (rows, next_page_token) = self.engine.store.tasks().list(filter, page).await?;
        Ok(json!({
            "tasks": rows.iter().map(view::task_summary).collect::<Vec<_>>(),
            "next_page_token": (!next_page_token.is_empty()).then_some(next_page_token),
        }))
    }

    async fn task_answer(&self, task_id: Uuid) -> Answer {
        let store = &self.engine.store;
        let task = store.tasks().get(task_id).await?;
        let (executions, _) = store
            .executions()
            .list(
                ExecutionFilter {
                    task_id: Some(task.id),
                    ..ExecutionFilter::default()
                },
                first(TASK_EXECUTIONS),
            )
            .await?;
        let mut answer = json!({
            "task": view::task(&task),
            "latest_executions": executions.iter().map(view::execution).collect::<Vec<_>>(),
        });
        if let (Value::Object(answer), Value::Object(relations)) =
            (&mut answer, self.relations(&task).await?)
        {
            answer.extend(relations);
        }
        Ok(answer)
    }

    async fn create_task_answer(&self, caller: Caller, input: args::CreateTask) -> Answer {
        let parent_task_id = match (input.top_level, input.parent_task_id.as_deref()) {
            (true, Some(_)) => {
                return Err(StoreError::invalid(
                    "top_level",
                    "cannot be true together with parent_task_id",
                ));
            }
            (true, None) => None,
            (false, Some(parent)) => Some(id("parent_task_id", parent)?),
            (false, None) => caller.run().map(|run| run.task_id),
        };
        let assignee_agent_id = match &input.assignee {
            Some(reference) => Some(self.agent("assignee", reference).await?.id),
            None => None,
        };
        let draft = TaskDraft {
            title: input.title,
            description: input.description,
            priority: input.priority,
            parent_task_id,
            assignee_agent_id,
            due_at: input
                .due_at
                .as_deref()
                .map(|due| args::due("due_at", due))
                .transpose()?,
            ..TaskDraft::default()
        };
        let task = self
            .engine
            .store
            .tasks()
            .create(draft, caller.actor())
            .await?;
        Ok(json!({ "task": view::task(&task) }))
    }

    async fn update_task_answer(&self, caller: Caller, input: args::UpdateTask) -> Answer {
        let task_id = id("task_id", &input.task_id)?;
        let assignee_agent_id = match &input.assignee {
            None => None,
            Some(None) => Some(None),
            Some(Some(reference)) => Some(Some(self.agent("assignee", reference).await?.id)),
        };
        let due_at = match &input.due_at {
            None => None,
            Some(None) => Some(None),
            Some(Some(due)) => Some(Some(args::due("due_at", due)?)),
        };
        let patch = TaskPatch {
            title: input.title,
            description: input.description,
            priority: input.priority.map(Some),
            assignee_agent_id,
            due_at,
            ..TaskPatch::default()
        };
        if patch == TaskPatch::default() {
            return Err(StoreError::invalid(
                "task_id",
                "nothing to change: give at least one of title, description, priority, due_at, \
                 assignee",
            ));
        }
        let task = self
            .engine
            .store
            .tasks()
            .update(task_id, patch, caller.actor())
            .await?;
        Ok(json!({ "task": view::task(&task) }))
    }

    async fn move_task_answer(&self, caller: Caller, input: args::MoveTask) -> Answer {
        let task_id = id("task_id", &input.task_id)?;
        let position = match (
            optional_id("after_task_id", input.after_task_id.as_deref())?,
            optional_id("before_task_id", input.before_task_id.as_deref())?,
        ) {
            (Some(_), Some(_)) => {
                return Err(StoreError::invalid(
                    "before_task_id",
                    "give after_task_id or before_task_id, not both",
                ));
            }
            (Some(after), None) => Position::After(after),
            (None, Some(before)) => Position::Before(before),
            (None, None) => Position::Top,
        };
        let task = self
            .engine
            .store
            .tasks()
            .move_to(
                task_id,
                input.status.map(Into::into),
                position,
                caller.actor(),
            )
            .await?;
        Ok(json!({ "task": view::task(&task) }))
    }

    /// Every agent, and every capability with its agent's slug.
    async fn catalog(
        &self,
    ) -> StoreResult<(Vec<agents::Model>, Vec<(agent_capabilities::Model, String)>)> {
        let store = &self.engine.store;
        let (agents, _) = store
            .agents()
            .list(AgentFilter::default(), first(CATALOG_ITEMS))
            .await?;
        let (capabilities, _) = store
            .capabilities()
            .list(CapabilityFilter::default(), first(CATALOG_ITEMS))
            .await?;
        let capabilities = capabilities
            .into_iter()
            .filter_map(|capability| {
                let slug = agents
                    .iter()
                    .find(|a| a.id == capability.agent_id)?
                    .slug
                    .clone();
                Some((capability, slug))
            })
            .collect();
        Ok((agents, capabilities))
    }

    async fn list_agents_answer(&self) -> Answer {
        let (agents, capabilities) = self.catalog().await?;
        let agents: Vec<Value> = agents
            .iter()
            .map(|agent| {
                let mut view = view::agent(agent);
                view["capabilities"] = capabilities
                    .iter()
                    .filter(|(capability, _)| capability.agent_id == agent.id)
                    .map(|(capability, slug)| {
                        let full = view::capability(capability, slug);
                        json!({
                            "ref": full["ref"],
                            "id": full["id"],
                            "label": full["label"],
                            "requires_approval": full["requires_approval"],
                            "danger": full["danger"],
                            "is_enabled": full["is_enabled"],
                        })
                    })
                    .collect();
                view
            })
            .collect();
        Ok(json!({ "agents": agents }))
    }

    async fn list_capabilities_answer(&self, input: args::ListCapabilities) -> Answer {
        let only = match &input.agent {
            Some(reference) => Some(self.agent("agent", reference).await?.id),
            None => None,
        };
        let (_, capabilities) = self.catalog().await?;
        Ok(json!({
            "capabilities": capabilities
                .iter()
                .filter(|(capability, _)| only.is_none_or(|agent| capability.agent_id == agent))
                .map(|(capability, slug)| view::capability(capability, slug))
                .collect::<Vec<_>>(),
        }))
    }

    /// The capability `reference` names (`agent/key` or an id), with its
    /// agent's slug.
    async fn capability(
        &self,
        reference: &str,
    ) -> StoreResult<(agent_capabilities::Model, String)> {
        let store = &self.engine.store;
        let reference = reference.trim();
        if let Ok(capability_id) = Uuid::try_parse(reference) {
            let capability =
                store
                    .capabilities()
                    .get(capability_id)
                    .await
                    .map_err(|err| match err {
                        StoreError::NotFound { .. } => StoreError::NotFound {
                            kind: "capability",
                            id: format!("{capability_id} (capability)"),
                        },
                        other => other,
                    })?;
            let agent = store.agents().get(capability.agent_id).await?;
            return Ok((capability, agent.slug));
        }
        let Some((slug, key)) = reference.split_once('/') else {
            return Err(StoreError::invalid(
                "capability",
                format!(
                    "{reference:?} is neither \"<agent slug>/<key>\" (as list_capabilities shows) \
                     nor a capability id"
                ),
            ));
        };
        let agent = store.agents().by_slug(slug, "capability").await?;
        let capability = store
            .capabilities()
            .by_key(agent.id, key, "capability")
            .await?;
        Ok((capability, agent.slug))
    }

    async fn run_capability_answer(&self, caller: Caller, input: args::RunCapability) -> Answer {
        let task_id = self.task_or_own(&caller, input.task_id.as_deref())?;
        let (capability, slug) = self.capability(&input.capability).await?;
        let reference = format!("{slug}/{}", capability.key);
        // The store queues such a run to wait for approval, as for any
        // client. A model that did not read requires_approval would think
        // its work under way; it must say it knows the run will wait.
        if capability.requires_approval && !input.await_approval {
            return Err(StoreError::invalid(
                "await_approval",
                format!(
                    "capability {reference} requires a person's approval before each run, so \
                     nothing was queued. Call again with await_approval: true to queue it \
                     anyway: it will wait, unstarted, until a person approves it"
                ),
            ));
        }
        let execution = self
            .engine
            .store
            .executions()
            .create(
                NewExecution {
                    task_id,
                    capability_id: capability.id,
                    args: input.args,
                    max_retries: input.max_retries,
                },
                None,
                None,
                caller.actor(),
            )
            .await?;
        Ok(json!({
            "execution": view::execution(&execution),
            "capability": reference,
            "waits_for_approval": capability.requires_approval,
            "next": "follow it with get_execution and read its output with read_log",
        }))
    }

    async fn execution_answer(&self, execution_id: Uuid) -> Answer {
        let store = &self.engine.store;
        let (execution, ancestors) = store.executions().get_with_ancestors(execution_id).await?;
        let capability = match store.capabilities().get(execution.capability_id).await {
            Ok(capability) => {
                let slug = store.agents().get(capability.agent_id).await?.slug;
                Some(format!("{slug}/{}", capability.key))
            }
            Err(StoreError::NotFound { .. }) => None,
            Err(err) => return Err(err),
        };
        let worktree = store.worktrees().of_execution(execution_id).await?;
        Ok(json!({
            "execution": view::execution(&execution),
            "capability": capability,
            "continues_executions": ancestors,
            "worktree": worktree.map(|record| view::worktree(&record.summary)),
        }))
    }

    async fn execution_diff_answer(&self, input: args::GetExecutionDiff) -> Answer {
        let execution_id = id("execution_id", &input.execution_id)?;
        let max = max_bytes(input.max_bytes, DIFF_DEFAULT)?;
        let (done, record) = self
            .engine
            .execution_diff(execution_id, u64::from(max))
            .await?;
        let mut diff = done.diff;
        // A cut diff may end inside a character.
        cut_to_whole_characters(&mut diff);
        Ok(json!({
            "diff": String::from_utf8_lossy(&diff),
            "truncated": done.truncated,
            "worktree": view::worktree(&record.summary),
        }))
    }

    async fn read_log_answer(&self, input: args::ReadLog) -> Answer {
        let execution_id = id("execution_id", &input.execution_id)?;
        let max = max_bytes(input.max_bytes, READ_LOG_DEFAULT)?;
        let execution = self.engine.store.executions().get(execution_id).await?;
        let ended = is_terminal(execution.status);
        let size = if ended || execution.status == ExecutionStatus::Queued {
            u64::try_from(execution.log_byte_size).unwrap_or(0)
        } else {
            // The row's size trails the file by up to 250 ms while output flows.
            self.engine
                .logs
                .size(execution_id)
                .await
                .map_err(|e| StoreError::Internal(format!("opening the log: {e}")))?
                .bytes
        };
        let offset = if input.offset < 0 {
            size.saturating_sub(input.offset.unsigned_abs())
        } else {
            input.offset.unsigned_abs()
        };
        let mut bytes = self
            .engine
            .logs
            .read(execution_id, offset, max as usize)
            .await
            .map_err(|e| StoreError::Internal(format!("reading the log: {e}")))?;
        // End on a whole character, so no character is split across reads;
        // the cut bytes come first in the next one.
        cut_to_whole_characters(&mut bytes);
        let next_offset = offset + bytes.len() as u64;
        Ok(json!({
            "execution_id": execution_id,
            "status": crate::store::execution_state::status_name(execution.status),
            "offset": offset,
            "next_offset": next_offset,
            "bytes": bytes.len(),
            "log_byte_size": size.max(next_offset),
            "at_end": ended && next_offset >= size,
            "text": String::from_utf8_lossy(&bytes),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_ERROR_BYTES, StoreError, error_text, incomplete_tail};

    #[test]
    fn errors_name_the_field_and_stay_short() {
        let text = error_text(StoreError::invalid("task.title", "is required"));
        assert_eq!(text, "invalid argument: title: is required");
        let long = error_text(StoreError::invalid("text", "é".repeat(100_000)));
        assert!(long.starts_with("invalid argument: text: "));
        assert!(long.len() <= MAX_ERROR_BYTES + 4 && long.ends_with('…'));
    }

    #[test]
    fn a_read_ends_on_a_whole_character() {
        let text = "añ€😀".as_bytes(); // 1, 2, 3 and 4 bytes
        assert_eq!(incomplete_tail(text), 0);
        for (cut, expected) in [
            (2, 1),
            (4, 1),
            (5, 2),
            (6, 0),
            (7, 1),
            (8, 2),
            (9, 3),
            (10, 0),
        ] {
            assert_eq!(incomplete_tail(&text[..cut]), expected, "cut at {cut}");
        }
        assert_eq!(incomplete_tail(b""), 0);
        assert_eq!(
            incomplete_tail(b"\xff"),
            0,
            "invalid bytes are not held back"
        );
    }
}
