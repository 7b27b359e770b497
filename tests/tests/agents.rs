//! `AgentService` end to end: a real server on SQLite and on PostgreSQL,
//! driven through its gRPC client. Every RPC, every validation rule with the
//! code and the field it names, defaults, the stored JSON shapes, paging,
//! workspace scoping, and deletes refused while executions keep history.

use amon_proto::v1::{
    self as pb, AgentKind, AgentMetadata, AgentSessionConfig, BidirectionalProtocol,
    CapabilitySource, DiscoveryMethod, InteractionMode, SessionIdSource,
    agent_service_client::AgentServiceClient,
};
use amon_server::{
    entity::{agent_capabilities, agents, enums, executions, tasks},
    grpc::convert::json_to_struct,
};
use amon_tests::{db::TestDb, server::TestServer};
use prost_types::{FieldMask, Timestamp};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, prelude::ChronoUtc};
use serde_json::{Value, json};
use tonic::{Code, Response, Status, transport::Channel};
use uuid::Uuid;

type Client = AgentServiceClient<Channel>;

const DEFAULT_ID: &str = "00000000-0000-0000-0000-000000000001";
const MISSING_ID: &str = "5f0c7a52-9a3e-4d55-8d7e-2b1b3c9f0a11";

async fn start(db: &TestDb) -> (TestServer, Client) {
    let server = TestServer::start(db.url()).await;
    let client = AgentServiceClient::new(server.channel().await);
    (server, client)
}

/// Asserts that `result` failed with `code` and a message containing each of `needles`.
#[track_caller]
fn fails<T: std::fmt::Debug>(result: Result<Response<T>, Status>, code: Code, needles: &[&str]) {
    match result {
        Ok(response) => panic!(
            "expected {code:?} ({needles:?}), got {:?}",
            response.into_inner()
        ),
        Err(status) => {
            assert_eq!(status.code(), code, "{needles:?}: {}", status.message());
            for needle in needles {
                assert!(
                    status.message().contains(needle),
                    "message of {code:?} {:?} names {needle:?}",
                    status.message()
                );
            }
        }
    }
}

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// A minimal valid agent.
fn agent(slug: &str) -> pb::Agent {
    pb::Agent {
        name: slug.to_owned(),
        slug: slug.to_owned(),
        binary_path: format!("/usr/bin/{slug}"),
        ..Default::default()
    }
}

/// A valid template-mode capability of `agent_id`.
fn search_capability(agent_id: &str, key: &str) -> pb::Capability {
    pb::Capability {
        agent_id: agent_id.to_owned(),
        key: key.to_owned(),
        label: "Search files".into(),
        command_tokens: strings(&["-e", "{{ pattern }}", "{{ path | default('.') }}"]),
        args_schema: Some(json_to_struct(&json!({
            "type": "object",
            "properties": {"pattern": {"type": "string"}, "path": {"type": "string"}},
            "required": ["pattern"]
        }))),
        ..Default::default()
    }
}

/// A valid prompt-mode capability of `agent_id`.
fn prompt_capability(agent_id: &str, key: &str) -> pb::Capability {
    pb::Capability {
        agent_id: agent_id.to_owned(),
        key: key.to_owned(),
        label: "Fix it".into(),
        interaction_mode: InteractionMode::Prompt as i32,
        prompt_template: Some(
            "Fix {{ task_title }} ({{ task_id }})\n{{ task_description }}\n\
             {{ input_context.prompt_additions | default('') }} Focus: {{ focus }} {{ args.focus }}"
                .into(),
        ),
        args_schema: Some(json_to_struct(
            &json!({"properties": {"focus": {"type": "string"}}}),
        )),
        ..Default::default()
    }
}

async fn create_agent(client: &mut Client, agent: pb::Agent) -> pb::Agent {
    client
        .create_agent(pb::CreateAgentRequest { agent: Some(agent) })
        .await
        .expect("CreateAgent")
        .into_inner()
        .agent
        .expect("agent in response")
}

async fn create_capability(client: &mut Client, capability: pb::Capability) -> pb::Capability {
    client
        .create_capability(pb::CreateCapabilityRequest {
            capability: Some(capability),
        })
        .await
        .expect("CreateCapability")
        .into_inner()
        .capability
        .expect("capability in response")
}

async fn get_agent(
    client: &mut Client,
    id: &str,
) -> Result<Response<pb::GetAgentResponse>, Status> {
    client
        .get_agent(pb::GetAgentRequest { id: id.into() })
        .await
}

async fn get_capability(
    client: &mut Client,
    id: &str,
) -> Result<Response<pb::GetCapabilityResponse>, Status> {
    client
        .get_capability(pb::GetCapabilityRequest { id: id.into() })
        .await
}

async fn update_agent(
    client: &mut Client,
    agent: pb::Agent,
    paths: &[&str],
) -> Result<Response<pb::UpdateAgentResponse>, Status> {
    client
        .update_agent(pb::UpdateAgentRequest {
            agent: Some(agent),
            update_mask: mask(paths),
        })
        .await
}

async fn update_capability(
    client: &mut Client,
    capability: pb::Capability,
    paths: &[&str],
) -> Result<Response<pb::UpdateCapabilityResponse>, Status> {
    client
        .update_capability(pb::UpdateCapabilityRequest {
            capability: Some(capability),
            update_mask: mask(paths),
        })
        .await
}

async fn list_agents(
    client: &mut Client,
    request: pb::ListAgentsRequest,
) -> pb::ListAgentsResponse {
    client
        .list_agents(request)
        .await
        .expect("ListAgents")
        .into_inner()
}

async fn list_capabilities(
    client: &mut Client,
    request: pb::ListCapabilitiesRequest,
) -> pb::ListCapabilitiesResponse {
    client
        .list_capabilities(request)
        .await
        .expect("ListCapabilities")
        .into_inner()
}

/// The output-only fields of an agent cleared, to compare with what was sent.
fn caller_fields(mut agent: pb::Agent) -> pb::Agent {
    agent.id.clear();
    agent.owner_id.clear();
    agent.workspace_id.clear();
    agent.created_at = None;
    agent.updated_at = None;
    agent
}

fn capability_caller_fields(mut capability: pb::Capability) -> pb::Capability {
    capability.id.clear();
    capability.created_at = None;
    capability
}

fn uuid(id: &str) -> Uuid {
    Uuid::parse_str(id).expect("a UUID")
}

// ---------------------------------------------------------------------------
// Agents
// ---------------------------------------------------------------------------

