//! Execution logs stored in PostgreSQL (`execution_log_chunks`), so that
//! every server over the database reads every log, live, byte for byte,
//! and a log outlives the server that received it; and the news of each
//! followed log's size, from this server's appends and (through
//! [`super::cluster`]) from the others'.
//!
//! A batch of chunks' insert and the `NOTIFY` of their logs' new sizes
//! are one statement, one round trip, committed together.

use std::{
    collections::HashMap,
    fmt::Write as _,
    sync::{Arc, Mutex},
};

use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};
use tokio::sync::watch;
use uuid::Uuid;

use super::{LogChunks, StoreResult, cluster};

/// Size and line count of a stored log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogSize {
    /// Bytes stored.
    pub bytes: u64,
    /// Newline characters stored.
    pub lines: u64,
}

/// A chunk to store.
#[derive(Debug)]
pub struct NewChunk {
    /// Whose log.
    pub execution_id: Uuid,
    /// Where in the log it starts (the log's stored end, or the end of the
    /// batch's previous chunk of the same log).
    pub offset: u64,
    /// The bytes.
    pub data: Vec<u8>,
    /// Newlines in `data`.
    pub lines: u64,
    /// The log's size once it is stored.
    pub size: LogSize,
}

/// Largest chunk read back at once: a row holds at most what a worker sent
/// in one message (64 KiB by default).
const READ_ROWS: u64 = 64;

impl LogChunks<'_> {
    /// The size of a stored log; `None` when nothing is stored.
    pub async fn size(&self, execution_id: Uuid) -> StoreResult<Option<(u64, u64)>> {
        let row = self
            .0
            .db()
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                // The end from the last chunk alone (an index walk
                // backwards); the line count sums a column kept in the row.
                "SELECT (SELECT byte_offset + octet_length(data) FROM execution_log_chunks
                         WHERE execution_id = $1 ORDER BY byte_offset DESC LIMIT 1)::bigint AS bytes,
                        (SELECT sum(line_count) FROM execution_log_chunks
                         WHERE execution_id = $1)::bigint AS lines",
                [execution_id.into()],
            ))
            .await?;
        let Some(row) = row else { return Ok(None) };
        let bytes: Option<i64> = row.try_get("", "bytes")?;
        let lines: Option<i64> = row.try_get("", "lines")?;
        Ok(bytes.map(|bytes| (bytes as u64, lines.unwrap_or(0) as u64)))
    }

    /// Stores `chunks` (each cut by the caller to what is not stored yet,
    /// in order within each log) and tells the other servers each log's new
    /// size, in one statement: one round trip, committed together.
    ///
    /// One statement per batch, not per chunk: sqlx leaves Nagle's
    /// algorithm on, so a statement larger than a TCP segment waits out a
    /// delayed ACK (~40 ms) before its tail is sent; one chunk per statement
    /// stored 1.5 MB/s per run.
    pub async fn insert_many(&self, chunks: Vec<NewChunk>) -> StoreResult<()> {
        if chunks.is_empty() {
            return Ok(());
        }
        let mut logs: Vec<(Uuid, u64, u64)> = Vec::new();
        for chunk in &chunks {
            let (bytes, lines) = (chunk.size.bytes, chunk.size.lines);
            match logs.iter_mut().find(|(id, ..)| *id == chunk.execution_id) {
                Some(known) if known.1 < bytes => *known = (chunk.execution_id, bytes, lines),
                Some(_) => {}
                None => logs.push((chunk.execution_id, bytes, lines)),
            }
        }
        let news = cluster::Changes {
            logs,
            ..Default::default()
        }
        .payloads(self.0.cluster().server_id);
        // A run deleted meanwhile (its task was) takes its chunks with it,
        // not the batch, which holds other runs' chunks too.
        let mut sql = String::from(
            "WITH stored AS (
                 INSERT INTO execution_log_chunks (execution_id, byte_offset, data, line_count)
                 SELECT chunk.* FROM (VALUES ",
        );
        let mut values: Vec<Value> = Vec::with_capacity(chunks.len() * 4 + news.len() + 1);
        for (i, chunk) in chunks.into_iter().enumerate() {
            let at = i * 4;
            if i > 0 {
                sql.push_str(", ");
            }
            let _ = write!(sql, "(${}, ${}, ${}, ${})", at + 1, at + 2, at + 3, at + 4);
            values.push(chunk.execution_id.into());
            values.push((chunk.offset as i64).into());
            values.push(Value::Bytes(Some(chunk.data)));
            values.push(i32::try_from(chunk.lines).unwrap_or(i32::MAX).into());
        }
        let channel = values.len() + 1;
        values.push(cluster::CHANNEL.into());
        let _ = write!(
            sql,
            ") AS chunk (execution_id, byte_offset, data, line_count)
                 WHERE EXISTS (SELECT 1 FROM executions WHERE id = chunk.execution_id)
             )
             SELECT pg_notify(${channel}, payload) FROM (VALUES "
        );
        for (i, payload) in news.into_iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            values.push(payload.into());
            let _ = write!(sql, "(${})", values.len());
        }
        sql.push_str(") AS news (payload)");
        self.0
            .db()
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                sql,
                values,
            ))
            .await?;
        Ok(())
    }

    /// Up to `max` stored bytes from `offset` (empty when there are none).
    pub async fn read(&self, execution_id: Uuid, offset: u64, max: usize) -> StoreResult<Vec<u8>> {
        let rows = self
            .0
            .db()
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                // From the chunk holding `offset` on, found by the primary
                // key alone: a condition on the chunk's end would read
                // every earlier chunk of the log (a follower of a growing
                // log read it all again at each step: 1 MB/s at 64 MiB).
                "SELECT byte_offset, data FROM execution_log_chunks
                 WHERE execution_id = $1
                   AND byte_offset >= coalesce((SELECT max(byte_offset) FROM execution_log_chunks
                                                WHERE execution_id = $1 AND byte_offset <= $2), 0)
                   AND byte_offset < $3
                 ORDER BY byte_offset LIMIT $4",
                [
                    execution_id.into(),
                    (offset as i64).into(),
                    (offset.saturating_add(max as u64).min(i64::MAX as u64) as i64).into(),
                    (READ_ROWS as i64).into(),
                ],
            ))
            .await?;
        let mut out = Vec::with_capacity(max.min(1 << 20));
        let mut at = offset;
        for row in rows {
            let start: i64 = row.try_get("", "byte_offset")?;
            let data: Vec<u8> = row.try_get("", "data")?;
            let start = start as u64;
            if start > at {
                break; // A gap cannot be stored; stop rather than skip.
            }
            let skip = (at - start) as usize;
            if skip >= data.len() {
                continue; // Ends before `offset` (the log ends there).
            }
            let take = (data.len() - skip).min(max - out.len());
            out.extend_from_slice(&data[skip..skip + take]);
            at += take as u64;
            if out.len() == max {
                break;
            }
        }
        Ok(out)
    }
}

