//! Built-in AI coding agents: what it takes to run Claude Code, Codex and
//! Gemini CLI with the user's own installed CLI and login, so registering one
//! is naming the preset and, at most, where the CLI is installed.

use super::{
    Agents, StoreError, StoreResult,
    agents::{AgentSpec, insert_agent, validate_agent},
    capabilities::{CapabilitySpec, insert_capability, validate_capability},
    columns::{BidirectionalProtocol, SessionConfig, SessionIdSource},
};
use crate::entity::{
    agent_capabilities, agents,
    enums::{AgentKind, CapabilitySource, DiscoveryMethod, InteractionMode},
};

/// Prompt of the default capability: the task, its description and the
/// task's `prompt_additions`, each only when present.
pub const DEFAULT_PROMPT_TEMPLATE: &str = "{{ task_title }}\
{% if task_description %}\n\n{{ task_description }}{% endif %}\
{% if input_context.prompt_additions is defined and input_context.prompt_additions %}\
\n\n{{ input_context.prompt_additions }}{% endif %}";

/// Key of the default capability.
pub const PROMPT_CAPABILITY_KEY: &str = "prompt";

/// Time an agent turn may take by default: an hour.
const TIMEOUT_SEC: i32 = 3600;

/// What the CLIs need from the worker's environment: their login and
/// settings live under HOME (or XDG dirs), their tools on PATH.
const COMMON_ENV: &[&str] = &[
    "HOME",
    "PATH",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LC_ALL",
    "TERM",
    "TMPDIR",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_CACHE_HOME",
    "XDG_STATE_HOME",
];

/// A built-in agent configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Preset {
    pub name: &'static str,
    pub display_name: &'static str,
    pub default_binary: &'static str,
    pub base_args: Vec<String>,
    pub env_allowlist: Vec<String>,
    pub session_config: SessionConfig,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_string()).collect()
}

fn env(extra: &[&str]) -> Vec<String> {
    strings(COMMON_ENV)
        .into_iter()
        .chain(strings(extra))
        .collect()
}

/// Every preset, with `binary` (or the default) as the CLI to run.
pub fn presets(binary: Option<&str>) -> Vec<Preset> {
    ["claude", "codex", "gemini"]
        .iter()
        .filter_map(|name| preset(name, binary))
        .collect()
}

/// Preset `name`, with `binary` (or its default) as the CLI to run.
pub fn preset(name: &str, binary: Option<&str>) -> Option<Preset> {
    Some(match name {
        "claude" => Preset {
            name: "claude",
            display_name: "Claude Code",
            default_binary: "claude",
            base_args: strings(&[
                "-p",
                "--verbose",
                "--output-format",
                "stream-json",
                "--input-format",
                "stream-json",
            ]),
            env_allowlist: env(&["CLAUDE_CONFIG_DIR"]),
            session_config: SessionConfig {
                session_id_source: Some(SessionIdSource::JsonField),
                session_id_field: Some("session_id".into()),
                resume_flags: strings(&["--resume", "{{sessionRef}}"]),
                continue_flags: strings(&["--continue"]),
                bidirectional_protocol: Some(BidirectionalProtocol::StreamJson),
                ..SessionConfig::default()
            },
        },
        "codex" => Preset {
            name: "codex",
            display_name: "Codex",
            default_binary: "codex",
            base_args: strings(&["app-server"]),
            env_allowlist: env(&["CODEX_HOME"]),
            session_config: SessionConfig {
                // The thread id of the `thread/start` result; a continuation
                // resumes it with `thread/resume`.
                session_id_source: Some(SessionIdSource::JsonField),
                session_id_field: Some("result.thread.id".into()),
                bidirectional_protocol: Some(BidirectionalProtocol::AppServer),
                ..SessionConfig::default()
            },
        },
        "gemini" => {
            let binary = binary.filter(|b| !b.is_empty()).unwrap_or("gemini");
            Preset {
                name: "gemini",
                display_name: "Gemini CLI",
                default_binary: "gemini",
                base_args: Vec::new(),
                env_allowlist: env(&["GEMINI_CLI_HOME"]),
                session_config: SessionConfig {
                    session_id_source: Some(SessionIdSource::ListCommand),
                    list_sessions_command: vec![binary.to_string(), "--list-sessions".into()],
                    // `  1. <first prompt> (Just now) [<uuid>]`
                    list_sessions_pattern: Some(r"^\s+\d+\. .* \[([0-9a-fA-F-]{36})\]\s*$".into()),
                    resume_flags: strings(&["--resume", "{{sessionRef}}"]),
                    bidirectional_protocol: Some(BidirectionalProtocol::Tmux),
                    completion_idle_ms: Some(10_000),
                    ..SessionConfig::default()
                },
            }
        }
        _ => return None,
    })
}

