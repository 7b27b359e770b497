//! How an assignment becomes something to run.
//!
//! - **Template mode**: `Assign.argv` exactly (no shell), as a plain child.
//! - **Prompt mode**: an AI coding agent CLI, in a tmux session, spoken to
//!   through the [`AgentProtocol`] of the agent's
//!   `session_config.bidirectional_protocol`: Claude Code `stream-json`,
//!   Codex `app-server`, or an interactive CLI in the terminal (Gemini).
//!   `Assign.argv` is the CLI and its base args; this module adds the
//!   resume flags of a continuation and the MCP launch configuration.

use std::path::PathBuf;
use std::time::Duration;

use amon_proto::v1::{
    AgentSessionConfig, Assign, BidirectionalProtocol, InteractionMode, SessionIdSource,
};
use regex::Regex;
use serde_json::json;

use super::ProcessSpec;
use super::agent::AgentProtocol;
use super::agent::claude::StreamJson;
use super::agent::codex::AppServer;
use super::agent::discovery::Discovery;
use super::agent::gemini::Interactive;
use super::agent::supervise::{AgentRun, PassPath, SettingsFile};
use super::agent::trouble::AgentSettings;
use crate::env::build_env;

/// Name of the Agent Monitor MCP server in the agents' configurations.
pub(crate) const MCP_SERVER_NAME: &str = "agent-monitor";
/// Environment variable pointing Gemini CLI at an extra settings file.
pub(crate) const GEMINI_SETTINGS_ENV: &str = "GEMINI_CLI_SYSTEM_SETTINGS_PATH";
/// Environment variable holding the run's MCP token for Codex, set in the
/// child's environment alone (Codex reads it through
/// `mcp_servers.<name>.bearer_token_env_var`).
pub(crate) const MCP_TOKEN_ENV: &str = "AMON_MCP_TOKEN";
/// Gemini CLI trusts the folder it runs in when this is `true`: the run's
/// working directory was chosen by whoever set up the agent or the task,
/// and an unattended run has nobody to answer the trust dialog (the typed
/// prompt would land in it).
pub(crate) const GEMINI_TRUST_ENV: &str = "GEMINI_CLI_TRUST_WORKSPACE";

/// What an assignment runs as.
pub(crate) enum Prepared {
    Process(ProcessSpec),
    Agent(AgentRun),
}

/// Turns `assign` into what to run, or the one-line error the run fails with.
pub(crate) fn prepare(assign: &Assign, agents: &AgentSettings) -> Result<Prepared, String> {
    match InteractionMode::try_from(assign.mode) {
        Ok(InteractionMode::Template | InteractionMode::Unspecified) => {
            template(assign).map(Prepared::Process)
        }
        Ok(InteractionMode::Prompt) => prompt(assign, agents).map(Prepared::Agent),
        Err(_) => Err(format!(
            "interaction mode {} is not supported by this worker version",
            assign.mode
        )),
    }
}

fn base_spec(assign: &Assign) -> Result<ProcessSpec, String> {
    if assign.argv.is_empty() {
        return Err("the assignment has an empty argv".to_string());
    }
    Ok(ProcessSpec {
        argv: assign.argv.clone(),
        working_dir: (!assign.working_dir.is_empty()).then(|| PathBuf::from(&assign.working_dir)),
        env: build_env(&assign.env_allowlist, &assign.env, |name| {
            std::env::var_os(name)
        }),
        timeout: assign
            .timeout
            .and_then(|d| Duration::try_from(d).ok())
            .filter(|d| !d.is_zero()),
    })
}

/// Template mode: `argv` as given, the env of the allowlist plus overrides.
fn template(assign: &Assign) -> Result<ProcessSpec, String> {
    base_spec(assign)
}

