//! `amon agents`: the agent registry.

use amon_proto::v1::{
    Agent, AgentKind, AgentMetadata, CreateAgentRequest, CreatePresetAgentRequest,
    DeleteAgentRequest, ListAgentPresetsRequest, UpdateAgentRequest, WorktreeIsolation,
};
use clap::{Args, Subcommand, builder::PossibleValuesParser};
use prost_types::FieldMask;

use super::{
    apply_clears, clear_contradicts, done, finish_update, in_mask, missing, show, show_list,
};
use crate::{
    client::{Ctx, UsageError},
    enums, json,
    mask::MaskBuilder,
    parse, resolve, table,
};

/// Agents: the CLI tools and AI coding agents workers can run.
#[derive(Debug, Subcommand)]
pub enum AgentsCmd {
    /// Register an agent.
    Create(CreateArgs),
    /// Register an AI coding agent (claude, codex or gemini) from its preset,
    /// with a `prompt` capability: `amon agents preset claude --binary ~/.local/bin/claude`.
    Preset(PresetArgs),
    /// List the AI coding agent presets.
    Presets,
    /// Show one agent (by id, id prefix or slug).
    #[command(visible_alias = "show")]
    Get {
        /// Agent id, id prefix or slug.
        agent: String,
    },
    /// List agents (every page).
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Change an agent: only the fields given are sent (a FieldMask).
    Update(UpdateArgs),
    /// Delete an agent and its capabilities.
    ///
    /// Refused while executions reference it: deactivate it instead with
    /// `amon agents update AGENT --active false`.
    #[command(visible_alias = "rm")]
    Delete {
        /// Agent id, id prefix or slug.
        agent: String,
    },
    /// Find the CLI tools and AI coding agents on a worker's machine and
    /// propose agents and capabilities for them (`--apply` writes them):
    /// `amon agents discover --worker builder-1 git rg --apply`.
    Discover(super::discover::DiscoverArgs),
}

/// `amon agents create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Human-readable name.
    #[arg(long)]
    pub name: String,
    /// Unique short name: lowercase letters, digits and '-'.
    #[arg(long)]
    pub slug: String,
    /// Executable on the worker: a path or a name looked up in PATH.
    #[arg(long, value_name = "PATH")]
    pub binary: String,
    /// Argument always passed first (repeat for several; values may start with '-').
    #[arg(long = "base-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub base_args: Vec<String>,
    /// Working directory for runs when the task names none.
    #[arg(long, value_name = "DIR")]
    pub working_dir: Option<String>,
    /// Worker environment variable the child may see (repeat, or comma-separate).
    #[arg(long = "env-allow", value_name = "VAR", value_delimiter = ',')]
    pub env_allow: Vec<String>,
    /// Most runs of this agent at once, across all workers (default 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    pub max_concurrent: Option<i32>,
    /// Register it inactive (not run until activated).
    #[arg(long)]
    pub inactive: bool,
    /// Launch it configured to reach the Agent Monitor MCP server.
    #[arg(long)]
    pub mcp: bool,
    /// Builtin (preset) or custom (default).
    #[arg(long, value_parser = enums::parser::<AgentKind>())]
    pub kind: Option<AgentKind>,
    /// Longer description.
    #[arg(long)]
    pub description: Option<String>,
    /// Tool type: cli-tool, ai-agent, daemon or shell-util.
    #[arg(long, value_name = "TYPE")]
    pub tool_type: Option<String>,
}

