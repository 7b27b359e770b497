//! Capabilities: the runnable actions of an agent, with every rule a
//! capability must satisfy.
//!
//! Create and update share one validation ([`CapabilitySpec`] →
//! [`ValidCapability`]); an update re-validates the whole capability it
//! would leave (mode consistency, templates against the resulting schema).
//! Error fields are request paths (`capability.command_tokens[2]`).
//!
//! The rules, in brief:
//! - `agent_id` names an agent of the workspace (NOT_FOUND otherwise) and
//!   never changes;
//! - `key` `^[a-z0-9][a-z0-9._-]*$`, at most 63 characters, unique per agent;
//!   `label` required (not blank); `description`, when present, not blank;
//! - `interaction_mode` absent: template. Template mode takes
//!   `command_tokens` (none at all is fine: the agent's binary and base args
//!   alone) and no `prompt_template`; prompt mode needs a `prompt_template`
//!   and takes no `command_tokens`;
//! - `args_schema` absent: `{}`; it compiles as a JSON Schema whose `type`,
//!   if given, is `"object"`; the templates parse and read only known
//!   variables (see [`super::templates`]);
//! - `danger_level` 0–3; `timeout_sec` > 0 (absent: 300);
//!   `max_output_bytes` > 0 (absent: 10 MiB); `source` absent: manual;
//!   `is_enabled` absent: true.
//!
//! An update that changes anything without naming `source` marks the
//! capability `manual` (a person's edit), which discovery never overwrites.
//!
//! A capability with executions cannot be deleted (they keep their history);
//! disabling it (`is_enabled = false`) retires it.

use std::sync::LazyLock;

use chrono::Utc;
use regex::Regex;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder,
};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{
    Capabilities, StoreError, StoreResult,
    agents::find_agent,
    apply_patch,
    columns::strings,
    page::PageRequest,
    scope::InWorkspace,
    templates,
    validate::{
        check_identifier, check_json_text, check_optional_text, check_required_text, check_strings,
        conflict,
    },
};
use crate::entity::{
    agent_capabilities, agents,
    enums::{CapabilitySource, InteractionMode},
    executions,
};

/// `timeout_sec` when absent: five minutes.
pub const DEFAULT_TIMEOUT_SEC: i32 = 300;
/// `max_output_bytes` when absent: 10 MiB.
pub const DEFAULT_MAX_OUTPUT_BYTES: i32 = 10 * 1024 * 1024;
/// Highest `danger_level` (3, destructive).
pub const MAX_DANGER_LEVEL: i16 = 3;

static KEY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9][a-z0-9._-]*$").expect("key pattern"));

/// Everything a caller says about a capability: what a create sends, or what
/// a capability looks like after an update. `None` means "absent" (the default).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CapabilitySpec {
    pub agent_id: Uuid,
    pub key: String,
    pub label: String,
    pub description: Option<String>,
    pub source: Option<CapabilitySource>,
    pub interaction_mode: Option<InteractionMode>,
    /// Empty means none.
    pub command_tokens: Vec<String>,
    pub prompt_template: Option<String>,
    pub args_schema: Option<Value>,
    pub requires_approval: bool,
    pub is_enabled: Option<bool>,
    pub danger_level: i32,
    pub timeout_sec: Option<i32>,
    pub max_output_bytes: Option<i32>,
}

impl CapabilitySpec {
    /// A stored capability as a spec, to apply a patch to.
    pub(super) fn from_model(model: &agent_capabilities::Model) -> Self {
        Self {
            agent_id: model.agent_id,
            key: model.key.clone(),
            label: model.label.clone(),
            description: model.description.clone(),
            source: Some(model.source),
            interaction_mode: Some(model.interaction_mode),
            command_tokens: model
                .command_tokens
                .as_ref()
                .map(strings)
                .unwrap_or_default(),
            prompt_template: model.prompt_template.clone(),
            args_schema: Some(model.args_schema.clone()),
            requires_approval: model.requires_approval,
            is_enabled: Some(model.is_enabled),
            danger_level: i32::from(model.danger_level),
            timeout_sec: Some(model.timeout_sec),
            max_output_bytes: Some(model.max_output_bytes),
        }
    }
}

