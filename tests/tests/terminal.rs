//! Attaching to a running AI agent's terminal from anywhere: a real server,
//! a real worker running the fake Gemini CLI in tmux, viewers on
//! `ExecutionService.AttachTerminal` and on the browser trio, and `amon
//! attach` driven under a pseudo-terminal of the test's own. What a person
//! sees: the screen, their keys answered, the pane at their size, other
//! viewers, the run going on after they leave, and why an attach ended.

use std::{
    io::{Read, Write},
    os::fd::{BorrowedFd, OwnedFd},
    time::Duration,
};

use amon_proto::v1::{
    AttachTerminalInputRequest, AttachTerminalOpen, AttachTerminalOutputRequest,
    AttachTerminalResizeRequest, ExecutionStatus, TerminalEndReason,
};
use amon_tests::{
    both_backends,
    db::TestDb,
    server::{TestServer, binary},
    terminal::{GeminiRig, Viewer, WAIT, WebViewer, resize_parser, screen_parser},
    worker::unique_worker,
};
use anyhow::Result;
use serde_json::json;
use tonic::Code;

/// Whether the run's window is sized to a viewer of `rows` x `cols` (less
/// tmux's status line, when it shows one).
fn sized_to(rig: &GeminiRig, session: &str, rows: u16, cols: u16) -> bool {
    let size = rig.tmux_display(session, "#{window_width} #{window_height}");
    let mut sides = size.split(' ').map(|n| n.parse::<u16>().unwrap_or(0));
    let (width, height) = (sides.next().unwrap_or(0), sides.next().unwrap_or(0));
    width == cols && (height == rows || height + 1 == rows)
}

/// Waits (up to [`WAIT`]) until `done`.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited {WAIT:?} for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn watch_type_resize_share_detach(db: TestDb) -> Result<()> {
    let mut rig = GeminiRig::start(Some(db.url()), &unique_worker("term")).await;
    let run = rig.running("Explain the build").await;
    let session = run.tmux_session_name.clone().expect("an AI run has tmux");

    // The screen as tmux draws it: the first answer is there.
    let mut first = Viewer::attach(&mut rig.api, &run.id, false, 30, 100).await?;
    assert_eq!(first.opened.worker_id, rig.worker_id);
    assert_eq!(first.opened.tmux_session_name, session);
    assert!(!first.opened.read_only);
    first.until_shows("echo: Explain the build").await;
    // tmux sized the pane to the viewer.
    eventually("the pane at 100x30", || sized_to(&rig, &session, 30, 100)).await;

    // A line typed is answered.
    first.type_keys("what changed\r").await;
    first.until_shows("echo: what changed").await;

    // A resize resizes the pane.
    first.resize(40, 120).await;
    eventually("the pane at 120x40", || sized_to(&rig, &session, 40, 120)).await;

    // A second viewer, as a browser has it (read-only, same size): it sees
    // the screen, its keys are refused, the first viewer's are answered on
    // both screens.
    let mut web = WebViewer::attach(&mut rig.api, &run.id, true, 40, 120).await?;
    assert!(web.opened.read_only);
    web.until_shows("echo: what changed").await;
    let refused = web.type_keys(&mut rig.api, "nope\r").await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    first.type_keys("second question\r").await;
    first.until_shows("echo: second question").await;
    web.until_shows("echo: second question").await;
    assert!(!web.screen.text().contains("echo: nope"));

    // A read-only viewer on the bidirectional stream: its keys are dropped.
    let mut watcher = Viewer::attach(&mut rig.api, &run.id, true, 40, 120).await?;
    watcher.until_shows("echo: second question").await;
    watcher.type_keys("dropped\r").await;
    first.type_keys("third\r").await;
    first.until_shows("echo: third").await;
    watcher.until_shows("echo: third").await;
    let log = String::from_utf8_lossy(&rig.api.log(&run.id).await).into_owned();
    assert!(!log.contains("echo: dropped"), "{log}");
    drop(watcher);

    // The first viewer detaches: the run goes on, the other viewer stays.
    drop(first);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        rig.api.execution(&run.id).await.status(),
        ExecutionStatus::Running
    );
    let mut again = Viewer::attach(&mut rig.api, &run.id, false, 40, 120).await?;
    again.until_shows("echo: third").await;

    // The run ends (the CLI is told to quit): every attach ends saying so.
    again.type_keys("/quit\r").await;
    let ended = again.until_ended().await;
    assert_eq!(ended.reason(), TerminalEndReason::RunEnded, "{ended:?}");
    let ended = web.until_ended().await;
    assert_eq!(ended.reason(), TerminalEndReason::RunEnded, "{ended:?}");
    let done = rig
        .api
        .wait_for(&run.id, ExecutionStatus::Succeeded, WAIT)
        .await;
    assert_eq!(done.status(), ExecutionStatus::Succeeded);

    // Attaching after the run ended is refused.
    let refused = Viewer::attach(&mut rig.api, &run.id, false, 24, 80)
        .await
        .err()
        .expect("a finished run cannot be attached");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("finished"), "{refused:?}");
    let refused = WebViewer::attach(&mut rig.api, &run.id, false, 24, 80)
        .await
        .err()
        .expect("a finished run cannot be attached");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    Ok(())
}

