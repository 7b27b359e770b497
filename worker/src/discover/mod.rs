//! Discovery: the worker looks at the CLI tools and AI coding agents on its
//! own machine and proposes agents and capabilities for them, when the
//! server asks (`Discover` on the `Connect` stream, from
//! `AgentService.DiscoverAgents`). The worker only proposes; the server
//! decides what to write.
//!
//! One module per source: [`path_scan`] (PATH, versions, Debian packages,
//! tool types), [`preset`] (the AI CLIs of a preset), [`scan_help`]
//! (`--help`), [`scan_completion`] (fish, zsh and bash completion files), [`scan_man`]
//! (man pages), [`scan_fig`] (Fig specs), [`scan_mcp`] (the AI CLIs' MCP
//! servers); [`command`] is the shape they all produce and how it becomes a
//! capability (with the danger heuristic); [`probe`] is the only way a
//! found binary is ever run (`--version`, `-V`, `version`, `--help`,
//! `<sub> --help`), bounded in time and output, with an empty environment
//! and no stdin.
//!
//! Binaries are examined four at a time (probes mostly wait). The scan
//! stops starting new probes at the request's timeout and reports what it
//! found by then; a binary that hangs, floods or crashes is recorded as a
//! problem and the scan goes on.

pub mod command;
pub mod path_scan;
pub mod preset;
pub mod probe;
pub mod scan_completion;
pub mod scan_fig;
pub mod scan_help;
pub mod scan_man;
pub mod scan_mcp;

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use amon_proto::v1::{
    AgentProposal, CapabilityProposal, CapabilitySource, ConnectRequest, Discover,
    DiscoverProgress, DiscoverResult, DiscoveryMethod, DiscoveryProblem, DiscoverySource,
    InteractionMode, ProbeProblem, connect_request,
};
use futures_util::StreamExt;
use prost::Message;
use prost_types::{ListValue, Struct, Value as ProtoValue, value::Kind};
use serde_json::Value;
use tokio::sync::mpsc;

use command::CommandSpec;
use path_scan::{Candidate, VersionProbe};
use probe::{Limits, Probe};

/// Binaries examined at once.
const CONCURRENCY: usize = 4;
/// Subcommands whose own `--help` is read, per binary.
const MAX_SUBCOMMAND_PROBES: usize = 25;
/// Capabilities proposed per agent.
const MAX_CAPABILITIES: usize = 60;
/// Largest result sent: gRPC peers refuse messages over 4 MiB by default.
const MAX_RESULT_BYTES: usize = 3 * 1024 * 1024;
/// Most of a tool's `--help` sent for an AI agent to read (16 KiB: git's
/// is 2.2 KB, tar's 16.7 KB and is cut).
const MAX_HELP_TEXT_BYTES: usize = 16 * 1024;
/// Time kept at the end of the scan for the package lookup and the answer.
const WRAP_UP: Duration = Duration::from_secs(3);
/// Most time between two progress messages while binaries are examined.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Where discovery looks besides PATH: what the worker was given, and the
/// parts of its environment that locate configuration.
#[derive(Debug, Clone, Default)]
pub struct DiscoverOptions {
    /// Directory of Fig completion specs (`<name>.json`).
    pub fig_specs: Option<PathBuf>,
    /// The PATH to walk (the worker's).
    pub path_var: Option<OsString>,
    /// The home directory (fish completions, MCP configurations).
    pub home: Option<PathBuf>,
    /// `MANPATH`, passed to `man -w`.
    pub manpath: Option<OsString>,
    /// `XDG_DATA_DIRS` (fish's vendor completion directories).
    pub xdg_data_dirs: Option<String>,
    /// The worker's working directory (a project `.mcp.json`).
    pub project_dir: Option<PathBuf>,
    /// Limits of each probe.
    pub limits: Limits,
}

impl DiscoverOptions {
    /// Options from the worker's environment, with `fig_specs`.
    pub fn from_env(fig_specs: Option<PathBuf>) -> Self {
        Self {
            fig_specs,
            path_var: std::env::var_os("PATH"),
            home: dirs::home_dir(),
            manpath: std::env::var_os("MANPATH"),
            xdg_data_dirs: std::env::var("XDG_DATA_DIRS").ok(),
            project_dir: std::env::current_dir().ok(),
            limits: Limits::default(),
        }
    }
}

