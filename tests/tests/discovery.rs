//! Discovery end to end: fixture tools made here (scripts with known
//! `--version` and `--help`, a man page in a temporary MANPATH, a fish
//! completion file, a Fig spec, a Claude configuration with an MCP server,
//! binaries that hang, flood and crash), found by a real `amon-worker`
//! through a real server (`AgentService.DiscoverAgents`), on SQLite and
//! PostgreSQL: the proposals, applying them, a person's edit, and a rescan
//! after a new version.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use amon_proto::v1::{
    Agent, AgentProposal, ApplyAction, Capability, CapabilityProposal, CapabilitySource,
    CreatePresetAgentRequest, DiscoverAgentsRequest, DiscoveryMethod, DiscoveryReport,
    DiscoverySource, ExecutionStatus, GetCapabilityRequest, InteractionMode, ListAgentsRequest,
    ProbeProblem, UpdateAgentRequest, UpdateCapabilityRequest, discover_agents_response,
};
use amon_tests::{
    api::Api,
    both_backends,
    db::{Backend, TestDb},
    server::TestServer,
    worker::{TestWorker, unique_worker},
};
use anyhow::{Context, Result, anyhow};
use serde_json::json;
use tonic::Code;

const WAIT: Duration = Duration::from_secs(30);

/// The machine a worker scans: its PATH, home, MANPATH and Fig specs.
struct Machine {
    dir: tempfile::TempDir,
}

