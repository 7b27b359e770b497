//! `amon agents discover`: asks a worker which CLI tools and AI coding
//! agents its machine has (`AgentService.DiscoverAgents`), shows the
//! proposals, and with `--apply` has the server create or update them.

use amon_proto::v1::{
    AgentProposal, AppliedAgent, ApplyAction, CapabilityProposal, CapabilitySource,
    DiscoverAgentsRequest, DiscoveryMethod, DiscoveryProblem, DiscoveryReport, DiscoverySource,
    InteractionMode, ProbeProblem, discover_agents_response,
};
use clap::{Args, builder::PossibleValuesParser};
use serde_json::{Value, json};

use crate::{client::Ctx, enums, json as js, output, table::list};

/// The sources by their command-line names.
const SOURCES: [(&str, DiscoverySource); 7] = [
    ("path", DiscoverySource::PathScan),
    ("preset", DiscoverySource::Preset),
    ("help", DiscoverySource::Help),
    ("completion", DiscoverySource::Completion),
    ("man", DiscoverySource::Man),
    ("fig", DiscoverySource::Fig),
    ("mcp", DiscoverySource::Mcp),
];

/// `amon agents discover`.
#[derive(Debug, Args)]
#[command(after_help = "\
The worker runs each binary only with --version (-V, version) and --help
(<subcommand> --help), each with a timeout, an empty environment and no stdin;
a binary that hangs, floods or crashes is listed under problems. Without
--apply nothing is written. With --apply, agents are matched by slug and
capabilities by key: a rescan updates what changed and never touches a
capability whose source is manual (UpdateCapability marks an edited one so).")]
pub struct DiscoverArgs {
    /// The connected worker to scan (see `amon workers`).
    #[arg(long, value_name = "WORKER_ID")]
    pub worker: String,
    /// Binaries to look at: names on the worker's PATH, or absolute paths
    /// (default: every executable on its PATH).
    #[arg(value_name = "NAME")]
    pub binaries: Vec<String>,
    /// Create or update the proposed agents and capabilities.
    #[arg(long)]
    pub apply: bool,
    /// Sources to use (comma-separated; default: all).
    #[arg(long, value_delimiter = ',', value_parser = PossibleValuesParser::new(SOURCES.map(|(n, _)| n)))]
    pub sources: Vec<String>,
    /// Longest the worker may scan, in seconds (default 120, at most 600).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(i64).range(1..=600))]
    pub timeout: Option<i64>,
    /// Also start the AI CLIs' configured stdio MCP servers (their own
    /// command and environment, a timeout, no other input) and propose their
    /// tools (`tools/list`) as capabilities.
    #[arg(long)]
    pub mcp_tools: bool,
    /// Also ask this AI agent (its slug; it needs a prompt capability, as
    /// `amon agents preset` makes) to propose capabilities from each tool's
    /// help, one run per tool (at most 5); they are created disabled.
    #[arg(long, value_name = "SLUG")]
    pub llm_agent: Option<String>,
}

/// Runs `amon agents discover`.
pub async fn run(ctx: &Ctx, args: DiscoverArgs) -> anyhow::Result<()> {
    let DiscoverArgs {
        worker,
        binaries,
        apply,
        sources,
        timeout,
        mcp_tools,
        llm_agent,
    } = args;
    let sources = sources
        .iter()
        .filter_map(|name| SOURCES.iter().find(|(n, _)| n == name))
        .map(|(_, s)| *s as i32)
        .collect();
    let mut stream = ctx
        .agents()
        .discover_agents(DiscoverAgentsRequest {
            worker_id: worker,
            binaries,
            sources,
            apply,
            timeout: timeout.map(|seconds| prost_types::Duration { seconds, nanos: 0 }),
            mcp_tools,
            llm_agent: llm_agent.unwrap_or_default(),
        })
        .await?
        .into_inner();
    let progress_shown = !ctx.json && output::terminal_width().is_some();
    while let Some(message) = stream.message().await? {
        match message.message {
            Some(discover_agents_response::Message::Progress(p)) if progress_shown => {
                eprint!("\r\x1b[Kscanning {}/{}: {}", p.done, p.total, p.binary);
            }
            Some(discover_agents_response::Message::Report(report)) => {
                if progress_shown {
                    eprint!("\r\x1b[K");
                }
                return show(ctx, &report);
            }
            Some(discover_agents_response::Message::Progress(_)) | None => {}
        }
    }
    Err(anyhow::anyhow!(
        "the server ended the discovery stream without a report"
    ))
}

