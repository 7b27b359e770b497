//! `amon caps`: capabilities, the runnable actions of agents.

use amon_proto::v1::{
    Capability, CreateCapabilityRequest, DeleteCapabilityRequest, GetCapabilityRequest,
    InteractionMode, UpdateCapabilityRequest,
};
use clap::{ArgGroup, Args, Subcommand, builder::PossibleValuesParser};
use prost_types::FieldMask;
use serde_json::{Map, Value};

use super::{apply_clears, done, finish_update, in_mask, missing, show, show_list};
use crate::{
    client::{Ctx, UsageError},
    json,
    mask::MaskBuilder,
    parse, resolve, table,
};

const TEMPLATE_HELP: &str = "\
A capability runs in one of two modes:
  template  argv = the agent's binary, its base args, then the command tokens given
            after `--`, each rendered on its own against the run's args; no shell
            ever sees them:
              amon caps create --agent git --key log --label \"git log\" \\
                  --args-schema '{\"type\":\"object\",\"properties\":{\"count\":{\"type\":\"integer\"}}}' \\
                  -- log --oneline -n \"{{count}}\"
  prompt    --prompt TEMPLATE (or --prompt-file PATH) for AI coding agents, rendered
            with the task ({{task_title}}, {{input_context.prompt_additions}}, ...):
              amon caps create --agent claude --key fix --label Fix \\
                  --prompt 'Fix this: {{task_title}}'

CAPABILITY arguments accept a UUID, an id prefix, AGENT/KEY (git/log), or a key
that only one agent has.";

/// Capabilities: what an agent can run, as a command template or a prompt.
#[derive(Debug, Subcommand)]
pub enum CapsCmd {
    /// Add a capability to an agent.
    #[command(after_help = TEMPLATE_HELP)]
    Create(CreateArgs),
    /// Show one capability.
    #[command(visible_alias = "show")]
    Get {
        /// Capability id, id prefix, AGENT/KEY or unique key.
        capability: String,
    },
    /// List capabilities (every page).
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Change a capability: only the fields given are sent (a FieldMask).
    #[command(after_help = TEMPLATE_HELP)]
    Update(UpdateArgs),
    /// Delete a capability (refused while executions reference it).
    #[command(visible_alias = "rm")]
    Delete {
        /// Capability id, id prefix, AGENT/KEY or unique key.
        capability: String,
    },
}

/// `amon caps create`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("mode").required(true).args(["prompt", "prompt_file", "command"])))]
pub struct CreateArgs {
    /// The agent offering it: id, id prefix or slug.
    #[arg(long)]
    pub agent: String,
    /// Key unique within the agent (e.g. "grep").
    #[arg(long)]
    pub key: String,
    /// Human-readable label.
    #[arg(long)]
    pub label: String,
    /// Longer description.
    #[arg(long)]
    pub description: Option<String>,
    /// Prompt mode: the prompt template.
    #[arg(long, value_name = "TEMPLATE")]
    pub prompt: Option<String>,
    /// Prompt mode: read the prompt template from a file.
    #[arg(long, value_name = "PATH")]
    pub prompt_file: Option<std::path::PathBuf>,
    /// Template mode: the command tokens, after `--`.
    #[arg(last = true, value_name = "TOKEN")]
    pub command: Vec<String>,
    /// JSON Schema of the run's args: inline JSON, @FILE or @- (stdin).
    #[arg(long, value_name = "JSON", value_parser = parse::json_object)]
    pub args_schema: Option<Map<String, Value>>,
    /// Runs wait for `amon exec approve` before they are claimed.
    #[arg(long)]
    pub requires_approval: bool,
    /// 0 safe, 1 caution, 2 dangerous, 3 destructive.
    #[arg(long, value_name = "0-3", value_parser = clap::value_parser!(i32).range(0..=3))]
    pub danger: Option<i32>,
    /// Seconds a run may take before it is stopped (default 300).
    #[arg(long, value_name = "SEC", value_parser = clap::value_parser!(i32).range(1..))]
    pub timeout: Option<i32>,
    /// Bytes of output kept per run (default 10 MiB).
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(i32).range(1..))]
    pub max_output: Option<i32>,
    /// Create it disabled.
    #[arg(long)]
    pub disabled: bool,
}