impl Machine {
    fn bin(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    fn script(&self, name: &str, body: &str) {
        let path = self.bin().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// `widget` at `version`: its help lists `extra` as one more subcommand.
    fn widget(&self, version: &str, extra: Option<&str>) {
        let extra = extra
            .map(|e| format!("  {e}     Archive the widgets\n"))
            .unwrap_or_default();
        self.script(
            "widget",
            &format!(
                r#"case "$1 $2" in
  "--version ") echo "widget {version}" ;;
  "--help ") printf 'usage: widget [-v] <command> [<args>]\n\nManage the widgets of this machine.\n\nCommands:\n  list      List the widgets\n  delete    Delete a widget\n{extra}\nOptions:\n  -v, --verbose  Say more\n' ;;
  "list --help") printf 'Usage: widget list [OPTIONS]\n\nOptions:\n  --format <FORMAT>  Output format [default: table] [possible values: table, json]\n' ;;
  *) echo "ran $*" ;;
esac"#
            ),
        );
    }

    fn new() -> Self {
        let machine = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        let root = machine.dir.path();
        for dir in [
            "bin",
            "home/.config/fish/completions",
            "man/man1",
            "fig",
            "data/zsh/vendor-completions",
            "data/bash-completion/completions",
        ] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        machine.widget("1.0.0", None);
        // Only a man page says what gadget takes.
        machine.script(
            "gadget",
            r#"[ "$1" = --version ] && echo "gadget 0.3.1"; exit 0"#,
        );
        std::fs::write(
            root.join("man/man1/gadget.1"),
            ".TH GADGET 1\n.SH NAME\ngadget \\- inspect a gadget file\n.SH SYNOPSIS\n.B gadget\n[\\fIOPTIONS\\fR]\n\\fIfile\\fR\n.SH OPTIONS\n.TP\n\\fB\\-q\\fR, \\fB\\-\\-quiet\\fR\nSay less.\n",
        )
        .unwrap();
        // Only its fish completion says what sprocket does.
        machine.script(
            "sprocket",
            r#"[ "$1" = --version ] && echo "sprocket 2.1"; exit 0"#,
        );
        std::fs::write(
            root.join("home/.config/fish/completions/sprocket.fish"),
            "complete -c sprocket -n '__fish_use_subcommand' -a spin -d 'Spin the sprocket'\n\
             complete -c sprocket -n '__fish_use_subcommand' -a stop -d 'Stop it'\n\
             complete -c sprocket -s f -l fast -d 'Faster'\n",
        )
        .unwrap();
        // Only its zsh completion says what ratchet does.
        machine.script(
            "ratchet",
            r#"[ "$1" = --version ] && echo "ratchet 0.9"; exit 0"#,
        );
        std::fs::write(
            root.join("data/zsh/vendor-completions/_ratchet"),
            "#compdef ratchet\n\n_ratchet_commands() {\n  local -a cmds\n  cmds=(\n    'tighten:Tighten a bolt'\n    'loosen:Loosen a bolt'\n  )\n  _describe -t commands 'ratchet command' cmds\n}\n\n_ratchet_tighten() {\n  _arguments '--torque=[Torque to apply]:torque:(low high)'\n}\n\n_arguments -s \\\n  {-v,--verbose}'[Say more]' \\\n  '*::ratchet command:_ratchet_commands'\n",
        )
        .unwrap();
        // Only its bash completion says what pulley does.
        machine.script(
            "pulley",
            r#"[ "$1" = --version ] && echo "pulley 3"; exit 0"#,
        );
        std::fs::write(
            root.join("data/bash-completion/completions/pulley"),
            "_pulley() {\n  local cur=${COMP_WORDS[COMP_CWORD]}\n  local COMMANDS=(lift lower)\n  COMPREPLY=( $(compgen -W '${COMMANDS[*]} --quiet' -- \"$cur\") )\n}\ncomplete -F _pulley pulley\n",
        )
        .unwrap();
        // Only its Fig spec says what cog does.
        machine.script("cog", r#"[ "$1" = --version ] && echo "cog 5.0"; exit 0"#);
        std::fs::write(
            root.join("fig/cog.json"),
            r#"{"name": "cog", "subcommands": [{"name": "turn", "description": "Turn the cog",
                "args": {"name": "direction", "suggestions": ["left", "right"]}}]}"#,
        )
        .unwrap();
        // An AI CLI of a preset, with an MCP server in its configuration.
        machine.script(
            "claude",
            r#"[ "$1" = --version ] && echo "1.0.3 (Claude Code)"; exit 0"#,
        );
        std::fs::write(
            root.join("home/.claude.json"),
            r#"{"mcpServers": {"files": {"command": "fs-mcp", "args": ["--root", "/srv"]}}}"#,
        )
        .unwrap();
        // Misbehaving binaries, and a file that is not executable.
        machine.script("hangs", "exec /bin/sleep 60");
        machine.script("floods", "exec /usr/bin/yes flood");
        machine.script("crashes", "kill -SEGV $$");
        std::fs::write(machine.bin().join("notes.txt"), "not a program\n").unwrap();
        machine
    }

    /// The worker's environment: PATH (the fixtures, then the system's
    /// when `system` is set, for `man`), HOME, MANPATH, and XDG data dirs
    /// with the fixtures' zsh and bash completions only.
    fn env(&self, system: bool) -> Vec<(String, String)> {
        let root = self.dir.path().display().to_string();
        let path = if system {
            format!("{root}/bin:/usr/bin:/bin")
        } else {
            format!("{root}/bin")
        };
        vec![
            ("PATH".into(), path),
            ("HOME".into(), format!("{root}/home")),
            ("MANPATH".into(), format!("{root}/man")),
            ("XDG_DATA_DIRS".into(), format!("{root}/data")),
        ]
    }

    fn fig(&self) -> String {
        self.dir.path().join("fig").display().to_string()
    }
}

fn start_worker(server: &TestServer, machine: &Machine, name: &str, system: bool) -> TestWorker {
    let env = machine.env(system);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let fig = machine.fig();
    TestWorker::start_with(server, &server.url(), name, 1, &env, &["--fig-specs", &fig])
}

/// Waits until `worker` is connected: a run of `/bin/true` there succeeds.
async fn connected(api: &mut Api, worker: &str) {
    let agent = api
        .agent(Agent {
            name: format!("probe {worker}"),
            slug: format!("true-{worker}"),
            binary_path: "/bin/true".into(),
            ..Default::default()
        })
        .await;
    let capability = api.command(&agent, "run", &[]).await;
    let task = api.titled(&format!("is {worker} there")).await;
    let run = api.run(&task, &capability, json!({}), 0).await;
    api.wait_for(&run.id, ExecutionStatus::Succeeded, WAIT)
        .await;
}

