//! Agents and capabilities: wire <-> store.
//!
//! Parsing here is only about shapes (UUIDs, enum numbers, timestamps,
//! Structs, update masks); every rule about values lives in
//! `store::agents` and `store::capabilities`.

use amon_proto::v1 as pb;
use prost_types::FieldMask;

use super::{
    enums::WireEnum, json_to_struct, mask_paths, optional_timestamp, parse_id, parse_optional_id,
    parse_timestamp, struct_to_json, timestamp,
};
use crate::{
    entity::{
        agent_capabilities, agents,
        enums::{AgentKind, CapabilitySource, DiscoveryMethod, InteractionMode},
    },
    store::{
        StoreError, StoreResult,
        agents::{
            AgentFilter, AgentMetadata, AgentPatch, AgentSpec, BidirectionalProtocol,
            SessionConfig, SessionIdSource,
        },
        capabilities::{CapabilityFilter, CapabilityPatch, CapabilitySpec},
        page::{PageRequest, RESOURCE_PAGES},
    },
};

/// Paths `UpdateAgent` accepts in its `update_mask`: every caller-settable field.
pub const AGENT_UPDATABLE: &[&str] = &[
    "name",
    "slug",
    "kind",
    "binary_path",
    "base_args",
    "working_dir",
    "env_allowlist",
    "is_active",
    "max_concurrent",
    "discovery_method",
    "version",
    "package_name",
    "package_section",
    "tool_type",
    "mcp_enabled",
    "session_config",
    "last_scanned_at",
    "metadata",
];

/// Paths `UpdateCapability` accepts in its `update_mask`: every
/// caller-settable field but `agent_id`, which is immutable.
pub const CAPABILITY_UPDATABLE: &[&str] = &[
    "key",
    "label",
    "description",
    "source",
    "interaction_mode",
    "command_tokens",
    "prompt_template",
    "args_schema",
    "requires_approval",
    "is_enabled",
    "danger_level",
    "timeout_sec",
    "max_output_bytes",
];

// ---------------------------------------------------------------------------
// Session config enums
// ---------------------------------------------------------------------------

impl WireEnum for SessionIdSource {
    type Proto = pb::SessionIdSource;

    fn to_proto(self) -> i32 {
        (match self {
            Self::JsonField => pb::SessionIdSource::JsonField,
            Self::Filesystem => pb::SessionIdSource::Filesystem,
            Self::ListCommand => pb::SessionIdSource::ListCommand,
            Self::None => pb::SessionIdSource::None,
        }) as i32
    }

    fn from_proto(field: &str, value: i32) -> StoreResult<Option<Self>> {
        match pb::SessionIdSource::try_from(value) {
            Ok(pb::SessionIdSource::Unspecified) => Ok(None),
            Ok(pb::SessionIdSource::JsonField) => Ok(Some(Self::JsonField)),
            Ok(pb::SessionIdSource::Filesystem) => Ok(Some(Self::Filesystem)),
            Ok(pb::SessionIdSource::ListCommand) => Ok(Some(Self::ListCommand)),
            Ok(pb::SessionIdSource::None) => Ok(Some(Self::None)),
            Err(_) => Err(StoreError::invalid(
                field,
                format!("{value} is not a valid SessionIdSource"),
            )),
        }
    }
}

impl WireEnum for BidirectionalProtocol {
    type Proto = pb::BidirectionalProtocol;

    fn to_proto(self) -> i32 {
        (match self {
            Self::StreamJson => pb::BidirectionalProtocol::StreamJson,
            Self::AppServer => pb::BidirectionalProtocol::AppServer,
            Self::Tmux => pb::BidirectionalProtocol::Tmux,
        }) as i32
    }

    fn from_proto(field: &str, value: i32) -> StoreResult<Option<Self>> {
        match pb::BidirectionalProtocol::try_from(value) {
            Ok(pb::BidirectionalProtocol::Unspecified) => Ok(None),
            Ok(pb::BidirectionalProtocol::StreamJson) => Ok(Some(Self::StreamJson)),
            Ok(pb::BidirectionalProtocol::AppServer) => Ok(Some(Self::AppServer)),
            Ok(pb::BidirectionalProtocol::Tmux) => Ok(Some(Self::Tmux)),
            Err(_) => Err(StoreError::invalid(
                field,
                format!("{value} is not a valid BidirectionalProtocol"),
            )),
        }
    }
}

