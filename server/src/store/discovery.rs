//! Discovery: what a worker found on its machine (tools, AI CLIs, their
//! subcommands), and applying it to the registry.
//!
//! The worker proposes; this module decides. Applying runs in one write
//! transaction, one agent proposal after another:
//! - an agent is matched by slug. None: it is created, marked
//!   `discovery_method` `path_scan` (or `preset`, from that preset's own
//!   configuration). One that a person made (`manual`) for another binary
//!   is left alone (KEPT_MANUAL), capabilities and all; for the same
//!   binary, or one discovery made, the facts of the binary (version,
//!   package, section, tool type, scan time) are brought up to date, and a
//!   discovered agent follows its binary's new path.
//! - a capability is matched by key within its agent. None: created, with
//!   its proposal's source. One whose `source` is `manual` (a person wrote
//!   it, or edited a discovered one: `UpdateCapability` marks it so) is
//!   never touched. Any other is rewritten to the proposal when they differ,
//!   keeping what a person set that a scan never proposes (enabled,
//!   timeout, output cap).
//! - a capability an AI agent proposed (`llm_generated`) is created
//!   disabled: a person reads it and enables it.
//! - a capability the scan no longer proposes stays: executions may
//!   reference it, and deleting is a person's decision.
//!
//! Every proposal passes the same rules as `CreateAgent` and
//! `CreateCapability`; one that breaks a rule is reported SKIPPED with the
//! reason, and the rest is applied. Applying the same scan twice changes
//! nothing but `last_scanned_at`: a rescan writes what changed (a new
//! version, a new subcommand) and nothing else.

use chrono::Utc;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::Value;
use uuid::Uuid;

use super::{
    StoreResult,
    agents::{AgentSpec, insert_agent, update_agent_row, validate_agent},
    capabilities::{CapabilitySpec, insert_capability, update_capability_row, validate_capability},
    columns::AgentMetadata,
    presets,
    scope::InWorkspace,
};
use crate::entity::{
    agent_capabilities, agents,
    enums::{AgentKind, CapabilitySource, DiscoveryMethod, InteractionMode},
};

/// What a worker may look at while discovering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DiscoverySource {
    /// PATH: versions, packages, tool types (always on).
    PathScan,
    /// AI CLIs of a preset.
    Preset,
    /// `--help` output.
    Help,
    /// Shell completion files.
    Completion,
    /// Man pages.
    Man,
    /// Fig completion specs.
    Fig,
    /// MCP server configurations of the AI CLIs.
    Mcp,
}

impl DiscoverySource {
    /// Every source, in the order the worker uses them.
    pub const ALL: [DiscoverySource; 7] = [
        Self::PathScan,
        Self::Preset,
        Self::Help,
        Self::Completion,
        Self::Man,
        Self::Fig,
        Self::Mcp,
    ];
}

/// A tool a worker found, as the agent it would become.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentProposal {
    pub slug: String,
    pub name: String,
    pub binary_path: String,
    /// `path_scan` or `preset`.
    pub discovery_method: Option<DiscoveryMethod>,
    pub version: Option<String>,
    pub package_name: Option<String>,
    pub package_section: Option<String>,
    pub tool_type: String,
    /// The preset's name, for `preset` proposals; empty otherwise.
    pub preset: String,
    pub capabilities: Vec<CapabilityProposal>,
    pub description: Option<String>,
    /// The tool's `--help` output, when the scan asked for it.
    pub help_text: Option<String>,
}

/// A capability a worker proposes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CapabilityProposal {
    pub key: String,
    pub label: String,
    pub description: Option<String>,
    pub source: Option<CapabilitySource>,
    pub interaction_mode: Option<InteractionMode>,
    pub command_tokens: Vec<String>,
    pub prompt_template: Option<String>,
    pub args_schema: Value,
    pub danger_level: i32,
    pub requires_approval: bool,
    /// Why the danger heuristic chose that level.
    pub danger_reason: String,
}