/// A viewer that never reads holds up neither the run's log nor the other
/// viewers: its window runs out and the worker stops reading its terminal.
async fn a_viewer_that_never_reads(db: TestDb) -> Result<()> {
    let mut rig = GeminiRig::start(Some(db.url()), &unique_worker("slow")).await;
    let run = rig.running("Start").await;
    let mut stuck = Viewer::attach(&mut rig.api, &run.id, false, 40, 120).await?;
    let mut reader = Viewer::attach(&mut rig.api, &run.id, false, 40, 120).await?;
    reader.until_shows("echo: Start").await;
    // Far more output than the stuck viewer's window (256 KiB) and every
    // buffer on its way (its HTTP/2 stream window is 2 MiB): 500 lines of
    // 3,000 characters, each echoed as typed and answered (3 MB), drawn on
    // both viewers. Paced by the answers, so the typing never outruns the
    // agent.
    let line = "x".repeat(3000);
    for i in 0..500 {
        reader.type_keys(&format!("{i} {line}\r")).await;
        if i % 25 == 24 {
            reader.until_shows(&format!("echo: {i} xxx")).await;
        }
    }
    reader.type_keys("last one\r").await;
    reader.until_shows("echo: last one").await;
    // The run's log has it all (its chunks shared the worker's stream with
    // the stuck viewer's output).
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let log = String::from_utf8_lossy(&rig.api.log(&run.id).await).into_owned();
        if log.contains("echo: last one") {
            assert!(log.contains("echo: 499 xxxx"), "the log lost lines");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the log stalled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Another run on the same worker starts and answers meanwhile.
    let other = rig.running("Another run").await;
    assert_eq!(other.status(), ExecutionStatus::Running);
    assert_eq!(
        rig.api.execution(&run.id).await.status(),
        ExecutionStatus::Running
    );
    // The stuck viewer reads at last: its window moves again, and tmux
    // draws it the screen as it is now.
    stuck.until_shows("echo: last one").await;
    Ok(())
}

/// Attaching what cannot be attached.
async fn refusals(db: TestDb) -> Result<()> {
    let mut rig = GeminiRig::start(Some(db.url()), &unique_worker("refuse")).await;
    let api = &mut rig.api;
    let not_found = Viewer::attach(api, "00000000-0000-4000-8000-000000000000", false, 24, 80)
        .await
        .err()
        .unwrap();
    assert_eq!(not_found.code(), Code::NotFound, "{not_found:?}");
    let invalid = Viewer::attach(api, "not-a-uuid", false, 24, 80)
        .await
        .err()
        .unwrap();
    assert_eq!(invalid.code(), Code::InvalidArgument, "{invalid:?}");
    assert!(
        invalid.message().contains("open.execution_id"),
        "{invalid:?}"
    );
    let bad_size = api
        .executions
        .attach_terminal_output(AttachTerminalOutputRequest {
            open: Some(AttachTerminalOpen {
                execution_id: "00000000-0000-4000-8000-000000000000".into(),
                read_only: false,
                size: Some(amon_proto::v1::TerminalSize { rows: 0, cols: 80 }),
            }),
        })
        .await
        .err()
        .unwrap();
    assert_eq!(bad_size.code(), Code::InvalidArgument, "{bad_size:?}");
    assert!(
        bad_size.message().contains("open.size.rows"),
        "{bad_size:?}"
    );
    // Input and resizes for an attach nobody opened.
    let unknown = "00000000-0000-4000-8000-000000000001".to_string();
    let status = api
        .executions
        .attach_terminal_input(AttachTerminalInputRequest {
            attach_id: unknown.clone(),
            data: b"x".to_vec(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let status = api
        .executions
        .attach_terminal_resize(AttachTerminalResizeRequest {
            attach_id: unknown,
            size: None,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    // A template run is a plain process: no terminal.
    let sleeper = api.tool("sleeper", "/bin/sleep", &[]).await;
    let nap = api.command(&sleeper, "nap", &["30"]).await;
    let task = api.titled("Nap").await;
    let napping = api.run(&task, &nap, json!({}), 0).await;
    api.wait_for(&napping.id, ExecutionStatus::Running, WAIT)
        .await;
    let refused = Viewer::attach(api, &napping.id, false, 24, 80)
        .await
        .err()
        .unwrap();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("no terminal"), "{refused:?}");

    // An AI run whose worker is gone.
    let run = rig.running("Soon orphaned").await;
    let mut viewer = Viewer::attach(&mut rig.api, &run.id, false, 24, 80).await?;
    viewer.until_shows("echo: Soon orphaned").await;
    rig.worker.kill_hard();
    let ended = viewer.until_ended().await;
    assert_eq!(
        ended.reason(),
        TerminalEndReason::WorkerDisconnected,
        "{ended:?}"
    );
    let refused = Viewer::attach(&mut rig.api, &run.id, false, 24, 80)
        .await
        .err()
        .unwrap();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("not connected"), "{refused:?}");
    Ok(())
}

/// A worker token opens the worker's stream, not a run's terminal.
#[tokio::test]
async fn a_worker_token_cannot_attach() {
    let server = TestServer::start_with_args(
        None,
        &[
            "--no-local-worker",
            "--worker-token",
            "w-secret",
            "--client-token",
            "c-secret",
        ],
    )
    .await;
    let channel = server.channel().await;
    let token: tonic::metadata::MetadataValue<tonic::metadata::Ascii> =
        "Bearer w-secret".parse().unwrap();
    let mut client =
        amon_proto::v1::execution_service_client::ExecutionServiceClient::with_interceptor(
            channel,
            move |mut request: tonic::Request<()>| {
                request
                    .metadata_mut()
                    .insert("authorization", token.clone());
                Ok(request)
            },
        );
    let status = client
        .attach_terminal_output(AttachTerminalOutputRequest {
            open: Some(AttachTerminalOpen {
                execution_id: "00000000-0000-4000-8000-000000000000".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let open = amon_proto::v1::AttachTerminalRequest {
        message: Some(amon_proto::v1::attach_terminal_request::Message::Open(
            AttachTerminalOpen {
                execution_id: "00000000-0000-4000-8000-000000000000".into(),
                ..Default::default()
            },
        )),
    };
    let status = client
        .attach_terminal(tokio_stream::iter([open]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
}

/// A pseudo-terminal of the test's own: its master, and a process on its
/// slave as its controlling terminal.
struct Pty {
    master: OwnedFd,
}

impl Pty {
    fn open(rows: u16, cols: u16) -> (Self, OwnedFd) {
        use rustix::fs::{Mode, OFlags};
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
        grantpt(&master).unwrap();
        unlockpt(&master).unwrap();
        let name = ptsname(&master, Vec::new()).unwrap();
        let slave = rustix::fs::open(
            name.as_c_str(),
            OFlags::RDWR | OFlags::NOCTTY,
            Mode::empty(),
        )
        .unwrap();
        let pty = Self { master };
        pty.resize(rows, cols);
        (pty, slave)
    }

    fn resize(&self, rows: u16, cols: u16) {
        rustix::termios::tcsetwinsize(
            &self.master,
            rustix::termios::Winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            },
        )
        .unwrap();
    }

    /// Whether the terminal is in raw mode (no line editing, no echo).
    fn raw(&self) -> bool {
        let termios = rustix::termios::tcgetattr(&self.master).unwrap();
        !termios
            .local_modes
            .contains(rustix::termios::LocalModes::ICANON)
    }

    fn write(&self, bytes: &[u8]) {
        let mut file = std::fs::File::from(self.master.try_clone().unwrap());
        file.write_all(bytes).unwrap();
    }
}

/// `amon attach` running under a pseudo-terminal of the test's own, and
/// the screen it draws there.
struct AttachCli {
    pty: Pty,
    child: std::process::Child,
    output: tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
    screen: vt100::Parser,
}

impl AttachCli {
    fn spawn(rig: &GeminiRig, execution: &str, extra: &[&str]) -> Result<Self> {
        let (pty, slave) = Pty::open(30, 100);
        let mut command = std::process::Command::new(binary("amon"));
        command
            .args(["--server", &rig.server.url(), "attach", execution])
            .args(extra)
            .env_remove("AMON_TOKEN")
            .stdin(slave.try_clone()?)
            .stdout(slave.try_clone()?)
            .stderr(slave.try_clone()?);
        // SAFETY: setsid and ioctl between fork and exec, nothing allocated:
        // the pseudo-terminal becomes amon's controlling terminal, so a
        // resize reaches it as SIGWINCH.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut command, || {
                rustix::process::setsid()?;
                rustix::process::ioctl_tiocsctty(BorrowedFd::borrow_raw(0))?;
                Ok(())
            });
        }
        let child = command.spawn()?;
        drop(slave);
        // The screen amon draws on the terminal, read on a thread.
        let (tx, output) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
        let mut reader = std::fs::File::from(pty.master.try_clone()?);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    return;
                }
            }
        });
        Ok(Self {
            pty,
            child,
            output,
            screen: screen_parser(30, 100),
        })
    }

    /// Reads amon's terminal until its screen shows `text`.
    async fn until(&mut self, text: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !self.screen.screen().contents().contains(text) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let bytes = tokio::time::timeout(left, self.output.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "no {text:?} on amon's terminal within {WAIT:?}:\n{}",
                        self.screen.screen().contents()
                    )
                })
                .unwrap_or_else(|| panic!("amon's terminal closed before {text:?}"));
            self.screen.process(&bytes);
        }
    }

    /// Waits for amon to exit.
    async fn exit(self) -> Result<(std::process::ExitStatus, Self)> {
        let Self {
            pty,
            mut child,
            output,
            screen,
        } = self;
        let status =
            tokio::task::spawn_blocking(move || child.wait().map(|s| (s, child))).await??;
        Ok((
            status.0,
            Self {
                pty,
                child: status.1,
                output,
                screen,
            },
        ))
    }
}

