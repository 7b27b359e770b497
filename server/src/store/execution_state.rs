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
///
/// The same secret derives the run tokens of the MCP server (see
/// [`AttemptKey::run_token`]) under a key of their own, so neither kind of
/// token can stand for the other.
#[derive(Clone)]
pub struct AttemptKey {
    attempts: ring::hmac::Key,
    runs: ring::hmac::Key,
}

/// What the run-token key is derived from: `HMAC(secret, RUN_TOKEN_LABEL)`.
const RUN_TOKEN_LABEL: &[u8] = b"amon/mcp-run-token/v1";

/// How a run token starts: it says what it is to a person or a secret
/// scanner who finds one, and tells it from the client token at a glance.
pub const RUN_TOKEN_PREFIX: &str = "amon_run_";

impl AttemptKey {
    /// A key from its secret bytes.
    pub fn new(secret: &[u8]) -> Self {
        let attempts = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        let derived = ring::hmac::sign(&attempts, RUN_TOKEN_LABEL);
        Self {
            runs: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, derived.as_ref()),
            attempts,
        }
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
        let tag = ring::hmac::sign(&self.attempts, attempt.as_bytes());
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
        ring::hmac::verify(&self.attempts, attempt.as_bytes(), &tag).is_ok()
    }

    /// The MCP token of the current attempt of a running execution:
    /// `amon_run_<execution id, 32 hex digits>_<HMAC of the attempt>`. It
    /// names its execution so the server can find the run to check it
    /// against; it is derived, never stored, and a new attempt (retry,
    /// reaped and claimed again) gets a new one.
    pub fn run_token(&self, execution: &executions::Model) -> Option<String> {
        use base64::Engine;
        let attempt = Self::attempt(execution)?;
        let tag = ring::hmac::sign(&self.runs, attempt.as_bytes());
        Some(format!(
            "{RUN_TOKEN_PREFIX}{}_{}",
            execution.id.simple(),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref())
        ))
    }

    /// The execution a run token names, if `token` has a run token's shape.
    pub fn run_token_execution(token: &str) -> Option<Uuid> {
        let rest = token.strip_prefix(RUN_TOKEN_PREFIX)?;
        let (id, _tag) = rest.split_at_checked(32)?;
        Uuid::try_parse(id).ok()
    }

    /// Whether `token` is the run token of `execution`'s current attempt,
    /// compared in constant time.
    pub fn verify_run_token(&self, execution: &executions::Model, token: &str) -> bool {
        use base64::Engine;
        let tag = token
            .strip_prefix(RUN_TOKEN_PREFIX)
            .and_then(|rest| rest.split_at_checked(32))
            .and_then(|(id, rest)| (id == execution.id.simple().to_string()).then_some(rest))
            .and_then(|rest| rest.strip_prefix('_'))
            .and_then(|tag| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(tag)
                    .ok()
            });
        match (Self::attempt(execution), tag) {
            (Some(attempt), Some(tag)) => {
                ring::hmac::verify(&self.runs, attempt.as_bytes(), &tag).is_ok()
            }
            _ => false,
        }
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

    fn running(id: u128, retry_count: i32, started_micros: i64) -> executions::Model {
        executions::Model {
            id: Uuid::from_u128(id),
            task_id: Uuid::from_u128(1),
            agent_id: Uuid::from_u128(2),
            capability_id: Uuid::from_u128(3),
            requested_by: Uuid::from_u128(1),
            status: ExecutionStatus::Running,
            mode: crate::entity::enums::InteractionMode::Prompt,
            args: json!({}),
            prompt: None,
            pid: None,
            session_ref: None,
            tmux_session_name: None,
            parent_execution_id: None,
            started_at: chrono::DateTime::from_timestamp_micros(started_micros).map(Into::into),
            ended_at: None,
            exit_code: None,
            error: None,
            worker_id: Some("w".into()),
            heartbeat_at: None,
            log_file_path: None,
            log_byte_size: 0,
            log_line_count: 0,
            log_updated_at: None,
            retry_count,
            max_retries: 0,
            created_at: chrono::DateTime::from_timestamp_micros(0).unwrap().into(),
        }
    }

    #[test]
    fn run_tokens_name_one_attempt_of_one_run() {
        let key = AttemptKey::new(b"0123456789abcdef0123456789abcdef");
        let run = running(7, 0, 1_000_000);
        let token = key
            .run_token(&run)
            .expect("a running execution has a token");
        assert!(token.starts_with(RUN_TOKEN_PREFIX), "{token}");
        assert_eq!(AttemptKey::run_token_execution(&token), Some(run.id));
        assert!(key.verify_run_token(&run, &token));
        // Not the attempt token, and neither stands for the other.
        let attempt = key.token(&run).unwrap();
        assert!(!key.verify_run_token(&run, &attempt));
        assert!(!key.verify(&run, &token));
        // Another run, another attempt of this run, another key: refused.
        assert!(!key.verify_run_token(&running(8, 0, 1_000_000), &token));
        assert!(!key.verify_run_token(&running(7, 1, 1_000_000), &token));
        assert!(!key.verify_run_token(&running(7, 0, 2_000_000), &token));
        let other = AttemptKey::new(b"another secret of thirty-two b!!");
        assert!(!other.verify_run_token(&run, &token));
        // A token of run 8 edited to name run 7 does not verify either.
        let forged = key.run_token(&running(8, 0, 1_000_000)).unwrap().replace(
            &Uuid::from_u128(8).simple().to_string(),
            &run.id.simple().to_string(),
        );
        assert!(!key.verify_run_token(&run, &forged));
        assert!(!key.verify_run_token(&run, "amon_run_short"));
        assert_eq!(AttemptKey::run_token_execution("Bearer x"), None);
        // A queued execution (never started) has none.
        let mut queued = run.clone();
        queued.started_at = None;
        assert!(key.run_token(&queued).is_none());
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
