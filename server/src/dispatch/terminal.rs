//! Terminals relayed to workers: `ExecutionService.AttachTerminal` (and its
//! browser trio) attach a viewer to the tmux session of a running AI agent
//! run, on the worker that holds the run, over that worker's `Connect`
//! stream, the way discovery scans are asked (`dispatch::discover`).
//!
//! The flow, for one attach (its id is the server's, random):
//! 1. the server sends `TerminalOpen` (run, attempt, session, read-only,
//!    size, window) and waits for the worker's `TerminalOpened`, or its
//!    `TerminalClosed` saying why it could not attach;
//! 2. the worker runs `tmux attach` on a pseudo-terminal and sends what it
//!    draws as `TerminalOutput`; the server passes keys (`TerminalInput`,
//!    dropped here for a read-only attach) and sizes (`TerminalResize`) on;
//! 3. it ends with the worker's `TerminalClosed` (the run ended, tmux
//!    detached), the viewer leaving (`TerminalClose` to the worker), or the
//!    worker's stream ending (every attach on it ends at once).
//!
//! Flow control: each attach has a window of [`WINDOW`] output bytes. The
//! worker sends no more than the window beyond what `TerminalGrant`s gave
//! back; the server gives bytes back only once the viewer's stream took
//! them. A viewer that stops reading thus stops its own attach's output at
//! the worker, which stops reading that pseudo-terminal (tmux keeps a slow
//! client's screen itself): the worker's stream, its log chunks and its
//! other runs never wait for a viewer. Output is handed to the attach's
//! relay without waiting (the window bounds what it can hold); a worker
//! sending past the window has that attach ended.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::mpsc;
use uuid::Uuid;

use super::{
    Engine,
    messages::{TerminalEnd, TerminalEndReason, TerminalOpen, TerminalSize, ToWorker},
};
use crate::{
    entity::enums::ExecutionStatus,
    store::{StoreError, StoreResult, validate::quoted},
};

/// Output bytes an attach may have on its way to the viewer. A full screen
/// of a 200x50 pane with colours is ~30 KB: eight of them keep a fast
/// viewer from ever waiting on a grant.
pub const WINDOW: u64 = 256 * 1024;
/// Bytes passed on before they are given back in one grant (one message
/// per quarter window, not one per keystroke's echo).
const GRANT_STEP: u64 = WINDOW / 4;
/// Longest wait for the worker to say whether it attached.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes of keys in one input message.
pub const MAX_INPUT_BYTES: usize = 64 * 1024;
/// Places of a worker's outgoing queue (4,096) that viewers' keys and
/// sizes never take: a viewer pasting without end cannot crowd out the
/// worker's assignments and acknowledgements; its keys are refused instead.
const RESERVED_FOR_THE_ENGINE: usize = 1024;

/// What the viewer of an attach hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TerminalEvent {
    /// Bytes tmux drew.
    Output(Vec<u8>),
    /// The last event: why it ended.
    Ended(TerminalEnd),
}

/// The attaches open on this server's workers, by attach id.
#[derive(Clone, Default)]
pub struct Terminals {
    open: Arc<Mutex<HashMap<Uuid, Slot>>>,
}

struct Slot {
    worker_id: String,
    read_only: bool,
    /// The worker said `TerminalOpened`.
    opened: bool,
    /// Output handed to the relay and not yet taken by the viewer.
    in_flight: u64,
    /// Output the viewer took that is not yet given back to the worker.
    ungranted: u64,
    /// Told once when the worker answers the open.
    opened_tx: Option<tokio::sync::oneshot::Sender<Result<(), TerminalEnd>>>,
    events: mpsc::UnboundedSender<TerminalEvent>,
}

impl Terminals {
    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Slot>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The worker attached `attach_id`. Ignored from a worker not asked.
    pub fn opened(&self, worker_id: &str, attach_id: Uuid) {
        let mut open = self.open();
        if let Some(slot) = open
            .get_mut(&attach_id)
            .filter(|s| s.worker_id == worker_id)
        {
            slot.opened = true;
            if let Some(tx) = slot.opened_tx.take() {
                let _ = tx.send(Ok(()));
            }
        }
    }

