//! Callers that push: followers that never read, rows of hundreds of
//! kilobytes, concurrent moves, deletes under a running execution, page
//! tokens and offsets at the edge of the integers, templates built to
//! overflow a parser. Each case once broke the server (a crash, INTERNAL,
//! a reply too big to deliver, gigabytes of memory); on SQLite and
//! PostgreSQL, what a caller sees now.

use std::time::Duration;

use amon_proto::v1::{
    Agent, ApproveExecutionRequest, Capability, CreateAgentRequest, CreateCapabilityRequest,
    DeleteTaskRequest, ExecutionStatus, GetBoardRequest, GetTaskRequest, ListExecutionsRequest,
    ListTaskEventsRequest, ListTasksRequest, MoveTaskRequest, StreamLogsRequest, Task,
    TaskInputContext, TaskStatus, UpdateTaskRequest,
    execution_service_client::ExecutionServiceClient,
};
use amon_tests::{
    api::{Api, object, strings},
    both_backends,
    db::TestDb,
    fake_worker::FakeWorker,
    server::TestServer,
};
use anyhow::Result;
use base64::Engine;
use prost_types::FieldMask;
use serde_json::json;
use tonic::Code;

const WAIT: Duration = Duration::from_secs(20);
const SUCCEEDED: i32 = ExecutionStatus::Succeeded as i32;

async fn start(db: &TestDb) -> (TestServer, Api) {
    let server = TestServer::start_with_args(Some(db.url()), &["--no-local-worker"]).await;
    let api = Api::new(server.channel().await);
    (server, api)
}

async fn echo(api: &mut Api) -> Capability {
    let agent = api.tool("echo", "/bin/echo", &[]).await;
    api.command(&agent, "say", &["{{ word }}"]).await
}

/// Resident memory of a process, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .expect("VmRSS");
    kib * 1024
}

