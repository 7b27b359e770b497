//! Discovery: the `DiscoverAgents` request, the worker's answers on its
//! stream, and the report, wire <-> store types. A worker's proposals are
//! checked here like any caller's input (printable text, bounded sizes),
//! and again by the store's rules when applied.

use std::time::Duration;

use amon_proto::v1 as pb;

use super::{enums::WireEnum, json_to_struct, optional_struct_to_json, worker::duration_to_proto};
use crate::{
    dispatch::messages::{DiscoverProgress, DiscoverRequest},
    store::{
        StoreError, StoreResult,
        discovery::{
            AgentProposal, AppliedAgent, AppliedCapability, ApplyAction, CapabilityProposal,
            DiscoveryProblem, DiscoverySource, Found, ProbeProblem,
        },
        validate::check_printable,
    },
};

/// Scan time when the request names none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest scan a caller may ask for.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);
/// Most binaries a request may name.
const MAX_BINARIES: usize = 1000;
/// Longest binary name or path in a request.
const MAX_BINARY_CHARS: usize = 4096;
/// Longest text a worker's proposal carries in one field.
const MAX_TEXT_CHARS: usize = 64 * 1024;

/// A request source on the wire.
fn source_from_proto(field: &str, value: i32) -> StoreResult<DiscoverySource> {
    use pb::DiscoverySource as P;
    match P::try_from(value) {
        Ok(P::PathScan) => Ok(DiscoverySource::PathScan),
        Ok(P::Preset) => Ok(DiscoverySource::Preset),
        Ok(P::Help) => Ok(DiscoverySource::Help),
        Ok(P::Completion) => Ok(DiscoverySource::Completion),
        Ok(P::Man) => Ok(DiscoverySource::Man),
        Ok(P::Fig) => Ok(DiscoverySource::Fig),
        Ok(P::Mcp) => Ok(DiscoverySource::Mcp),
        Ok(P::Unspecified) => Err(StoreError::invalid(field, "must name a source")),
        Err(_) => Err(StoreError::invalid(
            field,
            format!("{value} is not a valid DiscoverySource"),
        )),
    }
}

/// A source on the wire.
pub fn source_to_proto(source: DiscoverySource) -> i32 {
    use pb::DiscoverySource as P;
    (match source {
        DiscoverySource::PathScan => P::PathScan,
        DiscoverySource::Preset => P::Preset,
        DiscoverySource::Help => P::Help,
        DiscoverySource::Completion => P::Completion,
        DiscoverySource::Man => P::Man,
        DiscoverySource::Fig => P::Fig,
        DiscoverySource::Mcp => P::Mcp,
    }) as i32
}

/// A `DiscoverAgents` request, checked.
#[derive(Debug)]
pub struct DiscoverCall {
    /// The worker to scan.
    pub worker_id: String,
    /// What it is asked.
    pub scan: DiscoverRequest,
    /// Whether to apply the proposals.
    pub apply: bool,
    /// The AI agent to ask for proposals, by slug.
    pub llm_agent: Option<String>,
}

