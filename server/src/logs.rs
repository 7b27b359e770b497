//! Execution logs, written from workers' chunks at their byte offsets, and
//! live news of each log's size for followers. Where the bytes live:
//! - by default, one append-only file per execution under
//!   `<data dir>/logs/`;
//! - with `--logs-in-database` (PostgreSQL, for several servers over it):
//!   the database itself (`store::log_chunks`), so a follower on any server
//!   reads every log live, and a log outlives the server that received it.
//!   Why not files there: a log would live on one server's disk, readable
//!   from the others only by relaying through a server that may be gone.
//!   Not the default yet: each chunk's insert waits out a 40 ms delayed
//!   ACK (sqlx leaves Nagle's algorithm on, and a 64 KiB insert spans two
//!   segments), about 1.5 MB/s per run; several chunks per statement would
//!   pay that once per batch.
//!
//! A chunk whose offset is below the stored size is a resend after a
//! reconnect: only its new tail is written, so no byte is ever doubled. A
//! chunk past the stored size would leave a hole and is refused; the worker
//! resends from the acknowledged offset. Followers read the file up to the
//! size they were told and wait for the next size, so the switch from stored
//! to live bytes has no gap and no duplicate.

use std::{
    collections::HashMap,
    io::SeekFrom,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use tokio::{
    fs::{File, OpenOptions},
    io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt},
    sync::{Mutex as AsyncMutex, watch},
};
use uuid::Uuid;

use crate::store::Store;
pub use crate::store::log_chunks::LogSize;

/// Why a chunk was not stored.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The chunk starts past the end: bytes in between are missing.
    #[error("chunk at offset {offset} would leave a gap after {stored} stored bytes")]
    Gap {
        /// The chunk's offset.
        offset: u64,
        /// Bytes stored.
        stored: u64,
    },
    /// The file could not be written.
    #[error("writing the log: {0}")]
    Io(#[from] std::io::Error),
}

struct OpenLog {
    /// The file, once the run has printed something: a run that prints
    /// nothing gets no file (creating one per run was 9 % of the server's
    /// CPU for runs of `true`).
    file: AsyncMutex<Option<File>>,
    size: watch::Sender<LogSize>,
}

/// The logs of every execution.
#[derive(Clone)]
pub struct LogStore(Backend);

#[derive(Clone)]
enum Backend {
    Files(Files),
    Database(Box<Database>),
}

impl LogStore {
    /// Logs in `store`'s database when `in_database` (PostgreSQL only),
    /// else files under `<data_dir>/logs`.
    pub fn new(data_dir: &Path, store: &Store, in_database: bool) -> std::io::Result<Self> {
        if in_database {
            if !store.is_postgres() {
                return Err(std::io::Error::other(
                    "--logs-in-database needs PostgreSQL (SQLite has one server: its logs stay in files)",
                ));
            }
            return Ok(Self(Backend::Database(Box::new(Database {
                store: store.clone(),
                appending: Arc::default(),
            }))));
        }
        Ok(Self(Backend::Files(Files::new(data_dir)?)))
    }

    /// Where an execution's log is kept, as `executions.log_file_path`
    /// records it.
    pub fn location(&self, execution_id: Uuid) -> String {
        match &self.0 {
            Backend::Files(files) => files.path(execution_id).display().to_string(),
            Backend::Database(_) => format!("postgres:execution_log_chunks/{execution_id}"),
        }
    }

    /// Stores `data` at `offset`; returns the log's size afterwards.
    pub async fn append(
        &self,
        execution_id: Uuid,
        offset: u64,
        data: &[u8],
    ) -> Result<LogSize, AppendError> {
        match &self.0 {
            Backend::Files(files) => files.append(execution_id, offset, data).await,
            Backend::Database(db) => db.append(execution_id, offset, data).await,
        }
    }

    /// The stored size.
    pub async fn size(&self, execution_id: Uuid) -> std::io::Result<LogSize> {
        match &self.0 {
            Backend::Files(files) => files.size(execution_id).await,
            Backend::Database(db) => db.stored(execution_id).await,
        }
    }

    /// News of the log's size.
    pub async fn follow(&self, execution_id: Uuid) -> std::io::Result<watch::Receiver<LogSize>> {
        match &self.0 {
            Backend::Files(files) => files.follow(execution_id).await,
            Backend::Database(db) => db.follow(execution_id).await,
        }
    }

