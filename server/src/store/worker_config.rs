//! Runtime tuning shared by all workers, kept in `worker_config` (one row
//! per key, JSON values) and changeable without a restart.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::Utc;
use sea_orm::{ActiveValue::Set, DatabaseConnection, EntityTrait, sea_query::OnConflict};
use serde_json::{Value, json};

use super::{StoreError, StoreResult, WorkerConfig, execution_state::AttemptKey};
use crate::entity::worker_config;

/// The tuning values in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerSettings {
    /// A run whose worker is silent this long is reaped.
    pub stale_window: Duration,
    /// How often workers heartbeat.
    pub heartbeat_interval: Duration,
    /// SIGTERM → SIGKILL delay when stopping a run.
    pub cancel_grace: Duration,
    /// Largest log chunk a worker sends.
    pub log_chunk_bytes: u32,
}

impl Default for WorkerSettings {
    /// The data model's values: heartbeats every 30 s, reaped after 2 min.
    fn default() -> Self {
        Self {
            stale_window: Duration::from_secs(120),
            heartbeat_interval: Duration::from_secs(30),
            cancel_grace: Duration::from_secs(10),
            log_chunk_bytes: 64 * 1024,
        }
    }
}

const STALE_WINDOW_MS: &str = "stale_window_ms";
const HEARTBEAT_INTERVAL_MS: &str = "heartbeat_interval_ms";
const CANCEL_GRACE_MS: &str = "cancel_grace_ms";
const LOG_CHUNK_BYTES: &str = "log_chunk_bytes";

/// The secret attempt tokens are signed with (see `AttemptKey`). It lives
/// beside the tuning because that is the table every server over one
/// database shares; `load` ignores it and no RPC returns it.
const ATTEMPT_KEY: &str = "attempt_token_key";

/// The attempt key stored in `db`, created on first use. Concurrent first
/// starts of several servers agree: the first insert wins and everyone reads
/// it back.
pub(super) async fn attempt_key(db: &DatabaseConnection) -> StoreResult<AttemptKey> {
    let mut secret = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret)
        .map_err(|_| StoreError::Internal("no randomness for the attempt key".into()))?;
    worker_config::Entity::insert(worker_config::ActiveModel {
        key: Set(ATTEMPT_KEY.to_owned()),
        value: Set(json!(STANDARD.encode(secret))),
        updated_at: Set(Utc::now().into()),
    })
    .on_conflict(
        OnConflict::column(worker_config::Column::Key)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    let stored = worker_config::Entity::find_by_id(ATTEMPT_KEY)
        .one(db)
        .await?
        .and_then(|row| row.value.as_str().and_then(|v| STANDARD.decode(v).ok()))
        .filter(|bytes| bytes.len() >= 16)
        .ok_or_else(|| {
            StoreError::Internal(format!("worker_config.{ATTEMPT_KEY} is unreadable"))
        })?;
    Ok(AttemptKey::new(&stored))
}

/// Smallest and largest accepted values.
const MIN_INTERVAL: Duration = Duration::from_millis(100);
const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);
const MIN_CHUNK: u32 = 1024;
const MAX_CHUNK: u32 = 4 * 1024 * 1024;

/// A change to some of the settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct SettingsPatch {
    /// New stale window.
    pub stale_window: Option<Duration>,
    /// New heartbeat interval.
    pub heartbeat_interval: Option<Duration>,
    /// New cancel grace.
    pub cancel_grace: Option<Duration>,
    /// New chunk size.
    pub log_chunk_bytes: Option<u32>,
}

fn check_interval(field: &str, value: Duration) -> StoreResult<()> {
    if (MIN_INTERVAL..=MAX_INTERVAL).contains(&value) {
        Ok(())
    } else {
        Err(StoreError::invalid(
            field,
            format!("must be between {MIN_INTERVAL:?} and {MAX_INTERVAL:?}"),
        ))
    }
}

impl WorkerConfig<'_> {
    /// The settings in force (stored values over the defaults).
    pub async fn load(&self) -> StoreResult<WorkerSettings> {
        let rows = worker_config::Entity::find().all(self.0.db()).await?;
        let mut settings = WorkerSettings::default();
        for row in rows {
            let millis = row.value.as_u64().map(Duration::from_millis);
            match (row.key.as_str(), millis) {
                (STALE_WINDOW_MS, Some(v)) => settings.stale_window = v,
                (HEARTBEAT_INTERVAL_MS, Some(v)) => settings.heartbeat_interval = v,
                (CANCEL_GRACE_MS, Some(v)) => settings.cancel_grace = v,
                (LOG_CHUNK_BYTES, _) => {
                    if let Some(v) = row.value.as_u64() {
                        settings.log_chunk_bytes = v.min(u64::from(MAX_CHUNK)) as u32;
                    }
                }
                _ => {} // unknown keys belong to newer servers; keep them untouched
            }
        }
        Ok(settings)
    }

    /// Validates and stores a change; returns the settings in force after it.
    pub async fn update(&self, patch: SettingsPatch) -> StoreResult<WorkerSettings> {
        let mut rows: Vec<(&str, Value)> = Vec::new();
        if let Some(v) = patch.stale_window {
            check_interval("config.stale_window", v)?;
            rows.push((STALE_WINDOW_MS, json!(v.as_millis() as u64)));
        }
        if let Some(v) = patch.heartbeat_interval {
            check_interval("config.heartbeat_interval", v)?;
            rows.push((HEARTBEAT_INTERVAL_MS, json!(v.as_millis() as u64)));
        }
        if let Some(v) = patch.cancel_grace {
            if v > MAX_INTERVAL {
                return Err(StoreError::invalid("config.cancel_grace", "is too long"));
            }
            rows.push((CANCEL_GRACE_MS, json!(v.as_millis() as u64)));
        }
        if let Some(v) = patch.log_chunk_bytes {
            if !(MIN_CHUNK..=MAX_CHUNK).contains(&v) {
                return Err(StoreError::invalid(
                    "config.log_chunk_bytes",
                    format!("must be between {MIN_CHUNK} and {MAX_CHUNK}"),
                ));
            }
            rows.push((LOG_CHUNK_BYTES, json!(v)));
        }
        let current = self.load().await?;
        let stale_window = patch.stale_window.unwrap_or(current.stale_window);
        let heartbeat_interval = patch
            .heartbeat_interval
            .unwrap_or(current.heartbeat_interval);
        if heartbeat_interval >= stale_window {
            // Healthy runs would be reaped between two heartbeats.
            return Err(StoreError::invalid(
                "config.stale_window",
                format!(
                    "{stale_window:?} must be longer than the heartbeat interval ({heartbeat_interval:?})"
                ),
            ));
        }
        let mut txn = self.0.write().await?;
        txn.config_changed();
        for (key, value) in rows {
            worker_config::Entity::insert(worker_config::ActiveModel {
                key: Set(key.to_owned()),
                value: Set(value),
                updated_at: Set(Utc::now().into()),
            })
            .on_conflict(
                OnConflict::column(worker_config::Column::Key)
                    .update_columns([
                        worker_config::Column::Value,
                        worker_config::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec(&*txn)
            .await?;
        }
        txn.commit().await?;
        self.load().await
    }
}