/// Runs a discovery and returns its report (and how many progress messages came).
async fn discover(
    api: &mut Api,
    request: DiscoverAgentsRequest,
) -> Result<(DiscoveryReport, usize)> {
    let mut stream = api.agents.discover_agents(request).await?.into_inner();
    let mut progress = 0;
    while let Some(message) = stream.message().await? {
        match message.message {
            Some(discover_agents_response::Message::Progress(_)) => progress += 1,
            Some(discover_agents_response::Message::Report(report)) => {
                assert!(
                    stream.message().await?.is_none(),
                    "the report is the last message"
                );
                return Ok((report, progress));
            }
            None => {}
        }
    }
    Err(anyhow!("no report"))
}

fn proposal<'a>(report: &'a DiscoveryReport, slug: &str) -> Result<&'a AgentProposal> {
    report
        .proposals
        .iter()
        .find(|p| p.slug == slug)
        .with_context(|| {
            format!(
                "no proposal {slug} in {:?}",
                report.proposals.iter().map(|p| &p.slug).collect::<Vec<_>>()
            )
        })
}

async fn capability(api: &mut Api, id: &str) -> Result<Capability> {
    api.agents
        .get_capability(GetCapabilityRequest { id: id.into() })
        .await?
        .into_inner()
        .capability
        .context("capability")
}

fn refused<T>(result: Result<T, tonic::Status>) -> (Code, String) {
    match result {
        Ok(_) => panic!("accepted"),
        Err(status) => (status.code(), status.message().to_owned()),
    }
}

fn keys(proposal: &AgentProposal) -> Vec<(&str, CapabilitySource)> {
    proposal
        .capabilities
        .iter()
        .map(|c| (c.key.as_str(), c.source()))
        .collect()
}

const NAMED: [&str; 11] = [
    "widget", "gadget", "sprocket", "ratchet", "pulley", "cog", "claude", "hangs", "floods",
    "crashes", "nothere",
];

fn request(worker: &str, names: &[&str], apply: bool) -> DiscoverAgentsRequest {
    DiscoverAgentsRequest {
        worker_id: worker.into(),
        binaries: names.iter().map(|n| (*n).to_owned()).collect(),
        sources: Vec::new(),
        apply,
        timeout: Some(prost_types::Duration {
            seconds: 60,
            nanos: 0,
        }),
        mcp_tools: false,
        llm_agent: String::new(),
    }
}