    /// Output of `attach_id` from `worker_id`, handed to its relay. A
    /// worker sending past the window, or before it said it attached, has
    /// the attach ended (and is told to close it).
    pub fn output(&self, engine: &Engine, worker_id: &str, attach_id: Uuid, data: Vec<u8>) {
        let mut open = self.open();
        let Some(slot) = open
            .get_mut(&attach_id)
            .filter(|s| s.worker_id == worker_id)
        else {
            // The viewer left meanwhile: its close is on its way.
            return;
        };
        let len = data.len() as u64;
        if !slot.opened || slot.in_flight + len > WINDOW {
            let slot = open.remove(&attach_id).expect("found above");
            drop(open);
            tracing::warn!(%attach_id, worker_id, "a worker sent terminal output past its window");
            let _ = slot.events.send(TerminalEvent::Ended(TerminalEnd::new(
                TerminalEndReason::Error,
                "the worker sent more output than the window allows",
            )));
            engine
                .workers
                .send(worker_id, ToWorker::TerminalClose { attach_id });
            return;
        }
        slot.in_flight += len;
        let _ = slot.events.send(TerminalEvent::Output(data));
    }

    /// The worker ended `attach_id` (or could not attach it).
    pub fn closed(&self, worker_id: &str, attach_id: Uuid, end: TerminalEnd) {
        let mut open = self.open();
        if open
            .get(&attach_id)
            .is_none_or(|s| s.worker_id != worker_id)
        {
            return;
        }
        let mut slot = open.remove(&attach_id).expect("found above");
        drop(open);
        match slot.opened_tx.take() {
            Some(tx) => {
                let _ = tx.send(Err(end));
            }
            None => {
                let _ = slot.events.send(TerminalEvent::Ended(end));
            }
        }
    }

    /// Ends every attach on `worker_id`'s stream (it ended).
    pub fn worker_gone(&self, worker_id: &str) {
        let gone: Vec<Slot> = {
            let mut open = self.open();
            let ids: Vec<Uuid> = open
                .iter()
                .filter(|(_, s)| s.worker_id == worker_id)
                .map(|(id, _)| *id)
                .collect();
            ids.into_iter().filter_map(|id| open.remove(&id)).collect()
        };
        for mut slot in gone {
            let end = TerminalEnd::new(
                TerminalEndReason::WorkerDisconnected,
                format!(
                    "worker {} disconnected from this server",
                    quoted(&slot.worker_id)
                ),
            );
            match slot.opened_tx.take() {
                Some(tx) => {
                    let _ = tx.send(Err(end));
                }
                None => {
                    let _ = slot.events.send(TerminalEvent::Ended(end));
                }
            }
        }
    }

    /// The viewer took `bytes` of output: given back to the worker a
    /// [`GRANT_STEP`] at a time (kept for later if its stream is full).
    fn passed_on(&self, engine: &Engine, attach_id: Uuid, bytes: u64) {
        let grant = {
            let mut open = self.open();
            let Some(slot) = open.get_mut(&attach_id) else {
                return;
            };
            slot.in_flight = slot.in_flight.saturating_sub(bytes);
            slot.ungranted += bytes;
            if slot.ungranted < GRANT_STEP {
                return;
            }
            (slot.worker_id.clone(), std::mem::take(&mut slot.ungranted))
        };
        let (worker_id, bytes) = grant;
        if !engine
            .workers
            .send(&worker_id, ToWorker::TerminalGrant { attach_id, bytes })
            && let Some(slot) = self.open().get_mut(&attach_id)
        {
            slot.ungranted += bytes;
        }
    }

    /// Sends keys to `attach_id`. NOT_FOUND when it is not open here,
    /// FAILED_PRECONDITION for a read-only attach or a worker whose stream
    /// is gone or full.
    pub fn input(&self, engine: &Engine, attach_id: Uuid, data: Vec<u8>) -> StoreResult<()> {
        let worker_id = {
            let open = self.open();
            let slot = open.get(&attach_id).ok_or_else(|| not_open(attach_id))?;
            if slot.read_only {
                return Err(StoreError::FailedPrecondition(format!(
                    "attach {attach_id} is read-only: its input is dropped"
                )));
            }
            slot.worker_id.clone()
        };
        if data.is_empty() {
            return Ok(());
        }
        send_keys(
            engine,
            &worker_id,
            ToWorker::TerminalInput { attach_id, data },
        )
    }