/// `amon agents preset`.
#[derive(Debug, Args)]
pub struct PresetArgs {
    /// Preset: claude, codex or gemini.
    #[arg(value_parser = PossibleValuesParser::new(["claude", "codex", "gemini"]))]
    pub preset: String,
    /// The installed CLI on the workers: a path or a name looked up in PATH
    /// (default: the preset's command name).
    #[arg(long, value_name = "PATH")]
    pub binary: Option<String>,
    /// Slug (default: the preset name).
    #[arg(long)]
    pub slug: Option<String>,
    /// Name (default: the preset's display name).
    #[arg(long)]
    pub name: Option<String>,
    /// Working directory for runs when the task names none.
    #[arg(long, value_name = "DIR")]
    pub working_dir: Option<String>,
    /// Extra argument after the preset's (repeat; values may start with '-').
    #[arg(long = "arg", value_name = "ARG", allow_hyphen_values = true)]
    pub extra_args: Vec<String>,
    /// Most runs of this agent at once, across all workers (default 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    pub max_concurrent: Option<i32>,
    /// Launch it configured to reach the Agent Monitor MCP server.
    #[arg(long)]
    pub mcp: bool,
}

/// `amon agents list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only active agents.
    #[arg(long, conflicts_with = "inactive")]
    pub active: bool,
    /// Only inactive agents.
    #[arg(long)]
    pub inactive: bool,
    /// Only agents of this kind.
    #[arg(long, value_parser = enums::parser::<AgentKind>())]
    pub kind: Option<AgentKind>,
}

/// Agent fields `update --clear` can reset.
/// Agent fields `update --clear` can reset, named after their flags, with
/// their FieldMask paths.
const CLEARABLE: [(&str, &str); 5] = [
    ("base-args", "base_args"),
    ("working-dir", "working_dir"),
    ("env-allow", "env_allowlist"),
    ("tool-type", "tool_type"),
    ("description", "metadata"),
];

/// `amon agents update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Agent id, id prefix or slug.
    pub agent: String,
    /// New name.
    #[arg(long)]
    pub name: Option<String>,
    /// New slug.
    #[arg(long)]
    pub slug: Option<String>,
    /// New executable.
    #[arg(long, value_name = "PATH")]
    pub binary: Option<String>,
    /// New base arguments (repeat; replaces the whole list).
    #[arg(long = "base-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub base_args: Vec<String>,
    /// New working directory.
    #[arg(long, value_name = "DIR")]
    pub working_dir: Option<String>,
    /// New environment allowlist (repeat or comma-separate; replaces the whole list).
    #[arg(long = "env-allow", value_name = "VAR", value_delimiter = ',')]
    pub env_allow: Vec<String>,
    /// New concurrency limit.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    pub max_concurrent: Option<i32>,
    /// Activate (true) or deactivate (false).
    #[arg(long, value_name = "BOOL", value_parser = parse::boolean)]
    pub active: Option<bool>,
    /// Enable or disable the MCP configuration.
    #[arg(long, value_name = "BOOL", value_parser = parse::boolean)]
    pub mcp: Option<bool>,
    /// New kind.
    #[arg(long, value_parser = enums::parser::<AgentKind>())]
    pub kind: Option<AgentKind>,
    /// New description.
    #[arg(long)]
    pub description: Option<String>,
    /// Whether the agent's runs work in a git worktree of their task's own
    /// (worktree) or in the working directory (none), for tasks that do not
    /// choose.
    #[arg(long, value_name = "ISOLATION", value_parser = PossibleValuesParser::new(["worktree", "none"]))]
    pub default_isolation: Option<String>,
    /// New tool type.
    #[arg(long, value_name = "TYPE")]
    pub tool_type: Option<String>,
    /// Reset a field to empty (repeatable).
    #[arg(long, value_name = "FIELD", value_parser = PossibleValuesParser::new(CLEARABLE.map(|(name, _)| name)))]
    pub clear: Vec<String>,
}

