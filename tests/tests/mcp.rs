//! The MCP server at `/mcp`, through a real MCP client (rmcp's, over
//! streamable HTTP) against a real server on each backend: the tools, every
//! tool's bad input answered as a tool error, the token check in front of
//! them, and the same port serving gRPC and MCP over TLS.

use std::{collections::BTreeSet, time::Duration};

use amon_proto::v1::{ActorType, Capability, ListTaskEventsRequest, ListTasksRequest, TaskStatus};
use amon_tests::{
    api::{Api, object, strings},
    both_backends,
    db::TestDb,
    mcp::{Client, connect, ok, refused},
    server::TestServer,
    worker::TestWorker,
};
use anyhow::{Context, Result, ensure};
use rmcp::{
    ServiceExt,
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};

const CLIENT_TOKEN: &str = "client-secret";
const WORKER_TOKEN: &str = "worker-secret";

/// Every tool, by name.
const TOOLS: [&str; 14] = [
    "add_comment",
    "add_dependency",
    "create_task",
    "get_context",
    "get_execution",
    "get_execution_diff",
    "get_task",
    "list_agents",
    "list_capabilities",
    "list_tasks",
    "move_task",
    "read_log",
    "run_capability",
    "update_task",
];

fn id(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}

/// A server without tokens (loopback only: /mcp is open to people's
/// clients, as the API is) and a worker of its own.
async fn start(db: &TestDb) -> (TestServer, Api, TestWorker) {
    let server = TestServer::start_with_args(Some(db.url()), &["--no-local-worker"]).await;
    let api = Api::new(server.channel().await);
    let worker = TestWorker::start(
        &server,
        &format!("mcp-{}", uuid::Uuid::new_v4().simple()),
        2,
        &[],
    );
    (server, api, worker)
}

