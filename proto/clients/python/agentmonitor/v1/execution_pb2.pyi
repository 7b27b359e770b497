import datetime

from agentmonitor.v1 import common_pb2 as _common_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TerminalEndReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TERMINAL_END_REASON_UNSPECIFIED: _ClassVar[TerminalEndReason]
    TERMINAL_END_REASON_RUN_ENDED: _ClassVar[TerminalEndReason]
    TERMINAL_END_REASON_DETACHED: _ClassVar[TerminalEndReason]
    TERMINAL_END_REASON_WORKER_DISCONNECTED: _ClassVar[TerminalEndReason]
    TERMINAL_END_REASON_ERROR: _ClassVar[TerminalEndReason]
TERMINAL_END_REASON_UNSPECIFIED: TerminalEndReason
TERMINAL_END_REASON_RUN_ENDED: TerminalEndReason
TERMINAL_END_REASON_DETACHED: TerminalEndReason
TERMINAL_END_REASON_WORKER_DISCONNECTED: TerminalEndReason
TERMINAL_END_REASON_ERROR: TerminalEndReason

class Execution(_message.Message):
    __slots__ = ("id", "task_id", "agent_id", "capability_id", "requested_by", "status", "mode", "args", "prompt", "pid", "session_ref", "tmux_session_name", "parent_execution_id", "started_at", "ended_at", "exit_code", "error", "worker_id", "heartbeat_at", "log_file_path", "log_byte_size", "log_line_count", "log_updated_at", "retry_count", "max_retries", "created_at", "worktree")
    ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    CAPABILITY_ID_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    SESSION_REF_FIELD_NUMBER: _ClassVar[int]
    TMUX_SESSION_NAME_FIELD_NUMBER: _ClassVar[int]
    PARENT_EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_AT_FIELD_NUMBER: _ClassVar[int]
    LOG_FILE_PATH_FIELD_NUMBER: _ClassVar[int]
    LOG_BYTE_SIZE_FIELD_NUMBER: _ClassVar[int]
    LOG_LINE_COUNT_FIELD_NUMBER: _ClassVar[int]
    LOG_UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    RETRY_COUNT_FIELD_NUMBER: _ClassVar[int]
    MAX_RETRIES_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    WORKTREE_FIELD_NUMBER: _ClassVar[int]
    id: str
    task_id: str
    agent_id: str
    capability_id: str
    requested_by: str
    status: _common_pb2.ExecutionStatus
    mode: _common_pb2.InteractionMode
    args: _struct_pb2.Struct
    prompt: str
    pid: int
    session_ref: str
    tmux_session_name: str
    parent_execution_id: str
    started_at: _timestamp_pb2.Timestamp
    ended_at: _timestamp_pb2.Timestamp
    exit_code: int
    error: str
    worker_id: str
    heartbeat_at: _timestamp_pb2.Timestamp
    log_file_path: str
    log_byte_size: int
    log_line_count: int
    log_updated_at: _timestamp_pb2.Timestamp
    retry_count: int
    max_retries: int
    created_at: _timestamp_pb2.Timestamp
    worktree: _common_pb2.WorktreeSummary
    def __init__(self, id: _Optional[str] = ..., task_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., capability_id: _Optional[str] = ..., requested_by: _Optional[str] = ..., status: _Optional[_Union[_common_pb2.ExecutionStatus, str]] = ..., mode: _Optional[_Union[_common_pb2.InteractionMode, str]] = ..., args: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., prompt: _Optional[str] = ..., pid: _Optional[int] = ..., session_ref: _Optional[str] = ..., tmux_session_name: _Optional[str] = ..., parent_execution_id: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., exit_code: _Optional[int] = ..., error: _Optional[str] = ..., worker_id: _Optional[str] = ..., heartbeat_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., log_file_path: _Optional[str] = ..., log_byte_size: _Optional[int] = ..., log_line_count: _Optional[int] = ..., log_updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., retry_count: _Optional[int] = ..., max_retries: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., worktree: _Optional[_Union[_common_pb2.WorktreeSummary, _Mapping]] = ...) -> None: ...