async fn agent_lifecycle(db: TestDb) -> anyhow::Result<()> {
    let (_server, mut client) = start(&db).await;

    // A minimal agent gets every default.
    let rg = create_agent(&mut client, agent("rg")).await;
    assert!(Uuid::parse_str(&rg.id).is_ok(), "id is a UUID: {}", rg.id);
    assert_eq!(rg.owner_id, DEFAULT_ID);
    assert_eq!(rg.workspace_id, DEFAULT_ID);
    assert_eq!(rg.kind(), AgentKind::Custom);
    assert_eq!(rg.discovery_method(), DiscoveryMethod::Manual);
    assert_eq!(rg.is_active, Some(true));
    assert_eq!(rg.max_concurrent, Some(1));
    assert_eq!(rg.metadata, Some(AgentMetadata::default()));
    assert_eq!(rg.session_config, None);
    assert!(rg.base_args.is_empty() && rg.env_allowlist.is_empty());
    assert!(!rg.mcp_enabled);
    assert!(rg.created_at.is_some() && rg.created_at == rg.updated_at);

    // Every field set comes back as sent.
    let full = pb::Agent {
        name: "Claude Code".into(),
        slug: "claude".into(),
        kind: AgentKind::Builtin as i32,
        binary_path: "claude".into(),
        base_args: strings(&["--print", "--output-format", "stream-json"]),
        working_dir: Some("/srv/work".into()),
        env_allowlist: strings(&["HOME", "PATH", "_private_1"]),
        is_active: Some(false),
        max_concurrent: Some(3),
        discovery_method: DiscoveryMethod::Preset as i32,
        version: Some("1.0.3".into()),
        package_name: Some("claude-code".into()),
        package_section: Some("devel".into()),
        tool_type: Some("ai-agent".into()),
        mcp_enabled: true,
        session_config: Some(AgentSessionConfig {
            session_id_source: SessionIdSource::JsonField as i32,
            session_id_field: Some("session_id".into()),
            resume_flags: strings(&["--resume", "{{sessionRef}}"]),
            continue_flags: strings(&["--continue"]),
            bidirectional_protocol: BidirectionalProtocol::StreamJson as i32,
            ..Default::default()
        }),
        last_scanned_at: Some(Timestamp {
            seconds: 1_760_000_000,
            nanos: 500_000_000,
        }),
        metadata: Some(AgentMetadata {
            icon: Some("claude.svg".into()),
            color: Some("#d97757".into()),
            description: None,
            homepage: Some("https://example.invalid/claude".into()),
            default_isolation: amon_proto::v1::WorktreeIsolation::Worktree as i32,
        }),
        // Output-only fields are ignored on create.
        id: Uuid::new_v4().to_string(),
        owner_id: MISSING_ID.into(),
        ..Default::default()
    };
    let claude = create_agent(&mut client, full.clone()).await;
    assert_ne!(claude.id, full.id, "the server picks the id");
    assert_eq!(claude.owner_id, DEFAULT_ID);
    let mut expected = full.clone();
    expected.id.clear();
    expected.owner_id.clear();
    assert_eq!(caller_fields(claude.clone()), expected);
    let got = get_agent(&mut client, &claude.id).await?.into_inner().agent;
    assert_eq!(
        got.as_ref(),
        Some(&claude),
        "GetAgent returns what CreateAgent did"
    );

    // The JSON columns keep the data model's camelCase shapes, absent keys omitted.
    let row = agents::Entity::find_by_id(uuid(&claude.id))
        .one(db.conn())
        .await?
        .expect("stored agent");
    assert_eq!(
        row.session_config,
        Some(json!({
            "sessionIdSource": "json_field",
            "sessionIdField": "session_id",
            "resumeFlags": ["--resume", "{{sessionRef}}"],
            "continueFlags": ["--continue"],
            "bidirectionalProtocol": "stream-json"
        }))
    );
    assert_eq!(
        row.metadata,
        json!({
            "icon": "claude.svg",
            "color": "#d97757",
            "homepage": "https://example.invalid/claude",
            "defaultIsolation": "worktree"
        })
    );
    assert_eq!(
        row.base_args,
        json!(["--print", "--output-format", "stream-json"])
    );
    assert_eq!(row.env_allowlist, json!(["HOME", "PATH", "_private_1"]));

    // Update changes the masked fields only; named-but-unset optional fields
    // are cleared, named-but-unset enums go back to their default.
    let change = pb::Agent {
        id: claude.id.clone(),
        name: "Claude".into(),
        max_concurrent: Some(5),
        metadata: Some(AgentMetadata {
            description: Some("Anthropic's coding agent".into()),
            ..Default::default()
        }),
        slug: "ignored-not-in-mask".into(),
        ..Default::default()
    };
    let updated = update_agent(
        &mut client,
        change,
        &[
            "name",
            "max_concurrent",
            "metadata",
            "session_config",
            "working_dir",
            "kind",
        ],
    )
    .await?
    .into_inner()
    .agent
    .expect("agent");
    assert_eq!(updated.name, "Claude");
    assert_eq!(updated.max_concurrent, Some(5));
    assert_eq!(
        updated
            .metadata
            .as_ref()
            .and_then(|m| m.description.as_deref()),
        Some("Anthropic's coding agent")
    );
    assert_eq!(
        updated.metadata.as_ref().and_then(|m| m.icon.as_deref()),
        None
    );
    assert_eq!(updated.session_config, None);
    assert_eq!(updated.working_dir, None);
    assert_eq!(updated.kind(), AgentKind::Custom);
    assert_eq!(
        updated.slug, "claude",
        "fields outside the mask are untouched"
    );
    assert_eq!(updated.env_allowlist, claude.env_allowlist);
    assert_eq!(updated.last_scanned_at, claude.last_scanned_at);
    assert_eq!(updated.created_at, claude.created_at);
    let (before, after) = (claude.updated_at.unwrap(), updated.updated_at.unwrap());
    assert!(
        (after.seconds, after.nanos) > (before.seconds, before.nanos),
        "updated_at moves forward: {before:?} -> {after:?}"
    );
    let row = agents::Entity::find_by_id(uuid(&claude.id))
        .one(db.conn())
        .await?
        .expect("stored agent");
    assert_eq!(row.session_config, None, "a cleared session config is NULL");
    assert_eq!(
        row.metadata,
        json!({"description": "Anthropic's coding agent"})
    );

    // Update refuses bad masks, bad values, conflicts, unknown and malformed ids.
    let id_only = pb::Agent {
        id: claude.id.clone(),
        ..Default::default()
    };
    fails(
        update_agent(&mut client, id_only.clone(), &[]).await,
        Code::InvalidArgument,
        &["update_mask"],
    );
    for path in [
        "id",
        "owner_id",
        "created_at",
        "updated_at",
        "no_such_field",
    ] {
        fails(
            update_agent(&mut client, id_only.clone(), &[path]).await,
            Code::InvalidArgument,
            &["update_mask", path],
        );
    }
    // Named but unset: back to the default of 1.
    update_agent(&mut client, id_only.clone(), &["max_concurrent"]).await?;
    let reset = get_agent(&mut client, &claude.id)
        .await?
        .into_inner()
        .agent
        .unwrap();
    assert_eq!(reset.max_concurrent, Some(1));
    let bad = pb::Agent {
        max_concurrent: Some(0),
        ..id_only.clone()
    };
    fails(
        update_agent(&mut client, bad, &["max_concurrent"]).await,
        Code::InvalidArgument,
        &["agent.max_concurrent"],
    );
    fails(
        update_agent(&mut client, id_only.clone(), &["name"]).await,
        Code::InvalidArgument,
        &["agent.name"],
    );
    let taken = pb::Agent {
        slug: "rg".into(),
        ..id_only.clone()
    };
    fails(
        update_agent(&mut client, taken, &["slug"]).await,
        Code::AlreadyExists,
        &["\"rg\"", "slug"],
    );
    let same = pb::Agent {
        slug: "claude".into(),
        ..id_only.clone()
    };
    update_agent(&mut client, same, &["slug"]).await?;
    let unknown = pb::Agent {
        id: MISSING_ID.into(),
        name: "x".into(),
        ..Default::default()
    };
    fails(
        update_agent(&mut client, unknown, &["name"]).await,
        Code::NotFound,
        &[MISSING_ID],
    );
    let malformed = pb::Agent {
        id: "not-a-uuid".into(),
        ..Default::default()
    };
    fails(
        update_agent(&mut client, malformed, &["name"]).await,
        Code::InvalidArgument,
        &["agent.id"],
    );
    fails(
        client
            .update_agent(pb::UpdateAgentRequest {
                agent: None,
                update_mask: mask(&["name"]),
            })
            .await,
        Code::InvalidArgument,
        &["agent"],
    );
    let bad_kind = pb::Agent {
        kind: 42,
        ..id_only.clone()
    };
    fails(
        update_agent(&mut client, bad_kind, &["kind"]).await,
        Code::InvalidArgument,
        &["agent.kind"],
    );

    // Delete, then it is gone.
    client
        .delete_agent(pb::DeleteAgentRequest { id: rg.id.clone() })
        .await?;
    fails(
        get_agent(&mut client, &rg.id).await,
        Code::NotFound,
        &[&rg.id],
    );
    fails(
        client
            .delete_agent(pb::DeleteAgentRequest { id: rg.id.clone() })
            .await,
        Code::NotFound,
        &[&rg.id],
    );
    fails(
        client
            .delete_agent(pb::DeleteAgentRequest { id: "rg".into() })
            .await,
        Code::InvalidArgument,
        &["id"],
    );
    fails(
        get_agent(&mut client, "").await,
        Code::InvalidArgument,
        &["id", "required"],
    );
    fails(
        get_agent(&mut client, "zzz").await,
        Code::InvalidArgument,
        &["id", "not a UUID"],
    );
    fails(
        get_agent(&mut client, MISSING_ID).await,
        Code::NotFound,
        &[MISSING_ID],
    );
    // The slug is free again.
    create_agent(&mut client, agent("rg")).await;
    Ok(())
}

