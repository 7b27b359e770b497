//! The store: every rule that reads or changes the database lives here, as
//! transactions over the sea-orm entities. The gRPC handlers parse a request,
//! call one store method, and convert the result; tests call the same
//! methods, so each rule has exactly one implementation.
//!
//! One shape for every kind of record: a handle per entity, borrowed from the
//! [`Store`] (`store.tasks().move_to(…)`, `store.runs().claim(…)`), whose
//! methods are the only way in. The connection itself is private to this
//! module; updates take a patch of `Option` fields (`TaskPatch`,
//! `AgentPatch`, `CapabilityPatch`, `SettingsPatch`), which `grpc::convert`
//! builds from a request's field mask; reads are scoped to the caller's
//! workspace by [`scope`].
//!
//! Modules by concern:
//! - records: [`agents`], [`capabilities`], [`presets`], [`discovery`]
//!   (applying a worker's scan), [`tasks`] (with
//!   [`board`]: the order of cards in a column, and [`sort_order`]: its
//!   arithmetic), [`dependencies`], [`events`] (the audit trail and its hub),
//!   [`executions`] (runs as callers see them), [`runs`] (runs as workers
//!   see them: claim, reports, reaper), [`worker_config`], [`workers`];
//! - rules shared by several: [`execution_state`] (the state machine, attempt
//!   tokens, approvals), [`templates`], [`validate`], [`columns`] (the JSON
//!   columns' shapes), [`page`], [`scope`];
//! - plumbing: [`txn`] (write transactions with their audit events and
//!   wake-ups), [`batch`] (group commit of the hot writes),
//!   [`execution_hub`], [`cluster`] (what other servers over the same
//!   PostgreSQL commit, heard through `LISTEN`/`NOTIFY`), [`log_chunks`]
//!   (logs in PostgreSQL), [`error`].

pub mod agents;
pub mod batch;
pub mod board;
pub mod capabilities;
pub mod cluster;
pub mod columns;
pub mod dependencies;
pub mod discovery;
pub mod error;
pub mod events;
pub mod execution_hub;
pub mod execution_state;
pub mod executions;
pub mod log_chunks;
pub mod page;
pub mod presets;
pub mod runs;
mod scope;
pub mod sort_order;
pub mod stats;
pub mod tasks;
pub mod templates;
mod txn;
pub mod validate;
pub mod worker_config;
pub mod workers;
pub mod worktrees;

use uuid::Uuid;

pub use error::{StoreError, StoreResult};
pub use events::Actor;
pub use txn::{Store, WriteTxn};

/// The workspace every caller works in until auth maps callers to workspaces.
pub const DEFAULT_WORKSPACE_ID: Uuid = Uuid::from_u128(1);
/// The owner recorded for API callers until auth identifies them.
pub const DEFAULT_OWNER_ID: Uuid = Uuid::from_u128(1);

/// Moves each `Some` field of a patch onto the spec.
macro_rules! apply_patch {
    ($patch:expr, $spec:expr, [$($field:ident),+ $(,)?]) => {{
        let patch = $patch;
        let spec = $spec;
        $(if let Some(value) = patch.$field {
            spec.$field = value;
        })+
    }};
}
use apply_patch;

/// Declares the handle of one kind of record and the [`Store`] method that
/// lends it: `tasks => Tasks` gives `store.tasks() -> Tasks<'_>`.
macro_rules! handles {
    ($($method:ident => $handle:ident: $doc:literal;)+) => {
        $(
            #[doc = $doc]
            #[derive(Clone, Copy)]
            pub struct $handle<'a>(&'a Store);
        )+
        impl Store {
            $(
                #[doc = $doc]
                pub fn $method(&self) -> $handle<'_> {
                    $handle(self)
                }
            )+
        }
    };
}

handles! {
    agents => Agents: "Agents: registry, rules, presets.";
    capabilities => Capabilities: "Capabilities of agents.";
    tasks => Tasks: "Tasks and the board.";
    dependencies => Dependencies: "The task dependency graph.";
    events => Events: "The audit trail (`task_events`).";
    executions => Executions: "Executions as callers see them: queue, cancel, retry, approve, continue.";
    runs => Runs: "Executions as workers see them: claims, reports, heartbeats, the reaper.";
    worker_config => WorkerConfig: "Runtime tuning shared by all workers.";
    workers => Workers: "Workers as last seen through their heartbeats.";
    log_chunks => LogChunks: "Execution logs stored in PostgreSQL (several servers over one database).";
    discovery => Discovery: "Applying what a worker's discovery scan proposes.";
    worktrees => Worktrees: "What runs changed in their tasks' git worktrees.";
}
