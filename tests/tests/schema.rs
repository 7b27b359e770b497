//! Schema v3.0 on both backends: the migrations run up, down and up again; the live schema
//! matches the data model; the database itself refuses what the data model forbids and
//! cascades what it says; the entities round-trip through it.
//!
//! The expected schema ([`spec::SCHEMA`]) is written from `data-model.md` v3.0, in the data
//! model's own terms (PostgreSQL types, defaults as Drizzle states them), not captured from a
//! database. For each backend it is rendered into *facts* — one line per column, key, check
//! and index, in the words of that backend's catalog — and the live database, introspected
//! through `information_schema`/`pg_catalog` or SQLite's pragmas and `sqlite_master`, is
//! turned into the same kind of lines. The two sets must be equal; a difference is reported
//! as the facts missing and the facts unexpected.

use std::collections::{BTreeMap, BTreeSet};

use amon_server::entity::{
    agent_capabilities, agents, executions, prelude::*, task_dependencies, task_events, tasks,
    worker_config, worker_heartbeats,
};
use amon_tests::{
    both_backends,
    db::{Backend, TestDb},
};
use anyhow::{Context, Result, bail, ensure};
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    ModelTrait, PaginatorTrait, QueryFilter, QueryResult, Set, Statement, TransactionTrait,
    prelude::{ChronoUtc, DateTimeWithTimeZone, Uuid},
    sea_query::{Expr, Query},
};
use serde_json::json;

use spec::{Column, DefaultValue, SCHEMA, Table, Type};

/// The data model, v3.0, as data.
mod spec {
    /// A column type, in the data model's (PostgreSQL) vocabulary.
    #[derive(Clone, Copy)]
    pub enum Type {
        Uuid,
        Text,
        Boolean,
        SmallInt,
        Integer,
        BigInt,
        Jsonb,
        Timestamptz,
        /// One of [`ENUMS`], by name.
        Enum(&'static str),
    }

    /// A column default, as the data model states it.
    #[derive(Clone, Copy)]
    pub enum DefaultValue {
        /// `.defaultRandom()`: a random (v4) uuid.
        RandomUuid,
        /// The single-tenant placeholder owner, workspace and requester, [`DEFAULT_TENANT`].
        Tenant,
        /// `.defaultNow()`.
        Now,
        Int(i64),
        Bool(bool),
        Json(&'static str),
        /// An enum label.
        Label(&'static str),
        /// `.generatedAlwaysAsIdentity()`.
        Identity,
    }

    #[derive(Clone, Copy)]
    pub struct Column {
        pub name: &'static str,
        pub ty: Type,
        pub nullable: bool,
        pub default: Option<DefaultValue>,
    }

    /// `NOT NULL`, no default.
    const fn not_null(name: &'static str, ty: Type) -> Column {
        Column {
            name,
            ty,
            nullable: false,
            default: None,
        }
    }

    /// `NOT NULL` with a default.
    const fn defaulted(name: &'static str, ty: Type, default: DefaultValue) -> Column {
        Column {
            name,
            ty,
            nullable: false,
            default: Some(default),
        }
    }

    /// Nullable, no default.
    const fn nullable(name: &'static str, ty: Type) -> Column {
        Column {
            name,
            ty,
            nullable: true,
            default: None,
        }
    }

    pub struct PrimaryKey {
        /// `None` for a single-column key declared inline (PostgreSQL names it
        /// `<table>_pkey`; SQLite leaves it unnamed).
        pub name: Option<&'static str>,
        pub columns: &'static [&'static str],
    }

    pub struct Unique {
        pub name: &'static str,
        pub columns: &'static [&'static str],
    }

    #[derive(Clone, Copy)]
    pub enum OnDelete {
        Cascade,
        SetNull,
        /// The data model gives no rule: the default, `NO ACTION`.
        NoAction,
    }

    /// A single-column foreign key. Its name follows Drizzle:
    /// `<table>_<column>_<foreign table>_<foreign column>_fk`.
    pub struct ForeignKey {
        pub column: &'static str,
        pub references: (&'static str, &'static str),
        pub on_delete: OnDelete,
    }

    pub struct Check {
        pub name: &'static str,
        /// The data model's expression, as SQLite keeps it.
        pub sqlite: &'static str,
        /// The same expression as PostgreSQL prints it back (`pg_get_constraintdef`).
        pub postgres: &'static str,
    }

    pub struct Index {
        pub name: &'static str,
        pub columns: &'static [&'static str],
        /// A partial index's condition `column = 'label'`.
        pub only_where: Option<(&'static str, &'static str)>,
    }

    pub struct Table {
        pub name: &'static str,
        pub columns: &'static [Column],
        pub primary_key: PrimaryKey,
        pub uniques: &'static [Unique],
        pub foreign_keys: &'static [ForeignKey],
        /// The data model's checks; SQLite adds one per enum column, derived from [`ENUMS`].
        pub checks: &'static [Check],
        pub indexes: &'static [Index],
    }

    impl Table {
        pub fn column(&self, name: &str) -> &Column {
            self.columns
                .iter()
                .find(|c| c.name == name)
                .unwrap_or_else(|| panic!("spec: {}.{name} is not a column", self.name))
        }
    }

    pub const DEFAULT_TENANT: &str = "00000000-0000-0000-0000-000000000001";

    /// The enum types and their labels, in order.
    #[rustfmt::skip] // a table: keep it one line per entry, like the data model
    pub const ENUMS: &[(&str, &[&str])] = &[
        ("task_status", &["todo", "in_progress", "blocked", "done", "cancelled"]),
        (
            "execution_status",
            &["queued", "running", "cancelling", "succeeded", "failed", "cancelled", "timed_out"],
        ),
        ("interaction_mode", &["template", "prompt"]),
        ("agent_kind", &["builtin", "custom"]),
        (
            "capability_source",
            &[
                "manual",
                "builtin",
                "preset",
                "scan_help",
                "scan_completion",
                "scan_fig",
                "scan_mcp",
                "scan_man",
                "llm_generated",
            ],
        ),
        ("discovery_method", &["preset", "path_scan", "manual"]),
    ];