fn prompt(assign: &Assign, agents: &AgentSettings) -> Result<AgentRun, String> {
    let mut spec = base_spec(assign)?;
    let agent = assign.agent.as_ref();
    let slug = agent.map_or("", |a| a.slug.as_str());
    let config = agent
        .and_then(|a| a.session_config.clone())
        .unwrap_or_default();
    let protocol = BidirectionalProtocol::try_from(config.bidirectional_protocol)
        .unwrap_or(BidirectionalProtocol::Unspecified);
    if protocol == BidirectionalProtocol::Unspecified {
        return Err(format!(
            "agent {slug} has no session_config.bidirectional_protocol: \
             a prompt-mode run needs stream-json, app-server or tmux"
        ));
    }
    let prompt = assign
        .prompt
        .clone()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| "the assignment has no prompt".to_string())?;
    let resume = assign.resume_session_ref.clone().filter(|r| !r.is_empty());
    if let Some(session) = &resume
        && protocol != BidirectionalProtocol::AppServer
    {
        spec.argv.extend(resume_flags(&config, session, slug)?);
    }
    let mcp_url = assign
        .mcp_server_url
        .clone()
        .filter(|_| agent.is_some_and(|a| a.mcp_enabled));
    // The run's token goes where only the agent reads it: a private file in
    // the run directory (Claude, Gemini) or the child's own environment
    // (Codex); never argv, which `ps` shows and the worker logs.
    let mcp_token = assign.mcp_token.clone().filter(|t| !t.is_empty());
    let headers = mcp_token
        .as_ref()
        .map(|token| json!({"Authorization": format!("Bearer {token}")}));
    let mut settings = None;
    // No update checks or installs during a run (a restart or a notice
    // mid-turn); the MCP server joins these when the agent has it.
    let mut gemini_settings = json!({
        "general": {"enableAutoUpdate": false, "enableAutoUpdateNotification": false},
    });
    if let Some(url) = &mcp_url {
        match protocol {
            BidirectionalProtocol::StreamJson => {
                let mut server = json!({"type": "http", "url": url});
                if let Some(headers) = &headers {
                    server["headers"] = headers.clone();
                }
                // A headless turn may only call the tools it is allowed:
                // allow this server's (`mcp__<server>` covers them all), which
                // apply the board's own rules to whatever the agent asks.
                // `=`: both flags take several values and would swallow what follows.
                spec.argv
                    .push(format!("--allowedTools=mcp__{MCP_SERVER_NAME}"));
                settings = Some(SettingsFile {
                    pass: PassPath::Flag("--mcp-config=".into()),
                    file_name: "claude-mcp.json".into(),
                    contents: json!({"mcpServers": {MCP_SERVER_NAME: server}}).to_string(),
                });
            }
            BidirectionalProtocol::AppServer => {
                spec.argv.push("-c".into());
                spec.argv
                    .push(format!("mcp_servers.{MCP_SERVER_NAME}.url={}", json!(url)));
                if let Some(token) = &mcp_token {
                    spec.argv.push("-c".into());
                    spec.argv.push(format!(
                        "mcp_servers.{MCP_SERVER_NAME}.bearer_token_env_var={}",
                        json!(MCP_TOKEN_ENV)
                    ));
                    spec.env.insert(MCP_TOKEN_ENV.into(), token.into());
                }
            }
            _ => {
                // `trust`: an unattended run has nobody to confirm each call.
                let mut server = json!({"httpUrl": url, "trust": true});
                if let Some(headers) = &headers {
                    server["headers"] = headers.clone();
                }
                gemini_settings["mcpServers"] = json!({ MCP_SERVER_NAME: server });
            }
        }
    }
    if protocol == BidirectionalProtocol::Tmux {
        // What Gemini CLI would otherwise stop for or do in the middle of an
        // unattended run: its own settings, as system settings (they win
        // over the user's, and the user's file is left alone).
        settings = Some(SettingsFile {
            pass: PassPath::Env(GEMINI_SETTINGS_ENV.into()),
            file_name: "gemini-settings.json".into(),
            contents: gemini_settings.to_string(),
        });
        // A task that sets it itself (`false` to see the dialog) is obeyed.
        spec.env
            .entry(GEMINI_TRUST_ENV.into())
            .or_insert_with(|| "true".into());
    }
    let cwd = spec
        .working_dir
        .clone()
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("/"));
    let protocol: Box<dyn AgentProtocol> = match protocol {
        BidirectionalProtocol::StreamJson => Box::new(StreamJson::new(
            prompt,
            config.session_id_field.clone(),
            agents,
        )),
        BidirectionalProtocol::AppServer => Box::new(AppServer::new(
            prompt,
            cwd.to_string_lossy().into_owned(),
            resume,
            agents,
        )),
        _ => Box::new(Interactive::new(
            prompt,
            config
                .completion_idle
                .and_then(|d| Duration::try_from(d).ok()),
            agents,
        )),
    };
    Ok(AgentRun {
        spec,
        session_name: assign
            .tmux_session_name
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("amon-{}", assign.execution_id)),
        protocol,
        discovery: discovery(&config)?,
        settings,
    })
}

/// The flags resuming `session`: `resumeFlags` with `{{sessionRef}}`
/// replaced, else `continueFlags` (the latest session).
fn resume_flags(
    config: &AgentSessionConfig,
    session: &str,
    slug: &str,
) -> Result<Vec<String>, String> {
    if !config.resume_flags.is_empty() {
        return Ok(config
            .resume_flags
            .iter()
            .map(|flag| {
                flag.replace("{{sessionRef}}", session)
                    .replace("{{ sessionRef }}", session)
            })
            .collect());
    }
    if !config.continue_flags.is_empty() {
        return Ok(config.continue_flags.clone());
    }
    Err(format!(
        "agent {slug} has neither resumeFlags nor continueFlags: its session cannot be resumed"
    ))
}

