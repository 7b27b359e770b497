//! Test support: database backends and server harness.
