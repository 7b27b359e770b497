//! The worker's link to the server: one `WorkerService.Connect` stream at a
//! time. Each stream starts with `Register` (the event loop supplies the
//! runs held) and waits for `Registered` (30 s at most, else it
//! reconnects); any other message before it breaks the stream. A broken or
//! refused stream is retried after a [`Backoff`] delay, reset by a
//! successful `Registered`. While registered, the link ticks the heartbeat
//! (every `heartbeat_interval`). It says what happened as [`LinkEvent`]s;
//! what is sent on a registered stream is the ledger's
//! ([`crate::ledger`]).

use std::time::Duration;

use amon_proto::v1::{
    ConnectResponse, Register, Registered, RunningExecution, connect_request, connect_response,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, Interval, MissedTickBehavior, sleep_until};
use tokio_stream::StreamExt;
use tonic::Streaming;
use tracing::{debug, warn};

use crate::config::WorkerOptions;
use crate::transport::{Backoff, BearerAuth, Dial, Outbound, explain_status, open, request};

/// Longest wait for `Registered` after the stream opened.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a leaving worker waits for the server to close the stream.
const CLOSE_WAIT: Duration = Duration::from_millis(500);

/// What happened on the link.
// Short-lived (one loop turn): its size does not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum LinkEvent {
    /// Time to (re)connect: answer with [`Link::connect`].
    ConnectDue,
    /// The server answered `Register`; the stream sends through `Outbound`.
    Registered(Registered, Outbound),
    /// A message on the registered stream (a second `Registered` included).
    Message(connect_response::Message),
    /// Time for a heartbeat.
    Heartbeat,
    /// The stream is gone (logged, the next attempt scheduled): nothing sent
    /// on it counts any more.
    Down,
}

/// See the module documentation.
pub(crate) struct Link {
    /// The servers it may use (over one database), the one in use first
    /// after each move.
    dials: Vec<Dial>,
    /// Index in `dials` of the server in use.
    current: usize,
    auth: BearerAuth,
    /// Who the worker is: `Register` but for its `running` list.
    register: Register,
    heartbeat_period: Duration,
    backoff: Backoff,
    state: State,
}

enum State {
    /// No stream; the next attempt is at `retry_at`.
    Down { retry_at: Instant },
    /// Opening the stream (`Register` is already queued on `tx`).
    Connecting {
        tx: Outbound,
        pending: JoinHandle<anyhow::Result<Streaming<ConnectResponse>>>,
    },
    /// The stream is open.
    Up(Box<Session>),
}

struct Session {
    tx: Outbound,
    inbound: Streaming<ConnectResponse>,
    /// `Registered` received.
    registered: bool,
    register_deadline: Instant,
    heartbeat: Interval,
}

// Short-lived (one loop turn): its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Input {
    Retry,
    Opened(anyhow::Result<Streaming<ConnectResponse>>),
    Message(Option<Result<ConnectResponse, tonic::Status>>),
    Heartbeat,
    RegisterTimeout,
}

impl Link {
    /// A link that connects at once. Fails on an invalid server URL or
    /// token.
    pub fn new(options: &WorkerOptions, heartbeat_period: Duration) -> anyhow::Result<Self> {
        Ok(Self {
            dials: std::iter::once(&options.server)
                .chain(&options.other_servers)
                .map(|server| Dial::new(server, &options.tls, options.in_process.clone()))
                .collect::<anyhow::Result<_>>()?,
            current: 0,
            auth: BearerAuth::new(options.token.as_deref())?,
            register: Register {
                worker_id: options.worker_id.clone(),
                hostname: options.hostname.clone(),
                version: options.version.clone(),
                slots: i32::try_from(options.slots).unwrap_or(i32::MAX),
                agent_slugs: options.agent_slugs.clone(),
                labels: options.labels.clone(),
                running: Vec::new(),
                // New for each worker process, the same on its reconnects:
                // how the server tells a reconnect from a second worker
                // that took the same id.
                instance_id: uuid::Uuid::new_v4().to_string(),
                worktree_task_ids: Vec::new(),
            },
            heartbeat_period,
            backoff: Backoff::default(),
            state: State::Down {
                retry_at: Instant::now(),
            },
        })
    }

    /// The next thing that happens on the link (cancel-safe).
    pub async fn next(&mut self) -> LinkEvent {
        loop {
            let input = self.input().await;
            if let Some(event) = self.on_input(input) {
                return event;
            }
        }
    }

    /// Opens a stream, registering with the runs the worker holds.
    pub fn connect(&mut self, running: Vec<RunningExecution>, worktree_task_ids: Vec<String>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let register = Register {
            running,
            worktree_task_ids,
            ..self.register.clone()
        };
        debug!(running = register.running.len(), "connecting");
        let _ = tx.send(request(connect_request::Message::Register(register)));
        let dial = self.dials[self.current].clone();
        let pending = tokio::spawn(open(dial, self.auth.clone(), rx));
        self.state = State::Connecting { tx, pending };
    }

