//! The agent registry: creating, reading, listing, changing and deleting
//! agents, with every rule an agent must satisfy.
//!
//! Create and update share one validation ([`AgentSpec`] → [`ValidAgent`]):
//! an update loads the stored agent as a spec, applies the [`AgentPatch`] and
//! validates the whole result, so no update can leave an agent a create
//! would refuse. Error fields are request paths (`agent.slug`).
//!
//! The rules, in brief:
//! - `name` and `binary_path` required (not blank);
//! - `slug` `^[a-z0-9][a-z0-9-]*$`, at most 63 characters, unique (across
//!   workspaces: the database's unique key is global);
//! - `env_allowlist` entries are environment variable names
//!   (`^[A-Za-z_][A-Za-z0-9_]*$`), no duplicates;
//! - `max_concurrent` ≥ 1 (absent: 1); `kind` absent: custom;
//!   `discovery_method` absent: manual; `is_active` absent: true;
//! - `tool_type`, when given, one of [`TOOL_TYPES`];
//! - optional text fields, when present, are not blank; no text anywhere
//!   (JSON included) contains a NUL character (PostgreSQL cannot store it);
//! - `last_scanned_at` within years 1–9999;
//! - `session_config` ([`SessionConfig`]) needs its `sessionIdSource` and what
//!   that source reads (`json_field` → `sessionIdField`, `filesystem` →
//!   `sessionFileGlob`, `list_command` → `listSessionsCommand` and
//!   `listSessionsPattern`); `listSessionsPattern` compiles as a regex.
//!
//! Deleting an agent deletes its capabilities (the database cascades) but is
//! refused while executions reference it or them: they keep their history,
//! and deactivating (`is_active = false`) is the way to retire such an agent.
//!
//! Agents live in a workspace; one of another workspace is "not found".

use std::{collections::HashSet, sync::LazyLock};

use chrono::{DateTime, FixedOffset, Utc};
use regex::Regex;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::Value;
use uuid::Uuid;

use super::{
    Agents, DEFAULT_OWNER_ID, DEFAULT_WORKSPACE_ID, StoreError, StoreResult, apply_patch,
    columns::{AgentMetadata, SessionConfig, SessionIdSource, strings},
    page::PageRequest,
    scope::InWorkspace,
    validate::{
        check_identifier, check_optional_text, check_required_text, check_strings, check_time,
        conflict, is_env_var_name, quoted,
    },
};
use crate::entity::{
    agent_capabilities, agents,
    enums::{AgentKind, DiscoveryMethod},
    executions,
};

/// The values `tool_type` may take.
pub const TOOL_TYPES: [&str; 4] = ["cli-tool", "ai-agent", "daemon", "shell-util"];

static SLUG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9][a-z0-9-]*$").expect("slug pattern"));

// ---------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------

/// Everything a caller says about an agent: what a create sends, or what an
/// agent looks like after an update. `None` means "absent" (the default).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentSpec {
    pub name: String,
    pub slug: String,
    pub kind: Option<AgentKind>,
    pub binary_path: String,
    pub base_args: Vec<String>,
    pub working_dir: Option<String>,
    pub env_allowlist: Vec<String>,
    pub is_active: Option<bool>,
    pub max_concurrent: Option<i32>,
    pub discovery_method: Option<DiscoveryMethod>,
    pub version: Option<String>,
    pub package_name: Option<String>,
    pub package_section: Option<String>,
    pub tool_type: Option<String>,
    pub mcp_enabled: bool,
    pub session_config: Option<SessionConfig>,
    pub last_scanned_at: Option<DateTime<FixedOffset>>,
    pub metadata: AgentMetadata,
}

impl AgentSpec {
    /// A stored agent as a spec, to apply a patch to.
    pub(super) fn from_model(model: &agents::Model) -> Self {
        Self {
            name: model.name.clone(),
            slug: model.slug.clone(),
            kind: Some(model.kind),
            binary_path: model.binary_path.clone(),
            base_args: strings(&model.base_args),
            working_dir: model.working_dir.clone(),
            env_allowlist: strings(&model.env_allowlist),
            is_active: Some(model.is_active),
            max_concurrent: Some(model.max_concurrent),
            discovery_method: Some(model.discovery_method),
            version: model.version.clone(),
            package_name: model.package_name.clone(),
            package_section: model.package_section.clone(),
            tool_type: model.tool_type.clone(),
            mcp_enabled: model.mcp_enabled,
            session_config: model
                .session_config
                .as_ref()
                .and_then(SessionConfig::from_json),
            last_scanned_at: model.last_scanned_at,
            metadata: AgentMetadata::from_json(&model.metadata),
        }
    }
}

