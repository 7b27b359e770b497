//! Execution logs, written from workers' chunks at their byte offsets, and
//! live news of each log's size for followers. Where the bytes live:
//! - on SQLite, or with `--log-store files`: one append-only file per
//!   execution under `<data dir>/logs/`;
//! - on PostgreSQL (`--log-store database`, its default): the database
//!   itself (`store::log_chunks`), so a follower on any server over it
//!   reads every log live, and a log outlives the server that received it.
//!   Why not files there: a log would live on one server's disk, readable
//!   from the others only by relaying through a server that may be gone.
//!   Chunks are stored in batches by one writer task (see [`Database`]).
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
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::{
    fs::{File, OpenOptions},
    io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt},
    sync::{Mutex as AsyncMutex, mpsc, oneshot, watch},
};
use uuid::Uuid;

use crate::store::Store;
pub use crate::store::log_chunks::LogSize;
use crate::store::log_chunks::NewChunk;

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
    /// The database did not store it (or said nothing of it).
    #[error("storing the log: {0}")]
    Database(String),
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
                    "--log-store database needs PostgreSQL (SQLite has one server: its logs stay in files)",
                ));
            }
            return Ok(Self(Backend::Database(Box::new(Database::new(store)))));
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

    /// Stores `data` at `offset`, or queues it to be stored
    /// ([`Appended::stored`] tells when).
    pub async fn append(
        &self,
        execution_id: Uuid,
        offset: u64,
        data: &[u8],
    ) -> Result<Appended, AppendError> {
        match &self.0 {
            Backend::Files(files) => Ok(Appended {
                size: files.append(execution_id, offset, data).await?,
                queued: None,
            }),
            Backend::Database(db) => db.append(execution_id, offset, data).await,
        }
    }

    /// An attempt of a run starts on this server with its log at `size`
    /// (what was stored before, with the attempt's header): its first chunk
    /// and its finish need not ask the database where the log ends (two
    /// reads per run: PostgreSQL's run throughput fell from 417 to 288/s).
    pub async fn attempt_starts(&self, execution_id: Uuid, size: LogSize) {
        if let Backend::Database(db) = &self.0 {
            db.attempt_starts(execution_id, size).await;
        }
    }

    /// The stored size, once what was appended before is stored.
    pub async fn size(&self, execution_id: Uuid) -> std::io::Result<LogSize> {
        match &self.0 {
            Backend::Files(files) => files.size(execution_id).await,
            Backend::Database(db) => db.settled_size(execution_id).await,
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
///
/// Chunks are queued to one writer task, which stores whatever has queued
/// while its previous statement ran in one statement (group commit, as the
/// store's writer does for runs): a stream does not wait for its chunk's
/// insert before it reads the next message, and a fast log pays one round
/// trip per batch instead of one per chunk. Acks wait for the batch's
/// commit ([`Appended::stored`]).
#[derive(Clone)]
struct Database {
    store: Store,
    /// Each log being appended to here.
    appending: Arc<Mutex<HashMap<Uuid, Arc<Appending>>>>,
    writer: mpsc::Sender<Queued>,
}

/// Chunks queued to the writer at most (64 KiB each by default: 16 MiB).
/// Past it appends wait, the stream stops reading, and TCP pushes back on
/// the worker.
const QUEUED_CHUNKS: usize = 256;
/// A batch's bytes at most: one statement's parameters stay well inside
/// what PostgreSQL takes in one message, and a slow log cannot hold the
/// others' acks for long.
const BATCH_BYTES: usize = 8 << 20;

/// A log being appended to on this server.
#[derive(Default)]
struct Appending {
    /// The log's size once every queued chunk is stored, and the epoch it
    /// was counted in; `None`: read it from the database first. The lock
    /// keeps one log's chunks in order up to the queue.
    known: AsyncMutex<Option<(LogSize, u64)>>,
    /// Bumped when a write of this log failed: chunks queued behind it
    /// counted on it and are dropped (storing them would leave a hole), and
    /// the next append reads the size again.
    epoch: AtomicU64,
    /// Chunks queued and not yet stored or dropped.
    queued: watch::Sender<usize>,
}

impl Appending {
    /// Once no chunk of this log is queued.
    async fn settled(&self) {
        let mut queued = self.queued.subscribe();
        let _ = queued.wait_for(|n| *n == 0).await;
    }
}

/// A chunk on its way to the writer.
struct Queued {
    log: Arc<Appending>,
    epoch: u64,
    execution_id: Uuid,
    offset: u64,
    data: Vec<u8>,
    lines: u64,
    size: LogSize,
    stored: oneshot::Sender<Result<(), String>>,
}

impl Queued {
    fn answer(self, result: Result<(), String>) {
        let _ = self.stored.send(result);
        self.log.queued.send_modify(|n| *n -= 1);
    }
}

/// What an append did: the log's size with this chunk, and, when the
/// chunk is queued rather than stored, the news of its write.
#[must_use]
pub struct Appended {
    /// The log's size once this chunk is stored.
    pub size: LogSize,
    queued: Option<oneshot::Receiver<Result<(), String>>>,
}

impl Appended {
    /// Whether the bytes are stored already (files are written at once).
    pub fn is_stored(&self) -> bool {
        self.queued.is_none()
    }

    /// Once the bytes are stored: the log's size with them.
    pub async fn stored(self) -> Result<LogSize, AppendError> {
        match self.queued {
            None => Ok(self.size),
            Some(queued) => match queued.await {
                Ok(Ok(())) => Ok(self.size),
                Ok(Err(err)) => Err(AppendError::Database(err)),
                Err(_) => Err(AppendError::Database("the log writer stopped".into())),
            },
        }
    }
}

fn db_error(err: crate::store::StoreError) -> AppendError {
    AppendError::Database(err.to_string())
}

fn io_error(err: crate::store::StoreError) -> std::io::Error {
    std::io::Error::other(err.to_string())
}

impl Database {
    fn new(store: &Store) -> Self {
        let (writer, queue) = mpsc::channel(QUEUED_CHUNKS);
        tokio::spawn(write_batches(store.clone(), queue));
        Self {
            store: store.clone(),
            appending: Arc::default(),
            writer,
        }
    }

    async fn stored(&self, execution_id: Uuid) -> Result<LogSize, crate::store::StoreError> {
        Ok(self
            .store
            .log_chunks()
            .size(execution_id)
            .await?
            .map(|(bytes, lines)| LogSize { bytes, lines })
            .unwrap_or_default())
    }

    async fn append(
        &self,
        execution_id: Uuid,
        offset: u64,
        data: &[u8],
    ) -> Result<Appended, AppendError> {
        let log = self.appending(execution_id);
        let mut known = log.known.lock().await;
        let stored = match *known {
            Some((size, epoch)) if epoch == log.epoch.load(Ordering::Acquire) => size,
            // First chunk here (a new run, or a worker that moved from
            // another server), or a write failed: the database says where
            // the log ends once what was queued is settled.
            _ => {
                log.settled().await;
                let epoch = log.epoch.load(Ordering::Acquire);
                let size = self.stored(execution_id).await.map_err(db_error)?;
                *known = Some((size, epoch));
                size
            }
        };
        if offset > stored.bytes {
            return Err(AppendError::Gap {
                offset,
                stored: stored.bytes,
            });
        }
        let already = (stored.bytes - offset) as usize;
        if already >= data.len() {
            return Ok(Appended {
                size: stored,
                queued: None,
            });
        }
        let fresh = &data[already..];
        let lines = bytecount(fresh);
        let size = LogSize {
            bytes: stored.bytes + fresh.len() as u64,
            lines: stored.lines + lines,
        };
        let epoch = log.epoch.load(Ordering::Acquire);
        let (answer, queued) = oneshot::channel();
        log.queued.send_modify(|n| *n += 1);
        let chunk = Queued {
            log: log.clone(),
            epoch,
            execution_id,
            offset: stored.bytes,
            data: fresh.to_vec(),
            lines,
            size,
            stored: answer,
        };
        // Queued under the log's lock: its chunks reach the writer in order.
        if let Err(mpsc::error::SendError(chunk)) = self.writer.send(chunk).await {
            chunk.answer(Err(String::new()));
            *known = None;
            return Err(AppendError::Database("the log writer stopped".into()));
        }
        *known = Some((size, epoch));
        Ok(Appended {
            size,
            queued: Some(queued),
        })
    }

    /// The log being appended to here, made on first use.
    fn appending(&self, execution_id: Uuid) -> Arc<Appending> {
        self.appending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(execution_id)
            .or_default()
            .clone()
    }

    async fn attempt_starts(&self, execution_id: Uuid, size: LogSize) {
        let log = self.appending(execution_id);
        let mut known = log.known.lock().await;
        log.settled().await;
        *known = Some((size, log.epoch.load(Ordering::Acquire)));
    }

    /// The stored size once the chunks queued for the log are stored.
    async fn settled_size(&self, execution_id: Uuid) -> std::io::Result<LogSize> {
        let log = self
            .appending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&execution_id)
            .cloned();
        if let Some(log) = log {
            let known = log.known.lock().await;
            log.settled().await;
            if let Some((size, epoch)) = *known
                && epoch == log.epoch.load(Ordering::Acquire)
            {
                return Ok(size);
            }
        }
        self.stored(execution_id).await.map_err(io_error)
    }

    async fn follow(&self, execution_id: Uuid) -> std::io::Result<watch::Receiver<LogSize>> {
        // Subscribe, then read: growth in between is not missed.
        let sizes = self
            .store
            .log_sizes()
            .follow(execution_id, LogSize::default());
        let stored = self.stored(execution_id).await.map_err(io_error)?;
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

/// The log writer: stores what has queued, one statement per batch, until
/// every [`Database`] handle is gone.
async fn write_batches(store: Store, mut queue: mpsc::Receiver<Queued>) {
    let mut batch = Vec::new();
    while let Some(first) = queue.recv().await {
        let mut bytes = first.data.len();
        batch.push(first);
        while bytes < BATCH_BYTES {
            match queue.try_recv() {
                Ok(chunk) => {
                    bytes += chunk.data.len();
                    batch.push(chunk);
                }
                Err(_) => break,
            }
        }
        write_batch(&store, std::mem::take(&mut batch)).await;
    }
}

async fn write_batch(store: &Store, batch: Vec<Queued>) {
    // A chunk queued behind one whose write failed would leave a hole.
    let (mut batch, behind_failure): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .partition(|chunk| chunk.epoch == chunk.log.epoch.load(Ordering::Acquire));
    for chunk in behind_failure {
        chunk.answer(Err("an earlier chunk of this log was not stored".into()));
    }
    if batch.is_empty() {
        return;
    }
    let chunks = batch
        .iter_mut()
        .map(|chunk| NewChunk {
            execution_id: chunk.execution_id,
            offset: chunk.offset,
            data: std::mem::take(&mut chunk.data),
            lines: chunk.lines,
            size: chunk.size,
        })
        .collect();
    let started = std::time::Instant::now();
    let result = store.log_chunks().insert_many(chunks).await;
    crate::metrics::transaction("log_chunks", started.elapsed());
    match result {
        Ok(()) => {
            for chunk in batch {
                crate::metrics::log_bytes_written(
                    chunk.size.bytes.saturating_sub(chunk.offset) as usize
                );
                store.log_sizes().grown(chunk.execution_id, chunk.size);
                chunk.answer(Ok(()));
            }
        }
        Err(err) => {
            tracing::warn!(error = %err, chunks = batch.len(), "storing log chunks failed");
            let err = err.to_string();
            for chunk in batch {
                // Unknown whether it was stored: the size is read again.
                chunk.log.epoch.fetch_add(1, Ordering::AcqRel);
                chunk.answer(Err(err.clone()));
            }
        }
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
