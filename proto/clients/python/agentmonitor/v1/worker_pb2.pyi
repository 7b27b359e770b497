import datetime

from agentmonitor.v1 import agent_pb2 as _agent_pb2
from agentmonitor.v1 import common_pb2 as _common_pb2
from agentmonitor.v1 import execution_pb2 as _execution_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Worker(_message.Message):
    __slots__ = ("worker_id", "hostname", "version", "connected", "draining", "slots", "labels", "running_execution_ids", "last_seen_at", "current_executions", "metadata")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    RUNNING_EXECUTION_IDS_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_AT_FIELD_NUMBER: _ClassVar[int]
    CURRENT_EXECUTIONS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    hostname: str
    version: str
    connected: bool
    draining: bool
    slots: int
    labels: _containers.ScalarMap[str, str]
    running_execution_ids: _containers.RepeatedScalarFieldContainer[str]
    last_seen_at: _timestamp_pb2.Timestamp
    current_executions: int
    metadata: _struct_pb2.Struct
    def __init__(self, worker_id: _Optional[str] = ..., hostname: _Optional[str] = ..., version: _Optional[str] = ..., connected: _Optional[bool] = ..., draining: _Optional[bool] = ..., slots: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ..., running_execution_ids: _Optional[_Iterable[str]] = ..., last_seen_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., current_executions: _Optional[int] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class WorkerConfig(_message.Message):
    __slots__ = ("stale_window", "heartbeat_interval", "cancel_grace", "log_chunk_bytes")
    STALE_WINDOW_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    CANCEL_GRACE_FIELD_NUMBER: _ClassVar[int]
    LOG_CHUNK_BYTES_FIELD_NUMBER: _ClassVar[int]
    stale_window: _duration_pb2.Duration
    heartbeat_interval: _duration_pb2.Duration
    cancel_grace: _duration_pb2.Duration
    log_chunk_bytes: int
    def __init__(self, stale_window: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., heartbeat_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., cancel_grace: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., log_chunk_bytes: _Optional[int] = ...) -> None: ...

class ListWorkersRequest(_message.Message):
    __slots__ = ("connected_only",)
    CONNECTED_ONLY_FIELD_NUMBER: _ClassVar[int]
    connected_only: bool
    def __init__(self, connected_only: _Optional[bool] = ...) -> None: ...

class ListWorkersResponse(_message.Message):
    __slots__ = ("workers",)
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    workers: _containers.RepeatedCompositeFieldContainer[Worker]
    def __init__(self, workers: _Optional[_Iterable[_Union[Worker, _Mapping]]] = ...) -> None: ...

class GetWorkerConfigRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetWorkerConfigResponse(_message.Message):
    __slots__ = ("config",)
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    config: WorkerConfig
    def __init__(self, config: _Optional[_Union[WorkerConfig, _Mapping]] = ...) -> None: ...

class SetWorkerConfigRequest(_message.Message):
    __slots__ = ("config", "update_mask")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    config: WorkerConfig
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, config: _Optional[_Union[WorkerConfig, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class SetWorkerConfigResponse(_message.Message):
    __slots__ = ("config",)
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    config: WorkerConfig
    def __init__(self, config: _Optional[_Union[WorkerConfig, _Mapping]] = ...) -> None: ...

class ConnectRequest(_message.Message):
    __slots__ = ("register", "slot_grant", "started", "log_chunk", "heartbeat", "finished", "session_detected", "drain", "run_status", "discover_progress", "discover_result", "worktree_result", "terminal_opened", "terminal_output", "terminal_closed")
    REGISTER_FIELD_NUMBER: _ClassVar[int]
    SLOT_GRANT_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    LOG_CHUNK_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    SESSION_DETECTED_FIELD_NUMBER: _ClassVar[int]
    DRAIN_FIELD_NUMBER: _ClassVar[int]
    RUN_STATUS_FIELD_NUMBER: _ClassVar[int]
    DISCOVER_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    DISCOVER_RESULT_FIELD_NUMBER: _ClassVar[int]
    WORKTREE_RESULT_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_OPENED_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_CLOSED_FIELD_NUMBER: _ClassVar[int]
    register: Register
    slot_grant: SlotGrant
    started: RunStarted
    log_chunk: LogChunk
    heartbeat: Heartbeat
    finished: RunFinished
    session_detected: SessionDetected
    drain: Drain
    run_status: RunStatus
    discover_progress: DiscoverProgress
    discover_result: DiscoverResult
    worktree_result: WorktreeResult
    terminal_opened: TerminalOpened
    terminal_output: TerminalOutput
    terminal_closed: TerminalClosed
    def __init__(self, register: _Optional[_Union[Register, _Mapping]] = ..., slot_grant: _Optional[_Union[SlotGrant, _Mapping]] = ..., started: _Optional[_Union[RunStarted, _Mapping]] = ..., log_chunk: _Optional[_Union[LogChunk, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., finished: _Optional[_Union[RunFinished, _Mapping]] = ..., session_detected: _Optional[_Union[SessionDetected, _Mapping]] = ..., drain: _Optional[_Union[Drain, _Mapping]] = ..., run_status: _Optional[_Union[RunStatus, _Mapping]] = ..., discover_progress: _Optional[_Union[DiscoverProgress, _Mapping]] = ..., discover_result: _Optional[_Union[DiscoverResult, _Mapping]] = ..., worktree_result: _Optional[_Union[WorktreeResult, _Mapping]] = ..., terminal_opened: _Optional[_Union[TerminalOpened, _Mapping]] = ..., terminal_output: _Optional[_Union[TerminalOutput, _Mapping]] = ..., terminal_closed: _Optional[_Union[TerminalClosed, _Mapping]] = ...) -> None: ...

class ConnectResponse(_message.Message):
    __slots__ = ("registered", "assign", "log_ack", "cancel", "config", "drain", "finished_ack", "heartbeat_ack", "discover", "worktree_request", "terminal_open", "terminal_input", "terminal_resize", "terminal_grant", "terminal_close")
    REGISTERED_FIELD_NUMBER: _ClassVar[int]
    ASSIGN_FIELD_NUMBER: _ClassVar[int]
    LOG_ACK_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    DRAIN_FIELD_NUMBER: _ClassVar[int]
    FINISHED_ACK_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_ACK_FIELD_NUMBER: _ClassVar[int]
    DISCOVER_FIELD_NUMBER: _ClassVar[int]
    WORKTREE_REQUEST_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_OPEN_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_INPUT_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_RESIZE_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_GRANT_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_CLOSE_FIELD_NUMBER: _ClassVar[int]
    registered: Registered
    assign: Assign
    log_ack: LogAck
    cancel: Cancel
    config: WorkerConfig
    drain: Drain
    finished_ack: RunFinishedAck
    heartbeat_ack: HeartbeatAck
    discover: Discover
    worktree_request: WorktreeRequest
    terminal_open: TerminalOpen
    terminal_input: TerminalInput
    terminal_resize: TerminalResize
    terminal_grant: TerminalGrant
    terminal_close: TerminalClose
    def __init__(self, registered: _Optional[_Union[Registered, _Mapping]] = ..., assign: _Optional[_Union[Assign, _Mapping]] = ..., log_ack: _Optional[_Union[LogAck, _Mapping]] = ..., cancel: _Optional[_Union[Cancel, _Mapping]] = ..., config: _Optional[_Union[WorkerConfig, _Mapping]] = ..., drain: _Optional[_Union[Drain, _Mapping]] = ..., finished_ack: _Optional[_Union[RunFinishedAck, _Mapping]] = ..., heartbeat_ack: _Optional[_Union[HeartbeatAck, _Mapping]] = ..., discover: _Optional[_Union[Discover, _Mapping]] = ..., worktree_request: _Optional[_Union[WorktreeRequest, _Mapping]] = ..., terminal_open: _Optional[_Union[TerminalOpen, _Mapping]] = ..., terminal_input: _Optional[_Union[TerminalInput, _Mapping]] = ..., terminal_resize: _Optional[_Union[TerminalResize, _Mapping]] = ..., terminal_grant: _Optional[_Union[TerminalGrant, _Mapping]] = ..., terminal_close: _Optional[_Union[TerminalClose, _Mapping]] = ...) -> None: ...

class Register(_message.Message):
    __slots__ = ("worker_id", "hostname", "version", "slots", "agent_slugs", "labels", "running", "instance_id", "worktree_task_ids")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    AGENT_SLUGS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    WORKTREE_TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    hostname: str
    version: str
    slots: int
    agent_slugs: _containers.RepeatedScalarFieldContainer[str]
    labels: _containers.ScalarMap[str, str]
    running: _containers.RepeatedCompositeFieldContainer[RunningExecution]
    instance_id: str
    worktree_task_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, worker_id: _Optional[str] = ..., hostname: _Optional[str] = ..., version: _Optional[str] = ..., slots: _Optional[int] = ..., agent_slugs: _Optional[_Iterable[str]] = ..., labels: _Optional[_Mapping[str, str]] = ..., running: _Optional[_Iterable[_Union[RunningExecution, _Mapping]]] = ..., instance_id: _Optional[str] = ..., worktree_task_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class RunningExecution(_message.Message):
    __slots__ = ("execution_id", "attempt_token")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    attempt_token: str
    def __init__(self, execution_id: _Optional[str] = ..., attempt_token: _Optional[str] = ...) -> None: ...

class Registered(_message.Message):
    __slots__ = ("worker_id", "config", "resumed", "gone_worktree_task_ids")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    RESUMED_FIELD_NUMBER: _ClassVar[int]
    GONE_WORKTREE_TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    config: WorkerConfig
    resumed: _containers.RepeatedCompositeFieldContainer[ResumedExecution]
    gone_worktree_task_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, worker_id: _Optional[str] = ..., config: _Optional[_Union[WorkerConfig, _Mapping]] = ..., resumed: _Optional[_Iterable[_Union[ResumedExecution, _Mapping]]] = ..., gone_worktree_task_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ResumedExecution(_message.Message):
    __slots__ = ("execution_id", "attempt_token", "acknowledged_offset")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGED_OFFSET_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    attempt_token: str
    acknowledged_offset: int
    def __init__(self, execution_id: _Optional[str] = ..., attempt_token: _Optional[str] = ..., acknowledged_offset: _Optional[int] = ...) -> None: ...

class SlotGrant(_message.Message):
    __slots__ = ("count",)
    COUNT_FIELD_NUMBER: _ClassVar[int]
    count: int
    def __init__(self, count: _Optional[int] = ...) -> None: ...

class Assign(_message.Message):
    __slots__ = ("execution_id", "attempt_token", "task_id", "agent", "mode", "argv", "prompt", "working_dir", "env", "env_allowlist", "timeout", "max_output_bytes", "attempt", "resume_session_ref", "tmux_session_name", "log_offset", "mcp_server_url", "mcp_token", "worktree")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    ARGV_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    WORKING_DIR_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    ENV_ALLOWLIST_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    MAX_OUTPUT_BYTES_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    RESUME_SESSION_REF_FIELD_NUMBER: _ClassVar[int]
    TMUX_SESSION_NAME_FIELD_NUMBER: _ClassVar[int]
    LOG_OFFSET_FIELD_NUMBER: _ClassVar[int]
    MCP_SERVER_URL_FIELD_NUMBER: _ClassVar[int]
    MCP_TOKEN_FIELD_NUMBER: _ClassVar[int]
    WORKTREE_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    attempt_token: str
    task_id: str
    agent: _agent_pb2.Agent
    mode: _common_pb2.InteractionMode
    argv: _containers.RepeatedScalarFieldContainer[str]
    prompt: str
    working_dir: str
    env: _containers.ScalarMap[str, str]
    env_allowlist: _containers.RepeatedScalarFieldContainer[str]
    timeout: _duration_pb2.Duration
    max_output_bytes: int
    attempt: int
    resume_session_ref: str
    tmux_session_name: str
    log_offset: int
    mcp_server_url: str
    mcp_token: str
    worktree: WorktreeAssignment
    def __init__(self, execution_id: _Optional[str] = ..., attempt_token: _Optional[str] = ..., task_id: _Optional[str] = ..., agent: _Optional[_Union[_agent_pb2.Agent, _Mapping]] = ..., mode: _Optional[_Union[_common_pb2.InteractionMode, str]] = ..., argv: _Optional[_Iterable[str]] = ..., prompt: _Optional[str] = ..., working_dir: _Optional[str] = ..., env: _Optional[_Mapping[str, str]] = ..., env_allowlist: _Optional[_Iterable[str]] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., max_output_bytes: _Optional[int] = ..., attempt: _Optional[int] = ..., resume_session_ref: _Optional[str] = ..., tmux_session_name: _Optional[str] = ..., log_offset: _Optional[int] = ..., mcp_server_url: _Optional[str] = ..., mcp_token: _Optional[str] = ..., worktree: _Optional[_Union[WorktreeAssignment, _Mapping]] = ...) -> None: ...

class WorktreeAssignment(_message.Message):
    __slots__ = ("branch", "base_ref")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    BASE_REF_FIELD_NUMBER: _ClassVar[int]
    branch: str
    base_ref: str
    def __init__(self, branch: _Optional[str] = ..., base_ref: _Optional[str] = ...) -> None: ...

class RunStarted(_message.Message):
    __slots__ = ("execution_id", "attempt_token", "pid", "tmux_session_name")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    TMUX_SESSION_NAME_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    attempt_token: str
    pid: int
    tmux_session_name: str
    def __init__(self, execution_id: _Optional[str] = ..., attempt_token: _Optional[str] = ..., pid: _Optional[int] = ..., tmux_session_name: _Optional[str] = ...) -> None: ...

class LogChunk(_message.Message):
    __slots__ = ("execution_id", "attempt_token", "offset", "data")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    attempt_token: str
    offset: int
    data: bytes
    def __init__(self, execution_id: _Optional[str] = ..., attempt_token: _Optional[str] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class LogAck(_message.Message):
    __slots__ = ("execution_id", "offset", "attempt_token")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    offset: int
    attempt_token: str
    def __init__(self, execution_id: _Optional[str] = ..., offset: _Optional[int] = ..., attempt_token: _Optional[str] = ...) -> None: ...

class RunFinishedAck(_message.Message):
    __slots__ = ("execution_id", "attempt_token", "accepted", "error")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    attempt_token: str
    accepted: bool
    error: str
    def __init__(self, execution_id: _Optional[str] = ..., attempt_token: _Optional[str] = ..., accepted: _Optional[bool] = ..., error: _Optional[str] = ...) -> None: ...

class HeartbeatAck(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("running_execution_ids", "metadata")
    RUNNING_EXECUTION_IDS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    running_execution_ids: _containers.RepeatedScalarFieldContainer[str]
    metadata: _struct_pb2.Struct
    def __init__(self, running_execution_ids: _Optional[_Iterable[str]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class RunFinished(_message.Message):
    __slots__ = ("execution_id", "attempt_token", "status", "exit_code", "error", "log_byte_size", "worktree")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    LOG_BYTE_SIZE_FIELD_NUMBER: _ClassVar[int]
    WORKTREE_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    attempt_token: str
    status: _common_pb2.ExecutionStatus
    exit_code: int
    error: str
    log_byte_size: int
    worktree: _common_pb2.WorktreeSummary
    def __init__(self, execution_id: _Optional[str] = ..., attempt_token: _Optional[str] = ..., status: _Optional[_Union[_common_pb2.ExecutionStatus, str]] = ..., exit_code: _Optional[int] = ..., error: _Optional[str] = ..., log_byte_size: _Optional[int] = ..., worktree: _Optional[_Union[_common_pb2.WorktreeSummary, _Mapping]] = ...) -> None: ...

class SessionDetected(_message.Message):
    __slots__ = ("execution_id", "attempt_token", "session_ref")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SESSION_REF_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    attempt_token: str
    session_ref: str
    def __init__(self, execution_id: _Optional[str] = ..., attempt_token: _Optional[str] = ..., session_ref: _Optional[str] = ...) -> None: ...

class RunStatus(_message.Message):
    __slots__ = ("execution_id", "attempt_token", "status")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    attempt_token: str
    status: str
    def __init__(self, execution_id: _Optional[str] = ..., attempt_token: _Optional[str] = ..., status: _Optional[str] = ...) -> None: ...

class Cancel(_message.Message):
    __slots__ = ("execution_id", "attempt_token", "reason", "forget")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    FORGET_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    attempt_token: str
    reason: str
    forget: bool
    def __init__(self, execution_id: _Optional[str] = ..., attempt_token: _Optional[str] = ..., reason: _Optional[str] = ..., forget: _Optional[bool] = ...) -> None: ...

class Drain(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class Discover(_message.Message):
    __slots__ = ("request_id", "binaries", "sources", "timeout", "mcp_tools", "help_texts")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    BINARIES_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    MCP_TOOLS_FIELD_NUMBER: _ClassVar[int]
    HELP_TEXTS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    binaries: _containers.RepeatedScalarFieldContainer[str]
    sources: _containers.RepeatedScalarFieldContainer[_agent_pb2.DiscoverySource]
    timeout: _duration_pb2.Duration
    mcp_tools: bool
    help_texts: bool
    def __init__(self, request_id: _Optional[str] = ..., binaries: _Optional[_Iterable[str]] = ..., sources: _Optional[_Iterable[_Union[_agent_pb2.DiscoverySource, str]]] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., mcp_tools: _Optional[bool] = ..., help_texts: _Optional[bool] = ...) -> None: ...

class DiscoverProgress(_message.Message):
    __slots__ = ("request_id", "done", "total", "binary")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    BINARY_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    done: int
    total: int
    binary: str
    def __init__(self, request_id: _Optional[str] = ..., done: _Optional[int] = ..., total: _Optional[int] = ..., binary: _Optional[str] = ...) -> None: ...

class DiscoverResult(_message.Message):
    __slots__ = ("request_id", "proposals", "problems", "binaries_scanned", "elapsed", "error")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PROPOSALS_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    BINARIES_SCANNED_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    proposals: _containers.RepeatedCompositeFieldContainer[_agent_pb2.AgentProposal]
    problems: _containers.RepeatedCompositeFieldContainer[_agent_pb2.DiscoveryProblem]
    binaries_scanned: int
    elapsed: _duration_pb2.Duration
    error: str
    def __init__(self, request_id: _Optional[str] = ..., proposals: _Optional[_Iterable[_Union[_agent_pb2.AgentProposal, _Mapping]]] = ..., problems: _Optional[_Iterable[_Union[_agent_pb2.DiscoveryProblem, _Mapping]]] = ..., binaries_scanned: _Optional[int] = ..., elapsed: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., error: _Optional[str] = ...) -> None: ...

class WorktreeRequest(_message.Message):
    __slots__ = ("request_id", "diff", "finish")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DIFF_FIELD_NUMBER: _ClassVar[int]
    FINISH_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    diff: WorktreeDiff
    finish: WorktreeFinish
    def __init__(self, request_id: _Optional[str] = ..., diff: _Optional[_Union[WorktreeDiff, _Mapping]] = ..., finish: _Optional[_Union[WorktreeFinish, _Mapping]] = ...) -> None: ...

class WorktreeDiff(_message.Message):
    __slots__ = ("repository", "base_commit", "snapshot_tree", "max_bytes")
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    BASE_COMMIT_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_TREE_FIELD_NUMBER: _ClassVar[int]
    MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    repository: str
    base_commit: str
    snapshot_tree: str
    max_bytes: int
    def __init__(self, repository: _Optional[str] = ..., base_commit: _Optional[str] = ..., snapshot_tree: _Optional[str] = ..., max_bytes: _Optional[int] = ...) -> None: ...

class WorktreeFinish(_message.Message):
    __slots__ = ("task_id", "repository", "branch", "remove_branch", "force")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    REMOVE_BRANCH_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    repository: str
    branch: str
    remove_branch: bool
    force: bool
    def __init__(self, task_id: _Optional[str] = ..., repository: _Optional[str] = ..., branch: _Optional[str] = ..., remove_branch: _Optional[bool] = ..., force: _Optional[bool] = ...) -> None: ...

class WorktreeResult(_message.Message):
    __slots__ = ("request_id", "error", "diff", "truncated", "worktree_removed", "branch_removed")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    DIFF_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    WORKTREE_REMOVED_FIELD_NUMBER: _ClassVar[int]
    BRANCH_REMOVED_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    error: str
    diff: bytes
    truncated: bool
    worktree_removed: bool
    branch_removed: bool
    def __init__(self, request_id: _Optional[str] = ..., error: _Optional[str] = ..., diff: _Optional[bytes] = ..., truncated: _Optional[bool] = ..., worktree_removed: _Optional[bool] = ..., branch_removed: _Optional[bool] = ...) -> None: ...

class TerminalOpen(_message.Message):
    __slots__ = ("attach_id", "execution_id", "attempt_token", "tmux_session_name", "read_only", "size", "window")
    ATTACH_ID_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TMUX_SESSION_NAME_FIELD_NUMBER: _ClassVar[int]
    READ_ONLY_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    attach_id: str
    execution_id: str
    attempt_token: str
    tmux_session_name: str
    read_only: bool
    size: _execution_pb2.TerminalSize
    window: int
    def __init__(self, attach_id: _Optional[str] = ..., execution_id: _Optional[str] = ..., attempt_token: _Optional[str] = ..., tmux_session_name: _Optional[str] = ..., read_only: _Optional[bool] = ..., size: _Optional[_Union[_execution_pb2.TerminalSize, _Mapping]] = ..., window: _Optional[int] = ...) -> None: ...

class TerminalInput(_message.Message):
    __slots__ = ("attach_id", "data")
    ATTACH_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    attach_id: str
    data: bytes
    def __init__(self, attach_id: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class TerminalResize(_message.Message):
    __slots__ = ("attach_id", "size")
    ATTACH_ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    attach_id: str
    size: _execution_pb2.TerminalSize
    def __init__(self, attach_id: _Optional[str] = ..., size: _Optional[_Union[_execution_pb2.TerminalSize, _Mapping]] = ...) -> None: ...

class TerminalGrant(_message.Message):
    __slots__ = ("attach_id", "bytes")
    ATTACH_ID_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    attach_id: str
    bytes: int
    def __init__(self, attach_id: _Optional[str] = ..., bytes: _Optional[int] = ...) -> None: ...

class TerminalClose(_message.Message):
    __slots__ = ("attach_id",)
    ATTACH_ID_FIELD_NUMBER: _ClassVar[int]
    attach_id: str
    def __init__(self, attach_id: _Optional[str] = ...) -> None: ...

class TerminalOpened(_message.Message):
    __slots__ = ("attach_id",)
    ATTACH_ID_FIELD_NUMBER: _ClassVar[int]
    attach_id: str
    def __init__(self, attach_id: _Optional[str] = ...) -> None: ...

class TerminalOutput(_message.Message):
    __slots__ = ("attach_id", "data")
    ATTACH_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    attach_id: str
    data: bytes
    def __init__(self, attach_id: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class TerminalClosed(_message.Message):
    __slots__ = ("attach_id", "reason", "message")
    ATTACH_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    attach_id: str
    reason: _execution_pb2.TerminalEndReason
    message: str
    def __init__(self, attach_id: _Optional[str] = ..., reason: _Optional[_Union[_execution_pb2.TerminalEndReason, str]] = ..., message: _Optional[str] = ...) -> None: ...