/// News of the size of followed logs.
#[derive(Clone, Default)]
pub struct LogSizeHub {
    followed: Arc<Mutex<HashMap<Uuid, watch::Sender<LogSize>>>>,
}

impl LogSizeHub {
    /// The log's size as it grows; `current` seeds it when nobody follows
    /// it yet (read the size after subscribing, so no growth is missed).
    pub fn follow(&self, id: Uuid, current: LogSize) -> watch::Receiver<LogSize> {
        let mut followed = self.followed.lock().unwrap_or_else(|p| p.into_inner());
        followed
            .entry(id)
            .or_insert_with(|| watch::Sender::new(current))
            .subscribe()
    }

    /// The log grew to `size` (here or on another server).
    pub fn grown(&self, id: Uuid, size: LogSize) {
        let mut followed = self.followed.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(sender) = followed.get(&id) {
            sender.send_if_modified(|known| {
                let grew = size.bytes > known.bytes;
                if grew {
                    *known = size;
                }
                grew
            });
            if sender.receiver_count() == 0 {
                followed.remove(&id);
            }
        }
    }

    /// What another server said the log grew to.
    pub fn grown_elsewhere(&self, id: Uuid, bytes: u64, lines: u64) {
        self.grown(id, LogSize { bytes, lines });
    }

    /// The logs someone follows here.
    pub fn followed(&self) -> Vec<Uuid> {
        self.followed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect()
    }
}
