//! Asking an AI agent for capabilities (`DiscoverAgentsRequest.llm_agent`):
//! for each tool whose `--help` a worker read, one prompt-mode run of that
//! agent, on a task of its own (a person sees what was asked and answered,
//! and the run is dispatched, logged and limited like any other), with
//! [`llm_prompt`] as its prompt. Its answer becomes `llm_generated`
//! proposals ([`llm_answer`]); one that is not the JSON asked for, a run
//! that fails or does not end in time, is a problem of the report, and the
//! rest of the scan stands.

use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

use super::Engine;
use crate::{
    entity::enums::{ExecutionStatus, InteractionMode},
    store::{
        StoreError, StoreResult,
        discovery::{DiscoveryProblem, Found, ProbeProblem, llm_answer, llm_prompt},
        events::Actor,
        execution_state::is_terminal,
        executions::NewExecution,
        tasks::TaskDraft,
        validate::quoted,
    },
};

/// Tools an AI agent is asked about per scan: each is a run of an AI
/// agent (minutes, and money).
pub const MAX_LLM_TOOLS: usize = 5;
/// Most of a run's log read for its answer.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// The AI agent a scan asks, checked before the scan starts.
#[derive(Debug, Clone)]
pub struct LlmAgent {
    /// Its slug (named in problems and reasons).
    pub slug: String,
    /// Its prompt-mode capability `prompt`.
    pub capability_id: Uuid,
}

impl Engine {
    /// The agent `slug` as a scan would ask it: NOT_FOUND naming
    /// `llm_agent` when there is none, FAILED_PRECONDITION when it cannot
    /// take a prompt (no enabled prompt-mode capability `prompt`, inactive).
    pub async fn llm_agent(&self, slug: &str) -> StoreResult<LlmAgent> {
        let agent = self.store.agents().by_slug(slug, "llm_agent").await?;
        let capability = self
            .store
            .capabilities()
            .by_key(agent.id, "prompt", "llm_agent")
            .await
            .map_err(|_| {
                StoreError::FailedPrecondition(format!(
                    "llm_agent: agent {} has no capability \"prompt\" (register it with \
                     CreatePresetAgent)",
                    quoted(slug)
                ))
            })?;
        if capability.interaction_mode != InteractionMode::Prompt
            || !capability.is_enabled
            || !agent.is_active
        {
            return Err(StoreError::FailedPrecondition(format!(
                "llm_agent: agent {} cannot take a prompt: its capability \"prompt\" must be \
                 an enabled prompt-mode capability of an active agent",
                quoted(slug)
            )));
        }
        Ok(LlmAgent {
            slug: agent.slug,
            capability_id: capability.id,
        })
    }

    /// Asks `agent` about the tools of `found` with a help text (the first
    /// [`MAX_LLM_TOOLS`] by slug, AI CLIs left out), all at once, until
    /// `timeout`; adds what it proposed to each tool's capabilities (keys
    /// the scan proposed already are kept as the scan made them) and what
    /// went wrong to the problems. Help texts are dropped afterwards.
    pub async fn ask_llm(&self, agent: &LlmAgent, found: &mut Found, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let asked: Vec<(usize, String, String)> = found
            .proposals
            .iter()
            .enumerate()
            .filter(|(_, p)| p.preset.is_empty())
            .filter_map(|(i, p)| Some((i, p.slug.clone(), p.help_text.clone()?)))
            .take(MAX_LLM_TOOLS)
            .collect();
        let answers = futures_util::future::join_all(
            asked
                .iter()
                .map(|(_, tool, help)| self.ask_one(agent, tool, help, deadline)),
        )
        .await;
        for ((index, tool, _), answer) in asked.into_iter().zip(answers) {
            match answer {
                Ok(capabilities) => {
                    let proposal = &mut found.proposals[index];
                    for capability in capabilities {
                        if !proposal
                            .capabilities
                            .iter()
                            .any(|c| c.key == capability.key)
                        {
                            proposal.capabilities.push(capability);
                        }
                    }
                }
                Err((probe, problem, detail)) => found.problems.push(DiscoveryProblem {
                    binary: tool,
                    probe,
                    problem: Some(problem),
                    detail,
                }),
            }
        }
        for proposal in &mut found.proposals {
            proposal.help_text = None;
        }
    }

    /// One run of `agent` about `tool`: its proposals, or (what was tried,
    /// what went wrong, why).
    async fn ask_one(
        &self,
        agent: &LlmAgent,
        tool: &str,
        help_text: &str,
        deadline: Instant,
    ) -> Result<Vec<crate::store::discovery::CapabilityProposal>, (String, ProbeProblem, String)>
    {
        let failed = |probe: String, detail: String| (probe, ProbeProblem::Unreadable, detail);
        let prompt = llm_prompt(tool, help_text);
        let task = self
            .store
            .tasks()
            .create(
                TaskDraft {
                    title: format!("Discovery: capabilities of {tool}"),
                    description: Some(format!(
                        "The AI agent {} is asked to propose capabilities for `{tool}` from its \
                         help text (AgentService.DiscoverAgents, llm_agent).",
                        agent.slug
                    )),
                    ..TaskDraft::default()
                },
                Actor::system(),
            )
            .await
            .map_err(|e| failed(format!("{} (task)", agent.slug), e.to_string()))?;
        let execution = self
            .store
            .executions()
            .create(
                NewExecution {
                    task_id: task.id,
                    capability_id: agent.capability_id,
                    args: Default::default(),
                    max_retries: 0,
                },
                None,
                Some(prompt),
                Actor::system(),
            )
            .await
            .map_err(|e| failed(format!("{} (run)", agent.slug), e.to_string()))?;
        let id = execution.id;
        let probe = format!("{} (execution {id})", agent.slug);
        // Follow first, then read: no change slips between.
        let mut status = self
            .store
            .execution_hub()
            .follow(id, ExecutionStatus::Queued);
        let mut current = self
            .store
            .executions()
            .get(id)
            .await
            .map(|e| e.status)
            .map_err(|e| failed(probe.clone(), e.to_string()))?;
        while !is_terminal(current) {
            tokio::select! {
                changed = status.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    current = *status.borrow_and_update();
                }
                () = tokio::time::sleep_until(deadline) => {
                    let reason = "discovery asked an AI agent and its time ran out";
                    if let Ok(cancelled) = self.store.executions().cancel(id, reason, Actor::system()).await
                        && let Some((worker_id, token)) = cancelled.stop_on_worker
                    {
                        self.stop_run(&worker_id, id, token, reason);
                    }
                    return Err((probe, ProbeProblem::TimedOut, "the run did not end within the scan's timeout; cancelled".into()));
                }
            }
        }
        let execution = self
            .store
            .executions()
            .get(id)
            .await
            .map_err(|e| failed(probe.clone(), e.to_string()))?;
        if execution.status != ExecutionStatus::Succeeded {
            return Err(failed(
                probe,
                format!(
                    "the run ended {:?}: {}",
                    execution.status,
                    execution.error.unwrap_or_default()
                ),
            ));
        }
        let log = self
            .logs
            .read(id, 0, MAX_ANSWER_BYTES)
            .await
            .map_err(|e| failed(probe.clone(), format!("reading its log: {e}")))?;
        llm_answer(&String::from_utf8_lossy(&log), &agent.slug, tool)
            .map_err(|why| failed(probe, format!("its answer is not taken: {why}")))
    }
}
