-- Agent Monitor schema v3.0 on PostgreSQL (15 or later: gen_random_uuid() is built in).
--
-- This is the data model (data-model.md, Drizzle) written out as DDL. Constraint names follow
-- Drizzle's conventions so that a database created by drizzle-kit from the TypeScript schema
-- and one created here are the same, name for name:
--   single-column primary key  <table>_pkey                          (PostgreSQL's default)
--   composite primary key      <table>_<col>_<col>_pk
--   column .unique()           <table>_<col>_unique
--   foreign key                <table>_<col>_<foreign table>_<foreign col>_fk
-- Checks and indexes carry the names the data model gives them.

-- ---------------------------------------------------------------------------
-- Enums (labels in the data model's order: the order is part of the type)
-- ---------------------------------------------------------------------------

CREATE TYPE task_status AS ENUM ('todo', 'in_progress', 'blocked', 'done', 'cancelled');

-- 'cancelling' enables graceful shutdown: API sets cancelling -> worker SIGTERMs.
CREATE TYPE execution_status AS ENUM (
    'queued', 'running', 'cancelling', 'succeeded', 'failed', 'cancelled', 'timed_out'
);

-- 'template' = CLI tools with command_tokens; 'prompt' = AI agents with free-form prompt.
CREATE TYPE interaction_mode AS ENUM ('template', 'prompt');

CREATE TYPE agent_kind AS ENUM ('builtin', 'custom');

CREATE TYPE capability_source AS ENUM (
    'manual', 'builtin', 'preset', 'scan_help', 'scan_completion',
    'scan_fig', 'scan_mcp', 'scan_man', 'llm_generated'
);

-- How an agent was discovered: auto-scan, preset match, or manual add.
CREATE TYPE discovery_method AS ENUM ('preset', 'path_scan', 'manual');

-- ---------------------------------------------------------------------------
-- Agent registry
-- ---------------------------------------------------------------------------

CREATE TABLE agents (
    id                uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id          uuid             NOT NULL DEFAULT '00000000-0000-0000-0000-000000000001',
    workspace_id      uuid             NOT NULL DEFAULT '00000000-0000-0000-0000-000000000001',
    name              text             NOT NULL,
    slug              text             NOT NULL,
    kind              agent_kind       NOT NULL DEFAULT 'custom',
    binary_path       text             NOT NULL,
    base_args         jsonb            NOT NULL DEFAULT '[]',
    working_dir       text,
    env_allowlist     jsonb            NOT NULL DEFAULT '[]',
    is_active         boolean          NOT NULL DEFAULT true,
    max_concurrent    integer          NOT NULL DEFAULT 1,
    discovery_method  discovery_method NOT NULL DEFAULT 'manual',
    version           text,
    package_name      text,
    package_section   text,
    tool_type         text,
    mcp_enabled       boolean          NOT NULL DEFAULT false,
    session_config    jsonb,
    last_scanned_at   timestamptz,
    metadata          jsonb            NOT NULL DEFAULT '{}',
    created_at        timestamptz      NOT NULL DEFAULT now(),
    updated_at        timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT agents_slug_unique UNIQUE (slug)
);

CREATE INDEX idx_agents_workspace ON agents (workspace_id, is_active);

CREATE TABLE agent_capabilities (
    id                uuid              PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id          uuid              NOT NULL,
    key               text              NOT NULL,
    label             text              NOT NULL,
    description       text,
    source            capability_source NOT NULL,
    interaction_mode  interaction_mode  NOT NULL DEFAULT 'template',
    command_tokens    jsonb,
    prompt_template   text,
    args_schema       jsonb             NOT NULL DEFAULT '{}',
    requires_approval boolean           NOT NULL DEFAULT false,
    is_enabled        boolean           NOT NULL DEFAULT true,
    danger_level      smallint          NOT NULL DEFAULT 0,
    timeout_sec       integer           NOT NULL DEFAULT 300,
    max_output_bytes  integer           NOT NULL DEFAULT 10485760,
    created_at        timestamptz       NOT NULL DEFAULT now(),
    CONSTRAINT agent_capabilities_agent_id_agents_id_fk
        FOREIGN KEY (agent_id) REFERENCES agents (id) ON DELETE CASCADE,
    CONSTRAINT uq_agent_capability_key UNIQUE (agent_id, key),
    -- Template-mode must have command_tokens; prompt-mode may have null.
    CONSTRAINT capability_mode_consistency CHECK (
        (interaction_mode = 'template' AND command_tokens IS NOT NULL)
        OR (interaction_mode = 'prompt')
    )
);

CREATE INDEX idx_capabilities_agent ON agent_capabilities (agent_id, is_enabled);

-- ---------------------------------------------------------------------------
-- Tasks
-- ---------------------------------------------------------------------------

CREATE TABLE tasks (
    id                uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id          uuid        NOT NULL DEFAULT '00000000-0000-0000-0000-000000000001',
    workspace_id      uuid        NOT NULL DEFAULT '00000000-0000-0000-0000-000000000001',
    parent_task_id    uuid,
    title             text        NOT NULL,
    description       text,
    status            task_status NOT NULL DEFAULT 'todo',
    priority          smallint    NOT NULL DEFAULT 3,
    sort_order        integer     NOT NULL DEFAULT 0,
    assignee_agent_id uuid,
    input_context     jsonb       NOT NULL DEFAULT '{}',
    due_at            timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tasks_parent_task_id_tasks_id_fk
        FOREIGN KEY (parent_task_id) REFERENCES tasks (id) ON DELETE SET NULL,
    CONSTRAINT tasks_assignee_agent_id_agents_id_fk
        FOREIGN KEY (assignee_agent_id) REFERENCES agents (id) ON DELETE SET NULL
);

CREATE INDEX idx_tasks_board ON tasks (workspace_id, status, sort_order);
CREATE INDEX idx_tasks_parent ON tasks (parent_task_id);

-- Cycle detection is the service layer's job (transactional DFS with row locks).
CREATE TABLE task_dependencies (
    task_id            uuid        NOT NULL,
    depends_on_task_id uuid        NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT task_dependencies_task_id_depends_on_task_id_pk
        PRIMARY KEY (task_id, depends_on_task_id),
    CONSTRAINT task_dependencies_task_id_tasks_id_fk
        FOREIGN KEY (task_id) REFERENCES tasks (id) ON DELETE CASCADE,
    CONSTRAINT task_dependencies_depends_on_task_id_tasks_id_fk
        FOREIGN KEY (depends_on_task_id) REFERENCES tasks (id) ON DELETE CASCADE,
    CONSTRAINT no_self_dependency CHECK (task_id <> depends_on_task_id)
);

-- ---------------------------------------------------------------------------
-- Executions (log fields merged in; execution_logs is gone)
-- ---------------------------------------------------------------------------

CREATE TABLE executions (
    id                  uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    task_id             uuid             NOT NULL,
    agent_id            uuid             NOT NULL,
    capability_id       uuid             NOT NULL,
    requested_by        uuid             NOT NULL DEFAULT '00000000-0000-0000-0000-000000000001',
    status              execution_status NOT NULL DEFAULT 'queued',
    mode                interaction_mode NOT NULL DEFAULT 'template',
    args                jsonb            NOT NULL DEFAULT '{}',
    prompt              text,
    pid                 integer,
    session_ref         text,
    tmux_session_name   text,
    parent_execution_id uuid,
    started_at          timestamptz,
    ended_at            timestamptz,
    exit_code           integer,
    error               text,
    worker_id           text,
    heartbeat_at        timestamptz,
    log_file_path       text,
    log_byte_size       bigint           NOT NULL DEFAULT 0,
    log_line_count      integer          NOT NULL DEFAULT 0,
    log_updated_at      timestamptz,
    retry_count         integer          NOT NULL DEFAULT 0,
    max_retries         integer          NOT NULL DEFAULT 0,
    created_at          timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT executions_task_id_tasks_id_fk
        FOREIGN KEY (task_id) REFERENCES tasks (id) ON DELETE CASCADE,
    CONSTRAINT executions_agent_id_agents_id_fk
        FOREIGN KEY (agent_id) REFERENCES agents (id),
    CONSTRAINT executions_capability_id_agent_capabilities_id_fk
        FOREIGN KEY (capability_id) REFERENCES agent_capabilities (id),
    CONSTRAINT executions_parent_execution_id_executions_id_fk
        FOREIGN KEY (parent_execution_id) REFERENCES executions (id) ON DELETE SET NULL
);

-- Job claim (FOR UPDATE SKIP LOCKED): only queued rows are ever scanned.
CREATE INDEX idx_executions_queue ON executions (status, created_at) WHERE status = 'queued';
CREATE INDEX idx_executions_task ON executions (task_id, created_at);
CREATE INDEX idx_executions_stale ON executions (heartbeat_at);
CREATE INDEX idx_executions_agent_active ON executions (agent_id, status);

-- ---------------------------------------------------------------------------
-- Audit trail
-- ---------------------------------------------------------------------------

CREATE TABLE task_events (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id    uuid        NOT NULL,
    actor_type text        NOT NULL,
    actor_id   uuid,
    event_type text        NOT NULL,
    payload    jsonb       NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT task_events_task_id_tasks_id_fk
        FOREIGN KEY (task_id) REFERENCES tasks (id) ON DELETE CASCADE,
    -- Drizzle's text enum is only a TypeScript type; the database enforces it here.
    CONSTRAINT task_events_actor_type_check CHECK (actor_type IN ('user', 'agent', 'system'))
);

CREATE INDEX idx_task_events_task ON task_events (task_id, created_at);

-- ---------------------------------------------------------------------------
-- Workers
-- ---------------------------------------------------------------------------

CREATE TABLE worker_heartbeats (
    worker_id          text        PRIMARY KEY,
    last_seen_at       timestamptz NOT NULL DEFAULT now(),
    current_executions integer     NOT NULL DEFAULT 0,
    metadata           jsonb       NOT NULL DEFAULT '{}'
);

-- Runtime-tunable settings.
CREATE TABLE worker_config (
    key        text        PRIMARY KEY,
    value      jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