    /// Resizes `attach_id`'s terminal. NOT_FOUND when it is not open here.
    pub fn resize(&self, engine: &Engine, attach_id: Uuid, size: TerminalSize) -> StoreResult<()> {
        let worker_id = self
            .open()
            .get(&attach_id)
            .map(|s| s.worker_id.clone())
            .ok_or_else(|| not_open(attach_id))?;
        send_keys(
            engine,
            &worker_id,
            ToWorker::TerminalResize { attach_id, size },
        )
    }

    /// The viewer left: the worker detaches.
    fn viewer_left(&self, engine: &Engine, attach_id: Uuid) {
        let slot = self.open().remove(&attach_id);
        if let Some(slot) = slot {
            engine
                .workers
                .send(&slot.worker_id, ToWorker::TerminalClose { attach_id });
        }
    }

    /// Attaches open now (for tests and metrics).
    pub fn count(&self) -> usize {
        self.open().len()
    }
}

fn not_open(attach_id: Uuid) -> StoreError {
    StoreError::NotFound {
        kind: "attach",
        id: format!(
            "{attach_id} (attach_id; attaches live on the server that opened them, until their \
             output stream closes)"
        ),
    }
}

fn send(engine: &Engine, worker_id: &str, message: ToWorker) -> StoreResult<()> {
    if engine.workers.send(worker_id, message) {
        Ok(())
    } else {
        Err(StoreError::FailedPrecondition(format!(
            "worker {} left, or its stream is full: try again",
            quoted(worker_id)
        )))
    }
}

/// Sends a viewer's keys or size, leaving room for the engine's messages.
fn send_keys(engine: &Engine, worker_id: &str, message: ToWorker) -> StoreResult<()> {
    if engine
        .workers
        .send_leaving_room(worker_id, RESERVED_FOR_THE_ENGINE, message)
    {
        Ok(())
    } else {
        Err(StoreError::FailedPrecondition(format!(
            "worker {} left, or its stream is too full to take keys now: try again",
            quoted(worker_id)
        )))
    }
}

/// An open attach: its events until it ends; dropping it detaches.
pub struct Attached {
    /// Its id.
    pub attach_id: Uuid,
    /// The worker the run lives on.
    pub worker_id: String,
    /// The run's tmux session.
    pub tmux_session_name: String,
    /// Whether keys are dropped.
    pub read_only: bool,
    events: mpsc::UnboundedReceiver<TerminalEvent>,
    /// Bytes of the last output handed out, given back on the next call.
    handed_out: u64,
    ended: bool,
    engine: Engine,
}

impl Attached {
    /// The next event; `None` after [`TerminalEvent::Ended`]. Calling it
    /// again means the previous output was passed on: its bytes go back to
    /// the window.
    pub async fn next(&mut self) -> Option<TerminalEvent> {
        if self.handed_out > 0 {
            let bytes = std::mem::take(&mut self.handed_out);
            self.engine
                .terminals
                .passed_on(&self.engine, self.attach_id, bytes);
        }
        if self.ended {
            return None;
        }
        let event = self.events.recv().await.unwrap_or_else(|| {
            TerminalEvent::Ended(TerminalEnd::new(
                TerminalEndReason::Error,
                "the relay ended without a reason",
            ))
        });
        match &event {
            TerminalEvent::Output(data) => self.handed_out = data.len() as u64,
            TerminalEvent::Ended(_) => self.ended = true,
        }
        Some(event)
    }

    /// Sends keys; dropped for a read-only attach.
    pub fn input(&self, data: Vec<u8>) -> StoreResult<()> {
        if self.read_only || data.is_empty() {
            return Ok(());
        }
        send_keys(
            &self.engine,
            &self.worker_id,
            ToWorker::TerminalInput {
                attach_id: self.attach_id,
                data,
            },
        )
    }

    /// Resizes the terminal.
    pub fn resize(&self, size: TerminalSize) -> StoreResult<()> {
        send_keys(
            &self.engine,
            &self.worker_id,
            ToWorker::TerminalResize {
                attach_id: self.attach_id,
                size,
            },
        )
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        self.engine
            .terminals
            .viewer_left(&self.engine, self.attach_id);
    }
}