fn show(ctx: &Ctx, report: &DiscoveryReport) -> anyhow::Result<()> {
    if ctx.json {
        output::json(&report_json(report))?;
        return Ok(());
    }
    let elapsed = report
        .elapsed
        .map(|d| d.seconds as f64 + f64::from(d.nanos) / 1e9)
        .unwrap_or(0.0);
    let capabilities: usize = report.proposals.iter().map(|p| p.capabilities.len()).sum();
    let mut text = format!(
        "{} binaries examined in {elapsed:.1} s: {} agents, {capabilities} capabilities proposed, {} problems\n",
        report.binaries_scanned,
        report.proposals.len(),
        report.problems.len()
    );
    if !report.proposals.is_empty() {
        text.push('\n');
        text.push_str(&proposals_table(&report.proposals));
        text.push('\n');
    }
    // A few tools: their capabilities too.
    if report.proposals.len() <= 10 && capabilities > 0 {
        text.push('\n');
        text.push_str(&capabilities_table(&report.proposals));
        text.push('\n');
    }
    if !report.problems.is_empty() {
        text.push_str("\nproblems:\n");
        for p in &report.problems {
            text.push_str(&format!("  {}\n", problem_line(p)));
        }
    }
    if report.applied {
        text.push('\n');
        text.push_str(&applied_summary(&report.applied_agents));
    } else {
        text.push_str("\n(dry run: nothing was written; --apply creates or updates them)\n");
    }
    output::block(text.trim_end())?;
    Ok(())
}

fn proposals_table(proposals: &[AgentProposal]) -> String {
    let rows = proposals
        .iter()
        .map(|p| {
            vec![
                p.slug.clone(),
                enums::display::<DiscoveryMethod>(p.discovery_method),
                p.tool_type.clone(),
                p.version.clone().unwrap_or_else(|| "-".into()),
                match (&p.package_name, &p.package_section) {
                    (Some(n), Some(s)) => format!("{n} ({s})"),
                    (Some(n), None) => n.clone(),
                    _ => "-".into(),
                },
                p.capabilities.len().to_string(),
                p.binary_path.clone(),
            ]
        })
        .collect();
    list(
        &[
            "slug", "method", "type", "version", "package", "caps", "binary",
        ],
        &["version", "binary"],
        rows,
    )
}

fn capabilities_table(proposals: &[AgentProposal]) -> String {
    let rows = proposals
        .iter()
        .flat_map(|p| {
            p.capabilities.iter().map(move |c| {
                let command = if c.interaction_mode == InteractionMode::Prompt as i32 {
                    "(prompt)".to_string()
                } else {
                    c.command_tokens.join(" ")
                };
                vec![
                    format!("{}/{}", p.slug, c.key),
                    enums::display::<CapabilitySource>(c.source),
                    if c.requires_approval {
                        format!("{} approval", c.danger_level)
                    } else {
                        c.danger_level.to_string()
                    },
                    command,
                    c.description.clone().unwrap_or_default(),
                ]
            })
        })
        .collect();
    list(
        &["capability", "source", "danger", "command", "description"],
        &["command", "description"],
        rows,
    )
}

fn problem_line(p: &DiscoveryProblem) -> String {
    let what = match ProbeProblem::try_from(p.problem) {
        Ok(ProbeProblem::TimedOut) => "timed out",
        Ok(ProbeProblem::Flooded) => "flooded",
        Ok(ProbeProblem::Crashed) => "crashed",
        Ok(ProbeProblem::Unreadable) => "unreadable",
        _ => "problem",
    };
    let who = if p.binary.is_empty() {
        String::new()
    } else {
        format!("{} ", p.binary)
    };
    format!("{who}({}): {what}: {}", p.probe, p.detail)
}

