import datetime

from agentmonitor.v1 import common_pb2 as _common_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WorktreeDisposal(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WORKTREE_DISPOSAL_UNSPECIFIED: _ClassVar[WorktreeDisposal]
    WORKTREE_DISPOSAL_KEEP_BRANCH: _ClassVar[WorktreeDisposal]
    WORKTREE_DISPOSAL_REMOVE_BRANCH: _ClassVar[WorktreeDisposal]
WORKTREE_DISPOSAL_UNSPECIFIED: WorktreeDisposal
WORKTREE_DISPOSAL_KEEP_BRANCH: WorktreeDisposal
WORKTREE_DISPOSAL_REMOVE_BRANCH: WorktreeDisposal

class Task(_message.Message):
    __slots__ = ("id", "owner_id", "workspace_id", "parent_task_id", "title", "description", "status", "priority", "sort_order", "assignee_agent_id", "input_context", "due_at", "created_at", "updated_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    SORT_ORDER_FIELD_NUMBER: _ClassVar[int]
    ASSIGNEE_AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    INPUT_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    DUE_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    owner_id: str
    workspace_id: str
    parent_task_id: str
    title: str
    description: str
    status: _common_pb2.TaskStatus
    priority: int
    sort_order: int
    assignee_agent_id: str
    input_context: TaskInputContext
    due_at: _timestamp_pb2.Timestamp
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., owner_id: _Optional[str] = ..., workspace_id: _Optional[str] = ..., parent_task_id: _Optional[str] = ..., title: _Optional[str] = ..., description: _Optional[str] = ..., status: _Optional[_Union[_common_pb2.TaskStatus, str]] = ..., priority: _Optional[int] = ..., sort_order: _Optional[int] = ..., assignee_agent_id: _Optional[str] = ..., input_context: _Optional[_Union[TaskInputContext, _Mapping]] = ..., due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TaskInputContext(_message.Message):
    __slots__ = ("working_dir", "env_overrides", "args", "prompt_additions", "isolation", "base_ref")
    class EnvOverridesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    WORKING_DIR_FIELD_NUMBER: _ClassVar[int]
    ENV_OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_ADDITIONS_FIELD_NUMBER: _ClassVar[int]
    ISOLATION_FIELD_NUMBER: _ClassVar[int]
    BASE_REF_FIELD_NUMBER: _ClassVar[int]
    working_dir: str
    env_overrides: _containers.ScalarMap[str, str]
    args: _struct_pb2.Struct
    prompt_additions: str
    isolation: _common_pb2.WorktreeIsolation
    base_ref: str
    def __init__(self, working_dir: _Optional[str] = ..., env_overrides: _Optional[_Mapping[str, str]] = ..., args: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., prompt_additions: _Optional[str] = ..., isolation: _Optional[_Union[_common_pb2.WorktreeIsolation, str]] = ..., base_ref: _Optional[str] = ...) -> None: ...

class TaskDependency(_message.Message):
    __slots__ = ("task_id", "depends_on_task_id", "created_at")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    DEPENDS_ON_TASK_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    depends_on_task_id: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, task_id: _Optional[str] = ..., depends_on_task_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TaskEvent(_message.Message):
    __slots__ = ("id", "task_id", "actor_type", "actor_id", "event_type", "payload", "created_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_TYPE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: int
    task_id: str
    actor_type: _common_pb2.ActorType
    actor_id: str
    event_type: str
    payload: _struct_pb2.Struct
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[int] = ..., task_id: _Optional[str] = ..., actor_type: _Optional[_Union[_common_pb2.ActorType, str]] = ..., actor_id: _Optional[str] = ..., event_type: _Optional[str] = ..., payload: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class BoardColumn(_message.Message):
    __slots__ = ("status", "tasks", "truncated")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    status: _common_pb2.TaskStatus
    tasks: _containers.RepeatedCompositeFieldContainer[Task]
    truncated: bool
    def __init__(self, status: _Optional[_Union[_common_pb2.TaskStatus, str]] = ..., tasks: _Optional[_Iterable[_Union[Task, _Mapping]]] = ..., truncated: _Optional[bool] = ...) -> None: ...

class CreateTaskRequest(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class CreateTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class GetTaskRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class ListTasksRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "status", "assignee_agent_id", "parent_task_id")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ASSIGNEE_AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_TASK_ID_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    status: _common_pb2.TaskStatus
    assignee_agent_id: str
    parent_task_id: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., status: _Optional[_Union[_common_pb2.TaskStatus, str]] = ..., assignee_agent_id: _Optional[str] = ..., parent_task_id: _Optional[str] = ...) -> None: ...

class ListTasksResponse(_message.Message):
    __slots__ = ("tasks", "next_page_token")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[Task]
    next_page_token: str
    def __init__(self, tasks: _Optional[_Iterable[_Union[Task, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateTaskRequest(_message.Message):
    __slots__ = ("task", "update_mask")
    TASK_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class DeleteTaskRequest(_message.Message):
    __slots__ = ("id", "worktree", "force_worktree")
    ID_FIELD_NUMBER: _ClassVar[int]
    WORKTREE_FIELD_NUMBER: _ClassVar[int]
    FORCE_WORKTREE_FIELD_NUMBER: _ClassVar[int]
    id: str
    worktree: WorktreeDisposal
    force_worktree: bool
    def __init__(self, id: _Optional[str] = ..., worktree: _Optional[_Union[WorktreeDisposal, str]] = ..., force_worktree: _Optional[bool] = ...) -> None: ...

class DeleteTaskResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class MoveTaskRequest(_message.Message):
    __slots__ = ("id", "status", "after_task_id", "before_task_id", "worktree", "force_worktree")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    AFTER_TASK_ID_FIELD_NUMBER: _ClassVar[int]
    BEFORE_TASK_ID_FIELD_NUMBER: _ClassVar[int]
    WORKTREE_FIELD_NUMBER: _ClassVar[int]
    FORCE_WORKTREE_FIELD_NUMBER: _ClassVar[int]
    id: str
    status: _common_pb2.TaskStatus
    after_task_id: str
    before_task_id: str
    worktree: WorktreeDisposal
    force_worktree: bool
    def __init__(self, id: _Optional[str] = ..., status: _Optional[_Union[_common_pb2.TaskStatus, str]] = ..., after_task_id: _Optional[str] = ..., before_task_id: _Optional[str] = ..., worktree: _Optional[_Union[WorktreeDisposal, str]] = ..., force_worktree: _Optional[bool] = ...) -> None: ...

class MoveTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class GetBoardRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetBoardResponse(_message.Message):
    __slots__ = ("columns", "last_event_id")
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    LAST_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    columns: _containers.RepeatedCompositeFieldContainer[BoardColumn]
    last_event_id: int
    def __init__(self, columns: _Optional[_Iterable[_Union[BoardColumn, _Mapping]]] = ..., last_event_id: _Optional[int] = ...) -> None: ...

class AddDependencyRequest(_message.Message):
    __slots__ = ("task_id", "depends_on_task_id")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    DEPENDS_ON_TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    depends_on_task_id: str
    def __init__(self, task_id: _Optional[str] = ..., depends_on_task_id: _Optional[str] = ...) -> None: ...

class AddDependencyResponse(_message.Message):
    __slots__ = ("dependency",)
    DEPENDENCY_FIELD_NUMBER: _ClassVar[int]
    dependency: TaskDependency
    def __init__(self, dependency: _Optional[_Union[TaskDependency, _Mapping]] = ...) -> None: ...

class RemoveDependencyRequest(_message.Message):
    __slots__ = ("task_id", "depends_on_task_id")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    DEPENDS_ON_TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    depends_on_task_id: str
    def __init__(self, task_id: _Optional[str] = ..., depends_on_task_id: _Optional[str] = ...) -> None: ...

class RemoveDependencyResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListDependenciesRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class ListDependenciesResponse(_message.Message):
    __slots__ = ("dependencies", "dependents")
    DEPENDENCIES_FIELD_NUMBER: _ClassVar[int]
    DEPENDENTS_FIELD_NUMBER: _ClassVar[int]
    dependencies: _containers.RepeatedCompositeFieldContainer[TaskDependency]
    dependents: _containers.RepeatedCompositeFieldContainer[TaskDependency]
    def __init__(self, dependencies: _Optional[_Iterable[_Union[TaskDependency, _Mapping]]] = ..., dependents: _Optional[_Iterable[_Union[TaskDependency, _Mapping]]] = ...) -> None: ...

class ListTaskEventsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "task_id")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    task_id: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., task_id: _Optional[str] = ...) -> None: ...

class ListTaskEventsResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[TaskEvent]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[TaskEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchTaskEventsRequest(_message.Message):
    __slots__ = ("task_id", "after_event_id")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    after_event_id: int
    def __init__(self, task_id: _Optional[str] = ..., after_event_id: _Optional[int] = ...) -> None: ...

class WatchTaskEventsResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: TaskEvent
    def __init__(self, event: _Optional[_Union[TaskEvent, _Mapping]] = ...) -> None: ...

class FinishTaskWorktreeRequest(_message.Message):
    __slots__ = ("task_id", "disposal", "force")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    DISPOSAL_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    disposal: WorktreeDisposal
    force: bool
    def __init__(self, task_id: _Optional[str] = ..., disposal: _Optional[_Union[WorktreeDisposal, str]] = ..., force: _Optional[bool] = ...) -> None: ...

class FinishTaskWorktreeResponse(_message.Message):
    __slots__ = ("worktree_removed", "branch_removed", "branch")
    WORKTREE_REMOVED_FIELD_NUMBER: _ClassVar[int]
    BRANCH_REMOVED_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    worktree_removed: bool
    branch_removed: bool
    branch: str
    def __init__(self, worktree_removed: _Optional[bool] = ..., branch_removed: _Optional[bool] = ..., branch: _Optional[str] = ...) -> None: ...