/// What went wrong with one probe of a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeProblem {
    TimedOut,
    Flooded,
    Crashed,
    Unreadable,
}

/// One failed probe; the scan went on.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscoveryProblem {
    pub binary: String,
    pub probe: String,
    pub problem: Option<ProbeProblem>,
    pub detail: String,
}

/// What a worker's scan found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Found {
    pub proposals: Vec<AgentProposal>,
    pub problems: Vec<DiscoveryProblem>,
    pub binaries_scanned: i32,
    pub elapsed: std::time::Duration,
}

/// What applying a proposal did to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyAction {
    Created,
    Updated,
    Unchanged,
    KeptManual,
    Skipped,
}

/// What applying one capability proposal did.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedCapability {
    pub capability_id: Option<Uuid>,
    pub key: String,
    pub action: ApplyAction,
    pub reason: String,
}

/// What applying one agent proposal did.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedAgent {
    pub agent_id: Option<Uuid>,
    pub slug: String,
    pub action: ApplyAction,
    pub reason: String,
    pub capabilities: Vec<AppliedCapability>,
}

impl AppliedAgent {
    fn skipped(slug: &str, reason: String) -> Self {
        Self {
            agent_id: None,
            slug: slug.to_owned(),
            action: ApplyAction::Skipped,
            reason,
            capabilities: Vec::new(),
        }
    }
}

/// The agent a proposal describes, as a create would send it.
fn agent_spec(proposal: &AgentProposal, now: chrono::DateTime<chrono::FixedOffset>) -> AgentSpec {
    let mut spec = AgentSpec {
        name: proposal.name.clone(),
        slug: proposal.slug.clone(),
        kind: Some(AgentKind::Custom),
        binary_path: proposal.binary_path.clone(),
        discovery_method: Some(DiscoveryMethod::PathScan),
        version: proposal.version.clone(),
        package_name: proposal.package_name.clone(),
        package_section: proposal.package_section.clone(),
        tool_type: Some(proposal.tool_type.clone()).filter(|t| !t.is_empty()),
        last_scanned_at: Some(now),
        metadata: AgentMetadata {
            description: proposal.description.clone(),
            ..AgentMetadata::default()
        },
        ..AgentSpec::default()
    };
    // An AI CLI of a preset runs with the preset's protocol flags, session
    // handling and environment, as `CreatePresetAgent` would register it.
    if let Some(preset) = (!proposal.preset.is_empty())
        .then(|| presets::preset(&proposal.preset, Some(&proposal.binary_path)))
        .flatten()
    {
        spec.kind = Some(AgentKind::Builtin);
        spec.discovery_method = Some(DiscoveryMethod::Preset);
        spec.base_args = preset.base_args.clone();
        spec.env_allowlist = preset.env_allowlist.clone();
        spec.session_config = Some(preset.session_config.clone());
        spec.tool_type = Some("ai-agent".into());
    }
    spec
}

fn capability_spec(agent_id: Uuid, proposal: &CapabilityProposal) -> CapabilitySpec {
    CapabilitySpec {
        agent_id,
        key: proposal.key.clone(),
        label: proposal.label.clone(),
        description: proposal.description.clone(),
        source: proposal.source,
        interaction_mode: proposal.interaction_mode,
        command_tokens: proposal.command_tokens.clone(),
        prompt_template: proposal.prompt_template.clone(),
        args_schema: Some(proposal.args_schema.clone()),
        requires_approval: proposal.requires_approval,
        danger_level: proposal.danger_level,
        ..CapabilitySpec::default()
    }
}

/// A capability proposal's source must be one discovery writes: a worker
/// cannot make its proposal pass for a person's.
fn discovered_source(source: Option<CapabilitySource>) -> Option<CapabilitySource> {
    match source {
        Some(CapabilitySource::Manual | CapabilitySource::Builtin) | None => None,
        other => other,
    }
}