    pub fn labels(enum_name: &str) -> &'static [&'static str] {
        ENUMS
            .iter()
            .find(|(name, _)| *name == enum_name)
            .unwrap_or_else(|| panic!("spec: no enum {enum_name}"))
            .1
    }

    use DefaultValue::*;
    use OnDelete::*;
    use Type::*;

    const TENANT_ID: [Column; 2] = [
        defaulted("owner_id", Uuid, Tenant),
        defaulted("workspace_id", Uuid, Tenant),
    ];

    /// The eight tables, in the data model's order.
    #[rustfmt::skip] // a table: keep it laid out like the data model
    pub const SCHEMA: &[Table] = &[
        Table {
            name: "agents",
            columns: &[
                defaulted("id", Uuid, RandomUuid),
                TENANT_ID[0],
                TENANT_ID[1],
                not_null("name", Text),
                not_null("slug", Text),
                defaulted("kind", Enum("agent_kind"), Label("custom")),
                not_null("binary_path", Text),
                defaulted("base_args", Jsonb, Json("[]")),
                nullable("working_dir", Text),
                defaulted("env_allowlist", Jsonb, Json("[]")),
                defaulted("is_active", Boolean, Bool(true)),
                defaulted("max_concurrent", Integer, Int(1)),
                defaulted("discovery_method", Enum("discovery_method"), Label("manual")),
                nullable("version", Text),
                nullable("package_name", Text),
                nullable("package_section", Text),
                nullable("tool_type", Text),
                defaulted("mcp_enabled", Boolean, Bool(false)),
                nullable("session_config", Jsonb),
                nullable("last_scanned_at", Timestamptz),
                defaulted("metadata", Jsonb, Json("{}")),
                defaulted("created_at", Timestamptz, Now),
                defaulted("updated_at", Timestamptz, Now),
            ],
            primary_key: PrimaryKey { name: None, columns: &["id"] },
            uniques: &[Unique { name: "agents_slug_unique", columns: &["slug"] }],
            foreign_keys: &[],
            checks: &[],
            indexes: &[Index {
                name: "idx_agents_workspace",
                columns: &["workspace_id", "is_active"],
                only_where: None,
            }],
        },
        Table {
            name: "agent_capabilities",
            columns: &[
                defaulted("id", Uuid, RandomUuid),
                not_null("agent_id", Uuid),
                not_null("key", Text),
                not_null("label", Text),
                nullable("description", Text),
                not_null("source", Enum("capability_source")),
                defaulted("interaction_mode", Enum("interaction_mode"), Label("template")),
                nullable("command_tokens", Jsonb),
                nullable("prompt_template", Text),
                defaulted("args_schema", Jsonb, Json("{}")),
                defaulted("requires_approval", Boolean, Bool(false)),
                defaulted("is_enabled", Boolean, Bool(true)),
                defaulted("danger_level", SmallInt, Int(0)),
                defaulted("timeout_sec", Integer, Int(300)),
                defaulted("max_output_bytes", Integer, Int(10 * 1024 * 1024)),
                defaulted("created_at", Timestamptz, Now),
            ],
            primary_key: PrimaryKey { name: None, columns: &["id"] },
            uniques: &[Unique { name: "uq_agent_capability_key", columns: &["agent_id", "key"] }],
            foreign_keys: &[ForeignKey {
                column: "agent_id",
                references: ("agents", "id"),
                on_delete: Cascade,
            }],
            checks: &[Check {
                name: "capability_mode_consistency",
                sqlite: "(interaction_mode = 'template' AND command_tokens IS NOT NULL) \
                         OR (interaction_mode = 'prompt')",
                postgres: "CHECK ((((interaction_mode = 'template'::interaction_mode) \
                           AND (command_tokens IS NOT NULL)) \
                           OR (interaction_mode = 'prompt'::interaction_mode)))",
            }],
            indexes: &[Index {
                name: "idx_capabilities_agent",
                columns: &["agent_id", "is_enabled"],
                only_where: None,
            }],
        },
        Table {
            name: "tasks",
            columns: &[
                defaulted("id", Uuid, RandomUuid),
                TENANT_ID[0],
                TENANT_ID[1],
                nullable("parent_task_id", Uuid),
                not_null("title", Text),
                nullable("description", Text),
                defaulted("status", Enum("task_status"), Label("todo")),
                defaulted("priority", SmallInt, Int(3)),
                defaulted("sort_order", Integer, Int(0)),
                nullable("assignee_agent_id", Uuid),
                defaulted("input_context", Jsonb, Json("{}")),
                nullable("due_at", Timestamptz),
                defaulted("created_at", Timestamptz, Now),
                defaulted("updated_at", Timestamptz, Now),
            ],
            primary_key: PrimaryKey { name: None, columns: &["id"] },
            uniques: &[],
            foreign_keys: &[
                ForeignKey {
                    column: "parent_task_id",
                    references: ("tasks", "id"),
                    on_delete: SetNull,
                },
                ForeignKey {
                    column: "assignee_agent_id",
                    references: ("agents", "id"),
                    on_delete: SetNull,
                },
            ],
            checks: &[],
            indexes: &[
                Index {
                    name: "idx_tasks_board",
                    columns: &["workspace_id", "status", "sort_order"],
                    only_where: None,
                },
                Index { name: "idx_tasks_parent", columns: &["parent_task_id"], only_where: None },
            ],
        },
        Table {
            name: "task_dependencies",
            columns: &[
                not_null("task_id", Uuid),
                not_null("depends_on_task_id", Uuid),
                defaulted("created_at", Timestamptz, Now),
            ],
            primary_key: PrimaryKey {
                name: Some("task_dependencies_task_id_depends_on_task_id_pk"),
                columns: &["task_id", "depends_on_task_id"],
            },
            uniques: &[],
            foreign_keys: &[
                ForeignKey { column: "task_id", references: ("tasks", "id"), on_delete: Cascade },
                ForeignKey {
                    column: "depends_on_task_id",
                    references: ("tasks", "id"),
                    on_delete: Cascade,
                },
            ],
            checks: &[Check {
                name: "no_self_dependency",
                sqlite: "task_id <> depends_on_task_id",
                postgres: "CHECK ((task_id <> depends_on_task_id))",
            }],
            indexes: &[],
        },
        Table {
            name: "executions",
            columns: &[
                defaulted("id", Uuid, RandomUuid),
                not_null("task_id", Uuid),
                not_null("agent_id", Uuid),
                not_null("capability_id", Uuid),
                defaulted("requested_by", Uuid, Tenant),
                defaulted("status", Enum("execution_status"), Label("queued")),
                defaulted("mode", Enum("interaction_mode"), Label("template")),
                defaulted("args", Jsonb, Json("{}")),
                nullable("prompt", Text),
                nullable("pid", Integer),
                nullable("session_ref", Text),
                nullable("tmux_session_name", Text),
                nullable("parent_execution_id", Uuid),
                nullable("started_at", Timestamptz),
                nullable("ended_at", Timestamptz),
                nullable("exit_code", Integer),
                nullable("error", Text),
                nullable("worker_id", Text),
                nullable("heartbeat_at", Timestamptz),
                nullable("log_file_path", Text),
                defaulted("log_byte_size", BigInt, Int(0)),
                defaulted("log_line_count", Integer, Int(0)),
                nullable("log_updated_at", Timestamptz),
                defaulted("retry_count", Integer, Int(0)),
                defaulted("max_retries", Integer, Int(0)),
                defaulted("created_at", Timestamptz, Now),
            ],
            primary_key: PrimaryKey { name: None, columns: &["id"] },
            uniques: &[],
            foreign_keys: &[
                ForeignKey { column: "task_id", references: ("tasks", "id"), on_delete: Cascade },
                ForeignKey {
                    column: "agent_id",
                    references: ("agents", "id"),
                    on_delete: NoAction,
                },
                ForeignKey {
                    column: "capability_id",
                    references: ("agent_capabilities", "id"),
                    on_delete: NoAction,
                },
                ForeignKey {
                    column: "parent_execution_id",
                    references: ("executions", "id"),
                    on_delete: SetNull,
                },
            ],
            checks: &[],
            indexes: &[
                Index {
                    name: "idx_executions_queue",
                    columns: &["status", "created_at"],
                    only_where: Some(("status", "queued")),
                },
                Index {
                    name: "idx_executions_task",
                    columns: &["task_id", "created_at"],
                    only_where: None,
                },
                Index {
                    name: "idx_executions_stale",
                    columns: &["heartbeat_at"],
                    only_where: None,
                },
                Index {
                    name: "idx_executions_agent_active",
                    columns: &["agent_id", "status"],
                    only_where: None,
                },
            ],
        },
        Table {
            name: "task_events",
            columns: &[
                defaulted("id", BigInt, Identity),
                not_null("task_id", Uuid),
                not_null("actor_type", Text),
                nullable("actor_id", Uuid),
                not_null("event_type", Text),
                defaulted("payload", Jsonb, Json("{}")),
                defaulted("created_at", Timestamptz, Now),
            ],
            primary_key: PrimaryKey { name: None, columns: &["id"] },
            uniques: &[],
            foreign_keys: &[ForeignKey {
                column: "task_id",
                references: ("tasks", "id"),
                on_delete: Cascade,
            }],
            checks: &[Check {
                name: "task_events_actor_type_check",
                sqlite: "actor_type IN ('user', 'agent', 'system')",
                postgres: "CHECK ((actor_type = ANY (ARRAY['user'::text, 'agent'::text, \
                           'system'::text])))",
            }],
            indexes: &[Index {
                name: "idx_task_events_task",
                columns: &["task_id", "created_at"],
                only_where: None,
            }],
        },
        Table {
            name: "worker_heartbeats",
            columns: &[
                not_null("worker_id", Text),
                defaulted("last_seen_at", Timestamptz, Now),
                defaulted("current_executions", Integer, Int(0)),
                defaulted("metadata", Jsonb, Json("{}")),
            ],
            primary_key: PrimaryKey { name: None, columns: &["worker_id"] },
            uniques: &[],
            foreign_keys: &[],
            checks: &[],
            indexes: &[],
        },
        Table {
            name: "worker_config",
            columns: &[
                not_null("key", Text),
                not_null("value", Jsonb),
                defaulted("updated_at", Timestamptz, Now),
            ],
            primary_key: PrimaryKey { name: None, columns: &["key"] },
            uniques: &[],
            foreign_keys: &[],
            checks: &[],
            indexes: &[],
        },
    ];
}

