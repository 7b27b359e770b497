//! A worker that speaks the `Connect` protocol from inside a test, so tests
//! can play the worker's part message by message (stale tokens, many
//! claimers, cut streams) without a real process.

use std::time::Duration;

use amon_proto::v1::{
    Assign, ConnectRequest, ConnectResponse, Heartbeat, LogChunk, Register, Registered,
    RunFinished, RunStarted, SlotGrant, connect_request, connect_response::Message,
    worker_service_client::WorkerServiceClient,
};
use tokio::sync::mpsc;
use tokio_stream::{StreamExt, wrappers::ReceiverStream};
use tonic::{Streaming, transport::Channel};

/// How long a test waits for the server's next message.
const RECV_TIMEOUT: Duration = Duration::from_secs(20);

/// One open `Connect` stream.
pub struct FakeWorker {
    /// The id it registered with.
    pub worker_id: String,
    outgoing: mpsc::Sender<ConnectRequest>,
    incoming: Streaming<ConnectResponse>,
    /// The server's answer to `register`.
    pub registered: Registered,
}

impl FakeWorker {
    /// Connects and registers; `running` lists runs kept from before.
    pub async fn connect(channel: Channel, register: Register) -> Result<Self, tonic::Status> {
        let (outgoing, rx) = mpsc::channel(1024);
        let worker_id = register.worker_id.clone();
        outgoing
            .send(ConnectRequest {
                message: Some(connect_request::Message::Register(register)),
            })
            .await
            .expect("queue register");
        let mut incoming = WorkerServiceClient::new(channel)
            .connect(ReceiverStream::new(rx))
            .await?
            .into_inner();
        let first = tokio::time::timeout(RECV_TIMEOUT, incoming.next())
            .await
            .map_err(|_| tonic::Status::deadline_exceeded("no registered"))?
            .ok_or_else(|| tonic::Status::unavailable("stream ended"))??;
        let Some(Message::Registered(registered)) = first.message else {
            panic!("expected registered, got {first:?}");
        };
        Ok(Self {
            worker_id,
            outgoing,
            incoming,
            registered,
        })
    }

    /// A plain registration, as one worker process makes it (each call
    /// with the same id speaks for the same process: a reconnect).
    pub fn register(worker_id: &str, slots: i32) -> Register {
        Register {
            worker_id: worker_id.into(),
            hostname: "test-host".into(),
            version: "test".into(),
            slots,
            instance_id: format!("fake-process-of-{worker_id}"),
            ..Default::default()
        }
    }

    /// Sends one message.
    pub async fn send(&self, message: connect_request::Message) {
        self.outgoing
            .send(ConnectRequest {
                message: Some(message),
            })
            .await
            .expect("stream open");
    }

    /// Grants `count` slots.
    pub async fn grant(&self, count: i32) {
        self.send(connect_request::Message::SlotGrant(SlotGrant { count }))
            .await;
    }

    /// The server's next message (fails the test after a timeout).
    pub async fn recv(&mut self) -> Message {
        self.try_recv(RECV_TIMEOUT)
            .await
            .expect("the server sent nothing in time")
    }

    /// The next message within `wait`, if any.
    pub async fn try_recv(&mut self, wait: Duration) -> Option<Message> {
        match tokio::time::timeout(wait, self.incoming.next()).await {
            Ok(Some(Ok(ConnectResponse { message: Some(m) }))) => Some(m),
            Ok(Some(Ok(_))) => None,
            Ok(Some(Err(status))) => panic!("stream failed: {status}"),
            Ok(None) | Err(_) => None,
        }
    }

    /// Reads until the stream ends (skipping messages): the error it ended
    /// with, `Ok(())` for a clean end, or `None` if it is still open after
    /// `wait`.
    pub async fn end(&mut self, wait: Duration) -> Option<Result<(), tonic::Status>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.incoming.next()).await {
                Err(_) => return None,
                Ok(None) => return Some(Ok(())),
                Ok(Some(Err(status))) => return Some(Err(status)),
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// Waits for the next assignment, skipping other messages.
    pub async fn next_assign(&mut self) -> Assign {
        loop {
            if let Message::Assign(assign) = self.recv().await {
                return assign;
            }
        }
    }

    /// Reports a run started.
    pub async fn started(&self, assign: &Assign, pid: i32) {
        self.send(connect_request::Message::Started(RunStarted {
            execution_id: assign.execution_id.clone(),
            attempt_token: assign.attempt_token.clone(),
            pid,
            tmux_session_name: None,
        }))
        .await;
    }

    /// Sends output at `offset`.
    pub async fn output(&self, assign: &Assign, offset: i64, data: &[u8]) {
        self.send(connect_request::Message::LogChunk(LogChunk {
            execution_id: assign.execution_id.clone(),
            attempt_token: assign.attempt_token.clone(),
            offset,
            data: data.to_vec(),
        }))
        .await;
    }

    /// Reports a run finished.
    pub async fn finished(
        &self,
        assign: &Assign,
        status: i32,
        exit_code: Option<i32>,
        log_byte_size: i64,
    ) {
        self.send(connect_request::Message::Finished(RunFinished {
            execution_id: assign.execution_id.clone(),
            attempt_token: assign.attempt_token.clone(),
            status,
            exit_code,
            error: None,
            log_byte_size,
            worktree: None,
        }))
        .await;
    }

    /// Sends a heartbeat for `running`.
    pub async fn heartbeat(&self, running: Vec<String>) {
        self.send(connect_request::Message::Heartbeat(Heartbeat {
            running_execution_ids: running,
            metadata: None,
        }))
        .await;
    }
}