/// The fields an update changes: `Some(value)` replaces the field with
/// `value` (whose `None`, for an optional field, means "absent": cleared, or
/// back to its default).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentPatch {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub kind: Option<Option<AgentKind>>,
    pub binary_path: Option<String>,
    pub base_args: Option<Vec<String>>,
    pub working_dir: Option<Option<String>>,
    pub env_allowlist: Option<Vec<String>>,
    pub is_active: Option<Option<bool>>,
    pub max_concurrent: Option<Option<i32>>,
    pub discovery_method: Option<Option<DiscoveryMethod>>,
    pub version: Option<Option<String>>,
    pub package_name: Option<Option<String>>,
    pub package_section: Option<Option<String>>,
    pub tool_type: Option<Option<String>>,
    pub mcp_enabled: Option<bool>,
    pub session_config: Option<Option<SessionConfig>>,
    pub last_scanned_at: Option<Option<DateTime<FixedOffset>>>,
    pub metadata: Option<AgentMetadata>,
}

impl AgentPatch {
    /// Moves each `Some` field onto `spec`.
    pub fn apply(self, spec: &mut AgentSpec) {
        apply_patch!(
            self,
            spec,
            [
                name,
                slug,
                kind,
                binary_path,
                base_args,
                working_dir,
                env_allowlist,
                is_active,
                max_concurrent,
                discovery_method,
                version,
                package_name,
                package_section,
                tool_type,
                mcp_enabled,
                session_config,
                last_scanned_at,
                metadata,
            ]
        );
    }
}

/// Filters of `ListAgents`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentFilter {
    /// Only agents with this `is_active`.
    pub is_active: Option<bool>,
    /// Only agents of this kind.
    pub kind: Option<AgentKind>,
}

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

/// An agent that passed every rule, defaults resolved, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ValidAgent {
    name: String,
    slug: String,
    kind: AgentKind,
    binary_path: String,
    base_args: Value,
    working_dir: Option<String>,
    env_allowlist: Value,
    is_active: bool,
    max_concurrent: i32,
    discovery_method: DiscoveryMethod,
    version: Option<String>,
    package_name: Option<String>,
    package_section: Option<String>,
    tool_type: Option<String>,
    mcp_enabled: bool,
    session_config: Option<Value>,
    last_scanned_at: Option<DateTime<FixedOffset>>,
    metadata: Value,
}

fn check_metadata(field: &str, metadata: &AgentMetadata) -> StoreResult<()> {
    check_optional_text(&format!("{field}.icon"), &metadata.icon)?;
    check_optional_text(&format!("{field}.color"), &metadata.color)?;
    check_optional_text(&format!("{field}.description"), &metadata.description)?;
    check_optional_text(&format!("{field}.homepage"), &metadata.homepage)
}

/// Longest `completion_idle`: a day.
const MAX_COMPLETION_IDLE_MS: u64 = 24 * 3600 * 1000;