async fn tools_end_to_end(db: TestDb) -> Result<()> {
    let (server, mut api, _worker) = start(&db).await;
    let url = format!("{}/mcp", server.url());
    let mcp = connect(&url, None).await?;

    // Initialize told who we talk to; every tool is listed with a schema.
    let info = mcp.peer_info().expect("server info");
    assert_eq!(
        info.server_info.as_ref().map(|i| i.name.as_str()),
        Some("agent-monitor")
    );
    assert!(
        info.instructions
            .as_deref()
            .unwrap_or("")
            .contains("get_context")
    );
    let tools = mcp.list_all_tools().await?;
    let names: BTreeSet<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names, BTreeSet::from(TOOLS));
    for tool in &tools {
        ensure!(
            tool.description.as_deref().unwrap_or("").len() > 80,
            "{} needs a description a model can act on",
            tool.name
        );
        assert_eq!(tool.input_schema.get("type"), Some(&json!("object")));
    }
    let create = tools.iter().find(|t| t.name == "create_task").unwrap();
    assert_eq!(create.input_schema["required"], json!(["title"]));

    // A person's client: the workspace in brief.
    let context = ok(&mcp, "get_context", json!({})).await;
    assert_eq!(context["caller"]["kind"], "person");
    assert_eq!(context["board"]["todo"]["count"], 0);

    // Tasks: create, read, find, change, move, depend, comment.
    let echo = api.tool("echo", "/bin/echo", &[]).await;
    let say = api
        .capability(Capability {
            agent_id: echo.id.clone(),
            key: "say".into(),
            label: "say a word".into(),
            command_tokens: strings(&["{{word}}"]),
            args_schema: Some(object(json!({
                "type": "object",
                "properties": {"word": {"type": "string"}},
                "required": ["word"],
            }))),
            ..Default::default()
        })
        .await;
    api.capability(Capability {
        agent_id: echo.id.clone(),
        key: "shout".into(),
        label: "needs a person".into(),
        command_tokens: strings(&["LOUD"]),
        requires_approval: true,
        danger_level: 2,
        ..Default::default()
    })
    .await;

    let parent = ok(
        &mcp,
        "create_task",
        json!({"title": "Ship the MCP server", "description": "All of it", "priority": 2,
               "due_at": "2030-01-31", "assignee": "echo"}),
    )
    .await["task"]
        .clone();
    assert_eq!(parent["priority"], 2);
    assert_eq!(parent["assignee_agent_id"], echo.id.as_str());
    assert!(
        parent["due_at"]
            .as_str()
            .unwrap()
            .starts_with("2030-01-31T00:00:00")
    );
    assert_eq!(
        parent["parent_task_id"],
        Value::Null,
        "a person's task has no default parent"
    );
    let child = ok(
        &mcp,
        "create_task",
        json!({"title": "Write the tests", "parent_task_id": id(&parent)}),
    )
    .await["task"]
        .clone();
    let other = ok(&mcp, "create_task", json!({"title": "Unrelated chore"})).await["task"].clone();

    let got = ok(&mcp, "get_task", json!({"task_id": id(&parent)})).await;
    assert_eq!(got["task"]["description"], "All of it");
    assert_eq!(got["subtasks"][0]["id"], id(&child).as_str());

    let found = ok(&mcp, "list_tasks", json!({"text": "SHIP THE"})).await;
    assert_eq!(found["tasks"].as_array().unwrap().len(), 1, "{found}");
    let found = ok(&mcp, "list_tasks", json!({"parent_task_id": id(&parent)})).await;
    assert_eq!(found["tasks"][0]["id"], id(&child).as_str());
    let found = ok(&mcp, "list_tasks", json!({"assignee": echo.id})).await;
    assert_eq!(found["tasks"][0]["id"], id(&parent).as_str());
    let page = ok(&mcp, "list_tasks", json!({"status": "todo", "limit": 2})).await;
    assert_eq!(page["tasks"].as_array().unwrap().len(), 2);
    let rest = ok(
        &mcp,
        "list_tasks",
        json!({"status": "todo", "page_token": page["next_page_token"]}),
    )
    .await;
    assert_eq!(rest["tasks"][0]["id"], id(&other).as_str());
    assert_eq!(rest["next_page_token"], Value::Null);

    let updated = ok(
        &mcp,
        "update_task",
        json!({"task_id": id(&other), "title": "A chore", "description": null, "assignee": null,
               "priority": 5}),
    )
    .await;
    assert_eq!(updated["task"]["title"], "A chore");
    assert_eq!(updated["task"]["priority"], 5);
    let moved = ok(
        &mcp,
        "move_task",
        json!({"task_id": id(&other), "status": "blocked"}),
    )
    .await;
    assert_eq!(moved["task"]["status"], "blocked");
    let moved = ok(
        &mcp,
        "move_task",
        json!({"task_id": id(&child), "after_task_id": id(&parent)}),
    )
    .await;
    assert_eq!(moved["task"]["status"], "todo");
    ok(
        &mcp,
        "add_dependency",
        json!({"task_id": id(&parent), "depends_on_task_id": id(&child)}),
    )
    .await;
    refused(
        &mcp,
        "add_dependency",
        json!({"task_id": id(&child), "depends_on_task_id": id(&parent)}),
        &["cycle"],
    )
    .await;
    let comment = ok(
        &mcp,
        "add_comment",
        json!({"task_id": id(&parent), "text": "Looking good"}),
    )
    .await;
    assert_eq!(comment["event"]["event_type"], "comment");

    // The same trail as any client's: the comment is on it, by the person.
    let events = api
        .tasks
        .list_task_events(ListTaskEventsRequest {
            task_id: id(&parent),
            ..Default::default()
        })
        .await?
        .into_inner()
        .events;
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        ["created", "dependency_added", "comment"],
        "{events:?}"
    );
    assert_eq!(events[2].actor_type(), ActorType::User);
    let got = ok(&mcp, "get_task", json!({"task_id": id(&parent)})).await;
    assert_eq!(got["depends_on"][0]["id"], id(&child).as_str());

    // Agents and capabilities.
    let agents = ok(&mcp, "list_agents", json!({})).await;
    let listed = &agents["agents"][0];
    assert_eq!(listed["slug"], "echo");
    let refs: Vec<&str> = listed["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["ref"].as_str().unwrap())
        .collect();
    assert_eq!(refs, ["echo/say", "echo/shout"]);
    let capabilities = ok(&mcp, "list_capabilities", json!({"agent": "echo"})).await;
    assert_eq!(capabilities["capabilities"][0]["id"], say.id.as_str());
    let shout = &capabilities["capabilities"][1];
    assert_eq!(shout["requires_approval"], true);
    assert_eq!(shout["danger"], "dangerous");
    assert_eq!(
        capabilities["capabilities"][0]["args_schema"]["required"],
        json!(["word"])
    );

    // Start work, follow it, read its output. The dependency holds the
    // parent's runs, so run the child's.
    let run = ok(
        &mcp,
        "run_capability",
        json!({"task_id": id(&child), "capability": "echo/say", "args": {"word": "héllo"}}),
    )
    .await;
    assert_eq!(run["execution"]["status"], "queued");
    assert_eq!(run["waits_for_approval"], false);
    let execution_id = id(&run["execution"]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let finished = loop {
        let got = ok(&mcp, "get_execution", json!({"execution_id": execution_id})).await;
        if got["execution"]["status"] == "succeeded" {
            break got;
        }
        assert!(tokio::time::Instant::now() < deadline, "still {got}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(finished["capability"], "echo/say");
    assert_eq!(finished["execution"]["exit_code"], 0);
    let log = ok(&mcp, "read_log", json!({"execution_id": execution_id})).await;
    assert_eq!(log["text"], "héllo\n");
    assert_eq!(log["next_offset"], 7);
    assert_eq!(log["at_end"], true);
    // A slice that would end inside "é" stops before it; the next one starts there.
    let part = ok(
        &mcp,
        "read_log",
        json!({"execution_id": execution_id, "max_bytes": 2}),
    )
    .await;
    assert_eq!(part["text"], "h");
    assert_eq!(part["next_offset"], 1);
    let rest = ok(
        &mcp,
        "read_log",
        json!({"execution_id": execution_id, "offset": 1, "max_bytes": 2}),
    )
    .await;
    assert_eq!(rest["text"], "é");
    let tail = ok(
        &mcp,
        "read_log",
        json!({"execution_id": execution_id, "offset": -3}),
    )
    .await;
    assert_eq!(tail["text"], "lo\n");
    assert_eq!(tail["offset"], 4);

    // A capability needing approval is queued only when the caller says it
    // knows the run will wait; then it waits, as for any client.
    refused(
        &mcp,
        "run_capability",
        json!({"task_id": id(&child), "capability": "echo/shout"}),
        &["await_approval", "approval"],
    )
    .await;
    let waiting = ok(
        &mcp,
        "run_capability",
        json!({"task_id": id(&child), "capability": shout["id"], "await_approval": true}),
    )
    .await;
    assert_eq!(waiting["waits_for_approval"], true);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let still = ok(
        &mcp,
        "get_execution",
        json!({"execution_id": id(&waiting["execution"])}),
    )
    .await;
    assert_eq!(still["execution"]["status"], "queued", "not run unapproved");

    // The task's column followed its run, as for a run started over gRPC.
    let child_now = api
        .tasks
        .list_tasks(ListTasksRequest {
            parent_task_id: id(&parent),
            ..Default::default()
        })
        .await?
        .into_inner()
        .tasks;
    assert_eq!(child_now[0].status(), TaskStatus::Done);

    bad_inputs(&mcp, &id(&parent), &execution_id).await;
    mcp.cancel().await.ok();
    Ok(())
}

/// Every tool's mistakes: a tool error whose text names the field, never a
/// protocol error.
async fn bad_inputs(mcp: &Client, task: &str, execution: &str) {
    let nobody = uuid::Uuid::new_v4().to_string();
    // Missing fields.
    for (tool, field) in [
        ("get_task", "task_id"),
        ("create_task", "title"),
        ("update_task", "task_id"),
        ("move_task", "task_id"),
        ("add_dependency", "task_id"),
        ("add_comment", "text"),
        ("run_capability", "capability"),
        ("get_execution", "execution_id"),
        ("read_log", "execution_id"),
    ] {
        refused(mcp, tool, json!({}), &[field]).await;
    }
    // Wrong types.
    for (tool, arguments, field) in [
        ("list_tasks", json!({"limit": "ten"}), "limit"),
        ("list_tasks", json!({"status": "doing"}), "status"),
        ("get_task", json!({"task_id": 42}), "task_id"),
        (
            "create_task",
            json!({"title": "x", "priority": "high"}),
            "priority",
        ),
        (
            "update_task",
            json!({"task_id": task, "title": ["a"]}),
            "title",
        ),
        ("move_task", json!({"task_id": task, "status": 3}), "status"),
        (
            "add_dependency",
            json!({"task_id": task, "depends_on_task_id": true}),
            "depends_on_task_id",
        ),
        (
            "add_comment",
            json!({"task_id": task, "text": {"a": 1}}),
            "text",
        ),
        ("list_capabilities", json!({"agent": 7}), "agent"),
        (
            "run_capability",
            json!({"capability": "echo/say", "task_id": task, "args": "word=hi"}),
            "args",
        ),
        (
            "get_execution",
            json!({"execution_id": null}),
            "execution_id",
        ),
        (
            "read_log",
            json!({"execution_id": execution, "offset": "end"}),
            "offset",
        ),
        (
            "create_task",
            json!({"title": "x", "titel": "typo"}),
            "titel",
        ),
    ] {
        refused(mcp, tool, arguments, &[field]).await;
    }
    // Values the store refuses, named by their field.
    refused(
        mcp,
        "create_task",
        json!({"title": " "}),
        &["title", "required"],
    )
    .await;
    refused(
        mcp,
        "create_task",
        json!({"title": "x", "priority": 9}),
        &["priority"],
    )
    .await;
    refused(
        mcp,
        "create_task",
        json!({"title": "x", "due_at": "soon"}),
        &["due_at"],
    )
    .await;
    refused(
        mcp,
        "get_task",
        json!({"task_id": "not-an-id"}),
        &["task_id"],
    )
    .await;
    refused(
        mcp,
        "update_task",
        json!({"task_id": task}),
        &["nothing to change"],
    )
    .await;
    refused(
        mcp,
        "move_task",
        json!({"task_id": task, "after_task_id": task, "before_task_id": task}),
        &["before_task_id"],
    )
    .await;
    refused(
        mcp,
        "read_log",
        json!({"execution_id": execution, "max_bytes": 0}),
        &["max_bytes"],
    )
    .await;
    refused(
        mcp,
        "add_comment",
        json!({"text": "from nowhere"}),
        &["task_id", "required"],
    )
    .await;
    refused(
        mcp,
        "run_capability",
        json!({"task_id": task, "capability": "echo/say", "args": {}}),
        &["args", "word"],
    )
    .await;
    refused(
        mcp,
        "run_capability",
        json!({"task_id": task, "capability": "say"}),
        &["capability"],
    )
    .await;
    // Unknown ids.
    for (tool, arguments, words) in [
        (
            "get_task",
            json!({"task_id": nobody}),
            vec!["not found", nobody.as_str()],
        ),
        (
            "update_task",
            json!({"task_id": nobody, "title": "x"}),
            vec!["not found"],
        ),
        ("move_task", json!({"task_id": nobody}), vec!["not found"]),
        (
            "create_task",
            json!({"title": "x", "parent_task_id": nobody}),
            vec!["parent_task_id"],
        ),
        (
            "create_task",
            json!({"title": "x", "assignee": "nobody"}),
            vec!["assignee"],
        ),
        (
            "add_dependency",
            json!({"task_id": task, "depends_on_task_id": nobody}),
            vec!["not found"],
        ),
        (
            "add_comment",
            json!({"task_id": nobody, "text": "hi"}),
            vec!["task_id"],
        ),
        ("list_tasks", json!({"parent_task_id": nobody}), vec![]),
        (
            "list_capabilities",
            json!({"agent": "nobody"}),
            vec!["agent"],
        ),
        (
            "run_capability",
            json!({"task_id": nobody, "capability": "echo/say"}),
            vec!["task_id"],
        ),
        (
            "run_capability",
            json!({"task_id": task, "capability": "echo/nothing"}),
            vec!["capability"],
        ),
        (
            "run_capability",
            json!({"task_id": task, "capability": nobody}),
            vec!["capability"],
        ),
        (
            "get_execution",
            json!({"execution_id": nobody}),
            vec!["not found"],
        ),
        (
            "read_log",
            json!({"execution_id": nobody}),
            vec!["not found"],
        ),
    ] {
        if tool == "list_tasks" {
            // An unknown parent simply has no subtasks.
            let answer = ok(mcp, tool, arguments).await;
            assert_eq!(answer["tasks"], json!([]));
        } else {
            refused(mcp, tool, arguments, &words).await;
        }
    }
}

/// No token, a wrong token, the worker token: 401 before any tool runs;
/// the client token opens /mcp.
async fn refusals(db: TestDb) -> Result<()> {
    let server = TestServer::start_with_args(
        Some(db.url()),
        &[
            "--no-local-worker",
            "--client-token",
            CLIENT_TOKEN,
            "--worker-token",
            WORKER_TOKEN,
        ],
    )
    .await;
    let bearer = |mut request: tonic::Request<()>| {
        request.metadata_mut().insert(
            "authorization",
            tonic::metadata::MetadataValue::from_static("Bearer client-secret"),
        );
        Ok(request)
    };
    let mut tasks_api = amon_proto::v1::task_service_client::TaskServiceClient::with_interceptor(
        server.channel().await,
        bearer,
    );
    let url = format!("{}/mcp", server.url());
    let http = amon_tests::http::client();
    let create = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "create_task", "arguments": {"title": "should not exist"}}});
    for token in [
        None,
        Some("wrong"),
        Some(WORKER_TOKEN),
        Some("amon_run_0123"),
    ] {
        let mut request = http
            .post(&url)
            .header("accept", "application/json, text/event-stream")
            .json(&create);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        assert_eq!(response.status(), 401, "token {token:?}");
        assert!(response.headers().contains_key("www-authenticate"));
        let body = response.text().await?;
        if token == Some(WORKER_TOKEN) {
            assert!(body.contains("worker token"), "{body}");
        }
        assert!(connect(&url, token).await.is_err(), "token {token:?}");
    }
    let tasks = tasks_api
        .list_tasks(ListTasksRequest::default())
        .await?
        .into_inner()
        .tasks;
    assert!(tasks.is_empty(), "no tool ran: {tasks:?}");

    // The client token works, and what it does is the person's.
    let mcp = connect(&url, Some(CLIENT_TOKEN)).await?;
    let task = ok(&mcp, "create_task", json!({"title": "by a person"})).await;
    let events = tasks_api
        .list_task_events(ListTaskEventsRequest {
            task_id: id(&task["task"]),
            ..Default::default()
        })
        .await?
        .into_inner()
        .events;
    assert_eq!(events[0].actor_type(), ActorType::User);
    mcp.cancel().await.ok();

    // The rest of the port is unchanged: gRPC still wants the client token,
    // an unknown path is 404.
    let response = http.get(format!("{}/nothing", server.url())).send().await?;
    assert_eq!(response.status(), 404);
    Ok(())
}