/// `amon attach` under a pseudo-terminal: raw mode while attached, keys
/// answered, the window size followed, the terminal restored on the detach
/// key, and the reason printed. `--read-only` watches: its keys never
/// reach the run, and Ctrl-C twice detaches it.
async fn amon_attach_in_a_terminal(db: TestDb) -> Result<()> {
    let mut rig = GeminiRig::start(Some(db.url()), &unique_worker("cli")).await;
    let run = rig.running("Hello from far").await;
    let session = run.tmux_session_name.clone().unwrap();
    let mut cli = AttachCli::spawn(&rig, &run.id[..8], &[])?;
    cli.until("echo: Hello from far").await;
    assert!(cli.pty.raw(), "amon attach puts the terminal in raw mode");
    cli.pty.write(b"typed at the cli\r");
    cli.until("echo: typed at the cli").await;
    // The window grows: amon hears SIGWINCH and resizes the pane.
    cli.pty.resize(35, 110);
    resize_parser(&mut cli.screen, 35, 110);
    eventually("the pane at 110x35", || sized_to(&rig, &session, 35, 110)).await;
    // The detach key: amon exits 0, says why, and the terminal is back.
    cli.pty.write(&[0x1d]);
    let (status, mut cli) = cli.exit().await?;
    assert!(status.success(), "{status:?}");
    cli.until("detached (Ctrl-]); the run goes on").await;
    assert!(!cli.pty.raw(), "the terminal is restored");
    assert_eq!(
        rig.api.execution(&run.id).await.status(),
        ExecutionStatus::Running
    );

    // Read-only: it shows the screen and says so; what is typed is dropped.
    let mut watcher = AttachCli::spawn(&rig, &run.id, &["--read-only"])?;
    watcher.until("(read-only)").await;
    watcher.until("echo: typed at the cli").await;
    watcher.pty.write(b"typed read-only\r");
    // A viewer that may type: its line is answered on the watcher's screen.
    let typist = Viewer::attach(&mut rig.api, &run.id, false, 35, 110).await?;
    typist.type_keys("from the typist\r").await;
    watcher.until("echo: from the typist").await;
    // Ctrl-C twice detaches it (read-only, neither reaches the agent).
    watcher.pty.write(&[0x03]);
    watcher.pty.write(&[0x03]);
    let (status, mut watcher) = watcher.exit().await?;
    assert!(status.success(), "{status:?}");
    watcher
        .until("detached (Ctrl-C twice); the run goes on")
        .await;
    assert!(!watcher.pty.raw(), "the terminal is restored");
    // The log (tmux's pipe-pane, shipped by the worker) trails the screen:
    // once it has the typist's answer, it has whatever came before.
    let deadline = tokio::time::Instant::now() + WAIT;
    let log = loop {
        let log = String::from_utf8_lossy(&rig.api.log(&run.id).await).into_owned();
        if log.contains("echo: from the typist") {
            break log;
        }
        assert!(tokio::time::Instant::now() < deadline, "{log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!log.contains("echo: typed read-only"), "{log}");
    assert_eq!(
        rig.api.execution(&run.id).await.status(),
        ExecutionStatus::Running
    );
    Ok(())
}

both_backends!(
    watch_type_resize_share_detach,
    a_viewer_that_never_reads,
    refusals,
    amon_attach_in_a_terminal,
);
