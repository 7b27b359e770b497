//! MCP servers configured for the AI coding agent CLIs on this machine:
//! Claude Code's `~/.claude.json` (user-wide and per-project `mcpServers`)
//! and a project's `.mcp.json`, Codex's `~/.codex/config.toml`
//! (`[mcp_servers.NAME]`), Gemini CLI's `~/.gemini/settings.json`
//! (`mcpServers`). Each becomes, on that CLI's agent, a prompt capability
//! (`mcp-<name>`, source `scan_mcp`) that runs the task with that server's
//! tools named, so a person sees which servers each agent has and can run a
//! task through one.
//!
//! With `mcp_tools` ([`list_tools`]), each server configured over stdio is
//! started and asked `initialize` and `tools/list` (the `rmcp` client); each
//! tool becomes a prompt capability of that agent. A server is started with
//! its configured command, arguments and environment and nothing of the
//! worker's but a minimal `PATH` (`/usr/local/bin:/usr/bin:/bin`, unless its
//! configuration sets one; its command is looked up on the worker's PATH, as
//! the AI CLI would), `HOME` and `TMPDIR` in the scan's own directory, in
//! that directory; its stdin carries only the protocol, its stderr is
//! dropped, its stdout is cut at [`MAX_MCP_OUTPUT`], and it is killed (its
//! whole process group) after [`MCP_TIMEOUT`] or as soon as it answered.
//! Servers reached over HTTP are not asked.

use std::ffi::OsString;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

/// One configured MCP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpServer {
    /// The AI CLI it is configured for: claude, codex or gemini.
    pub agent: &'static str,
    /// Its name in the configuration.
    pub name: String,
    /// How it is reached: the command line, or the URL.
    pub target: String,
    /// The file it was read from.
    pub file: String,
    /// How to start it, for a server over stdio.
    pub launch: Option<Launch>,
}

/// How a stdio MCP server is started, as configured.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Launch {
    /// The program.
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its configured environment (nothing else of the worker's).
    pub env: Vec<(String, String)>,
}

/// What reading the configuration files found, and the files that could
/// not be read (path, why).
pub fn read(
    home: Option<&Path>,
    project: Option<&Path>,
) -> (Vec<McpServer>, Vec<(String, String)>) {
    let mut servers = Vec::new();
    let mut problems = Vec::new();
    let mut json_file = |agent: &'static str, path: &Path, servers: &mut Vec<McpServer>| {
        if !path.is_file() {
            return;
        }
        let parsed = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<Value>(&t).map_err(|e| e.to_string()));
        match parsed {
            Ok(doc) => {
                let file = path.display().to_string();
                collect_json(agent, &doc["mcpServers"], &file, servers);
                // ~/.claude.json also keeps servers per project.
                if let Some(projects) = doc["projects"].as_object() {
                    for project in projects.values() {
                        collect_json(agent, &project["mcpServers"], &file, servers);
                    }
                }
            }
            Err(e) => problems.push((path.display().to_string(), e)),
        }
    };
    if let Some(home) = home {
        json_file("claude", &home.join(".claude.json"), &mut servers);
        json_file("gemini", &home.join(".gemini/settings.json"), &mut servers);
    }
    if let Some(project) = project {
        json_file("claude", &project.join(".mcp.json"), &mut servers);
    }
    if let Some(home) = home {
        let path = home.join(".codex/config.toml");
        if path.is_file() {
            match std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|t| {
                    t.parse::<toml_edit::DocumentMut>()
                        .map_err(|e| e.to_string())
                }) {
                Ok(doc) => {
                    if let Some(table) = doc.get("mcp_servers").and_then(|t| t.as_table_like()) {
                        for (name, server) in table.iter() {
                            let get = |key: &str| {
                                server.get(key).and_then(|v| v.as_str()).map(str::to_owned)
                            };
                            let args: Vec<String> = server
                                .get("args")
                                .and_then(|a| a.as_array())
                                .map(|a| {
                                    a.iter()
                                        .filter_map(|v| v.as_str().map(str::to_owned))
                                        .collect()
                                })
                                .unwrap_or_default();
                            let env: Vec<(String, String)> = server
                                .get("env")
                                .and_then(|e| e.as_table_like())
                                .map(|t| {
                                    t.iter()
                                        .filter_map(|(k, v)| {
                                            v.as_str().map(|v| (k.to_owned(), v.to_owned()))
                                        })
                                        .collect()
                                })
                                .unwrap_or_default();
                            let (target, launch) = match (get("command"), get("url")) {
                                (Some(command), _) => (
                                    std::iter::once(command.clone())
                                        .chain(args.iter().cloned())
                                        .collect::<Vec<_>>()
                                        .join(" "),
                                    Some(Launch { command, args, env }),
                                ),
                                (None, Some(url)) => (url, None),
                                (None, None) => continue,
                            };
                            servers.push(McpServer {
                                agent: "codex",
                                name: name.to_owned(),
                                target,
                                file: path.display().to_string(),
                                launch,
                            });
                        }
                    }
                }
                Err(e) => problems.push((path.display().to_string(), e)),
            }
        }
    }
    servers.sort_by(|a, b| (a.agent, &a.name).cmp(&(b.agent, &b.name)));
    servers.dedup_by(|a, b| a.agent == b.agent && a.name == b.name);
    (servers, problems)
}

