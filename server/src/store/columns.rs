//! The shapes of the JSON columns (the data model's type helpers), stored
//! with the data model's camelCase keys and absent fields omitted, and read
//! back leniently: a value of another shape (written outside this store)
//! reads as empty rather than failing the request.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{StoreError, StoreResult, validate::is_env_var_name};

/// `agents.metadata`: presentation details, stored with absent keys omitted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    /// Whether runs of tasks that do not say work in a git worktree of
    /// their own (an extension of the data model's interface).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_isolation: Option<super::worktrees::Isolation>,
}

impl AgentMetadata {
    /// Reads a stored `metadata` column; a value of another shape (written
    /// outside this store) reads as empty rather than failing the request.
    pub fn from_json(value: &Value) -> Self {
        serde_json::from_value(value.clone()).unwrap_or_else(|err| {
            tracing::warn!(error = %err, "agents.metadata has an unexpected shape");
            Self::default()
        })
    }

    pub(super) fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("metadata serializes")
    }
}

/// `sessionIdSource`: where an AI agent's session id comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionIdSource {
    /// `json_field`: a field of a JSON line of the agent's output.
    JsonField,
    /// `filesystem`: the newest file matching a glob.
    Filesystem,
    /// `list_command`: a command's output parsed with a regex.
    ListCommand,
    /// `none`: no resumable sessions.
    None,
}

/// `bidirectionalProtocol`: how a worker talks to an AI agent CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BidirectionalProtocol {
    /// `stream-json` (Claude Code).
    StreamJson,
    /// `app-server` (Codex).
    AppServer,
    /// `tmux` (Gemini).
    Tmux,
}

/// `agents.session_config`: stored with the data model's camelCase keys,
/// absent fields (and empty lists) omitted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionConfig {
    /// Required; `None` only in a request, where it is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id_source: Option<SessionIdSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id_field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_file_glob: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub list_sessions_command: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_sessions_pattern: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resume_flags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub continue_flags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bidirectional_protocol: Option<BidirectionalProtocol>,
    /// Tmux protocol: milliseconds of terminal quiet after the prompt that
    /// complete a run (an extension of the data model's interface).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_idle_ms: Option<u64>,
}

impl SessionConfig {
    /// Reads a stored `session_config` column; `null` is no config, and a
    /// value of another shape reads as no config rather than failing.
    pub fn from_json(value: &Value) -> Option<Self> {
        if value.is_null() {
            return None;
        }
        serde_json::from_value(value.clone())
            .inspect_err(|err| {
                tracing::warn!(error = %err, "agents.session_config has an unexpected shape");
            })
            .ok()
    }

    pub(super) fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("session config serializes")
    }
}

/// `tasks.input_context`, with the data model's `TaskInputContext` keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InputContext {
    /// Working directory of the task's runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Variables set in the child's environment.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env_overrides: BTreeMap<String, String>,
    /// Default arguments of the task's executions.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub args: Map<String, Value>,
    /// Text added to AI agents' prompts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_additions: Option<String>,
    /// Whether the task's runs work in a git worktree of their own; `None`:
    /// the agent's default (an extension of the data model's interface).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<super::worktrees::Isolation>,
    /// What the task's worktree is based on; `None`: the repository's `HEAD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_ref: Option<String>,
}

impl InputContext {
    /// Reads a stored value; anything unreadable yields the empty context.
    pub fn from_json(value: &Value) -> Self {
        serde_json::from_value(value.clone()).unwrap_or_default()
    }

    /// The stored form.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| json!({}))
    }

    pub(super) fn validate(&self, field: &str) -> StoreResult<()> {
        if let Some(dir) = &self.working_dir
            && dir.trim().is_empty()
        {
            return Err(StoreError::invalid(
                format!("{field}.working_dir"),
                "must not be blank when set",
            ));
        }
        if let Some(base_ref) = &self.base_ref {
            let field = format!("{field}.base_ref");
            super::validate::check_printable(&field, base_ref, 256)?;
            // A ref or a commit: never an option for git's command line.
            if base_ref.trim().is_empty() || base_ref.starts_with('-') {
                return Err(StoreError::invalid(
                    field,
                    "must be a branch, tag or commit (not blank, not starting with '-')",
                ));
            }
        }
        for name in self.env_overrides.keys() {
            if !is_env_var_name(name) {
                return Err(StoreError::invalid(
                    format!("{field}.env_overrides"),
                    format!(
                        "{} is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)",
                        super::validate::quoted(name)
                    ),
                ));
            }
            if let Some(why) = super::validate::protected_variable(name) {
                return Err(StoreError::invalid(
                    format!("{field}.env_overrides"),
                    format!("a task may not set {name}: {why}"),
                ));
            }
        }
        Ok(())
    }
}

/// A JSON array of strings as a Vec (other items skipped).
pub fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn json_columns_use_the_data_model_shapes() {
        let config = SessionConfig {
            session_id_source: Some(SessionIdSource::ListCommand),
            list_sessions_command: vec!["gemini".into(), "--list-sessions".into()],
            list_sessions_pattern: Some(r"^(\S+)".into()),
            bidirectional_protocol: Some(BidirectionalProtocol::Tmux),
            ..Default::default()
        };
        let json = config.to_json();
        assert_eq!(
            json,
            json!({
                "sessionIdSource": "list_command",
                "listSessionsCommand": ["gemini", "--list-sessions"],
                "listSessionsPattern": "^(\\S+)",
                "bidirectionalProtocol": "tmux"
            })
        );
        assert_eq!(SessionConfig::from_json(&json), Some(config));
        assert_eq!(SessionConfig::from_json(&Value::Null), None);
        assert_eq!(
            SessionConfig::from_json(&json!({"sessionIdSource": 5})),
            None
        );
        assert_eq!(
            serde_json::to_value(BidirectionalProtocol::StreamJson).unwrap(),
            json!("stream-json")
        );
        assert_eq!(
            serde_json::to_value(BidirectionalProtocol::AppServer).unwrap(),
            json!("app-server")
        );
        let metadata = AgentMetadata {
            color: Some("#ff8800".into()),
            ..Default::default()
        };
        assert_eq!(metadata.to_json(), json!({"color": "#ff8800"}));
        assert_eq!(
            AgentMetadata::from_json(&json!({"color": "#ff8800", "x": 1})),
            metadata
        );
        assert_eq!(
            AgentMetadata::from_json(&json!("nope")),
            AgentMetadata::default()
        );
    }
}