/// Scans in a task of its own, sending progress and the result on
/// `outbound` (the stream the request came on; if it broke meanwhile, the
/// server ended the caller's wait already).
pub(crate) fn spawn(
    request: Discover,
    options: DiscoverOptions,
    outbound: mpsc::UnboundedSender<ConnectRequest>,
) {
    // One scan at a time per worker process: a scan runs four probes at
    // once beside the runs, and callers asking again while one is under
    // way would multiply that.
    if SCANNING.swap(true, std::sync::atomic::Ordering::SeqCst) {
        let _ = outbound.send(ConnectRequest {
            message: Some(connect_request::Message::DiscoverResult(DiscoverResult {
                request_id: request.request_id,
                error: "a discovery scan is already under way on this worker: try again when \
                        it has answered"
                    .into(),
                ..DiscoverResult::default()
            })),
        });
        return;
    }
    tokio::spawn(async move {
        let _scanning = ScanSlot;
        let request_id = request.request_id.clone();
        let progress_out = outbound.clone();
        let progress_id = request_id.clone();
        let result = scan(request, &options, move |done, total, binary| {
            let _ = progress_out.send(ConnectRequest {
                message: Some(connect_request::Message::DiscoverProgress(
                    DiscoverProgress {
                        request_id: progress_id.clone(),
                        done,
                        total,
                        binary: binary.to_owned(),
                    },
                )),
            });
        })
        .await;
        tracing::info!(request_id, proposals = result.proposals.len(), problems = result.problems.len(),
                       elapsed = ?result.elapsed, "discovery scan done");
        let _ = outbound.send(ConnectRequest {
            message: Some(connect_request::Message::DiscoverResult(result)),
        });
    });
}

