//! Who is calling `/mcp`, decided before any tool runs.
//!
//! - A run's token (`amon_run_…`, issued at the claim and carried in
//!   `Assign.mcp_token`): the agent of that run, while the run goes on
//!   (running or being cancelled). It is checked against the run on every
//!   request, so it stops working the moment the run ends or is requeued.
//! - The client token: a person's own MCP client, with the rights of any
//!   API client.
//! - No token: a person, when no client token is configured (the server
//!   then listens on loopback only, unless `--insecure`); else refused.
//!
//! Anything else (a wrong token, the worker token, an ended run's token) is
//! 401 with `WWW-Authenticate: Bearer`, and no tool runs.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http::{HeaderValue, StatusCode, header};
use uuid::Uuid;

use crate::{
    auth::{Tokens, constant_time_eq},
    store::{Actor, Store, StoreError, execution_state::status_name, executions::RunTokenCheck},
};

/// The caller of a tool, put in the request's extensions by [`require`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// A person's own MCP client.
    Person,
    /// The agent of a running execution.
    Run(RunCaller),
}

/// The run a run token was issued to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunCaller {
    /// The execution.
    pub execution_id: Uuid,
    /// Its task: the caller's own task.
    pub task_id: Uuid,
    /// The agent running it.
    pub agent_id: Uuid,
    /// The capability it runs.
    pub capability_id: Uuid,
}

impl Caller {
    /// The actor recorded on the audit trail for this caller's changes.
    pub fn actor(&self) -> Actor {
        match self {
            Caller::Person => Actor::user(),
            Caller::Run(run) => Actor::agent_run(run.agent_id, run.execution_id),
        }
    }

    /// The run calling, if an agent's run is.
    pub fn run(&self) -> Option<&RunCaller> {
        match self {
            Caller::Person => None,
            Caller::Run(run) => Some(run),
        }
    }
}

/// What the check needs: the store (to find runs) and the tokens in force.
#[derive(Clone)]
pub struct McpAuth {
    store: Store,
    tokens: Arc<Tokens>,
}

impl McpAuth {
    /// A check over `store` with `tokens`.
    pub fn new(store: Store, tokens: Tokens) -> Self {
        Self {
            store,
            tokens: Arc::new(tokens),
        }
    }

    /// The caller presenting `authorization`, or why it is refused.
    pub async fn caller(&self, authorization: Option<&str>) -> Result<Caller, Refusal> {
        let Some(authorization) = authorization else {
            return match self.tokens.client {
                None => Ok(Caller::Person),
                Some(_) => Err(Refusal::unauthorized(
                    "/mcp needs `Authorization: Bearer <token>`: the client token, \
                     or the token of the run an agent is part of",
                )),
            };
        };
        let Some(token) = authorization.strip_prefix("Bearer ").map(str::trim) else {
            return Err(Refusal::unauthorized(
                "the Authorization header must be `Bearer <token>`",
            ));
        };
        if let Some(client) = &self.tokens.client
            && constant_time_eq(token, client)
        {
            return Ok(Caller::Person);
        }
        match self.store.executions().check_run_token(token).await {
            Ok(RunTokenCheck::Valid(execution)) => {
                return Ok(Caller::Run(RunCaller {
                    execution_id: execution.id,
                    task_id: execution.task_id,
                    agent_id: execution.agent_id,
                    capability_id: execution.capability_id,
                }));
            }
            Ok(RunTokenCheck::Ended(execution)) => {
                return Err(Refusal::unauthorized(format!(
                    "the token of execution {} no longer works: that attempt of the run is \
                     over (the execution is {})",
                    execution.id,
                    status_name(execution.status)
                )));
            }
            Ok(RunTokenCheck::Invalid) => {}
            Err(err) => return Err(Refusal::store(err)),
        }
        if let Some(worker) = &self.tokens.worker
            && constant_time_eq(token, worker)
        {
            return Err(Refusal::unauthorized(
                "the worker token does not open /mcp: use the client token, or a run's token",
            ));
        }
        Err(Refusal::unauthorized("the token is wrong"))
    }
}

/// A refused request: its status and a sentence for whoever reads it.
#[derive(Debug)]
pub struct Refusal {
    status: StatusCode,
    message: String,
}

impl Refusal {
    fn unauthorized(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            message: message.into(),
        }
    }

    fn store(err: StoreError) -> Self {
        tracing::error!(error = %err, "checking an MCP token");
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "the token could not be checked; try again".into(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = (self.status, format!("{}\n", self.message)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"agent-monitor\""),
            );
        }
        response
    }
}

/// Middleware in front of `/mcp`: finds the [`Caller`] and puts it in the
/// request's extensions (where the tools find it), or refuses the request.
pub async fn require(State(auth): State<McpAuth>, mut request: Request, next: Next) -> Response {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|value| value.to_str().unwrap_or("\u{fffd}"))
        .map(str::to_owned);
    match auth.caller(authorization.as_deref()).await {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(refusal) => refusal.into_response(),
    }
}
