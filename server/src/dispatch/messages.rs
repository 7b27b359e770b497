//! What a worker and the server say on the worker's stream, in the engine's
//! own terms. `grpc::worker_service` decodes the wire messages into
//! [`FromWorker`] (ids parsed, enums checked) and encodes [`ToWorker`] back,
//! so the engine never sees a protobuf type and the wire never reaches past
//! the gRPC layer.

use std::{collections::BTreeMap, time::Duration};

use serde_json::Value;
use uuid::Uuid;

use crate::{
    entity::{
        agents,
        enums::{ExecutionStatus, InteractionMode},
    },
    store::{
        StoreError,
        discovery::{DiscoverySource, Found},
        worker_config::WorkerSettings,
        worktrees::WorktreeSummary,
    },
};

/// A worker's introduction, first on every stream.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Stable id (trimmed, not empty).
    pub worker_id: String,
    /// Host name.
    pub hostname: String,
    /// Software version.
    pub version: String,
    /// Most runs at once (not negative).
    pub slots: i32,
    /// Agents it runs (empty: any).
    pub agent_slugs: Vec<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Runs it still holds from before: (execution, attempt token).
    pub running: Vec<(Uuid, String)>,
    /// Random id of the worker process (empty from older workers).
    pub instance_id: String,
    /// Tasks whose git worktrees the worker holds.
    pub worktree_task_ids: Vec<String>,
}

/// A report about one attempt of a run: which run, and the token it was
/// assigned with.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The execution.
    pub execution_id: Uuid,
    /// The attempt token from its assignment.
    pub token: String,
}

/// How a worker says a run ended.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Which run.
    pub attempt: Attempt,
    /// Succeeded, failed, timed out or cancelled.
    pub status: ExecutionStatus,
    /// Exit code, if the child exited.
    pub exit_code: Option<i32>,
    /// One-line error.
    pub error: Option<String>,
    /// Bytes of output the run wrote in all (its log's expected size).
    pub log_byte_size: i64,
    /// What the run changed in its task's git worktree.
    pub worktree: Option<WorktreeSummary>,
}

/// A message from a worker after its registration.
#[derive(Debug, Clone)]
pub enum FromWorker {
    /// A second registration on the same stream (refused).
    Register,
    /// More free slots.
    SlotGrant {
        /// How many.
        count: usize,
    },
    /// A run started.
    Started {
        /// Which run.
        attempt: Attempt,
        /// The child's process id.
        pid: i32,
        /// Its tmux session, for AI agents.
        tmux_session_name: Option<String>,
    },
    /// Output of a run, at its byte offset in the execution's log.
    LogChunk {
        /// Which run.
        attempt: Attempt,
        /// Offset of the first byte.
        offset: u64,
        /// The bytes.
        data: Vec<u8>,
    },
    /// The worker is alive, with the runs it holds.
    Heartbeat {
        /// Executions it runs.
        running: Vec<Uuid>,
        /// Free-form details (a JSON object).
        metadata: Value,
    },
    /// A run ended.
    Finished(Finished),
    /// The agent's session id became known.
    SessionDetected {
        /// Which run.
        attempt: Attempt,
        /// The session id.
        session_ref: String,
    },
    /// What a running agent is going through now (`None`: nothing worth
    /// saying any more).
    RunStatus {
        /// Which run.
        attempt: Attempt,
        /// The status.
        status: Option<String>,
    },
    /// The worker takes no new work.
    Drain {
        /// Why.
        reason: String,
    },
    /// How far a discovery scan is.
    DiscoverProgress {
        /// The request it answers.
        request_id: Uuid,
        /// The scan's progress.
        progress: DiscoverProgress,
    },
    /// The outcome of a discovery scan: what it found, or why it could not
    /// scan at all.
    DiscoverResult {
        /// The request it answers.
        request_id: Uuid,
        /// What it found.
        result: Result<Found, String>,
    },
    /// The answer to a worktree request: what was done, or why nothing was.
    WorktreeResult {
        /// The request it answers.
        request_id: Uuid,
        /// What the worker did.
        result: Result<WorktreeDone, String>,
    },
    /// A terminal asked with [`ToWorker::TerminalOpen`] is attached.
    TerminalOpened {
        /// The attach.
        attach_id: Uuid,
    },
    /// Bytes an attached terminal drew.
    TerminalOutput {
        /// The attach.
        attach_id: Uuid,
        /// The bytes.
        data: Vec<u8>,
    },
    /// A terminal ended, or could not be attached.
    TerminalClosed {
        /// The attach.
        attach_id: Uuid,
        /// Why.
        end: TerminalEnd,
    },
}