async fn fixture_tools_are_discovered(db: TestDb) -> Result<()> {
    let machine = Machine::new();
    let server = TestServer::start_with_args(Some(db.url()), &["--no-local-worker"]).await;
    let mut api = Api::new(server.channel().await);
    let _worker = start_worker(&server, &machine, "scanner", true);
    connected(&mut api, "scanner").await;

    // A dry run: proposals from every source, problems recorded, nothing written.
    let began = std::time::Instant::now();
    let (report, _) = discover(&mut api, request("scanner", &NAMED, false)).await?;
    assert!(
        began.elapsed() < Duration::from_secs(20),
        "{:?}",
        began.elapsed()
    );
    assert!(!report.applied);
    assert_eq!(report.binaries_scanned, 10, "{report:?}");

    let widget = proposal(&report, "widget")?;
    assert_eq!(widget.version.as_deref(), Some("widget 1.0.0"));
    assert_eq!(widget.discovery_method(), DiscoveryMethod::PathScan);
    assert_eq!(widget.tool_type, "cli-tool");
    assert_eq!(widget.description, None);
    assert_eq!(
        keys(widget),
        vec![
            ("list", CapabilitySource::ScanHelp),
            ("delete", CapabilitySource::ScanHelp)
        ]
    );
    let list = &widget.capabilities[0];
    assert_eq!(
        list.command_tokens,
        vec!["list", "--format={{ format | default(\"table\") }}"]
    );
    assert_eq!((list.danger_level, list.requires_approval), (0, false));
    let delete = &widget.capabilities[1];
    assert_eq!((delete.danger_level, delete.requires_approval), (2, true));
    assert!(
        delete.danger_reason.contains("delete"),
        "{}",
        delete.danger_reason
    );

    let gadget = proposal(&report, "gadget")?;
    assert_eq!(gadget.description.as_deref(), Some("inspect a gadget file"));
    assert_eq!(keys(gadget), vec![("run", CapabilitySource::ScanMan)]);
    assert_eq!(gadget.capabilities[0].command_tokens, vec!["{{file}}"]);

    let sprocket = proposal(&report, "sprocket")?;
    assert_eq!(
        keys(sprocket),
        vec![
            ("spin", CapabilitySource::ScanCompletion),
            ("stop", CapabilitySource::ScanCompletion)
        ]
    );

    let ratchet = proposal(&report, "ratchet")?;
    assert_eq!(
        keys(ratchet),
        vec![
            ("tighten", CapabilitySource::ScanCompletion),
            ("loosen", CapabilitySource::ScanCompletion)
        ]
    );
    assert_eq!(
        ratchet.capabilities[0].description.as_deref(),
        Some("Tighten a bolt")
    );
    let pulley = proposal(&report, "pulley")?;
    assert_eq!(
        keys(pulley),
        vec![
            ("lift", CapabilitySource::ScanCompletion),
            ("lower", CapabilitySource::ScanCompletion)
        ]
    );
    assert_eq!(pulley.capabilities[0].command_tokens, vec!["lift"]);

    let cog = proposal(&report, "cog")?;
    assert_eq!(keys(cog), vec![("turn", CapabilitySource::ScanFig)]);
    assert_eq!(
        cog.capabilities[0].command_tokens,
        vec!["turn", "{{direction}}"]
    );
    let schema = format!("{:?}", cog.capabilities[0].args_schema);
    assert!(
        schema.contains("left") && schema.contains("right"),
        "{schema}"
    );

    let claude = proposal(&report, "claude")?;
    assert_eq!(claude.discovery_method(), DiscoveryMethod::Preset);
    assert_eq!(
        (claude.preset.as_str(), claude.tool_type.as_str()),
        ("claude", "ai-agent")
    );
    assert_eq!(
        keys(claude),
        vec![
            ("prompt", CapabilitySource::Preset),
            ("mcp-files", CapabilitySource::ScanMcp)
        ]
    );

    let problem = |binary: &str| {
        report
            .problems
            .iter()
            .find(|p| p.binary == binary)
            .map(|p| p.problem())
    };
    assert_eq!(problem("hangs"), Some(ProbeProblem::TimedOut));
    assert_eq!(problem("floods"), Some(ProbeProblem::Flooded));
    assert_eq!(problem("crashes"), Some(ProbeProblem::Crashed));
    assert_eq!(problem("nothere"), Some(ProbeProblem::Unreadable));
    for misbehaving in ["hangs", "floods", "crashes"] {
        assert!(proposal(&report, misbehaving).is_err());
    }
    let agents = api
        .agents
        .list_agents(ListAgentsRequest::default())
        .await?
        .into_inner()
        .agents;
    assert_eq!(agents.len(), 1, "a dry run writes nothing: {agents:?}");

    // Applied: agents and capabilities created, marked with their sources,
    // and a discovered capability runs.
    let (report, _) = discover(
        &mut api,
        DiscoverAgentsRequest {
            sources: vec![DiscoverySource::Help as i32],
            ..request("scanner", &["widget"], true)
        },
    )
    .await?;
    assert!(report.applied);
    let applied = &report.applied_agents[0];
    assert_eq!(
        (applied.slug.as_str(), applied.action()),
        ("widget", ApplyAction::Created)
    );
    assert!(
        applied
            .capabilities
            .iter()
            .all(|c| c.action() == ApplyAction::Created)
    );
    let list_id = applied.capabilities[0].capability_id.clone();
    let delete_id = applied.capabilities[1].capability_id.clone();
    let list = capability(&mut api, &list_id).await?;
    assert_eq!(list.source(), CapabilitySource::ScanHelp);
    let widget_agent = api
        .agents
        .get_agent(amon_proto::v1::GetAgentRequest {
            id: applied.agent_id.clone(),
        })
        .await?
        .into_inner()
        .agent
        .unwrap();
    assert_eq!(widget_agent.discovery_method(), DiscoveryMethod::PathScan);
    assert_eq!(widget_agent.version.as_deref(), Some("widget 1.0.0"));
    assert!(widget_agent.last_scanned_at.is_some());
    let task = api.titled("list the widgets").await;
    let run = api.run(&task, &list, json!({"format": "json"}), 0).await;
    api.wait_for(&run.id, ExecutionStatus::Succeeded, WAIT)
        .await;
    assert_eq!(api.log(&run.id).await, b"ran list --format=json\n");

    // A person's edit makes the capability theirs.
    let edited = api
        .agents
        .update_capability(UpdateCapabilityRequest {
            capability: Some(Capability {
                id: delete_id.clone(),
                label: "Delete one widget (checked)".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["label".into()],
            }),
        })
        .await?
        .into_inner()
        .capability
        .unwrap();
    assert_eq!(edited.source(), CapabilitySource::Manual);

    // A new version with a new subcommand: the rescan updates the agent,
    // adds the subcommand, leaves the edit and what did not change.
    machine.widget("2.0.0", Some("archive"));
    let (report, _) = discover(
        &mut api,
        DiscoverAgentsRequest {
            sources: vec![DiscoverySource::Help as i32],
            ..request("scanner", &["widget"], true)
        },
    )
    .await?;
    let applied = &report.applied_agents[0];
    assert_eq!(applied.action(), ApplyAction::Updated);
    let actions: Vec<(&str, ApplyAction)> = applied
        .capabilities
        .iter()
        .map(|c| (c.key.as_str(), c.action()))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("list", ApplyAction::Unchanged),
            ("delete", ApplyAction::KeptManual),
            ("archive", ApplyAction::Created)
        ]
    );
    let delete = capability(&mut api, &delete_id).await?;
    assert_eq!(delete.label, "Delete one widget (checked)");
    let widget_agent = api
        .agents
        .get_agent(amon_proto::v1::GetAgentRequest {
            id: applied.agent_id.clone(),
        })
        .await?
        .into_inner()
        .agent
        .unwrap();
    assert_eq!(widget_agent.version.as_deref(), Some("widget 2.0.0"));

    // The rest applied too: the preset agent comes with its preset's
    // configuration; the same scan applied twice changes nothing.
    let (first, _) = discover(&mut api, request("scanner", &NAMED, true)).await?;
    let claude = first
        .applied_agents
        .iter()
        .find(|a| a.slug == "claude")
        .unwrap();
    assert_eq!(claude.action(), ApplyAction::Created);
    let claude_agent = api
        .agents
        .get_agent(amon_proto::v1::GetAgentRequest {
            id: claude.agent_id.clone(),
        })
        .await?
        .into_inner()
        .agent
        .unwrap();
    assert_eq!(claude_agent.discovery_method(), DiscoveryMethod::Preset);
    assert!(claude_agent.session_config.is_some());
    assert!(!claude_agent.base_args.is_empty());
    let (again, _) = discover(&mut api, request("scanner", &NAMED, true)).await?;
    for agent in &again.applied_agents {
        assert_eq!(agent.action(), ApplyAction::Unchanged, "{agent:?}");
        for cap in &agent.capabilities {
            assert!(
                matches!(
                    cap.action(),
                    ApplyAction::Unchanged | ApplyAction::KeptManual
                ),
                "{}/{}: {:?}",
                agent.slug,
                cap.key,
                cap.action()
            );
        }
    }
    Ok(())
}