impl super::Discovery<'_> {
    /// Applies a scan's proposals in one transaction; see the module
    /// documentation for the rules.
    pub async fn apply(&self, proposals: &[AgentProposal]) -> StoreResult<Vec<AppliedAgent>> {
        let now: chrono::DateTime<chrono::FixedOffset> = Utc::now().into();
        let txn = self.0.write().await?;
        let mut applied = Vec::with_capacity(proposals.len());
        for (index, proposal) in proposals.iter().enumerate() {
            let field = format!("proposals[{index}]");
            let existing = agents::Entity::find()
                .in_workspace()
                .filter(agents::Column::Slug.eq(proposal.slug.as_str()))
                .one(&*txn)
                .await?;
            let wanted = agent_spec(proposal, now);
            let (agent, action) = match existing {
                None => match validate_agent(&field, wanted) {
                    Ok(valid) => (
                        insert_agent(&*txn, valid, &format!("{field}.slug")).await?,
                        ApplyAction::Created,
                    ),
                    Err(err) => {
                        applied.push(AppliedAgent::skipped(&proposal.slug, err.to_string()));
                        continue;
                    }
                },
                Some(current)
                    if current.discovery_method == DiscoveryMethod::Manual
                        && current.binary_path != proposal.binary_path =>
                {
                    applied.push(AppliedAgent {
                        agent_id: Some(current.id),
                        slug: proposal.slug.clone(),
                        action: ApplyAction::KeptManual,
                        reason: format!(
                            "a person's agent with this slug runs {}, not {}",
                            current.binary_path, proposal.binary_path
                        ),
                        capabilities: Vec::new(),
                    });
                    continue;
                }
                Some(current) => {
                    let stored = AgentSpec::from_model(&current);
                    let mut spec = stored.clone();
                    // Facts of the binary, whoever made the agent.
                    spec.version = wanted.version;
                    spec.package_name = wanted.package_name;
                    spec.package_section = wanted.package_section;
                    spec.tool_type = wanted.tool_type;
                    if current.discovery_method != DiscoveryMethod::Manual {
                        spec.binary_path = wanted.binary_path;
                    }
                    let changed = spec != stored;
                    spec.last_scanned_at = Some(now);
                    match validate_agent(&field, spec) {
                        Ok(valid) => (
                            update_agent_row(&*txn, current, valid).await?,
                            if changed {
                                ApplyAction::Updated
                            } else {
                                ApplyAction::Unchanged
                            },
                        ),
                        Err(err) => {
                            applied.push(AppliedAgent::skipped(&proposal.slug, err.to_string()));
                            continue;
                        }
                    }
                }
            };
            // The preset's prompt capability is created as the preset
            // makes it (its timeout included, which a proposal does not carry).
            let preset_prompt = (!proposal.preset.is_empty())
                .then(|| presets::preset(&proposal.preset, Some(&proposal.binary_path)))
                .flatten()
                .map(|preset| presets::prompt_capability(&preset));
            let mut capabilities = Vec::with_capacity(proposal.capabilities.len());
            for (c, capability) in proposal.capabilities.iter().enumerate() {
                let field = format!("{field}.capabilities[{c}]");
                capabilities.push(
                    apply_capability(&txn, agent.id, &field, capability, preset_prompt.as_ref())
                        .await?,
                );
            }
            applied.push(AppliedAgent {
                agent_id: Some(agent.id),
                slug: agent.slug,
                action,
                reason: String::new(),
                capabilities,
            });
        }
        txn.commit().await?;
        Ok(applied)
    }
}

