//! A scripted fake `WorkerService` and a handle on the real `amon-worker`
//! binary. The test plays the server: it accepts each `Connect` stream,
//! reads what the worker sends and answers what it wants.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use amon_proto::v1::worker_service_server::{WorkerService, WorkerServiceServer};
use amon_proto::v1::{
    Assign, ConnectRequest, ConnectResponse, GetWorkerConfigRequest, GetWorkerConfigResponse,
    InteractionMode, ListWorkersRequest, ListWorkersResponse, LogAck, LogChunk, Register,
    Registered, ResumedExecution, RunFinished, RunStarted, SetWorkerConfigRequest,
    SetWorkerConfigResponse, WorkerConfig, connect_request::Message as Up,
    connect_response::Message as Down,
};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::{TcpListenerStream, UnboundedReceiverStream};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};

/// Longest wait for any one message from the worker.
pub const WAIT: Duration = Duration::from_secs(10);

/// The fake server: every `Connect` becomes a [`Conn`] for the test.
pub struct FakeServer {
    pub addr: SocketAddr,
    conns: mpsc::UnboundedReceiver<Conn>,
    _stop: oneshot::Sender<()>,
}

impl FakeServer {
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap()).await
    }

    /// Listens on `addr` (port 0: any free port).
    pub async fn start_on(addr: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (conns_tx, conns) = mpsc::unbounded_channel();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(WorkerServiceServer::new(Fake { conns: conns_tx }))
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            addr,
            conns,
            _stop: stop,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next stream the worker opens.
    pub async fn accept(&mut self) -> Conn {
        tokio::time::timeout(WAIT, self.conns.recv())
            .await
            .expect("the worker did not connect in time")
            .expect("server gone")
    }
}

struct Fake {
    conns: mpsc::UnboundedSender<Conn>,
}

#[tonic::async_trait]
impl WorkerService for Fake {
    type ConnectStream = UnboundedReceiverStream<Result<ConnectResponse, Status>>;

    async fn connect(
        &self,
        request: Request<Streaming<ConnectRequest>>,
    ) -> Result<Response<Self::ConnectStream>, Status> {
        let metadata = request.metadata().clone();
        let mut inbound = request.into_inner();
        let (from_worker_tx, from_worker) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Ok(message)) = inbound.next().await {
                if let Some(message) = message.message
                    && from_worker_tx.send(message).is_err()
                {
                    break;
                }
            }
        });
        let (to_worker, to_worker_rx) = mpsc::unbounded_channel();
        let _ = self.conns.send(Conn {
            metadata,
            from_worker,
            to_worker: Some(to_worker),
        });
        Ok(Response::new(UnboundedReceiverStream::new(to_worker_rx)))
    }

    async fn list_workers(
        &self,
        _: Request<ListWorkersRequest>,
    ) -> Result<Response<ListWorkersResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn get_worker_config(
        &self,
        _: Request<GetWorkerConfigRequest>,
    ) -> Result<Response<GetWorkerConfigResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn set_worker_config(
        &self,
        _: Request<SetWorkerConfigRequest>,
    ) -> Result<Response<SetWorkerConfigResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }
}

/// One `Connect` stream, seen from the server side.
pub struct Conn {
    pub metadata: MetadataMap,
    from_worker: mpsc::UnboundedReceiver<Up>,
    to_worker: Option<mpsc::UnboundedSender<Result<ConnectResponse, Status>>>,
}

/// Everything a run reported on one stream, up to its `RunFinished`.
#[derive(Debug, Default)]
pub struct RunReport {
    pub started: Option<RunStarted>,
    pub chunks: Vec<LogChunk>,
    pub data: Vec<u8>,
    pub finished: Option<RunFinished>,
    /// Other messages seen meanwhile (heartbeats, grants, other runs...).
    pub others: Vec<Up>,
}

impl RunReport {
    pub fn finished(&self) -> &RunFinished {
        self.finished.as_ref().expect("finished")
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.data.clone()).unwrap()
    }
}

