//! The Model Context Protocol server at `/mcp` (streamable HTTP, on the
//! server's own port): how an AI coding agent run by the board, or a
//! person's own MCP client, reads its task, files subtasks, reports
//! progress and starts other work.
//!
//! The tools call the same store methods as the gRPC services, so the same
//! rules hold (validation, cycles, approval) and every change writes its
//! `task_events` row, with the calling run's agent as actor and the run's
//! execution id in the payload ([`auth`] decides who calls). A caller's
//! mistake is a tool error whose text names the field; nothing a caller
//! sends is a protocol error.
//!
//! Stateless streamable HTTP: every POST is served on its own and answered
//! with JSON. The tools never call back to the client, so sessions would
//! only add state that servers sharing a database cannot share, and open
//! SSE streams a graceful stop would wait on.

pub mod args;
pub mod auth;
mod tools;
pub mod view;

use std::sync::Arc;

use axum::Router;
use rmcp::{
    ErrorData, ServerHandler,
    handler::server::{router::tool::ToolRouter, tool::ToolCallContext},
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
        ServerCapabilities, ServerConfig,
    },
    service::RequestContext,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::never::NeverSessionManager,
    },
};
use tokio_util::sync::CancellationToken;

use crate::{auth::Tokens, dispatch::Engine};

/// Where the MCP server answers.
pub const PATH: &str = "/mcp";

/// Name of the server, as MCP clients show it.
pub const SERVER_NAME: &str = "agent-monitor";

/// What an MCP client shows the model before any tool is called.
const INSTRUCTIONS: &str = "\
Agent Monitor is a task board that runs work. Tasks sit in columns (todo, in_progress, \
blocked, done, cancelled), may have a parent task (subtasks) and dependencies (a task \
waits for the tasks it depends on to be done). Agents are programs the board can run \
on its workers: plain command-line tools and AI coding agents; each offers \
capabilities (\"git/status\", \"claude/prompt\"), and running one for a task makes an \
execution, whose output is kept as a log.\n\
If you were started by the board, you are one of those executions: get_context shows \
your task, its parent, subtasks and dependencies. File follow-up work with \
create_task (a subtask of your task unless you say otherwise), report progress with \
add_comment, start other work with run_capability and follow it with get_execution \
and read_log (and, for runs in a git worktree of their task, get_execution_diff shows \
what they changed). Every change you make is recorded on the task's audit trail as yours, \
and people watching the board see it at once. A capability that requires approval \
waits for a person before it runs.";

/// The MCP server: its tools over the engine.
#[derive(Clone)]
pub struct McpServer {
    engine: Engine,
    tools: Arc<ToolRouter<McpServer>>,
}

impl McpServer {
    /// The server over `engine`.
    pub fn new(engine: Engine) -> Self {
        Self {
            engine,
            tools: Arc::new(Self::tool_router()),
        }
    }
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(SERVER_NAME, env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<rmcp::model::PaginatedRequestParams>,
        _context: RequestContext<rmcp::RoleServer>,
    ) -> Result<rmcp::model::ListToolsResult, ErrorData> {
        Ok(rmcp::model::ListToolsResult::with_all_items(
            self.tools.list_all(),
        ))
    }

    fn get_tool(&self, name: &str) -> Option<rmcp::model::Tool> {
        self.tools.get(name).cloned()
    }

    /// Routes to the tool; a malformed input (see [`args::Parameters`]) is
    /// answered as a tool error the model can read and correct.
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<rmcp::RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let call = ToolCallContext::new(self, request, context);
        match self.tools.call(call).await {
            Err(error)
                if error
                    .data
                    .as_ref()
                    .is_some_and(|data| data.get(args::BAD_INPUT).is_some()) =>
            {
                Ok(
                    CallToolResult::error(vec![ContentBlock::text(error.message.to_string())])
                        .into(),
                )
            }
            other => other,
        }
    }
}

/// What `/mcp` needs from the server's configuration.
pub struct McpOptions {
    /// Tokens in force (the client token opens `/mcp` for people).
    pub tokens: Tokens,
    /// `Host` values accepted; `None` accepts any (see
    /// `ServerConfig::mcp_allowed_hosts`).
    pub allowed_hosts: Option<Vec<String>>,
    /// Cancelled when the server stops.
    pub stop: CancellationToken,
}

/// The `/mcp` route: the token check in front of the streamable HTTP
/// service.
pub fn router(engine: Engine, options: McpOptions) -> Router {
    let mut config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_cancellation_token(options.stop);
    config = match options.allowed_hosts {
        Some(hosts) => config.with_allowed_hosts(hosts),
        None => config.disable_allowed_hosts(),
    };
    let auth = auth::McpAuth::new(engine.store.clone(), options.tokens);
    let server = McpServer::new(engine);
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    Router::new()
        .route_service(PATH, service)
        .route_layer(axum::middleware::from_fn_with_state(auth, auth::require))
}