/// Something asked of a task's git worktree on the worker that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorktreeAction {
    /// The unified diff of a recorded run.
    Diff {
        /// The base repository.
        repository: String,
        /// The run's base.
        base_commit: String,
        /// The run's snapshot tree.
        snapshot_tree: String,
        /// Most bytes to send back.
        max_bytes: u64,
    },
    /// Remove a task's worktree.
    Finish {
        /// The task.
        task_id: Uuid,
        /// The base repository.
        repository: String,
        /// The task's branch.
        branch: String,
        /// Delete the branch too.
        remove_branch: bool,
        /// Even with uncommitted changes.
        force: bool,
    },
}

/// What a worker did for a worktree request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorktreeDone {
    /// Diff: the bytes, cut at the request's `max_bytes`.
    pub diff: Vec<u8>,
    /// Diff: it was cut.
    pub truncated: bool,
    /// Finish: the worktree was removed.
    pub worktree_removed: bool,
    /// Finish: the branch was deleted.
    pub branch_removed: bool,
}

/// The task's git worktree an assigned run works in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorktreeAssignment {
    /// The task's branch (`amon/<short-id>-<slug>`).
    pub branch: String,
    /// What to base a new worktree on; empty: `HEAD`.
    pub base_ref: String,
}

/// A terminal's size in character cells (each 1 to [`MAX_TERMINAL_CELLS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminalSize {
    /// Rows.
    pub rows: u16,
    /// Columns.
    pub cols: u16,
}

/// Most rows or columns of a terminal.
pub const MAX_TERMINAL_CELLS: u16 = 1000;

impl Default for TerminalSize {
    /// A classic terminal, for a viewer that gave no size.
    fn default() -> Self {
        Self { rows: 24, cols: 80 }
    }
}

/// Why an attach ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TerminalEndReason {
    /// The run ended (its tmux session is gone).
    RunEnded,
    /// The tmux client ended while the run goes on.
    Detached,
    /// The worker's stream ended.
    WorkerDisconnected,
    /// The worker could not attach, or the relay failed.
    Error,
}

/// How an attach ended, for the viewer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalEnd {
    /// Why.
    pub reason: TerminalEndReason,
    /// In words.
    pub message: String,
}

impl TerminalEnd {
    /// An end of `reason`, said as `message`.
    pub fn new(reason: TerminalEndReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

/// A terminal to attach on a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalOpen {
    /// Id of the attach.
    pub attach_id: Uuid,
    /// The run.
    pub execution_id: Uuid,
    /// Its attempt token.
    pub attempt_token: String,
    /// Its tmux session.
    pub tmux_session_name: String,
    /// `tmux attach -r`.
    pub read_only: bool,
    /// The viewer's size.
    pub size: TerminalSize,
    /// Output bytes the worker may send before the first grant.
    pub window: u64,
}

/// How far a worker's discovery scan is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiscoverProgress {
    /// Binaries looked at so far.
    pub done: i32,
    /// Binaries to look at in all.
    pub total: i32,
    /// The binary looked at last.
    pub binary: String,
}

/// A discovery scan asked of a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscoverRequest {
    /// Binaries to look at; empty: all of PATH.
    pub binaries: Vec<String>,
    /// Sources to use (never empty).
    pub sources: Vec<DiscoverySource>,
    /// Longest the scan may take.
    pub timeout: Duration,
    /// Start the configured stdio MCP servers and ask their tools.
    pub mcp_tools: bool,
    /// Send each tool's `--help` output (an AI agent will read it).
    pub help_texts: bool,
}

/// A run kept after a reconnect.
#[derive(Debug, Clone)]
pub struct Resumed {
    /// The execution.
    pub execution_id: Uuid,
    /// Its attempt token.
    pub attempt_token: String,
    /// Bytes stored; the worker resends from here.
    pub acknowledged_offset: u64,
}

/// Everything a worker needs to start a run.
#[derive(Debug, Clone)]
pub struct Assignment {
    /// The execution.
    pub execution_id: Uuid,
    /// Token of this attempt.
    pub attempt_token: String,
    /// Its task.
    pub task_id: Uuid,
    /// The agent to run.
    pub agent: agents::Model,
    /// Template or prompt.
    pub mode: InteractionMode,
    /// Template mode: binary, base args, rendered tokens. Prompt mode: the
    /// CLI and its base args.
    pub argv: Vec<String>,
    /// Prompt mode: the rendered prompt.
    pub prompt: Option<String>,
    /// Working directory; empty means the worker's own.
    pub working_dir: String,
    /// Variables set on top of the allowlisted ones.
    pub env: BTreeMap<String, String>,
    /// Names of the worker's variables the child may see.
    pub env_allowlist: Vec<String>,
    /// Time the run may take.
    pub timeout: Duration,
    /// Bytes of output kept.
    pub max_output_bytes: i64,
    /// Attempt number (0 for the first).
    pub attempt: i32,
    /// Session to resume (continuations).
    pub resume_session_ref: Option<String>,
    /// tmux session to run in (AI agents).
    pub tmux_session_name: Option<String>,
    /// Offset in the log where this attempt's output starts.
    pub log_offset: u64,
    /// MCP server the agent is configured to reach.
    pub mcp_server_url: Option<String>,
    /// The run's MCP bearer token (with `mcp_server_url`).
    pub mcp_token: Option<String>,
    /// Run in the task's git worktree of `working_dir`.
    pub worktree: Option<WorktreeAssignment>,
}

