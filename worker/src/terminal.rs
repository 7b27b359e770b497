//! Terminals attached to runs' tmux sessions, for viewers far away
//! (`ExecutionService.AttachTerminal`, relayed by the server over the
//! `Connect` stream: `TerminalOpen`, `TerminalInput`, `TerminalResize`,
//! `TerminalGrant`, `TerminalClose` in; `TerminalOpened`, `TerminalOutput`,
//! `TerminalClosed` out).
//!
//! Each attach is a pseudo-terminal running `tmux -L <worker's server>
//! attach-session -t =<session>` (`-r` when read-only), as a person logged
//! into the worker would: the viewer sees exactly what tmux draws,
//! full-screen programs included, and tmux sizes the pane to it. tmux
//! itself runs the agent; detaching (the viewer leaving, or tmux's own
//! detach key) ends only this client, never the run. When the run ends its
//! session is killed and the client exits: the attach ends saying so.
//!
//! Flow control: the attach reads its pseudo-terminal only while it has
//! window left (the server's `window`, topped up by grants as the viewer
//! takes output). With none left it stops reading; tmux notices its client
//! is slow and holds the screen for it, so the run never waits, and this
//! worker's log chunks and other runs share the stream with at most a
//! window of terminal bytes per attach.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use amon_proto::v1::{
    TerminalClosed, TerminalEndReason, TerminalOpen, TerminalOpened, TerminalOutput, TerminalSize,
    connect_request,
};
use rustix::termios::Winsize;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;
use tracing::{debug, info};

use crate::run::tmux::Tmux;
use crate::transport::{Outbound, request};

/// Largest output message: small enough to interleave with log chunks.
const READ_CHUNK: usize = 16 * 1024;
/// Keys held for a terminal that does not take them (then input is dropped).
const MAX_PENDING_INPUT: usize = 1024 * 1024;

/// What the server says about one attach.
#[derive(Debug)]
enum Order {
    Input(Vec<u8>),
    Resize(Winsize),
    Grant(u64),
    Close,
}

/// The attaches under way, by attach id.
#[derive(Clone, Default)]
pub(crate) struct Terminals {
    open: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Order>>>>,
}

