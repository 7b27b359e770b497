//! Test support: database backends and server harness.

pub mod db;
pub mod server;
