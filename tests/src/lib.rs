//! Test support: database backends and server harness.

pub mod api;
pub mod db;
pub mod fake_worker;
pub mod http;
pub mod mcp;
pub mod pki;
pub mod proxy;
pub mod server;
pub mod terminal;
pub mod worker;