/// The fields an update changes: `Some(value)` replaces the field with
/// `value` (whose `None`, for an optional field, means "absent": cleared, or
/// back to its default). `agent_id` is not among them: it never changes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CapabilityPatch {
    pub key: Option<String>,
    pub label: Option<String>,
    pub description: Option<Option<String>>,
    pub source: Option<Option<CapabilitySource>>,
    pub interaction_mode: Option<Option<InteractionMode>>,
    pub command_tokens: Option<Vec<String>>,
    pub prompt_template: Option<Option<String>>,
    pub args_schema: Option<Option<Value>>,
    pub requires_approval: Option<bool>,
    pub is_enabled: Option<Option<bool>>,
    pub danger_level: Option<i32>,
    pub timeout_sec: Option<Option<i32>>,
    pub max_output_bytes: Option<Option<i32>>,
}

impl CapabilityPatch {
    /// Moves each `Some` field onto `spec`.
    pub fn apply(self, spec: &mut CapabilitySpec) {
        apply_patch!(
            self,
            spec,
            [
                key,
                label,
                description,
                source,
                interaction_mode,
                command_tokens,
                prompt_template,
                args_schema,
                requires_approval,
                is_enabled,
                danger_level,
                timeout_sec,
                max_output_bytes,
            ]
        );
    }
}

/// Filters of `ListCapabilities`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapabilityFilter {
    /// Only capabilities of this agent (which must exist).
    pub agent_id: Option<Uuid>,
    /// Only capabilities with this `is_enabled`.
    pub is_enabled: Option<bool>,
}

/// A capability that passed every rule, defaults resolved, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ValidCapability {
    key: String,
    label: String,
    description: Option<String>,
    source: CapabilitySource,
    interaction_mode: InteractionMode,
    command_tokens: Option<Value>,
    prompt_template: Option<String>,
    args_schema: Value,
    requires_approval: bool,
    is_enabled: bool,
    danger_level: i16,
    timeout_sec: i32,
    max_output_bytes: i32,
}

/// Inserts a validated capability of agent `agent_id` in `conn`'s
/// transaction; ALREADY_EXISTS when its key is taken.
pub(super) async fn insert_capability<C: ConnectionTrait>(
    conn: &C,
    agent_id: Uuid,
    capability: ValidCapability,
) -> StoreResult<agent_capabilities::Model> {
    if key_exists(conn, agent_id, &capability.key).await? {
        return Err(StoreError::AlreadyExists(key_taken(&capability.key)));
    }
    let key = capability.key.clone();
    let model = agent_capabilities::ActiveModel {
        id: Set(Uuid::new_v4()),
        agent_id: Set(agent_id),
        key: Set(capability.key),
        label: Set(capability.label),
        description: Set(capability.description),
        source: Set(capability.source),
        interaction_mode: Set(capability.interaction_mode),
        command_tokens: Set(capability.command_tokens),
        prompt_template: Set(capability.prompt_template),
        args_schema: Set(capability.args_schema),
        requires_approval: Set(capability.requires_approval),
        is_enabled: Set(capability.is_enabled),
        danger_level: Set(capability.danger_level),
        timeout_sec: Set(capability.timeout_sec),
        max_output_bytes: Set(capability.max_output_bytes),
        created_at: Set(Utc::now().into()),
    }
    .insert(conn)
    .await
    .map_err(|err| conflict(err, || key_taken(&key)))?;
    Ok(model)
}

/// Writes a validated capability over the stored row `current` in `conn`'s
/// transaction (the caller checked that a new key is free).
pub(super) async fn update_capability_row<C: ConnectionTrait>(
    conn: &C,
    current: agent_capabilities::Model,
    capability: ValidCapability,
) -> StoreResult<agent_capabilities::Model> {
    let key = capability.key.clone();
    let mut model: agent_capabilities::ActiveModel = current.into();
    model.key = Set(capability.key);
    model.label = Set(capability.label);
    model.description = Set(capability.description);
    model.source = Set(capability.source);
    model.interaction_mode = Set(capability.interaction_mode);
    model.command_tokens = Set(capability.command_tokens);
    model.prompt_template = Set(capability.prompt_template);
    model.args_schema = Set(capability.args_schema);
    model.requires_approval = Set(capability.requires_approval);
    model.is_enabled = Set(capability.is_enabled);
    model.danger_level = Set(capability.danger_level);
    model.timeout_sec = Set(capability.timeout_sec);
    model.max_output_bytes = Set(capability.max_output_bytes);
    let model = model
        .update(conn)
        .await
        .map_err(|err| conflict(err, || key_taken(&key)))?;
    Ok(model)
}