/// What a caller chooses when registering a preset agent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PresetRequest {
    pub preset: String,
    pub binary_path: Option<String>,
    pub slug: Option<String>,
    pub name: Option<String>,
    pub working_dir: Option<String>,
    pub mcp_enabled: bool,
    pub extra_args: Vec<String>,
    pub max_concurrent: Option<i32>,
}

/// The default capability of a preset agent.
pub fn prompt_capability(preset: &Preset) -> CapabilitySpec {
    CapabilitySpec {
        key: PROMPT_CAPABILITY_KEY.into(),
        label: "Prompt".into(),
        description: Some(format!(
            "Runs {} on the task: its title, description and prompt additions",
            preset.display_name
        )),
        source: Some(CapabilitySource::Preset),
        interaction_mode: Some(InteractionMode::Prompt),
        prompt_template: Some(DEFAULT_PROMPT_TEMPLATE.into()),
        timeout_sec: Some(TIMEOUT_SEC),
        ..CapabilitySpec::default()
    }
}

impl Agents<'_> {
    /// Registers a preset agent and its `prompt` capability, in one
    /// transaction: both or neither.
    pub async fn create_from_preset(
        &self,
        request: PresetRequest,
    ) -> StoreResult<(agents::Model, agent_capabilities::Model)> {
        let binary = request.binary_path.clone().filter(|b| !b.trim().is_empty());
        let preset = preset(&request.preset, binary.as_deref()).ok_or_else(|| {
            StoreError::invalid(
                "preset",
                format!(
                    "unknown preset {}: use claude, codex or gemini",
                    super::validate::quoted(&request.preset)
                ),
            )
        })?;
        let mut base_args = preset.base_args.clone();
        base_args.extend(request.extra_args);
        let spec = AgentSpec {
            name: request
                .name
                .unwrap_or_else(|| preset.display_name.to_string()),
            slug: request.slug.unwrap_or_else(|| preset.name.to_string()),
            kind: Some(AgentKind::Builtin),
            binary_path: binary.unwrap_or_else(|| preset.default_binary.to_string()),
            base_args,
            working_dir: request.working_dir,
            env_allowlist: preset.env_allowlist.clone(),
            max_concurrent: request.max_concurrent,
            discovery_method: Some(DiscoveryMethod::Preset),
            tool_type: Some("ai-agent".into()),
            mcp_enabled: request.mcp_enabled,
            session_config: Some(preset.session_config.clone()),
            ..AgentSpec::default()
        };
        let agent = validate_agent("agent", spec)
            .map_err(|err| as_request_field(err, preset.base_args.len()))?;
        let capability = validate_capability("capability", prompt_capability(&preset))?;
        let txn = self.0.write().await?;
        let agent = insert_agent(&*txn, agent, "slug").await?;
        let capability = insert_capability(&*txn, agent.id, capability).await?;
        txn.commit().await?;
        Ok((agent, capability))
    }
}

