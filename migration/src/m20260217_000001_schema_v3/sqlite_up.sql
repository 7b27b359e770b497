-- Agent Monitor schema v3.0 on SQLite (3.41 or later; sqlx bundles a newer one).
--
-- The same tables, columns, defaults, keys, checks and indexes as postgres_up.sql, under the
-- same names. Only the types change, to the storage that sqlx (under sea-orm) binds and
-- decodes on SQLite, so that every entity round-trips:
--   uuid         BLOB, 16 bytes           sqlx binds uuid::Uuid as a blob and decodes only a
--                                         blob; a uuid written as text would never match
--   jsonb        TEXT, JSON text          sea-orm's Json is serde_json::Value sent as text
--   timestamptz  TEXT, RFC 3339 UTC       what sqlx writes for chrono DateTime<Utc/FixedOffset>
--                                         (2026-02-17T09:30:00.123456+00:00); the default
--                                         below writes the same shape, so text order is time
--                                         order as long as every writer uses UTC
--   boolean      INTEGER, 0 or 1
--   smallint, integer, bigint  INTEGER
--   enum types   TEXT with a CHECK listing the labels, named <table>_<column>_check
--
-- Every table is STRICT: SQLite then refuses a value of the wrong storage class (a uuid as
-- text, a number as text) instead of storing it and leaving a row no query will find.
-- Foreign keys are only enforced on connections that set PRAGMA foreign_keys = ON.
--
-- Two expressions stand in for PostgreSQL functions:
--   gen_random_uuid()  unhex(printf(...)) below: 16 random bytes with the RFC 4122
--                      version (4) and variant (10xx) bits set
--   now()              strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'): millisecond RFC 3339 UTC

-- ---------------------------------------------------------------------------
-- Agent registry
-- ---------------------------------------------------------------------------

CREATE TABLE agents (
    id                BLOB    NOT NULL PRIMARY KEY DEFAULT (unhex(printf('%s4%s%x%s%s',
        hex(randomblob(6)), substr(hex(randomblob(2)), 2), 8 + abs(random() % 4),
        substr(hex(randomblob(2)), 2), hex(randomblob(6))))),
    owner_id          BLOB    NOT NULL DEFAULT X'00000000000000000000000000000001',
    workspace_id      BLOB    NOT NULL DEFAULT X'00000000000000000000000000000001',
    name              TEXT    NOT NULL,
    slug              TEXT    NOT NULL,
    kind              TEXT    NOT NULL DEFAULT 'custom',
    binary_path       TEXT    NOT NULL,
    base_args         TEXT    NOT NULL DEFAULT '[]',
    working_dir       TEXT,
    env_allowlist     TEXT    NOT NULL DEFAULT '[]',
    is_active         INTEGER NOT NULL DEFAULT TRUE,
    max_concurrent    INTEGER NOT NULL DEFAULT 1,
    discovery_method  TEXT    NOT NULL DEFAULT 'manual',
    version           TEXT,
    package_name      TEXT,
    package_section   TEXT,
    tool_type         TEXT,
    mcp_enabled       INTEGER NOT NULL DEFAULT FALSE,
    session_config    TEXT,
    last_scanned_at   TEXT,
    metadata          TEXT    NOT NULL DEFAULT '{}',
    created_at        TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at        TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    CONSTRAINT agents_slug_unique UNIQUE (slug),
    CONSTRAINT agents_kind_check CHECK (kind IN ('builtin', 'custom')),
    CONSTRAINT agents_discovery_method_check
        CHECK (discovery_method IN ('preset', 'path_scan', 'manual'))
) STRICT;

CREATE INDEX idx_agents_workspace ON agents (workspace_id, is_active);