// ---------------------------------------------------------------------------
// Agents
// ---------------------------------------------------------------------------

/// A stored agent on the wire.
pub fn agent_to_proto(agent: &agents::Model) -> pb::Agent {
    pb::Agent {
        id: agent.id.to_string(),
        owner_id: agent.owner_id.to_string(),
        workspace_id: agent.workspace_id.to_string(),
        name: agent.name.clone(),
        slug: agent.slug.clone(),
        kind: agent.kind.to_proto(),
        binary_path: agent.binary_path.clone(),
        base_args: super::json_strings(&agent.base_args),
        working_dir: agent.working_dir.clone(),
        env_allowlist: super::json_strings(&agent.env_allowlist),
        is_active: Some(agent.is_active),
        max_concurrent: Some(agent.max_concurrent),
        discovery_method: agent.discovery_method.to_proto(),
        version: agent.version.clone(),
        package_name: agent.package_name.clone(),
        package_section: agent.package_section.clone(),
        tool_type: agent.tool_type.clone(),
        mcp_enabled: agent.mcp_enabled,
        session_config: agent
            .session_config
            .as_ref()
            .and_then(SessionConfig::from_json)
            .map(|config| session_config_to_proto(&config)),
        last_scanned_at: optional_timestamp(&agent.last_scanned_at),
        metadata: Some(metadata_to_proto(&AgentMetadata::from_json(
            &agent.metadata,
        ))),
        created_at: Some(timestamp(&agent.created_at)),
        updated_at: Some(timestamp(&agent.updated_at)),
    }
}

fn metadata_to_proto(metadata: &AgentMetadata) -> pb::AgentMetadata {
    pb::AgentMetadata {
        icon: metadata.icon.clone(),
        color: metadata.color.clone(),
        description: metadata.description.clone(),
        homepage: metadata.homepage.clone(),
    }
}

fn metadata_from_proto(metadata: Option<&pb::AgentMetadata>) -> AgentMetadata {
    metadata
        .map(|m| AgentMetadata {
            icon: m.icon.clone(),
            color: m.color.clone(),
            description: m.description.clone(),
            homepage: m.homepage.clone(),
        })
        .unwrap_or_default()
}

/// The wire form of a preset.
pub fn preset_to_proto(preset: &crate::store::presets::Preset) -> pb::AgentPreset {
    let capability = crate::store::presets::prompt_capability(preset);
    pb::AgentPreset {
        name: preset.name.into(),
        display_name: preset.display_name.into(),
        default_binary: preset.default_binary.into(),
        base_args: preset.base_args.clone(),
        session_config: Some(session_config_to_proto(&preset.session_config)),
        env_allowlist: preset.env_allowlist.clone(),
        prompt_template: capability.prompt_template.unwrap_or_default(),
        timeout_sec: capability.timeout_sec.unwrap_or_default(),
    }
}

/// A `CreatePresetAgent` request; the store validates it.
pub fn preset_request(
    request: pb::CreatePresetAgentRequest,
) -> crate::store::presets::PresetRequest {
    crate::store::presets::PresetRequest {
        preset: request.preset.trim().to_ascii_lowercase(),
        binary_path: request.binary_path,
        slug: request.slug,
        name: request.name,
        working_dir: request.working_dir,
        mcp_enabled: request.mcp_enabled,
        extra_args: request.extra_args,
        max_concurrent: request.max_concurrent,
    }
}

fn session_config_to_proto(config: &SessionConfig) -> pb::AgentSessionConfig {
    pb::AgentSessionConfig {
        session_id_source: config
            .session_id_source
            .map_or(pb::SessionIdSource::Unspecified as i32, WireEnum::to_proto),
        session_id_field: config.session_id_field.clone(),
        session_file_glob: config.session_file_glob.clone(),
        list_sessions_command: config.list_sessions_command.clone(),
        list_sessions_pattern: config.list_sessions_pattern.clone(),
        resume_flags: config.resume_flags.clone(),
        continue_flags: config.continue_flags.clone(),
        bidirectional_protocol: config.bidirectional_protocol.map_or(
            pb::BidirectionalProtocol::Unspecified as i32,
            WireEnum::to_proto,
        ),
        completion_idle: config.completion_idle_ms.map(|ms| {
            let ms = i64::try_from(ms).unwrap_or(i64::MAX);
            amon_proto::prost_types::Duration {
                seconds: ms / 1000,
                nanos: (ms % 1000) as i32 * 1_000_000,
            }
        }),
    }
}