/// `amon caps list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only capabilities of this agent (id, id prefix or slug).
    #[arg(long)]
    pub agent: Option<String>,
    /// Only enabled capabilities.
    #[arg(long, conflicts_with = "disabled")]
    pub enabled: bool,
    /// Only disabled capabilities.
    #[arg(long)]
    pub disabled: bool,
}

/// Capability fields `update --clear` can reset, named after their flags,
/// with their FieldMask paths.
const CLEARABLE: [(&str, &str); 4] = [
    ("description", "description"),
    ("args-schema", "args_schema"),
    ("timeout", "timeout_sec"),
    ("max-output", "max_output_bytes"),
];

/// `amon caps update`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("mode").args(["prompt", "prompt_file", "command"])))]
pub struct UpdateArgs {
    /// Capability id, id prefix, AGENT/KEY or unique key.
    pub capability: String,
    /// New key.
    #[arg(long)]
    pub key: Option<String>,
    /// New label.
    #[arg(long)]
    pub label: Option<String>,
    /// New description.
    #[arg(long)]
    pub description: Option<String>,
    /// New prompt template (switches to prompt mode).
    #[arg(long, value_name = "TEMPLATE")]
    pub prompt: Option<String>,
    /// New prompt template from a file (switches to prompt mode).
    #[arg(long, value_name = "PATH")]
    pub prompt_file: Option<std::path::PathBuf>,
    /// New command tokens after `--` (switches to template mode).
    #[arg(last = true, value_name = "TOKEN")]
    pub command: Vec<String>,
    /// New JSON Schema of the args: inline JSON, @FILE or @-.
    #[arg(long, value_name = "JSON", value_parser = parse::json_object)]
    pub args_schema: Option<Map<String, Value>>,
    /// Whether runs wait for approval.
    #[arg(long, value_name = "BOOL", value_parser = parse::boolean)]
    pub requires_approval: Option<bool>,
    /// Enable (true) or disable (false).
    #[arg(long, value_name = "BOOL", value_parser = parse::boolean)]
    pub enabled: Option<bool>,
    /// New danger level, 0-3.
    #[arg(long, value_name = "0-3", value_parser = clap::value_parser!(i32).range(0..=3))]
    pub danger: Option<i32>,
    /// New timeout in seconds.
    #[arg(long, value_name = "SEC", value_parser = clap::value_parser!(i32).range(1..))]
    pub timeout: Option<i32>,
    /// New output cap in bytes.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(i32).range(1..))]
    pub max_output: Option<i32>,
    /// Reset a field to its default (repeatable).
    #[arg(long, value_name = "FIELD", value_parser = PossibleValuesParser::new(CLEARABLE.map(|(name, _)| name)))]
    pub clear: Vec<String>,
}

/// Runs `amon caps …`.
pub async fn run(ctx: &Ctx, cmd: CapsCmd) -> anyhow::Result<()> {
    match cmd {
        CapsCmd::Create(args) => {
            let agent_id = resolve::agent_id(ctx, &args.agent).await?;
            let capability = new_capability(agent_id, args)?;
            let response = ctx
                .agents()
                .create_capability(CreateCapabilityRequest {
                    capability: Some(capability),
                })
                .await?
                .into_inner();
            let capability = response.capability.ok_or_else(|| missing("capability"))?;
            print_one(ctx, &capability).await
        }
        CapsCmd::Get { capability } => {
            let id = resolve::capability_id(ctx, &capability).await?;
            let response = ctx
                .agents()
                .get_capability(GetCapabilityRequest { id })
                .await?
                .into_inner();
            let capability = response.capability.ok_or_else(|| missing("capability"))?;
            print_one(ctx, &capability).await
        }
        CapsCmd::List(args) => {
            let agent_id = match &args.agent {
                Some(agent) => resolve::agent_id(ctx, agent).await?,
                None => String::new(),
            };
            let mut caps = resolve::all_capabilities(ctx, &agent_id).await?;
            let enabled = match (args.enabled, args.disabled) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            };
            caps.retain(|c| enabled.is_none_or(|want| c.is_enabled.unwrap_or(true) == want));
            let names = if ctx.json || caps.is_empty() {
                Default::default()
            } else {
                resolve::agent_names(ctx).await
            };
            show_list(
                ctx,
                caps.iter().map(json::capability).collect(),
                "capabilities",
                || table::capabilities(&caps, &names),
            )
        }
        CapsCmd::Update(args) => {
            let id = resolve::capability_id(ctx, &args.capability).await?;
            let (capability, update_mask) = update_request(id, &args)?;
            let response = ctx
                .agents()
                .update_capability(UpdateCapabilityRequest {
                    capability: Some(capability),
                    update_mask: Some(update_mask),
                })
                .await?
                .into_inner();
            let capability = response.capability.ok_or_else(|| missing("capability"))?;
            print_one(ctx, &capability).await
        }
        CapsCmd::Delete { capability } => {
            let id = resolve::capability_id(ctx, &capability).await?;
            ctx.agents()
                .delete_capability(DeleteCapabilityRequest { id: id.clone() })
                .await?;
            done(ctx, &format!("deleted capability {id}"))
        }
    }
}

