//! Agent Monitor server: the task board, the execution queue and the hub that
//! remote workers connect to, served over gRPC.
//!
//! - [`config`]: command line and environment.
//! - [`db`]: connecting to SQLite or PostgreSQL, migrations, write transactions.
//! - [`entity`]: sea-orm entities, one per table of schema v3.0.
//! - [`grpc`]: the `agentmonitor.v1` services, health and reflection.
//! - [`app`]: state shared by the services; binding and serving.

pub mod app;
pub mod config;
pub mod db;
pub mod entity;
pub mod grpc;