fn session_config_from_proto(
    config: Option<&pb::AgentSessionConfig>,
) -> StoreResult<Option<SessionConfig>> {
    let Some(config) = config else {
        return Ok(None);
    };
    Ok(Some(SessionConfig {
        session_id_source: SessionIdSource::from_proto(
            "agent.session_config.session_id_source",
            config.session_id_source,
        )?,
        session_id_field: config.session_id_field.clone(),
        session_file_glob: config.session_file_glob.clone(),
        list_sessions_command: config.list_sessions_command.clone(),
        list_sessions_pattern: config.list_sessions_pattern.clone(),
        resume_flags: config.resume_flags.clone(),
        continue_flags: config.continue_flags.clone(),
        bidirectional_protocol: BidirectionalProtocol::from_proto(
            "agent.session_config.bidirectional_protocol",
            config.bidirectional_protocol,
        )?,
        completion_idle_ms: match &config.completion_idle {
            None => None,
            Some(d) if d.seconds < 0 || d.nanos < 0 => {
                return Err(StoreError::invalid(
                    "agent.session_config.completion_idle",
                    "must not be negative",
                ));
            }
            Some(d) => Some(
                (d.seconds as u64)
                    .saturating_mul(1000)
                    .saturating_add(d.nanos as u64 / 1_000_000),
            ),
        },
    }))
}

fn kind(agent: &pb::Agent) -> StoreResult<Option<AgentKind>> {
    AgentKind::from_proto("agent.kind", agent.kind)
}

fn discovery_method(agent: &pb::Agent) -> StoreResult<Option<DiscoveryMethod>> {
    DiscoveryMethod::from_proto("agent.discovery_method", agent.discovery_method)
}

fn last_scanned_at(
    agent: &pb::Agent,
) -> StoreResult<Option<chrono::DateTime<chrono::FixedOffset>>> {
    agent
        .last_scanned_at
        .as_ref()
        .map(|time| parse_timestamp("agent.last_scanned_at", time))
        .transpose()
}

fn required<'a, T>(field: &str, message: Option<&'a T>) -> StoreResult<&'a T> {
    message.ok_or_else(|| StoreError::invalid(field, "is required"))
}

/// The agent of a `CreateAgentRequest`; output-only fields are ignored.
pub fn agent_spec(agent: Option<&pb::Agent>) -> StoreResult<AgentSpec> {
    let agent = required("agent", agent)?;
    Ok(AgentSpec {
        name: agent.name.clone(),
        slug: agent.slug.clone(),
        kind: kind(agent)?,
        binary_path: agent.binary_path.clone(),
        base_args: agent.base_args.clone(),
        working_dir: agent.working_dir.clone(),
        env_allowlist: agent.env_allowlist.clone(),
        is_active: agent.is_active,
        max_concurrent: agent.max_concurrent,
        discovery_method: discovery_method(agent)?,
        version: agent.version.clone(),
        package_name: agent.package_name.clone(),
        package_section: agent.package_section.clone(),
        tool_type: agent.tool_type.clone(),
        mcp_enabled: agent.mcp_enabled,
        session_config: session_config_from_proto(agent.session_config.as_ref())?,
        last_scanned_at: last_scanned_at(agent)?,
        metadata: metadata_from_proto(agent.metadata.as_ref()),
    })
}