/// A `DiscoverAgents` request: the worker, what to scan, whether to apply,
/// and which AI agent to ask.
pub fn discover_request(request: pb::DiscoverAgentsRequest) -> StoreResult<DiscoverCall> {
    let pb::DiscoverAgentsRequest {
        worker_id,
        binaries,
        sources,
        apply,
        timeout,
        mcp_tools,
        llm_agent,
    } = request;
    let llm_agent = llm_agent.trim().to_owned();
    check_printable("llm_agent", &llm_agent, 128)?;
    let llm_agent = (!llm_agent.is_empty()).then_some(llm_agent);
    let worker_id = worker_id.trim().to_owned();
    if worker_id.is_empty() {
        return Err(StoreError::invalid("worker_id", "is required"));
    }
    check_printable("worker_id", &worker_id, 128)?;
    if binaries.len() > MAX_BINARIES {
        return Err(StoreError::invalid(
            "binaries",
            format!("at most {MAX_BINARIES} names, not {}", binaries.len()),
        ));
    }
    for (i, binary) in binaries.iter().enumerate() {
        let field = format!("binaries[{i}]");
        if binary.trim().is_empty() {
            return Err(StoreError::invalid(field, "must not be empty"));
        }
        check_printable(&field, binary, MAX_BINARY_CHARS)?;
        if binary.contains('/') && !binary.starts_with('/') {
            return Err(StoreError::invalid(
                field,
                "must be a name found on PATH or an absolute path",
            ));
        }
    }
    let mut chosen = sources
        .iter()
        .enumerate()
        .map(|(i, s)| source_from_proto(&format!("sources[{i}]"), *s))
        .collect::<StoreResult<Vec<_>>>()?;
    if chosen.is_empty() {
        chosen = DiscoverySource::ALL.to_vec();
    }
    // PATH scanning finds what every other source works on.
    chosen.push(DiscoverySource::PathScan);
    chosen.sort();
    chosen.dedup();
    if mcp_tools && !chosen.contains(&DiscoverySource::Mcp) {
        return Err(StoreError::invalid(
            "mcp_tools",
            "asks the MCP servers found by DISCOVERY_SOURCE_MCP: add that source, or leave sources empty",
        ));
    }
    let timeout = match timeout {
        None => DEFAULT_TIMEOUT,
        Some(t) => {
            let t = super::worker::parse_duration("timeout", &t)?;
            if t.is_zero() || t > MAX_TIMEOUT {
                return Err(StoreError::invalid(
                    "timeout",
                    format!(
                        "must be more than 0 and at most {} s",
                        MAX_TIMEOUT.as_secs()
                    ),
                ));
            }
            t
        }
    };
    if llm_agent.is_some() && !chosen.contains(&DiscoverySource::Help) {
        return Err(StoreError::invalid(
            "llm_agent",
            "reads the help texts found by DISCOVERY_SOURCE_HELP: add that source, or leave sources empty",
        ));
    }
    Ok(DiscoverCall {
        worker_id,
        scan: DiscoverRequest {
            binaries,
            sources: chosen,
            timeout,
            mcp_tools,
            help_texts: llm_agent.is_some(),
        },
        apply,
        llm_agent,
    })
}

/// The `discover` message to a worker.
pub fn discover_to_proto(request_id: uuid::Uuid, request: DiscoverRequest) -> pb::Discover {
    let DiscoverRequest {
        binaries,
        sources,
        timeout,
        mcp_tools,
        help_texts,
    } = request;
    pb::Discover {
        request_id: request_id.to_string(),
        binaries,
        sources: sources.into_iter().map(source_to_proto).collect(),
        timeout: Some(duration_to_proto(timeout)),
        mcp_tools,
        help_texts,
    }
}

/// A worker's progress report.
pub fn progress_from_worker(
    progress: pb::DiscoverProgress,
) -> StoreResult<(uuid::Uuid, DiscoverProgress)> {
    let pb::DiscoverProgress {
        request_id,
        done,
        total,
        binary,
    } = progress;
    let request_id = super::parse_id("discover_progress.request_id", &request_id)?;
    check_printable("discover_progress.binary", &binary, MAX_BINARY_CHARS)?;
    Ok((
        request_id,
        DiscoverProgress {
            done,
            total,
            binary,
        },
    ))
}

/// A worker's result.
pub fn result_from_worker(
    result: pb::DiscoverResult,
) -> StoreResult<(uuid::Uuid, Result<Found, String>)> {
    let pb::DiscoverResult {
        request_id,
        proposals,
        problems,
        binaries_scanned,
        elapsed,
        error,
    } = result;
    let request_id = super::parse_id("discover_result.request_id", &request_id)?;
    if !error.is_empty() {
        check_printable("discover_result.error", &error, MAX_TEXT_CHARS)?;
        return Ok((request_id, Err(error)));
    }
    // One malformed proposal costs that proposal, not the scan: it is left
    // out with a problem saying why (refusing the whole answer left the
    // caller waiting for a result that never came).
    let mut problems = problems
        .into_iter()
        .enumerate()
        .filter_map(|(i, p)| problem_from_proto(&format!("discover_result.problems[{i}]"), p).ok())
        .collect::<Vec<_>>();
    let mut kept = Vec::with_capacity(proposals.len());
    for (i, proposal) in proposals.into_iter().enumerate() {
        let binary = proposal.binary_path.clone();
        match proposal_from_proto(&format!("discover_result.proposals[{i}]"), proposal) {
            Ok(proposal) => kept.push(proposal),
            Err(err) => problems.push(DiscoveryProblem {
                binary: binary.chars().filter(|c| !c.is_control()).collect(),
                probe: "proposal".into(),
                problem: Some(ProbeProblem::Unreadable),
                detail: err.to_string(),
            }),
        }
    }
    let proposals = kept;
    let elapsed = elapsed
        .map(|e| super::worker::parse_duration("discover_result.elapsed", &e))
        .transpose()?
        .unwrap_or_default();
    Ok((
        request_id,
        Ok(Found {
            proposals,
            problems,
            binaries_scanned,
            elapsed,
        }),
    ))
}