    /// Up to `max` stored bytes from `offset` (empty when there are none).
    pub async fn read(
        &self,
        execution_id: Uuid,
        offset: u64,
        max: usize,
    ) -> std::io::Result<Vec<u8>> {
        match &self.0 {
            Backend::Files(files) => files.read(execution_id, offset, max).await,
            Backend::Database(db) => db.read(execution_id, offset, max).await,
        }
    }

    /// Forgets what is held for an execution once its run has ended
    /// (followers keep working; the next append reopens it).
    pub fn close(&self, execution_id: Uuid) {
        match &self.0 {
            Backend::Files(files) => files.close(execution_id),
            Backend::Database(db) => db.close(execution_id),
        }
    }
}

/// Logs in the database (PostgreSQL).
#[derive(Clone)]
struct Database {
    store: Store,
    /// The size of each log being appended to here, once read; the lock
    /// keeps one stream's chunks of a log in order.
    appending: Arc<Mutex<HashMap<Uuid, KnownSize>>>,
}

/// A log's stored size as this server knows it (`None`: read it first).
type KnownSize = Arc<AsyncMutex<Option<LogSize>>>;

fn io_error(err: crate::store::StoreError) -> std::io::Error {
    std::io::Error::other(err.to_string())
}

impl Database {
    async fn stored(&self, execution_id: Uuid) -> std::io::Result<LogSize> {
        Ok(self
            .store
            .log_chunks()
            .size(execution_id)
            .await
            .map_err(io_error)?
            .map(|(bytes, lines)| LogSize { bytes, lines })
            .unwrap_or_default())
    }

    async fn append(
        &self,
        execution_id: Uuid,
        offset: u64,
        data: &[u8],
    ) -> Result<LogSize, AppendError> {
        let entry = self
            .appending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(execution_id)
            .or_default()
            .clone();
        let mut known = entry.lock().await;
        let stored = match *known {
            Some(size) => size,
            // First chunk here (a new run, or a worker that moved from
            // another server): the database says where the log ends.
            None => *known.insert(self.stored(execution_id).await?),
        };
        if offset > stored.bytes {
            return Err(AppendError::Gap {
                offset,
                stored: stored.bytes,
            });
        }
        let already = (stored.bytes - offset) as usize;
        if already >= data.len() {
            return Ok(stored);
        }
        let fresh = &data[already..];
        let fresh_lines = bytecount(fresh);
        let size = LogSize {
            bytes: stored.bytes + fresh.len() as u64,
            lines: stored.lines + fresh_lines,
        };
        if let Err(err) = self
            .store
            .log_chunks()
            .insert(execution_id, stored.bytes, fresh, fresh_lines, size)
            .await
        {
            // Unknown whether it was stored: read the size again next time.
            *known = None;
            return Err(AppendError::Io(io_error(err)));
        }
        *known = Some(size);
        crate::metrics::log_bytes_written(fresh.len());
        self.store.log_sizes().grown(execution_id, size);
        Ok(size)
    }

    async fn follow(&self, execution_id: Uuid) -> std::io::Result<watch::Receiver<LogSize>> {
        // Subscribe, then read: growth in between is not missed.
        let sizes = self
            .store
            .log_sizes()
            .follow(execution_id, LogSize::default());
        let stored = self.stored(execution_id).await?;
        self.store.log_sizes().grown(execution_id, stored);
        Ok(sizes)
    }

    async fn read(&self, execution_id: Uuid, offset: u64, max: usize) -> std::io::Result<Vec<u8>> {
        self.store
            .log_chunks()
            .read(execution_id, offset, max)
            .await
            .map_err(io_error)
    }

    fn close(&self, execution_id: Uuid) {
        self.appending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&execution_id);
    }
}

/// Logs in files (SQLite).
#[derive(Clone)]
struct Files {
    dir: PathBuf,
    open: Arc<Mutex<HashMap<Uuid, Arc<OpenLog>>>>,
}

impl Files {
    /// Logs under `<data_dir>/logs`.
    fn new(data_dir: &Path) -> std::io::Result<Self> {
        let dir = data_dir.join("logs");
        std::fs::create_dir_all(&dir)?;
        Ok(Self {
            dir,
            open: Arc::default(),
        })
    }

    /// Path of an execution's log file.
    fn path(&self, execution_id: Uuid) -> PathBuf {
        self.dir.join(format!("{execution_id}.log"))
    }