/// The whole PATH: every executable, none of what is not.
async fn a_whole_path_is_scanned(db: TestDb) -> Result<()> {
    let machine = Machine::new();
    let server = TestServer::start_with_args(Some(db.url()), &["--no-local-worker"]).await;
    let mut api = Api::new(server.channel().await);
    let _worker = start_worker(&server, &machine, "pathscan", false);
    connected(&mut api, "pathscan").await;
    let (report, progress) = discover(
        &mut api,
        DiscoverAgentsRequest {
            sources: vec![DiscoverySource::PathScan as i32],
            ..request("pathscan", &[], false)
        },
    )
    .await?;
    let mut slugs: Vec<&str> = report.proposals.iter().map(|p| p.slug.as_str()).collect();
    slugs.sort();
    assert_eq!(
        slugs,
        vec![
            "claude", "cog", "gadget", "pulley", "ratchet", "sprocket", "widget"
        ]
    );
    assert_eq!(report.binaries_scanned, 10);
    assert!(progress >= 1, "progress is reported");
    assert!(report.proposals.iter().all(|p| p.capabilities.is_empty()));
    Ok(())
}

/// A caller's mistakes, and a worker that is not there.
async fn mistakes_are_named(db: TestDb) -> Result<()> {
    let server = TestServer::start_with_args(Some(db.url()), &["--no-local-worker"]).await;
    let mut api = Api::new(server.channel().await);
    let (c, m) = refused(api.agents.discover_agents(request("", &[], false)).await);
    assert_eq!(
        (c, m.as_str()),
        (Code::InvalidArgument, "worker_id: is required")
    );
    let (c, m) = refused(
        api.agents
            .discover_agents(request("w", &["bin/x"], false))
            .await,
    );
    assert!(
        c == Code::InvalidArgument && m.starts_with("binaries[0]:"),
        "{c:?} {m}"
    );
    let (c, m) = refused(
        api.agents
            .discover_agents(DiscoverAgentsRequest {
                sources: vec![42],
                ..request("w", &[], false)
            })
            .await,
    );
    assert!(
        c == Code::InvalidArgument && m.starts_with("sources[0]:"),
        "{c:?} {m}"
    );
    let (c, m) = refused(
        api.agents
            .discover_agents(DiscoverAgentsRequest {
                timeout: Some(prost_types::Duration {
                    seconds: 3600,
                    nanos: 0,
                }),
                ..request("w", &[], false)
            })
            .await,
    );
    assert!(
        c == Code::InvalidArgument && m.starts_with("timeout:"),
        "{c:?} {m}"
    );
    let (c, m) = refused(
        api.agents
            .discover_agents(request("nobody", &[], false))
            .await,
    );
    assert!(c == Code::NotFound && m.contains("nobody"), "{c:?} {m}");
    Ok(())
}