CREATE TABLE agent_capabilities (
    id                BLOB    NOT NULL PRIMARY KEY DEFAULT (unhex(printf('%s4%s%x%s%s',
        hex(randomblob(6)), substr(hex(randomblob(2)), 2), 8 + abs(random() % 4),
        substr(hex(randomblob(2)), 2), hex(randomblob(6))))),
    agent_id          BLOB    NOT NULL,
    key               TEXT    NOT NULL,
    label             TEXT    NOT NULL,
    description       TEXT,
    source            TEXT    NOT NULL,
    interaction_mode  TEXT    NOT NULL DEFAULT 'template',
    command_tokens    TEXT,
    prompt_template   TEXT,
    args_schema       TEXT    NOT NULL DEFAULT '{}',
    requires_approval INTEGER NOT NULL DEFAULT FALSE,
    is_enabled        INTEGER NOT NULL DEFAULT TRUE,
    danger_level      INTEGER NOT NULL DEFAULT 0,
    timeout_sec       INTEGER NOT NULL DEFAULT 300,
    max_output_bytes  INTEGER NOT NULL DEFAULT 10485760,
    created_at        TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    CONSTRAINT agent_capabilities_agent_id_agents_id_fk
        FOREIGN KEY (agent_id) REFERENCES agents (id) ON DELETE CASCADE,
    CONSTRAINT uq_agent_capability_key UNIQUE (agent_id, key),
    -- Template-mode must have command_tokens; prompt-mode may have null.
    CONSTRAINT capability_mode_consistency CHECK (
        (interaction_mode = 'template' AND command_tokens IS NOT NULL)
        OR (interaction_mode = 'prompt')
    ),
    CONSTRAINT agent_capabilities_source_check CHECK (source IN (
        'manual', 'builtin', 'preset', 'scan_help', 'scan_completion',
        'scan_fig', 'scan_mcp', 'scan_man', 'llm_generated'
    )),
    CONSTRAINT agent_capabilities_interaction_mode_check
        CHECK (interaction_mode IN ('template', 'prompt'))
) STRICT;

CREATE INDEX idx_capabilities_agent ON agent_capabilities (agent_id, is_enabled);

-- ---------------------------------------------------------------------------
-- Tasks
-- ---------------------------------------------------------------------------

CREATE TABLE tasks (
    id                BLOB    NOT NULL PRIMARY KEY DEFAULT (unhex(printf('%s4%s%x%s%s',
        hex(randomblob(6)), substr(hex(randomblob(2)), 2), 8 + abs(random() % 4),
        substr(hex(randomblob(2)), 2), hex(randomblob(6))))),
    owner_id          BLOB    NOT NULL DEFAULT X'00000000000000000000000000000001',
    workspace_id      BLOB    NOT NULL DEFAULT X'00000000000000000000000000000001',
    parent_task_id    BLOB,
    title             TEXT    NOT NULL,
    description       TEXT,
    status            TEXT    NOT NULL DEFAULT 'todo',
    priority          INTEGER NOT NULL DEFAULT 3,
    sort_order        INTEGER NOT NULL DEFAULT 0,
    assignee_agent_id BLOB,
    input_context     TEXT    NOT NULL DEFAULT '{}',
    due_at            TEXT,
    created_at        TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at        TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    CONSTRAINT tasks_parent_task_id_tasks_id_fk
        FOREIGN KEY (parent_task_id) REFERENCES tasks (id) ON DELETE SET NULL,
    CONSTRAINT tasks_assignee_agent_id_agents_id_fk
        FOREIGN KEY (assignee_agent_id) REFERENCES agents (id) ON DELETE SET NULL,
    CONSTRAINT tasks_status_check
        CHECK (status IN ('todo', 'in_progress', 'blocked', 'done', 'cancelled'))
) STRICT;

CREATE INDEX idx_tasks_board ON tasks (workspace_id, status, sort_order);
CREATE INDEX idx_tasks_parent ON tasks (parent_task_id);

-- Cycle detection is the service layer's job (transactional DFS with row locks).
CREATE TABLE task_dependencies (
    task_id            BLOB NOT NULL,
    depends_on_task_id BLOB NOT NULL,
    created_at         TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    CONSTRAINT task_dependencies_task_id_depends_on_task_id_pk
        PRIMARY KEY (task_id, depends_on_task_id),
    CONSTRAINT task_dependencies_task_id_tasks_id_fk
        FOREIGN KEY (task_id) REFERENCES tasks (id) ON DELETE CASCADE,
    CONSTRAINT task_dependencies_depends_on_task_id_tasks_id_fk
        FOREIGN KEY (depends_on_task_id) REFERENCES tasks (id) ON DELETE CASCADE,
    CONSTRAINT no_self_dependency CHECK (task_id <> depends_on_task_id)
) STRICT;