/// Applies every capability rule that needs no database; `field` prefixes
/// error paths (`capability`).
pub(super) fn validate_capability(
    field: &str,
    spec: CapabilitySpec,
) -> StoreResult<ValidCapability> {
    let sub = |name: &str| format!("{field}.{name}");
    check_identifier(
        &sub("key"),
        &spec.key,
        &KEY,
        "lowercase letters, digits, '-', '_' and '.'",
    )?;
    check_required_text(&sub("label"), &spec.label)?;
    check_optional_text(&sub("description"), &spec.description)?;
    let danger_level = i16::try_from(spec.danger_level)
        .ok()
        .filter(|level| (0..=MAX_DANGER_LEVEL).contains(level))
        .ok_or_else(|| {
            StoreError::invalid(
                sub("danger_level"),
                format!(
                    "must be 0 (safe) to {MAX_DANGER_LEVEL} (destructive), not {}",
                    spec.danger_level
                ),
            )
        })?;
    let timeout_sec = spec.timeout_sec.unwrap_or(DEFAULT_TIMEOUT_SEC);
    if timeout_sec <= 0 {
        return Err(StoreError::invalid(
            sub("timeout_sec"),
            format!("must be greater than 0, not {timeout_sec}"),
        ));
    }
    let max_output_bytes = spec.max_output_bytes.unwrap_or(DEFAULT_MAX_OUTPUT_BYTES);
    if max_output_bytes <= 0 {
        return Err(StoreError::invalid(
            sub("max_output_bytes"),
            format!("must be greater than 0, not {max_output_bytes}"),
        ));
    }

    let schema_field = sub("args_schema");
    let args_schema = spec
        .args_schema
        .unwrap_or_else(|| Value::Object(Map::new()));
    check_json_text(&schema_field, &args_schema)?;
    templates::check_args_schema(&schema_field, &args_schema)?;

    let tokens_field = sub("command_tokens");
    let prompt_field = sub("prompt_template");
    check_strings(&tokens_field, &spec.command_tokens)?;
    let mode = spec.interaction_mode.unwrap_or(InteractionMode::Template);
    let command_tokens = match mode {
        InteractionMode::Template => {
            // No tokens is a valid template (the data model allows an empty
            // list): `date`, `env` or `uptime` take no arguments, and an
            // agent's base args may already say everything.
            if spec.prompt_template.is_some() {
                return Err(StoreError::invalid(
                    prompt_field,
                    "must be absent in template mode (set interaction_mode to \
                     INTERACTION_MODE_PROMPT for a prompt)",
                ));
            }
            templates::check_command_tokens(&tokens_field, &spec.command_tokens, &args_schema)?;
            Some(Value::from(spec.command_tokens))
        }
        InteractionMode::Prompt => {
            if !spec.command_tokens.is_empty() {
                return Err(StoreError::invalid(
                    tokens_field,
                    "must be empty in prompt mode (the prompt goes to the agent CLI)",
                ));
            }
            let Some(template) = &spec.prompt_template else {
                return Err(StoreError::invalid(
                    prompt_field,
                    "is required in prompt mode",
                ));
            };
            check_required_text(&prompt_field, template)?;
            templates::check_prompt_template(&prompt_field, template, &schema_field, &args_schema)?;
            None
        }
    };

    Ok(ValidCapability {
        key: spec.key,
        label: spec.label,
        description: spec.description,
        source: spec.source.unwrap_or(CapabilitySource::Manual),
        interaction_mode: mode,
        command_tokens,
        prompt_template: spec.prompt_template,
        args_schema,
        requires_approval: spec.requires_approval,
        is_enabled: spec.is_enabled.unwrap_or(true),
        danger_level,
        timeout_sec,
        max_output_bytes,
    })
}

fn key_taken(key: &str) -> String {
    format!(
        "the agent already has a capability with key {} (capability.key)",
        super::validate::quoted(key)
    )
}

/// The capability `id`, if its agent is in the caller's workspace.
pub(super) async fn find_capability<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
) -> StoreResult<Option<agent_capabilities::Model>> {
    Ok(agent_capabilities::Entity::find_by_id(id)
        .in_workspace()
        .one(db)
        .await?)
}

async fn key_exists<C: ConnectionTrait>(db: &C, agent_id: Uuid, key: &str) -> StoreResult<bool> {
    Ok(agent_capabilities::Entity::find()
        .filter(agent_capabilities::Column::AgentId.eq(agent_id))
        .filter(agent_capabilities::Column::Key.eq(key))
        .count(db)
        .await?
        > 0)
}