/// The id and the changes of an `UpdateAgentRequest`. Only the fields named
/// in the mask are read; a named field left unset takes its creation default
/// (optional fields are cleared).
pub fn agent_patch(
    agent: Option<&pb::Agent>,
    mask: &Option<FieldMask>,
) -> StoreResult<(uuid::Uuid, AgentPatch)> {
    let agent = required("agent", agent)?;
    let id = parse_id("agent.id", &agent.id)?;
    let mut patch = AgentPatch::default();
    for path in mask_paths("update_mask", mask, AGENT_UPDATABLE)? {
        match path.as_str() {
            "name" => patch.name = Some(agent.name.clone()),
            "slug" => patch.slug = Some(agent.slug.clone()),
            "kind" => patch.kind = Some(kind(agent)?),
            "binary_path" => patch.binary_path = Some(agent.binary_path.clone()),
            "base_args" => patch.base_args = Some(agent.base_args.clone()),
            "working_dir" => patch.working_dir = Some(agent.working_dir.clone()),
            "env_allowlist" => patch.env_allowlist = Some(agent.env_allowlist.clone()),
            "is_active" => patch.is_active = Some(agent.is_active),
            "max_concurrent" => patch.max_concurrent = Some(agent.max_concurrent),
            "discovery_method" => patch.discovery_method = Some(discovery_method(agent)?),
            "version" => patch.version = Some(agent.version.clone()),
            "package_name" => patch.package_name = Some(agent.package_name.clone()),
            "package_section" => patch.package_section = Some(agent.package_section.clone()),
            "tool_type" => patch.tool_type = Some(agent.tool_type.clone()),
            "mcp_enabled" => patch.mcp_enabled = Some(agent.mcp_enabled),
            "session_config" => {
                patch.session_config =
                    Some(session_config_from_proto(agent.session_config.as_ref())?);
            }
            "last_scanned_at" => patch.last_scanned_at = Some(last_scanned_at(agent)?),
            "metadata" => patch.metadata = Some(metadata_from_proto(agent.metadata.as_ref())),
            other => unreachable!("mask_paths admitted {other:?}"),
        }
    }
    Ok((id, patch))
}

/// The filter and page of a `ListAgentsRequest`.
pub fn agent_list(request: &pb::ListAgentsRequest) -> StoreResult<(AgentFilter, PageRequest)> {
    let page = PageRequest::parse(request.page_size, &request.page_token, RESOURCE_PAGES)?;
    let filter = AgentFilter {
        is_active: request.is_active,
        kind: AgentKind::from_proto("kind", request.kind)?,
    };
    Ok((filter, page))
}

// ---------------------------------------------------------------------------
// Capabilities
// ---------------------------------------------------------------------------

/// A stored capability on the wire.
pub fn capability_to_proto(capability: &agent_capabilities::Model) -> pb::Capability {
    pb::Capability {
        id: capability.id.to_string(),
        agent_id: capability.agent_id.to_string(),
        key: capability.key.clone(),
        label: capability.label.clone(),
        description: capability.description.clone(),
        source: capability.source.to_proto(),
        interaction_mode: capability.interaction_mode.to_proto(),
        command_tokens: capability
            .command_tokens
            .as_ref()
            .map(super::json_strings)
            .unwrap_or_default(),
        prompt_template: capability.prompt_template.clone(),
        args_schema: Some(json_to_struct(&capability.args_schema)),
        requires_approval: capability.requires_approval,
        is_enabled: Some(capability.is_enabled),
        danger_level: i32::from(capability.danger_level),
        timeout_sec: Some(capability.timeout_sec),
        max_output_bytes: Some(capability.max_output_bytes),
        created_at: Some(timestamp(&capability.created_at)),
    }
}

fn source(capability: &pb::Capability) -> StoreResult<Option<CapabilitySource>> {
    CapabilitySource::from_proto("capability.source", capability.source)
}

fn interaction_mode(capability: &pb::Capability) -> StoreResult<Option<InteractionMode>> {
    InteractionMode::from_proto("capability.interaction_mode", capability.interaction_mode)
}

fn args_schema(capability: &pb::Capability) -> Option<serde_json::Value> {
    capability.args_schema.as_ref().map(struct_to_json)
}

/// The capability of a `CreateCapabilityRequest`; output-only fields are ignored.
pub fn capability_spec(capability: Option<&pb::Capability>) -> StoreResult<CapabilitySpec> {
    let capability = required("capability", capability)?;
    Ok(CapabilitySpec {
        agent_id: parse_id("capability.agent_id", &capability.agent_id)?,
        key: capability.key.clone(),
        label: capability.label.clone(),
        description: capability.description.clone(),
        source: source(capability)?,
        interaction_mode: interaction_mode(capability)?,
        command_tokens: capability.command_tokens.clone(),
        prompt_template: capability.prompt_template.clone(),
        args_schema: args_schema(capability),
        requires_approval: capability.requires_approval,
        is_enabled: capability.is_enabled,
        danger_level: capability.danger_level,
        timeout_sec: capability.timeout_sec,
        max_output_bytes: capability.max_output_bytes,
    })
}