fn discovery(config: &AgentSessionConfig) -> Result<Option<Discovery>, String> {
    let pattern = |required: bool| -> Result<Option<Regex>, String> {
        match config
            .list_sessions_pattern
            .as_deref()
            .filter(|p| !p.is_empty())
        {
            Some(p) => Regex::new(p)
                .map(Some)
                .map_err(|e| format!("listSessionsPattern: {e}")),
            None if required => Err("listSessionsPattern is not set".to_string()),
            None => Ok(None),
        }
    };
    Ok(match SessionIdSource::try_from(config.session_id_source) {
        Ok(SessionIdSource::ListCommand) => Some(Discovery::ListCommand {
            argv: config.list_sessions_command.clone(),
            pattern: pattern(true)?.expect("required"),
        }),
        Ok(SessionIdSource::Filesystem) => match config.session_file_glob.clone() {
            Some(glob) if !glob.is_empty() => Some(Discovery::Files {
                glob,
                pattern: pattern(false)?,
            }),
            _ => None,
        },
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use amon_proto::v1::Agent;

    fn agent_assign(protocol: BidirectionalProtocol) -> Assign {
        Assign {
            execution_id: "e-1".into(),
            mode: InteractionMode::Prompt as i32,
            argv: vec!["claude".into(), "-p".into()],
            prompt: Some("do it".into()),
            agent: Some(Agent {
                slug: "claude".into(),
                session_config: Some(AgentSessionConfig {
                    bidirectional_protocol: protocol as i32,
                    resume_flags: vec!["--resume".into(), "{{sessionRef}}".into()],
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn config_of(assign: &mut Assign) -> &mut AgentSessionConfig {
        let agent = assign.agent.as_mut().expect("agent");
        agent.session_config.as_mut().expect("session config")
    }

    fn agent(assign: &Assign) -> AgentRun {
        match prepare(assign, &AgentSettings::new("w")) {
            Ok(Prepared::Agent(run)) => run,
            Ok(Prepared::Process(_)) => panic!("a template run"),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn modes() {
        let mut assign = Assign {
            argv: vec!["true".into()],
            ..Default::default()
        };
        assert!(matches!(
            prepare(&assign, &AgentSettings::new("w")),
            Ok(Prepared::Process(_))
        ));
        assign.mode = 99;
        assert!(prepare(&assign, &AgentSettings::new("w")).is_err());
        let empty = Assign::default();
        assert!(prepare(&empty, &AgentSettings::new("w")).is_err());
        let spec = match prepare(
            &Assign {
                argv: vec!["ls".into(), "-l".into()],
                working_dir: "/tmp".into(),
                timeout: Some(prost_types::Duration {
                    seconds: 2,
                    nanos: 0,
                }),
                ..Default::default()
            },
            &AgentSettings::new("w"),
        ) {
            Ok(Prepared::Process(spec)) => spec,
            _ => panic!("template"),
        };
        assert_eq!(spec.working_dir, Some(PathBuf::from("/tmp")));
        assert_eq!(spec.timeout, Some(Duration::from_secs(2)));
        assert!(spec.env.is_empty());
    }

    #[test]
    fn prompt_runs() {
        let mut assign = agent_assign(BidirectionalProtocol::StreamJson);
        let run = agent(&assign);
        assert_eq!(run.spec.argv, vec!["claude", "-p"]);
        assert_eq!(run.session_name, "amon-e-1");
        assign.tmux_session_name = Some("amon-x".into());
        assign.resume_session_ref = Some("s-9".into());
        assign.mcp_server_url = Some("http://h:1/mcp".into());
        assign.mcp_token = Some("amon_run_secret".into());
        assign.agent.as_mut().unwrap().mcp_enabled = true;
        let run = agent(&assign);
        assert_eq!(run.session_name, "amon-x");
        // The configuration is a private file named by the flag, so the
        // token never reaches argv.
        assert_eq!(
            run.spec.argv,
            vec![
                "claude",
                "-p",
                "--resume",
                "s-9",
                "--allowedTools=mcp__agent-monitor"
            ]
        );
        let settings = run.settings.expect("claude MCP configuration file");
        assert_eq!(settings.pass, PassPath::Flag("--mcp-config=".into()));
        let config: serde_json::Value = serde_json::from_str(&settings.contents).unwrap();
        assert_eq!(
            config,
            json!({"mcpServers": {"agent-monitor": {
                "type": "http",
                "url": "http://h:1/mcp",
                "headers": {"Authorization": "Bearer amon_run_secret"},
            }}})
        );

        let mut assign = agent_assign(BidirectionalProtocol::AppServer);
        assign.resume_session_ref = Some("thr".into());
        assign.mcp_server_url = Some("http://h:1/mcp".into());
        assign.mcp_token = Some("amon_run_secret".into());
        assign.agent.as_mut().unwrap().mcp_enabled = true;
        let run = agent(&assign);
        // app-server resumes with thread/resume, not flags; the token is in
        // the child's environment, its variable's name on the command line.
        assert_eq!(
            run.spec.argv,
            vec![
                "claude",
                "-p",
                "-c",
                r#"mcp_servers.agent-monitor.url="http://h:1/mcp""#,
                "-c",
                r#"mcp_servers.agent-monitor.bearer_token_env_var="AMON_MCP_TOKEN""#,
            ]
        );
        assert_eq!(
            run.spec.env.get(std::ffi::OsStr::new(MCP_TOKEN_ENV)),
            Some(&"amon_run_secret".into())
        );
        assert!(!run.spec.argv.iter().any(|a| a.contains("amon_run_secret")));

        let mut assign = agent_assign(BidirectionalProtocol::Tmux);
        assign.mcp_server_url = Some("http://h:1/mcp".into());
        assign.mcp_token = Some("amon_run_secret".into());
        let run = agent(&assign);
        // Gemini's own settings (no update checks), the run's folder
        // trusted; MCP only for mcp_enabled agents, nor its token.
        let settings = run.settings.expect("gemini settings file");
        let config: serde_json::Value = serde_json::from_str(&settings.contents).unwrap();
        assert_eq!(
            config,
            json!({"general": {"enableAutoUpdate": false, "enableAutoUpdateNotification": false}})
        );
        assert_eq!(
            run.spec.env.into_iter().collect::<Vec<_>>(),
            vec![(GEMINI_TRUST_ENV.into(), "true".into())]
        );
        // A task's own choice stands.
        let mut untrusting = assign.clone();
        untrusting
            .env
            .insert(GEMINI_TRUST_ENV.into(), "false".into());
        assert_eq!(
            agent(&untrusting)
                .spec
                .env
                .get(std::ffi::OsStr::new(GEMINI_TRUST_ENV)),
            Some(&"false".into())
        );
        assign.agent.as_mut().unwrap().mcp_enabled = true;
        let run = agent(&assign);
        let settings = run.settings.expect("gemini settings file");
        assert_eq!(settings.pass, PassPath::Env(GEMINI_SETTINGS_ENV.into()));
        let config: serde_json::Value = serde_json::from_str(&settings.contents).unwrap();
        assert_eq!(
            config["mcpServers"]["agent-monitor"],
            json!({"httpUrl": "http://h:1/mcp", "trust": true,
                   "headers": {"Authorization": "Bearer amon_run_secret"}})
        );
    }

    #[test]
    fn prompt_errors() {
        let mut assign = agent_assign(BidirectionalProtocol::Unspecified);
        assert!(
            prepare(&assign, &AgentSettings::new("w"))
                .err()
                .unwrap()
                .contains("bidirectional_protocol")
        );
        assign = agent_assign(BidirectionalProtocol::StreamJson);
        assign.prompt = None;
        assert!(
            prepare(&assign, &AgentSettings::new("w"))
                .err()
                .unwrap()
                .contains("no prompt")
        );
        assign = agent_assign(BidirectionalProtocol::Tmux);
        assign.resume_session_ref = Some("x".into());
        let config = config_of(&mut assign);
        config.resume_flags.clear();
        assert!(
            prepare(&assign, &AgentSettings::new("w"))
                .err()
                .unwrap()
                .contains("cannot be resumed")
        );
        let config = config_of(&mut assign);
        config.continue_flags = vec!["--continue".into()];
        assert!(
            agent(&assign)
                .spec
                .argv
                .ends_with(&["--continue".to_string()])
        );
        config_pattern_errors();
    }

    fn config_pattern_errors() {
        let mut assign = agent_assign(BidirectionalProtocol::Tmux);
        let config = config_of(&mut assign);
        config.session_id_source = SessionIdSource::ListCommand as i32;
        config.list_sessions_command = vec!["gemini".into(), "--list-sessions".into()];
        config.list_sessions_pattern = Some("(".into());
        assert!(
            prepare(&assign, &AgentSettings::new("w"))
                .err()
                .unwrap()
                .contains("listSessionsPattern")
        );
    }
}
