import datetime

from agentmonitor.v1 import common_pb2 as _common_pb2
from google.protobuf import duration_pb2 as _duration_pb2
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

class SessionIdSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SESSION_ID_SOURCE_UNSPECIFIED: _ClassVar[SessionIdSource]
    SESSION_ID_SOURCE_JSON_FIELD: _ClassVar[SessionIdSource]
    SESSION_ID_SOURCE_FILESYSTEM: _ClassVar[SessionIdSource]
    SESSION_ID_SOURCE_LIST_COMMAND: _ClassVar[SessionIdSource]
    SESSION_ID_SOURCE_NONE: _ClassVar[SessionIdSource]

class BidirectionalProtocol(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BIDIRECTIONAL_PROTOCOL_UNSPECIFIED: _ClassVar[BidirectionalProtocol]
    BIDIRECTIONAL_PROTOCOL_STREAM_JSON: _ClassVar[BidirectionalProtocol]
    BIDIRECTIONAL_PROTOCOL_APP_SERVER: _ClassVar[BidirectionalProtocol]
    BIDIRECTIONAL_PROTOCOL_TMUX: _ClassVar[BidirectionalProtocol]

class DiscoverySource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DISCOVERY_SOURCE_UNSPECIFIED: _ClassVar[DiscoverySource]
    DISCOVERY_SOURCE_PATH_SCAN: _ClassVar[DiscoverySource]
    DISCOVERY_SOURCE_PRESET: _ClassVar[DiscoverySource]
    DISCOVERY_SOURCE_HELP: _ClassVar[DiscoverySource]
    DISCOVERY_SOURCE_COMPLETION: _ClassVar[DiscoverySource]
    DISCOVERY_SOURCE_MAN: _ClassVar[DiscoverySource]
    DISCOVERY_SOURCE_FIG: _ClassVar[DiscoverySource]
    DISCOVERY_SOURCE_MCP: _ClassVar[DiscoverySource]

class ProbeProblem(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROBE_PROBLEM_UNSPECIFIED: _ClassVar[ProbeProblem]
    PROBE_PROBLEM_TIMED_OUT: _ClassVar[ProbeProblem]
    PROBE_PROBLEM_FLOODED: _ClassVar[ProbeProblem]
    PROBE_PROBLEM_CRASHED: _ClassVar[ProbeProblem]
    PROBE_PROBLEM_UNREADABLE: _ClassVar[ProbeProblem]

class ApplyAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    APPLY_ACTION_UNSPECIFIED: _ClassVar[ApplyAction]
    APPLY_ACTION_CREATED: _ClassVar[ApplyAction]
    APPLY_ACTION_UPDATED: _ClassVar[ApplyAction]
    APPLY_ACTION_UNCHANGED: _ClassVar[ApplyAction]
    APPLY_ACTION_KEPT_MANUAL: _ClassVar[ApplyAction]
    APPLY_ACTION_SKIPPED: _ClassVar[ApplyAction]
SESSION_ID_SOURCE_UNSPECIFIED: SessionIdSource
SESSION_ID_SOURCE_JSON_FIELD: SessionIdSource
SESSION_ID_SOURCE_FILESYSTEM: SessionIdSource
SESSION_ID_SOURCE_LIST_COMMAND: SessionIdSource
SESSION_ID_SOURCE_NONE: SessionIdSource
BIDIRECTIONAL_PROTOCOL_UNSPECIFIED: BidirectionalProtocol
BIDIRECTIONAL_PROTOCOL_STREAM_JSON: BidirectionalProtocol
BIDIRECTIONAL_PROTOCOL_APP_SERVER: BidirectionalProtocol
BIDIRECTIONAL_PROTOCOL_TMUX: BidirectionalProtocol
DISCOVERY_SOURCE_UNSPECIFIED: DiscoverySource
DISCOVERY_SOURCE_PATH_SCAN: DiscoverySource
DISCOVERY_SOURCE_PRESET: DiscoverySource
DISCOVERY_SOURCE_HELP: DiscoverySource
DISCOVERY_SOURCE_COMPLETION: DiscoverySource
DISCOVERY_SOURCE_MAN: DiscoverySource
DISCOVERY_SOURCE_FIG: DiscoverySource
DISCOVERY_SOURCE_MCP: DiscoverySource
PROBE_PROBLEM_UNSPECIFIED: ProbeProblem
PROBE_PROBLEM_TIMED_OUT: ProbeProblem
PROBE_PROBLEM_FLOODED: ProbeProblem
PROBE_PROBLEM_CRASHED: ProbeProblem
PROBE_PROBLEM_UNREADABLE: ProbeProblem
APPLY_ACTION_UNSPECIFIED: ApplyAction
APPLY_ACTION_CREATED: ApplyAction
APPLY_ACTION_UPDATED: ApplyAction
APPLY_ACTION_UNCHANGED: ApplyAction
APPLY_ACTION_KEPT_MANUAL: ApplyAction
APPLY_ACTION_SKIPPED: ApplyAction

class Agent(_message.Message):
    __slots__ = ("id", "owner_id", "workspace_id", "name", "slug", "kind", "binary_path", "base_args", "working_dir", "env_allowlist", "is_active", "max_concurrent", "discovery_method", "version", "package_name", "package_section", "tool_type", "mcp_enabled", "session_config", "last_scanned_at", "metadata", "created_at", "updated_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SLUG_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    BINARY_PATH_FIELD_NUMBER: _ClassVar[int]
    BASE_ARGS_FIELD_NUMBER: _ClassVar[int]
    WORKING_DIR_FIELD_NUMBER: _ClassVar[int]
    ENV_ALLOWLIST_FIELD_NUMBER: _ClassVar[int]
    IS_ACTIVE_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENT_FIELD_NUMBER: _ClassVar[int]
    DISCOVERY_METHOD_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_NAME_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_SECTION_FIELD_NUMBER: _ClassVar[int]
    TOOL_TYPE_FIELD_NUMBER: _ClassVar[int]
    MCP_ENABLED_FIELD_NUMBER: _ClassVar[int]
    SESSION_CONFIG_FIELD_NUMBER: _ClassVar[int]
    LAST_SCANNED_AT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    owner_id: str
    workspace_id: str
    name: str
    slug: str
    kind: _common_pb2.AgentKind
    binary_path: str
    base_args: _containers.RepeatedScalarFieldContainer[str]
    working_dir: str
    env_allowlist: _containers.RepeatedScalarFieldContainer[str]
    is_active: bool
    max_concurrent: int
    discovery_method: _common_pb2.DiscoveryMethod
    version: str
    package_name: str
    package_section: str
    tool_type: str
    mcp_enabled: bool
    session_config: AgentSessionConfig
    last_scanned_at: _timestamp_pb2.Timestamp
    metadata: AgentMetadata
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., owner_id: _Optional[str] = ..., workspace_id: _Optional[str] = ..., name: _Optional[str] = ..., slug: _Optional[str] = ..., kind: _Optional[_Union[_common_pb2.AgentKind, str]] = ..., binary_path: _Optional[str] = ..., base_args: _Optional[_Iterable[str]] = ..., working_dir: _Optional[str] = ..., env_allowlist: _Optional[_Iterable[str]] = ..., is_active: _Optional[bool] = ..., max_concurrent: _Optional[int] = ..., discovery_method: _Optional[_Union[_common_pb2.DiscoveryMethod, str]] = ..., version: _Optional[str] = ..., package_name: _Optional[str] = ..., package_section: _Optional[str] = ..., tool_type: _Optional[str] = ..., mcp_enabled: _Optional[bool] = ..., session_config: _Optional[_Union[AgentSessionConfig, _Mapping]] = ..., last_scanned_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., metadata: _Optional[_Union[AgentMetadata, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AgentMetadata(_message.Message):
    __slots__ = ("icon", "color", "description", "homepage", "default_isolation")
    ICON_FIELD_NUMBER: _ClassVar[int]
    COLOR_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    HOMEPAGE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_ISOLATION_FIELD_NUMBER: _ClassVar[int]
    icon: str
    color: str
    description: str
    homepage: str
    default_isolation: _common_pb2.WorktreeIsolation
    def __init__(self, icon: _Optional[str] = ..., color: _Optional[str] = ..., description: _Optional[str] = ..., homepage: _Optional[str] = ..., default_isolation: _Optional[_Union[_common_pb2.WorktreeIsolation, str]] = ...) -> None: ...

class AgentSessionConfig(_message.Message):
    __slots__ = ("session_id_source", "session_id_field", "session_file_glob", "list_sessions_command", "list_sessions_pattern", "resume_flags", "continue_flags", "bidirectional_protocol", "completion_idle")
    SESSION_ID_SOURCE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_FIELD_NUMBER: _ClassVar[int]
    SESSION_FILE_GLOB_FIELD_NUMBER: _ClassVar[int]
    LIST_SESSIONS_COMMAND_FIELD_NUMBER: _ClassVar[int]
    LIST_SESSIONS_PATTERN_FIELD_NUMBER: _ClassVar[int]
    RESUME_FLAGS_FIELD_NUMBER: _ClassVar[int]
    CONTINUE_FLAGS_FIELD_NUMBER: _ClassVar[int]
    BIDIRECTIONAL_PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_IDLE_FIELD_NUMBER: _ClassVar[int]
    session_id_source: SessionIdSource
    session_id_field: str
    session_file_glob: str
    list_sessions_command: _containers.RepeatedScalarFieldContainer[str]
    list_sessions_pattern: str
    resume_flags: _containers.RepeatedScalarFieldContainer[str]
    continue_flags: _containers.RepeatedScalarFieldContainer[str]
    bidirectional_protocol: BidirectionalProtocol
    completion_idle: _duration_pb2.Duration
    def __init__(self, session_id_source: _Optional[_Union[SessionIdSource, str]] = ..., session_id_field: _Optional[str] = ..., session_file_glob: _Optional[str] = ..., list_sessions_command: _Optional[_Iterable[str]] = ..., list_sessions_pattern: _Optional[str] = ..., resume_flags: _Optional[_Iterable[str]] = ..., continue_flags: _Optional[_Iterable[str]] = ..., bidirectional_protocol: _Optional[_Union[BidirectionalProtocol, str]] = ..., completion_idle: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class Capability(_message.Message):
    __slots__ = ("id", "agent_id", "key", "label", "description", "source", "interaction_mode", "command_tokens", "prompt_template", "args_schema", "requires_approval", "is_enabled", "danger_level", "timeout_sec", "max_output_bytes", "created_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    INTERACTION_MODE_FIELD_NUMBER: _ClassVar[int]
    COMMAND_TOKENS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    ARGS_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    REQUIRES_APPROVAL_FIELD_NUMBER: _ClassVar[int]
    IS_ENABLED_FIELD_NUMBER: _ClassVar[int]
    DANGER_LEVEL_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SEC_FIELD_NUMBER: _ClassVar[int]
    MAX_OUTPUT_BYTES_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    agent_id: str
    key: str
    label: str
    description: str
    source: _common_pb2.CapabilitySource
    interaction_mode: _common_pb2.InteractionMode
    command_tokens: _containers.RepeatedScalarFieldContainer[str]
    prompt_template: str
    args_schema: _struct_pb2.Struct
    requires_approval: bool
    is_enabled: bool
    danger_level: int
    timeout_sec: int
    max_output_bytes: int
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., agent_id: _Optional[str] = ..., key: _Optional[str] = ..., label: _Optional[str] = ..., description: _Optional[str] = ..., source: _Optional[_Union[_common_pb2.CapabilitySource, str]] = ..., interaction_mode: _Optional[_Union[_common_pb2.InteractionMode, str]] = ..., command_tokens: _Optional[_Iterable[str]] = ..., prompt_template: _Optional[str] = ..., args_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., requires_approval: _Optional[bool] = ..., is_enabled: _Optional[bool] = ..., danger_level: _Optional[int] = ..., timeout_sec: _Optional[int] = ..., max_output_bytes: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateAgentRequest(_message.Message):
    __slots__ = ("agent",)
    AGENT_FIELD_NUMBER: _ClassVar[int]
    agent: Agent
    def __init__(self, agent: _Optional[_Union[Agent, _Mapping]] = ...) -> None: ...

class CreateAgentResponse(_message.Message):
    __slots__ = ("agent",)
    AGENT_FIELD_NUMBER: _ClassVar[int]
    agent: Agent
    def __init__(self, agent: _Optional[_Union[Agent, _Mapping]] = ...) -> None: ...

class GetAgentRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetAgentResponse(_message.Message):
    __slots__ = ("agent",)
    AGENT_FIELD_NUMBER: _ClassVar[int]
    agent: Agent
    def __init__(self, agent: _Optional[_Union[Agent, _Mapping]] = ...) -> None: ...

class ListAgentsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "is_active", "kind")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    IS_ACTIVE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    is_active: bool
    kind: _common_pb2.AgentKind
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., is_active: _Optional[bool] = ..., kind: _Optional[_Union[_common_pb2.AgentKind, str]] = ...) -> None: ...

class ListAgentsResponse(_message.Message):
    __slots__ = ("agents", "next_page_token")
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    agents: _containers.RepeatedCompositeFieldContainer[Agent]
    next_page_token: str
    def __init__(self, agents: _Optional[_Iterable[_Union[Agent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateAgentRequest(_message.Message):
    __slots__ = ("agent", "update_mask")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    agent: Agent
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, agent: _Optional[_Union[Agent, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateAgentResponse(_message.Message):
    __slots__ = ("agent",)
    AGENT_FIELD_NUMBER: _ClassVar[int]
    agent: Agent
    def __init__(self, agent: _Optional[_Union[Agent, _Mapping]] = ...) -> None: ...

class DeleteAgentRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DeleteAgentResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CreateCapabilityRequest(_message.Message):
    __slots__ = ("capability",)
    CAPABILITY_FIELD_NUMBER: _ClassVar[int]
    capability: Capability
    def __init__(self, capability: _Optional[_Union[Capability, _Mapping]] = ...) -> None: ...

class CreateCapabilityResponse(_message.Message):
    __slots__ = ("capability",)
    CAPABILITY_FIELD_NUMBER: _ClassVar[int]
    capability: Capability
    def __init__(self, capability: _Optional[_Union[Capability, _Mapping]] = ...) -> None: ...

class GetCapabilityRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetCapabilityResponse(_message.Message):
    __slots__ = ("capability",)
    CAPABILITY_FIELD_NUMBER: _ClassVar[int]
    capability: Capability
    def __init__(self, capability: _Optional[_Union[Capability, _Mapping]] = ...) -> None: ...

class ListCapabilitiesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "agent_id", "is_enabled")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    IS_ENABLED_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    agent_id: str
    is_enabled: bool
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., agent_id: _Optional[str] = ..., is_enabled: _Optional[bool] = ...) -> None: ...

class ListCapabilitiesResponse(_message.Message):
    __slots__ = ("capabilities", "next_page_token")
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    capabilities: _containers.RepeatedCompositeFieldContainer[Capability]
    next_page_token: str
    def __init__(self, capabilities: _Optional[_Iterable[_Union[Capability, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateCapabilityRequest(_message.Message):
    __slots__ = ("capability", "update_mask")
    CAPABILITY_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    capability: Capability
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, capability: _Optional[_Union[Capability, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateCapabilityResponse(_message.Message):
    __slots__ = ("capability",)
    CAPABILITY_FIELD_NUMBER: _ClassVar[int]
    capability: Capability
    def __init__(self, capability: _Optional[_Union[Capability, _Mapping]] = ...) -> None: ...

class DeleteCapabilityRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DeleteCapabilityResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AgentPreset(_message.Message):
    __slots__ = ("name", "display_name", "default_binary", "base_args", "session_config", "env_allowlist", "prompt_template", "timeout_sec")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_BINARY_FIELD_NUMBER: _ClassVar[int]
    BASE_ARGS_FIELD_NUMBER: _ClassVar[int]
    SESSION_CONFIG_FIELD_NUMBER: _ClassVar[int]
    ENV_ALLOWLIST_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SEC_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    default_binary: str
    base_args: _containers.RepeatedScalarFieldContainer[str]
    session_config: AgentSessionConfig
    env_allowlist: _containers.RepeatedScalarFieldContainer[str]
    prompt_template: str
    timeout_sec: int
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., default_binary: _Optional[str] = ..., base_args: _Optional[_Iterable[str]] = ..., session_config: _Optional[_Union[AgentSessionConfig, _Mapping]] = ..., env_allowlist: _Optional[_Iterable[str]] = ..., prompt_template: _Optional[str] = ..., timeout_sec: _Optional[int] = ...) -> None: ...

class ListAgentPresetsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListAgentPresetsResponse(_message.Message):
    __slots__ = ("presets",)
    PRESETS_FIELD_NUMBER: _ClassVar[int]
    presets: _containers.RepeatedCompositeFieldContainer[AgentPreset]
    def __init__(self, presets: _Optional[_Iterable[_Union[AgentPreset, _Mapping]]] = ...) -> None: ...

class CreatePresetAgentRequest(_message.Message):
    __slots__ = ("preset", "binary_path", "slug", "name", "working_dir", "mcp_enabled", "extra_args", "max_concurrent")
    PRESET_FIELD_NUMBER: _ClassVar[int]
    BINARY_PATH_FIELD_NUMBER: _ClassVar[int]
    SLUG_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    WORKING_DIR_FIELD_NUMBER: _ClassVar[int]
    MCP_ENABLED_FIELD_NUMBER: _ClassVar[int]
    EXTRA_ARGS_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENT_FIELD_NUMBER: _ClassVar[int]
    preset: str
    binary_path: str
    slug: str
    name: str
    working_dir: str
    mcp_enabled: bool
    extra_args: _containers.RepeatedScalarFieldContainer[str]
    max_concurrent: int
    def __init__(self, preset: _Optional[str] = ..., binary_path: _Optional[str] = ..., slug: _Optional[str] = ..., name: _Optional[str] = ..., working_dir: _Optional[str] = ..., mcp_enabled: _Optional[bool] = ..., extra_args: _Optional[_Iterable[str]] = ..., max_concurrent: _Optional[int] = ...) -> None: ...

class CreatePresetAgentResponse(_message.Message):
    __slots__ = ("agent", "capability")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    CAPABILITY_FIELD_NUMBER: _ClassVar[int]
    agent: Agent
    capability: Capability
    def __init__(self, agent: _Optional[_Union[Agent, _Mapping]] = ..., capability: _Optional[_Union[Capability, _Mapping]] = ...) -> None: ...

class DiscoverAgentsRequest(_message.Message):
    __slots__ = ("worker_id", "binaries", "sources", "apply", "timeout", "mcp_tools", "llm_agent")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    BINARIES_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    APPLY_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    MCP_TOOLS_FIELD_NUMBER: _ClassVar[int]
    LLM_AGENT_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    binaries: _containers.RepeatedScalarFieldContainer[str]
    sources: _containers.RepeatedScalarFieldContainer[DiscoverySource]
    apply: bool
    timeout: _duration_pb2.Duration
    mcp_tools: bool
    llm_agent: str
    def __init__(self, worker_id: _Optional[str] = ..., binaries: _Optional[_Iterable[str]] = ..., sources: _Optional[_Iterable[_Union[DiscoverySource, str]]] = ..., apply: _Optional[bool] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., mcp_tools: _Optional[bool] = ..., llm_agent: _Optional[str] = ...) -> None: ...

class DiscoverAgentsResponse(_message.Message):
    __slots__ = ("progress", "report")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    progress: DiscoveryProgress
    report: DiscoveryReport
    def __init__(self, progress: _Optional[_Union[DiscoveryProgress, _Mapping]] = ..., report: _Optional[_Union[DiscoveryReport, _Mapping]] = ...) -> None: ...

class DiscoveryProgress(_message.Message):
    __slots__ = ("done", "total", "binary")
    DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    BINARY_FIELD_NUMBER: _ClassVar[int]
    done: int
    total: int
    binary: str
    def __init__(self, done: _Optional[int] = ..., total: _Optional[int] = ..., binary: _Optional[str] = ...) -> None: ...

class DiscoveryReport(_message.Message):
    __slots__ = ("proposals", "problems", "binaries_scanned", "elapsed", "applied", "applied_agents")
    PROPOSALS_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    BINARIES_SCANNED_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    APPLIED_AGENTS_FIELD_NUMBER: _ClassVar[int]
    proposals: _containers.RepeatedCompositeFieldContainer[AgentProposal]
    problems: _containers.RepeatedCompositeFieldContainer[DiscoveryProblem]
    binaries_scanned: int
    elapsed: _duration_pb2.Duration
    applied: bool
    applied_agents: _containers.RepeatedCompositeFieldContainer[AppliedAgent]
    def __init__(self, proposals: _Optional[_Iterable[_Union[AgentProposal, _Mapping]]] = ..., problems: _Optional[_Iterable[_Union[DiscoveryProblem, _Mapping]]] = ..., binaries_scanned: _Optional[int] = ..., elapsed: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., applied: _Optional[bool] = ..., applied_agents: _Optional[_Iterable[_Union[AppliedAgent, _Mapping]]] = ...) -> None: ...

class AgentProposal(_message.Message):
    __slots__ = ("slug", "name", "binary_path", "discovery_method", "version", "package_name", "package_section", "tool_type", "preset", "capabilities", "description", "help_text")
    SLUG_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    BINARY_PATH_FIELD_NUMBER: _ClassVar[int]
    DISCOVERY_METHOD_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_NAME_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_SECTION_FIELD_NUMBER: _ClassVar[int]
    TOOL_TYPE_FIELD_NUMBER: _ClassVar[int]
    PRESET_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    HELP_TEXT_FIELD_NUMBER: _ClassVar[int]
    slug: str
    name: str
    binary_path: str
    discovery_method: _common_pb2.DiscoveryMethod
    version: str
    package_name: str
    package_section: str
    tool_type: str
    preset: str
    capabilities: _containers.RepeatedCompositeFieldContainer[CapabilityProposal]
    description: str
    help_text: str
    def __init__(self, slug: _Optional[str] = ..., name: _Optional[str] = ..., binary_path: _Optional[str] = ..., discovery_method: _Optional[_Union[_common_pb2.DiscoveryMethod, str]] = ..., version: _Optional[str] = ..., package_name: _Optional[str] = ..., package_section: _Optional[str] = ..., tool_type: _Optional[str] = ..., preset: _Optional[str] = ..., capabilities: _Optional[_Iterable[_Union[CapabilityProposal, _Mapping]]] = ..., description: _Optional[str] = ..., help_text: _Optional[str] = ...) -> None: ...

class CapabilityProposal(_message.Message):
    __slots__ = ("key", "label", "description", "source", "interaction_mode", "command_tokens", "prompt_template", "args_schema", "danger_level", "requires_approval", "danger_reason")
    KEY_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    INTERACTION_MODE_FIELD_NUMBER: _ClassVar[int]
    COMMAND_TOKENS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    ARGS_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    DANGER_LEVEL_FIELD_NUMBER: _ClassVar[int]
    REQUIRES_APPROVAL_FIELD_NUMBER: _ClassVar[int]
    DANGER_REASON_FIELD_NUMBER: _ClassVar[int]
    key: str
    label: str
    description: str
    source: _common_pb2.CapabilitySource
    interaction_mode: _common_pb2.InteractionMode
    command_tokens: _containers.RepeatedScalarFieldContainer[str]
    prompt_template: str
    args_schema: _struct_pb2.Struct
    danger_level: int
    requires_approval: bool
    danger_reason: str
    def __init__(self, key: _Optional[str] = ..., label: _Optional[str] = ..., description: _Optional[str] = ..., source: _Optional[_Union[_common_pb2.CapabilitySource, str]] = ..., interaction_mode: _Optional[_Union[_common_pb2.InteractionMode, str]] = ..., command_tokens: _Optional[_Iterable[str]] = ..., prompt_template: _Optional[str] = ..., args_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., danger_level: _Optional[int] = ..., requires_approval: _Optional[bool] = ..., danger_reason: _Optional[str] = ...) -> None: ...

class DiscoveryProblem(_message.Message):
    __slots__ = ("binary", "probe", "problem", "detail")
    BINARY_FIELD_NUMBER: _ClassVar[int]
    PROBE_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    binary: str
    probe: str
    problem: ProbeProblem
    detail: str
    def __init__(self, binary: _Optional[str] = ..., probe: _Optional[str] = ..., problem: _Optional[_Union[ProbeProblem, str]] = ..., detail: _Optional[str] = ...) -> None: ...

class AppliedAgent(_message.Message):
    __slots__ = ("agent_id", "slug", "action", "reason", "capabilities")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    SLUG_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    slug: str
    action: ApplyAction
    reason: str
    capabilities: _containers.RepeatedCompositeFieldContainer[AppliedCapability]
    def __init__(self, agent_id: _Optional[str] = ..., slug: _Optional[str] = ..., action: _Optional[_Union[ApplyAction, str]] = ..., reason: _Optional[str] = ..., capabilities: _Optional[_Iterable[_Union[AppliedCapability, _Mapping]]] = ...) -> None: ...

class AppliedCapability(_message.Message):
    __slots__ = ("capability_id", "key", "action", "reason")
    CAPABILITY_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    capability_id: str
    key: str
    action: ApplyAction
    reason: str
    def __init__(self, capability_id: _Optional[str] = ..., key: _Optional[str] = ..., action: _Optional[_Union[ApplyAction, str]] = ..., reason: _Optional[str] = ...) -> None: ...
