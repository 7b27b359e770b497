//! An MCP client of the server's `/mcp` (rmcp's, over streamable HTTP),
//! and the calls tests make with it.

use anyhow::{Context, Result};
use rmcp::{
    RoleClient, ServiceExt,
    model::{CallToolRequestParams, CallToolResult},
    service::RunningService,
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::Value;

pub type Client = RunningService<RoleClient, ()>;

/// An MCP client of `url` presenting `token`, initialized.
pub async fn connect(url: &str, token: Option<&str>) -> Result<Client> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_owned());
    if let Some(token) = token {
        config = config.auth_header(token);
    }
    let transport = StreamableHttpClientTransport::with_client(crate::http::client(), config);
    ().serve(transport).await.context("MCP initialize")
}

/// Calls `tool`, failing the test on a protocol error (a tool error is an
/// answer like any other).
pub async fn call(client: &Client, tool: &str, arguments: Value) -> CallToolResult {
    let Value::Object(arguments) = arguments else {
        panic!("arguments must be an object")
    };
    client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
        .await
        .unwrap_or_else(|e| panic!("{tool}: a protocol error instead of an answer: {e}"))
}

/// The JSON a successful call answered.
pub async fn ok(client: &Client, tool: &str, arguments: Value) -> Value {
    let result = call(client, tool, arguments.clone()).await;
    assert_ne!(
        result.is_error,
        Some(true),
        "{tool}({arguments}) failed: {}",
        text(&result)
    );
    result
        .structured_content
        .clone()
        .unwrap_or_else(|| panic!("{tool} answered no JSON: {result:?}"))
}

/// The text of a result.
pub fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|block| block.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Asserts `tool(arguments)` is a tool error mentioning each of `words`.
pub async fn refused(client: &Client, tool: &str, arguments: Value, words: &[&str]) {
    let result = call(client, tool, arguments.clone()).await;
    let message = text(&result);
    assert_eq!(
        result.is_error,
        Some(true),
        "{tool}({arguments}) should fail: {message}"
    );
    for word in words {
        assert!(
            message.contains(word),
            "{tool}({arguments}): {message:?} should mention {word:?}"
        );
    }
}