async fn agent_validation(db: TestDb) -> anyhow::Result<()> {
    let (_server, mut client) = start(&db).await;
    let base = agent("base");
    let session = |config: AgentSessionConfig| pb::Agent {
        session_config: Some(config),
        ..agent("s")
    };
    let cases: Vec<(pb::Agent, &str)> = vec![
        (
            pb::Agent {
                name: "".into(),
                ..base.clone()
            },
            "agent.name",
        ),
        (
            pb::Agent {
                name: " \t".into(),
                ..base.clone()
            },
            "agent.name",
        ),
        (
            pb::Agent {
                name: "nul\0name".into(),
                ..base.clone()
            },
            "agent.name",
        ),
        (
            pb::Agent {
                slug: "".into(),
                ..base.clone()
            },
            "agent.slug",
        ),
        (
            pb::Agent {
                slug: "Caps".into(),
                ..base.clone()
            },
            "agent.slug",
        ),
        (
            pb::Agent {
                slug: "-lead".into(),
                ..base.clone()
            },
            "agent.slug",
        ),
        (
            pb::Agent {
                slug: "under_score".into(),
                ..base.clone()
            },
            "agent.slug",
        ),
        (
            pb::Agent {
                slug: "dot.ted".into(),
                ..base.clone()
            },
            "agent.slug",
        ),
        (
            pb::Agent {
                slug: "a".repeat(64),
                ..base.clone()
            },
            "agent.slug",
        ),
        (
            pb::Agent {
                binary_path: "".into(),
                ..base.clone()
            },
            "agent.binary_path",
        ),
        (
            pb::Agent {
                binary_path: "  ".into(),
                ..base.clone()
            },
            "agent.binary_path",
        ),
        (
            pb::Agent {
                base_args: strings(&["ok", "a\0b"]),
                ..base.clone()
            },
            "agent.base_args[1]",
        ),
        (
            pb::Agent {
                working_dir: Some("".into()),
                ..base.clone()
            },
            "agent.working_dir",
        ),
        (
            pb::Agent {
                max_concurrent: Some(0),
                ..base.clone()
            },
            "agent.max_concurrent",
        ),
        (
            pb::Agent {
                max_concurrent: Some(-4),
                ..base.clone()
            },
            "agent.max_concurrent",
        ),
        (
            pb::Agent {
                env_allowlist: strings(&["PATH", "BAD-NAME"]),
                ..base.clone()
            },
            "agent.env_allowlist[1]",
        ),
        (
            pb::Agent {
                env_allowlist: strings(&["1ST"]),
                ..base.clone()
            },
            "agent.env_allowlist[0]",
        ),
        (
            pb::Agent {
                env_allowlist: strings(&[""]),
                ..base.clone()
            },
            "agent.env_allowlist[0]",
        ),
        (
            pb::Agent {
                env_allowlist: strings(&["HOME", "PATH", "HOME"]),
                ..base.clone()
            },
            "agent.env_allowlist[2]",
        ),
        (
            pb::Agent {
                tool_type: Some("gui-app".into()),
                ..base.clone()
            },
            "agent.tool_type",
        ),
        (
            pb::Agent {
                version: Some(" ".into()),
                ..base.clone()
            },
            "agent.version",
        ),
        (
            pb::Agent {
                package_name: Some("".into()),
                ..base.clone()
            },
            "agent.package_name",
        ),
        (
            pb::Agent {
                package_section: Some("".into()),
                ..base.clone()
            },
            "agent.package_section",
        ),
        (
            pb::Agent {
                kind: 42,
                ..base.clone()
            },
            "agent.kind",
        ),
        (
            pb::Agent {
                discovery_method: -1,
                ..base.clone()
            },
            "agent.discovery_method",
        ),
        (
            pb::Agent {
                last_scanned_at: Some(Timestamp {
                    seconds: 0,
                    nanos: -1,
                }),
                ..base.clone()
            },
            "agent.last_scanned_at",
        ),
        (
            pb::Agent {
                // Year -1000: neither backend orders or stores it sensibly.
                last_scanned_at: Some(Timestamp {
                    seconds: -93_700_000_000,
                    nanos: 0,
                }),
                ..base.clone()
            },
            "agent.last_scanned_at",
        ),
        (
            pb::Agent {
                metadata: Some(AgentMetadata {
                    icon: Some("".into()),
                    ..Default::default()
                }),
                ..base.clone()
            },
            "agent.metadata.icon",
        ),
        (
            pb::Agent {
                metadata: Some(AgentMetadata {
                    homepage: Some("a\0".into()),
                    ..Default::default()
                }),
                ..base.clone()
            },
            "agent.metadata.homepage",
        ),
        (
            session(AgentSessionConfig::default()),
            "agent.session_config.session_id_source",
        ),
        (
            session(AgentSessionConfig {
                session_id_source: 17,
                ..Default::default()
            }),
            "agent.session_config.session_id_source",
        ),
        (
            session(AgentSessionConfig {
                session_id_source: SessionIdSource::None as i32,
                bidirectional_protocol: 9,
                ..Default::default()
            }),
            "agent.session_config.bidirectional_protocol",
        ),
        (
            session(AgentSessionConfig {
                session_id_source: SessionIdSource::JsonField as i32,
                ..Default::default()
            }),
            "agent.session_config.session_id_field",
        ),
        (
            session(AgentSessionConfig {
                session_id_source: SessionIdSource::Filesystem as i32,
                ..Default::default()
            }),
            "agent.session_config.session_file_glob",
        ),
        (
            session(AgentSessionConfig {
                session_id_source: SessionIdSource::ListCommand as i32,
                list_sessions_pattern: Some(r"(\S+)".into()),
                ..Default::default()
            }),
            "agent.session_config.list_sessions_command",
        ),
        (
            session(AgentSessionConfig {
                session_id_source: SessionIdSource::ListCommand as i32,
                list_sessions_command: strings(&["gemini", "--list-sessions"]),
                list_sessions_pattern: Some("([unclosed".into()),
                ..Default::default()
            }),
            "agent.session_config.list_sessions_pattern",
        ),
        (
            session(AgentSessionConfig {
                session_id_source: SessionIdSource::None as i32,
                resume_flags: strings(&["--resume", "\0"]),
                ..Default::default()
            }),
            "agent.session_config.resume_flags[1]",
        ),
    ];
    for (bad, field) in cases {
        let result = client
            .create_agent(pb::CreateAgentRequest {
                agent: Some(bad.clone()),
            })
            .await;
        match result {
            Err(status) => {
                assert_eq!(
                    status.code(),
                    Code::InvalidArgument,
                    "{bad:?}: {}",
                    status.message()
                );
                assert!(
                    status.message().starts_with(&format!("{field}:")),
                    "{field} named in {:?}",
                    status.message()
                );
            }
            Ok(ok) => panic!("accepted {bad:?}: {ok:?}"),
        }
    }
    fails(
        client
            .create_agent(pb::CreateAgentRequest { agent: None })
            .await,
        Code::InvalidArgument,
        &["agent", "required"],
    );
    // Nothing invalid was stored.
    assert!(
        list_agents(&mut client, Default::default())
            .await
            .agents
            .is_empty()
    );

    // The edges of what is valid.
    let edge_slug = format!("0{}", "-".repeat(61) + "z");
    assert_eq!(edge_slug.len(), 63);
    create_agent(
        &mut client,
        pb::Agent {
            slug: edge_slug,
            ..base.clone()
        },
    )
    .await;
    for (index, tool_type) in ["cli-tool", "ai-agent", "daemon", "shell-util"]
        .iter()
        .enumerate()
    {
        let created = create_agent(
            &mut client,
            pb::Agent {
                tool_type: Some((*tool_type).into()),
                ..agent(&format!("tool-{index}"))
            },
        )
        .await;
        assert_eq!(created.tool_type.as_deref(), Some(*tool_type));
    }
    let gemini = create_agent(
        &mut client,
        session(AgentSessionConfig {
            session_id_source: SessionIdSource::ListCommand as i32,
            list_sessions_command: strings(&["gemini", "--list-sessions"]),
            list_sessions_pattern: Some(r"^\s*(\S+)\s".into()),
            bidirectional_protocol: BidirectionalProtocol::Tmux as i32,
            ..Default::default()
        }),
    )
    .await;
    let row = agents::Entity::find_by_id(uuid(&gemini.id))
        .one(db.conn())
        .await?
        .expect("stored");
    assert_eq!(
        row.session_config,
        Some(json!({
            "sessionIdSource": "list_command",
            "listSessionsCommand": ["gemini", "--list-sessions"],
            "listSessionsPattern": r"^\s*(\S+)\s",
            "bidirectionalProtocol": "tmux"
        }))
    );
    let codex = create_agent(
        &mut client,
        pb::Agent {
            session_config: Some(AgentSessionConfig {
                session_id_source: SessionIdSource::Filesystem as i32,
                session_file_glob: Some("~/.codex/sessions/**/*.jsonl".into()),
                bidirectional_protocol: BidirectionalProtocol::AppServer as i32,
                ..Default::default()
            }),
            ..agent("codex")
        },
    )
    .await;
    let config = codex.session_config.expect("session config");
    assert_eq!(config.session_id_source(), SessionIdSource::Filesystem);
    assert_eq!(
        config.bidirectional_protocol(),
        BidirectionalProtocol::AppServer
    );

    // A taken slug is ALREADY_EXISTS, naming it.
    fails(
        client
            .create_agent(pb::CreateAgentRequest {
                agent: Some(pb::Agent {
                    name: "Other".into(),
                    ..agent("codex")
                }),
            })
            .await,
        Code::AlreadyExists,
        &["\"codex\"", "slug"],
    );
    Ok(())
}

