//! Executions as callers see them: queueing a run (args validated, command
//! or prompt rendered before anything is stored), reading, cancelling,
//! retrying, approving and continuing. The worker side of a run (claim,
//! start, output, finish, reaping) is in `runs` and `claim`.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder,
};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{
    Actor, DEFAULT_OWNER_ID, Executions, StoreError, StoreResult,
    columns::{InputContext, SessionConfig, strings},
    execution_state::{
        self, APPROVED_EVENT, approved_among, approved_environment, is_terminal, status_name,
    },
    page::PageRequest,
    scope::InWorkspace,
    tasks::find_task,
    templates::{self, PromptContext},
    validate::{check_json_text, check_no_nul},
};
use crate::entity::{
    agent_capabilities, agents,
    enums::{ExecutionStatus, InteractionMode},
    executions, tasks,
};

/// Longest cancel reason: a sentence or a paragraph, not a document.
pub const MAX_REASON_BYTES: usize = 4096;

/// Most automatic retries a caller may ask for.
pub const MAX_RETRIES_LIMIT: i32 = 10;

/// What a caller asks to run.
#[derive(Debug, Clone)]
pub struct NewExecution {
    /// The task to run for.
    pub task_id: Uuid,
    /// The capability to run.
    pub capability_id: Uuid,
    /// Arguments (merged over the task's `input_context.args`).
    pub args: Map<String, Value>,
    /// Automatic retries.
    pub max_retries: i32,
}

/// Filters of `list_executions`.
#[derive(Debug, Clone, Default)]
pub struct ExecutionFilter {
    /// Only this task's.
    pub task_id: Option<Uuid>,
    /// Only with this status.
    pub status: Option<ExecutionStatus>,
    /// Only this agent's.
    pub agent_id: Option<Uuid>,
    /// Only this worker's.
    pub worker_id: Option<String>,
}

/// An execution of the caller's workspace, or NOT_FOUND.
pub async fn find_execution<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
) -> StoreResult<executions::Model> {
    let found = executions::Entity::find_by_id(id)
        .in_workspace()
        .one(conn)
        .await?;
    found.ok_or_else(|| StoreError::not_found("execution", id))
}

/// The argv of a template-mode run: binary, base args, rendered tokens.
pub fn render_argv(
    agent: &agents::Model,
    capability: &agent_capabilities::Model,
    args: &Value,
) -> StoreResult<Vec<String>> {
    let tokens = capability
        .command_tokens
        .as_ref()
        .map(strings)
        .unwrap_or_default();
    let rendered = templates::render_command_tokens(&tokens, args)
        .map_err(|err| StoreError::invalid("args", err.to_string()))?;
    let mut argv = vec![agent.binary_path.clone()];
    argv.extend(strings(&agent.base_args));
    argv.extend(rendered);
    Ok(argv)
}

/// The prompt of a prompt-mode run.
fn render_prompt(
    task: &tasks::Model,
    capability: &agent_capabilities::Model,
    args: &Value,
) -> StoreResult<String> {
    let template = capability.prompt_template.as_deref().unwrap_or_default();
    let context = PromptContext {
        task_id: task.id.to_string(),
        task_title: task.title.clone(),
        task_description: task.description.clone(),
        input_context: task.input_context.clone(),
        args: args.clone(),
    };
    templates::render_prompt(template, &context)
        .map_err(|err| StoreError::invalid("args", err.to_string()))
}

/// What a cancel did.
#[derive(Debug, Clone)]
pub struct Cancelled {
    /// The execution after the request.
    pub execution: executions::Model,
    /// Set when a worker must stop the process: `(worker_id, attempt_token)`.
    pub stop_on_worker: Option<(String, String)>,
}

/// What a run token (the MCP server's per-run credential) stands for.
#[derive(Debug, Clone)]
pub enum RunTokenCheck {
    /// The token of a run that goes on (running or being cancelled).
    Valid(executions::Model),
    /// The token of a run that has ended, or is queued again for a new
    /// attempt: it no longer works.
    Ended(executions::Model),
    /// Not the token of any run's current attempt.
    Invalid,
}

