//! The store: every rule that reads or changes the database lives here, as
//! transactions over the sea-orm entities. The gRPC handlers parse a request,
//! call one store function, and convert the result; tests call the same
//! functions, so each rule has exactly one implementation.

pub mod agents;
pub mod capabilities;
pub mod dependencies;
pub mod error;
pub mod events;
pub mod execution_hub;
pub mod execution_state;
pub mod executions;
pub mod page;
pub mod presets;
pub mod runs;
pub mod sort_order;
pub mod tasks;
pub mod templates;
mod txn;
pub mod worker_config;

use uuid::Uuid;

pub use error::{StoreError, StoreResult};
pub use events::Actor;
pub use txn::{Store, WriteTxn};

/// The workspace every caller works in until auth maps callers to workspaces.
pub const DEFAULT_WORKSPACE_ID: Uuid = Uuid::from_u128(1);
/// The owner recorded for API callers until auth identifies them.
pub const DEFAULT_OWNER_ID: Uuid = Uuid::from_u128(1);