// ---------------------------------------------------------------------------------------
// The data model, rendered per backend
// ---------------------------------------------------------------------------------------

/// SQLite's stand-in for `gen_random_uuid()`: a v4 uuid as a 16-byte blob.
const SQLITE_RANDOM_UUID: &str = "unhex(printf('%s4%s%x%s%s', hex(randomblob(6)), \
     substr(hex(randomblob(2)), 2), 8 + abs(random() % 4), substr(hex(randomblob(2)), 2), \
     hex(randomblob(6))))";

/// SQLite's stand-in for `now()`: RFC 3339 in UTC, the shape sqlx writes and reads.
const SQLITE_NOW: &str = "strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')";

fn type_name(ty: Type, backend: Backend) -> &'static str {
    match backend {
        // `information_schema.columns.udt_name`
        Backend::Postgres => match ty {
            Type::Uuid => "uuid",
            Type::Text => "text",
            Type::Boolean => "bool",
            Type::SmallInt => "int2",
            Type::Integer => "int4",
            Type::BigInt => "int8",
            Type::Jsonb => "jsonb",
            Type::Timestamptz => "timestamptz",
            Type::Enum(name) => name,
        },
        // The storage class each type is bound as (the tables are STRICT).
        Backend::Sqlite => match ty {
            Type::Uuid => "BLOB",
            Type::Boolean | Type::SmallInt | Type::Integer | Type::BigInt => "INTEGER",
            Type::Text | Type::Jsonb | Type::Timestamptz | Type::Enum(_) => "TEXT",
        },
    }
}

/// A column's default as the catalog prints it; `None` for no default (or an identity).
fn default_text(column: &Column, backend: Backend) -> Option<String> {
    use DefaultValue::*;
    let pg = backend == Backend::Postgres;
    Some(match column.default? {
        Identity => return None,
        RandomUuid if pg => "gen_random_uuid()".into(),
        RandomUuid => SQLITE_RANDOM_UUID.into(),
        Tenant if pg => format!("'{}'::uuid", spec::DEFAULT_TENANT),
        Tenant => format!("X'{}'", spec::DEFAULT_TENANT.replace('-', "")),
        Now if pg => "now()".into(),
        Now => SQLITE_NOW.into(),
        Int(n) => n.to_string(),
        Bool(b) if pg => b.to_string(),
        Bool(b) => b.to_string().to_uppercase(),
        Json(json) if pg => format!("'{json}'::jsonb"),
        Json(json) => format!("'{json}'"),
        Label(label) if pg => format!("'{label}'::{}", type_name(column.ty, backend)),
        Label(label) => format!("'{label}'"),
    })
}

fn column_fact(
    position: usize,
    name: &str,
    ty: &str,
    nullable: bool,
    default: Option<&str>,
) -> String {
    format!(
        "column {position} {name} {ty} {} default {}",
        if nullable { "NULL" } else { "NOT NULL" },
        default.unwrap_or("-"),
    )
}

fn on_delete_text(rule: spec::OnDelete) -> &'static str {
    match rule {
        spec::OnDelete::Cascade => "CASCADE",
        spec::OnDelete::SetNull => "SET NULL",
        spec::OnDelete::NoAction => "NO ACTION",
    }
}

/// What `backend`'s catalog must say about `table`.
fn expected_facts(table: &Table, backend: Backend) -> Vec<String> {
    let pg = backend == Backend::Postgres;
    let mut facts = Vec::new();
    for (i, column) in table.columns.iter().enumerate() {
        let default = default_text(column, backend);
        let ty = type_name(column.ty, backend);
        facts.push(column_fact(
            i + 1,
            column.name,
            ty,
            column.nullable,
            default.as_deref(),
        ));
        if let Some(DefaultValue::Identity) = column.default {
            let kind = if pg { "ALWAYS" } else { "AUTOINCREMENT" };
            facts.push(format!("identity {} {kind}", column.name));
        }
        if let (Type::Enum(name), Backend::Sqlite) = (column.ty, backend) {
            let labels: Vec<_> = spec::labels(name)
                .iter()
                .map(|l| format!("'{l}'"))
                .collect();
            facts.push(format!(
                "check {}_{}_check: {} IN ({})",
                table.name,
                column.name,
                column.name,
                labels.join(", ")
            ));
        }
    }
    let pk_name = match (table.primary_key.name, backend) {
        (Some(name), _) => name.to_owned(),
        (None, Backend::Postgres) => format!("{}_pkey", table.name),
        (None, Backend::Sqlite) => "-".to_owned(),
    };
    facts.push(format!(
        "primary key {pk_name} ({})",
        table.primary_key.columns.join(", ")
    ));
    for unique in table.uniques {
        facts.push(format!(
            "unique {} ({})",
            unique.name,
            unique.columns.join(", ")
        ));
    }
    for fk in table.foreign_keys {
        let (foreign_table, foreign_column) = fk.references;
        facts.push(format!(
            "foreign key {t}_{c}_{foreign_table}_{foreign_column}_fk ({c}) \
             references {foreign_table} ({foreign_column}) on delete {}",
            on_delete_text(fk.on_delete),
            t = table.name,
            c = fk.column,
        ));
    }
    for check in table.checks {
        let definition = if pg { check.postgres } else { check.sqlite };
        facts.push(format!(
            "check {}: {}",
            check.name,
            normalize_sql(definition)
        ));
    }
    for index in table.indexes {
        let mut fact = format!("index {} ({})", index.name, index.columns.join(", "));
        if let Some((column, label)) = index.only_where {
            fact += &if pg {
                let ty = type_name(table.column(column).ty, backend);
                format!(" where ({column} = '{label}'::{ty})")
            } else {
                format!(" where {column} = '{label}'")
            };
        }
        facts.push(fact);
    }
    if !pg {
        facts.push("strict".to_owned());
    }
    facts
}

// ---------------------------------------------------------------------------------------
// The live schema, introspected
// ---------------------------------------------------------------------------------------

async fn query(db: &DatabaseConnection, sql: impl Into<String>) -> Result<Vec<QueryResult>> {
    let sql = sql.into();
    db.query_all_raw(Statement::from_string(
        db.get_database_backend(),
        sql.clone(),
    ))
    .await
    .with_context(|| format!("running {sql}"))
}