/// With --tls-cert/--tls-key the one port serves gRPC (HTTP/2, chosen by
/// ALPN) and /mcp to a client that speaks only HTTP/1.1 over TLS.
#[tokio::test]
async fn tls_serves_grpc_and_mcp_on_one_port() -> Result<()> {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    let cert_pem = certified.cert.pem();
    let dir = tempfile::tempdir()?;
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, &cert_pem)?;
    std::fs::write(&key, certified.signing_key.serialize_pem())?;
    let server = TestServer::start_with_args(
        None,
        &[
            "--no-local-worker",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    )
    .await;
    let base = format!("https://localhost:{}", server.addr().port());

    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(&cert_pem))
        .domain_name("localhost");
    let channel = tonic::transport::Endpoint::from_shared(base.clone())?
        .tls_config(tls)?
        .connect()
        .await
        .context("gRPC over TLS")?;
    let status = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: "agentmonitor.v1.TaskService".into(),
        })
        .await?
        .into_inner()
        .status();
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );

    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone())?;
    let mut config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .http1_only()
        .build()?;
    let transport = StreamableHttpClientTransport::with_client(
        http,
        StreamableHttpClientTransportConfig::with_uri(format!("{base}/mcp")),
    );
    let mcp: Client = ().serve(transport).await.context("MCP over TLS, HTTP/1.1")?;
    assert_eq!(mcp.list_all_tools().await?.len(), TOOLS.len());
    let task = ok(&mcp, "create_task", json!({"title": "over TLS"})).await;
    assert_eq!(task["task"]["title"], "over TLS");
    mcp.cancel().await.ok();
    let status = server.shutdown().await;
    assert!(
        status.success(),
        "SIGTERM stops the TLS server cleanly: {status}"
    );
    Ok(())
}

both_backends!(tools_end_to_end, refusals);