async fn apply_capability(
    txn: &super::WriteTxn,
    agent_id: Uuid,
    field: &str,
    proposal: &CapabilityProposal,
    preset_prompt: Option<&CapabilitySpec>,
) -> StoreResult<AppliedCapability> {
    let outcome = |capability_id, action, reason: String| AppliedCapability {
        capability_id,
        key: proposal.key.clone(),
        action,
        reason,
    };
    let Some(source) = discovered_source(proposal.source) else {
        return Ok(outcome(
            None,
            ApplyAction::Skipped,
            format!("{field}.source: must be a discovery source"),
        ));
    };
    let existing = agent_capabilities::Entity::find()
        .filter(agent_capabilities::Column::AgentId.eq(agent_id))
        .filter(agent_capabilities::Column::Key.eq(proposal.key.as_str()))
        .one(&**txn)
        .await?;
    let mut wanted = capability_spec(agent_id, proposal);
    wanted.source = Some(source);
    match existing {
        None => {
            // An AI agent's proposal waits for a person to enable it.
            if source == CapabilitySource::LlmGenerated {
                wanted.is_enabled = Some(false);
            }
            if let Some(prompt) = preset_prompt.filter(|p| p.key == wanted.key) {
                wanted.timeout_sec = prompt.timeout_sec;
            }
            match validate_capability(field, wanted) {
                Ok(valid) => {
                    let model = insert_capability(&**txn, agent_id, valid).await?;
                    Ok(outcome(Some(model.id), ApplyAction::Created, String::new()))
                }
                Err(err) => Ok(outcome(None, ApplyAction::Skipped, err.to_string())),
            }
        }
        Some(current) if current.source == CapabilitySource::Manual => Ok(outcome(
            Some(current.id),
            ApplyAction::KeptManual,
            "a person wrote or edited it (source manual)".into(),
        )),
        Some(current) => {
            let stored = CapabilitySpec::from_model(&current);
            wanted.is_enabled = stored.is_enabled;
            wanted.timeout_sec = stored.timeout_sec;
            wanted.max_output_bytes = stored.max_output_bytes;
            // Compared as stored: validation fills defaults the proposal
            // leaves out (interaction mode), so compare after filling them.
            let mut filled = wanted.clone();
            filled.interaction_mode = filled.interaction_mode.or(Some(InteractionMode::Template));
            if filled == stored {
                return Ok(outcome(
                    Some(current.id),
                    ApplyAction::Unchanged,
                    String::new(),
                ));
            }
            match validate_capability(field, filled) {
                Ok(valid) => {
                    let id = current.id;
                    update_capability_row(&**txn, current, valid).await?;
                    Ok(outcome(Some(id), ApplyAction::Updated, String::new()))
                }
                Err(err) => Ok(outcome(None, ApplyAction::Skipped, err.to_string())),
            }
        }
    }
}

/// Gives each preset proposal its preset's own `prompt` capability (the one
/// `CreatePresetAgent` makes), first, so a preset is defined in one place
/// and the report shows what applying would create.
pub fn with_preset_capabilities(found: &mut Found) {
    for proposal in &mut found.proposals {
        if proposal.preset.is_empty() {
            continue;
        }
        let Some(preset) = presets::preset(&proposal.preset, Some(&proposal.binary_path)) else {
            continue;
        };
        let spec = presets::prompt_capability(&preset);
        if proposal.capabilities.iter().any(|c| c.key == spec.key) {
            continue;
        }
        let CapabilitySpec {
            agent_id: _,
            key,
            label,
            description,
            source,
            interaction_mode,
            command_tokens,
            prompt_template,
            args_schema,
            requires_approval,
            is_enabled: _,
            danger_level,
            timeout_sec: _,
            max_output_bytes: _,
        } = spec;
        proposal.capabilities.insert(
            0,
            CapabilityProposal {
                key,
                label,
                description,
                source,
                interaction_mode,
                command_tokens,
                prompt_template,
                args_schema: args_schema.unwrap_or_else(|| Value::Object(Default::default())),
                danger_level,
                requires_approval,
                danger_reason: String::new(),
            },
        );
    }
}

/// Most capabilities taken from one AI agent's answer.
pub const MAX_LLM_CAPABILITIES: usize = 20;