impl Conn {
    /// Next message from the worker.
    pub async fn recv(&mut self) -> Up {
        tokio::time::timeout(WAIT, self.from_worker.recv())
            .await
            .expect("no message from the worker in time")
            .expect("the worker's stream ended")
    }

    /// Next message, or `None` if nothing comes within `wait`.
    pub async fn try_recv(&mut self, wait: Duration) -> Option<Up> {
        tokio::time::timeout(wait, self.from_worker.recv())
            .await
            .ok()
            .flatten()
    }

    /// Waits for the worker's stream to end (`true`) within `wait`,
    /// returning what it sent meanwhile.
    pub async fn until_closed(&mut self, wait: Duration) -> (bool, Vec<Up>) {
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.from_worker.recv()).await {
                Ok(Some(message)) => seen.push(message),
                Ok(None) => return (true, seen),
                Err(_) => return (false, seen),
            }
        }
    }

    pub fn send(&self, message: Down) {
        self.to_worker
            .as_ref()
            .expect("stream still open")
            .send(Ok(ConnectResponse {
                message: Some(message),
            }))
            .expect("worker stream gone");
    }

    /// Ends the server's side of the stream (the worker sees it close).
    pub fn hang_up(&mut self) {
        self.to_worker = None;
    }

    /// Expects `Register`, answers `Registered` with `config` and `resumed`.
    pub async fn register(
        &mut self,
        config: WorkerConfig,
        resumed: Vec<ResumedExecution>,
    ) -> Register {
        let register = match self.recv().await {
            Up::Register(register) => register,
            other => panic!("expected Register first, got {other:?}"),
        };
        self.send(Down::Registered(Registered {
            worker_id: register.worker_id.clone(),
            config: Some(config),
            resumed,
            gone_worktree_task_ids: Vec::new(),
        }));
        register
    }

    /// Expects a `SlotGrant` (skipping heartbeats) and returns its count.
    pub async fn expect_grant(&mut self) -> i32 {
        loop {
            match self.recv().await {
                Up::SlotGrant(grant) => return grant.count,
                Up::Heartbeat(_) => {}
                other => panic!("expected SlotGrant, got {other:?}"),
            }
        }
    }

    /// Collects what run `execution_id` reports until its `RunFinished`,
    /// checking the chunks are contiguous. With `ack`, acknowledges every
    /// chunk at once.
    pub async fn collect_run(&mut self, execution_id: &str, ack: bool) -> RunReport {
        let mut report = RunReport::default();
        loop {
            match self.recv().await {
                Up::Started(s) if s.execution_id == execution_id => {
                    assert!(report.chunks.is_empty(), "Started after output");
                    report.started = Some(s);
                }
                Up::LogChunk(c) if c.execution_id == execution_id => {
                    self.note_chunk(&mut report, c, ack);
                }
                Up::Finished(f) if f.execution_id == execution_id => {
                    if ack {
                        // Recorded: the worker may forget the run.
                        self.send(Down::FinishedAck(amon_proto::v1::RunFinishedAck {
                            execution_id: f.execution_id.clone(),
                            attempt_token: f.attempt_token.clone(),
                            accepted: true,
                            error: String::new(),
                        }));
                    }
                    report.finished = Some(f);
                    return report;
                }
                other => report.others.push(other),
            }
        }
    }

    /// Collects chunks of `execution_id` until at least `bytes` bytes came.
    pub async fn collect_bytes(&mut self, execution_id: &str, bytes: usize) -> RunReport {
        let mut report = RunReport::default();
        while report.data.len() < bytes {
            match self.recv().await {
                Up::Started(s) if s.execution_id == execution_id => report.started = Some(s),
                Up::LogChunk(c) if c.execution_id == execution_id => {
                    self.note_chunk(&mut report, c, false);
                }
                Up::Finished(f) if f.execution_id == execution_id => {
                    panic!("run finished early: {f:?} after {:?}", report.text())
                }
                other => report.others.push(other),
            }
        }
        report
    }

    fn note_chunk(&self, report: &mut RunReport, chunk: LogChunk, ack: bool) {
        assert!(!chunk.data.is_empty(), "empty chunk");
        if let Some(last) = report.chunks.last() {
            assert_eq!(
                chunk.offset,
                last.offset + last.data.len() as i64,
                "chunks are not contiguous"
            );
        }
        if ack {
            self.send(Down::LogAck(LogAck {
                execution_id: chunk.execution_id.clone(),
                offset: chunk.offset + chunk.data.len() as i64,
                attempt_token: chunk.attempt_token.clone(),
            }));
        }
        report.data.extend_from_slice(&chunk.data);
        report.chunks.push(chunk);
    }
}