/// The id and the changes of an `UpdateCapabilityRequest`. Only the fields
/// named in the mask are read; a named field left unset takes its creation
/// default (optional fields are cleared). `agent_id` cannot be named.
pub fn capability_patch(
    capability: Option<&pb::Capability>,
    mask: &Option<FieldMask>,
) -> StoreResult<(uuid::Uuid, CapabilityPatch)> {
    let capability = required("capability", capability)?;
    let id = parse_id("capability.id", &capability.id)?;
    if mask
        .as_ref()
        .is_some_and(|mask| mask.paths.iter().any(|path| path == "agent_id"))
    {
        return Err(StoreError::invalid(
            "update_mask",
            "agent_id is immutable: create the capability on the other agent instead",
        ));
    }
    let mut patch = CapabilityPatch::default();
    for path in mask_paths("update_mask", mask, CAPABILITY_UPDATABLE)? {
        match path.as_str() {
            "key" => patch.key = Some(capability.key.clone()),
            "label" => patch.label = Some(capability.label.clone()),
            "description" => patch.description = Some(capability.description.clone()),
            "source" => patch.source = Some(source(capability)?),
            "interaction_mode" => patch.interaction_mode = Some(interaction_mode(capability)?),
            "command_tokens" => patch.command_tokens = Some(capability.command_tokens.clone()),
            "prompt_template" => {
                patch.prompt_template = Some(capability.prompt_template.clone());
            }
            "args_schema" => patch.args_schema = Some(args_schema(capability)),
            "requires_approval" => patch.requires_approval = Some(capability.requires_approval),
            "is_enabled" => patch.is_enabled = Some(capability.is_enabled),
            "danger_level" => patch.danger_level = Some(capability.danger_level),
            "timeout_sec" => patch.timeout_sec = Some(capability.timeout_sec),
            "max_output_bytes" => patch.max_output_bytes = Some(capability.max_output_bytes),
            other => unreachable!("mask_paths admitted {other:?}"),
        }
    }
    Ok((id, patch))
}

/// The filter and page of a `ListCapabilitiesRequest`.
pub fn capability_list(
    request: &pb::ListCapabilitiesRequest,
) -> StoreResult<(CapabilityFilter, PageRequest)> {
    let page = PageRequest::parse(request.page_size, &request.page_token, RESOURCE_PAGES)?;
    let filter = CapabilityFilter {
        agent_id: parse_optional_id("agent_id", &request.agent_id)?,
        is_enabled: request.is_enabled,
    };
    Ok((filter, page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_enums_round_trip() {
        for source in [
            SessionIdSource::JsonField,
            SessionIdSource::Filesystem,
            SessionIdSource::ListCommand,
            SessionIdSource::None,
        ] {
            assert_eq!(
                SessionIdSource::from_proto("f", source.to_proto()).unwrap(),
                Some(source)
            );
        }
        for protocol in [
            BidirectionalProtocol::StreamJson,
            BidirectionalProtocol::AppServer,
            BidirectionalProtocol::Tmux,
        ] {
            assert_eq!(
                BidirectionalProtocol::from_proto("f", protocol.to_proto()).unwrap(),
                Some(protocol)
            );
        }
        assert_eq!(SessionIdSource::from_proto("f", 0).unwrap(), None);
        assert!(BidirectionalProtocol::from_proto("f", 42).is_err());
    }

    #[test]
    fn masks_read_only_the_named_fields() {
        let agent = pb::Agent {
            id: uuid::Uuid::from_u128(5).to_string(),
            name: "New".into(),
            kind: 99, // not named in the mask, so never parsed
            ..Default::default()
        };
        let mask = Some(FieldMask {
            paths: vec!["name".into(), "working_dir".into()],
        });
        let (id, patch) = agent_patch(Some(&agent), &mask).unwrap();
        assert_eq!(id, uuid::Uuid::from_u128(5));
        assert_eq!(
            patch,
            AgentPatch {
                name: Some("New".into()),
                working_dir: Some(None),
                ..Default::default()
            }
        );
        let capability = pb::Capability {
            id: uuid::Uuid::from_u128(6).to_string(),
            ..Default::default()
        };
        let mask = Some(FieldMask {
            paths: vec!["agent_id".into()],
        });
        let err = capability_patch(Some(&capability), &mask).unwrap_err();
        assert!(err.to_string().contains("immutable"), "{err}");
    }
}