    /// Drops the stream (or the attempt to open one) and reconnects after
    /// the backoff: what was queued on it is not read any more.
    pub fn drop_stream(&mut self, why: &str) {
        if !matches!(self.state, State::Down { .. }) {
            let _ = self.lose(why);
        }
    }

    /// The server changed the heartbeat interval.
    pub fn set_heartbeat_period(&mut self, period: Duration) {
        if period == self.heartbeat_period {
            return;
        }
        self.heartbeat_period = period;
        if let State::Up(session) = &mut self.state {
            session.heartbeat = heartbeat_interval(period);
        }
    }

    /// Leaves: ends the request stream and gives the server a moment to
    /// read what is queued. (The stream ends once every sender is dropped:
    /// the ledger's too.)
    pub async fn close(&mut self) {
        let state = std::mem::replace(
            &mut self.state,
            State::Down {
                retry_at: Instant::now(),
            },
        );
        match state {
            State::Up(session) => {
                let Session {
                    tx, mut inbound, ..
                } = *session;
                drop(tx);
                let _ = tokio::time::timeout(CLOSE_WAIT, async {
                    while let Some(Ok(_)) = inbound.next().await {}
                })
                .await;
            }
            State::Connecting { pending, .. } => pending.abort(),
            State::Down { .. } => {}
        }
    }

    /// The next raw input (cancel-safe).
    async fn input(&mut self) -> Input {
        match &mut self.state {
            State::Down { retry_at } => {
                sleep_until(*retry_at).await;
                Input::Retry
            }
            State::Connecting { pending, .. } => Input::Opened(match pending.await {
                Ok(result) => result,
                Err(join) => Err(anyhow::anyhow!("connection task failed: {join}")),
            }),
            State::Up(session) => tokio::select! {
                message = session.inbound.next() => Input::Message(message),
                _ = session.heartbeat.tick(), if session.registered => Input::Heartbeat,
                _ = sleep_until(session.register_deadline), if !session.registered => {
                    Input::RegisterTimeout
                }
            },
        }
    }

    fn on_input(&mut self, input: Input) -> Option<LinkEvent> {
        match input {
            Input::Retry => Some(LinkEvent::ConnectDue),
            Input::Opened(Ok(inbound)) => {
                self.opened(inbound);
                None
            }
            Input::Opened(Err(e)) => Some(self.lose(&format!("{e:#}"))),
            Input::Message(Some(Ok(response))) => self.on_response(response),
            Input::Message(Some(Err(status))) => {
                Some(self.lose(&format!("stream error: {}", explain_status(&status))))
            }
            Input::Message(None) => Some(self.lose("the server closed the stream")),
            Input::Heartbeat => Some(LinkEvent::Heartbeat),
            Input::RegisterTimeout => Some(self.lose("no Registered from the server in time")),
        }
    }

    fn opened(&mut self, inbound: Streaming<ConnectResponse>) {
        let State::Connecting { tx, .. } = std::mem::replace(
            &mut self.state,
            State::Down {
                retry_at: Instant::now(),
            },
        ) else {
            unreachable!("Opened comes from Connecting")
        };
        debug!("stream open; waiting for Registered");
        self.state = State::Up(Box::new(Session {
            tx,
            inbound,
            registered: false,
            register_deadline: Instant::now() + REGISTER_TIMEOUT,
            heartbeat: heartbeat_interval(self.heartbeat_period),
        }));
    }

    fn on_response(&mut self, response: ConnectResponse) -> Option<LinkEvent> {
        let Some(message) = response.message else {
            debug!("empty message from the server");
            return None;
        };
        let State::Up(session) = &mut self.state else {
            unreachable!("messages come from an open stream")
        };
        match message {
            connect_response::Message::Registered(registered) if !session.registered => {
                session.registered = true;
                self.backoff.reset();
                Some(LinkEvent::Registered(registered, session.tx.clone()))
            }
            // Before Registered, only Registered makes sense.
            _ if !session.registered => {
                Some(self.lose("the server spoke before answering Register"))
            }
            message => Some(LinkEvent::Message(message)),
        }
    }

    /// The stream is gone (or never came): retry later.
    fn lose(&mut self, why: &str) -> LinkEvent {
        // With several servers, the next one is tried; a full round of
        // failures backs off as one server alone does.
        let delay = if self.dials.len() > 1 && (self.current + 1) < self.dials.len() {
            Duration::ZERO
        } else {
            self.backoff.next_delay()
        };
        let server = self.dials[self.current].url().to_string();
        self.current = (self.current + 1) % self.dials.len();
        warn!(reason = why, %server, retry_in = ?delay, "not connected to the server");
        if let State::Connecting { pending, .. } = &self.state {
            pending.abort();
        }
        self.state = State::Down {
            retry_at: Instant::now() + delay,
        };
        LinkEvent::Down
    }
}

fn heartbeat_interval(period: Duration) -> Interval {
    let mut interval = tokio::time::interval_at(Instant::now() + period, period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    interval
}
