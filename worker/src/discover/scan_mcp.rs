//! MCP servers configured for the AI coding agent CLIs on this machine:
//! Claude Code's `~/.claude.json` (user-wide and per-project `mcpServers`)
//! and a project's `.mcp.json`, Codex's `~/.codex/config.toml`
//! (`[mcp_servers.NAME]`), Gemini CLI's `~/.gemini/settings.json`
//! (`mcpServers`). Each becomes, on that CLI's agent, a prompt capability
//! (`mcp-<name>`, source `scan_mcp`) that runs the task with that server's
//! tools named, so a person sees which servers each agent has and can run a
//! task through one. Servers' own `tools/list` is not asked (it would start
//! their commands).

use std::path::Path;

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
                            let target = match (get("command"), get("url")) {
                                (Some(command), _) => std::iter::once(command)
                                    .chain(args)
                                    .collect::<Vec<_>>()
                                    .join(" "),
                                (None, Some(url)) => url,
                                (None, None) => continue,
                            };
                            servers.push(McpServer {
                                agent: "codex",
                                name: name.to_owned(),
                                target,
                                file: path.display().to_string(),
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
        let target = match (command, url) {
            (Some(command), _) => std::iter::once(command)
                .chain(args)
                .collect::<Vec<_>>()
                .join(" "),
            (None, Some(url)) => url.to_owned(),
            (None, None) => continue,
        };
        out.push(McpServer {
            agent,
            name: name.clone(),
            target,
            file: file.to_owned(),
        });
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
