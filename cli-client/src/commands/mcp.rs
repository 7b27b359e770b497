//! `amon mcp-config <client>`: the snippet that adds this server's MCP
//! endpoint (`/mcp` on the server's own port) to an MCP client, with the
//! token given to `amon` (the client token). Prints only; contacts nothing.

use clap::{Args, ValueEnum};

use crate::client::{UsageError, normalize_addr};

/// Name the server gets in the client's configuration (also what the
/// worker names it in the agents it launches).
const SERVER_NAME: &str = "agent-monitor";

/// Which MCP client to print the configuration of.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum McpClient {
    /// Claude Code: a `claude mcp add` command.
    Claude,
    /// Codex: a `~/.codex/config.toml` table (the token read from AMON_TOKEN).
    Codex,
    /// Gemini CLI: the `mcpServers` entry of `~/.gemini/settings.json`.
    Gemini,
    /// Any client taking the common JSON (`mcpServers`, as in `.mcp.json`).
    Json,
}

/// `amon mcp-config`.
#[derive(Debug, Args)]
pub struct McpConfigArgs {
    /// The client to configure.
    #[arg(value_enum)]
    pub client: McpClient,
    /// The MCP URL, when clients reach the server otherwise than --server
    /// says (a proxy, another host name). Default: --server with /mcp.
    #[arg(long)]
    pub url: Option<String>,
}

/// The snippet for `args`, given the server address and token `amon` uses.
pub fn snippet(args: &McpConfigArgs, addr: &str, token: Option<&str>) -> anyhow::Result<String> {
    let url = match &args.url {
        Some(url) if url.starts_with("http://") || url.starts_with("https://") => url.clone(),
        Some(url) => {
            return Err(
                UsageError(format!("--url '{url}': give an http:// or https:// URL")).into(),
            );
        }
        None => format!("{}/mcp", normalize_addr(addr)?),
    };
    let bearer = token.map(|token| format!("Bearer {token}"));
    let headers = bearer
        .as_ref()
        .map(|b| serde_json::json!({ "Authorization": b }));
    Ok(match args.client {
        McpClient::Claude => {
            let mut command = format!(
                "claude mcp add --transport http {SERVER_NAME} {}",
                shell_quote(&url)
            );
            if let Some(bearer) = &bearer {
                command.push_str(&format!(
                    " --header {}",
                    shell_quote(&format!("Authorization: {bearer}"))
                ));
            }
            command + "\n"
        }
        McpClient::Codex => {
            let mut toml = format!(
                "[mcp_servers.{SERVER_NAME}]\nurl = {}\n",
                serde_json::Value::from(url.as_str())
            );
            if token.is_some() {
                // Codex takes no token in its config file, only the name of
                // a variable of its environment that holds it.
                toml.push_str(
                    "bearer_token_env_var = \"AMON_TOKEN\"  # export AMON_TOKEN=<the client token> where Codex runs\n",
                );
            }
            toml
        }
        McpClient::Gemini => {
            let mut server = serde_json::json!({ "httpUrl": url });
            if let Some(headers) = headers {
                server["headers"] = headers;
            }
            serde_json::to_string_pretty(
                &serde_json::json!({ "mcpServers": { SERVER_NAME: server } }),
            )? + "\n"
        }
        McpClient::Json => {
            let mut server = serde_json::json!({ "type": "http", "url": url });
            if let Some(headers) = headers {
                server["headers"] = headers;
            }
            serde_json::to_string_pretty(
                &serde_json::json!({ "mcpServers": { SERVER_NAME: server } }),
            )? + "\n"
        }
    })
}

/// `value` quoted for a POSIX shell when it needs it.
fn shell_quote(value: &str) -> String {
    if !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c))
    {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(client: McpClient) -> McpConfigArgs {
        McpConfigArgs { client, url: None }
    }

    #[test]
    fn each_client_gets_the_url_and_the_token_its_way() {
        let claude = snippet(&args(McpClient::Claude), "board:50051", Some("s3cr'et")).unwrap();
        assert_eq!(
            claude,
            "claude mcp add --transport http agent-monitor http://board:50051/mcp \
             --header 'Authorization: Bearer s3cr'\\''et'\n"
        );
        let codex = snippet(&args(McpClient::Codex), "http://board:50051/", Some("t")).unwrap();
        assert!(
            codex.starts_with("[mcp_servers.agent-monitor]\nurl = \"http://board:50051/mcp\"\n")
        );
        assert!(codex.contains("bearer_token_env_var = \"AMON_TOKEN\""));
        assert!(
            !codex.contains("\"t\""),
            "no token in Codex's file: {codex}"
        );
        let gemini: serde_json::Value =
            serde_json::from_str(&snippet(&args(McpClient::Gemini), "h:1", Some("t")).unwrap())
                .unwrap();
        assert_eq!(
            gemini["mcpServers"]["agent-monitor"],
            serde_json::json!({"httpUrl": "http://h:1/mcp", "headers": {"Authorization": "Bearer t"}})
        );
        let json: serde_json::Value =
            serde_json::from_str(&snippet(&args(McpClient::Json), "h:1", None).unwrap()).unwrap();
        assert_eq!(
            json["mcpServers"]["agent-monitor"],
            serde_json::json!({"type": "http", "url": "http://h:1/mcp"})
        );
        let without = snippet(&args(McpClient::Claude), "h:1", None).unwrap();
        assert!(!without.contains("--header"));
        let behind_proxy = McpConfigArgs {
            client: McpClient::Claude,
            url: Some("https://board.example/mcp".into()),
        };
        assert!(
            snippet(&behind_proxy, "h:1", None)
                .unwrap()
                .contains("https://board.example/mcp")
        );
        let bad = McpConfigArgs {
            client: McpClient::Json,
            url: Some("board/mcp".into()),
        };
        assert!(snippet(&bad, "h:1", None).is_err());
    }
}
