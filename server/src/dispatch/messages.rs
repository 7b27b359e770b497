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
            + self.mcp_token.as_ref().map_or(0, String::len);
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
}

/// What goes down a worker's stream: messages, or the error that ends it.
pub type Outgoing = Result<ToWorker, StoreError>;