async fn print_one(ctx: &Ctx, capability: &Capability) -> anyhow::Result<()> {
    let names = if ctx.json {
        Default::default()
    } else {
        resolve::agent_names(ctx).await
    };
    show(
        ctx,
        || json::capability(capability),
        || table::capability(capability, &names),
    )
}

fn read_prompt(
    prompt: &Option<String>,
    file: &Option<std::path::PathBuf>,
) -> Result<Option<String>, UsageError> {
    match (prompt, file) {
        (Some(p), _) => Ok(Some(p.clone())),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map(Some)
            .map_err(|e| UsageError(format!("cannot read {}: {e}", path.display()))),
        (None, None) => Ok(None),
    }
}

/// The capability `create` sends.
fn new_capability(agent_id: String, args: CreateArgs) -> Result<Capability, UsageError> {
    let prompt = read_prompt(&args.prompt, &args.prompt_file)?;
    let mode = if prompt.is_some() {
        InteractionMode::Prompt
    } else {
        InteractionMode::Template
    };
    Ok(Capability {
        agent_id,
        key: args.key,
        label: args.label,
        description: args.description,
        interaction_mode: mode as i32,
        command_tokens: args.command,
        prompt_template: prompt,
        args_schema: args.args_schema.as_ref().map(json::map_to_struct),
        requires_approval: args.requires_approval,
        is_enabled: Some(!args.disabled),
        danger_level: args.danger.unwrap_or(0),
        timeout_sec: args.timeout,
        max_output_bytes: args.max_output,
        ..Default::default()
    })
}