/// A worker scans one request at a time, and a worker that dies mid-scan
/// ends the caller's wait at once, with the reason.
async fn a_worker_leaving_ends_the_wait(db: TestDb) -> Result<()> {
    let machine = Machine::new();
    let server = TestServer::start_with_args(Some(db.url()), &["--no-local-worker"]).await;
    let mut api = Api::new(server.channel().await);
    let mut worker = start_worker(&server, &machine, "leaver", false);
    connected(&mut api, "leaver").await;
    // `hangs` keeps the scan busy for the probe's 3 s timeout; the request
    // is on the worker's stream once the call has answered.
    let mut stream = api
        .agents
        .discover_agents(request("leaver", &["hangs"], false))
        .await?
        .into_inner();
    // One scan at a time: a second is refused while the first runs.
    let second = discover(&mut api, request("leaver", &["widget"], false)).await;
    let refused = second
        .expect_err("a second scan at once")
        .downcast::<tonic::Status>()?;
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("already under way"),
        "{refused:?}"
    );
    let began = std::time::Instant::now();
    worker.kill_hard();
    let status = loop {
        match stream.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => return Err(anyhow!("the stream ended without an error")),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(
        status.message().contains("disconnected during the scan"),
        "{status:?}"
    );
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "{:?}",
        began.elapsed()
    );
    Ok(())
}

