//! Attached terminals from a test's side: a rig with a real server, a real
//! worker and the fake Gemini CLI in tmux, and viewers of a run's terminal
//! (the bidirectional `AttachTerminal` and the browser trio), each keeping
//! the screen as a terminal would draw it (`vt100`).

use std::{path::Path, time::Duration};

use amon_proto::v1::{
    AttachTerminalInputRequest, AttachTerminalOpen, AttachTerminalOpened,
    AttachTerminalOutputRequest, AttachTerminalOutputResponse, AttachTerminalRequest,
    AttachTerminalResizeRequest, AttachTerminalResponse, Capability, CreatePresetAgentRequest,
    Execution, ExecutionStatus, Task, TaskInputContext, TerminalEnded, TerminalSize,
    UpdateAgentRequest, attach_terminal_output_response, attach_terminal_request,
    attach_terminal_response,
};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use crate::{
    api::{Api, strings},
    server::TestServer,
    worker::TestWorker,
};

/// Longest wait for anything a test expects to see.
pub const WAIT: Duration = Duration::from_secs(30);

/// A path in `tests/fixtures`.
pub fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// A server, a worker with its own HOME, and the fake Gemini CLI as a
/// preset agent whose runs wait for the next prompt once they answered the
/// first (no idle rule that ends them), so they run until told `/quit`.
pub struct GeminiRig {
    /// The server.
    pub server: TestServer,
    /// Clients of it.
    pub api: Api,
    /// The worker.
    pub worker: TestWorker,
    /// Its id (its tmux server is `amon-<id>`).
    pub worker_id: String,
    /// The agent's prompt capability.
    pub prompt: Capability,
    _home: tempfile::TempDir,
}

impl GeminiRig {
    /// Starts the server on `database_url` (its embedded SQLite without)
    /// and a worker called `worker_id`.
    pub async fn start(database_url: Option<&str>, worker_id: &str) -> Self {
        let server = TestServer::start_with_args(database_url, &["--no-local-worker"]).await;
        let mut api = Api::new(server.channel().await);
        let home = tempfile::tempdir().expect("tempdir");
        let worker = TestWorker::start_with(
            &server,
            &server.url(),
            worker_id,
            4,
            &[("HOME", home.path().to_str().unwrap())],
            &[],
        );
        let created = api
            .agents
            .create_preset_agent(CreatePresetAgentRequest {
                preset: "gemini".into(),
                binary_path: Some(fixture("fake-gemini")),
                slug: Some("gemini".into()),
                max_concurrent: Some(4),
                ..Default::default()
            })
            .await
            .expect("create preset agent")
            .into_inner();
        let agent = created.agent.unwrap();
        // An hour of quiet before the idle rule would judge the turn: the
        // run goes on, waiting for the next prompt, as a person's would.
        let mut config = agent.session_config.clone().unwrap();
        config.completion_idle = Some(prost_types::Duration {
            seconds: 3600,
            nanos: 0,
        });
        api.agents
            .update_agent(UpdateAgentRequest {
                agent: Some(amon_proto::v1::Agent {
                    id: agent.id.clone(),
                    session_config: Some(config),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: strings(&["session_config"]),
                }),
            })
            .await
            .expect("update agent");
        Self {
            server,
            api,
            worker,
            worker_id: worker_id.into(),
            prompt: created.capability.unwrap(),
            _home: home,
        }
    }