/// The capability and mask `update` sends: exactly the fields given. New
/// command tokens or a new prompt also set `interaction_mode`.
fn update_request(id: String, args: &UpdateArgs) -> Result<(Capability, FieldMask), UsageError> {
    let mut cap = Capability {
        id,
        ..Default::default()
    };
    let mut mask = MaskBuilder::new();
    mask.set("key", args.key.clone(), |v| cap.key = v);
    mask.set("label", args.label.clone(), |v| cap.label = v);
    mask.set("description", args.description.clone(), |v| {
        cap.description = Some(v)
    });
    if let Some(prompt) = read_prompt(&args.prompt, &args.prompt_file)? {
        cap.prompt_template = Some(prompt);
        cap.interaction_mode = InteractionMode::Prompt as i32;
        mask.add("interaction_mode");
        mask.add("prompt_template");
    }
    if !args.command.is_empty() {
        cap.command_tokens = args.command.clone();
        cap.interaction_mode = InteractionMode::Template as i32;
        mask.add("interaction_mode");
        mask.add("command_tokens");
    }
    mask.set("args_schema", args.args_schema.as_ref(), |v| {
        cap.args_schema = Some(json::map_to_struct(v))
    });
    mask.set("requires_approval", args.requires_approval, |v| {
        cap.requires_approval = v
    });
    mask.set("is_enabled", args.enabled, |v| cap.is_enabled = Some(v));
    mask.set("danger_level", args.danger, |v| cap.danger_level = v);
    mask.set("timeout_sec", args.timeout, |v| cap.timeout_sec = Some(v));
    mask.set("max_output_bytes", args.max_output, |v| {
        cap.max_output_bytes = Some(v)
    });
    apply_clears(
        &CLEARABLE,
        &args.clear,
        &mut mask,
        in_mask,
        |_, path, mask| mask.add(path),
    )?;
    Ok((cap, finish_update(mask)?))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{super::parse_subcommand, *};

    fn parse(args: &[&str]) -> Result<CapsCmd, clap::Error> {
        parse_subcommand("caps", args)
    }

    #[test]
    fn template_tokens_come_after_double_dash() {
        let cmd = parse(&[
            "create",
            "--agent",
            "git",
            "--key",
            "log",
            "--label",
            "git log",
            "--args-schema",
            r#"{"type":"object"}"#,
            "--danger",
            "1",
            "--",
            "log",
            "--oneline",
            "-n",
            "{{count}}",
        ])
        .unwrap();
        let CapsCmd::Create(args) = cmd else { panic!() };
        let cap = new_capability("agent-1".into(), args).unwrap();
        assert_eq!(
            cap.command_tokens,
            vec!["log", "--oneline", "-n", "{{count}}"]
        );
        assert_eq!(cap.interaction_mode, InteractionMode::Template as i32);
        assert_eq!(cap.prompt_template, None);
        assert_eq!(cap.danger_level, 1);
        assert_eq!(cap.is_enabled, Some(true));
        assert_eq!(
            json::opt_struct_to_json(cap.args_schema.as_ref()),
            json!({"type": "object"})
        );
    }

    #[test]
    fn prompt_mode() {
        let cmd = parse(&[
            "create",
            "--agent",
            "claude",
            "--key",
            "fix",
            "--label",
            "Fix",
            "--prompt",
            "Fix {{task_title}}",
            "--requires-approval",
            "--disabled",
        ])
        .unwrap();
        let CapsCmd::Create(args) = cmd else { panic!() };
        let cap = new_capability("agent-1".into(), args).unwrap();
        assert_eq!(cap.interaction_mode, InteractionMode::Prompt as i32);
        assert_eq!(cap.prompt_template.as_deref(), Some("Fix {{task_title}}"));
        assert!(cap.command_tokens.is_empty());
        assert!(cap.requires_approval);
        assert_eq!(cap.is_enabled, Some(false));
    }

    #[test]
    fn create_needs_exactly_one_mode() {
        let base = ["create", "--agent", "a", "--key", "k", "--label", "l"];
        assert!(parse(&base).is_err());
        let mut both = base.to_vec();
        both.extend(["--prompt", "p", "--", "tok"]);
        assert!(parse(&both).is_err());
        let mut bad_danger = base.to_vec();
        bad_danger.extend(["--danger", "4", "--", "tok"]);
        assert!(parse(&bad_danger).is_err());
        let mut bad_schema = base.to_vec();
        bad_schema.extend(["--args-schema", "[1]", "--", "tok"]);
        assert!(parse(&bad_schema).is_err());
    }

    fn update(args: &[&str]) -> Result<(Capability, FieldMask), UsageError> {
        let mut argv = vec!["update", "git/log"];
        argv.extend(args);
        match parse(&argv).unwrap() {
            CapsCmd::Update(args) => update_request("cap-1".into(), &args),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn update_mask_names_exactly_the_flags_given() {
        let (cap, mask) = update(&["--label", "Log", "--timeout", "60"]).unwrap();
        assert_eq!(mask.paths, vec!["label", "timeout_sec"]);
        assert_eq!((cap.id.as_str(), cap.timeout_sec), ("cap-1", Some(60)));

        let (cap, mask) = update(&["--enabled", "false", "--", "log", "-n", "{{n}}"]).unwrap();
        assert_eq!(
            mask.paths,
            vec!["interaction_mode", "command_tokens", "is_enabled"]
        );
        assert_eq!(cap.command_tokens, vec!["log", "-n", "{{n}}"]);
        assert_eq!(cap.is_enabled, Some(false));

        let (_, mask) = update(&["--clear", "timeout", "--danger", "0"]).unwrap();
        assert_eq!(mask.paths, vec!["danger_level", "timeout_sec"]);

        assert!(update(&[]).is_err());
        assert!(update(&["--timeout", "5", "--clear", "timeout"]).is_err());
    }
}