-- ---------------------------------------------------------------------------
-- Executions (log fields merged in; execution_logs is gone)
-- ---------------------------------------------------------------------------

CREATE TABLE executions (
    id                  BLOB    NOT NULL PRIMARY KEY DEFAULT (unhex(printf('%s4%s%x%s%s',
        hex(randomblob(6)), substr(hex(randomblob(2)), 2), 8 + abs(random() % 4),
        substr(hex(randomblob(2)), 2), hex(randomblob(6))))),
    task_id             BLOB    NOT NULL,
    agent_id            BLOB    NOT NULL,
    capability_id       BLOB    NOT NULL,
    requested_by        BLOB    NOT NULL DEFAULT X'00000000000000000000000000000001',
    status              TEXT    NOT NULL DEFAULT 'queued',
    mode                TEXT    NOT NULL DEFAULT 'template',
    args                TEXT    NOT NULL DEFAULT '{}',
    prompt              TEXT,
    pid                 INTEGER,
    session_ref         TEXT,
    tmux_session_name   TEXT,
    parent_execution_id BLOB,
    started_at          TEXT,
    ended_at            TEXT,
    exit_code           INTEGER,
    error               TEXT,
    worker_id           TEXT,
    heartbeat_at        TEXT,
    log_file_path       TEXT,
    log_byte_size       INTEGER NOT NULL DEFAULT 0,
    log_line_count      INTEGER NOT NULL DEFAULT 0,
    log_updated_at      TEXT,
    retry_count         INTEGER NOT NULL DEFAULT 0,
    max_retries         INTEGER NOT NULL DEFAULT 0,
    created_at          TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    CONSTRAINT executions_task_id_tasks_id_fk
        FOREIGN KEY (task_id) REFERENCES tasks (id) ON DELETE CASCADE,
    CONSTRAINT executions_agent_id_agents_id_fk
        FOREIGN KEY (agent_id) REFERENCES agents (id),
    CONSTRAINT executions_capability_id_agent_capabilities_id_fk
        FOREIGN KEY (capability_id) REFERENCES agent_capabilities (id),
    CONSTRAINT executions_parent_execution_id_executions_id_fk
        FOREIGN KEY (parent_execution_id) REFERENCES executions (id) ON DELETE SET NULL,
    CONSTRAINT executions_status_check CHECK (status IN (
        'queued', 'running', 'cancelling', 'succeeded', 'failed', 'cancelled', 'timed_out'
    )),
    CONSTRAINT executions_mode_check CHECK (mode IN ('template', 'prompt'))
) STRICT;

-- Job claim: only queued rows are ever scanned.
CREATE INDEX idx_executions_queue ON executions (status, created_at) WHERE status = 'queued';
CREATE INDEX idx_executions_task ON executions (task_id, created_at);
CREATE INDEX idx_executions_stale ON executions (heartbeat_at);
CREATE INDEX idx_executions_agent_active ON executions (agent_id, status);

-- ---------------------------------------------------------------------------
-- Audit trail
-- ---------------------------------------------------------------------------

CREATE TABLE task_events (
    -- AUTOINCREMENT: ids are never reused, like an identity column's.
    id         INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    task_id    BLOB    NOT NULL,
    actor_type TEXT    NOT NULL,
    actor_id   BLOB,
    event_type TEXT    NOT NULL,
    payload    TEXT    NOT NULL DEFAULT '{}',
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    CONSTRAINT task_events_task_id_tasks_id_fk
        FOREIGN KEY (task_id) REFERENCES tasks (id) ON DELETE CASCADE,
    CONSTRAINT task_events_actor_type_check CHECK (actor_type IN ('user', 'agent', 'system'))
) STRICT;

CREATE INDEX idx_task_events_task ON task_events (task_id, created_at);

-- ---------------------------------------------------------------------------
-- Workers
-- ---------------------------------------------------------------------------

CREATE TABLE worker_heartbeats (
    worker_id          TEXT    NOT NULL PRIMARY KEY,
    last_seen_at       TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    current_executions INTEGER NOT NULL DEFAULT 0,
    metadata           TEXT    NOT NULL DEFAULT '{}'
) STRICT;

-- Runtime-tunable settings.
CREATE TABLE worker_config (
    key        TEXT NOT NULL PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'))
) STRICT;