fn text(field: &str, value: &str) -> StoreResult<()> {
    // Descriptions come from help texts: tabs and newlines are fine, other
    // control characters (escape sequences of a coloured help) are not.
    if let Some(c) = value
        .chars()
        .find(|c| c.is_control() && *c != '\n' && *c != '\t')
    {
        return Err(StoreError::invalid(
            field,
            format!("contains the control character {:?}", c),
        ));
    }
    if value.chars().count() > MAX_TEXT_CHARS {
        return Err(StoreError::invalid(
            field,
            format!("longer than {MAX_TEXT_CHARS} characters"),
        ));
    }
    Ok(())
}

fn proposal_from_proto(field: &str, proposal: pb::AgentProposal) -> StoreResult<AgentProposal> {
    let pb::AgentProposal {
        slug,
        name,
        binary_path,
        discovery_method,
        version,
        package_name,
        package_section,
        tool_type,
        preset,
        capabilities,
        description,
        help_text,
    } = proposal;
    let sub = |name: &str| format!("{field}.{name}");
    for (name, value) in [
        ("slug", &slug),
        ("name", &name),
        ("binary_path", &binary_path),
        ("tool_type", &tool_type),
        ("preset", &preset),
    ] {
        text(&sub(name), value)?;
    }
    for (name, value) in [
        ("version", &version),
        ("package_name", &package_name),
        ("package_section", &package_section),
        ("description", &description),
        ("help_text", &help_text),
    ] {
        if let Some(value) = value {
            text(&sub(name), value)?;
        }
    }
    Ok(AgentProposal {
        discovery_method: crate::entity::enums::DiscoveryMethod::from_proto(
            &sub("discovery_method"),
            discovery_method,
        )?,
        capabilities: capabilities
            .into_iter()
            .enumerate()
            .map(|(i, c)| capability_from_proto(&sub(&format!("capabilities[{i}]")), c))
            .collect::<StoreResult<_>>()?,
        slug,
        name,
        binary_path,
        version,
        package_name,
        package_section,
        tool_type,
        preset,
        description,
        help_text,
    })
}

fn capability_from_proto(
    field: &str,
    capability: pb::CapabilityProposal,
) -> StoreResult<CapabilityProposal> {
    let pb::CapabilityProposal {
        key,
        label,
        description,
        source,
        interaction_mode,
        command_tokens,
        prompt_template,
        args_schema,
        danger_level,
        requires_approval,
        danger_reason,
    } = capability;
    let sub = |name: &str| format!("{field}.{name}");
    text(&sub("key"), &key)?;
    text(&sub("label"), &label)?;
    text(&sub("danger_reason"), &danger_reason)?;
    if let Some(d) = &description {
        text(&sub("description"), d)?;
    }
    if let Some(p) = &prompt_template {
        text(&sub("prompt_template"), p)?;
    }
    for token in &command_tokens {
        text(&sub("command_tokens"), token)?;
    }
    Ok(CapabilityProposal {
        source: crate::entity::enums::CapabilitySource::from_proto(&sub("source"), source)?,
        interaction_mode: crate::entity::enums::InteractionMode::from_proto(
            &sub("interaction_mode"),
            interaction_mode,
        )?,
        args_schema: optional_struct_to_json(&args_schema),
        key,
        label,
        description,
        command_tokens,
        prompt_template,
        danger_level,
        requires_approval,
        danger_reason,
    })
}