/// Tables, enum types and (non-constraint) indexes in the database, as `kind name`, leaving
/// out sea-orm's own `seaql_migrations`.
async fn schema_objects(db: &TestDb) -> Result<BTreeSet<String>> {
    let sql = match db.backend() {
        Backend::Postgres => {
            "SELECT 'table ' || table_name FROM information_schema.tables
              WHERE table_schema = current_schema() AND table_name <> 'seaql_migrations'
             UNION ALL
             SELECT 'type ' || typname FROM pg_type
              WHERE typnamespace = current_schema()::regnamespace AND typtype = 'e'
             UNION ALL
             SELECT 'index ' || ic.relname FROM pg_index i
               JOIN pg_class ic ON ic.oid = i.indexrelid
              WHERE ic.relnamespace = current_schema()::regnamespace
                AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                                 WHERE c.conrelid = i.indrelid AND c.conindid = i.indexrelid)"
        }
        // Internal tables (sqlite_sequence) and constraint autoindexes are sqlite_*.
        Backend::Sqlite => {
            "SELECT type || ' ' || name FROM sqlite_master
              WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name <> 'seaql_migrations'"
        }
    };
    query(db.conn(), sql)
        .await?
        .iter()
        .map(|row| Ok(row.try_get_by_index::<String>(0)?))
        .collect()
}

/// The objects schema v3.0 consists of on `backend`, as [`schema_objects`] lists them, and
/// what was added beyond the data model, on PostgreSQL, for several servers over it: the
/// table of execution logs (`execution_log_chunks`, so every server reads every log) and
/// that of worker connections (`worker_connections`, so every server lists every worker);
/// and on both, what runs changed in their tasks' git worktrees (`execution_worktrees`).
fn expected_objects(backend: Backend) -> BTreeSet<String> {
    let beyond_the_data_model = ["table execution_log_chunks", "table worker_connections"]
        .into_iter()
        .filter(|_| backend == Backend::Postgres)
        .chain([
            "table execution_worktrees",
            "index idx_execution_worktrees_task",
        ])
        .map(str::to_owned);
    let tables = SCHEMA.iter().map(|t| format!("table {}", t.name));
    let indexes = SCHEMA
        .iter()
        .flat_map(|t| t.indexes)
        .map(|i| format!("index {}", i.name));
    let types = spec::ENUMS
        .iter()
        .filter(|_| backend == Backend::Postgres)
        .map(|(name, _)| format!("type {name}"));
    tables
        .chain(indexes)
        .chain(types)
        .chain(beyond_the_data_model)
        .collect()
}

/// What PostgreSQL's catalog says about `table`, in the words of [`expected_facts`].
async fn postgres_facts(db: &DatabaseConnection, table: &str) -> Result<Vec<String>> {
    let mut facts = Vec::new();

    let columns = query(
        db,
        format!(
            "SELECT ordinal_position::int4, column_name::text, udt_name::text,
                    is_nullable::text, column_default::text, identity_generation::text
               FROM information_schema.columns
              WHERE table_schema = current_schema() AND table_name = '{table}'
              ORDER BY ordinal_position"
        ),
    )
    .await?;
    for row in &columns {
        let name: String = row.try_get_by_index(1)?;
        let default: Option<String> = row.try_get_by_index(4)?;
        facts.push(column_fact(
            usize::try_from(row.try_get_by_index::<i32>(0)?)?,
            &name,
            &row.try_get_by_index::<String>(2)?,
            row.try_get_by_index::<String>(3)? == "YES",
            default.as_deref(),
        ));
        if let Some(generation) = row.try_get_by_index::<Option<String>>(5)? {
            facts.push(format!("identity {name} {generation}"));
        }
    }

    // Column lists of a constraint's (or index's) int2 attribute numbers, in key order.
    let column_list = |keys: &str, relation: &str| {
        format!(
            "(SELECT string_agg(a.attname::text, ', ' ORDER BY k.ord)
                FROM unnest({keys}) WITH ORDINALITY AS k(attnum, ord)
                JOIN pg_attribute a ON a.attrelid = {relation} AND a.attnum = k.attnum)"
        )
    };
    let constraints = query(
        db,
        format!(
            "SELECT con.conname::text, con.contype::text, {columns},
                    con.confrelid::regclass::text, {foreign_columns},
                    con.confdeltype::text, pg_get_constraintdef(con.oid)
               FROM pg_constraint con
              WHERE con.conrelid = '{table}'::regclass",
            columns = column_list("con.conkey", "con.conrelid"),
            foreign_columns = column_list("con.confkey", "con.confrelid"),
        ),
    )
    .await?;
    for row in &constraints {
        let name: String = row.try_get_by_index(0)?;
        let columns: Option<String> = row.try_get_by_index(2)?;
        let columns = columns.unwrap_or_default();
        facts.push(match row.try_get_by_index::<String>(1)?.as_str() {
            "p" => format!("primary key {name} ({columns})"),
            "u" => format!("unique {name} ({columns})"),
            "f" => {
                let foreign_table: String = row.try_get_by_index(3)?;
                let foreign_columns: String = row.try_get_by_index(4)?;
                let on_delete = match row.try_get_by_index::<String>(5)?.as_str() {
                    "a" => "NO ACTION",
                    "r" => "RESTRICT",
                    "c" => "CASCADE",
                    "n" => "SET NULL",
                    "d" => "SET DEFAULT",
                    other => bail!("{table}.{name}: unknown ON DELETE code {other}"),
                };
                format!(
                    "foreign key {name} ({columns}) references {foreign_table} \
                     ({foreign_columns}) on delete {on_delete}"
                )
            }
            "c" => format!("check {name}: {}", row.try_get_by_index::<String>(6)?),
            other => format!("constraint {name} of kind {other}"),
        });
    }

    let indexes = query(
        db,
        format!(
            "SELECT ic.relname::text, {columns}, pg_get_expr(i.indpred, i.indrelid), i.indisunique
               FROM pg_index i
               JOIN pg_class ic ON ic.oid = i.indexrelid
              WHERE i.indrelid = '{table}'::regclass
                AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                                 WHERE c.conrelid = i.indrelid AND c.conindid = i.indexrelid)",
            columns = column_list("i.indkey::int2[]", "i.indrelid"),
        ),
    )
    .await?;
    for row in &indexes {
        facts.push(index_fact(
            &row.try_get_by_index::<String>(0)?,
            &row.try_get_by_index::<String>(1)?,
            row.try_get_by_index(3)?,
            row.try_get_by_index::<Option<String>>(2)?.as_deref(),
        ));
    }
    Ok(facts)
}

fn index_fact(name: &str, columns: &str, unique: bool, predicate: Option<&str>) -> String {
    let mut fact = format!("index {name} ({columns})");
    if unique {
        fact += " unique";
    }
    if let Some(predicate) = predicate {
        fact += &format!(" where {predicate}");
    }
    fact
}

