//! The execution state machine: which transitions exist, and applying one as
//! a single transaction step that also writes the audit event and makes the
//! task follow its run. Services, the dispatcher, the reaper and the tests
//! all go through [`transition`]; nothing else changes `executions.status`.
//!
//! ```text
//! queued ──► running ──► succeeded | failed | timed_out
//!   │           │  └──► queued            (failed / timed out / lost, retries left)
//!   │           └──► cancelling ──► cancelled | succeeded | failed | timed_out
//!   ├──► cancelled
//!   └──► failed                          (it can never start: its approval no
//!                                         longer covers the task's environment)
//! ```
//! A run that ends on its own while a cancel is on its way is recorded as it
//! really ended.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter,
};
use serde_json::{Value, json};
use uuid::Uuid;

use std::collections::HashMap;

use super::{Actor, StoreError, StoreResult, WriteTxn, columns::InputContext, tasks};
use crate::entity::{
    enums::{ExecutionStatus, TaskStatus},
    executions, task_events, tasks as task_rows,
};

/// Whether no further transition leaves `status`.
pub fn is_terminal(status: ExecutionStatus) -> bool {
    matches!(
        status,
        ExecutionStatus::Succeeded
            | ExecutionStatus::Failed
            | ExecutionStatus::Cancelled
            | ExecutionStatus::TimedOut
    )
}

/// Whether the state machine has the edge `from → to`.
pub fn is_allowed(from: ExecutionStatus, to: ExecutionStatus) -> bool {
    use ExecutionStatus::*;
    matches!(
        (from, to),
        (Queued, Running | Cancelled | Failed)
            | (Running, Succeeded | Failed | TimedOut | Cancelling | Queued)
            | (Cancelling, Cancelled | Succeeded | Failed | TimedOut)
    )
}

/// The stored name of a status (`timed_out`), for events and messages.
pub fn status_name(status: ExecutionStatus) -> &'static str {
    match status {
        ExecutionStatus::Queued => "queued",
        ExecutionStatus::Running => "running",
        ExecutionStatus::Cancelling => "cancelling",
        ExecutionStatus::Succeeded => "succeeded",
        ExecutionStatus::Failed => "failed",
        ExecutionStatus::Cancelled => "cancelled",
        ExecutionStatus::TimedOut => "timed_out",
    }
}

/// The task status a run's new status implies, if any.
fn task_follows(status: ExecutionStatus) -> Option<TaskStatus> {
    match status {
        ExecutionStatus::Running => Some(TaskStatus::InProgress),
        ExecutionStatus::Succeeded => Some(TaskStatus::Done),
        _ => None,
    }
}

/// Moves `execution` to `to` in `txn`: refuses an edge the machine lacks
/// (FAILED_PRECONDITION), applies `change` to the row, records
/// `execution_<to>` with `details`, and moves the task along.
pub async fn transition(
    txn: &mut WriteTxn,
    execution: executions::Model,
    to: ExecutionStatus,
    actor: Actor,
    details: Value,
    change: impl FnOnce(&mut executions::ActiveModel),
) -> StoreResult<executions::Model> {
    let from = execution.status;
    if !is_allowed(from, to) {
        return Err(StoreError::FailedPrecondition(format!(
            "execution {} is {}; it cannot become {}",
            execution.id,
            status_name(from),
            status_name(to)
        )));
    }
    let mut active = execution.into_active_model();
    active.status = Set(to);
    if is_terminal(to) {
        active.ended_at = Set(Some(Utc::now().into()));
    }
    change(&mut active);
    let updated = active.update(&**txn).await?;

    let mut payload = json!({
        "execution_id": updated.id,
        "from": status_name(from),
        "to": status_name(to),
        "retry_count": updated.retry_count,
    });
    if let (Value::Object(payload), Value::Object(details)) = (&mut payload, details) {
        payload.extend(details);
    }
    txn.record_event(
        updated.task_id,
        actor,
        &format!("execution_{}", status_name(to)),
        payload,
    )
    .await?;

    if let Some(task_status) = task_follows(to) {
        tasks::follow_run(txn, updated.task_id, task_status, updated.id).await?;
    }
    txn.execution_changed(updated.clone());
    Ok(updated)
}

/// The secret that signs attempt tokens, shared by every server over one
/// database (it lives in the database, see `worker_config::attempt_key`).
///
/// A worker quotes its run's attempt token in every report. The token was a
/// run's retry count and start time, both visible through `GetExecution`, so
/// anyone holding the worker token could forge another worker's reports; it
/// is now an HMAC of the execution id, retry count and start time under this
/// key: issued at claim, unguessable, and still derived (schema v3.0 has no
/// attempt column), so a reaped or requeued attempt gets a new one.
#[derive(Clone)]
pub struct AttemptKey(ring::hmac::Key);