fn problem_from_proto(field: &str, problem: pb::DiscoveryProblem) -> StoreResult<DiscoveryProblem> {
    let pb::DiscoveryProblem {
        binary,
        probe,
        problem,
        detail,
    } = problem;
    text(&format!("{field}.binary"), &binary)?;
    text(&format!("{field}.probe"), &probe)?;
    text(&format!("{field}.detail"), &detail)?;
    use pb::ProbeProblem as P;
    let problem = match P::try_from(problem) {
        Ok(P::TimedOut) => Some(ProbeProblem::TimedOut),
        Ok(P::Flooded) => Some(ProbeProblem::Flooded),
        Ok(P::Crashed) => Some(ProbeProblem::Crashed),
        Ok(P::Unreadable) => Some(ProbeProblem::Unreadable),
        Ok(P::Unspecified) | Err(_) => None,
    };
    Ok(DiscoveryProblem {
        binary,
        probe,
        problem,
        detail,
    })
}

fn proposal_to_proto(proposal: &AgentProposal) -> pb::AgentProposal {
    let AgentProposal {
        slug,
        name,
        binary_path,
        discovery_method,
        version,
        package_name,
        package_section,
        tool_type,
        preset,
        capabilities,
        description,
        help_text: _,
    } = proposal;
    pb::AgentProposal {
        slug: slug.clone(),
        name: name.clone(),
        binary_path: binary_path.clone(),
        discovery_method: discovery_method.map_or(0, WireEnum::to_proto),
        version: version.clone(),
        package_name: package_name.clone(),
        package_section: package_section.clone(),
        tool_type: tool_type.clone(),
        preset: preset.clone(),
        capabilities: capabilities.iter().map(capability_to_proto).collect(),
        description: description.clone(),
        // Sent for the AI agent asked, not for the caller: the report stays
        // the size of what was proposed.
        help_text: None,
    }
}

fn capability_to_proto(capability: &CapabilityProposal) -> pb::CapabilityProposal {
    let CapabilityProposal {
        key,
        label,
        description,
        source,
        interaction_mode,
        command_tokens,
        prompt_template,
        args_schema,
        danger_level,
        requires_approval,
        danger_reason,
    } = capability;
    pb::CapabilityProposal {
        key: key.clone(),
        label: label.clone(),
        description: description.clone(),
        source: source.map_or(0, WireEnum::to_proto),
        interaction_mode: interaction_mode.map_or(0, WireEnum::to_proto),
        command_tokens: command_tokens.clone(),
        prompt_template: prompt_template.clone(),
        args_schema: Some(json_to_struct(args_schema)),
        danger_level: *danger_level,
        requires_approval: *requires_approval,
        danger_reason: danger_reason.clone(),
    }
}

fn problem_to_proto(problem: &DiscoveryProblem) -> pb::DiscoveryProblem {
    let DiscoveryProblem {
        binary,
        probe,
        problem,
        detail,
    } = problem;
    use pb::ProbeProblem as P;
    pb::DiscoveryProblem {
        binary: binary.clone(),
        probe: probe.clone(),
        problem: (match problem {
            None => P::Unspecified,
            Some(ProbeProblem::TimedOut) => P::TimedOut,
            Some(ProbeProblem::Flooded) => P::Flooded,
            Some(ProbeProblem::Crashed) => P::Crashed,
            Some(ProbeProblem::Unreadable) => P::Unreadable,
        }) as i32,
        detail: detail.clone(),
    }
}

fn action_to_proto(action: ApplyAction) -> i32 {
    use pb::ApplyAction as P;
    (match action {
        ApplyAction::Created => P::Created,
        ApplyAction::Updated => P::Updated,
        ApplyAction::Unchanged => P::Unchanged,
        ApplyAction::KeptManual => P::KeptManual,
        ApplyAction::Skipped => P::Skipped,
    }) as i32
}

fn applied_to_proto(applied: AppliedAgent) -> pb::AppliedAgent {
    let AppliedAgent {
        agent_id,
        slug,
        action,
        reason,
        capabilities,
    } = applied;
    pb::AppliedAgent {
        agent_id: agent_id.map(|id| id.to_string()).unwrap_or_default(),
        slug,
        action: action_to_proto(action),
        reason,
        capabilities: capabilities
            .into_iter()
            .map(
                |AppliedCapability {
                     capability_id,
                     key,
                     action,
                     reason,
                 }| pb::AppliedCapability {
                    capability_id: capability_id.map(|id| id.to_string()).unwrap_or_default(),
                    key,
                    action: action_to_proto(action),
                    reason,
                },
            )
            .collect(),
    }
}