/// The question put to an AI agent about `tool` (a prompt-mode run). It
/// shows the shape of the answer in words, not as JSON: an agent that only
/// repeats its prompt must not pass for one that answered.
pub fn llm_prompt(tool: &str, help_text: &str) -> String {
    format!(
        "Agent Monitor found the command-line tool `{tool}` on a worker and asks you to \
         propose capabilities for it: the invocations of it that are worth running on their \
         own, each as an argv template.\n\n\
         Answer with one JSON object and nothing else. Its only member, \"capabilities\", is a \
         list (at most {MAX_LLM_CAPABILITIES}) of objects with these members:\n\
         - \"key\": a short identifier (lowercase letters, digits, '-', '_', '.'), unique in the list;\n\
         - \"label\": a few words for a person;\n\
         - \"description\": one sentence;\n\
         - \"command_tokens\": the arguments after `{tool}` itself, one string per argv entry, \
         with `{{{{name}}}}` where an argument goes (no shell: no quoting, no pipes);\n\
         - \"args_schema\": a JSON Schema object typing every `{{{{name}}}}` (\"type\": \"object\", \
         \"properties\", \"required\", \"additionalProperties\": false);\n\
         - \"danger_level\": 0 (only reads), 1 (changes local state), 2 (deletes, overwrites or \
         publishes), or 3 (destroys data or the machine).\n\n\
         Use only what the help text below says the tool accepts. Here is the output of \
         `{tool} --help`:\n\n{help_text}\n"
    )
}

/// The texts an agent's run answered with: each `result` of a stream-json
/// log (Claude Code), else the whole log.
fn answers(log: &str) -> Vec<String> {
    let results: Vec<String> = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|v| v["type"] == "result")
        .filter_map(|v| v["result"].as_str().map(str::to_owned))
        .collect();
    if results.is_empty() {
        vec![log.to_owned()]
    } else {
        results
    }
}

/// The first JSON object in `text` with a `capabilities` member (the answer
/// may be wrapped in prose or a code fence).
fn proposal_object(text: &str) -> Option<serde_json::Map<String, Value>> {
    text.char_indices()
        .filter(|(_, c)| *c == '{')
        .find_map(|(i, _)| {
            let mut values = serde_json::Deserializer::from_str(&text[i..]).into_iter::<Value>();
            match values.next() {
                Some(Ok(Value::Object(map))) if map.contains_key("capabilities") => Some(map),
                _ => None,
            }
        })
}

/// What the AI agent `agent` answered about `tool`, as capability
/// proposals marked `llm_generated`; every proposal must pass the rules of
/// `CreateCapability`, or none is taken (the error says which and why).
pub fn llm_answer(log: &str, agent: &str, tool: &str) -> Result<Vec<CapabilityProposal>, String> {
    let Some(answer) = answers(log).iter().rev().find_map(|t| proposal_object(t)) else {
        let seen: String = answers(log)
            .last()
            .map(|t| t.chars().take(200).collect())
            .unwrap_or_default();
        return Err(format!(
            "the answer holds no JSON object with a \"capabilities\" list: {seen:?}"
        ));
    };
    let Some(items) = answer["capabilities"].as_array() else {
        return Err("\"capabilities\" is not a list".into());
    };
    if items.len() > MAX_LLM_CAPABILITIES {
        return Err(format!(
            "{} capabilities proposed; at most {MAX_LLM_CAPABILITIES} are taken",
            items.len()
        ));
    }
    let mut proposals = Vec::with_capacity(items.len());
    let mut keys = std::collections::HashSet::new();
    for (i, item) in items.iter().enumerate() {
        let field = format!("capabilities[{i}]");
        let text = |name: &str| -> Result<Option<String>, String> {
            match &item[name] {
                Value::Null => Ok(None),
                Value::String(s) => Ok(Some(s.clone())),
                _ => Err(format!("{field}.{name}: must be a string")),
            }
        };
        let Some(key) = text("key")? else {
            return Err(format!("{field}.key: is required"));
        };
        if !keys.insert(key.clone()) {
            return Err(format!("{field}.key: {key:?} is proposed twice"));
        }
        let command_tokens = match &item["command_tokens"] {
            Value::Array(tokens) => tokens
                .iter()
                .map(|t| t.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| format!("{field}.command_tokens: must be a list of strings"))?,
            _ => return Err(format!("{field}.command_tokens: must be a list of strings")),
        };
        let args_schema = match &item["args_schema"] {
            Value::Null => serde_json::json!({"type": "object", "properties": {}}),
            schema @ Value::Object(_) => schema.clone(),
            _ => return Err(format!("{field}.args_schema: must be a JSON Schema object")),
        };
        let danger_level = match &item["danger_level"] {
            Value::Null => 1,
            level => match level.as_i64() {
                Some(l @ 0..=3) => l as i32,
                _ => return Err(format!("{field}.danger_level: must be 0, 1, 2 or 3")),
            },
        };
        let proposal = CapabilityProposal {
            label: text("label")?.unwrap_or_else(|| format!("{tool} {key}")),
            description: text("description")?,
            source: Some(CapabilitySource::LlmGenerated),
            interaction_mode: Some(InteractionMode::Template),
            command_tokens,
            prompt_template: None,
            args_schema,
            danger_level,
            requires_approval: danger_level >= 2,
            danger_reason: format!(
                "proposed by the AI agent {agent}, whose estimate the level is; not checked by \
                 the danger heuristic"
            ),
            key,
        };
        // The same rules as applying it: a template that reads an argument
        // the schema does not type, a key that is no identifier…
        validate_capability(&field, capability_spec(Uuid::nil(), &proposal))
            .map_err(|e| e.to_string())?;
        proposals.push(proposal);
    }
    Ok(proposals)
}