impl Capabilities<'_> {
    /// Adds a capability to its agent.
    pub async fn create(&self, spec: CapabilitySpec) -> StoreResult<agent_capabilities::Model> {
        let agent_id = spec.agent_id;
        let capability = validate_capability("capability", spec)?;
        let txn = self.0.write().await?;
        if find_agent(&*txn, agent_id).await?.is_none() {
            return Err(StoreError::not_found(
                "capability.agent_id: agent",
                agent_id,
            ));
        }
        let model = insert_capability(&*txn, agent_id, capability).await?;
        txn.commit().await?;
        Ok(model)
    }

    /// The capability `id`.
    pub async fn get(&self, id: Uuid) -> StoreResult<agent_capabilities::Model> {
        find_capability(self.0.db(), id)
            .await?
            .ok_or_else(|| StoreError::not_found("capability", id))
    }

    /// The capability `key` of the agent `agent_id`; NOT_FOUND names `field`.
    pub async fn by_key(
        &self,
        agent_id: Uuid,
        key: &str,
        field: &str,
    ) -> StoreResult<agent_capabilities::Model> {
        agent_capabilities::Entity::find()
            .in_workspace()
            .filter(agent_capabilities::Column::AgentId.eq(agent_id))
            .filter(agent_capabilities::Column::Key.eq(key))
            .one(self.0.db())
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "capability",
                id: format!("{} ({field})", super::validate::quoted(key)),
            })
    }

    /// One page of capabilities, by agent name, agent, key and id; returns
    /// the next page's token. Filtering by an agent that does not exist is
    /// NOT_FOUND (naming `agent_id`), not an empty page.
    pub async fn list(
        &self,
        filter: CapabilityFilter,
        page: PageRequest,
    ) -> StoreResult<(Vec<agent_capabilities::Model>, String)> {
        let mut query = agent_capabilities::Entity::find().in_workspace();
        if let Some(agent_id) = filter.agent_id {
            if find_agent(self.0.db(), agent_id).await?.is_none() {
                return Err(StoreError::not_found("agent_id: agent", agent_id));
            }
            query = query.filter(agent_capabilities::Column::AgentId.eq(agent_id));
        }
        if let Some(is_enabled) = filter.is_enabled {
            query = query.filter(agent_capabilities::Column::IsEnabled.eq(is_enabled));
        }
        page.fetch(
            query
                .order_by_asc(agents::Column::Name)
                .order_by_asc(agent_capabilities::Column::AgentId)
                .order_by_asc(agent_capabilities::Column::Key)
                .order_by_asc(agent_capabilities::Column::Id),
            self.0.db(),
        )
        .await
    }

    /// Applies `patch` to the capability `id`, re-validating the whole result.
    pub async fn update(
        &self,
        id: Uuid,
        patch: CapabilityPatch,
    ) -> StoreResult<agent_capabilities::Model> {
        let txn = self.0.write().await?;
        let current = find_capability(&*txn, id)
            .await?
            .ok_or_else(|| StoreError::not_found("capability", id))?;
        let stored = CapabilitySpec::from_model(&current);
        let names_source = patch.source.is_some();
        let mut spec = stored.clone();
        patch.apply(&mut spec);
        // A person's change to a capability a scan (or a preset) wrote makes
        // it theirs: discovery never overwrites a `manual` capability, so
        // the edit survives the next rescan. Naming `source` in the mask
        // says otherwise explicitly.
        if !names_source && spec != stored {
            spec.source = Some(CapabilitySource::Manual);
        }
        let capability = validate_capability("capability", spec)?;
        if capability.key != current.key
            && key_exists(&*txn, current.agent_id, &capability.key).await?
        {
            return Err(StoreError::AlreadyExists(key_taken(&capability.key)));
        }
        let model = update_capability_row(&*txn, current, capability).await?;
        txn.commit().await?;
        Ok(model)
    }

    /// Deletes the capability `id`, unless executions reference it.
    pub async fn delete(&self, id: Uuid) -> StoreResult<()> {
        let txn = self.0.write().await?;
        let capability = find_capability(&*txn, id)
            .await?
            .ok_or_else(|| StoreError::not_found("capability", id))?;
        let count = executions::Entity::find()
            .filter(executions::Column::CapabilityId.eq(id))
            .count(&*txn)
            .await?;
        if count > 0 {
            return Err(StoreError::FailedPrecondition(format!(
                "capability {:?} has {count} execution(s), which keep their history, so it \
                 cannot be deleted; disable it instead (update is_enabled = false)",
                capability.key
            )));
        }
        agent_capabilities::Entity::delete_by_id(id)
            .exec(&*txn)
            .await?;
        txn.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn template_spec() -> CapabilitySpec {
        CapabilitySpec {
            agent_id: Uuid::from_u128(7),
            key: "grep".into(),
            label: "Search".into(),
            command_tokens: vec!["-e".into(), "{{ pattern }}".into()],
            args_schema: Some(
                json!({"type": "object", "properties": {"pattern": {"type": "string"}}}),
            ),
            ..Default::default()
        }
    }

    fn prompt_spec() -> CapabilitySpec {
        CapabilitySpec {
            key: "fix".into(),
            label: "Fix".into(),
            interaction_mode: Some(InteractionMode::Prompt),
            prompt_template: Some("Fix {{ task_title }}".into()),
            ..Default::default()
        }
    }

    fn field_of(result: StoreResult<ValidCapability>) -> String {
        match result {
            Err(StoreError::InvalidArgument { field, .. }) => field,
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_resolved() {
        let capability = validate_capability("capability", template_spec()).unwrap();
        assert_eq!(capability.interaction_mode, InteractionMode::Template);
        assert_eq!(capability.source, CapabilitySource::Manual);
        assert!(capability.is_enabled);
        assert_eq!(capability.timeout_sec, 300);
        assert_eq!(capability.max_output_bytes, 10_485_760);
        assert_eq!(
            capability.command_tokens,
            Some(json!(["-e", "{{ pattern }}"]))
        );
        let no_tokens = CapabilitySpec {
            command_tokens: vec![],
            args_schema: None,
            ..template_spec()
        };
        assert_eq!(
            validate_capability("capability", no_tokens)
                .unwrap()
                .command_tokens,
            Some(json!([])),
            "a tool that takes no arguments is a valid template"
        );
        let prompt = validate_capability("capability", prompt_spec()).unwrap();
        assert_eq!(prompt.command_tokens, None);
        assert_eq!(prompt.args_schema, json!({}));
    }

    #[test]
    fn each_rule_names_its_field() {
        let cases: Vec<(CapabilitySpec, &str)> = vec![
            (
                CapabilitySpec {
                    key: "Grep".into(),
                    ..template_spec()
                },
                "capability.key",
            ),
            (
                CapabilitySpec {
                    key: "".into(),
                    ..template_spec()
                },
                "capability.key",
            ),
            (
                CapabilitySpec {
                    label: "".into(),
                    ..template_spec()
                },
                "capability.label",
            ),
            (
                CapabilitySpec {
                    danger_level: 4,
                    ..template_spec()
                },
                "capability.danger_level",
            ),
            (
                CapabilitySpec {
                    danger_level: -1,
                    ..template_spec()
                },
                "capability.danger_level",
            ),
            (
                CapabilitySpec {
                    timeout_sec: Some(0),
                    ..template_spec()
                },
                "capability.timeout_sec",
            ),
            (
                CapabilitySpec {
                    max_output_bytes: Some(-5),
                    ..template_spec()
                },
                "capability.max_output_bytes",
            ),
            (
                CapabilitySpec {
                    prompt_template: Some("x".into()),
                    ..template_spec()
                },
                "capability.prompt_template",
            ),
            (
                CapabilitySpec {
                    command_tokens: vec!["-e".into(), "{{ patern }}".into()],
                    ..template_spec()
                },
                "capability.command_tokens[1]",
            ),
            (
                CapabilitySpec {
                    args_schema: Some(json!({"type": "array"})),
                    ..template_spec()
                },
                "capability.args_schema/type",
            ),
            (
                CapabilitySpec {
                    args_schema: Some(json!({"a\u{0}": {}})),
                    ..template_spec()
                },
                "capability.args_schema",
            ),
            (
                CapabilitySpec {
                    prompt_template: None,
                    ..prompt_spec()
                },
                "capability.prompt_template",
            ),
            (
                CapabilitySpec {
                    prompt_template: Some(" ".into()),
                    ..prompt_spec()
                },
                "capability.prompt_template",
            ),
            (
                CapabilitySpec {
                    command_tokens: vec!["x".into()],
                    ..prompt_spec()
                },
                "capability.command_tokens",
            ),
            (
                CapabilitySpec {
                    prompt_template: Some("{{ nope }}".into()),
                    ..prompt_spec()
                },
                "capability.prompt_template",
            ),
        ];
        for (spec, field) in cases {
            assert_eq!(
                field_of(validate_capability("capability", spec.clone())),
                field,
                "{spec:?}"
            );
        }
    }
}