fn check_session_config(field: &str, config: &SessionConfig) -> StoreResult<()> {
    let sub = |name: &str| format!("{field}.{name}");
    check_optional_text(&sub("session_id_field"), &config.session_id_field)?;
    check_optional_text(&sub("session_file_glob"), &config.session_file_glob)?;
    check_optional_text(&sub("list_sessions_pattern"), &config.list_sessions_pattern)?;
    check_strings(&sub("list_sessions_command"), &config.list_sessions_command)?;
    check_strings(&sub("resume_flags"), &config.resume_flags)?;
    check_strings(&sub("continue_flags"), &config.continue_flags)?;
    if let Some(ms) = config.completion_idle_ms
        && !(1..=MAX_COMPLETION_IDLE_MS).contains(&ms)
    {
        return Err(StoreError::invalid(
            sub("completion_idle"),
            "must be more than 0 and at most 24 hours",
        ));
    }
    if let Some(pattern) = &config.list_sessions_pattern {
        Regex::new(pattern).map_err(|err| {
            // The parser's message quotes the whole pattern; its last line
            // says what is wrong.
            let err = err.to_string();
            let what = err.lines().last().unwrap_or_default().trim();
            StoreError::invalid(
                sub("list_sessions_pattern"),
                format!("not a valid regular expression: {what}"),
            )
        })?;
    }
    let needs = |name: &str, source: &str| {
        StoreError::invalid(
            sub(name),
            format!("is required when session_id_source is {source}"),
        )
    };
    match config.session_id_source {
        None => {
            return Err(StoreError::invalid(
                sub("session_id_source"),
                "is required in a session config",
            ));
        }
        Some(SessionIdSource::JsonField) if config.session_id_field.is_none() => {
            return Err(needs("session_id_field", "json_field"));
        }
        Some(SessionIdSource::Filesystem) if config.session_file_glob.is_none() => {
            return Err(needs("session_file_glob", "filesystem"));
        }
        Some(SessionIdSource::ListCommand) if config.list_sessions_command.is_empty() => {
            return Err(needs("list_sessions_command", "list_command"));
        }
        Some(SessionIdSource::ListCommand) if config.list_sessions_pattern.is_none() => {
            return Err(needs("list_sessions_pattern", "list_command"));
        }
        Some(_) => {}
    }
    Ok(())
}

/// Inserts a validated agent in `conn`'s transaction; ALREADY_EXISTS
/// (naming the request's `slug_field`) when its slug is taken.
pub(super) async fn insert_agent<C: ConnectionTrait>(
    conn: &C,
    agent: ValidAgent,
    slug_field: &str,
) -> StoreResult<agents::Model> {
    if slug_exists(conn, &agent.slug, None).await? {
        return Err(StoreError::AlreadyExists(slug_taken(
            &agent.slug,
            slug_field,
        )));
    }
    let now = Utc::now();
    let slug = agent.slug.clone();
    let model = agents::ActiveModel {
        id: Set(Uuid::new_v4()),
        owner_id: Set(DEFAULT_OWNER_ID),
        workspace_id: Set(DEFAULT_WORKSPACE_ID),
        name: Set(agent.name),
        slug: Set(agent.slug),
        kind: Set(agent.kind),
        binary_path: Set(agent.binary_path),
        base_args: Set(agent.base_args),
        working_dir: Set(agent.working_dir),
        env_allowlist: Set(agent.env_allowlist),
        is_active: Set(agent.is_active),
        max_concurrent: Set(agent.max_concurrent),
        discovery_method: Set(agent.discovery_method),
        version: Set(agent.version),
        package_name: Set(agent.package_name),
        package_section: Set(agent.package_section),
        tool_type: Set(agent.tool_type),
        mcp_enabled: Set(agent.mcp_enabled),
        session_config: Set(agent.session_config),
        last_scanned_at: Set(agent.last_scanned_at),
        metadata: Set(agent.metadata),
        created_at: Set(now.into()),
        updated_at: Set(now.into()),
    }
    .insert(conn)
    .await
    .map_err(|err| conflict(err, || slug_taken(&slug, slug_field)))?;
    Ok(model)
}

/// Writes a validated agent over the stored row `current` in `conn`'s
/// transaction (the caller checked that a new slug is free).
pub(super) async fn update_agent_row<C: ConnectionTrait>(
    conn: &C,
    current: agents::Model,
    agent: ValidAgent,
) -> StoreResult<agents::Model> {
    let slug = agent.slug.clone();
    let mut model: agents::ActiveModel = current.into();
    model.name = Set(agent.name);
    model.slug = Set(agent.slug);
    model.kind = Set(agent.kind);
    model.binary_path = Set(agent.binary_path);
    model.base_args = Set(agent.base_args);
    model.working_dir = Set(agent.working_dir);
    model.env_allowlist = Set(agent.env_allowlist);
    model.is_active = Set(agent.is_active);
    model.max_concurrent = Set(agent.max_concurrent);
    model.discovery_method = Set(agent.discovery_method);
    model.version = Set(agent.version);
    model.package_name = Set(agent.package_name);
    model.package_section = Set(agent.package_section);
    model.tool_type = Set(agent.tool_type);
    model.mcp_enabled = Set(agent.mcp_enabled);
    model.session_config = Set(agent.session_config);
    model.last_scanned_at = Set(agent.last_scanned_at);
    model.metadata = Set(agent.metadata);
    model.updated_at = Set(Utc::now().into());
    let model = model
        .update(conn)
        .await
        .map_err(|err| conflict(err, || slug_taken(&slug, "agent.slug")))?;
    Ok(model)
}