fn collect_json(agent: &'static str, servers: &Value, file: &str, out: &mut Vec<McpServer>) {
    let Some(servers) = servers.as_object() else {
        return;
    };
    for (name, server) in servers {
        let command = server["command"].as_str();
        let args: Vec<&str> = server["args"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let url = server["url"]
            .as_str()
            .or_else(|| server["httpUrl"].as_str());
        let env: Vec<(String, String)> = server["env"]
            .as_object()
            .map(|e| {
                e.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        let (target, launch) = match (command, url) {
            (Some(command), _) => (
                std::iter::once(command)
                    .chain(args.iter().copied())
                    .collect::<Vec<_>>()
                    .join(" "),
                Some(Launch {
                    command: command.to_owned(),
                    args: args.iter().map(|a| (*a).to_owned()).collect(),
                    env,
                }),
            ),
            (None, Some(url)) => (url.to_owned(), None),
            (None, None) => continue,
        };
        out.push(McpServer {
            agent,
            name: name.clone(),
            target,
            file: file.to_owned(),
            launch,
        });
    }
}

/// Longest a server may take to start and list its tools.
pub const MCP_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes a server may write before it counts as flooding (tools'
/// schemas included: the largest list seen, GitHub's server's 90 tools, is
/// about 200 KB).
pub const MAX_MCP_OUTPUT: u64 = 2 * 1024 * 1024;
/// PATH of a started server, unless its configuration sets one.
pub const MCP_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// One tool a server listed.
#[derive(Debug, Clone, PartialEq)]
pub struct McpTool {
    pub name: String,
    pub title: Option<String>,
    pub description: String,
    /// Its input schema (a JSON Schema object).
    pub input_schema: Value,
    /// The server says it only reads.
    pub read_only: bool,
    /// The server says it may destroy.
    pub destructive: bool,
}

/// Why a server's tools could not be listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListFailure {
    /// It did not answer within the timeout.
    TimedOut,
    /// It wrote more than the cap.
    Flooded,
    /// It could not be started, ended, or answered nonsense.
    Failed(String),
}

/// Starts `launch` and asks its tools; the server is killed afterwards,
/// whatever happened. `worker_path` finds the command; `dir` is the scan's
/// own directory.
pub async fn list_tools(
    launch: &Launch,
    worker_path: Option<&OsString>,
    dir: &Path,
    timeout: Duration,
) -> Result<Vec<McpTool>, ListFailure> {
    use rmcp::ServiceExt;
    use tokio::io::AsyncReadExt;

    let program = if launch.command.contains('/') {
        Some(std::path::PathBuf::from(&launch.command))
    } else {
        super::path_scan::which(&launch.command, worker_path)
    };
    let Some(program) = program else {
        return Err(ListFailure::Failed(format!(
            "{:?} is not on the worker's PATH",
            launch.command
        )));
    };
    let mut command = tokio::process::Command::new(&program);
    command
        .args(&launch.args)
        .env_clear()
        .env("PATH", MCP_PATH)
        .env("HOME", dir)
        .env("TMPDIR", dir)
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    // SAFETY: between fork and exec; prctl is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(std::io::Error::from)
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| ListFailure::Failed(format!("could not be started: {e}")))?;
    let group = child.id().map(|id| nix::unistd::Pid::from_raw(id as i32));
    let stdin = child.stdin.take().expect("piped");
    let stdout = child.stdout.take().expect("piped");
    // Past the cap the server's output ends (EOF): the client fails, and
    // the flood is told apart by what was read.
    let read = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = CountingReader {
        inner: stdout.take(MAX_MCP_OUTPUT),
        read: read.clone(),
    };
    let transport = rmcp::transport::async_rw::AsyncRwTransport::new_client(counted, stdin)
        .with_max_line_length(MAX_MCP_OUTPUT as usize);
    let outcome = tokio::time::timeout(timeout, async {
        let client = ().serve(transport).await.map_err(|e| e.to_string())?;
        let tools = client.list_all_tools().await.map_err(|e| e.to_string());
        let _ = client.cancel().await;
        tools
    })
    .await;
    if let Some(group) = group {
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
    }
    let _ = child.wait().await;
    let flooded = read.load(std::sync::atomic::Ordering::Relaxed) >= MAX_MCP_OUTPUT;
    match outcome {
        _ if flooded => Err(ListFailure::Flooded),
        Err(_) => Err(ListFailure::TimedOut),
        Ok(Err(e)) => Err(ListFailure::Failed(e)),
        Ok(Ok(tools)) => Ok(tools
            .into_iter()
            .map(|tool| {
                let annotations = tool.annotations.clone().unwrap_or_default();
                McpTool {
                    name: tool.name.to_string(),
                    title: tool.title.clone().or(annotations.title.clone()),
                    description: tool.description.as_deref().unwrap_or("").to_owned(),
                    input_schema: Value::Object((*tool.input_schema).clone()),
                    read_only: annotations.read_only_hint == Some(true),
                    destructive: annotations.destructive_hint == Some(true),
                }
            })
            .collect()),
    }
}

/// Counts what a reader gave.
struct CountingReader<R> {
    inner: R,
    read: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for CountingReader<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        self.read.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        poll
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cli_configuration_is_read() {
        let home = tempfile::tempdir().unwrap();
        let project = tempfile::tempdir().unwrap();
        let h = home.path();
        std::fs::write(
            h.join(".claude.json"),
            r#"{"mcpServers": {"files": {"command": "npx", "args": ["-y", "fs-server"]}},
                "projects": {"/p": {"mcpServers": {"db": {"type": "http", "url": "http://db/mcp"}}}}}"#,
        )
        .unwrap();
        std::fs::create_dir_all(h.join(".codex")).unwrap();
        std::fs::write(
            h.join(".codex/config.toml"),
            "model = \"o3\"\n[mcp_servers.search]\ncommand = \"search-mcp\"\nargs = [\"--port\", \"0\"]\n",
        )
        .unwrap();
        std::fs::create_dir_all(h.join(".gemini")).unwrap();
        std::fs::write(
            h.join(".gemini/settings.json"),
            r#"{"mcpServers": {"web": {"httpUrl": "https://w/mcp"}}}"#,
        )
        .unwrap();
        std::fs::write(project.path().join(".mcp.json"), "{not json").unwrap();
        let (servers, problems) = read(Some(h), Some(project.path()));
        let seen: Vec<(&str, &str, &str)> = servers
            .iter()
            .map(|s| (s.agent, s.name.as_str(), s.target.as_str()))
            .collect();
        assert_eq!(
            seen,
            vec![
                ("claude", "db", "http://db/mcp"),
                ("claude", "files", "npx -y fs-server"),
                ("codex", "search", "search-mcp --port 0"),
                ("gemini", "web", "https://w/mcp"),
            ]
        );
        assert_eq!(problems.len(), 1);
        assert!(problems[0].0.ends_with(".mcp.json"));
    }
}

#[cfg(test)]
mod listing {
    //! `tools/list` of a real server process: the fixture MCP server
    //! (`tests/fixtures/fake-mcp`, Python), well and badly behaved.
    use super::*;

    fn launch(mode: &str) -> Launch {
        Launch {
            command: concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/fake-mcp").into(),
            args: vec![],
            env: vec![
                ("FAKE_MCP_MODE".into(), mode.into()),
                ("CONFIGURED".into(), "yes".into()),
            ],
        }
    }

    #[tokio::test]
    async fn tools_are_listed_with_the_configured_environment_only() {
        let dir = tempfile::tempdir().unwrap();
        // The test process has HOME, USER, CARGO_PKG_NAME…: none may reach it.
        let tools = list_tools(&launch(""), None, dir.path(), Duration::from_secs(10))
            .await
            .unwrap();
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, vec!["read_file", "delete_file", "environment"]);
        assert!(tools[0].read_only && !tools[0].destructive);
        assert_eq!(tools[0].title.as_deref(), Some("Read a file"));
        assert_eq!(
            tools[0].input_schema["required"],
            serde_json::json!(["path"])
        );
        assert!(tools[1].destructive);
        let env: Vec<&str> = tools[2].description.split(',').collect();
        assert!(
            env.contains(&"CONFIGURED") && env.contains(&"PATH"),
            "{env:?}"
        );
        for name in &env {
            // Python sets LC_CTYPE itself in the C locale (PEP 538).
            assert!(
                [
                    "CONFIGURED",
                    "FAKE_MCP_MODE",
                    "PATH",
                    "HOME",
                    "TMPDIR",
                    "LC_CTYPE"
                ]
                .contains(name),
                "{name} leaked into the server's environment: {env:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_server_that_hangs_crashes_floods_or_babbles_is_told() {
        let dir = tempfile::tempdir().unwrap();
        let began = std::time::Instant::now();
        assert_eq!(
            list_tools(
                &launch("hang"),
                None,
                dir.path(),
                Duration::from_millis(1500)
            )
            .await,
            Err(ListFailure::TimedOut)
        );
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "{:?}",
            began.elapsed()
        );
        assert!(matches!(
            list_tools(&launch("crash"), None, dir.path(), Duration::from_secs(10)).await,
            Err(ListFailure::Failed(_))
        ));
        assert_eq!(
            list_tools(&launch("flood"), None, dir.path(), Duration::from_secs(10)).await,
            Err(ListFailure::Flooded)
        );
        let garbage =
            list_tools(&launch("garbage"), None, dir.path(), Duration::from_secs(3)).await;
        assert!(garbage.is_err(), "{garbage:?}");
        let missing = Launch {
            command: "no-such-mcp-server".into(),
            ..Launch::default()
        };
        assert!(matches!(
            list_tools(&missing, None, dir.path(), Duration::from_secs(1)).await,
            Err(ListFailure::Failed(why)) if why.contains("PATH")
        ));
    }
}