impl Engine {
    /// Attaches to the terminal of running execution `execution_id` on the
    /// worker that holds it, once that worker says it attached. NOT_FOUND
    /// for an unknown execution; FAILED_PRECONDITION for a run without a
    /// tmux session, not running, whose worker is not connected here (or
    /// is connected to another server), or that the worker could not
    /// attach (with its reason).
    pub async fn attach_terminal(
        &self,
        execution_id: Uuid,
        read_only: bool,
        size: TerminalSize,
    ) -> StoreResult<Attached> {
        let execution = self.store.executions().get(execution_id).await?;
        let Some(session) = execution.tmux_session_name.clone() else {
            return Err(StoreError::FailedPrecondition(format!(
                "execution {execution_id} has no terminal to attach to: only AI agent runs live \
                 in a tmux session (template runs are plain processes; read their output with \
                 StreamLogs)"
            )));
        };
        match execution.status {
            ExecutionStatus::Running | ExecutionStatus::Cancelling => {}
            ExecutionStatus::Queued => {
                return Err(StoreError::FailedPrecondition(format!(
                    "execution {execution_id} has not started yet: attach once it is running"
                )));
            }
            finished => {
                return Err(StoreError::FailedPrecondition(format!(
                    "execution {execution_id} has finished ({}): its terminal is gone; read \
                     its output with StreamLogs",
                    sea_orm::ActiveEnum::to_value(&finished)
                )));
            }
        }
        let (Some(worker_id), Some(token)) = (
            execution.worker_id.clone(),
            self.store.attempt_token(&execution),
        ) else {
            return Err(StoreError::FailedPrecondition(format!(
                "execution {execution_id} is not on a worker yet: attach once it is running"
            )));
        };
        if !self.workers.is_connected(&worker_id) {
            let alive_within = super::alive_within(self.settings().heartbeat_interval);
            let elsewhere = self
                .store
                .workers()
                .connected_elsewhere(alive_within)
                .await?
                .into_iter()
                .any(|w| w.registered.worker_id == worker_id);
            return Err(StoreError::FailedPrecondition(if elsewhere {
                format!(
                    "the worker of execution {execution_id}, {}, is connected to another \
                     server over this database: attach through that server",
                    quoted(&worker_id)
                )
            } else {
                format!(
                    "the worker of execution {execution_id}, {}, is not connected: its \
                     terminal cannot be reached until it reconnects",
                    quoted(&worker_id)
                )
            }));
        }
        let attach_id = Uuid::new_v4();
        let (events_tx, events) = mpsc::unbounded_channel();
        let (opened_tx, opened_rx) = tokio::sync::oneshot::channel();
        self.terminals.open().insert(
            attach_id,
            Slot {
                worker_id: worker_id.clone(),
                read_only,
                opened: false,
                in_flight: 0,
                ungranted: 0,
                opened_tx: Some(opened_tx),
                events: events_tx,
            },
        );
        // From here on, dropping it detaches (and forgets the slot).
        let attached = Attached {
            attach_id,
            worker_id: worker_id.clone(),
            tmux_session_name: session.clone(),
            read_only,
            events,
            handed_out: 0,
            ended: false,
            engine: self.clone(),
        };
        send(
            self,
            &worker_id,
            ToWorker::TerminalOpen(TerminalOpen {
                attach_id,
                execution_id,
                attempt_token: token,
                tmux_session_name: session,
                read_only,
                size,
                window: WINDOW,
            }),
        )?;
        match tokio::time::timeout(OPEN_TIMEOUT, opened_rx).await {
            Ok(Ok(Ok(()))) => Ok(attached),
            Ok(Ok(Err(end))) => Err(StoreError::FailedPrecondition(format!(
                "worker {} could not attach to execution {execution_id}: {}",
                quoted(&worker_id),
                end.message
            ))),
            Ok(Err(_)) => Err(StoreError::FailedPrecondition(format!(
                "worker {} left before it attached",
                quoted(&worker_id)
            ))),
            Err(_) => Err(StoreError::FailedPrecondition(format!(
                "worker {} did not attach within {} s",
                quoted(&worker_id),
                OPEN_TIMEOUT.as_secs()
            ))),
        }
    }
}