/// What SQLite's pragmas and stored DDL say about `table`, in the words of
/// [`expected_facts`]. The pragmas give structure but no constraint names; those, the
/// checks and AUTOINCREMENT come from the `CREATE TABLE` text kept in `sqlite_master`.
async fn sqlite_facts(db: &DatabaseConnection, table: &str) -> Result<Vec<String>> {
    let mut facts = Vec::new();
    let ddl = sqlite_ddl(db, "table", table).await?;
    let items = create_table_items(&ddl);

    // Named table constraints: `CONSTRAINT <name> <body>`.
    let mut named: BTreeMap<String, String> = BTreeMap::new(); // body -> name
    let mut named_checks = 0;
    for item in &items {
        if let Some(rest) = item.strip_prefix("CONSTRAINT ") {
            let (name, body) = rest.split_once(' ').context("CONSTRAINT without a body")?;
            if let Some(check) = body.strip_prefix("CHECK ") {
                facts.push(format!("check {name}: {}", strip_outer_parens(check)));
                named_checks += 1;
            }
            named.insert(body.to_owned(), name.to_owned());
        } else if item.contains(" AUTOINCREMENT") {
            let column = item.split(' ').next().unwrap_or_default();
            facts.push(format!("identity {column} AUTOINCREMENT"));
        }
    }
    let all_checks = ddl.matches("CHECK").count();
    if all_checks != named_checks {
        facts.push(format!("{} unnamed checks", all_checks - named_checks));
    }
    // The name of the constraint whose body starts with `prefix`, e.g. `UNIQUE (slug)`.
    let name_of = |prefix: String| {
        named
            .iter()
            .find(|(body, _)| body.starts_with(&prefix))
            .map_or("-".to_owned(), |(_, name)| name.clone())
    };

    let columns = query(
        db,
        format!(
            "SELECT cid, name, type, \"notnull\", dflt_value, pk
               FROM pragma_table_info('{table}') ORDER BY cid"
        ),
    )
    .await?;
    let mut primary_key = Vec::new();
    for row in &columns {
        let name: String = row.try_get_by_index(1)?;
        let default: Option<String> = row.try_get_by_index(4)?;
        facts.push(column_fact(
            usize::try_from(row.try_get_by_index::<i64>(0)? + 1)?,
            &name,
            &row.try_get_by_index::<String>(2)?,
            row.try_get_by_index::<i64>(3)? == 0,
            default.map(|d| normalize_sql(&d)).as_deref(),
        ));
        let position: i64 = row.try_get_by_index(5)?;
        if position > 0 {
            primary_key.push((position, name));
        }
    }
    primary_key.sort();
    let primary_key: Vec<_> = primary_key.into_iter().map(|(_, name)| name).collect();
    let primary_key = primary_key.join(", ");
    let pk_name = name_of(format!("PRIMARY KEY ({primary_key})"));
    facts.push(format!("primary key {pk_name} ({primary_key})"));

    let indexes = query(
        db,
        format!(
            "SELECT name, origin, \"unique\" FROM pragma_index_list('{table}')
              WHERE origin IN ('c', 'u')"
        ),
    )
    .await?;
    for row in &indexes {
        let index: String = row.try_get_by_index(0)?;
        let columns = query(
            db,
            format!("SELECT name FROM pragma_index_info('{index}') ORDER BY seqno"),
        )
        .await?
        .iter()
        .map(|row| Ok(row.try_get_by_index::<String>(0)?))
        .collect::<Result<Vec<_>>>()?
        .join(", ");
        if row.try_get_by_index::<String>(1)? == "u" {
            let name = name_of(format!("UNIQUE ({columns})"));
            facts.push(format!("unique {name} ({columns})"));
        } else {
            let ddl = normalize_sql(&sqlite_ddl(db, "index", &index).await?);
            let predicate = ddl.split_once(" WHERE ").map(|(_, predicate)| predicate);
            facts.push(index_fact(
                &index,
                &columns,
                row.try_get_by_index::<i64>(2)? == 1,
                predicate,
            ));
        }
    }

    let foreign_keys = query(
        db,
        format!(
            "SELECT \"from\", \"table\", \"to\", on_delete
               FROM pragma_foreign_key_list('{table}') ORDER BY id, seq"
        ),
    )
    .await?;
    for row in &foreign_keys {
        let column: String = row.try_get_by_index(0)?;
        let name = name_of(format!("FOREIGN KEY ({column})"));
        facts.push(format!(
            "foreign key {name} ({column}) references {} ({}) on delete {}",
            row.try_get_by_index::<String>(1)?,
            row.try_get_by_index::<String>(2)?,
            row.try_get_by_index::<String>(3)?,
        ));
    }

    let strict = query(
        db,
        format!("SELECT strict FROM pragma_table_list WHERE schema = 'main' AND name = '{table}'"),
    )
    .await?;
    if strict
        .first()
        .map(|row| row.try_get_by_index::<i64>(0))
        .transpose()?
        == Some(1)
    {
        facts.push("strict".to_owned());
    }
    Ok(facts)
}

/// The `CREATE` statement SQLite keeps for an object.
async fn sqlite_ddl(db: &DatabaseConnection, kind: &str, name: &str) -> Result<String> {
    let rows = query(
        db,
        format!("SELECT sql FROM sqlite_master WHERE type = '{kind}' AND name = '{name}'"),
    )
    .await?;
    let row = rows.first().with_context(|| format!("no {kind} {name}"))?;
    Ok(row.try_get_by_index(0)?)
}

/// The comma-separated items of a `CREATE TABLE` body (column definitions and table
/// constraints), without comments, whitespace normalized by [`normalize_sql`].
fn create_table_items(ddl: &str) -> Vec<String> {
    let ddl = strip_comments(ddl);
    let mut items = Vec::new();
    let Some(open) = ddl.find('(') else {
        return Vec::new();
    };
    let (mut depth, mut quoted, mut start) = (0, false, open + 1);
    for (i, c) in ddl.char_indices().skip(open + 1) {
        match c {
            '\'' => quoted = !quoted,
            _ if quoted => {}
            '(' => depth += 1,
            ')' if depth == 0 => {
                items.push(&ddl[start..i]);
                break;
            }
            ')' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&ddl[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.into_iter().map(normalize_sql).collect()
}

/// `sql` without `--` comments (SQLite keeps a table's DDL verbatim, comments included).
fn strip_comments(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            quoted = !quoted;
        } else if !quoted && c == '-' && chars.peek() == Some(&'-') {
            chars.by_ref().take_while(|&c| c != '\n').for_each(drop);
            out.push('\n');
            continue;
        }
        out.push(c);
    }
    out
}

/// One space between tokens, none inside parentheses: `CHECK (\n  a IN ( 'x' )\n)` →
/// `CHECK (a IN ('x'))`, so layout never decides a comparison.
fn normalize_sql(sql: &str) -> String {
    sql.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace("( ", "(")
        .replace(" )", ")")
}

/// `(a) OR (b)` stays; `((a) OR (b))` loses its outer pair.
fn strip_outer_parens(expr: &str) -> &str {
    let Some(inner) = expr.strip_prefix('(').and_then(|e| e.strip_suffix(')')) else {
        return expr;
    };
    let mut depth = 0;
    for c in inner.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return expr, // the first '(' closes early
            ')' => depth -= 1,
            _ => {}
        }
    }
    inner
}