/// Room past a run's output cap for the worker's one-line truncation marker.
pub const TRUNCATION_MARKER_ROOM: u64 = 256;

impl Assignment {
    /// Where this attempt's output must end in the log: its first byte, its
    /// cap, and the worker's truncation marker.
    pub fn output_limit(&self) -> u64 {
        self.log_offset
            .saturating_add(u64::try_from(self.max_output_bytes).unwrap_or(0))
            .saturating_add(TRUNCATION_MARKER_ROOM)
    }

    /// About how many bytes the assignment takes on the wire: its text, and
    /// room for the numbers and field tags around it.
    pub fn approximate_size(&self) -> usize {
        let agent = &self.agent;
        let strings = |value: &serde_json::Value| value.to_string().len();
        let text = self.argv.iter().map(String::len).sum::<usize>()
            + self.prompt.as_ref().map_or(0, String::len)
            + self.working_dir.len()
            + self
                .env
                .iter()
                .map(|(k, v)| k.len() + v.len() + 8)
                .sum::<usize>()
            + self.env_allowlist.iter().map(String::len).sum::<usize>()
            + strings(&agent.base_args)
            + strings(&agent.env_allowlist)
            + agent.session_config.as_ref().map_or(0, strings)
            + strings(&agent.metadata)
            + agent.name.len()
            + agent.binary_path.len()
            + agent.working_dir.as_ref().map_or(0, String::len)
            + self.mcp_server_url.as_ref().map_or(0, String::len)
            + self.mcp_token.as_ref().map_or(0, String::len)
            + self
                .worktree
                .as_ref()
                .map_or(0, |w| w.branch.len() + w.base_ref.len());
        text + 8 * (self.argv.len() + self.env.len() + self.env_allowlist.len()) + 1024
    }
}

/// A message to a worker.
#[derive(Debug, Clone)]
pub enum ToWorker {
    /// The answer to its registration.
    Registered {
        /// The id it is known by.
        worker_id: String,
        /// Tuning in force.
        settings: WorkerSettings,
        /// Runs it keeps.
        resumed: Vec<Resumed>,
        /// Of the tasks whose worktrees it holds, those that are gone.
        gone_worktree_task_ids: Vec<String>,
    },
    /// A run to start.
    Assign(Box<Assignment>),
    /// Output stored up to an offset.
    LogAck {
        /// The execution.
        execution_id: Uuid,
        /// The attempt whose output it is.
        attempt_token: String,
        /// Bytes stored.
        offset: u64,
    },
    /// A finish report was applied, or refused.
    FinishedAck {
        /// The execution.
        execution_id: Uuid,
        /// The attempt reported on.
        attempt_token: String,
        /// Why it was refused; `None` when the result was recorded.
        refused: Option<String>,
    },
    /// A heartbeat arrived.
    HeartbeatAck,
    /// Stop a run.
    Cancel {
        /// The execution.
        execution_id: Uuid,
        /// Its attempt token.
        attempt_token: String,
        /// Why.
        reason: String,
        /// The run is no longer this worker's: kill it and forget it.
        forget: bool,
    },
    /// New tuning values.
    Config(WorkerSettings),
    /// Scan the machine for tools.
    Discover {
        /// Quoted by the worker's answers.
        request_id: Uuid,
        /// What to scan.
        request: DiscoverRequest,
    },
    /// Show or finish a task's git worktree.
    Worktree {
        /// Quoted by the worker's answer.
        request_id: Uuid,
        /// What to do.
        action: WorktreeAction,
    },
    /// Attach a terminal to a run's tmux session.
    TerminalOpen(TerminalOpen),
    /// Keys for an attached terminal.
    TerminalInput {
        /// The attach.
        attach_id: Uuid,
        /// The keys.
        data: Vec<u8>,
    },
    /// An attached terminal's new size.
    TerminalResize {
        /// The attach.
        attach_id: Uuid,
        /// The size.
        size: TerminalSize,
    },
    /// More output an attached terminal may send.
    TerminalGrant {
        /// The attach.
        attach_id: Uuid,
        /// Bytes given back to its window.
        bytes: u64,
    },
    /// Detach a terminal; the run goes on.
    TerminalClose {
        /// The attach.
        attach_id: Uuid,
    },
}

/// What goes down a worker's stream: messages, or the error that ends it.
pub type Outgoing = Result<ToWorker, StoreError>;