    async fn open_log(&self, execution_id: Uuid) -> std::io::Result<Arc<OpenLog>> {
        if let Some(log) = self.lookup(execution_id) {
            return Ok(log);
        }
        let path = self.path(execution_id);
        let file = match OpenOptions::new().read(true).append(true).open(&path).await {
            Ok(file) => Some(file),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(err) => return Err(err),
        };
        let bytes = match &file {
            Some(file) => file.metadata().await?.len(),
            None => 0,
        };
        let lines = if bytes == 0 {
            0
        } else {
            count_lines(&path).await?
        };
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        Ok(open
            .entry(execution_id)
            .or_insert_with(|| {
                Arc::new(OpenLog {
                    file: AsyncMutex::new(file),
                    size: watch::Sender::new(LogSize { bytes, lines }),
                })
            })
            .clone())
    }

    fn lookup(&self, execution_id: Uuid) -> Option<Arc<OpenLog>> {
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&execution_id)
            .cloned()
    }

    async fn append(
        &self,
        execution_id: Uuid,
        offset: u64,
        data: &[u8],
    ) -> Result<LogSize, AppendError> {
        let log = self.open_log(execution_id).await?;
        let mut file = log.file.lock().await;
        let stored = *log.size.borrow();
        if offset > stored.bytes {
            return Err(AppendError::Gap {
                offset,
                stored: stored.bytes,
            });
        }
        let already = (stored.bytes - offset) as usize;
        if already >= data.len() {
            return Ok(stored);
        }
        let fresh = &data[already..];
        let file = match &mut *file {
            Some(file) => file,
            None => file.insert(
                OpenOptions::new()
                    .create(true)
                    .read(true)
                    .append(true)
                    .open(self.path(execution_id))
                    .await?,
            ),
        };
        file.write_all(fresh).await?;
        file.flush().await?;
        crate::metrics::log_bytes_written(fresh.len());
        let size = LogSize {
            bytes: stored.bytes + fresh.len() as u64,
            lines: stored.lines + bytecount(fresh),
        };
        log.size.send_replace(size);
        Ok(size)
    }

    /// The stored size, opening the log if needed.
    async fn size(&self, execution_id: Uuid) -> std::io::Result<LogSize> {
        Ok(*self.open_log(execution_id).await?.size.borrow())
    }

    async fn follow(&self, execution_id: Uuid) -> std::io::Result<watch::Receiver<LogSize>> {
        Ok(self.open_log(execution_id).await?.size.subscribe())
    }

    async fn read(&self, execution_id: Uuid, offset: u64, max: usize) -> std::io::Result<Vec<u8>> {
        let mut file = match File::open(self.path(execution_id)).await {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(err),
        };
        // Past the end there is nothing to read (and seeking past the
        // largest file the file system allows fails with EINVAL).
        if offset >= file.metadata().await?.len() {
            return Ok(Vec::new());
        }
        file.seek(SeekFrom::Start(offset)).await?;
        let mut buffer = Vec::with_capacity(max.min(1 << 20));
        file.take(max as u64).read_to_end(&mut buffer).await?;
        Ok(buffer)
    }

    /// Forgets an execution's open file once its run has ended (followers
    /// holding a receiver keep working; the next append reopens it).
    fn close(&self, execution_id: Uuid) {
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&execution_id);
    }
}

fn bytecount(data: &[u8]) -> u64 {
    data.iter().filter(|b| **b == b'\n').count() as u64
}

async fn count_lines(path: &Path) -> std::io::Result<u64> {
    let mut file = File::open(path).await?;
    let mut buffer = vec![0u8; 1 << 16];
    let mut lines = 0;
    loop {
        let read = file.read(&mut buffer).await?;
        if read == 0 {
            return Ok(lines);
        }
        lines += bytecount(&buffer[..read]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resends_are_not_doubled_and_gaps_refused() {
        let dir = tempfile_dir();
        let logs = Files::new(&dir).unwrap();
        let id = Uuid::new_v4();
        assert_eq!(logs.append(id, 0, b"hello\n").await.unwrap().bytes, 6);
        // A resend overlapping what is stored only adds its new tail.
        let size = logs.append(id, 3, b"lo\nworld\n").await.unwrap();
        assert_eq!(
            size,
            LogSize {
                bytes: 12,
                lines: 2
            }
        );
        assert!(matches!(
            logs.append(id, 20, b"x").await,
            Err(AppendError::Gap {
                offset: 20,
                stored: 12
            })
        ));
        assert_eq!(logs.read(id, 0, 100).await.unwrap(), b"hello\nworld\n");
        assert_eq!(logs.read(id, 6, 3).await.unwrap(), b"wor");
        // Reopened after close, the size comes from the file.
        logs.close(id);
        assert_eq!(
            logs.size(id).await.unwrap(),
            LogSize {
                bytes: 12,
                lines: 2
            }
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("amon-logs-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
