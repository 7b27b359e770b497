//! `amon attach`: a running AI agent's terminal (its tmux session on its
//! worker), here, through the server (`ExecutionService.AttachTerminal`).
//!
//! The local terminal is put in raw mode, so every key (Ctrl-C included)
//! goes to the agent as typed, and back to its mode however the attach
//! ends. Window size changes (SIGWINCH) are sent as resizes. The detach
//! keys end only this viewer, never the run: Ctrl-] (as telnet), or Ctrl-C
//! twice within a second (the first still reaches the agent).

use std::io::{IsTerminal, Read, Write};
use std::time::{Duration, Instant};

use amon_proto::v1::{
    AttachTerminalOpen, AttachTerminalRequest, TerminalEndReason, TerminalSize,
    attach_terminal_request, attach_terminal_response,
};
use clap::Args;
use rustix::termios::{OptionalActions, Termios, tcgetattr, tcgetwinsize, tcsetattr};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::{
    client::{Ctx, Exit},
    output, resolve,
};

/// The detach key: Ctrl-].
const DETACH_KEY: u8 = 0x1d;
/// Ctrl-C.
const INTERRUPT: u8 = 0x03;
/// Two Ctrl-C this close together detach.
const DOUBLE_INTERRUPT: Duration = Duration::from_secs(1);

/// `amon attach`.
#[derive(Debug, Args)]
#[command(after_help = "\
Attaches to the terminal of a running AI agent run, on whatever worker it runs:
you see what its tmux session draws and your keys go to the agent. Detach with
Ctrl-] or Ctrl-C twice within a second (the first Ctrl-C reaches the agent);
detaching never stops the run. The attach ends when the run does, and says why.

Refused (exit 2) for a run without a terminal (template runs), one that has not
started or has finished, or whose worker is not connected to this server.")]
pub struct AttachArgs {
    /// Execution id or id prefix.
    pub execution: String,
    /// Watch only: your keys are not sent (but for the detach keys).
    #[arg(long)]
    pub read_only: bool,
}

/// Puts the terminal back as it was when dropped.
struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Raw mode on standard input, if it is a terminal.
    fn enter() -> Option<Self> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return None;
        }
        let saved = tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        tcsetattr(&stdin, OptionalActions::Now, &raw).ok()?;
        Some(Self { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin(), OptionalActions::Now, &self.saved);
    }
}

/// The size of the terminal on standard output, if it is one.
fn window_size() -> Option<TerminalSize> {
    let size = tcgetwinsize(std::io::stdout()).ok()?;
    (size.ws_row > 0 && size.ws_col > 0).then_some(TerminalSize {
        rows: i32::from(size.ws_row),
        cols: i32::from(size.ws_col),
    })
}

/// What the keyboard says.
enum Keys {
    Send(Vec<u8>),
    Detach(&'static str),
}

/// Splits typed bytes into what to send and the detach keys.
struct KeyFilter {
    last_interrupt: Option<Instant>,
}

impl KeyFilter {
    fn feed(&mut self, bytes: &[u8], now: Instant) -> Keys {
        let mut send = Vec::with_capacity(bytes.len());
        for &byte in bytes {
            match byte {
                DETACH_KEY => return Keys::Detach("Ctrl-]"),
                INTERRUPT => {
                    if self
                        .last_interrupt
                        .is_some_and(|at| now.duration_since(at) <= DOUBLE_INTERRUPT)
                    {
                        return Keys::Detach("Ctrl-C twice");
                    }
                    self.last_interrupt = Some(now);
                    send.push(byte);
                }
                other => {
                    self.last_interrupt = None;
                    send.push(other);
                }
            }
        }
        Keys::Send(send)
    }
}

/// Reads standard input on a thread of its own (a blocking read cannot be
/// cancelled; the thread ends with the process).
fn keyboard() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 4096];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

fn request(message: attach_terminal_request::Message) -> AttachTerminalRequest {
    AttachTerminalRequest {
        message: Some(message),
    }
}

