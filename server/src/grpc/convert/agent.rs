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
        agents::{AgentFilter, AgentPatch, AgentSpec},
        capabilities::{CapabilityFilter, CapabilityPatch, CapabilitySpec},
        columns::{AgentMetadata, BidirectionalProtocol, SessionConfig, SessionIdSource, strings},
        page::{PageRequest, RESOURCE_PAGES},
        presets::{Preset, PresetRequest, prompt_capability},
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
// Agents
// ---------------------------------------------------------------------------

/// A stored agent on the wire.
pub fn agent_to_proto(agent: &agents::Model) -> pb::Agent {
    let agents::Model {
        id,
        owner_id,
        workspace_id,
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
        created_at,
        updated_at,
    } = agent;
    pb::Agent {
        id: id.to_string(),
        owner_id: owner_id.to_string(),
        workspace_id: workspace_id.to_string(),
        name: name.clone(),
        slug: slug.clone(),
        kind: kind.to_proto(),
        binary_path: binary_path.clone(),
        base_args: strings(base_args),
        working_dir: working_dir.clone(),
        env_allowlist: strings(env_allowlist),
        is_active: Some(*is_active),
        max_concurrent: Some(*max_concurrent),
        discovery_method: discovery_method.to_proto(),
        version: version.clone(),
        package_name: package_name.clone(),
        package_section: package_section.clone(),
        tool_type: tool_type.clone(),
        mcp_enabled: *mcp_enabled,
        session_config: session_config
            .as_ref()
            .and_then(SessionConfig::from_json)
            .map(|config| session_config_to_proto(&config)),
        last_scanned_at: optional_timestamp(last_scanned_at),
        metadata: Some(metadata_to_proto(&AgentMetadata::from_json(metadata))),
        created_at: Some(timestamp(created_at)),
        updated_at: Some(timestamp(updated_at)),
    }
}

fn metadata_to_proto(metadata: &AgentMetadata) -> pb::AgentMetadata {
    let AgentMetadata {
        icon,
        color,
        description,
        homepage,
        default_isolation,
    } = metadata;
    pb::AgentMetadata {
        icon: icon.clone(),
        color: color.clone(),
        description: description.clone(),
        homepage: homepage.clone(),
        default_isolation: default_isolation.map_or(0, WireEnum::to_proto),
    }
}

fn metadata_from_proto(metadata: Option<&pb::AgentMetadata>) -> StoreResult<AgentMetadata> {
    let Some(pb::AgentMetadata {
        icon,
        color,
        description,
        homepage,
        default_isolation,
    }) = metadata
    else {
        return Ok(AgentMetadata::default());
    };
    Ok(AgentMetadata {
        icon: icon.clone(),
        color: color.clone(),
        description: description.clone(),
        homepage: homepage.clone(),
        default_isolation: WireEnum::from_proto(
            "agent.metadata.default_isolation",
            *default_isolation,
        )?,
    })
}

/// The wire form of a preset.
pub fn preset_to_proto(preset: &Preset) -> pb::AgentPreset {
    let capability = prompt_capability(preset);
    let Preset {
        name,
        display_name,
        default_binary,
        base_args,
        env_allowlist,
        session_config,
    } = preset;
    pb::AgentPreset {
        name: (*name).into(),
        display_name: (*display_name).into(),
        default_binary: (*default_binary).into(),
        base_args: base_args.clone(),
        session_config: Some(session_config_to_proto(session_config)),
        env_allowlist: env_allowlist.clone(),
        prompt_template: capability.prompt_template.unwrap_or_default(),
        timeout_sec: capability.timeout_sec.unwrap_or_default(),
    }
}

/// A `CreatePresetAgent` request; the store validates it.
pub fn preset_request(request: pb::CreatePresetAgentRequest) -> PresetRequest {
    let pb::CreatePresetAgentRequest {
        preset,
        binary_path,
        slug,
        name,
        working_dir,
        mcp_enabled,
        extra_args,
        max_concurrent,
    } = request;
    PresetRequest {
        preset: preset.trim().to_ascii_lowercase(),
        binary_path,
        slug,
        name,
        working_dir,
        mcp_enabled,
        extra_args,
        max_concurrent,
    }
}