/// Names a refused field as the `CreatePresetAgent` request calls it: the
/// agent's `binary_path` is the request's, its `base_args[i]` past the
/// preset's own are the request's `extra_args`; fields the preset itself
/// fills keep the agent's path.
fn as_request_field(err: StoreError, preset_args: usize) -> StoreError {
    let StoreError::InvalidArgument { field, message } = err else {
        return err;
    };
    let Some(agent_field) = field.strip_prefix("agent.") else {
        return StoreError::InvalidArgument { field, message };
    };
    let field = match agent_field {
        "name" | "slug" | "binary_path" | "working_dir" | "max_concurrent" => {
            agent_field.to_owned()
        }
        other => match other
            .strip_prefix("base_args[")
            .and_then(|rest| rest.strip_suffix(']'))
            .and_then(|index| index.parse::<usize>().ok())
        {
            Some(index) if index >= preset_args => format!("extra_args[{}]", index - preset_args),
            _ => field,
        },
    };
    StoreError::InvalidArgument { field, message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::templates::{PromptContext, check_prompt_template, render_prompt};

    #[test]
    fn every_preset_is_valid() {
        for preset in presets(None) {
            let spec = AgentSpec {
                name: preset.display_name.into(),
                slug: preset.name.into(),
                binary_path: preset.default_binary.into(),
                base_args: preset.base_args.clone(),
                env_allowlist: preset.env_allowlist.clone(),
                session_config: Some(preset.session_config.clone()),
                ..AgentSpec::default()
            };
            validate_agent("agent", spec).unwrap_or_else(|e| panic!("{}: {e}", preset.name));
            validate_capability("capability", prompt_capability(&preset))
                .unwrap_or_else(|e| panic!("{}: {e}", preset.name));
        }
        let gemini = preset("gemini", Some("/opt/bin/gemini")).unwrap();
        assert_eq!(
            gemini.session_config.list_sessions_command[0],
            "/opt/bin/gemini"
        );
        let pattern = regex::Regex::new(
            gemini
                .session_config
                .list_sessions_pattern
                .as_deref()
                .unwrap(),
        )
        .unwrap();
        let line = "  1. fix the tests (Just now) [0a1b2c3d-1111-2222-3333-444455556666]";
        assert_eq!(
            &pattern.captures(line).unwrap()[1],
            "0a1b2c3d-1111-2222-3333-444455556666"
        );
        assert!(preset("cursor", None).is_none());
    }

    #[test]
    fn errors_name_the_request_fields() {
        let field = |agent_field: &str| match as_request_field(
            StoreError::invalid(agent_field, "bad"),
            2,
        ) {
            StoreError::InvalidArgument { field, .. } => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field("agent.binary_path"), "binary_path");
        assert_eq!(field("agent.slug"), "slug");
        assert_eq!(field("agent.name"), "name");
        assert_eq!(field("agent.working_dir"), "working_dir");
        assert_eq!(field("agent.max_concurrent"), "max_concurrent");
        assert_eq!(field("agent.base_args[3]"), "extra_args[1]");
        assert_eq!(field("agent.base_args[1]"), "agent.base_args[1]");
        assert_eq!(
            field("agent.session_config.session_id_field"),
            "agent.session_config.session_id_field"
        );
    }

    #[test]
    fn default_prompt() {
        check_prompt_template("t", DEFAULT_PROMPT_TEMPLATE, "s", &serde_json::json!({})).unwrap();
        let context = |description: Option<&str>, input: serde_json::Value| PromptContext {
            task_id: "id".into(),
            task_title: "Fix the build".into(),
            task_description: description.map(str::to_string),
            input_context: input,
            args: serde_json::json!({}),
        };
        assert_eq!(
            render_prompt(
                DEFAULT_PROMPT_TEMPLATE,
                &context(None, serde_json::json!({}))
            )
            .unwrap(),
            "Fix the build"
        );
        assert_eq!(
            render_prompt(
                DEFAULT_PROMPT_TEMPLATE,
                &context(
                    Some("It fails on CI."),
                    serde_json::json!({"promptAdditions": "Be brief."})
                )
            )
            .unwrap(),
            "Fix the build\n\nIt fails on CI.\n\nBe brief."
        );
    }
}
