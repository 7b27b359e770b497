//! Agent Monitor server: the task board, the execution queue and the hub that
//! remote workers connect to, served over gRPC.
//!
//! - [`auth`]: worker and client bearer tokens.
//! - [`config`]: command line and environment.
//! - [`db`]: connecting to SQLite or PostgreSQL, migrations, write transactions.
//! - [`entity`]: sea-orm entities, one per table of schema v3.0.
//! - [`store`]: every rule over the database, as transactions (one place per rule).
//! - [`grpc`]: the `agentmonitor.v1` services, health and reflection.
//! - [`http`]: the one port: the HTTP router the gRPC services join, the
//!   accept loop (HTTP/1.1 and HTTP/2, TLS).
//! - [`dispatch`]: connected workers, the dispatcher and the stale reaper.
//! - [`mcp`]: the Model Context Protocol server at `/mcp`: tools over the
//!   store for AI agents' runs (per-run tokens) and people's MCP clients.
//! - [`logs`]: execution output files and live news of their size.
//! - [`metrics`]: what this process did, for Prometheus at `/metrics`.
//! - [`app`]: state shared by the services; binding and serving.

pub mod app;
pub mod auth;
pub mod config;
pub mod db;
pub mod dispatch;
pub mod entity;
pub mod grpc;
pub mod http;
pub mod logs;
pub mod mcp;
pub mod metrics;
pub mod store;