/// Applies every agent rule to `spec`; `field` prefixes error paths (`agent`).
pub(super) fn validate_agent(field: &str, spec: AgentSpec) -> StoreResult<ValidAgent> {
    let sub = |name: &str| format!("{field}.{name}");
    check_required_text(&sub("name"), &spec.name)?;
    check_identifier(
        &sub("slug"),
        &spec.slug,
        &SLUG,
        "lowercase letters, digits and '-'",
    )?;
    check_required_text(&sub("binary_path"), &spec.binary_path)?;
    check_strings(&sub("base_args"), &spec.base_args)?;
    check_optional_text(&sub("working_dir"), &spec.working_dir)?;

    check_strings(&sub("env_allowlist"), &spec.env_allowlist)?;
    let mut seen = HashSet::new();
    for (index, name) in spec.env_allowlist.iter().enumerate() {
        let entry = format!("{field}.env_allowlist[{index}]");
        if !is_env_var_name(name) {
            return Err(StoreError::invalid(
                entry,
                format!(
                    "{} is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)",
                    quoted(name)
                ),
            ));
        }
        if !seen.insert(name.as_str()) {
            return Err(StoreError::invalid(
                entry,
                format!("{} is listed twice", quoted(name)),
            ));
        }
        if name.starts_with("AMON_") && name.ends_with("_TOKEN") {
            // The worker's (or the local worker's server's) own credentials.
            return Err(StoreError::invalid(
                entry,
                format!("{name} is Agent Monitor's own token; a run may not see it"),
            ));
        }
    }

    let max_concurrent = spec.max_concurrent.unwrap_or(1);
    if max_concurrent < 1 {
        return Err(StoreError::invalid(
            sub("max_concurrent"),
            format!("must be at least 1, not {max_concurrent}"),
        ));
    }
    check_optional_text(&sub("version"), &spec.version)?;
    check_optional_text(&sub("package_name"), &spec.package_name)?;
    check_optional_text(&sub("package_section"), &spec.package_section)?;
    if let Some(tool_type) = &spec.tool_type
        && !TOOL_TYPES.contains(&tool_type.as_str())
    {
        return Err(StoreError::invalid(
            sub("tool_type"),
            format!(
                "{} is not one of {}",
                quoted(tool_type),
                TOOL_TYPES.join(", ")
            ),
        ));
    }
    if let Some(config) = &spec.session_config {
        check_session_config(&sub("session_config"), config)?;
    }
    if let Some(time) = &spec.last_scanned_at {
        check_time(&sub("last_scanned_at"), time)?;
    }
    check_metadata(&sub("metadata"), &spec.metadata)?;

    Ok(ValidAgent {
        name: spec.name,
        slug: spec.slug,
        kind: spec.kind.unwrap_or(AgentKind::Custom),
        binary_path: spec.binary_path,
        base_args: Value::from(spec.base_args),
        working_dir: spec.working_dir,
        env_allowlist: Value::from(spec.env_allowlist),
        is_active: spec.is_active.unwrap_or(true),
        max_concurrent,
        discovery_method: spec.discovery_method.unwrap_or(DiscoveryMethod::Manual),
        version: spec.version,
        package_name: spec.package_name,
        package_section: spec.package_section,
        tool_type: spec.tool_type,
        mcp_enabled: spec.mcp_enabled,
        session_config: spec.session_config.as_ref().map(SessionConfig::to_json),
        last_scanned_at: spec.last_scanned_at.map(|t| t.with_timezone(&Utc).into()),
        metadata: spec.metadata.to_json(),
    })
}