/// Followers that never read hold at most a little each: 40 of them on a
/// 10 MiB log took 16 MB each before (640 MB).
async fn followers_that_never_read(db: TestDb) -> Result<()> {
    let (server, mut api) = start(&db).await;
    let say = echo(&mut api).await;
    let task = api.titled("big log").await;
    let mut worker =
        FakeWorker::connect(server.channel().await, FakeWorker::register("w", 1)).await?;
    worker.grant(1).await;
    let run = api.run(&task, &say, json!({"word": "x"}), 0).await;
    let assign = worker.next_assign().await;
    worker.started(&assign, 1).await;
    let chunk = vec![b'z'; 256 * 1024];
    for index in 0..40 {
        worker
            .output(&assign, index * chunk.len() as i64, &chunk)
            .await;
    }
    let total = 40 * chunk.len() as i64;
    worker.finished(&assign, SUCCEEDED, Some(0), total).await;
    api.wait_for(&run.id, ExecutionStatus::Succeeded, WAIT)
        .await;

    let pid = server.pid().expect("pid");
    let before = rss(pid);
    let mut idle = Vec::new();
    for _ in 0..40 {
        // Each on its own connection, opened and never read.
        let mut client = ExecutionServiceClient::new(server.channel().await);
        let stream = client
            .stream_logs(StreamLogsRequest {
                execution_id: run.id.clone(),
                offset: 0,
                follow: true,
            })
            .await?
            .into_inner();
        idle.push((client, stream));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let grown = rss(pid).saturating_sub(before);
    assert!(
        grown < 150 << 20,
        "40 idle followers of a 10 MiB log took {} MB",
        grown >> 20
    );
    // A reader still gets every byte, from any offset, and past the end
    // nothing (an offset of 2^44 was INTERNAL).
    assert_eq!(api.log(&run.id).await.len() as i64, total);
    assert!(api.follow_log(&run.id, 1 << 44, false).await.is_empty());
    assert!(api.follow_log(&run.id, i64::MAX, true).await.is_empty());
    drop(idle);
    Ok(())
}

/// Lists of large rows page by bytes, the board stays under what a client
/// accepts, and a field past its cap is refused by name.
async fn large_rows(db: TestDb) -> Result<()> {
    let (_server, mut api) = start(&db).await;
    let description = "d".repeat(250 * 1024);
    let mut ids = Vec::new();
    for index in 0..20 {
        let task = api
            .task(Task {
                title: format!("large {index}"),
                description: Some(description.clone()),
                ..Default::default()
            })
            .await;
        ids.push(task.id);
    }
    // ListTasks: every task, over pages that each fit.
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = api
            .tasks
            .list_tasks(ListTasksRequest {
                page_size: 500,
                page_token: token.clone(),
                ..Default::default()
            })
            .await?
            .into_inner();
        pages += 1;
        seen.extend(page.tasks.into_iter().map(|t| t.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, ids, "every task once, in order");
    assert!(pages > 1, "5 MB of tasks take more than one reply");
    // The audit trail pages the same way.
    let mut events = 0;
    let mut token = String::new();
    loop {
        let page = api
            .tasks
            .list_task_events(ListTaskEventsRequest {
                page_size: 1000,
                page_token: token.clone(),
                ..Default::default()
            })
            .await?
            .into_inner();
        events += page.events.len();
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(events, 20);
    // The board: cards with a preview, the whole task from GetTask.
    let board = api.tasks.get_board(GetBoardRequest {}).await?.into_inner();
    let todo = &board.columns[0];
    assert_eq!(todo.tasks.len(), 20);
    assert!(!todo.truncated);
    assert_eq!(
        todo.tasks[0].description.as_ref().map(String::len),
        Some(1000)
    );
    let full = api
        .tasks
        .get_task(GetTaskRequest { id: ids[0].clone() })
        .await?
        .into_inner()
        .task
        .unwrap();
    assert_eq!(full.description.map(|d| d.len()), Some(250 * 1024));

    // Past the caps: refused by field.
    let refused = api
        .tasks
        .create_task(amon_proto::v1::CreateTaskRequest {
            task: Some(Task {
                title: "too big".into(),
                description: Some("d".repeat(1 << 20)),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().starts_with("task.description"),
        "{refused:?}"
    );
    let refused = api
        .agents
        .create_agent(CreateAgentRequest {
            agent: Some(Agent {
                name: "fat".into(),
                slug: "fat".into(),
                binary_path: "/bin/true".into(),
                base_args: vec!["a".repeat(1024); 3 * 1024],
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().starts_with("agent.base_args"),
        "{refused:?}"
    );
    // An error repeats at most a prefix of a bad value: a 1 MB id used to
    // make the reply too large to deliver.
    let refused = api
        .tasks
        .get_task(GetTaskRequest {
            id: "x".repeat(1 << 20),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().len() < 300,
        "{} bytes",
        refused.message().len()
    );
    Ok(())
}

/// Thirty concurrent moves to the top of one column leave thirty distinct
/// positions (PostgreSQL left 7).
async fn concurrent_moves(db: TestDb) -> Result<()> {
    let (_server, mut api) = start(&db).await;
    let mut ids = Vec::new();
    for index in 0..30 {
        ids.push(api.titled(&format!("card {index}")).await.id);
    }
    let moves = ids.iter().map(|id| {
        let mut tasks = api.tasks.clone();
        let id = id.clone();
        async move {
            tasks
                .move_task(MoveTaskRequest {
                    id,
                    status: TaskStatus::Blocked as i32,
                    position: None,
                    ..Default::default()
                })
                .await
        }
    });
    for moved in futures_util::future::join_all(moves).await {
        moved?;
    }
    let board = api.tasks.get_board(GetBoardRequest {}).await?.into_inner();
    let blocked = &board.columns[2];
    let mut orders: Vec<i32> = blocked.tasks.iter().map(|t| t.sort_order).collect();
    assert_eq!(orders.len(), 30);
    orders.sort();
    orders.dedup();
    assert_eq!(orders.len(), 30, "every card has a position of its own");
    Ok(())
}

/// A task with a running execution cannot be deleted from under it.
async fn deleting_a_running_task(db: TestDb) -> Result<()> {
    let (server, mut api) = start(&db).await;
    let say = echo(&mut api).await;
    let task = api.titled("busy").await;
    let mut worker =
        FakeWorker::connect(server.channel().await, FakeWorker::register("w", 1)).await?;
    worker.grant(1).await;
    let run = api.run(&task, &say, json!({"word": "x"}), 0).await;
    let assign = worker.next_assign().await;
    worker.started(&assign, 1).await;
    let refused = api
        .tasks
        .delete_task(DeleteTaskRequest {
            id: task.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("cancel"), "{refused:?}");
    worker.finished(&assign, SUCCEEDED, Some(0), 0).await;
    api.wait_for(&run.id, ExecutionStatus::Succeeded, WAIT)
        .await;
    api.tasks
        .delete_task(DeleteTaskRequest {
            id: task.id.clone(),
            ..Default::default()
        })
        .await?;
    Ok(())
}

/// Numbers and text at the edges: refused by name, never INTERNAL or a panic.
async fn edges_of_the_integers_and_text(db: TestDb) -> Result<()> {
    let (server, mut api) = start(&db).await;
    // A page token past i64::MAX panicked a handler (the client saw CANCELLED).
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("o:{}", u64::MAX));
    let refused = api
        .tasks
        .list_tasks(ListTasksRequest {
            page_token: token,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().starts_with("page_token"), "{refused:?}");
    // NUL in a filter was INTERNAL on PostgreSQL.
    let refused = api
        .executions
        .list_executions(ListExecutionsRequest {
            worker_id: "w\u{0}".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().starts_with("worker_id"), "{refused:?}");
    // A template built to overflow the parser's stack aborted the server.
    let agent = api.tool("tool", "/bin/echo", &[]).await;
    for template in [
        format!("{{{{ 1{} }}}}", " + 1".repeat(20_000)),
        format!("{{{{ {}1 }}}}", "not ".repeat(20_000)),
    ] {
        let refused = api
            .agents
            .create_capability(CreateCapabilityRequest {
                capability: Some(Capability {
                    agent_id: agent.id.clone(),
                    key: "deep".into(),
                    label: "deep".into(),
                    command_tokens: vec![template],
                    ..Default::default()
                }),
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    }
    // The server is still here.
    let health = tonic_health::pb::health_client::HealthClient::new(server.channel().await)
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await?;
    assert_eq!(health.into_inner().status, 1);
    Ok(())
}

/// What a task may set in its runs' environment, and what an approval
/// covers: a run whose task changed its environment after the approval
/// does not start.
async fn environment_and_approval(db: TestDb) -> Result<()> {
    let (server, mut api) = start(&db).await;
    let refused = api
        .tasks
        .create_task(amon_proto::v1::CreateTaskRequest {
            task: Some(Task {
                title: "inject".into(),
                input_context: Some(TaskInputContext {
                    env_overrides: [("LD_PRELOAD".to_string(), "/tmp/evil.so".to_string())].into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().contains("LD_PRELOAD"), "{refused:?}");
    let refused = api
        .agents
        .create_agent(CreateAgentRequest {
            agent: Some(Agent {
                name: "leaky".into(),
                slug: "leaky".into(),
                binary_path: "/usr/bin/env".into(),
                env_allowlist: strings(&["HOME", "AMON_WORKER_TOKEN"]),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("AMON_WORKER_TOKEN"),
        "{refused:?}"
    );

    let agent = api.tool("rm", "/bin/echo", &[]).await;
    let dangerous = api
        .capability(Capability {
            agent_id: agent.id.clone(),
            key: "wipe".into(),
            label: "wipe".into(),
            command_tokens: strings(&["wiped"]),
            requires_approval: true,
            args_schema: Some(object(json!({"type": "object"}))),
            ..Default::default()
        })
        .await;
    let task = api
        .task(Task {
            title: "approved".into(),
            input_context: Some(TaskInputContext {
                env_overrides: [("MODE".to_string(), "safe".to_string())].into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
    let run = api.run(&task, &dangerous, json!({}), 0).await;
    api.executions
        .approve_execution(ApproveExecutionRequest { id: run.id.clone() })
        .await?;
    api.tasks
        .update_task(UpdateTaskRequest {
            task: Some(Task {
                id: task.id.clone(),
                input_context: Some(TaskInputContext {
                    env_overrides: [("MODE".to_string(), "unsafe".to_string())].into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: strings(&["input_context"]),
            }),
        })
        .await?;
    let mut worker =
        FakeWorker::connect(server.channel().await, FakeWorker::register("w", 1)).await?;
    worker.grant(1).await;
    let failed = api.wait_for(&run.id, ExecutionStatus::Failed, WAIT).await;
    assert!(
        failed
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("after this run was approved"),
        "{failed:?}"
    );
    assert!(
        worker.try_recv(Duration::from_millis(300)).await.is_none(),
        "nothing assigned"
    );
    // Approved as it is, it runs.
    let again = api.run(&task, &dangerous, json!({}), 0).await;
    api.executions
        .approve_execution(ApproveExecutionRequest {
            id: again.id.clone(),
        })
        .await?;
    let assign = worker.next_assign().await;
    assert_eq!(assign.execution_id, again.id);
    assert_eq!(assign.env.get("MODE").map(String::as_str), Some("unsafe"));
    Ok(())
}

both_backends!(
    followers_that_never_read,
    large_rows,
    concurrent_moves,
    deleting_a_running_task,
    edges_of_the_integers_and_text,
    environment_and_approval
);