/// `amon attach`.
pub async fn run(ctx: &Ctx, args: AttachArgs) -> anyhow::Result<()> {
    let execution_id = resolve::execution_id(ctx, &args.execution).await?;
    let (tx, rx) = mpsc::channel(64);
    tx.send(request(attach_terminal_request::Message::Open(
        AttachTerminalOpen {
            execution_id,
            read_only: args.read_only,
            size: window_size(),
        },
    )))
    .await?;
    let mut replies = ctx
        .executions()
        .attach_terminal(ReceiverStream::new(rx))
        .await?
        .into_inner();
    let mut winch = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())?;
    let mut keys = keyboard();
    let mut keyboard_open = true;
    let mut filter = KeyFilter {
        last_interrupt: None,
    };
    let raw = RawMode::enter();
    let mut stdout = std::io::stdout();
    let ended = loop {
        tokio::select! {
            reply = replies.message() => {
                use attach_terminal_response::Message as M;
                match reply {
                    Ok(Some(reply)) => match reply.message {
                        Some(M::Output(bytes)) => {
                            stdout.write_all(&bytes)?;
                            stdout.flush()?;
                        }
                        Some(M::Opened(opened)) => {
                            let note = format!(
                                "[amon] attached to {} on worker {}{}; detach: Ctrl-] or Ctrl-C twice",
                                opened.tmux_session_name,
                                opened.worker_id,
                                if opened.read_only { " (read-only)" } else { "" }
                            );
                            // Raw mode: a line ends with \r\n.
                            eprint!("{note}\r\n");
                        }
                        Some(M::Ended(ended)) => break Ended::Server(ended.reason(), ended.message),
                        None => {}
                    },
                    Ok(None) => break Ended::Server(TerminalEndReason::Unspecified, "the server closed the attach".into()),
                    Err(status) => break Ended::Failed(status),
                }
            }
            typed = keys.recv(), if keyboard_open => match typed {
                Some(bytes) => match filter.feed(&bytes, Instant::now()) {
                    Keys::Detach(how) => break Ended::Detached(how),
                    Keys::Send(bytes) if !bytes.is_empty() && !args.read_only => {
                        if tx.send(request(attach_terminal_request::Message::Input(bytes))).await.is_err() {
                            break Ended::Server(TerminalEndReason::Unspecified, "the server closed the attach".into());
                        }
                    }
                    Keys::Send(_) => {}
                },
                // Standard input closed: keep watching until the attach ends.
                None => keyboard_open = false,
            },
            _ = winch.recv() => {
                if let Some(size) = window_size() {
                    let _ = tx.send(request(attach_terminal_request::Message::Resize(size))).await;
                }
            }
        }
    };
    drop(raw);
    match ended {
        Ended::Detached(how) => {
            output::note(&format!("\n[amon] detached ({how}); the run goes on"));
            Ok(())
        }
        Ended::Server(reason, message) => {
            output::note(&format!("\n[amon] {message}"));
            match reason {
                TerminalEndReason::RunEnded | TerminalEndReason::Detached => Ok(()),
                _ => Err(Exit(1).into()),
            }
        }
        Ended::Failed(status) => Err(status.into()),
    }
}

enum Ended {
    /// The viewer detached.
    Detached(&'static str),
    /// The server ended it, saying why.
    Server(TerminalEndReason, String),
    /// The stream failed.
    Failed(tonic::Status),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys() {
        let t0 = Instant::now();
        let mut filter = KeyFilter {
            last_interrupt: None,
        };
        assert!(matches!(filter.feed(b"ls\r", t0), Keys::Send(b) if b == b"ls\r"));
        assert!(matches!(filter.feed(&[0x1d], t0), Keys::Detach("Ctrl-]")));
        // One Ctrl-C goes to the agent; a second within a second detaches.
        assert!(matches!(filter.feed(&[3], t0), Keys::Send(b) if b == [3]));
        assert!(matches!(
            filter.feed(&[3], t0 + Duration::from_millis(500)),
            Keys::Detach("Ctrl-C twice")
        ));
        // Apart, or with a key between, they are two Ctrl-Cs.
        let mut filter = KeyFilter {
            last_interrupt: None,
        };
        assert!(matches!(filter.feed(&[3], t0), Keys::Send(_)));
        assert!(matches!(
            filter.feed(&[3], t0 + Duration::from_secs(2)),
            Keys::Send(_)
        ));
        let mut filter = KeyFilter {
            last_interrupt: None,
        };
        assert!(matches!(filter.feed(&[3, b'x', 3], t0), Keys::Send(b) if b == [3, b'x', 3]));
    }
}