    /// Starts a run with `title` as its prompt and waits until the fake
    /// answered it on screen (the log shows `echo: <title>`).
    pub async fn running(&mut self, title: &str) -> Execution {
        let task = self
            .api
            .task(Task {
                title: title.into(),
                input_context: Some(TaskInputContext {
                    env_overrides: [("FAKE_CLI_MODE".to_string(), String::new())]
                        .into_iter()
                        .collect(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await;
        let execution = self.api.run(&task, &self.prompt, json!({}), 0).await;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let log = String::from_utf8_lossy(&self.api.log(&execution.id).await).into_owned();
            if log.contains(&format!("echo: {title}")) {
                break;
            }
            let now = self.api.execution(&execution.id).await;
            assert!(
                matches!(
                    now.status(),
                    ExecutionStatus::Queued | ExecutionStatus::Running
                ),
                "the run should be answering its prompt: {now:?}\n{log}"
            );
            assert!(
                tokio::time::Instant::now() < deadline,
                "no answer on screen within {WAIT:?}: {log}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.api.execution(&execution.id).await
    }

    /// `tmux -L` label of the worker's tmux server.
    pub fn tmux_label(&self) -> String {
        format!("amon-{}", self.worker_id)
    }

    /// `#{format}` of the run's tmux window (e.g. `#{window_width}`).
    pub fn tmux_display(&self, session: &str, format: &str) -> String {
        let output = std::process::Command::new("tmux")
            .args([
                "-L",
                &self.tmux_label(),
                "display-message",
                "-p",
                "-t",
                &format!("={session}:"),
                format,
            ])
            .output()
            .expect("running tmux");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}

fn size(rows: u16, cols: u16) -> TerminalSize {
    TerminalSize {
        rows: i32::from(rows),
        cols: i32::from(cols),
    }
}

fn cells(value: u16) -> std::num::NonZeroU16 {
    std::num::NonZeroU16::new(value).expect("a terminal side is at least 1")
}

/// A terminal's screen of `rows` x `cols`, fed the bytes drawn on it.
pub fn screen_parser(rows: u16, cols: u16) -> vt100::Parser {
    vt100::Parser::new(cells(rows), cells(cols), 0)
}

/// Resizes `parser`'s screen, as a terminal window resized.
pub fn resize_parser(parser: &mut vt100::Parser, rows: u16, cols: u16) {
    parser.set_size(cells(rows), cells(cols));
}

/// What a viewer has seen.
pub struct Screen {
    parser: vt100::Parser,
    /// Every output byte received.
    pub bytes: usize,
}

impl Screen {
    fn new(rows: u16, cols: u16) -> Self {
        Self {
            parser: screen_parser(rows, cols),
            bytes: 0,
        }
    }

    fn feed(&mut self, data: &[u8]) {
        self.bytes += data.len();
        self.parser.process(data);
    }

    /// The screen's text, as drawn.
    pub fn text(&self) -> String {
        self.parser.screen().contents()
    }
}

/// A viewer on `ExecutionService.AttachTerminal`.
pub struct Viewer {
    tx: mpsc::Sender<AttachTerminalRequest>,
    replies: Streaming<AttachTerminalResponse>,
    /// The server's `opened`.
    pub opened: AttachTerminalOpened,
    /// The screen so far.
    pub screen: Screen,
    /// The `ended`, once received.
    pub ended: Option<TerminalEnded>,
}

fn request(message: attach_terminal_request::Message) -> AttachTerminalRequest {
    AttachTerminalRequest {
        message: Some(message),
    }
}

impl Viewer {
    /// Attaches to `execution_id` with a terminal of `rows` x `cols`.
    pub async fn attach(
        api: &mut Api,
        execution_id: &str,
        read_only: bool,
        rows: u16,
        cols: u16,
    ) -> Result<Self, Status> {
        let (tx, rx) = mpsc::channel(64);
        tx.send(request(attach_terminal_request::Message::Open(
            AttachTerminalOpen {
                execution_id: execution_id.into(),
                read_only,
                size: Some(size(rows, cols)),
            },
        )))
        .await
        .expect("queue open");
        let mut replies = api
            .executions
            .attach_terminal(ReceiverStream::new(rx))
            .await?
            .into_inner();
        let opened = match replies.message().await? {
            Some(AttachTerminalResponse {
                message: Some(attach_terminal_response::Message::Opened(opened)),
            }) => opened,
            other => panic!("expected opened first, got {other:?}"),
        };
        Ok(Self {
            tx,
            replies,
            opened,
            screen: Screen::new(rows, cols),
            ended: None,
        })
    }

    /// Types `keys`.
    pub async fn type_keys(&self, keys: &str) {
        self.tx
            .send(request(attach_terminal_request::Message::Input(
                keys.as_bytes().to_vec(),
            )))
            .await
            .expect("the attach is open");
    }

    /// Resizes the viewer's terminal (and tells the server).
    pub async fn resize(&mut self, rows: u16, cols: u16) {
        resize_parser(&mut self.screen.parser, rows, cols);
        self.tx
            .send(request(attach_terminal_request::Message::Resize(size(
                rows, cols,
            ))))
            .await
            .expect("the attach is open");
    }

    /// The next output (or `None` once ended), into the screen.
    pub async fn read(&mut self) -> Result<Option<Vec<u8>>, Status> {
        match self.replies.message().await? {
            Some(AttachTerminalResponse {
                message: Some(attach_terminal_response::Message::Output(data)),
            }) => {
                self.screen.feed(&data);
                Ok(Some(data))
            }
            Some(AttachTerminalResponse {
                message: Some(attach_terminal_response::Message::Ended(ended)),
            }) => {
                self.ended = Some(ended);
                Ok(None)
            }
            Some(other) => panic!("unexpected {other:?}"),
            None => Ok(None),
        }
    }

    /// Reads until the screen shows `text`; the screen then.
    pub async fn until_shows(&mut self, text: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let screen = self.screen.text();
            if screen.contains(text) {
                return screen;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.read()).await {
                Ok(Ok(Some(_))) => {}
                Ok(Ok(None)) => panic!("attach ended ({:?}) before {text:?}: {screen}", self.ended),
                Ok(Err(status)) => panic!("attach failed ({status}) before {text:?}: {screen}"),
                Err(_) => panic!("the screen did not show {text:?} within {WAIT:?}:\n{screen}"),
            }
        }
    }

    /// Reads until the attach ends; how.
    pub async fn until_ended(&mut self) -> TerminalEnded {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.ended.is_none() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.read()).await {
                Ok(Ok(Some(_))) => {}
                Ok(Ok(None)) => break,
                Ok(Err(status)) => panic!("attach failed: {status}"),
                Err(_) => panic!("the attach did not end within {WAIT:?}"),
            }
        }
        self.ended.clone().expect("ended with a reason")
    }
}

/// A viewer as a browser has it: `AttachTerminalOutput`, with keys and
/// sizes sent as unary calls quoting the attach id.
pub struct WebViewer {
    replies: Streaming<AttachTerminalOutputResponse>,
    /// The server's `opened`.
    pub opened: AttachTerminalOpened,
    /// The screen so far.
    pub screen: Screen,
    /// The `ended`, once received.
    pub ended: Option<TerminalEnded>,
}

impl WebViewer {
    /// Attaches to `execution_id` with a terminal of `rows` x `cols`.
    pub async fn attach(
        api: &mut Api,
        execution_id: &str,
        read_only: bool,
        rows: u16,
        cols: u16,
    ) -> Result<Self, Status> {
        let mut replies = api
            .executions
            .attach_terminal_output(AttachTerminalOutputRequest {
                open: Some(AttachTerminalOpen {
                    execution_id: execution_id.into(),
                    read_only,
                    size: Some(size(rows, cols)),
                }),
            })
            .await?
            .into_inner();
        let opened = match replies.message().await? {
            Some(AttachTerminalOutputResponse {
                message: Some(attach_terminal_output_response::Message::Opened(opened)),
            }) => opened,
            other => panic!("expected opened first, got {other:?}"),
        };
        Ok(Self {
            replies,
            opened,
            screen: Screen::new(rows, cols),
            ended: None,
        })
    }

    /// Types `keys` (AttachTerminalInput).
    pub async fn type_keys(&self, api: &mut Api, keys: &str) -> Result<(), Status> {
        api.executions
            .attach_terminal_input(AttachTerminalInputRequest {
                attach_id: self.opened.attach_id.clone(),
                data: keys.as_bytes().to_vec(),
            })
            .await
            .map(drop)
    }

    /// Resizes (AttachTerminalResize).
    pub async fn resize(&mut self, api: &mut Api, rows: u16, cols: u16) -> Result<(), Status> {
        resize_parser(&mut self.screen.parser, rows, cols);
        api.executions
            .attach_terminal_resize(AttachTerminalResizeRequest {
                attach_id: self.opened.attach_id.clone(),
                size: Some(size(rows, cols)),
            })
            .await
            .map(drop)
    }

    async fn read(&mut self) -> Result<Option<()>, Status> {
        match self.replies.message().await? {
            Some(AttachTerminalOutputResponse {
                message: Some(attach_terminal_output_response::Message::Output(data)),
            }) => {
                self.screen.feed(&data);
                Ok(Some(()))
            }
            Some(AttachTerminalOutputResponse {
                message: Some(attach_terminal_output_response::Message::Ended(ended)),
            }) => {
                self.ended = Some(ended);
                Ok(None)
            }
            Some(other) => panic!("unexpected {other:?}"),
            None => Ok(None),
        }
    }

    /// Reads until the screen shows `text`; the screen then.
    pub async fn until_shows(&mut self, text: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let screen = self.screen.text();
            if screen.contains(text) {
                return screen;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.read()).await {
                Ok(Ok(Some(()))) => {}
                Ok(Ok(None)) => panic!("attach ended ({:?}) before {text:?}: {screen}", self.ended),
                Ok(Err(status)) => panic!("attach failed ({status}) before {text:?}: {screen}"),
                Err(_) => panic!("the screen did not show {text:?} within {WAIT:?}:\n{screen}"),
            }
        }
    }

    /// Reads until the attach ends; how.
    pub async fn until_ended(&mut self) -> TerminalEnded {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.ended.is_none() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.read()).await {
                Ok(Ok(Some(()))) => {}
                Ok(Ok(None)) => break,
                Ok(Err(status)) => panic!("attach failed: {status}"),
                Err(_) => panic!("the attach did not end within {WAIT:?}"),
            }
        }
        self.ended.clone().expect("ended with a reason")
    }
}