/// Whether a scan is under way in this process.
static SCANNING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Held by the scan under way; frees the place when the scan ends (or its
/// task is dropped).
struct ScanSlot;

impl Drop for ScanSlot {
    fn drop(&mut self) {
        SCANNING.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// What examining one binary found.
struct Examined {
    /// Its place on PATH (the first of a tool's names wins).
    order: usize,
    candidate: Candidate,
    version: VersionProbe,
    /// Commands by source, in the order sources win.
    commands: Vec<(CapabilitySource, Vec<CommandSpec>)>,
    problems: Vec<DiscoveryProblem>,
    description: Option<String>,
    /// Its `--help` output, when it printed a help text.
    help_text: Option<String>,
}

fn problem(binary: &str, probe: &str, what: &Probe) -> Option<DiscoveryProblem> {
    let (kind, detail) = match what {
        Probe::TimedOut => (
            ProbeProblem::TimedOut,
            "did not finish in time; killed".to_owned(),
        ),
        Probe::Flooded => (
            ProbeProblem::Flooded,
            "wrote more than the output cap; killed".to_owned(),
        ),
        Probe::Crashed(signal) => (ProbeProblem::Crashed, format!("killed by {signal}")),
        Probe::Unstartable(e) => (
            ProbeProblem::Unreadable,
            format!("could not be started: {e}"),
        ),
        Probe::Exited { .. } => return None,
    };
    Some(DiscoveryProblem {
        binary: binary.to_owned(),
        probe: probe.to_owned(),
        problem: kind as i32,
        detail,
    })
}

/// Runs one discovery scan; `progress(done, total, binary)` is told as
/// binaries are examined.
pub async fn scan(
    request: Discover,
    options: &DiscoverOptions,
    mut progress: impl FnMut(i32, i32, &str),
) -> DiscoverResult {
    let began = Instant::now();
    let timeout = request
        .timeout
        .and_then(|t| Duration::try_from(t).ok())
        .unwrap_or(Duration::from_secs(120));
    let deadline = began
        + timeout
            .saturating_sub(WRAP_UP)
            .max(Duration::from_millis(500));
    let sources: HashSet<DiscoverySource> = request
        .sources
        .iter()
        .filter_map(|s| DiscoverySource::try_from(*s).ok())
        .collect();
    let mut result = DiscoverResult {
        request_id: request.request_id.clone(),
        ..DiscoverResult::default()
    };
    // Probes run in a directory of their own that nothing else uses.
    let cwd = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => {
            result.error = format!("cannot create a directory for the probes: {e}");
            return result;
        }
    };
    let whole_path = request.binaries.is_empty();
    let (mut candidates, missing) =
        path_scan::candidates(options.path_var.as_ref(), &request.binaries);
    for name in missing {
        result.problems.push(DiscoveryProblem {
            binary: name,
            probe: "PATH".into(),
            problem: ProbeProblem::Unreadable as i32,
            detail: "not an executable file on the worker's PATH".into(),
        });
    }
    if whole_path {
        candidates.retain(|c| !path_scan::never_probed(&c.name));
    }
    let total = candidates.len() as i32;
    let mut done = 0;
    let mut last_progress = Instant::now() - PROGRESS_EVERY;
    let mut examined = Vec::with_capacity(candidates.len());
    let mut unexamined = 0;
    {
        let sources = &sources;
        let cwd = cwd.path();
        let mut stream = futures_util::stream::iter(candidates)
            .enumerate()
            .map(|(order, candidate)| examine(order, candidate, sources, options, cwd, deadline))
            .buffer_unordered(CONCURRENCY);
        while let Some(outcome) = stream.next().await {
            done += 1;
            match outcome {
                Some(found) => {
                    if last_progress.elapsed() >= PROGRESS_EVERY || done == total {
                        progress(done, total, &found.candidate.name);
                        last_progress = Instant::now();
                    }
                    examined.push(found);
                }
                None => unexamined += 1,
            }
        }
    }
    // Two names of one file are one tool when they say the same version
    // (`vi` and `vim` → `vim.basic`); a multi-call binary answers per name
    // (`cargo` and `rustc` → `rustup`) and stays several tools.
    examined.sort_by_key(|e| e.order);
    let mut tools = HashSet::new();
    examined.retain(|e| {
        let version = match &e.version {
            VersionProbe::Found(v) => v.clone(),
            _ => String::new(),
        };
        tools.insert((e.candidate.resolved.clone(), version))
    });
    if unexamined > 0 {
        result.problems.push(DiscoveryProblem {
            binary: String::new(),
            probe: "scan".into(),
            problem: ProbeProblem::TimedOut as i32,
            detail: format!(
                "the scan reached its timeout ({} s): {unexamined} of {total} binaries were not examined",
                timeout.as_secs()
            ),
        });
    }
    result.binaries_scanned = examined.len() as i32;
    let files: Vec<PathBuf> = examined
        .iter()
        .flat_map(|e| [e.candidate.path.clone(), e.candidate.resolved.clone()])
        .flat_map(|p| {
            // dpkg records /bin/tar or /usr/bin/tar as it was packaged;
            // a merged /usr answers to both: ask for both.
            let s = p.to_string_lossy();
            let other = s
                .strip_prefix("/usr")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(format!("/usr{s}")));
            [p, other]
        })
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let packages = path_scan::packages(&files, cwd.path(), options.path_var.as_ref()).await;
    let mcp = if sources.contains(&DiscoverySource::Mcp) {
        let (servers, unreadable) =
            scan_mcp::read(options.home.as_deref(), options.project_dir.as_deref());
        for (file, why) in unreadable {
            result.problems.push(DiscoveryProblem {
                binary: file.clone(),
                probe: file,
                problem: ProbeProblem::Unreadable as i32,
                detail: why,
            });
        }
        servers
    } else {
        Vec::new()
    };
    let tools = if request.mcp_tools {
        // Only the servers of the AI CLIs found: a server is started for
        // the agent it would serve.
        let agents: HashSet<&str> = examined
            .iter()
            .filter(|e| !matches!(e.version, VersionProbe::Failed(..)))
            .filter_map(|e| preset::preset_for(&e.candidate.name).map(|(p, _)| p))
            .collect();
        let remaining = deadline.saturating_duration_since(Instant::now());
        let timeout = scan_mcp::MCP_TIMEOUT.min(remaining.max(Duration::from_secs(1)));
        // Owned: the listing futures run side by side inside a spawned task.
        let jobs: Vec<(scan_mcp::McpServer, scan_mcp::Launch)> = mcp
            .iter()
            .filter(|s| agents.contains(s.agent))
            .filter_map(|s| s.launch.clone().map(|l| (s.clone(), l)))
            .collect();
        let path_var = options.path_var.clone();
        let dir = cwd.path().to_path_buf();
        let listed: Vec<_> = futures_util::stream::iter(jobs)
            .map(|(server, launch)| {
                let path_var = path_var.clone();
                let dir = dir.clone();
                async move {
                    let outcome =
                        scan_mcp::list_tools(&launch, path_var.as_ref(), &dir, timeout).await;
                    (server, outcome)
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut tools = BTreeMap::new();
        for (server, outcome) in listed {
            let (kind, detail) = match outcome {
                Ok(listed) => {
                    tools.insert((server.agent, server.name.clone()), listed);
                    continue;
                }
                Err(scan_mcp::ListFailure::TimedOut) => (
                    ProbeProblem::TimedOut,
                    format!(
                        "did not list its tools within {} s; killed",
                        timeout.as_secs()
                    ),
                ),
                Err(scan_mcp::ListFailure::Flooded) => (
                    ProbeProblem::Flooded,
                    format!("wrote more than {} bytes; killed", scan_mcp::MAX_MCP_OUTPUT),
                ),
                Err(scan_mcp::ListFailure::Failed(why)) => (ProbeProblem::Crashed, why),
            };
            result.problems.push(DiscoveryProblem {
                binary: format!("MCP server {} ({})", server.name, server.agent),
                probe: format!("{}: initialize, tools/list", server.target),
                problem: kind as i32,
                detail,
            });
        }
        tools
    } else {
        BTreeMap::new()
    };
    let mut slugs = HashSet::new();
    examined.sort_by(|a, b| a.candidate.name.cmp(&b.candidate.name));
    for found in examined {
        result.problems.extend(found.problems.iter().cloned());
        // A binary that hung, flooded or crashed on --version is recorded
        // as a problem, not proposed: it is no tool to run unattended.
        if matches!(found.version, VersionProbe::Failed(..)) {
            continue;
        }
        if let Some(proposal) = propose(
            found,
            &packages,
            &sources,
            &mcp,
            &tools,
            request.help_texts,
            &mut slugs,
        ) {
            result.proposals.push(proposal);
        }
    }
    result.proposals.sort_by(|a, b| a.slug.cmp(&b.slug));
    fit(&mut result);
    result.elapsed = prost_types::Duration::try_from(began.elapsed()).ok();
    result
}

/// Everything asked of one binary; `None` when the scan's time is up.
async fn examine(
    order: usize,
    candidate: Candidate,
    sources: &HashSet<DiscoverySource>,
    options: &DiscoverOptions,
    cwd: &Path,
    deadline: Instant,
) -> Option<Examined> {
    if Instant::now() >= deadline {
        return None;
    }
    let path_var = options.path_var.as_ref();
    let limits = options.limits;
    let binary = candidate.resolved.clone();
    let name = candidate.name.clone();
    let mut problems = Vec::new();
    let version = path_scan::version(&candidate.path, path_var, cwd, limits).await;
    let mut found = Examined {
        order,
        candidate,
        version: version.clone(),
        commands: Vec::new(),
        problems: Vec::new(),
        description: None,
        help_text: None,
    };
    if let VersionProbe::Failed(args, what) = &version {
        // A binary that misbehaves is asked nothing more.
        problems.extend(problem(&name, args, what));
        found.problems = problems;
        return Some(found);
    }
    let is_preset =
        sources.contains(&DiscoverySource::Preset) && preset::preset_for(&name).is_some();
    // An AI CLI of a preset runs through its protocol (with the preset's
    // base args before any tokens): template capabilities from its help
    // would not run. Its capabilities are the preset's and its MCP servers.
    if !is_preset {
        if sources.contains(&DiscoverySource::Fig)
            && let Some(path) = options
                .fig_specs
                .as_deref()
                .and_then(|dir| scan_fig::find(&name, dir))
        {
            match std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|t| scan_fig::parse(&t))
            {
                Ok(specs) => found.commands.push((CapabilitySource::ScanFig, specs)),
                Err(e) => problems.push(unreadable(&name, &path, e)),
            }
        }
        if sources.contains(&DiscoverySource::Help) && Instant::now() < deadline {
            let (specs, help_text) = help_commands(
                &found.candidate,
                path_var,
                cwd,
                limits,
                deadline,
                &mut problems,
            )
            .await;
            // A tool whose help lists a `version` command says its version
            // that way (`terraform version`, `kubectl version`).
            let lists_version = specs
                .first()
                .is_some_and(|root| root.subcommands.iter().any(|(n, _)| n == "version"));
            if lists_version && matches!(found.version, VersionProbe::None) {
                match probe::run(&found.candidate.path, &["version"], path_var, cwd, limits).await {
                    Probe::Exited { output, .. } => {
                        if let Some(line) = path_scan::version_line(&output) {
                            found.version = VersionProbe::Found(line);
                        }
                    }
                    other => problems.extend(problem(&name, "version", &other)),
                }
            }
            found.help_text = help_text;
            if !specs.is_empty() {
                found.commands.push((CapabilitySource::ScanHelp, specs));
            }
        }
        if sources.contains(&DiscoverySource::Completion) {
            let dirs = scan_completion::fish_dirs(
                options.home.as_deref(),
                options.xdg_data_dirs.as_deref(),
            );
            if let Some(path) = scan_completion::find(&name, &dirs) {
                match scan_completion::read_text(&path) {
                    Ok(text) => found.commands.push((
                        CapabilitySource::ScanCompletion,
                        scan_completion::parse_fish(&name, &text),
                    )),
                    Err(e) => problems.push(unreadable(&name, &path, e.to_string())),
                }
            }
            let data = options.xdg_data_dirs.as_deref();
            if let Some((path, text)) =
                scan_completion::find_zsh(&name, &scan_completion::zsh_dirs(data))
            {
                match text {
                    Ok(text) => found.commands.push((
                        CapabilitySource::ScanCompletion,
                        scan_completion::zsh::parse(&name, &text),
                    )),
                    Err(e) => problems.push(unreadable(&name, &path, e.to_string())),
                }
            }
            let dirs = scan_completion::bash_dirs(options.home.as_deref(), data);
            if let Some(path) = scan_completion::find_bash(&name, &dirs) {
                match scan_completion::read_text(&path) {
                    Ok(text) => found.commands.push((
                        CapabilitySource::ScanCompletion,
                        scan_completion::bash::parse(&name, &text),
                    )),
                    Err(e) => problems.push(unreadable(&name, &path, e.to_string())),
                }
            }
        }
    }
    if sources.contains(&DiscoverySource::Man)
        && Instant::now() < deadline
        && let Some(page) = man_page(&name, options, cwd, limits).await
    {
        match scan_man::read_page(&page) {
            Ok(roff) => {
                let spec = scan_man::parse(&roff);
                if !spec.description.is_empty() {
                    found.description = Some(spec.description.clone());
                }
                if !is_preset {
                    found.commands.push((CapabilitySource::ScanMan, vec![spec]));
                }
            }
            Err(e) => problems.push(unreadable(&name, &page, e.to_string())),
        }
    }
    let _ = binary;
    found.problems = problems;
    Some(found)
}

fn unreadable(name: &str, path: &Path, why: String) -> DiscoveryProblem {
    DiscoveryProblem {
        binary: name.to_owned(),
        probe: path.display().to_string(),
        problem: ProbeProblem::Unreadable as i32,
        detail: why,
    }
}

/// `--help`, and `<sub> --help` for the subcommands it lists (at most
/// [`MAX_SUBCOMMAND_PROBES`], none that the danger heuristic calls
/// dangerous: a tool that ignored `--help` would run them).
async fn help_commands(
    candidate: &Candidate,
    path_var: Option<&OsString>,
    cwd: &Path,
    limits: Limits,
    deadline: Instant,
    problems: &mut Vec<DiscoveryProblem>,
) -> (Vec<CommandSpec>, Option<String>) {
    let name = &candidate.name;
    let output = match probe::run(&candidate.path, &["--help"], path_var, cwd, limits).await {
        Probe::Exited { output, .. } => output,
        other => {
            problems.extend(problem(name, "--help", &other));
            return (Vec::new(), None);
        }
    };
    let root = scan_help::parse(&output, &[]);
    if root.options.is_empty() && root.subcommands.is_empty() && root.positionals.is_empty() {
        // Not a help text (a tool that ignores --help and printed
        // something else): nothing to read.
        return (Vec::new(), None);
    }
    let mut specs = vec![root.clone()];
    if command::danger(name, &[], "").level >= 2 {
        return (specs, Some(output));
    }
    for (index, (sub, description)) in root.subcommands.iter().enumerate() {
        let listed = CommandSpec {
            path: vec![sub.clone()],
            description: description.clone(),
            ..CommandSpec::default()
        };
        // Past the probe budget, a subcommand is proposed as its listing
        // says (no arguments).
        if index >= MAX_SUBCOMMAND_PROBES
            || Instant::now() >= deadline
            || command::danger(name, std::slice::from_ref(sub), description).level >= 2
        {
            specs.push(listed);
            continue;
        }
        match probe::run(
            &candidate.path,
            &[sub.as_str(), "--help"],
            path_var,
            cwd,
            limits,
        )
        .await
        {
            Probe::Exited { output, .. } => {
                let mut spec = scan_help::parse(&output, std::slice::from_ref(sub));
                if spec.options.is_empty() && spec.positionals.is_empty() {
                    spec = listed;
                } else if spec.description.is_empty() {
                    spec.description = description.clone();
                } else {
                    // The listing's one line reads better than the first
                    // prose line of the subcommand's page.
                    spec.description = description.clone();
                }
                specs.push(spec);
            }
            other => {
                problems.extend(problem(name, &format!("{sub} --help"), &other));
                specs.push(listed);
            }
        }
    }
    (specs, Some(output))
}

/// `man -w NAME` with the worker's MANPATH.
async fn man_page(
    name: &str,
    options: &DiscoverOptions,
    cwd: &Path,
    limits: Limits,
) -> Option<PathBuf> {
    let man = path_scan::which("man", options.path_var.as_ref())?;
    let mut env = Vec::new();
    if let Some(manpath) = &options.manpath {
        env.push(("MANPATH", manpath.clone()));
    }
    match probe::run_with_env(
        &man,
        &["-w", name],
        options.path_var.as_ref(),
        &env,
        cwd,
        limits,
    )
    .await
    {
        Probe::Exited { code: 0, output } => output
            .lines()
            .next()
            .map(|l| PathBuf::from(l.trim()))
            .filter(|p| p.is_file()),
        _ => None,
    }
}

/// A slug from a binary's name: lowercase letters, digits and '-'.
pub fn slug(name: &str) -> Option<String> {
    let mut slug = String::new();
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    let slug: String = slug.chars().take(63).collect();
    let slug = slug.trim_end_matches('-').to_owned();
    (!slug.is_empty()).then_some(slug)
}

fn propose(
    found: Examined,
    packages: &std::collections::HashMap<PathBuf, (String, Option<String>)>,
    sources: &HashSet<DiscoverySource>,
    mcp: &[scan_mcp::McpServer],
    tools: &McpTools,
    help_texts: bool,
    slugs: &mut HashSet<String>,
) -> Option<AgentProposal> {
    let Examined {
        order: _,
        candidate,
        version,
        commands,
        problems: _,
        description,
        help_text,
    } = found;
    let preset = sources
        .contains(&DiscoverySource::Preset)
        .then(|| preset::preset_for(&candidate.name))
        .flatten();
    let mut slug = match preset {
        Some((preset, _)) => preset.to_owned(),
        None => self::slug(&candidate.name)?,
    };
    if !slugs.insert(slug.clone()) {
        let base = slug.clone();
        let mut n = 2;
        loop {
            slug = format!("{}-{n}", &base[..base.len().min(60)]);
            if slugs.insert(slug.clone()) {
                break;
            }
            n += 1;
        }
    }
    let package = packages
        .get(&candidate.path)
        .or_else(|| packages.get(&candidate.resolved));
    let (package_name, package_section) = match package {
        Some((name, section)) => (Some(name.clone()), section.clone()),
        None => (None, None),
    };
    let tool_type = path_scan::tool_type(
        &candidate.name,
        &candidate.path,
        package_name.as_deref(),
        package_section.as_deref(),
    );
    let mut capabilities: Vec<CapabilityProposal> = Vec::new();
    let mut keys = HashSet::new();
    // A tool with subcommands is run through them: its bare form (what a
    // source without subcommands, such as its man page, describes) is left
    // out.
    let has_subcommands = commands
        .iter()
        .any(|(_, specs)| specs.iter().any(|s| !s.path.is_empty()));
    for (source, specs) in &commands {
        for spec in specs {
            if spec.path.is_empty() && has_subcommands {
                continue;
            }
            if capabilities.len() >= MAX_CAPABILITIES {
                break;
            }
            if let Some(capability) = command::to_capability(&candidate.name, spec, *source)
                && keys.insert(capability.key.clone())
            {
                capabilities.push(capability);
            }
        }
    }
    if let Some((preset_name, _)) = preset {
        for server in mcp.iter().filter(|s| s.agent == preset_name) {
            let Some(key) = command::capability_key(&[format!("mcp-{}", server.name)]) else {
                continue;
            };
            if !keys.insert(key.clone()) {
                continue;
            }
            capabilities.push(CapabilityProposal {
                key,
                label: format!("{} with MCP server {}", candidate.name, server.name),
                description: Some(format!(
                    "Runs the task with the tools of the MCP server {:?} ({}), configured in {}",
                    server.name, server.target, server.file
                )),
                source: CapabilitySource::ScanMcp as i32,
                interaction_mode: InteractionMode::Prompt as i32,
                command_tokens: Vec::new(),
                prompt_template: Some(format!(
                    "{{{{ task_title }}}}\n\n{{{{ task_description }}}}\n\nUse the tools of the MCP server {:?} for this task.",
                    server.name
                )),
                args_schema: Some(json_to_struct(&serde_json::json!({}))),
                danger_level: 1,
                requires_approval: false,
                danger_reason: "an AI agent acting through an MCP server's tools".into(),
            });
            for tool in tools
                .get(&(server.agent, server.name.clone()))
                .into_iter()
                .flatten()
            {
                if capabilities.len() >= MAX_CAPABILITIES {
                    break;
                }
                if let Some(capability) = mcp_tool_capability(&candidate.name, server, tool)
                    && keys.insert(capability.key.clone())
                {
                    capabilities.push(capability);
                }
            }
        }
    }
    let version = match version {
        VersionProbe::Found(v) => Some(v),
        _ => None,
    };
    Some(AgentProposal {
        slug,
        name: preset.map_or_else(|| candidate.name.clone(), |(_, display)| display.to_owned()),
        // The name PATH has it under, not the file it resolves to: a
        // multi-call binary (rustup's `cargo`, busybox) acts by the name
        // it is called with.
        binary_path: candidate.path.display().to_string(),
        discovery_method: if preset.is_some() {
            DiscoveryMethod::Preset
        } else {
            DiscoveryMethod::PathScan
        } as i32,
        version,
        package_name,
        package_section,
        tool_type: if preset.is_some() {
            "ai-agent"
        } else {
            tool_type
        }
        .to_owned(),
        preset: preset.map(|(p, _)| p.to_owned()).unwrap_or_default(),
        capabilities,
        description,
        help_text: help_text
            .filter(|_| help_texts)
            .map(|text| truncate(text, MAX_HELP_TEXT_BYTES)),
    })
}

/// `text` cut to at most `max` bytes, at a character boundary.
fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// The tools each MCP server listed, by (agent, server name).
type McpTools = BTreeMap<(&'static str, String), Vec<scan_mcp::McpTool>>;

/// A prompt capability of the AI agent `binary` running a task with one
/// tool of one of its MCP servers: the tool's input schema is the
/// capability's args schema, and the args are listed in the prompt.
fn mcp_tool_capability(
    binary: &str,
    server: &scan_mcp::McpServer,
    tool: &scan_mcp::McpTool,
) -> Option<CapabilityProposal> {
    let mut key = command::capability_key(&[format!("mcp-{}-{}", server.name, tool.name)])
        .or_else(|| command::capability_key(&[format!("mcp-{}", tool.name)]))?;
    key.truncate(63);
    let danger = if tool.destructive {
        command::Danger {
            level: 2,
            reason: format!("the MCP server says the tool {:?} may destroy", tool.name),
        }
    } else if tool.read_only {
        command::Danger {
            level: 0,
            reason: String::new(),
        }
    } else {
        // The tool's name read like a subcommand's (`delete_issue`).
        let words: Vec<String> = tool
            .name
            .split(['_', '-', '.'])
            .map(str::to_owned)
            .collect();
        let by_name = command::danger(binary, &words, &tool.description);
        if by_name.level >= 1 {
            by_name
        } else {
            command::Danger {
                level: 1,
                reason: "an AI agent acting through an MCP server's tool".into(),
            }
        }
    };
    let schema = match &tool.input_schema {
        Value::Object(_) => tool.input_schema.clone(),
        _ => serde_json::json!({"type": "object"}),
    };
    let description: String = tool.description.chars().take(2000).collect();
    Some(CapabilityProposal {
        key,
        label: format!(
            "{binary}: {} ({})",
            tool.title.as_deref().unwrap_or(&tool.name),
            server.name
        ),
        description: Some(description).filter(|d| !d.trim().is_empty()),
        source: CapabilitySource::ScanMcp as i32,
        interaction_mode: InteractionMode::Prompt as i32,
        command_tokens: Vec::new(),
        prompt_template: Some(format!(
            "{{{{ task_title }}}}\n\n{{{{ task_description }}}}\n\nUse the tool {:?} of the MCP server {:?} for this task{{% if args %}}, with these arguments:\n{{% for name, value in args | items %}}- {{{{ name }}}}: {{{{ value }}}}\n{{% endfor %}}{{% endif %}}",
            tool.name, server.name
        )),
        args_schema: Some(json_to_struct(&schema)),
        requires_approval: danger.level >= 2,
        danger_level: danger.level,
        danger_reason: danger.reason,
    })
}

/// Cuts the result to what a gRPC message carries: capabilities of the
/// agents with the most go first, with a problem saying so.
fn fit(result: &mut DiscoverResult) {
    let mut cut = 0;
    while result.encoded_len() > MAX_RESULT_BYTES {
        let Some(biggest) = result
            .proposals
            .iter_mut()
            .filter(|p| !p.capabilities.is_empty())
            .max_by_key(|p| p.encoded_len())
        else {
            break;
        };
        let keep = biggest.capabilities.len() / 2;
        cut += biggest.capabilities.len() - keep;
        biggest.capabilities.truncate(keep);
    }
    while result.encoded_len() > MAX_RESULT_BYTES && !result.problems.is_empty() {
        result.problems.pop();
    }
    if cut > 0 {
        result.problems.push(DiscoveryProblem {
            binary: String::new(),
            probe: "result".into(),
            problem: ProbeProblem::Flooded as i32,
            detail: format!("{cut} capabilities were left out to fit the answer in one message; scan fewer binaries at a time"),
        });
    }
}

/// A JSON value as a protobuf Struct (objects only; anything else is empty).
pub fn json_to_struct(value: &Value) -> Struct {
    fn to_value(value: &Value) -> ProtoValue {
        let kind = match value {
            Value::Null => Kind::NullValue(0),
            Value::Bool(b) => Kind::BoolValue(*b),
            Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
            Value::String(s) => Kind::StringValue(s.clone()),
            Value::Array(items) => Kind::ListValue(ListValue {
                values: items.iter().map(to_value).collect(),
            }),
            Value::Object(map) => Kind::StructValue(Struct {
                fields: map.iter().map(|(k, v)| (k.clone(), to_value(v))).collect(),
            }),
        };
        ProtoValue { kind: Some(kind) }
    }
    match value {
        Value::Object(map) => Struct {
            fields: map
                .iter()
                .map(|(k, v)| (k.clone(), to_value(v)))
                .collect::<BTreeMap<_, _>>(),
        },
        _ => Struct::default(),
    }
}

/// A protobuf Struct as JSON (for tests and logs).
#[cfg(test)]
pub fn struct_to_json(value: &Struct) -> Value {
    fn from_value(value: &ProtoValue) -> Value {
        match &value.kind {
            None | Some(Kind::NullValue(_)) => Value::Null,
            Some(Kind::BoolValue(b)) => Value::Bool(*b),
            Some(Kind::NumberValue(n)) => {
                if n.fract() == 0.0 && n.abs() < 9e15 {
                    Value::from(*n as i64)
                } else {
                    Value::from(*n)
                }
            }
            Some(Kind::StringValue(s)) => Value::String(s.clone()),
            Some(Kind::ListValue(l)) => Value::Array(l.values.iter().map(from_value).collect()),
            Some(Kind::StructValue(s)) => struct_to_json(s),
        }
    }
    Value::Object(
        value
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), from_value(v)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn slugs_from_names() {
        assert_eq!(super::slug("python3.11").as_deref(), Some("python3-11"));
        assert_eq!(
            super::slug("x86_64-linux-gnu-gcc").as_deref(),
            Some("x86-64-linux-gnu-gcc")
        );
        assert_eq!(super::slug("[").as_deref(), None);
        assert_eq!(super::slug("c++").as_deref(), Some("c"));
    }
}