class CreateExecutionRequest(_message.Message):
    __slots__ = ("task_id", "capability_id", "args", "max_retries")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    CAPABILITY_ID_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    MAX_RETRIES_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    capability_id: str
    args: _struct_pb2.Struct
    max_retries: int
    def __init__(self, task_id: _Optional[str] = ..., capability_id: _Optional[str] = ..., args: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., max_retries: _Optional[int] = ...) -> None: ...

class CreateExecutionResponse(_message.Message):
    __slots__ = ("execution",)
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    execution: Execution
    def __init__(self, execution: _Optional[_Union[Execution, _Mapping]] = ...) -> None: ...

class GetExecutionRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetExecutionResponse(_message.Message):
    __slots__ = ("execution", "ancestor_execution_ids")
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    ANCESTOR_EXECUTION_IDS_FIELD_NUMBER: _ClassVar[int]
    execution: Execution
    ancestor_execution_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, execution: _Optional[_Union[Execution, _Mapping]] = ..., ancestor_execution_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ListExecutionsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "task_id", "status", "agent_id", "worker_id")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    task_id: str
    status: _common_pb2.ExecutionStatus
    agent_id: str
    worker_id: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., task_id: _Optional[str] = ..., status: _Optional[_Union[_common_pb2.ExecutionStatus, str]] = ..., agent_id: _Optional[str] = ..., worker_id: _Optional[str] = ...) -> None: ...