/// The report of a scan, with what applying it did (`None`: a dry run).
pub fn report_to_proto(found: &Found, applied: Option<Vec<AppliedAgent>>) -> pb::DiscoveryReport {
    let Found {
        proposals,
        problems,
        binaries_scanned,
        elapsed,
    } = found;
    pb::DiscoveryReport {
        proposals: proposals.iter().map(proposal_to_proto).collect(),
        problems: problems.iter().map(problem_to_proto).collect(),
        binaries_scanned: *binaries_scanned,
        elapsed: Some(duration_to_proto(*elapsed)),
        applied: applied.is_some(),
        applied_agents: applied
            .unwrap_or_default()
            .into_iter()
            .map(applied_to_proto)
            .collect(),
    }
}

/// The progress message of the response stream.
pub fn progress_to_proto(progress: DiscoverProgress) -> pb::DiscoveryProgress {
    let DiscoverProgress {
        done,
        total,
        binary,
    } = progress;
    pb::DiscoveryProgress {
        done,
        total,
        binary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked_field_by_field() {
        let ok = |r: pb::DiscoverAgentsRequest| discover_request(r);
        let err = |r: pb::DiscoverAgentsRequest| ok(r).unwrap_err().to_string();
        assert_eq!(
            err(pb::DiscoverAgentsRequest::default()),
            "worker_id: is required"
        );
        let base = pb::DiscoverAgentsRequest {
            worker_id: "w1".into(),
            ..Default::default()
        };
        let call = ok(base.clone()).unwrap();
        assert_eq!((call.worker_id.as_str(), call.apply), ("w1", false));
        assert_eq!(call.scan.sources, DiscoverySource::ALL.to_vec());
        assert_eq!(call.scan.timeout, DEFAULT_TIMEOUT);
        assert!(!call.scan.help_texts && call.llm_agent.is_none());
        // Asking an AI agent takes the help texts; the MCP servers' tools
        // and the agent need the sources that find what they read.
        let call = ok(pb::DiscoverAgentsRequest {
            llm_agent: " claude ".into(),
            ..base.clone()
        })
        .unwrap();
        assert_eq!(call.llm_agent.as_deref(), Some("claude"));
        assert!(call.scan.help_texts);
        assert!(
            err(pb::DiscoverAgentsRequest {
                llm_agent: "claude".into(),
                sources: vec![pb::DiscoverySource::Man as i32],
                ..base.clone()
            })
            .starts_with("llm_agent:")
        );
        assert!(
            err(pb::DiscoverAgentsRequest {
                mcp_tools: true,
                sources: vec![pb::DiscoverySource::Help as i32],
                ..base.clone()
            })
            .starts_with("mcp_tools:")
        );
        assert!(
            err(pb::DiscoverAgentsRequest {
                sources: vec![0],
                ..base.clone()
            })
            .starts_with("sources[0]:")
        );
        assert!(
            err(pb::DiscoverAgentsRequest {
                sources: vec![99],
                ..base.clone()
            })
            .starts_with("sources[0]:")
        );
        assert!(
            err(pb::DiscoverAgentsRequest {
                binaries: vec!["git".into(), "bin/rg".into()],
                ..base.clone()
            })
            .starts_with("binaries[1]:")
        );
        assert!(
            err(pb::DiscoverAgentsRequest {
                timeout: Some(prost_types::Duration {
                    seconds: 601,
                    nanos: 0
                }),
                ..base.clone()
            })
            .starts_with("timeout:")
        );
        // PATH scanning comes with any source named.
        let request = ok(pb::DiscoverAgentsRequest {
            sources: vec![pb::DiscoverySource::Help as i32],
            ..base
        })
        .unwrap()
        .scan;
        assert_eq!(
            request.sources,
            vec![DiscoverySource::PathScan, DiscoverySource::Help]
        );
    }
}