impl Executions<'_> {
    /// The MCP token of `execution`'s current attempt, handed to its worker
    /// with the assignment (see `AttemptKey::run_token`).
    pub fn run_token(&self, execution: &executions::Model) -> Option<String> {
        self.0.attempts().run_token(execution)
    }

    /// The run `token` was issued to, checked against the run as it is now.
    pub async fn check_run_token(&self, token: &str) -> StoreResult<RunTokenCheck> {
        let Some(id) = execution_state::AttemptKey::run_token_execution(token) else {
            return Ok(RunTokenCheck::Invalid);
        };
        let Some(execution) = executions::Entity::find_by_id(id)
            .in_workspace()
            .one(self.0.db())
            .await?
        else {
            return Ok(RunTokenCheck::Invalid);
        };
        if !self.0.attempts().verify_run_token(&execution, token) {
            return Ok(RunTokenCheck::Invalid);
        }
        Ok(match execution.status {
            ExecutionStatus::Running | ExecutionStatus::Cancelling => {
                RunTokenCheck::Valid(execution)
            }
            _ => RunTokenCheck::Ended(execution),
        })
    }

    /// The execution `id` of the caller's workspace.
    pub async fn get(&self, id: Uuid) -> StoreResult<executions::Model> {
        find_execution(self.0.db(), id).await
    }

    /// Queues a run. Nothing is stored unless the args satisfy the schema and
    /// the command (or prompt) renders.
    pub async fn create(
        &self,
        new: NewExecution,
        parent_execution_id: Option<Uuid>,
        prompt_override: Option<String>,
        actor: Actor,
    ) -> StoreResult<executions::Model> {
        if !(0..=MAX_RETRIES_LIMIT).contains(&new.max_retries) {
            return Err(StoreError::invalid(
                "max_retries",
                format!("must be between 0 and {MAX_RETRIES_LIMIT}"),
            ));
        }
        // Checked and rendered outside any transaction (schema validation
        // and template rendering are the costly part); the row and its event
        // go in through the group-commit writer. A task deleted meanwhile
        // fails the insert on its foreign key.
        let db = self.0.db();
        let task = find_task(db, new.task_id)
            .await
            .map_err(|_| StoreError::not_found("task", format!("{} (task_id)", new.task_id)))?;
        let capability = agent_capabilities::Entity::find_by_id(new.capability_id)
            .one(db)
            .await?
            .ok_or_else(|| {
                StoreError::not_found(
                    "capability",
                    format!("{} (capability_id)", new.capability_id),
                )
            })?;
        let agent = agents::Entity::find_by_id(capability.agent_id)
            .in_workspace()
            .one(db)
            .await?
            .ok_or_else(|| StoreError::not_found("capability", new.capability_id))?;
        if !capability.is_enabled {
            return Err(StoreError::FailedPrecondition(format!(
                "capability {} ({}) is disabled",
                capability.key, capability.id
            )));
        }
        if !agent.is_active {
            return Err(StoreError::FailedPrecondition(format!(
                "agent {} is inactive",
                agent.slug
            )));
        }
        if capability.interaction_mode == InteractionMode::Prompt
            && agent
                .session_config
                .as_ref()
                .and_then(SessionConfig::from_json)
                .and_then(|config| config.bidirectional_protocol)
                .is_none()
        {
            return Err(StoreError::FailedPrecondition(format!(
                "agent {} has no session_config.bidirectional_protocol: a prompt-mode capability \
                 needs stream-json, app-server or tmux (or register it with CreatePresetAgent)",
                agent.slug
            )));
        }

        let mut args = InputContext::from_json(&task.input_context).args;
        args.extend(new.args);
        let args = Value::Object(args);
        check_json_text("args", &args)?;
        templates::validate_args(&capability.args_schema, &args)?;
        let prompt = match capability.interaction_mode {
            InteractionMode::Template => {
                render_argv(&agent, &capability, &args)?;
                None
            }
            InteractionMode::Prompt => match prompt_override {
                Some(prompt) => Some(prompt),
                None => Some(render_prompt(&task, &capability, &args)?),
            },
        };

        let row = executions::ActiveModel {
            id: Set(Uuid::new_v4()),
            task_id: Set(task.id),
            agent_id: Set(agent.id),
            capability_id: Set(capability.id),
            requested_by: Set(actor.id.unwrap_or(DEFAULT_OWNER_ID)),
            status: Set(ExecutionStatus::Queued),
            mode: Set(capability.interaction_mode),
            args: Set(args),
            prompt: Set(prompt),
            parent_execution_id: Set(parent_execution_id),
            max_retries: Set(new.max_retries),
            created_at: Set(Utc::now().into()),
            ..Default::default()
        };
        let event = json!({
            "capability_id": capability.id,
            "capability_key": capability.key,
            "agent_slug": agent.slug,
            "requires_approval": capability.requires_approval,
            "parent_execution_id": parent_execution_id,
        });
        // Guarded: the insert meets the task's foreign key.
        self.0
            .submit_guarded(move |txn| {
                Box::pin(async move {
                    let execution = row.insert(&**txn).await?;
                    let mut event = event;
                    event["execution_id"] = json!(execution.id);
                    txn.record_event(execution.task_id, actor, "execution_queued", event)
                        .await?;
                    txn.execution_changed(execution.clone());
                    Ok(execution)
                })
            })
            .await
    }

    /// An execution with the ids of the executions it continues, oldest first.
    pub async fn get_with_ancestors(
        &self,
        id: Uuid,
    ) -> StoreResult<(executions::Model, Vec<Uuid>)> {
        let execution = find_execution(self.0.db(), id).await?;
        let mut ancestors = Vec::new();
        let mut cursor = execution.parent_execution_id;
        while let Some(parent_id) = cursor {
            if ancestors.contains(&parent_id) || parent_id == execution.id {
                break; // a corrupt loop must not hang the call
            }
            ancestors.push(parent_id);
            cursor = executions::Entity::find_by_id(parent_id)
                .one(self.0.db())
                .await?
                .and_then(|parent| parent.parent_execution_id);
        }
        ancestors.reverse();
        Ok((execution, ancestors))
    }

    /// Lists executions, newest first.
    pub async fn list(
        &self,
        filter: ExecutionFilter,
        page: PageRequest,
    ) -> StoreResult<(Vec<executions::Model>, String)> {
        let mut query = executions::Entity::find().in_workspace();
        if let Some(task_id) = filter.task_id {
            query = query.filter(executions::Column::TaskId.eq(task_id));
        }
        if let Some(status) = filter.status {
            query = query.filter(executions::Column::Status.eq(status));
        }
        if let Some(agent_id) = filter.agent_id {
            query = query.filter(executions::Column::AgentId.eq(agent_id));
        }
        if let Some(worker_id) = filter.worker_id {
            query = query.filter(executions::Column::WorkerId.eq(worker_id));
        }
        page.fetch(
            query
                .order_by_desc(executions::Column::CreatedAt)
                .order_by_desc(executions::Column::Id),
            self.0.db(),
        )
        .await
    }

    /// Cancels a run: a queued one at once, a running one through `cancelling`.
    pub async fn cancel(&self, id: Uuid, reason: &str, actor: Actor) -> StoreResult<Cancelled> {
        check_no_nul("reason", reason)?;
        if reason.len() > MAX_REASON_BYTES {
            return Err(StoreError::invalid(
                "reason",
                format!("must be at most {MAX_REASON_BYTES} bytes"),
            ));
        }
        let mut txn = self.0.write().await?;
        let execution = find_execution(&*txn, id).await?;
        let details = json!({ "reason": reason });
        let result = match execution.status {
            ExecutionStatus::Queued => Cancelled {
                execution: execution_state::transition(
                    &mut txn,
                    execution,
                    ExecutionStatus::Cancelled,
                    actor,
                    details,
                    |_| {},
                )
                .await?,
                stop_on_worker: None,
            },
            ExecutionStatus::Running => {
                let token = self.0.attempts().token(&execution);
                let execution = execution_state::transition(
                    &mut txn,
                    execution,
                    ExecutionStatus::Cancelling,
                    actor,
                    details,
                    |_| {},
                )
                .await?;
                let stop_on_worker = execution.worker_id.clone().zip(token);
                Cancelled {
                    execution,
                    stop_on_worker,
                }
            }
            ExecutionStatus::Cancelling => {
                // Asking again re-sends the stop: harmless, and helps after a reconnect.
                let stop_on_worker = execution
                    .worker_id
                    .clone()
                    .zip(self.0.attempts().token(&execution));
                Cancelled {
                    execution,
                    stop_on_worker,
                }
            }
            status => {
                return Err(StoreError::FailedPrecondition(format!(
                    "execution {id} already ended ({})",
                    status_name(status)
                )));
            }
        };
        txn.commit().await?;
        Ok(result)
    }

    /// Queues a finished run again as a new execution with the same task,
    /// capability, args and retry budget.
    pub async fn retry(&self, id: Uuid, actor: Actor) -> StoreResult<executions::Model> {
        let original = find_execution(self.0.db(), id).await?;
        if !is_terminal(original.status) {
            return Err(StoreError::FailedPrecondition(format!(
                "execution {id} is {}; only a finished execution can be retried",
                status_name(original.status)
            )));
        }
        let args = original.args.as_object().cloned().unwrap_or_default();
        self.create(
            NewExecution {
                task_id: original.task_id,
                capability_id: original.capability_id,
                args,
                max_retries: original.max_retries,
            },
            None,
            original.prompt.clone(),
            actor,
        )
        .await
    }

    /// Approves a queued run of a capability that requires approval.
    pub async fn approve(&self, id: Uuid, actor: Actor) -> StoreResult<executions::Model> {
        let mut txn = self.0.write().await?;
        let execution = find_execution(&*txn, id).await?;
        let capability = agent_capabilities::Entity::find_by_id(execution.capability_id)
            .one(&*txn)
            .await?
            .ok_or_else(|| StoreError::not_found("capability", execution.capability_id))?;
        if !capability.requires_approval {
            return Err(StoreError::FailedPrecondition(format!(
                "capability {} does not require approval",
                capability.key
            )));
        }
        if execution.status != ExecutionStatus::Queued {
            return Err(StoreError::FailedPrecondition(format!(
                "execution {id} is {}; only a queued execution can be approved",
                status_name(execution.status)
            )));
        }
        if approved_among(&*txn, &[&execution])
            .await?
            .contains_key(&execution.id)
        {
            return Err(StoreError::FailedPrecondition(format!(
                "execution {id} is already approved"
            )));
        }
        txn.record_event(
            execution.task_id,
            actor,
            APPROVED_EVENT,
            json!({
                "execution_id": execution.id,
                "approved_by": actor.id,
                "environment": approved_environment(&find_task(&*txn, execution.task_id).await?),
            }),
        )
        .await?;
        txn.commit().await?;
        Ok(execution)
    }

    /// Queues a follow-up of a prompt-mode run that resumes its session.
    pub async fn continue_session(
        &self,
        id: Uuid,
        prompt: String,
        actor: Actor,
    ) -> StoreResult<executions::Model> {
        if prompt.trim().is_empty() {
            return Err(StoreError::invalid("prompt", "is required"));
        }
        check_no_nul("prompt", &prompt)?;
        let parent = find_execution(self.0.db(), id).await?;
        if parent.mode != InteractionMode::Prompt {
            return Err(StoreError::FailedPrecondition(format!(
                "execution {id} is not a prompt-mode run; only agent sessions can be continued"
            )));
        }
        if parent.session_ref.is_none() {
            return Err(StoreError::FailedPrecondition(format!(
                "execution {id} recorded no session to resume"
            )));
        }
        let args = parent.args.as_object().cloned().unwrap_or_default();
        self.create(
            NewExecution {
                task_id: parent.task_id,
                capability_id: parent.capability_id,
                args,
                max_retries: 0,
            },
            Some(parent.id),
            Some(prompt),
            actor,
        )
        .await
    }
}