class ListExecutionsResponse(_message.Message):
    __slots__ = ("executions", "next_page_token")
    EXECUTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    executions: _containers.RepeatedCompositeFieldContainer[Execution]
    next_page_token: str
    def __init__(self, executions: _Optional[_Iterable[_Union[Execution, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelExecutionRequest(_message.Message):
    __slots__ = ("id", "reason")
    ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    id: str
    reason: str
    def __init__(self, id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CancelExecutionResponse(_message.Message):
    __slots__ = ("execution",)
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    execution: Execution
    def __init__(self, execution: _Optional[_Union[Execution, _Mapping]] = ...) -> None: ...

class RetryExecutionRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class RetryExecutionResponse(_message.Message):
    __slots__ = ("execution",)
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    execution: Execution
    def __init__(self, execution: _Optional[_Union[Execution, _Mapping]] = ...) -> None: ...

class ApproveExecutionRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ApproveExecutionResponse(_message.Message):
    __slots__ = ("execution",)
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    execution: Execution
    def __init__(self, execution: _Optional[_Union[Execution, _Mapping]] = ...) -> None: ...

class ContinueExecutionRequest(_message.Message):
    __slots__ = ("id", "prompt")
    ID_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    id: str
    prompt: str
    def __init__(self, id: _Optional[str] = ..., prompt: _Optional[str] = ...) -> None: ...

class ContinueExecutionResponse(_message.Message):
    __slots__ = ("execution",)
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    execution: Execution
    def __init__(self, execution: _Optional[_Union[Execution, _Mapping]] = ...) -> None: ...

class StreamLogsRequest(_message.Message):
    __slots__ = ("execution_id", "offset", "follow")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    offset: int
    follow: bool
    def __init__(self, execution_id: _Optional[str] = ..., offset: _Optional[int] = ..., follow: _Optional[bool] = ...) -> None: ...

class StreamLogsResponse(_message.Message):
    __slots__ = ("offset", "data")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    offset: int
    data: bytes
    def __init__(self, offset: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class WatchExecutionsRequest(_message.Message):
    __slots__ = ("task_id", "execution_id")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    execution_id: str
    def __init__(self, task_id: _Optional[str] = ..., execution_id: _Optional[str] = ...) -> None: ...

class WatchExecutionsResponse(_message.Message):
    __slots__ = ("execution",)
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    execution: Execution
    def __init__(self, execution: _Optional[_Union[Execution, _Mapping]] = ...) -> None: ...

class GetExecutionDiffRequest(_message.Message):
    __slots__ = ("execution_id", "max_bytes")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    max_bytes: int
    def __init__(self, execution_id: _Optional[str] = ..., max_bytes: _Optional[int] = ...) -> None: ...

class GetExecutionDiffResponse(_message.Message):
    __slots__ = ("diff", "truncated", "worktree")
    DIFF_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    WORKTREE_FIELD_NUMBER: _ClassVar[int]
    diff: bytes
    truncated: bool
    worktree: _common_pb2.WorktreeSummary
    def __init__(self, diff: _Optional[bytes] = ..., truncated: _Optional[bool] = ..., worktree: _Optional[_Union[_common_pb2.WorktreeSummary, _Mapping]] = ...) -> None: ...

class TerminalSize(_message.Message):
    __slots__ = ("rows", "cols")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLS_FIELD_NUMBER: _ClassVar[int]
    rows: int
    cols: int
    def __init__(self, rows: _Optional[int] = ..., cols: _Optional[int] = ...) -> None: ...

class AttachTerminalOpen(_message.Message):
    __slots__ = ("execution_id", "read_only", "size")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    READ_ONLY_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    read_only: bool
    size: TerminalSize
    def __init__(self, execution_id: _Optional[str] = ..., read_only: _Optional[bool] = ..., size: _Optional[_Union[TerminalSize, _Mapping]] = ...) -> None: ...

class AttachTerminalOpened(_message.Message):
    __slots__ = ("attach_id", "worker_id", "tmux_session_name", "read_only")
    ATTACH_ID_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    TMUX_SESSION_NAME_FIELD_NUMBER: _ClassVar[int]
    READ_ONLY_FIELD_NUMBER: _ClassVar[int]
    attach_id: str
    worker_id: str
    tmux_session_name: str
    read_only: bool
    def __init__(self, attach_id: _Optional[str] = ..., worker_id: _Optional[str] = ..., tmux_session_name: _Optional[str] = ..., read_only: _Optional[bool] = ...) -> None: ...

class TerminalEnded(_message.Message):
    __slots__ = ("reason", "message")
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    reason: TerminalEndReason
    message: str
    def __init__(self, reason: _Optional[_Union[TerminalEndReason, str]] = ..., message: _Optional[str] = ...) -> None: ...

class AttachTerminalRequest(_message.Message):
    __slots__ = ("open", "input", "resize")
    OPEN_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    RESIZE_FIELD_NUMBER: _ClassVar[int]
    open: AttachTerminalOpen
    input: bytes
    resize: TerminalSize
    def __init__(self, open: _Optional[_Union[AttachTerminalOpen, _Mapping]] = ..., input: _Optional[bytes] = ..., resize: _Optional[_Union[TerminalSize, _Mapping]] = ...) -> None: ...

class AttachTerminalResponse(_message.Message):
    __slots__ = ("opened", "output", "ended")
    OPENED_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ENDED_FIELD_NUMBER: _ClassVar[int]
    opened: AttachTerminalOpened
    output: bytes
    ended: TerminalEnded
    def __init__(self, opened: _Optional[_Union[AttachTerminalOpened, _Mapping]] = ..., output: _Optional[bytes] = ..., ended: _Optional[_Union[TerminalEnded, _Mapping]] = ...) -> None: ...

class AttachTerminalOutputRequest(_message.Message):
    __slots__ = ("open",)
    OPEN_FIELD_NUMBER: _ClassVar[int]
    open: AttachTerminalOpen
    def __init__(self, open: _Optional[_Union[AttachTerminalOpen, _Mapping]] = ...) -> None: ...

class AttachTerminalOutputResponse(_message.Message):
    __slots__ = ("opened", "output", "ended")
    OPENED_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ENDED_FIELD_NUMBER: _ClassVar[int]
    opened: AttachTerminalOpened
    output: bytes
    ended: TerminalEnded
    def __init__(self, opened: _Optional[_Union[AttachTerminalOpened, _Mapping]] = ..., output: _Optional[bytes] = ..., ended: _Optional[_Union[TerminalEnded, _Mapping]] = ...) -> None: ...

class AttachTerminalInputRequest(_message.Message):
    __slots__ = ("attach_id", "data")
    ATTACH_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    attach_id: str
    data: bytes
    def __init__(self, attach_id: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class AttachTerminalInputResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AttachTerminalResizeRequest(_message.Message):
    __slots__ = ("attach_id", "size")
    ATTACH_ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    attach_id: str
    size: TerminalSize
    def __init__(self, attach_id: _Optional[str] = ..., size: _Optional[_Union[TerminalSize, _Mapping]] = ...) -> None: ...

class AttachTerminalResizeResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