impl Terminals {
    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::UnboundedSender<Order>>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Attaches to `session` (the ledger checked it is the run's), in a
    /// task of its own answering on `outbound`.
    pub fn attach(&self, open: TerminalOpen, session: String, tmux: Tmux, outbound: Outbound) {
        let (tx, orders) = mpsc::unbounded_channel();
        let id = open.attach_id.clone();
        if self.open().insert(id.clone(), tx).is_some() {
            debug!(attach_id = %id, "a second open of one attach replaces the first");
        }
        let registry = self.clone();
        tokio::spawn(async move {
            let (reason, message) = match run(&open, &session, &tmux, orders, &outbound).await {
                Ok(end) => end,
                Err(error) => (TerminalEndReason::Error, error),
            };
            info!(attach_id = %id, execution_id = %open.execution_id, ?reason, %message,
                  "terminal detached");
            registry.open().remove(&id);
            closed(&outbound, id, reason, message);
        });
    }

    /// Tells the server `attach_id` cannot be attached.
    pub fn refuse(&self, outbound: &Outbound, attach_id: String, why: String) {
        closed(outbound, attach_id, TerminalEndReason::Error, why);
    }

    pub fn input(&self, attach_id: &str, data: Vec<u8>) {
        self.order(attach_id, Order::Input(data));
    }

    pub fn resize(&self, attach_id: &str, size: Option<TerminalSize>) {
        self.order(attach_id, Order::Resize(winsize(size.as_ref())));
    }

    pub fn grant(&self, attach_id: &str, bytes: i64) {
        self.order(attach_id, Order::Grant(u64::try_from(bytes).unwrap_or(0)));
    }

    pub fn close(&self, attach_id: &str) {
        self.order(attach_id, Order::Close);
    }

    /// The stream is gone: the server ended every attach on it already.
    pub fn close_all(&self) {
        for (_, orders) in self.open().drain() {
            let _ = orders.send(Order::Close);
        }
    }

    fn order(&self, attach_id: &str, order: Order) {
        if let Some(orders) = self.open().get(attach_id) {
            let _ = orders.send(order);
        }
    }
}

fn closed(outbound: &Outbound, attach_id: String, reason: TerminalEndReason, message: String) {
    let _ = outbound.send(request(connect_request::Message::TerminalClosed(
        TerminalClosed {
            attach_id,
            reason: reason as i32,
            message,
        },
    )));
}

/// A size from the server; unset or out of range sides are 24x80's.
fn winsize(size: Option<&TerminalSize>) -> Winsize {
    let side = |value: i32, default: u16| {
        u16::try_from(value)
            .ok()
            .filter(|v| (1..=1000).contains(v))
            .unwrap_or(default)
    };
    let (rows, cols) = size.map_or((24, 80), |s| (side(s.rows, 24), side(s.cols, 80)));
    Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

/// A new pseudo-terminal: its master (non-blocking) and its slave.
fn openpty(size: Winsize) -> io::Result<(OwnedFd, OwnedFd)> {
    use rustix::fs::{Mode, OFlags};
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let name = ptsname(&master, Vec::new())?;
    let slave = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    rustix::termios::tcsetwinsize(&master, size)?;
    rustix::io::ioctl_fionbio(&master, true)?;
    Ok((master, slave))
}

/// Runs one attach until it ends; how it ended.
async fn run(
    open: &TerminalOpen,
    session: &str,
    tmux: &Tmux,
    mut orders: mpsc::UnboundedReceiver<Order>,
    outbound: &Outbound,
) -> Result<(TerminalEndReason, String), String> {
    let (master, slave) = openpty(winsize(open.size.as_ref()))
        .map_err(|e| format!("opening a pseudo-terminal: {e}"))?;
    let mut command = tmux.attach_command(session, open.read_only);
    let stdio = |fd: &OwnedFd| {
        fd.try_clone()
            .map(Stdio::from)
            .map_err(|e| format!("opening a pseudo-terminal: {e}"))
    };
    command
        .stdin(stdio(&slave)?)
        .stdout(stdio(&slave)?)
        .stderr(stdio(&slave)?);
    // SAFETY: runs between fork and exec, calling only setsid and ioctl
    // (async-signal-safe), allocating nothing. A session of its own with
    // the pseudo-terminal as its controlling terminal: a resize then
    // reaches tmux as SIGWINCH, and the client gets SIGHUP if this worker
    // dies and the master closes.
    unsafe {
        command.pre_exec(|| {
            rustix::process::setsid()?;
            rustix::process::ioctl_tiocsctty(BorrowedFd::borrow_raw(0))?;
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("starting tmux attach: {e}"))?;
    drop(slave);
    // SAFETY: the AsyncFd owns the OwnedFd, which stays open and the same
    // descriptor until the AsyncFd is dropped.
    let master =
        unsafe { AsyncFd::register(master) }.map_err(|e| format!("watching the terminal: {e}"))?;
    let _ = outbound.send(request(connect_request::Message::TerminalOpened(
        TerminalOpened {
            attach_id: open.attach_id.clone(),
        },
    )));
    info!(attach_id = %open.attach_id, execution_id = %open.execution_id, %session,
          read_only = open.read_only, "terminal attached");
    let mut window = u64::try_from(open.window).unwrap_or(0);
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        tokio::select! {
            ready = master.readable(), if window > 0 => {
                let mut guard = ready.map_err(|e| format!("reading the terminal: {e}"))?;
                let want = buf.len().min(usize::try_from(window).unwrap_or(usize::MAX));
                match guard.try_io(|fd| read(fd.get_ref(), &mut buf[..want])) {
                    Err(_would_block) => continue,
                    // EOF or EIO: the client exited and closed its side.
                    Ok(Ok(0)) | Ok(Err(_)) => break,
                    Ok(Ok(n)) => {
                        window -= n as u64;
                        let output = TerminalOutput {
                            attach_id: open.attach_id.clone(),
                            data: buf[..n].to_vec(),
                        };
                        if outbound
                            .send(request(connect_request::Message::TerminalOutput(output)))
                            .is_err()
                        {
                            return Ok((
                                TerminalEndReason::WorkerDisconnected,
                                "the worker's stream ended".into(),
                            ));
                        }
                    }
                }
            }
            ready = master.writable(), if !pending.is_empty() => {
                let mut guard = ready.map_err(|e| format!("writing to the terminal: {e}"))?;
                match guard.try_io(|fd| write(fd.get_ref(), &pending)) {
                    Err(_would_block) => continue,
                    Ok(Ok(n)) => {
                        pending.drain(..n);
                    }
                    Ok(Err(_)) => break,
                }
            }
            order = orders.recv() => match order {
                Some(Order::Input(data)) => {
                    // tmux drops a read-only client's keys too; they never get that far.
                    if !open.read_only && pending.len() + data.len() <= MAX_PENDING_INPUT {
                        pending.extend_from_slice(&data);
                    }
                }
                Some(Order::Resize(size)) => {
                    let _ = rustix::termios::tcsetwinsize(master.get_ref(), size);
                }
                Some(Order::Grant(bytes)) => window = window.saturating_add(bytes),
                Some(Order::Close) | None => {
                    let _ = child.start_kill();
                    let _ = child.wait().await;
                    return Ok((TerminalEndReason::Detached, "the viewer detached".into()));
                }
            },
            _ = child.wait() => break,
        }
    }
    let _ = child.wait().await;
    // The client exits when its session is killed (the run ended) or when
    // tmux detached it.
    Ok(if tmux.has_session(session).await {
        (
            TerminalEndReason::Detached,
            "tmux detached this client; the run goes on".into(),
        )
    } else {
        (
            TerminalEndReason::RunEnded,
            "the run ended: its terminal is gone".into(),
        )
    })
}

fn read(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    Ok(rustix::io::read(fd.as_fd(), buf)?)
}

fn write(fd: &OwnedFd, data: &[u8]) -> io::Result<usize> {
    Ok(rustix::io::write(fd.as_fd(), data)?)
}