#[cfg(test)]
mod llm_tests {
    use super::*;

    #[test]
    fn an_answer_in_a_stream_json_log_becomes_disabled_proposals() {
        let answer = r#"Sure. {"capabilities": [{"key": "grep", "command_tokens": ["-r", "{{pattern}}"],
            "args_schema": {"type": "object", "properties": {"pattern": {"type": "string"}}, "required": ["pattern"]},
            "danger_level": 0}]}"#;
        let log = format!(
            "{}\n{}\n",
            serde_json::json!({"type": "assistant", "message": {"content": "Working on it."}}),
            serde_json::json!({"type": "result", "result": answer})
        );
        let proposals = llm_answer(&log, "helper", "rg").unwrap();
        assert_eq!(proposals.len(), 1);
        let grep = &proposals[0];
        assert_eq!(grep.key, "grep");
        assert_eq!(grep.label, "rg grep");
        assert_eq!(grep.source, Some(CapabilitySource::LlmGenerated));
        assert_eq!(grep.command_tokens, vec!["-r", "{{pattern}}"]);
        assert!(!grep.requires_approval);
        assert!(grep.danger_reason.contains("helper"));
    }

    #[test]
    fn a_malformed_answer_is_refused_whole() {
        let refused = |text: &str| llm_answer(text, "helper", "rg").unwrap_err();
        assert!(refused("echo: propose capabilities").contains("no JSON object"));
        assert!(refused(r#"{"capabilities": "none"}"#).contains("not a list"));
        assert!(refused(r#"{"capabilities": [{"command_tokens": []}]}"#).contains("key"));
        assert!(
            refused(r#"{"capabilities": [{"key": "a", "command_tokens": "-r"}]}"#)
                .contains("command_tokens")
        );
        // A placeholder the schema does not type fails as CreateCapability would.
        let e = refused(r#"{"capabilities": [{"key": "a", "command_tokens": ["{{x}}"]}]}"#);
        assert!(e.starts_with("capabilities[0]"), "{e}");
        assert!(
            refused(r#"{"capabilities": [{"key": "a", "command_tokens": [], "danger_level": 7}]}"#)
                .contains("danger_level")
        );
        // The prompt itself, echoed, is no answer.
        assert!(
            refused(&format!("echo: {}", llm_prompt("rg", "usage: rg PATTERN")))
                .contains("no JSON")
        );
    }
}
