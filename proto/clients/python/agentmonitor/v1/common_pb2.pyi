from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TaskStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_STATUS_UNSPECIFIED: _ClassVar[TaskStatus]
    TASK_STATUS_TODO: _ClassVar[TaskStatus]
    TASK_STATUS_IN_PROGRESS: _ClassVar[TaskStatus]
    TASK_STATUS_BLOCKED: _ClassVar[TaskStatus]
    TASK_STATUS_DONE: _ClassVar[TaskStatus]
    TASK_STATUS_CANCELLED: _ClassVar[TaskStatus]

class ExecutionStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXECUTION_STATUS_UNSPECIFIED: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_QUEUED: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_RUNNING: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_CANCELLING: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_SUCCEEDED: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_FAILED: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_CANCELLED: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_TIMED_OUT: _ClassVar[ExecutionStatus]

class InteractionMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INTERACTION_MODE_UNSPECIFIED: _ClassVar[InteractionMode]
    INTERACTION_MODE_TEMPLATE: _ClassVar[InteractionMode]
    INTERACTION_MODE_PROMPT: _ClassVar[InteractionMode]

class AgentKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AGENT_KIND_UNSPECIFIED: _ClassVar[AgentKind]
    AGENT_KIND_BUILTIN: _ClassVar[AgentKind]
    AGENT_KIND_CUSTOM: _ClassVar[AgentKind]

class CapabilitySource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CAPABILITY_SOURCE_UNSPECIFIED: _ClassVar[CapabilitySource]
    CAPABILITY_SOURCE_MANUAL: _ClassVar[CapabilitySource]
    CAPABILITY_SOURCE_BUILTIN: _ClassVar[CapabilitySource]
    CAPABILITY_SOURCE_PRESET: _ClassVar[CapabilitySource]
    CAPABILITY_SOURCE_SCAN_HELP: _ClassVar[CapabilitySource]
    CAPABILITY_SOURCE_SCAN_COMPLETION: _ClassVar[CapabilitySource]
    CAPABILITY_SOURCE_SCAN_FIG: _ClassVar[CapabilitySource]
    CAPABILITY_SOURCE_SCAN_MCP: _ClassVar[CapabilitySource]
    CAPABILITY_SOURCE_SCAN_MAN: _ClassVar[CapabilitySource]
    CAPABILITY_SOURCE_LLM_GENERATED: _ClassVar[CapabilitySource]

class DiscoveryMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DISCOVERY_METHOD_UNSPECIFIED: _ClassVar[DiscoveryMethod]
    DISCOVERY_METHOD_PRESET: _ClassVar[DiscoveryMethod]
    DISCOVERY_METHOD_PATH_SCAN: _ClassVar[DiscoveryMethod]
    DISCOVERY_METHOD_MANUAL: _ClassVar[DiscoveryMethod]

class ActorType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACTOR_TYPE_UNSPECIFIED: _ClassVar[ActorType]
    ACTOR_TYPE_USER: _ClassVar[ActorType]
    ACTOR_TYPE_AGENT: _ClassVar[ActorType]
    ACTOR_TYPE_SYSTEM: _ClassVar[ActorType]

class WorktreeIsolation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WORKTREE_ISOLATION_UNSPECIFIED: _ClassVar[WorktreeIsolation]
    WORKTREE_ISOLATION_NONE: _ClassVar[WorktreeIsolation]
    WORKTREE_ISOLATION_WORKTREE: _ClassVar[WorktreeIsolation]