/// Test-friendly tuning: short grace, 30 s heartbeats unless asked.
pub fn config(cancel_grace_ms: u64) -> WorkerConfig {
    WorkerConfig {
        stale_window: None,
        heartbeat_interval: Some(prost_types::Duration {
            seconds: 30,
            nanos: 0,
        }),
        cancel_grace: Some(duration_ms(cancel_grace_ms)),
        log_chunk_bytes: 65536,
    }
}

pub fn duration_ms(ms: u64) -> prost_types::Duration {
    prost_types::Duration::try_from(Duration::from_millis(ms)).unwrap()
}

/// A template-mode assignment of `argv`.
pub fn assign(execution_id: &str, argv: &[&str]) -> Assign {
    Assign {
        execution_id: execution_id.to_string(),
        attempt_token: format!("token-{execution_id}"),
        task_id: format!("task-{execution_id}"),
        agent: None,
        mode: InteractionMode::Template as i32,
        argv: argv.iter().map(|s| s.to_string()).collect(),
        prompt: None,
        working_dir: String::new(),
        env: HashMap::new(),
        env_allowlist: Vec::new(),
        timeout: Some(duration_ms(30_000)),
        max_output_bytes: 1 << 20,
        attempt: 0,
        resume_session_ref: None,
        tmux_session_name: None,
        log_offset: 0,
        mcp_server_url: None,
        mcp_token: None,
        worktree: None,
    }
}

/// The real `amon-worker` binary, killed when dropped.
pub struct WorkerProcess {
    pub child: tokio::process::Child,
    /// Its data directory (the record of its runs' groups), its own.
    pub data_dir: tempfile::TempDir,
}

impl WorkerProcess {
    /// Starts `amon-worker --server <server> <args>` with extra `envs`.
    /// Its log goes to stderr when `AMON_TEST_WORKER_LOG` is set.
    pub fn start(server: &str, args: &[&str], envs: &[(&str, &str)]) -> Self {
        let log = std::env::var_os("AMON_TEST_WORKER_LOG").is_some();
        let data_dir = tempfile::tempdir().expect("a data directory");
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_amon-worker"))
            .arg("--server")
            .arg(server)
            .arg("--data-dir")
            .arg(data_dir.path())
            .args(args)
            .envs(envs.iter().copied())
            .env("RUST_LOG", "amon_worker=debug")
            .env_remove("AMON_WORKER_TOKEN")
            .env_remove("AMON_WORKER_ID")
            .env_remove("AMON_WORKER_NAME")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(if log { Stdio::inherit() } else { Stdio::null() })
            .kill_on_drop(true)
            .spawn()
            .expect("starting amon-worker");
        Self { child, data_dir }
    }

    pub fn pid(&self) -> i32 {
        self.child.id().expect("running") as i32
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), signal).unwrap();
    }

    /// Waits for the worker to exit.
    pub async fn wait(&mut self, wait: Duration) -> std::process::ExitStatus {
        tokio::time::timeout(wait, self.child.wait())
            .await
            .expect("the worker did not exit in time")
            .unwrap()
    }
}

/// Whether a live (non-zombie) process is still in process group `pgid`.
pub fn group_alive(pgid: i32) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            return false;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        fields.len() > 2 && fields[2] == pgid.to_string() && fields[0] != "Z"
    })
}

/// Waits (up to 3 s) for process group `pgid` to be gone.
pub async fn group_gone(pgid: i32) -> bool {
    for _ in 0..60 {
        if !group_alive(pgid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