impl AttemptKey {
    /// A key from its secret bytes.
    pub fn new(secret: &[u8]) -> Self {
        Self(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret))
    }

    fn attempt(execution: &executions::Model) -> Option<String> {
        execution.started_at.map(|started| {
            format!(
                "{}.{}.{}",
                execution.id,
                execution.retry_count,
                started.timestamp_micros()
            )
        })
    }

    /// The token of the current attempt of a running (or cancelling)
    /// execution: every report a worker makes about the run quotes it, and a
    /// report with another token is refused.
    pub fn token(&self, execution: &executions::Model) -> Option<String> {
        use base64::Engine;
        let attempt = Self::attempt(execution)?;
        let tag = ring::hmac::sign(&self.0, attempt.as_bytes());
        Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// Whether `token` is the current attempt's, compared in constant time.
    pub fn verify(&self, execution: &executions::Model, token: &str) -> bool {
        use base64::Engine;
        let (Some(attempt), Ok(tag)) = (
            Self::attempt(execution),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token),
        ) else {
            return false;
        };
        ring::hmac::verify(&self.0, attempt.as_bytes(), &tag).is_ok()
    }
}

/// Event recording an approval.
pub const APPROVED_EVENT: &str = "execution_approved";

/// The ids among `executions` that carry an approval event.
///
/// Approval lives in the audit trail (schema v3.0 has no approval column):
/// the `execution_approved` event is both the record of who approved and
/// the gate the claim checks.
pub async fn approved_among<C: ConnectionTrait>(
    conn: &C,
    executions: &[&executions::Model],
) -> StoreResult<HashMap<Uuid, Value>> {
    if executions.is_empty() {
        return Ok(HashMap::new());
    }
    let task_ids: Vec<Uuid> = executions.iter().map(|e| e.task_id).collect();
    let approvals = task_events::Entity::find()
        .filter(task_events::Column::TaskId.is_in(task_ids))
        .filter(task_events::Column::EventType.eq(APPROVED_EVENT))
        .all(conn)
        .await?;
    Ok(executions
        .iter()
        .filter_map(|e| {
            let id = e.id.to_string();
            approvals
                .iter()
                .find(|event| {
                    event.payload.get("execution_id").and_then(Value::as_str) == Some(&id)
                })
                .map(|event| (e.id, event.payload.clone()))
        })
        .collect())
}

/// What an approval covers of the task besides the run itself: where it
/// runs and the variables it sets. Both are read from the task when the run
/// is claimed, so an approval records them, and a run whose task changed
/// them after the approval does not start (`LD_PRELOAD` added to an approved
/// destructive run would otherwise run with the approval's blessing).
pub fn approved_environment(task: &task_rows::Model) -> Value {
    let context = InputContext::from_json(&task.input_context);
    json!({ "working_dir": context.working_dir, "env_overrides": context.env_overrides })
}

/// Whether an approval (its event's payload) still covers `task`: its
/// environment is the one approved. Approvals recorded before environments
/// were recorded cover any.
pub fn approval_covers(approval: &Value, task: &task_rows::Model) -> bool {
    approval
        .get("environment")
        .is_none_or(|approved| *approved == approved_environment(task))
}

#[cfg(test)]
mod tests {
    use sea_orm::Iterable;

    use super::*;

    #[test]
    fn terminal_states_have_no_way_out() {
        for from in ExecutionStatus::iter().filter(|s| is_terminal(*s)) {
            for to in ExecutionStatus::iter() {
                assert!(!is_allowed(from, to), "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn the_documented_edges() {
        use ExecutionStatus::*;
        assert!(is_allowed(Queued, Running));
        assert!(is_allowed(Queued, Cancelled));
        assert!(!is_allowed(Queued, Succeeded), "a run must start first");
        assert!(
            !is_allowed(Queued, Cancelling),
            "a queued run is cancelled at once"
        );
        assert!(is_allowed(Running, Cancelling));
        assert!(is_allowed(Running, Queued), "retry or reap");
        assert!(
            !is_allowed(Running, Cancelled),
            "cancel goes through cancelling"
        );
        assert!(is_allowed(Cancelling, Cancelled));
        assert!(
            !is_allowed(Cancelling, Queued),
            "a cancelled run is not retried"
        );
    }
}