fn session_config_to_proto(config: &SessionConfig) -> pb::AgentSessionConfig {
    let SessionConfig {
        session_id_source,
        session_id_field,
        session_file_glob,
        list_sessions_command,
        list_sessions_pattern,
        resume_flags,
        continue_flags,
        bidirectional_protocol,
        completion_idle_ms,
    } = config;
    pb::AgentSessionConfig {
        session_id_source: session_id_source
            .map_or(pb::SessionIdSource::Unspecified as i32, WireEnum::to_proto),
        session_id_field: session_id_field.clone(),
        session_file_glob: session_file_glob.clone(),
        list_sessions_command: list_sessions_command.clone(),
        list_sessions_pattern: list_sessions_pattern.clone(),
        resume_flags: resume_flags.clone(),
        continue_flags: continue_flags.clone(),
        bidirectional_protocol: bidirectional_protocol.map_or(
            pb::BidirectionalProtocol::Unspecified as i32,
            WireEnum::to_proto,
        ),
        completion_idle: completion_idle_ms.map(|ms| {
            let ms = i64::try_from(ms).unwrap_or(i64::MAX);
            prost_types::Duration {
                seconds: ms / 1000,
                nanos: (ms % 1000) as i32 * 1_000_000,
            }
        }),
    }
}

fn session_config_from_proto(
    config: Option<&pb::AgentSessionConfig>,
) -> StoreResult<Option<SessionConfig>> {
    let Some(pb::AgentSessionConfig {
        session_id_source,
        session_id_field,
        session_file_glob,
        list_sessions_command,
        list_sessions_pattern,
        resume_flags,
        continue_flags,
        bidirectional_protocol,
        completion_idle,
    }) = config
    else {
        return Ok(None);
    };
    Ok(Some(SessionConfig {
        session_id_source: SessionIdSource::from_proto(
            "agent.session_config.session_id_source",
            *session_id_source,
        )?,
        session_id_field: session_id_field.clone(),
        session_file_glob: session_file_glob.clone(),
        list_sessions_command: list_sessions_command.clone(),
        list_sessions_pattern: list_sessions_pattern.clone(),
        resume_flags: resume_flags.clone(),
        continue_flags: continue_flags.clone(),
        bidirectional_protocol: BidirectionalProtocol::from_proto(
            "agent.session_config.bidirectional_protocol",
            *bidirectional_protocol,
        )?,
        completion_idle_ms: match completion_idle {
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

fn required<'a, T>(field: &str, message: Option<&'a T>) -> StoreResult<&'a T> {
    message.ok_or_else(|| StoreError::invalid(field, "is required"))
}

fn optional_time(
    field: &str,
    time: &Option<prost_types::Timestamp>,
) -> StoreResult<Option<chrono::DateTime<chrono::FixedOffset>>> {
    time.as_ref()
        .map(|time| parse_timestamp(field, time))
        .transpose()
}

/// Every caller-settable field of a wire agent, parsed (output-only fields
/// are ignored). Each field is parsed only when `wanted` names it, so an
/// update reads only the fields of its mask.
fn agent_fields(agent: &pb::Agent, wanted: impl Fn(&str) -> bool) -> StoreResult<AgentPatch> {
    let pb::Agent {
        id: _,
        owner_id: _,
        workspace_id: _,
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
        created_at: _,
        updated_at: _,
    } = agent;
    let field = |name: &str| wanted(name);
    Ok(AgentPatch {
        name: field("name").then(|| name.clone()),
        slug: field("slug").then(|| slug.clone()),
        kind: field("kind")
            .then(|| AgentKind::from_proto("agent.kind", *kind))
            .transpose()?,
        binary_path: field("binary_path").then(|| binary_path.clone()),
        base_args: field("base_args").then(|| base_args.clone()),
        working_dir: field("working_dir").then(|| working_dir.clone()),
        env_allowlist: field("env_allowlist").then(|| env_allowlist.clone()),
        is_active: field("is_active").then_some(*is_active),
        max_concurrent: field("max_concurrent").then_some(*max_concurrent),
        discovery_method: field("discovery_method")
            .then(|| DiscoveryMethod::from_proto("agent.discovery_method", *discovery_method))
            .transpose()?,
        version: field("version").then(|| version.clone()),
        package_name: field("package_name").then(|| package_name.clone()),
        package_section: field("package_section").then(|| package_section.clone()),
        tool_type: field("tool_type").then(|| tool_type.clone()),
        mcp_enabled: field("mcp_enabled").then_some(*mcp_enabled),
        session_config: field("session_config")
            .then(|| session_config_from_proto(session_config.as_ref()))
            .transpose()?,
        last_scanned_at: field("last_scanned_at")
            .then(|| optional_time("agent.last_scanned_at", last_scanned_at))
            .transpose()?,
        metadata: field("metadata")
            .then(|| metadata_from_proto(metadata.as_ref()))
            .transpose()?,
    })
}

/// The agent of a `CreateAgentRequest`; output-only fields are ignored.
pub fn agent_spec(agent: Option<&pb::Agent>) -> StoreResult<AgentSpec> {
    let mut spec = AgentSpec::default();
    agent_fields(required("agent", agent)?, |_| true)?.apply(&mut spec);
    Ok(spec)
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
    let paths = mask_paths("update_mask", mask, AGENT_UPDATABLE)?;
    let patch = agent_fields(agent, |name| paths.iter().any(|path| path == name))?;
    Ok((id, patch))
}

/// The filter and page of a `ListAgentsRequest`.
pub fn agent_list(request: &pb::ListAgentsRequest) -> StoreResult<(AgentFilter, PageRequest)> {
    let pb::ListAgentsRequest {
        page_size,
        page_token,
        is_active,
        kind,
    } = request;
    let page = PageRequest::parse(*page_size, page_token, RESOURCE_PAGES)?;
    let filter = AgentFilter {
        is_active: *is_active,
        kind: AgentKind::from_proto("kind", *kind)?,
    };
    Ok((filter, page))
}

// ---------------------------------------------------------------------------
// Capabilities
// ---------------------------------------------------------------------------

/// A stored capability on the wire.
pub fn capability_to_proto(capability: &agent_capabilities::Model) -> pb::Capability {
    let agent_capabilities::Model {
        id,
        agent_id,
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
        created_at,
    } = capability;
    pb::Capability {
        id: id.to_string(),
        agent_id: agent_id.to_string(),
        key: key.clone(),
        label: label.clone(),
        description: description.clone(),
        source: source.to_proto(),
        interaction_mode: interaction_mode.to_proto(),
        command_tokens: command_tokens.as_ref().map(strings).unwrap_or_default(),
        prompt_template: prompt_template.clone(),
        args_schema: Some(json_to_struct(args_schema)),
        requires_approval: *requires_approval,
        is_enabled: Some(*is_enabled),
        danger_level: i32::from(*danger_level),
        timeout_sec: Some(*timeout_sec),
        max_output_bytes: Some(*max_output_bytes),
        created_at: Some(timestamp(created_at)),
    }
}

/// Every caller-settable field of a wire capability but `agent_id`, parsed
/// when `wanted` names it (output-only fields are ignored).
fn capability_fields(
    capability: &pb::Capability,
    wanted: impl Fn(&str) -> bool,
) -> StoreResult<CapabilityPatch> {
    let pb::Capability {
        id: _,
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
        is_enabled,
        danger_level,
        timeout_sec,
        max_output_bytes,
        created_at: _,
    } = capability;
    let field = |name: &str| wanted(name);
    Ok(CapabilityPatch {
        key: field("key").then(|| key.clone()),
        label: field("label").then(|| label.clone()),
        description: field("description").then(|| description.clone()),
        source: field("source")
            .then(|| CapabilitySource::from_proto("capability.source", *source))
            .transpose()?,
        interaction_mode: field("interaction_mode")
            .then(|| InteractionMode::from_proto("capability.interaction_mode", *interaction_mode))
            .transpose()?,
        command_tokens: field("command_tokens").then(|| command_tokens.clone()),
        prompt_template: field("prompt_template").then(|| prompt_template.clone()),
        args_schema: field("args_schema").then(|| args_schema.as_ref().map(struct_to_json)),
        requires_approval: field("requires_approval").then_some(*requires_approval),
        is_enabled: field("is_enabled").then_some(*is_enabled),
        danger_level: field("danger_level").then_some(*danger_level),
        timeout_sec: field("timeout_sec").then_some(*timeout_sec),
        max_output_bytes: field("max_output_bytes").then_some(*max_output_bytes),
    })
}

/// The capability of a `CreateCapabilityRequest`; output-only fields are ignored.
pub fn capability_spec(capability: Option<&pb::Capability>) -> StoreResult<CapabilitySpec> {
    let capability = required("capability", capability)?;
    let mut spec = CapabilitySpec {
        agent_id: parse_id("capability.agent_id", &capability.agent_id)?,
        ..CapabilitySpec::default()
    };
    capability_fields(capability, |_| true)?.apply(&mut spec);
    Ok(spec)
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
    let paths = mask_paths("update_mask", mask, CAPABILITY_UPDATABLE)?;
    let patch = capability_fields(capability, |name| paths.iter().any(|path| path == name))?;
    Ok((id, patch))
}

/// The filter and page of a `ListCapabilitiesRequest`.
pub fn capability_list(
    request: &pb::ListCapabilitiesRequest,
) -> StoreResult<(CapabilityFilter, PageRequest)> {
    let pb::ListCapabilitiesRequest {
        page_size,
        page_token,
        agent_id,
        is_enabled,
    } = request;
    let page = PageRequest::parse(*page_size, page_token, RESOURCE_PAGES)?;
    let filter = CapabilityFilter {
        agent_id: parse_optional_id("agent_id", agent_id)?,
        is_enabled: *is_enabled,
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