/// Fails listing every fact missing from and unexpected in `actual`.
fn assert_same_facts(
    what: &str,
    expected: impl IntoIterator<Item = String>,
    actual: impl IntoIterator<Item = String>,
) -> Result<()> {
    let expected: BTreeSet<_> = expected.into_iter().collect();
    let actual: BTreeSet<_> = actual.into_iter().collect();
    let missing: Vec<_> = expected.difference(&actual).map(String::as_str).collect();
    let unexpected: Vec<_> = actual.difference(&expected).map(String::as_str).collect();
    ensure!(
        missing.is_empty() && unexpected.is_empty(),
        "{what} differs from the data model\n  missing:\n    {}\n  unexpected:\n    {}",
        missing.join("\n    "),
        unexpected.join("\n    "),
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Migrations and the schema
// ---------------------------------------------------------------------------------------

async fn migrations_run_up_down_and_up_again(db: TestDb) -> Result<()> {
    let expected = expected_objects(db.backend());
    ensure!(
        schema_objects(&db).await?.is_empty(),
        "a fresh database is not empty"
    );

    Migrator::up(db.conn(), None).await.context("first up")?;
    let after_up = schema_objects(&db).await?;
    assert_same_facts("schema after up", expected.clone(), after_up)?;

    Migrator::down(db.conn(), None).await.context("down")?;
    let left = schema_objects(&db).await?;
    ensure!(left.is_empty(), "down left {left:?} behind");
    ensure!(
        Migrator::get_pending_migrations(db.conn()).await?.len() == Migrator::migrations().len(),
        "down did not mark every migration as pending again"
    );

    Migrator::up(db.conn(), None).await.context("second up")?;
    let after_up_again = schema_objects(&db).await?;
    assert_same_facts("schema after up, down, up", expected, after_up_again)
}

async fn schema_matches_the_data_model(db: TestDb) -> Result<()> {
    Migrator::up(db.conn(), None).await?;
    for table in SCHEMA {
        let actual = match db.backend() {
            Backend::Postgres => postgres_facts(db.conn(), table.name).await?,
            Backend::Sqlite => sqlite_facts(db.conn(), table.name).await?,
        };
        assert_same_facts(table.name, expected_facts(table, db.backend()), actual)?;
    }
    if db.backend() == Backend::Postgres {
        let rows = query(
            db.conn(),
            "SELECT t.typname::text, string_agg(e.enumlabel::text, ', ' ORDER BY e.enumsortorder)
               FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
              WHERE t.typnamespace = current_schema()::regnamespace
              GROUP BY t.typname",
        )
        .await?;
        let actual = rows
            .iter()
            .map(|row| {
                let name: String = row.try_get_by_index(0)?;
                let labels: String = row.try_get_by_index(1)?;
                Ok(format!("enum {name} ({labels})"))
            })
            .collect::<Result<Vec<_>>>()?;
        let expected = spec::ENUMS
            .iter()
            .map(|(name, labels)| format!("enum {name} ({})", labels.join(", ")));
        assert_same_facts("enum types", expected, actual)?;
    }
    Ok(())
}

both_backends!(
    migrations_run_up_down_and_up_again,
    schema_matches_the_data_model
);

// ---------------------------------------------------------------------------------------
// What the database enforces by itself
// ---------------------------------------------------------------------------------------

/// A migrated database with one agent, one template capability and one task.
struct Fixture {
    db: TestDb,
    agent: agents::Model,
    capability: agent_capabilities::Model,
    task: tasks::Model,
}

impl Fixture {
    async fn new(db: TestDb) -> Result<Self> {
        Migrator::up(db.conn(), None).await?;
        let agent = new_agent(db.conn(), "git").await?;
        let capability = new_capability(
            db.conn(),
            &agent,
            "status",
            InteractionMode::Template,
            Some(json!(["status", "--short"])),
        )
        .await?;
        let task = new_task(db.conn(), "Check the tree", None).await?;
        Ok(Fixture {
            db,
            agent,
            capability,
            task,
        })
    }

    fn conn(&self) -> &DatabaseConnection {
        self.db.conn()
    }

    /// An execution of the fixture's capability for `task`.
    async fn new_execution(&self, task: &tasks::Model) -> Result<executions::Model, DbErr> {
        executions::ActiveModel {
            task_id: Set(task.id),
            agent_id: Set(self.agent.id),
            capability_id: Set(self.capability.id),
            ..Default::default()
        }
        .insert(self.conn())
        .await
    }
}

async fn new_agent(db: &DatabaseConnection, slug: &str) -> Result<agents::Model, DbErr> {
    agents::ActiveModel {
        name: Set(format!("Agent {slug}")),
        slug: Set(slug.to_owned()),
        binary_path: Set(format!("/usr/bin/{slug}")),
        ..Default::default()
    }
    .insert(db)
    .await
}

async fn new_capability(
    db: &DatabaseConnection,
    agent: &agents::Model,
    key: &str,
    mode: InteractionMode,
    command_tokens: Option<serde_json::Value>,
) -> Result<agent_capabilities::Model, DbErr> {
    agent_capabilities::ActiveModel {
        agent_id: Set(agent.id),
        key: Set(key.to_owned()),
        label: Set(format!("{} {key}", agent.slug)),
        source: Set(CapabilitySource::Manual),
        interaction_mode: Set(mode),
        command_tokens: Set(command_tokens),
        ..Default::default()
    }
    .insert(db)
    .await
}

async fn new_task(
    db: &DatabaseConnection,
    title: &str,
    parent: Option<&tasks::Model>,
) -> Result<tasks::Model, DbErr> {
    tasks::ActiveModel {
        title: Set(title.to_owned()),
        parent_task_id: Set(parent.map(|p| p.id)),
        ..Default::default()
    }
    .insert(db)
    .await
}

async fn new_event(
    db: &DatabaseConnection,
    task: &tasks::Model,
    event_type: &str,
) -> Result<task_events::Model, DbErr> {
    task_events::ActiveModel {
        task_id: Set(task.id),
        actor_type: Set(ActorType::System),
        event_type: Set(event_type.to_owned()),
        ..Default::default()
    }
    .insert(db)
    .await
}

/// Passes when the database refused the write and said `why` (a constraint's name, or
/// PostgreSQL's enum complaint), so a refusal for any other reason still fails.
fn expect_refused<T: std::fmt::Debug>(result: Result<T, DbErr>, why: &str) -> Result<()> {
    match result {
        Ok(accepted) => bail!("the database accepted what it must refuse ({why}): {accepted:?}"),
        Err(e) if e.to_string().contains(why) => Ok(()),
        Err(e) => bail!("refused, but not for {why}: {e}"),
    }
}

async fn refuses_an_unknown_execution_status(db: TestDb) -> Result<()> {
    let f = Fixture::new(db).await?;
    // Raw SQL with the status as a literal: the entity cannot even express a bad status.
    let insert = |status: &str| {
        Query::insert()
            .into_table(Executions)
            .columns([
                executions::Column::Id,
                executions::Column::TaskId,
                executions::Column::AgentId,
                executions::Column::CapabilityId,
                executions::Column::Status,
            ])
            .values_panic([
                Uuid::new_v4().into(),
                f.task.id.into(),
                f.agent.id.into(),
                f.capability.id.into(),
                Expr::cust(format!("'{status}'")),
            ])
            .to_owned()
    };
    let why = match f.db.backend() {
        Backend::Postgres => "invalid input value for enum execution_status",
        Backend::Sqlite => "CHECK constraint failed: executions_status_check",
    };
    expect_refused(f.conn().execute(&insert("exploded")).await, why)?;
    // The same statement with a real status goes through: the value was the problem.
    f.conn().execute(&insert("queued")).await?;
    Ok(())
}

async fn refuses_an_unknown_actor_type(db: TestDb) -> Result<()> {
    let f = Fixture::new(db).await?;
    let insert = |actor: &str| {
        Query::insert()
            .into_table(TaskEvents)
            .columns([
                task_events::Column::TaskId,
                task_events::Column::ActorType,
                task_events::Column::EventType,
            ])
            .values_panic([
                f.task.id.into(),
                Expr::cust(format!("'{actor}'")),
                "created".into(),
            ])
            .to_owned()
    };
    expect_refused(
        f.conn().execute(&insert("robot")).await,
        "task_events_actor_type_check",
    )?;
    f.conn().execute(&insert("agent")).await?;
    Ok(())
}

async fn refuses_a_template_capability_without_command_tokens(db: TestDb) -> Result<()> {
    let f = Fixture::new(db).await?;
    let template = new_capability(f.conn(), &f.agent, "log", InteractionMode::Template, None);
    expect_refused(template.await, "capability_mode_consistency")?;
    // Prompt mode has no command template, and needs none.
    new_capability(f.conn(), &f.agent, "review", InteractionMode::Prompt, None).await?;
    Ok(())
}

async fn refuses_a_self_dependency(db: TestDb) -> Result<()> {
    let f = Fixture::new(db).await?;
    let depend = |on: Uuid| task_dependencies::ActiveModel {
        task_id: Set(f.task.id),
        depends_on_task_id: Set(on),
        ..Default::default()
    };
    expect_refused(
        depend(f.task.id).insert(f.conn()).await,
        "no_self_dependency",
    )?;
    let other = new_task(f.conn(), "Fetch first", None).await?;
    depend(other.id).insert(f.conn()).await?;
    Ok(())
}

async fn deleting_an_agent_deletes_its_capabilities_and_unassigns_its_tasks(
    db: TestDb,
) -> Result<()> {
    let f = Fixture::new(db).await?;
    new_capability(
        f.conn(),
        &f.agent,
        "diff",
        InteractionMode::Template,
        Some(json!(["diff"])),
    )
    .await?;
    let mut assign: tasks::ActiveModel = f.task.clone().into();
    assign.assignee_agent_id = Set(Some(f.agent.id));
    assign.update(f.conn()).await?;

    // Executions keep their agent: an agent that has run something cannot go.
    let execution = f.new_execution(&f.task).await?;
    let why = match f.db.backend() {
        Backend::Postgres => "executions_agent_id_agents_id_fk",
        Backend::Sqlite => "FOREIGN KEY constraint failed",
    };
    expect_refused(Agents::delete_by_id(f.agent.id).exec(f.conn()).await, why)?;
    Executions::delete_by_id(execution.id)
        .exec(f.conn())
        .await?;

    Agents::delete_by_id(f.agent.id).exec(f.conn()).await?;
    let capabilities = AgentCapabilities::find()
        .filter(agent_capabilities::Column::AgentId.eq(f.agent.id))
        .count(f.conn())
        .await?;
    ensure!(
        capabilities == 0,
        "{capabilities} capabilities outlived their agent"
    );
    let task = Tasks::find_by_id(f.task.id)
        .one(f.conn())
        .await?
        .context("task gone")?;
    ensure!(
        task.assignee_agent_id.is_none(),
        "the task still names the deleted agent"
    );
    Ok(())
}

async fn deleting_a_task_deletes_its_events_dependencies_and_executions(db: TestDb) -> Result<()> {
    let f = Fixture::new(db).await?;
    let before = new_task(f.conn(), "Before", None).await?;
    let after = new_task(f.conn(), "After", None).await?;
    for (task, on) in [(&f.task, &before), (&after, &f.task)] {
        task_dependencies::ActiveModel {
            task_id: Set(task.id),
            depends_on_task_id: Set(on.id),
            ..Default::default()
        }
        .insert(f.conn())
        .await?;
    }
    new_event(f.conn(), &f.task, "created").await?;
    f.new_execution(&f.task).await?;
    // Rows of another task that must survive.
    new_event(f.conn(), &before, "created").await?;
    f.new_execution(&before).await?;

    Tasks::delete_by_id(f.task.id).exec(f.conn()).await?;
    let events = TaskEvents::find().all(f.conn()).await?;
    ensure!(
        events.len() == 1 && events[0].task_id == before.id,
        "events left: {events:?}"
    );
    let dependencies = TaskDependencies::find().count(f.conn()).await?;
    ensure!(
        dependencies == 0,
        "{dependencies} dependencies outlived their task"
    );
    let executions = Executions::find().all(f.conn()).await?;
    ensure!(
        executions.len() == 1 && executions[0].task_id == before.id,
        "executions left: {executions:?}"
    );
    Ok(())
}

async fn deleting_a_parent_clears_its_childrens_link(db: TestDb) -> Result<()> {
    let f = Fixture::new(db).await?;
    let child = new_task(f.conn(), "Subtask", Some(&f.task)).await?;
    let other = new_task(f.conn(), "Elsewhere", None).await?;
    let first = f.new_execution(&other).await?;
    let mut continuation: executions::ActiveModel = f.new_execution(&other).await?.into();
    continuation.parent_execution_id = Set(Some(first.id));
    let continuation = continuation.update(f.conn()).await?;

    Tasks::delete_by_id(f.task.id).exec(f.conn()).await?;
    let child = Tasks::find_by_id(child.id)
        .one(f.conn())
        .await?
        .context("subtask gone")?;
    ensure!(
        child.parent_task_id.is_none(),
        "the subtask still names its deleted parent"
    );

    Executions::delete_by_id(first.id).exec(f.conn()).await?;
    let continuation = Executions::find_by_id(continuation.id)
        .one(f.conn())
        .await?
        .context("continuation gone")?;
    ensure!(
        continuation.parent_execution_id.is_none(),
        "the continuation still names its deleted parent"
    );
    Ok(())
}

both_backends!(
    refuses_an_unknown_execution_status,
    refuses_an_unknown_actor_type,
    refuses_a_template_capability_without_command_tokens,
    refuses_a_self_dependency,
    deleting_an_agent_deletes_its_capabilities_and_unassigns_its_tasks,
    deleting_a_task_deletes_its_events_dependencies_and_executions,
    deleting_a_parent_clears_its_childrens_link,
);

// ---------------------------------------------------------------------------------------
// Entities
// ---------------------------------------------------------------------------------------

/// A database default timestamp: written just now, in UTC.
fn ensure_fresh(what: &str, at: DateTimeWithTimeZone) -> Result<()> {
    let age = ChronoUtc::now().signed_duration_since(at);
    ensure!(
        age.num_seconds().abs() < 60 && at.offset().local_minus_utc() == 0,
        "{what} = {at}: not a UTC timestamp from just now"
    );
    Ok(())
}

async fn entities_round_trip_with_database_defaults(db: TestDb) -> Result<()> {
    let f = Fixture::new(db).await?;
    let db = f.conn();
    let tenant = Uuid::parse_str(spec::DEFAULT_TENANT)?;

    // Every column the fixture left unset holds the data model's default.
    let agent = Agents::find_by_id(f.agent.id)
        .one(db)
        .await?
        .context("agent")?;
    ensure!(
        agent == f.agent,
        "agent read back differs from the one inserted"
    );
    ensure!(agent.owner_id == tenant && agent.workspace_id == tenant);
    ensure!(agent.kind == AgentKind::Custom && agent.discovery_method == DiscoveryMethod::Manual);
    ensure!(agent.base_args == json!([]) && agent.env_allowlist == json!([]));
    ensure!(agent.metadata == json!({}) && agent.session_config.is_none());
    ensure!(agent.is_active && !agent.mcp_enabled && agent.max_concurrent == 1);
    ensure_fresh("agents.created_at", agent.created_at)?;
    ensure_fresh("agents.updated_at", agent.updated_at)?;

    let capability = f.capability.clone();
    ensure!(capability.interaction_mode == InteractionMode::Template);
    ensure!(capability.command_tokens == Some(json!(["status", "--short"])));
    ensure!(capability.args_schema == json!({}) && !capability.requires_approval);
    ensure!(capability.is_enabled && capability.danger_level == 0);
    ensure!(capability.timeout_sec == 300 && capability.max_output_bytes == 10 * 1024 * 1024);
    ensure_fresh("agent_capabilities.created_at", capability.created_at)?;

    let task = f.task.clone();
    ensure!(task.owner_id == tenant && task.workspace_id == tenant);
    ensure!(task.status == TaskStatus::Todo && task.priority == 3 && task.sort_order == 0);
    ensure!(task.input_context == json!({}) && task.parent_task_id.is_none());
    ensure_fresh("tasks.created_at", task.created_at)?;

    let execution = f.new_execution(&task).await?;
    ensure!(execution.status == ExecutionStatus::Queued);
    ensure!(execution.mode == InteractionMode::Template && execution.args == json!({}));
    ensure!(execution.requested_by == tenant && execution.log_byte_size == 0);
    ensure!(execution.log_line_count == 0 && execution.retry_count == 0);
    ensure!(execution.max_retries == 0);
    ensure_fresh("executions.created_at", execution.created_at)?;

    let first = new_event(db, &task, "created").await?;
    let second = new_event(db, &task, "execution_queued").await?;
    ensure!(
        second.id > first.id,
        "event ids {} then {}",
        first.id,
        second.id
    );
    ensure!(first.payload == json!({}) && first.actor_type == ActorType::System);
    ensure_fresh("task_events.created_at", first.created_at)?;

    let heartbeat = worker_heartbeats::ActiveModel {
        worker_id: Set("worker-1".to_owned()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    ensure!(heartbeat.current_executions == 0 && heartbeat.metadata == json!({}));
    ensure_fresh("worker_heartbeats.last_seen_at", heartbeat.last_seen_at)?;

    let setting = worker_config::ActiveModel {
        key: Set("stale_after_sec".to_owned()),
        value: Set(json!(120)),
        ..Default::default()
    }
    .insert(db)
    .await?;
    ensure!(setting.value == json!(120));
    ensure_fresh("worker_config.updated_at", setting.updated_at)?;

    // Values the application writes come back as written: enums, JSON, timestamps,
    // a bigint past i32.
    let scanned = DateTimeWithTimeZone::parse_from_rfc3339("2026-02-17T09:30:00.123456+00:00")?;
    let mut update: agents::ActiveModel = agent.clone().into();
    update.kind = Set(AgentKind::Builtin);
    update.discovery_method = Set(DiscoveryMethod::PathScan);
    update.session_config = Set(Some(json!({ "sessionIdSource": "json_field" })));
    update.last_scanned_at = Set(Some(scanned));
    let updated = update.update(db).await?;
    ensure!(Agents::find_by_id(agent.id).one(db).await?.as_ref() == Some(&updated));
    ensure!(updated.last_scanned_at == Some(scanned) && updated.kind == AgentKind::Builtin);

    let mut running: executions::ActiveModel = execution.clone().into();
    running.status = Set(ExecutionStatus::Running);
    running.log_byte_size = Set(5_000_000_000);
    running.started_at = Set(Some(ChronoUtc::now().into()));
    running.update(db).await?;

    // Filters on enum columns: sea-orm casts on PostgreSQL, compares text on SQLite.
    let with_status = |status: ExecutionStatus| {
        Executions::find()
            .filter(executions::Column::Status.eq(status))
            .all(db)
    };
    ensure!(with_status(ExecutionStatus::Queued).await?.is_empty());
    let found = with_status(ExecutionStatus::Running).await?;
    ensure!(found.len() == 1 && found[0].id == execution.id);
    ensure!(found[0].log_byte_size == 5_000_000_000);
    let active = Executions::find()
        .filter(
            executions::Column::Status
                .is_in([ExecutionStatus::Running, ExecutionStatus::Cancelling]),
        )
        .count(db)
        .await?;
    ensure!(active == 1, "{active} active executions");
    let todo = Tasks::find()
        .filter(tasks::Column::Status.eq(TaskStatus::Todo))
        .count(db)
        .await?;
    ensure!(todo == 1, "{todo} tasks to do");
    let by_system = TaskEvents::find()
        .filter(task_events::Column::ActorType.eq(ActorType::System))
        .count(db)
        .await?;
    ensure!(by_system == 2, "{by_system} events by the system");

    // Relations.
    let capabilities = agent.find_related(AgentCapabilities).all(db).await?;
    ensure!(capabilities.len() == 1 && capabilities[0].id == capability.id);
    let (_, owner) = Executions::find_by_id(execution.id)
        .find_also_related(Tasks)
        .one(db)
        .await?
        .context("execution")?;
    ensure!(owner.map(|t| t.id) == Some(task.id));
    let waited_for = new_task(db, "Prepare", None).await?;
    task_dependencies::ActiveModel {
        task_id: Set(task.id),
        depends_on_task_id: Set(waited_for.id),
        ..Default::default()
    }
    .insert(db)
    .await?;
    let depends_on = task.find_linked(tasks::DependsOn).all(db).await?;
    ensure!(depends_on.len() == 1 && depends_on[0].id == waited_for.id);
    let dependents = waited_for.find_linked(tasks::Dependents).all(db).await?;
    ensure!(dependents.len() == 1 && dependents[0].id == task.id);
    Ok(())
}

/// Rows inserted through the entities without an id get one from the database, a v4 uuid,
/// which sea-orm reads back (`RETURNING`, on both backends); an id the caller picks is kept.
async fn the_database_generates_ids(db: TestDb) -> Result<()> {
    Migrator::up(db.conn(), None).await?;
    let make = new_agent(db.conn(), "make").await?;
    let cargo = new_agent(db.conn(), "cargo").await?;
    ensure!(make.id != cargo.id, "two agents got the same id");
    for agent in [&make, &cargo] {
        ensure!(
            agent.id.get_version() == Some(uuid::Version::Random)
                && agent.id.get_variant() == uuid::Variant::RFC4122,
            "{} is not a v4 uuid",
            agent.id
        );
        let stored = Agents::find_by_id(agent.id).one(db.conn()).await?;
        ensure!(
            stored.as_ref() == Some(agent),
            "agent {} not stored as returned",
            agent.id
        );
    }

    let chosen = Uuid::new_v4();
    let task = tasks::ActiveModel {
        id: Set(chosen),
        title: Set("Chosen id".to_owned()),
        ..Default::default()
    }
    .insert(db.conn())
    .await?;
    ensure!(
        task.id == chosen,
        "the chosen id {chosen} became {}",
        task.id
    );
    Ok(())
}

both_backends!(
    entities_round_trip_with_database_defaults,
    the_database_generates_ids
);

/// Foreign keys are a per-connection setting on SQLite: every connection of the pool must
/// have them on, not just the one that happened to run a `PRAGMA`.
#[tokio::test]
async fn every_sqlite_connection_enforces_foreign_keys_in_wal_mode() -> Result<()> {
    let db = TestDb::new(Backend::Sqlite)
        .await
        .context("SQLite is always available")?;
    // Open transactions each hold a connection of their own.
    let mut held = Vec::new();
    for _ in 0..3 {
        let txn = db.conn().begin().await?;
        let settings = txn
            .query_one_raw(Statement::from_string(
                db.conn().get_database_backend(),
                "SELECT foreign_keys, journal_mode FROM pragma_foreign_keys, pragma_journal_mode",
            ))
            .await?
            .context("no pragma row")?;
        ensure!(
            settings.try_get_by_index::<i64>(0)? == 1,
            "foreign keys off"
        );
        ensure!(
            settings.try_get_by_index::<String>(1)? == "wal",
            "not in WAL mode"
        );
        held.push(txn);
    }
    Ok(())
}