/// The test fixtures' directory (fake AI CLIs, the fake MCP server).
fn fixture(name: &str) -> String {
    format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// With `mcp_tools`, the stdio MCP servers configured for an AI CLI are
/// started and their tools proposed; a server that fails is a problem and
/// the rest goes on.
async fn mcp_servers_tools_are_proposed(db: TestDb) -> Result<()> {
    let machine = Machine::new();
    let fake = fixture("fake-mcp");
    std::fs::write(
        machine.dir.path().join("home/.claude.json"),
        serde_json::to_string(&json!({"mcpServers": {
            "files": {"command": fake, "env": {"FAKE_MCP_MODE": ""}},
            "broken": {"command": fake, "env": {"FAKE_MCP_MODE": "crash"}},
            "web": {"type": "http", "url": "http://127.0.0.1:1/mcp"},
        }}))?,
    )?;
    let server = TestServer::start_with_args(Some(db.url()), &["--no-local-worker"]).await;
    let mut api = Api::new(server.channel().await);
    let _worker = start_worker(&server, &machine, "mcp", true);
    connected(&mut api, "mcp").await;
    // Without the flag no server is started.
    let (report, _) = discover(&mut api, request("mcp", &["claude"], false)).await?;
    let claude = proposal(&report, "claude")?;
    assert_eq!(
        keys(claude),
        vec![
            ("prompt", CapabilitySource::Preset),
            ("mcp-broken", CapabilitySource::ScanMcp),
            ("mcp-files", CapabilitySource::ScanMcp),
            ("mcp-web", CapabilitySource::ScanMcp),
        ]
    );
    let (report, _) = discover(
        &mut api,
        DiscoverAgentsRequest {
            mcp_tools: true,
            ..request("mcp", &["claude"], true)
        },
    )
    .await?;
    let claude = proposal(&report, "claude")?;
    let tools: Vec<&CapabilityProposal> = claude
        .capabilities
        .iter()
        .filter(|c| c.key.starts_with("mcp-files-"))
        .collect();
    let tool_keys: Vec<&str> = tools.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(
        tool_keys,
        vec![
            "mcp-files-read_file",
            "mcp-files-delete_file",
            "mcp-files-environment"
        ]
    );
    let read = tools[0];
    assert_eq!(read.source(), CapabilitySource::ScanMcp);
    assert_eq!(read.interaction_mode(), InteractionMode::Prompt);
    assert_eq!((read.danger_level, read.requires_approval), (0, false));
    assert!(format!("{:?}", read.args_schema).contains("path"));
    assert!(
        read.prompt_template
            .as_deref()
            .unwrap()
            .contains("read_file")
    );
    let delete = tools[1];
    assert_eq!((delete.danger_level, delete.requires_approval), (2, true));
    let problem = report
        .problems
        .iter()
        .find(|p| p.binary.contains("broken"))
        .context("the crashing server is a problem")?;
    assert_eq!(problem.problem(), ProbeProblem::Crashed, "{problem:?}");
    assert!(report.problems.iter().all(|p| !p.binary.contains("web")));
    // Applied and runnable: the tool's capability takes its schema's args.
    let applied = report
        .applied_agents
        .iter()
        .find(|a| a.slug == "claude")
        .unwrap();
    let created = applied
        .capabilities
        .iter()
        .find(|c| c.key == "mcp-files-read_file")
        .unwrap();
    assert_eq!(created.action(), ApplyAction::Created, "{created:?}");
    let stored = capability(&mut api, &created.capability_id).await?;
    assert_eq!(stored.source(), CapabilitySource::ScanMcp);
    Ok(())
}

/// With `llm_agent`, an AI agent (the fake Claude CLI answering what the
/// test wrote) is asked per tool; its proposals are `llm_generated` and
/// created disabled; an answer that is not the JSON asked for is reported
/// and nothing of it is proposed.
async fn an_ai_agent_proposes_capabilities(db: TestDb) -> Result<()> {
    let machine = Machine::new();
    let reply = machine.dir.path().join("reply.txt");
    let server = TestServer::start_with_args(Some(db.url()), &["--no-local-worker"]).await;
    let mut api = Api::new(server.channel().await);
    let mut env = machine.env(true);
    env.push(("FAKE_CLI_REPLY_FILE".into(), reply.display().to_string()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // Its own name: both backends run an AI agent at once, in the tmux
    // server the worker's id names (and clears when it starts).
    let llm = unique_worker("llm");
    let _worker = TestWorker::start_with(&server, &server.url(), &llm, 2, &env, &[]);
    connected(&mut api, &llm).await;
    let created = api
        .agents
        .create_preset_agent(CreatePresetAgentRequest {
            preset: "claude".into(),
            binary_path: Some(fixture("fake-claude")),
            slug: Some("helper".into()),
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut helper = created.agent.unwrap();
    helper.env_allowlist.push("FAKE_CLI_REPLY_FILE".into());
    api.agents
        .update_agent(UpdateAgentRequest {
            agent: Some(Agent {
                id: helper.id.clone(),
                env_allowlist: helper.env_allowlist.clone(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["env_allowlist".into()],
            }),
        })
        .await?;
    std::fs::write(
        &reply,
        r#"Here is what I propose:
```json
{"capabilities": [
  {"key": "list-json", "label": "List the widgets as JSON", "description": "Lists every widget, as JSON.",
   "command_tokens": ["list", "--format", "json"], "args_schema": {"type": "object", "properties": {}}, "danger_level": 0},
  {"key": "delete-one", "label": "Delete a widget", "command_tokens": ["delete", "{{name}}"],
   "args_schema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"], "additionalProperties": false},
   "danger_level": 2}
]}
```"#,
    )?;
    let ask = |apply: bool| DiscoverAgentsRequest {
        llm_agent: "helper".into(),
        ..request(&llm, &["widget"], apply)
    };
    let (report, _) = discover(&mut api, ask(true)).await?;
    let widget = proposal(&report, "widget")?;
    assert_eq!(
        keys(widget),
        vec![
            ("list", CapabilitySource::ScanHelp),
            ("delete", CapabilitySource::ScanHelp),
            ("list-json", CapabilitySource::LlmGenerated),
            ("delete-one", CapabilitySource::LlmGenerated),
        ],
        "{:?}",
        report.problems
    );
    assert_eq!(widget.help_text, None, "help texts stay out of the report");
    let delete_one = &widget.capabilities[3];
    assert_eq!(delete_one.command_tokens, vec!["delete", "{{name}}"]);
    assert!(delete_one.requires_approval);
    let applied = &report.applied_agents[0];
    for key in ["list-json", "delete-one"] {
        let cap = applied.capabilities.iter().find(|c| c.key == key).unwrap();
        assert_eq!(cap.action(), ApplyAction::Created);
        let stored = capability(&mut api, &cap.capability_id).await?;
        assert_eq!(stored.source(), CapabilitySource::LlmGenerated);
        assert_eq!(stored.is_enabled, Some(false), "{key} waits for a person");
    }
    let list = applied
        .capabilities
        .iter()
        .find(|c| c.key == "list")
        .unwrap();
    assert_eq!(
        capability(&mut api, &list.capability_id).await?.is_enabled,
        Some(true)
    );

    // A malformed answer: reported, nothing of it proposed.
    std::fs::write(
        &reply,
        r#"{"capabilities": [{"key": "x", "command_tokens": ["{{undeclared}}"]}]}"#,
    )?;
    let (report, _) = discover(&mut api, ask(false)).await?;
    let widget = proposal(&report, "widget")?;
    assert!(
        widget
            .capabilities
            .iter()
            .all(|c| c.source() != CapabilitySource::LlmGenerated),
        "{:?}",
        keys(widget)
    );
    let problem = report
        .problems
        .iter()
        .find(|p| p.binary == "widget")
        .context("the malformed answer is a problem")?;
    assert!(
        problem.probe.starts_with("helper (execution "),
        "{problem:?}"
    );
    assert!(problem.detail.contains("not taken"), "{problem:?}");
    std::fs::write(&reply, "I would rather not.")?;
    let (report, _) = discover(&mut api, ask(false)).await?;
    let problem = report
        .problems
        .iter()
        .find(|p| p.binary == "widget")
        .unwrap();
    assert!(problem.detail.contains("no JSON object"), "{problem:?}");

    // An agent that is not there, or cannot take a prompt, is named first.
    let (c, m) = refused(
        api.agents
            .discover_agents(DiscoverAgentsRequest {
                llm_agent: "nobody".into(),
                ..request(&llm, &["widget"], false)
            })
            .await,
    );
    assert!(c == Code::NotFound && m.contains("llm_agent"), "{c:?} {m}");
    Ok(())
}

both_backends!(
    mcp_servers_tools_are_proposed,
    an_ai_agent_proposes_capabilities,
    a_worker_leaving_ends_the_wait,
    fixture_tools_are_discovered,
    a_whole_path_is_scanned,
    mistakes_are_named
);

/// Several servers over one PostgreSQL: a scan is relayed by the server the
/// worker is connected to; another says so instead of "not found".
async fn a_worker_on_another_server_is_named(db: TestDb) -> Result<()> {
    let machine = Machine::new();
    let a = TestServer::start_with_args(Some(db.url()), &["--no-local-worker"]).await;
    let b = TestServer::start_with_args(Some(db.url()), &["--no-local-worker"]).await;
    let mut on_a = Api::new(a.channel().await);
    let mut on_b = Api::new(b.channel().await);
    let _worker = start_worker(&a, &machine, "on-a", false);
    connected(&mut on_a, "on-a").await;
    let refused = discover(&mut on_b, request("on-a", &["widget"], false))
        .await
        .expect_err("B has no stream to the worker")
        .downcast::<tonic::Status>()?;
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("another server"), "{refused:?}");
    let (report, _) = discover(&mut on_a, request("on-a", &["widget"], false)).await?;
    assert_eq!(report.proposals.len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_worker_on_another_server_is_named_postgres() {
    amon_tests::db::run(Backend::Postgres, a_worker_on_another_server_is_named).await;
}