TASK_STATUS_UNSPECIFIED: TaskStatus
TASK_STATUS_TODO: TaskStatus
TASK_STATUS_IN_PROGRESS: TaskStatus
TASK_STATUS_BLOCKED: TaskStatus
TASK_STATUS_DONE: TaskStatus
TASK_STATUS_CANCELLED: TaskStatus
EXECUTION_STATUS_UNSPECIFIED: ExecutionStatus
EXECUTION_STATUS_QUEUED: ExecutionStatus
EXECUTION_STATUS_RUNNING: ExecutionStatus
EXECUTION_STATUS_CANCELLING: ExecutionStatus
EXECUTION_STATUS_SUCCEEDED: ExecutionStatus
EXECUTION_STATUS_FAILED: ExecutionStatus
EXECUTION_STATUS_CANCELLED: ExecutionStatus
EXECUTION_STATUS_TIMED_OUT: ExecutionStatus
INTERACTION_MODE_UNSPECIFIED: InteractionMode
INTERACTION_MODE_TEMPLATE: InteractionMode
INTERACTION_MODE_PROMPT: InteractionMode
AGENT_KIND_UNSPECIFIED: AgentKind
AGENT_KIND_BUILTIN: AgentKind
AGENT_KIND_CUSTOM: AgentKind
CAPABILITY_SOURCE_UNSPECIFIED: CapabilitySource
CAPABILITY_SOURCE_MANUAL: CapabilitySource
CAPABILITY_SOURCE_BUILTIN: CapabilitySource
CAPABILITY_SOURCE_PRESET: CapabilitySource
CAPABILITY_SOURCE_SCAN_HELP: CapabilitySource
CAPABILITY_SOURCE_SCAN_COMPLETION: CapabilitySource
CAPABILITY_SOURCE_SCAN_FIG: CapabilitySource
CAPABILITY_SOURCE_SCAN_MCP: CapabilitySource
CAPABILITY_SOURCE_SCAN_MAN: CapabilitySource
CAPABILITY_SOURCE_LLM_GENERATED: CapabilitySource
DISCOVERY_METHOD_UNSPECIFIED: DiscoveryMethod
DISCOVERY_METHOD_PRESET: DiscoveryMethod
DISCOVERY_METHOD_PATH_SCAN: DiscoveryMethod
DISCOVERY_METHOD_MANUAL: DiscoveryMethod
ACTOR_TYPE_UNSPECIFIED: ActorType
ACTOR_TYPE_USER: ActorType
ACTOR_TYPE_AGENT: ActorType
ACTOR_TYPE_SYSTEM: ActorType
WORKTREE_ISOLATION_UNSPECIFIED: WorktreeIsolation
WORKTREE_ISOLATION_NONE: WorktreeIsolation
WORKTREE_ISOLATION_WORKTREE: WorktreeIsolation

class WorktreeSummary(_message.Message):
    __slots__ = ("repository", "path", "branch", "base_ref", "base_commit", "head_commit", "commits", "files", "files_truncated", "dirty", "snapshot_tree")
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    BASE_REF_FIELD_NUMBER: _ClassVar[int]
    BASE_COMMIT_FIELD_NUMBER: _ClassVar[int]
    HEAD_COMMIT_FIELD_NUMBER: _ClassVar[int]
    COMMITS_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    FILES_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    DIRTY_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_TREE_FIELD_NUMBER: _ClassVar[int]
    repository: str
    path: str
    branch: str
    base_ref: str
    base_commit: str
    head_commit: str
    commits: int
    files: _containers.RepeatedCompositeFieldContainer[WorktreeFileChange]
    files_truncated: bool
    dirty: bool
    snapshot_tree: str
    def __init__(self, repository: _Optional[str] = ..., path: _Optional[str] = ..., branch: _Optional[str] = ..., base_ref: _Optional[str] = ..., base_commit: _Optional[str] = ..., head_commit: _Optional[str] = ..., commits: _Optional[int] = ..., files: _Optional[_Iterable[_Union[WorktreeFileChange, _Mapping]]] = ..., files_truncated: _Optional[bool] = ..., dirty: _Optional[bool] = ..., snapshot_tree: _Optional[str] = ...) -> None: ...

class WorktreeFileChange(_message.Message):
    __slots__ = ("path", "added", "removed", "binary")
    PATH_FIELD_NUMBER: _ClassVar[int]
    ADDED_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    BINARY_FIELD_NUMBER: _ClassVar[int]
    path: str
    added: int
    removed: int
    binary: bool
    def __init__(self, path: _Optional[str] = ..., added: _Optional[int] = ..., removed: _Optional[int] = ..., binary: _Optional[bool] = ...) -> None: ...