fn action_name(action: i32) -> &'static str {
    match ApplyAction::try_from(action) {
        Ok(ApplyAction::Created) => "created",
        Ok(ApplyAction::Updated) => "updated",
        Ok(ApplyAction::Unchanged) => "unchanged",
        Ok(ApplyAction::KeptManual) => "kept (manual)",
        Ok(ApplyAction::Skipped) => "skipped",
        _ => "?",
    }
}

fn applied_summary(applied: &[AppliedAgent]) -> String {
    let count = |actions: &mut dyn Iterator<Item = i32>| {
        let mut counts: Vec<(&str, usize)> = Vec::new();
        for action in actions {
            let name = action_name(action);
            match counts.iter_mut().find(|(n, _)| *n == name) {
                Some((_, c)) => *c += 1,
                None => counts.push((name, 1)),
            }
        }
        counts
            .iter()
            .map(|(n, c)| format!("{c} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let agents = count(&mut applied.iter().map(|a| a.action));
    let caps = count(
        &mut applied
            .iter()
            .flat_map(|a| a.capabilities.iter().map(|c| c.action)),
    );
    let mut text = format!("applied: agents {agents}; capabilities {caps}\n");
    for agent in applied {
        if !agent.reason.is_empty() {
            text.push_str(&format!(
                "  {}: {}: {}\n",
                agent.slug,
                action_name(agent.action),
                agent.reason
            ));
        }
        for cap in agent
            .capabilities
            .iter()
            .filter(|c| c.action == ApplyAction::Skipped as i32)
        {
            text.push_str(&format!(
                "  {}/{}: skipped: {}\n",
                agent.slug, cap.key, cap.reason
            ));
        }
    }
    text
}

fn capability_json(c: &CapabilityProposal) -> Value {
    json!({
        "key": c.key,
        "label": c.label,
        "description": c.description,
        "source": enums::name_of::<CapabilitySource>(c.source),
        "interaction_mode": enums::name_of::<InteractionMode>(c.interaction_mode),
        "command_tokens": c.command_tokens,
        "prompt_template": c.prompt_template,
        "args_schema": c.args_schema.as_ref().map(js::struct_to_json),
        "danger_level": c.danger_level,
        "requires_approval": c.requires_approval,
        "danger_reason": c.danger_reason,
    })
}

fn report_json(report: &DiscoveryReport) -> Value {
    json!({
        "binaries_scanned": report.binaries_scanned,
        "elapsed_seconds": report.elapsed.map(|d| d.seconds as f64 + f64::from(d.nanos) / 1e9),
        "proposals": report.proposals.iter().map(|p| json!({
            "slug": p.slug,
            "name": p.name,
            "binary_path": p.binary_path,
            "discovery_method": enums::name_of::<DiscoveryMethod>(p.discovery_method),
            "version": p.version,
            "package_name": p.package_name,
            "package_section": p.package_section,
            "tool_type": p.tool_type,
            "preset": p.preset,
            "description": p.description,
            "capabilities": p.capabilities.iter().map(capability_json).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "problems": report.problems.iter().map(|p| json!({
            "binary": p.binary,
            "probe": p.probe,
            "problem": ProbeProblem::try_from(p.problem).map(|p| p.as_str_name()).unwrap_or("PROBE_PROBLEM_UNSPECIFIED"),
            "detail": p.detail,
        })).collect::<Vec<_>>(),
        "applied": report.applied,
        "applied_agents": report.applied_agents.iter().map(|a| json!({
            "agent_id": a.agent_id,
            "slug": a.slug,
            "action": action_name(a.action),
            "reason": a.reason,
            "capabilities": a.capabilities.iter().map(|c| json!({
                "capability_id": c.capability_id,
                "key": c.key,
                "action": action_name(c.action),
                "reason": c.reason,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}