/// Runs `amon agents …`.
pub async fn run(ctx: &Ctx, cmd: AgentsCmd) -> anyhow::Result<()> {
    match cmd {
        AgentsCmd::Discover(args) => super::discover::run(ctx, args).await,
        AgentsCmd::Create(args) => {
            let response = ctx
                .agents()
                .create_agent(CreateAgentRequest {
                    agent: Some(new_agent(args)),
                })
                .await?
                .into_inner();
            let agent = response.agent.ok_or_else(|| missing("agent"))?;
            show(ctx, || json::agent(&agent), || table::agent(&agent))
        }
        AgentsCmd::Preset(args) => {
            let response = ctx
                .agents()
                .create_preset_agent(CreatePresetAgentRequest {
                    preset: args.preset,
                    binary_path: args.binary,
                    slug: args.slug,
                    name: args.name,
                    working_dir: args.working_dir,
                    mcp_enabled: args.mcp,
                    extra_args: args.extra_args,
                    max_concurrent: args.max_concurrent,
                })
                .await?
                .into_inner();
            let agent = response.agent.ok_or_else(|| missing("agent"))?;
            let capability = response.capability.ok_or_else(|| missing("capability"))?;
            show(
                ctx,
                || serde_json::json!({"agent": json::agent(&agent), "capability": json::capability(&capability)}),
                || {
                    format!(
                        "{}\ncapability: {}/{} (run it: amon run TASK {}/{})",
                        table::agent(&agent),
                        agent.slug,
                        capability.key,
                        agent.slug,
                        capability.key
                    )
                },
            )
        }
        AgentsCmd::Presets => {
            let presets = ctx
                .agents()
                .list_agent_presets(ListAgentPresetsRequest {})
                .await?
                .into_inner()
                .presets;
            show_list(
                ctx,
                presets
                    .iter()
                    .map(|p| {
                        serde_json::json!({
                            "name": p.name,
                            "display_name": p.display_name,
                            "default_binary": p.default_binary,
                            "base_args": p.base_args,
                            "env_allowlist": p.env_allowlist,
                            "session_config": p.session_config.as_ref().map(json::session_config),
                            "prompt_template": p.prompt_template,
                            "timeout_sec": p.timeout_sec,
                        })
                    })
                    .collect(),
                "presets",
                || {
                    presets
                        .iter()
                        .map(|p| {
                            format!(
                                "{:<8} {:<12} {} {}",
                                p.name,
                                p.display_name,
                                p.default_binary,
                                p.base_args.join(" ")
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                },
            )
        }
        AgentsCmd::Get { agent } => {
            let agent = resolve::agent(ctx, &agent).await?;
            show(ctx, || json::agent(&agent), || table::agent(&agent))
        }
        AgentsCmd::List(args) => {
            let active = match (args.active, args.inactive) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            };
            let kind = args.kind.map(|k| k as i32).unwrap_or_default();
            let mut agents = resolve::list_agents(ctx, active, kind).await?;
            // The server filters; filtering again costs nothing and keeps
            // the output exact should a server ignore a filter.
            agents.retain(|a| {
                active.is_none_or(|want| a.is_active.unwrap_or(true) == want)
                    && args.kind.is_none_or(|kind| a.kind == kind as i32)
            });
            show_list(
                ctx,
                agents.iter().map(json::agent).collect(),
                "agents",
                || table::agents(&agents),
            )
        }
        AgentsCmd::Update(args) => {
            let (id, current_metadata) = if touches_metadata(&args) {
                let agent = resolve::agent(ctx, &args.agent).await?;
                (agent.id, agent.metadata)
            } else {
                (resolve::agent_id(ctx, &args.agent).await?, None)
            };
            let (agent, update_mask) = update_request(id, &args, current_metadata)?;
            let response = ctx
                .agents()
                .update_agent(UpdateAgentRequest {
                    agent: Some(agent),
                    update_mask: Some(update_mask),
                })
                .await?
                .into_inner();
            let agent = response.agent.ok_or_else(|| missing("agent"))?;
            show(ctx, || json::agent(&agent), || table::agent(&agent))
        }
        AgentsCmd::Delete { agent } => {
            let id = resolve::agent_id(ctx, &agent).await?;
            ctx.agents()
                .delete_agent(DeleteAgentRequest { id: id.clone() })
                .await?;
            done(ctx, &format!("deleted agent {id}"))
        }
    }
}

/// The agent `create` sends.
fn new_agent(args: CreateArgs) -> Agent {
    Agent {
        name: args.name,
        slug: args.slug,
        binary_path: args.binary,
        base_args: args.base_args,
        working_dir: args.working_dir,
        env_allowlist: args.env_allow,
        is_active: Some(!args.inactive),
        max_concurrent: args.max_concurrent,
        mcp_enabled: args.mcp,
        kind: args.kind.map(|k| k as i32).unwrap_or_default(),
        tool_type: args.tool_type,
        metadata: args.description.map(|description| AgentMetadata {
            description: Some(description),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Whether `update` changes the metadata (which must be read first).
fn touches_metadata(args: &UpdateArgs) -> bool {
    args.description.is_some()
        || args.default_isolation.is_some()
        || args.clear.iter().any(|c| c == "description")
}

/// The agent and mask `update` sends: exactly the fields given.
/// `current_metadata` is the agent's, read before when the description
/// changes.
fn update_request(
    id: String,
    args: &UpdateArgs,
    current_metadata: Option<AgentMetadata>,
) -> Result<(Agent, FieldMask), UsageError> {
    let mut agent = Agent {
        id,
        ..Default::default()
    };
    let mut mask = MaskBuilder::new();
    mask.set("name", args.name.clone(), |v| agent.name = v);
    mask.set("slug", args.slug.clone(), |v| agent.slug = v);
    mask.set("binary_path", args.binary.clone(), |v| {
        agent.binary_path = v
    });
    if !args.base_args.is_empty() {
        agent.base_args = args.base_args.clone();
        mask.add("base_args");
    }
    mask.set("working_dir", args.working_dir.clone(), |v| {
        agent.working_dir = Some(v)
    });
    if !args.env_allow.is_empty() {
        agent.env_allowlist = args.env_allow.clone();
        mask.add("env_allowlist");
    }
    mask.set("max_concurrent", args.max_concurrent, |v| {
        agent.max_concurrent = Some(v)
    });
    mask.set("is_active", args.active, |v| agent.is_active = Some(v));
    mask.set("mcp_enabled", args.mcp, |v| agent.mcp_enabled = v);
    mask.set("kind", args.kind, |v| agent.kind = v as i32);
    mask.set("tool_type", args.tool_type.clone(), |v| {
        agent.tool_type = Some(v)
    });
    apply_clears(
        &CLEARABLE,
        &args.clear,
        &mut mask,
        in_mask,
        |_, path, mask| {
            if path != "metadata" {
                mask.add(path);
            }
        },
    )?;
    // `metadata` is one field on the wire: the description is changed in
    // the current metadata, which is sent back whole.
    let clear_description = args.clear.iter().any(|c| c == "description");
    if args.description.is_some() && clear_description {
        return Err(clear_contradicts("description"));
    }
    if touches_metadata(args) {
        let mut metadata = current_metadata.unwrap_or_default();
        if args.description.is_some() || clear_description {
            metadata.description = args.description.clone();
        }
        if let Some(isolation) = &args.default_isolation {
            metadata.default_isolation = match isolation.as_str() {
                "worktree" => WorktreeIsolation::Worktree,
                _ => WorktreeIsolation::None,
            } as i32;
        }
        agent.metadata = Some(metadata);
        mask.add("metadata");
    }
    Ok((agent, finish_update(mask)?))
}

#[cfg(test)]
mod tests {
    use super::{super::parse_subcommand, *};

    fn parse(args: &[&str]) -> AgentsCmd {
        parse_subcommand("agents", args).unwrap()
    }

    fn update(args: &[&str]) -> Result<(Agent, FieldMask), UsageError> {
        let mut argv = vec!["update", "git"];
        argv.extend(args);
        match parse(&argv) {
            AgentsCmd::Update(args) => update_request(
                "id-1".into(),
                &args,
                Some(AgentMetadata {
                    color: Some("#ff8800".into()),
                    description: Some("old".into()),
                    ..Default::default()
                }),
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn update_mask_names_exactly_the_flags_given() {
        let (agent, mask) = update(&["--name", "Git", "--max-concurrent", "4"]).unwrap();
        assert_eq!(mask.paths, vec!["name", "max_concurrent"]);
        assert_eq!(agent.id, "id-1");
        assert_eq!(agent.name, "Git");
        assert_eq!(agent.max_concurrent, Some(4));

        let (agent, mask) = update(&["--active", "false"]).unwrap();
        assert_eq!(mask.paths, vec!["is_active"]);
        assert_eq!(agent.is_active, Some(false));

        let (agent, mask) = update(&[
            "--base-arg",
            "--no-pager",
            "--base-arg",
            "-c",
            "--description",
            "d",
        ])
        .unwrap();
        assert_eq!(mask.paths, vec!["base_args", "metadata"]);
        assert_eq!(agent.base_args, vec!["--no-pager", "-c"]);
        let metadata = agent.metadata.unwrap();
        assert_eq!(metadata.description.as_deref(), Some("d"));
        // The rest of the metadata is sent back as it was.
        assert_eq!(metadata.color.as_deref(), Some("#ff8800"));

        let (_, mask) = update(&["--env-allow", "HOME,PATH", "--kind", "builtin"]).unwrap();
        assert_eq!(mask.paths, vec!["env_allowlist", "kind"]);
    }

    #[test]
    fn update_clears_fields() {
        let (agent, mask) = update(&["--clear", "working-dir", "--clear", "description"]).unwrap();
        assert_eq!(mask.paths, vec!["working_dir", "metadata"]);
        assert_eq!(agent.working_dir, None);
        let metadata = agent.metadata.unwrap();
        assert_eq!(metadata.description, None);
        assert_eq!(metadata.color.as_deref(), Some("#ff8800"));
        assert!(update(&["--description", "x", "--clear", "description"]).is_err());
        assert!(update(&["--working-dir", "/x", "--clear", "working-dir"]).is_err());
    }

    #[test]
    fn update_sets_the_default_isolation_in_the_metadata() {
        let (agent, mask) = update(&["--default-isolation", "worktree"]).unwrap();
        assert_eq!(mask.paths, vec!["metadata"]);
        let metadata = agent.metadata.unwrap();
        assert_eq!(
            metadata.default_isolation,
            WorktreeIsolation::Worktree as i32
        );
        // The description and the rest are sent back as they were.
        assert_eq!(metadata.description.as_deref(), Some("old"));
        assert_eq!(metadata.color.as_deref(), Some("#ff8800"));
        let (agent, _) = update(&["--default-isolation", "none"]).unwrap();
        assert_eq!(
            agent.metadata.unwrap().default_isolation,
            WorktreeIsolation::None as i32
        );
        assert!(
            parse_subcommand::<AgentsCmd>(
                "agents",
                &["update", "git", "--default-isolation", "sometimes"]
            )
            .is_err()
        );
    }

    #[test]
    fn update_needs_a_field() {
        let err = update(&[]).unwrap_err();
        assert!(err.0.starts_with("nothing to update"));
    }

    #[test]
    fn create_defaults() {
        let AgentsCmd::Create(args) = parse(&[
            "create",
            "--name",
            "Git",
            "--slug",
            "git",
            "--binary",
            "git",
            "--env-allow",
            "HOME",
            "--env-allow",
            "LANG,LC_ALL",
            "--inactive",
        ]) else {
            panic!()
        };
        let agent = new_agent(args);
        assert_eq!(agent.env_allowlist, vec!["HOME", "LANG", "LC_ALL"]);
        assert_eq!(agent.is_active, Some(false));
        assert_eq!(agent.kind, 0);
        assert_eq!(agent.metadata, None);
    }

    #[test]
    fn bad_values_are_usage_errors() {
        let bad = |args: &[&str]| parse_subcommand::<AgentsCmd>("agents", args).is_err();
        assert!(bad(&["update", "git", "--max-concurrent", "0"]));
        assert!(bad(&["update", "git", "--active", "maybe"]));
        assert!(bad(&["update", "git", "--clear", "slug"]));
        assert!(bad(&["list", "--active", "--inactive"]));
        assert!(bad(&[
            "create", "--name", "x", "--slug", "x", "--binary", "x", "--kind", "weird"
        ]));
    }
}