async fn agent_listing_and_workspaces(db: TestDb) -> anyhow::Result<()> {
    let (_server, mut client) = start(&db).await;
    // Lowercase names: both backends order them the same way.
    let mut ids = std::collections::HashMap::new();
    for (slug, name, active, kind) in [
        ("d", "delta", true, AgentKind::Custom),
        ("a", "alpha", false, AgentKind::Builtin),
        ("c", "charlie", true, AgentKind::Builtin),
        ("b2", "bravo", true, AgentKind::Custom),
        ("b1", "bravo", false, AgentKind::Custom),
        ("e", "echo", true, AgentKind::Unspecified),
    ] {
        let created = create_agent(
            &mut client,
            pb::Agent {
                name: name.into(),
                is_active: Some(active),
                kind: kind as i32,
                ..agent(slug)
            },
        )
        .await;
        ids.insert(slug, created.id);
    }
    // An agent of another workspace, written straight into the database.
    let foreign = Uuid::new_v4();
    let now = ChronoUtc::now();
    agents::ActiveModel {
        id: Set(foreign),
        owner_id: Set(Uuid::from_u128(2)),
        workspace_id: Set(Uuid::from_u128(2)),
        name: Set("aaa foreign".into()),
        slug: Set("foreign".into()),
        kind: Set(enums::AgentKind::Custom),
        binary_path: Set("x".into()),
        base_args: Set(json!([])),
        working_dir: Set(None),
        env_allowlist: Set(json!([])),
        is_active: Set(true),
        max_concurrent: Set(1),
        discovery_method: Set(enums::DiscoveryMethod::Manual),
        version: Set(None),
        package_name: Set(None),
        package_section: Set(None),
        tool_type: Set(None),
        mcp_enabled: Set(false),
        session_config: Set(None),
        last_scanned_at: Set(None),
        metadata: Set(json!({})),
        created_at: Set(now.into()),
        updated_at: Set(now.into()),
    }
    .insert(db.conn())
    .await?;

    // Pages of two, by name then id, until the token runs out.
    let mut bravo = [ids["b1"].clone(), ids["b2"].clone()];
    bravo.sort();
    let expected: Vec<String> = [ids["a"].clone()]
        .into_iter()
        .chain(bravo)
        .chain([ids["c"].clone(), ids["d"].clone(), ids["e"].clone()])
        .collect();
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = list_agents(
            &mut client,
            pb::ListAgentsRequest {
                page_size: 2,
                page_token: token.clone(),
                ..Default::default()
            },
        )
        .await;
        pages += 1;
        assert!(page.agents.len() <= 2);
        seen.extend(page.agents.into_iter().map(|a| a.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(
        seen, expected,
        "ordered by name then id, the foreign agent left out"
    );
    assert_eq!(pages, 3);
    let all = list_agents(&mut client, Default::default()).await;
    assert_eq!(all.agents.len(), 6);
    assert!(all.next_page_token.is_empty());

    // Filters, alone and together.
    let names = |response: pb::ListAgentsResponse| -> Vec<String> {
        response.agents.into_iter().map(|a| a.slug).collect()
    };
    let inactive = list_agents(
        &mut client,
        pb::ListAgentsRequest {
            is_active: Some(false),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(names(inactive), ["a", "b1"]);
    let builtin = list_agents(
        &mut client,
        pb::ListAgentsRequest {
            kind: AgentKind::Builtin as i32,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(names(builtin), ["a", "c"]);
    let both = list_agents(
        &mut client,
        pb::ListAgentsRequest {
            is_active: Some(true),
            kind: AgentKind::Custom as i32,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(names(both), ["b2", "d", "e"]);

    // Bad paging and filters.
    fails(
        client
            .list_agents(pb::ListAgentsRequest {
                page_token: "bogus!".into(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        &["page_token"],
    );
    fails(
        client
            .list_agents(pb::ListAgentsRequest {
                page_size: -1,
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        &["page_size"],
    );
    fails(
        client
            .list_agents(pb::ListAgentsRequest {
                kind: 77,
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        &["kind"],
    );

    // The foreign agent is not found by any RPC, nor usable for capabilities.
    let foreign = foreign.to_string();
    fails(
        get_agent(&mut client, &foreign).await,
        Code::NotFound,
        &[&foreign],
    );
    let rename = pb::Agent {
        id: foreign.clone(),
        name: "mine".into(),
        ..Default::default()
    };
    fails(
        update_agent(&mut client, rename, &["name"]).await,
        Code::NotFound,
        &[&foreign],
    );
    fails(
        client
            .delete_agent(pb::DeleteAgentRequest {
                id: foreign.clone(),
            })
            .await,
        Code::NotFound,
        &[&foreign],
    );
    fails(
        client
            .create_capability(pb::CreateCapabilityRequest {
                capability: Some(search_capability(&foreign, "grep")),
            })
            .await,
        Code::NotFound,
        &["capability.agent_id", &foreign],
    );
    // Slugs are unique across workspaces (the database's key is global).
    fails(
        client
            .create_agent(pb::CreateAgentRequest {
                agent: Some(agent("foreign")),
            })
            .await,
        Code::AlreadyExists,
        &["\"foreign\""],
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Capabilities
// ---------------------------------------------------------------------------

async fn capability_lifecycle(db: TestDb) -> anyhow::Result<()> {
    let (_server, mut client) = start(&db).await;
    let rg = create_agent(&mut client, agent("rg")).await;
    let claude = create_agent(&mut client, agent("claude")).await;

    // Template mode, defaults filled in.
    let sent = pb::Capability {
        danger_level: 1,
        requires_approval: true,
        description: Some("ripgrep a pattern".into()),
        ..search_capability(&rg.id, "search")
    };
    let search = create_capability(&mut client, sent.clone()).await;
    assert!(Uuid::parse_str(&search.id).is_ok());
    assert!(search.created_at.is_some());
    assert_eq!(
        capability_caller_fields(search.clone()),
        pb::Capability {
            source: CapabilitySource::Manual as i32,
            interaction_mode: InteractionMode::Template as i32,
            is_enabled: Some(true),
            timeout_sec: Some(300),
            max_output_bytes: Some(10_485_760),
            ..sent
        }
    );

    // Prompt mode, everything set.
    let sent = pb::Capability {
        source: CapabilitySource::Preset as i32,
        is_enabled: Some(false),
        danger_level: 3,
        timeout_sec: Some(60),
        max_output_bytes: Some(1000),
        ..prompt_capability(&claude.id, "fix")
    };
    let fix = create_capability(&mut client, sent.clone()).await;
    assert_eq!(capability_caller_fields(fix.clone()), sent);

    // No schema means {}; a schema opening additionalProperties admits any variable.
    let open = create_capability(
        &mut client,
        pb::Capability {
            agent_id: rg.id.clone(),
            key: "any.thing_1".into(),
            label: "Anything".into(),
            command_tokens: strings(&["{{ whatever }}"]),
            args_schema: Some(json_to_struct(&json!({"additionalProperties": true}))),
            ..Default::default()
        },
    )
    .await;
    let plain = create_capability(
        &mut client,
        pb::Capability {
            agent_id: rg.id.clone(),
            key: "version".into(),
            label: "Version".into(),
            command_tokens: strings(&["--version"]),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(plain.args_schema, Some(prost_types::Struct::default()));

    // Stored shapes: tokens a JSON array, none at all in prompt mode.
    let row = agent_capabilities::Entity::find_by_id(uuid(&search.id))
        .one(db.conn())
        .await?
        .expect("stored");
    assert_eq!(
        row.command_tokens,
        Some(json!(["-e", "{{ pattern }}", "{{ path | default('.') }}"]))
    );
    assert_eq!(row.args_schema["required"], json!(["pattern"]));
    let row = agent_capabilities::Entity::find_by_id(uuid(&fix.id))
        .one(db.conn())
        .await?
        .expect("stored");
    assert_eq!(row.command_tokens, None);
    assert_eq!(row.interaction_mode, enums::InteractionMode::Prompt);

    // Get.
    let got = get_capability(&mut client, &fix.id)
        .await?
        .into_inner()
        .capability;
    assert_eq!(got.as_ref(), Some(&fix));

    // List: by agent name, then key; filters; pages.
    let keys = |response: pb::ListCapabilitiesResponse| -> Vec<String> {
        response.capabilities.into_iter().map(|c| c.key).collect()
    };
    let all = list_capabilities(&mut client, Default::default()).await;
    assert_eq!(keys(all), ["fix", "any.thing_1", "search", "version"]);
    let of_rg = list_capabilities(
        &mut client,
        pb::ListCapabilitiesRequest {
            agent_id: rg.id.clone(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(keys(of_rg), ["any.thing_1", "search", "version"]);
    let disabled = list_capabilities(
        &mut client,
        pb::ListCapabilitiesRequest {
            is_enabled: Some(false),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(keys(disabled), ["fix"]);
    let first = list_capabilities(
        &mut client,
        pb::ListCapabilitiesRequest {
            agent_id: rg.id.clone(),
            page_size: 2,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(first.capabilities.len(), 2);
    assert!(!first.next_page_token.is_empty());
    let second = list_capabilities(
        &mut client,
        pb::ListCapabilitiesRequest {
            agent_id: rg.id.clone(),
            page_size: 2,
            page_token: first.next_page_token.clone(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(keys(second.clone()), ["version"]);
    assert!(second.next_page_token.is_empty());
    fails(
        client
            .list_capabilities(pb::ListCapabilitiesRequest {
                agent_id: "rg".into(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        &["agent_id"],
    );
    fails(
        client
            .list_capabilities(pb::ListCapabilitiesRequest {
                agent_id: MISSING_ID.into(),
                ..Default::default()
            })
            .await,
        Code::NotFound,
        &["agent_id", MISSING_ID],
    );
    fails(
        client
            .list_capabilities(pb::ListCapabilitiesRequest {
                page_token: "x".into(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        &["page_token"],
    );

    // Update: only masked fields; the whole result is re-validated.
    let relabel = pb::Capability {
        id: search.id.clone(),
        label: "Grep".into(),
        key: "ignored".into(),
        agent_id: claude.id.clone(), // outside the mask: ignored
        ..Default::default()
    };
    let relabelled = update_capability(&mut client, relabel, &["label"])
        .await?
        .into_inner()
        .capability
        .unwrap();
    assert_eq!(relabelled.label, "Grep");
    assert_eq!(relabelled.key, "search");
    assert_eq!(relabelled.agent_id, rg.id);
    assert_eq!(relabelled.command_tokens, search.command_tokens);

    // Dropping a property the tokens read is refused, naming the token...
    let narrower = pb::Capability {
        id: search.id.clone(),
        args_schema: Some(json_to_struct(
            &json!({"properties": {"path": {"type": "string"}}}),
        )),
        ..Default::default()
    };
    fails(
        update_capability(&mut client, narrower.clone(), &["args_schema"]).await,
        Code::InvalidArgument,
        &["capability.command_tokens[1]", "pattern"],
    );
    // ...but changing both together is fine.
    let renamed = pb::Capability {
        command_tokens: strings(&["--", "{{ path }}"]),
        ..narrower
    };
    let renamed = update_capability(&mut client, renamed, &["args_schema", "command_tokens"])
        .await?
        .into_inner()
        .capability
        .unwrap();
    assert_eq!(renamed.command_tokens, strings(&["--", "{{ path }}"]));

    // Switching mode must leave a consistent capability.
    let to_prompt = pb::Capability {
        id: search.id.clone(),
        interaction_mode: InteractionMode::Prompt as i32,
        prompt_template: Some("Search for {{ path }} in {{ task_title }}".into()),
        ..Default::default()
    };
    fails(
        update_capability(
            &mut client,
            to_prompt.clone(),
            &["interaction_mode", "prompt_template"],
        )
        .await,
        Code::InvalidArgument,
        &["capability.command_tokens", "prompt mode"],
    );
    fails(
        update_capability(
            &mut client,
            to_prompt.clone(),
            &["interaction_mode", "command_tokens"],
        )
        .await,
        Code::InvalidArgument,
        &["capability.prompt_template", "required"],
    );
    let prompted = update_capability(
        &mut client,
        to_prompt,
        &["interaction_mode", "command_tokens", "prompt_template"],
    )
    .await?
    .into_inner()
    .capability
    .unwrap();
    assert_eq!(prompted.interaction_mode(), InteractionMode::Prompt);
    assert!(prompted.command_tokens.is_empty());
    let row = agent_capabilities::Entity::find_by_id(uuid(&search.id))
        .one(db.conn())
        .await?
        .expect("stored");
    assert_eq!(row.command_tokens, None);
    // Back to template mode: a prompt left behind is refused.
    let to_template = pb::Capability {
        id: search.id.clone(),
        interaction_mode: InteractionMode::Template as i32,
        command_tokens: strings(&["{{ path }}"]),
        ..Default::default()
    };
    fails(
        update_capability(
            &mut client,
            to_template.clone(),
            &["interaction_mode", "command_tokens"],
        )
        .await,
        Code::InvalidArgument,
        &["capability.prompt_template", "template mode"],
    );
    update_capability(
        &mut client,
        to_template,
        &["interaction_mode", "command_tokens", "prompt_template"],
    )
    .await?;

    // Numbers, enums, keys, ids and masks.
    let id_only = pb::Capability {
        id: search.id.clone(),
        ..Default::default()
    };
    let defaults = update_capability(
        &mut client,
        id_only.clone(),
        &["timeout_sec", "max_output_bytes", "is_enabled", "source"],
    )
    .await?
    .into_inner()
    .capability
    .unwrap();
    assert_eq!(
        (
            defaults.timeout_sec,
            defaults.max_output_bytes,
            defaults.is_enabled,
            defaults.source()
        ),
        (
            Some(300),
            Some(10_485_760),
            Some(true),
            CapabilitySource::Manual
        ),
        "named but unset: back to the defaults"
    );
    for (change, path, field) in [
        (
            pb::Capability {
                danger_level: 4,
                ..id_only.clone()
            },
            "danger_level",
            "capability.danger_level",
        ),
        (
            pb::Capability {
                timeout_sec: Some(0),
                ..id_only.clone()
            },
            "timeout_sec",
            "capability.timeout_sec",
        ),
        (
            pb::Capability {
                max_output_bytes: Some(-1),
                ..id_only.clone()
            },
            "max_output_bytes",
            "capability.max_output_bytes",
        ),
        (
            pb::Capability {
                label: " ".into(),
                ..id_only.clone()
            },
            "label",
            "capability.label",
        ),
        (
            pb::Capability {
                key: "Bad Key".into(),
                ..id_only.clone()
            },
            "key",
            "capability.key",
        ),
        (
            pb::Capability {
                source: 99,
                ..id_only.clone()
            },
            "source",
            "capability.source",
        ),
        (
            pb::Capability {
                description: Some("".into()),
                ..id_only.clone()
            },
            "description",
            "capability.description",
        ),
    ] {
        fails(
            update_capability(&mut client, change, &[path]).await,
            Code::InvalidArgument,
            &[field],
        );
    }
    let clash = pb::Capability {
        key: "version".into(),
        ..id_only.clone()
    };
    fails(
        update_capability(&mut client, clash, &["key"]).await,
        Code::AlreadyExists,
        &["\"version\"", "key"],
    );
    let rekey = pb::Capability {
        key: "search.v2".into(),
        ..id_only.clone()
    };
    let rekeyed = update_capability(&mut client, rekey, &["key"])
        .await?
        .into_inner()
        .capability
        .unwrap();
    assert_eq!(rekeyed.key, "search.v2");
    let move_it = pb::Capability {
        agent_id: claude.id.clone(),
        ..id_only.clone()
    };
    fails(
        update_capability(&mut client, move_it, &["agent_id"]).await,
        Code::InvalidArgument,
        &["update_mask", "agent_id", "immutable"],
    );
    fails(
        update_capability(&mut client, id_only.clone(), &[]).await,
        Code::InvalidArgument,
        &["update_mask"],
    );
    fails(
        update_capability(&mut client, id_only.clone(), &["created_at"]).await,
        Code::InvalidArgument,
        &["update_mask", "created_at"],
    );
    fails(
        update_capability(
            &mut client,
            pb::Capability {
                id: "x".into(),
                ..Default::default()
            },
            &["label"],
        )
        .await,
        Code::InvalidArgument,
        &["capability.id"],
    );
    fails(
        update_capability(
            &mut client,
            pb::Capability {
                id: MISSING_ID.into(),
                label: "l".into(),
                ..Default::default()
            },
            &["label"],
        )
        .await,
        Code::NotFound,
        &[MISSING_ID],
    );
    fails(
        client
            .update_capability(pb::UpdateCapabilityRequest {
                capability: None,
                update_mask: mask(&["label"]),
            })
            .await,
        Code::InvalidArgument,
        &["capability"],
    );

    // Delete one; deleting its agent takes the rest along.
    client
        .delete_capability(pb::DeleteCapabilityRequest { id: fix.id.clone() })
        .await?;
    fails(
        get_capability(&mut client, &fix.id).await,
        Code::NotFound,
        &[&fix.id],
    );
    fails(
        client
            .delete_capability(pb::DeleteCapabilityRequest { id: fix.id.clone() })
            .await,
        Code::NotFound,
        &[&fix.id],
    );
    fails(
        client
            .delete_capability(pb::DeleteCapabilityRequest { id: "1".into() })
            .await,
        Code::InvalidArgument,
        &["id"],
    );
    fails(
        get_capability(&mut client, "").await,
        Code::InvalidArgument,
        &["id", "required"],
    );
    client
        .delete_agent(pb::DeleteAgentRequest { id: rg.id.clone() })
        .await?;
    for id in [&search.id, &open.id, &plain.id] {
        fails(
            get_capability(&mut client, id).await,
            Code::NotFound,
            &[id.as_str()],
        );
    }
    assert!(
        agent_capabilities::Entity::find()
            .all(db.conn())
            .await?
            .is_empty()
    );
    Ok(())
}

async fn capability_validation(db: TestDb) -> anyhow::Result<()> {
    let (_server, mut client) = start(&db).await;
    let rg = create_agent(&mut client, agent("rg")).await;
    let base = search_capability(&rg.id, "search");
    let prompt = prompt_capability(&rg.id, "fix");
    let schema = |value: Value| Some(json_to_struct(&value));
    let cases: Vec<(pb::Capability, &str, &str)> = vec![
        (
            pb::Capability {
                agent_id: "".into(),
                ..base.clone()
            },
            "capability.agent_id",
            "required",
        ),
        (
            pb::Capability {
                agent_id: "rg".into(),
                ..base.clone()
            },
            "capability.agent_id",
            "UUID",
        ),
        (
            pb::Capability {
                key: "".into(),
                ..base.clone()
            },
            "capability.key",
            "required",
        ),
        (
            pb::Capability {
                key: "Upper".into(),
                ..base.clone()
            },
            "capability.key",
            "lowercase",
        ),
        (
            pb::Capability {
                key: ".hidden".into(),
                ..base.clone()
            },
            "capability.key",
            "",
        ),
        (
            pb::Capability {
                key: "with space".into(),
                ..base.clone()
            },
            "capability.key",
            "",
        ),
        (
            pb::Capability {
                key: "k".repeat(64),
                ..base.clone()
            },
            "capability.key",
            "63",
        ),
        (
            pb::Capability {
                label: "".into(),
                ..base.clone()
            },
            "capability.label",
            "required",
        ),
        (
            pb::Capability {
                description: Some(" ".into()),
                ..base.clone()
            },
            "capability.description",
            "",
        ),
        (
            pb::Capability {
                source: 99,
                ..base.clone()
            },
            "capability.source",
            "99",
        ),
        (
            pb::Capability {
                interaction_mode: 5,
                ..base.clone()
            },
            "capability.interaction_mode",
            "5",
        ),
        (
            pb::Capability {
                danger_level: 4,
                ..base.clone()
            },
            "capability.danger_level",
            "4",
        ),
        (
            pb::Capability {
                danger_level: -1,
                ..base.clone()
            },
            "capability.danger_level",
            "-1",
        ),
        (
            pb::Capability {
                timeout_sec: Some(0),
                ..base.clone()
            },
            "capability.timeout_sec",
            "0",
        ),
        (
            pb::Capability {
                timeout_sec: Some(-30),
                ..base.clone()
            },
            "capability.timeout_sec",
            "",
        ),
        (
            pb::Capability {
                max_output_bytes: Some(0),
                ..base.clone()
            },
            "capability.max_output_bytes",
            "",
        ),
        // Template mode.
        (
            pb::Capability {
                prompt_template: Some("Do it".into()),
                ..base.clone()
            },
            "capability.prompt_template",
            "template mode",
        ),
        (
            pb::Capability {
                command_tokens: strings(&["-e", "{{ pattern }}", "{{ path"]),
                ..base.clone()
            },
            "capability.command_tokens[2]",
            "syntax error",
        ),
        (
            pb::Capability {
                command_tokens: strings(&["-e", "{{ patern }}"]),
                ..base.clone()
            },
            "capability.command_tokens[1]",
            "\"patern\"",
        ),
        (
            pb::Capability {
                command_tokens: strings(&["{{ x }}"]),
                args_schema: schema(
                    json!({"properties": {"y": {}}, "additionalProperties": false}),
                ),
                ..base.clone()
            },
            "capability.command_tokens[0]",
            "\"x\"",
        ),
        (
            pb::Capability {
                command_tokens: strings(&["ok", "nul\0"]),
                ..base.clone()
            },
            "capability.command_tokens[1]",
            "NUL",
        ),
        // Prompt mode.
        (
            pb::Capability {
                prompt_template: None,
                ..prompt.clone()
            },
            "capability.prompt_template",
            "prompt mode",
        ),
        (
            pb::Capability {
                prompt_template: Some("".into()),
                ..prompt.clone()
            },
            "capability.prompt_template",
            "required",
        ),
        (
            pb::Capability {
                command_tokens: strings(&["--print"]),
                ..prompt.clone()
            },
            "capability.command_tokens",
            "prompt mode",
        ),
        (
            pb::Capability {
                prompt_template: Some("Fix {{ tsk_title }}".into()),
                ..prompt.clone()
            },
            "capability.prompt_template",
            "\"tsk_title\"",
        ),
        (
            pb::Capability {
                prompt_template: Some("line 1\n{% if task_title %}".into()),
                ..prompt.clone()
            },
            "capability.prompt_template",
            "syntax error",
        ),
        (
            pb::Capability {
                args_schema: schema(json!({"properties": {"task_id": {"type": "string"}}})),
                ..prompt.clone()
            },
            "capability.args_schema/properties/task_id",
            "prompt variable",
        ),
        // The schema.
        (
            pb::Capability {
                args_schema: schema(json!({"properties": {"pattern": {"type": "strng"}}})),
                ..base.clone()
            },
            "capability.args_schema/properties/pattern/type",
            "strng",
        ),
        (
            pb::Capability {
                args_schema: schema(json!({"type": "array"})),
                ..base.clone()
            },
            "capability.args_schema/type",
            "object",
        ),
        (
            pb::Capability {
                args_schema: schema(json!({"required": "pattern"})),
                ..base.clone()
            },
            "capability.args_schema/required",
            "",
        ),
        (
            pb::Capability {
                args_schema: schema(json!({"$ref": "https://example.invalid/schema.json"})),
                ..base.clone()
            },
            "capability.args_schema",
            "example.invalid",
        ),
        (
            pb::Capability {
                args_schema: schema(json!({"properties": {"p": {"pattern": "(["}}})),
                ..base.clone()
            },
            "capability.args_schema/properties/p/pattern",
            "",
        ),
        (
            pb::Capability {
                args_schema: schema(json!({"description": "a\u{0}b"})),
                ..base.clone()
            },
            "capability.args_schema/description",
            "NUL",
        ),
    ];
    for (bad, field, needle) in cases {
        let result = client
            .create_capability(pb::CreateCapabilityRequest {
                capability: Some(bad.clone()),
            })
            .await;
        match result {
            Err(status) => {
                assert_eq!(
                    status.code(),
                    Code::InvalidArgument,
                    "{bad:?}: {}",
                    status.message()
                );
                assert!(
                    status.message().starts_with(&format!("{field}:"))
                        && status.message().contains(needle),
                    "{field} and {needle:?} named in {:?}",
                    status.message()
                );
            }
            Ok(ok) => panic!("accepted {bad:?}: {ok:?}"),
        }
    }
    fails(
        client
            .create_capability(pb::CreateCapabilityRequest { capability: None })
            .await,
        Code::InvalidArgument,
        &["capability", "required"],
    );
    fails(
        client
            .create_capability(pb::CreateCapabilityRequest {
                capability: Some(search_capability(MISSING_ID, "search")),
            })
            .await,
        Code::NotFound,
        &["capability.agent_id", MISSING_ID],
    );
    assert!(
        agent_capabilities::Entity::find()
            .all(db.conn())
            .await?
            .is_empty(),
        "nothing invalid stored"
    );

    // Keys are unique per agent, not across agents.
    create_capability(&mut client, base.clone()).await;
    fails(
        client
            .create_capability(pb::CreateCapabilityRequest {
                capability: Some(base.clone()),
            })
            .await,
        Code::AlreadyExists,
        &["\"search\"", "key"],
    );
    let other = create_agent(&mut client, agent("other")).await;
    create_capability(&mut client, search_capability(&other.id, "search")).await;
    // The edges of what is valid.
    create_capability(
        &mut client,
        pb::Capability {
            key: "k".repeat(63),
            danger_level: 3,
            ..base.clone()
        },
    )
    .await;
    create_capability(
        &mut client,
        pb::Capability {
            key: "0_a.b-c".into(),
            timeout_sec: Some(1),
            max_output_bytes: Some(1),
            ..base.clone()
        },
    )
    .await;
    create_capability(
        &mut client,
        pb::Capability {
            interaction_mode: InteractionMode::Template as i32,
            key: "explicit".into(),
            ..base.clone()
        },
    )
    .await;
    create_capability(&mut client, prompt.clone()).await;
    Ok(())
}

// ---------------------------------------------------------------------------
// Executions keep their history
// ---------------------------------------------------------------------------

async fn deletes_refused_while_executions_exist(db: TestDb) -> anyhow::Result<()> {
    let (_server, mut client) = start(&db).await;
    let rg = create_agent(&mut client, agent("rg")).await;
    let used = create_capability(&mut client, search_capability(&rg.id, "search")).await;
    let unused = create_capability(&mut client, search_capability(&rg.id, "unused")).await;

    // ExecutionService is not built yet: write a task and a finished run directly.
    let now = ChronoUtc::now();
    let task = tasks::ActiveModel {
        id: Set(Uuid::new_v4()),
        owner_id: Set(Uuid::from_u128(1)),
        workspace_id: Set(Uuid::from_u128(1)),
        parent_task_id: Set(None),
        title: Set("search the code".into()),
        description: Set(None),
        status: Set(enums::TaskStatus::Done),
        priority: Set(3),
        sort_order: Set(1000),
        assignee_agent_id: Set(Some(uuid(&rg.id))),
        input_context: Set(json!({})),
        due_at: Set(None),
        created_at: Set(now.into()),
        updated_at: Set(now.into()),
    }
    .insert(db.conn())
    .await?;
    let execution = executions::ActiveModel {
        id: Set(Uuid::new_v4()),
        task_id: Set(task.id),
        agent_id: Set(uuid(&rg.id)),
        capability_id: Set(uuid(&used.id)),
        requested_by: Set(Uuid::from_u128(1)),
        status: Set(enums::ExecutionStatus::Succeeded),
        mode: Set(enums::InteractionMode::Template),
        args: Set(json!({"pattern": "fn main"})),
        prompt: Set(None),
        pid: Set(None),
        session_ref: Set(None),
        tmux_session_name: Set(None),
        parent_execution_id: Set(None),
        started_at: Set(Some(now.into())),
        ended_at: Set(Some(now.into())),
        exit_code: Set(Some(0)),
        error: Set(None),
        worker_id: Set(Some("w1".into())),
        heartbeat_at: Set(None),
        log_file_path: Set(None),
        log_byte_size: Set(0),
        log_line_count: Set(0),
        log_updated_at: Set(None),
        retry_count: Set(0),
        max_retries: Set(0),
        created_at: Set(now.into()),
    }
    .insert(db.conn())
    .await?;

    fails(
        client
            .delete_capability(pb::DeleteCapabilityRequest {
                id: used.id.clone(),
            })
            .await,
        Code::FailedPrecondition,
        &["\"search\"", "1 execution", "is_enabled = false"],
    );
    fails(
        client
            .delete_agent(pb::DeleteAgentRequest { id: rg.id.clone() })
            .await,
        Code::FailedPrecondition,
        &["\"rg\"", "1 execution", "is_active = false"],
    );
    // Nothing was deleted, and the suggested ways out work.
    get_agent(&mut client, &rg.id).await?;
    get_capability(&mut client, &used.id).await?;
    assert!(
        executions::Entity::find_by_id(execution.id)
            .one(db.conn())
            .await?
            .is_some()
    );
    let deactivated = update_agent(
        &mut client,
        pb::Agent {
            id: rg.id.clone(),
            is_active: Some(false),
            ..Default::default()
        },
        &["is_active"],
    )
    .await?
    .into_inner()
    .agent
    .unwrap();
    assert_eq!(deactivated.is_active, Some(false));
    let disabled = update_capability(
        &mut client,
        pb::Capability {
            id: used.id.clone(),
            is_enabled: Some(false),
            ..Default::default()
        },
        &["is_enabled"],
    )
    .await?
    .into_inner()
    .capability
    .unwrap();
    assert_eq!(disabled.is_enabled, Some(false));
    // A capability without runs goes; the agent still may not.
    client
        .delete_capability(pb::DeleteCapabilityRequest {
            id: unused.id.clone(),
        })
        .await?;
    fails(
        client
            .delete_agent(pb::DeleteAgentRequest { id: rg.id.clone() })
            .await,
        Code::FailedPrecondition,
        &["is_active"],
    );
    Ok(())
}

amon_tests::both_backends!(
    agent_lifecycle,
    agent_validation,
    agent_listing_and_workspaces,
    capability_lifecycle,
    capability_validation,
    deletes_refused_while_executions_exist,
);