fn slug_taken(slug: &str, field: &str) -> String {
    format!(
        "an agent with slug {} already exists ({field})",
        quoted(slug)
    )
}

// ---------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------

/// The agent `id` of the caller's workspace.
pub(super) async fn find_agent<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
) -> StoreResult<Option<agents::Model>> {
    Ok(agents::Entity::find_by_id(id)
        .in_workspace()
        .one(db)
        .await?)
}

async fn slug_exists<C: ConnectionTrait>(
    db: &C,
    slug: &str,
    except: Option<Uuid>,
) -> StoreResult<bool> {
    let mut query = agents::Entity::find().filter(agents::Column::Slug.eq(slug));
    if let Some(id) = except {
        query = query.filter(agents::Column::Id.ne(id));
    }
    Ok(query.count(db).await? > 0)
}

impl Agents<'_> {
    /// Registers an agent.
    pub async fn create(&self, spec: AgentSpec) -> StoreResult<agents::Model> {
        let agent = validate_agent("agent", spec)?;
        let txn = self.0.write().await?;
        let model = insert_agent(&*txn, agent, "agent.slug").await?;
        txn.commit().await?;
        Ok(model)
    }

    /// The agent `id`.
    pub async fn get(&self, id: Uuid) -> StoreResult<agents::Model> {
        find_agent(self.0.db(), id)
            .await?
            .ok_or_else(|| StoreError::not_found("agent", id))
    }

    /// The agent with slug `slug`; NOT_FOUND names `field`.
    pub async fn by_slug(&self, slug: &str, field: &str) -> StoreResult<agents::Model> {
        agents::Entity::find()
            .in_workspace()
            .filter(agents::Column::Slug.eq(slug))
            .one(self.0.db())
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "agent",
                id: format!("{} ({field})", super::validate::quoted(slug)),
            })
    }

    /// One page of agents, by name then id; returns the next page's token.
    pub async fn list(
        &self,
        filter: AgentFilter,
        page: PageRequest,
    ) -> StoreResult<(Vec<agents::Model>, String)> {
        let mut query = agents::Entity::find().in_workspace();
        if let Some(is_active) = filter.is_active {
            query = query.filter(agents::Column::IsActive.eq(is_active));
        }
        if let Some(kind) = filter.kind {
            query = query.filter(agents::Column::Kind.eq(kind));
        }
        page.fetch(
            query
                .order_by_asc(agents::Column::Name)
                .order_by_asc(agents::Column::Id),
            self.0.db(),
        )
        .await
    }

    /// Applies `patch` to the agent `id`, re-validating the whole result.
    pub async fn update(&self, id: Uuid, patch: AgentPatch) -> StoreResult<agents::Model> {
        let txn = self.0.write().await?;
        let current = find_agent(&*txn, id)
            .await?
            .ok_or_else(|| StoreError::not_found("agent", id))?;
        let mut spec = AgentSpec::from_model(&current);
        patch.apply(&mut spec);
        let agent = validate_agent("agent", spec)?;
        if agent.slug != current.slug && slug_exists(&*txn, &agent.slug, Some(id)).await? {
            return Err(StoreError::AlreadyExists(slug_taken(
                &agent.slug,
                "agent.slug",
            )));
        }
        let model = update_agent_row(&*txn, current, agent).await?;
        txn.commit().await?;
        Ok(model)
    }

    /// Deletes the agent `id` and its capabilities, unless executions
    /// reference it or them.
    pub async fn delete(&self, id: Uuid) -> StoreResult<()> {
        let txn = self.0.write().await?;
        let agent = find_agent(&*txn, id)
            .await?
            .ok_or_else(|| StoreError::not_found("agent", id))?;
        let capability_ids: Vec<Uuid> = agent_capabilities::Entity::find()
            .select_only()
            .column(agent_capabilities::Column::Id)
            .filter(agent_capabilities::Column::AgentId.eq(id))
            .into_tuple()
            .all(&*txn)
            .await?;
        let mut references = Condition::any().add(executions::Column::AgentId.eq(id));
        if !capability_ids.is_empty() {
            references = references.add(executions::Column::CapabilityId.is_in(capability_ids));
        }
        let count = executions::Entity::find()
            .filter(references)
            .count(&*txn)
            .await?;
        if count > 0 {
            return Err(StoreError::FailedPrecondition(format!(
                "agent {:?} has {count} execution(s), which keep their history, so it cannot be \
                 deleted; deactivate it instead (update is_active = false)",
                agent.slug
            )));
        }
        agents::Entity::delete_by_id(id).exec(&*txn).await?;
        txn.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn valid_spec() -> AgentSpec {
        AgentSpec {
            name: "ripgrep".into(),
            slug: "rg".into(),
            binary_path: "rg".into(),
            ..Default::default()
        }
    }

    fn field_of(result: StoreResult<ValidAgent>) -> String {
        match result {
            Err(StoreError::InvalidArgument { field, .. }) => field,
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_resolved() {
        let agent = validate_agent("agent", valid_spec()).unwrap();
        assert_eq!(agent.kind, AgentKind::Custom);
        assert_eq!(agent.discovery_method, DiscoveryMethod::Manual);
        assert!(agent.is_active);
        assert_eq!(agent.max_concurrent, 1);
        assert_eq!(agent.metadata, json!({}));
        assert_eq!(agent.session_config, None);
    }

    #[test]
    fn each_rule_names_its_field() {
        let cases: Vec<(AgentSpec, &str)> = vec![
            (
                AgentSpec {
                    name: " ".into(),
                    ..valid_spec()
                },
                "agent.name",
            ),
            (
                AgentSpec {
                    slug: "Rg".into(),
                    ..valid_spec()
                },
                "agent.slug",
            ),
            (
                AgentSpec {
                    slug: "-rg".into(),
                    ..valid_spec()
                },
                "agent.slug",
            ),
            (
                AgentSpec {
                    slug: "a".repeat(64),
                    ..valid_spec()
                },
                "agent.slug",
            ),
            (
                AgentSpec {
                    binary_path: "".into(),
                    ..valid_spec()
                },
                "agent.binary_path",
            ),
            (
                AgentSpec {
                    max_concurrent: Some(0),
                    ..valid_spec()
                },
                "agent.max_concurrent",
            ),
            (
                AgentSpec {
                    env_allowlist: vec!["PATH".into(), "1X".into()],
                    ..valid_spec()
                },
                "agent.env_allowlist[1]",
            ),
            (
                AgentSpec {
                    env_allowlist: vec!["HOME".into(), "HOME".into()],
                    ..valid_spec()
                },
                "agent.env_allowlist[1]",
            ),
            (
                AgentSpec {
                    tool_type: Some("gui".into()),
                    ..valid_spec()
                },
                "agent.tool_type",
            ),
            (
                AgentSpec {
                    working_dir: Some("".into()),
                    ..valid_spec()
                },
                "agent.working_dir",
            ),
            (
                AgentSpec {
                    base_args: vec!["a\0b".into()],
                    ..valid_spec()
                },
                "agent.base_args[0]",
            ),
            (
                AgentSpec {
                    session_config: Some(SessionConfig::default()),
                    ..valid_spec()
                },
                "agent.session_config.session_id_source",
            ),
            (
                AgentSpec {
                    session_config: Some(SessionConfig {
                        session_id_source: Some(SessionIdSource::ListCommand),
                        list_sessions_command: vec!["gemini".into(), "--list-sessions".into()],
                        list_sessions_pattern: Some("([".into()),
                        ..Default::default()
                    }),
                    ..valid_spec()
                },
                "agent.session_config.list_sessions_pattern",
            ),
            (
                AgentSpec {
                    session_config: Some(SessionConfig {
                        session_id_source: Some(SessionIdSource::JsonField),
                        ..Default::default()
                    }),
                    ..valid_spec()
                },
                "agent.session_config.session_id_field",
            ),
            (
                AgentSpec {
                    metadata: AgentMetadata {
                        icon: Some("".into()),
                        ..Default::default()
                    },
                    ..valid_spec()
                },
                "agent.metadata.icon",
            ),
        ];
        for (spec, field) in cases {
            assert_eq!(
                field_of(validate_agent("agent", spec.clone())),
                field,
                "{spec:?}"
            );
        }
    }
}
