//! TaskService end to end, through gRPC against a real server, on SQLite and
//! PostgreSQL: the board, moves and sort order, dependencies and the cycle
//! rule (also under concurrency), and the audit trail, listed and watched.

use std::{collections::HashSet, time::Duration};

use amon_proto::{
    prost_types::{FieldMask, Struct},
    v1::{
        AddDependencyRequest, CreateTaskRequest, DeleteTaskRequest, GetBoardRequest,
        GetTaskRequest, ListDependenciesRequest, ListTaskEventsRequest, ListTasksRequest,
        MoveTaskRequest, RemoveDependencyRequest, Task, TaskEvent, TaskInputContext, TaskStatus,
        UpdateTaskRequest, WatchTaskEventsRequest, move_task_request::Position,
        task_service_client::TaskServiceClient,
    },
};
use amon_tests::{both_backends, db::TestDb, server::TestServer};
use anyhow::{Context, Result, ensure};
use tokio_stream::StreamExt;
use tonic::{Code, transport::Channel};

type Client = TaskServiceClient<Channel>;

async fn start(db: &TestDb) -> (TestServer, Client) {
    let server = TestServer::start(db.url()).await;
    let client = TaskServiceClient::new(server.channel().await);
    (server, client)
}

async fn create(client: &mut Client, title: &str) -> Result<Task> {
    create_with(
        client,
        Task {
            title: title.into(),
            ..Default::default()
        },
    )
    .await
}

async fn create_with(client: &mut Client, task: Task) -> Result<Task> {
    Ok(client
        .create_task(CreateTaskRequest { task: Some(task) })
        .await?
        .into_inner()
        .task
        .context("created task")?)
}

fn assert_invalid(status: tonic::Status, code: Code, needle: &str) {
    assert_eq!(status.code(), code, "unexpected status: {status:?}");
    assert!(
        status.message().contains(needle),
        "message {:?} should mention {needle:?}",
        status.message()
    );
}

async fn column_titles(client: &mut Client, status: TaskStatus) -> Result<Vec<String>> {
    let board = client.get_board(GetBoardRequest {}).await?.into_inner();
    let column = board
        .columns
        .into_iter()
        .find(|c| c.status == status as i32)
        .context("column present")?;
    let orders: Vec<i32> = column.tasks.iter().map(|t| t.sort_order).collect();
    let mut sorted = orders.clone();
    sorted.sort();
    sorted.dedup();
    ensure!(
        orders == sorted,
        "column sort orders strictly increase: {orders:?}"
    );
    Ok(column.tasks.into_iter().map(|t| t.title).collect())
}

async fn move_to(
    client: &mut Client,
    task: &Task,
    status: TaskStatus,
    position: Option<Position>,
) -> Result<Task> {
    Ok(client
        .move_task(MoveTaskRequest {
            id: task.id.clone(),
            status: status as i32,
            position,
            ..Default::default()
        })
        .await?
        .into_inner()
        .task
        .context("moved task")?)
}

async fn events_of(client: &mut Client, task_id: &str) -> Result<Vec<TaskEvent>> {
    let mut events = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_task_events(ListTaskEventsRequest {
                page_size: 2,
                page_token,
                task_id: task_id.into(),
            })
            .await?
            .into_inner();
        events.extend(page.events);
        if page.next_page_token.is_empty() {
            return Ok(events);
        }
        page_token = page.next_page_token;
    }
}

async fn task_crud_and_validation(db: TestDb) -> Result<()> {
    let (_server, mut client) = start(&db).await;

    let parent = create(&mut client, "parent").await?;
    assert_eq!(parent.status, TaskStatus::Todo as i32);
    assert_eq!(
        parent.priority,
        Some(3),
        "the data model's default priority"
    );
    let child = create_with(
        &mut client,
        Task {
            title: "child".into(),
            priority: Some(1),
            parent_task_id: Some(parent.id.clone()),
            input_context: Some(TaskInputContext {
                working_dir: Some("/tmp".into()),
                env_overrides: [("RUST_LOG".to_string(), "debug".to_string())].into(),
                args: Some(Struct::default()),
                prompt_additions: Some("be brief".into()),
                isolation: amon_proto::v1::WorktreeIsolation::Worktree as i32,
                base_ref: Some("main".into()),
            }),
            ..Default::default()
        },
    )
    .await?;
    let fetched = client
        .get_task(GetTaskRequest {
            id: child.id.clone(),
        })
        .await?
        .into_inner()
        .task
        .context("task")?;
    assert_eq!(fetched.parent_task_id.as_deref(), Some(parent.id.as_str()));
    let context = fetched.input_context.context("input context")?;
    assert_eq!(context.working_dir.as_deref(), Some("/tmp"));
    assert_eq!(context.env_overrides["RUST_LOG"], "debug");
    assert_eq!(context.prompt_additions.as_deref(), Some("be brief"));

    // Bad input: each refused with the field named.
    for (task, needle) in [
        (
            Task {
                title: "  ".into(),
                ..Default::default()
            },
            "task.title",
        ),
        (
            Task {
                title: "x".into(),
                priority: Some(0),
                ..Default::default()
            },
            "task.priority",
        ),
        (
            Task {
                title: "x".into(),
                priority: Some(6),
                ..Default::default()
            },
            "task.priority",
        ),
        (
            Task {
                title: "x".into(),
                parent_task_id: Some("nope".into()),
                ..Default::default()
            },
            "task.parent_task_id",
        ),
        (
            Task {
                title: "x".into(),
                input_context: Some(TaskInputContext {
                    env_overrides: [("1BAD".to_string(), "v".to_string())].into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            "task.input_context.env_overrides",
        ),
        (
            Task {
                title: "x".into(),
                status: 42,
                ..Default::default()
            },
            "task.status",
        ),
    ] {
        let err = client
            .create_task(CreateTaskRequest { task: Some(task) })
            .await
            .expect_err("invalid task refused");
        assert_invalid(err, Code::InvalidArgument, needle);
    }
    let missing = uuid::Uuid::new_v4().to_string();
    let err = create_with(
        &mut client,
        Task {
            title: "x".into(),
            parent_task_id: Some(missing.clone()),
            ..Default::default()
        },
    )
    .await
    .expect_err("missing parent");
    let status = err.downcast::<tonic::Status>()?;
    assert_invalid(status, Code::NotFound, "task.parent_task_id");
    let err = create_with(
        &mut client,
        Task {
            title: "x".into(),
            assignee_agent_id: Some(missing.clone()),
            ..Default::default()
        },
    )
    .await
    .expect_err("missing assignee")
    .downcast::<tonic::Status>()?;
    assert_invalid(err, Code::NotFound, "task.assignee_agent_id");
    let err = client
        .get_task(GetTaskRequest { id: "42".into() })
        .await
        .unwrap_err();
    assert_invalid(err, Code::InvalidArgument, "id");
    let err = client
        .get_task(GetTaskRequest {
            id: missing.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // Update with a field mask: only the named fields change.
    let updated = client
        .update_task(UpdateTaskRequest {
            task: Some(Task {
                id: child.id.clone(),
                title: "child, renamed".into(),
                priority: Some(5),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["title".into()],
            }),
        })
        .await?
        .into_inner()
        .task
        .context("updated")?;
    assert_eq!(updated.title, "child, renamed");
    assert_eq!(updated.priority, Some(1), "priority not in the mask stays");
    for (mask, needle) in [
        (vec![], "update_mask"),
        (vec!["sort_order".to_string()], "sort_order"),
    ] {
        let err = client
            .update_task(UpdateTaskRequest {
                task: Some(Task {
                    id: child.id.clone(),
                    title: "t".into(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask { paths: mask }),
            })
            .await
            .unwrap_err();
        assert_invalid(err, Code::InvalidArgument, needle);
    }
    // A parent cycle is refused: parent -> child -> parent.
    let err = client
        .update_task(UpdateTaskRequest {
            task: Some(Task {
                id: parent.id.clone(),
                parent_task_id: Some(child.id.clone()),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["parent_task_id".into()],
            }),
        })
        .await
        .unwrap_err();
    assert_invalid(err, Code::FailedPrecondition, "parent cycle");

    // Filters and paging.
    for i in 0..5 {
        create(&mut client, &format!("bulk {i}")).await?;
    }
    let subtasks = client
        .list_tasks(ListTasksRequest {
            parent_task_id: parent.id.clone(),
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(subtasks.tasks.len(), 1);
    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_tasks(ListTasksRequest {
                page_size: 3,
                page_token,
                ..Default::default()
            })
            .await?
            .into_inner();
        seen.extend(page.tasks.into_iter().map(|t| t.id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(seen.len(), 7);
    assert_eq!(
        seen.iter().collect::<HashSet<_>>().len(),
        7,
        "no task twice across pages"
    );
    let err = client
        .list_tasks(ListTasksRequest {
            page_token: "bogus".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid(err, Code::InvalidArgument, "page_token");

    // Delete: the subtask loses its parent.
    client
        .delete_task(DeleteTaskRequest {
            id: parent.id.clone(),
            ..Default::default()
        })
        .await?;
    let orphan = client
        .get_task(GetTaskRequest {
            id: child.id.clone(),
        })
        .await?
        .into_inner()
        .task
        .context("child")?;
    assert_eq!(orphan.parent_task_id, None);
    let err = client
        .delete_task(DeleteTaskRequest {
            id: parent.id,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    Ok(())
}

async fn board_and_moves(db: TestDb) -> Result<()> {
    let (_server, mut client) = start(&db).await;
    let a = create(&mut client, "a").await?;
    let b = create(&mut client, "b").await?;
    let c = create(&mut client, "c").await?;
    assert_eq!(
        column_titles(&mut client, TaskStatus::Todo).await?,
        ["a", "b", "c"]
    );
    assert!(a.sort_order < b.sort_order && b.sort_order < c.sort_order);
    assert_eq!(b.sort_order - a.sort_order, 1000, "sparse gaps of 1000");

    move_to(&mut client, &c, TaskStatus::Todo, None).await?;
    assert_eq!(
        column_titles(&mut client, TaskStatus::Todo).await?,
        ["c", "a", "b"]
    );
    move_to(
        &mut client,
        &c,
        TaskStatus::Todo,
        Some(Position::AfterTaskId(a.id.clone())),
    )
    .await?;
    assert_eq!(
        column_titles(&mut client, TaskStatus::Todo).await?,
        ["a", "c", "b"]
    );
    move_to(
        &mut client,
        &b,
        TaskStatus::Todo,
        Some(Position::BeforeTaskId(a.id.clone())),
    )
    .await?;
    assert_eq!(
        column_titles(&mut client, TaskStatus::Todo).await?,
        ["b", "a", "c"]
    );

    // To another column, then back at a precise spot.
    let moved = move_to(&mut client, &a, TaskStatus::Done, None).await?;
    assert_eq!(moved.status, TaskStatus::Done as i32);
    assert_eq!(column_titles(&mut client, TaskStatus::Done).await?, ["a"]);
    assert_eq!(
        column_titles(&mut client, TaskStatus::Todo).await?,
        ["b", "c"]
    );

    // Wear the gap out between two neighbours: the column is renumbered in the
    // same transaction and the order stays right.
    create(&mut client, "x").await?;
    let mut expected = vec!["b".to_string()];
    let mut last_inserted = b.clone();
    for i in 0..15 {
        let card = create(&mut client, &format!("n{i}")).await?;
        move_to(
            &mut client,
            &card,
            TaskStatus::Todo,
            Some(Position::AfterTaskId(last_inserted.id.clone())),
        )
        .await?;
        expected.push(card.title.clone());
        last_inserted = card;
    }
    expected.extend(["c".to_string(), "x".to_string()]);
    assert_eq!(
        column_titles(&mut client, TaskStatus::Todo).await?,
        expected
    );

    // Neighbours must be in the target column, and not the task itself.
    let err = client
        .move_task(MoveTaskRequest {
            id: b.id.clone(),
            status: TaskStatus::Todo as i32,
            position: Some(Position::AfterTaskId(a.id.clone())),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid(err, Code::FailedPrecondition, "after_task_id");
    let err = client
        .move_task(MoveTaskRequest {
            id: b.id.clone(),
            status: TaskStatus::Todo as i32,
            position: Some(Position::BeforeTaskId(b.id.clone())),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid(err, Code::InvalidArgument, "before_task_id");

    // The board: five columns in order.
    let board = client.get_board(GetBoardRequest {}).await?.into_inner();
    let statuses: Vec<i32> = board.columns.iter().map(|c| c.status).collect();
    assert_eq!(
        statuses,
        [
            TaskStatus::Todo as i32,
            TaskStatus::InProgress as i32,
            TaskStatus::Blocked as i32,
            TaskStatus::Done as i32,
            TaskStatus::Cancelled as i32
        ]
    );
    Ok(())
}

async fn dependencies_and_cycles(db: TestDb) -> Result<()> {
    let (_server, mut client) = start(&db).await;
    let a = create(&mut client, "a").await?;
    let b = create(&mut client, "b").await?;
    let c = create(&mut client, "c").await?;
    let add = |task: &Task, on: &Task| AddDependencyRequest {
        task_id: task.id.clone(),
        depends_on_task_id: on.id.clone(),
    };
    client.add_dependency(add(&a, &b)).await?;
    client.add_dependency(add(&b, &c)).await?;

    let err = client.add_dependency(add(&a, &a)).await.unwrap_err();
    assert_invalid(err, Code::InvalidArgument, "depends_on_task_id");
    let err = client.add_dependency(add(&a, &b)).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    let err = client.add_dependency(add(&c, &a)).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let path = format!("{} -> {} -> {} -> {}", c.id, a.id, b.id, c.id);
    assert!(
        err.message().contains(&path),
        "the cycle's path is named: {}",
        err.message()
    );
    let err = client
        .add_dependency(AddDependencyRequest {
            task_id: a.id.clone(),
            depends_on_task_id: uuid::Uuid::new_v4().to_string(),
        })
        .await
        .unwrap_err();
    assert_invalid(err, Code::NotFound, "depends_on_task_id");

    let listed = client
        .list_dependencies(ListDependenciesRequest {
            task_id: b.id.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(listed.dependencies.len(), 1);
    assert_eq!(listed.dependencies[0].depends_on_task_id, c.id);
    assert_eq!(listed.dependents.len(), 1);
    assert_eq!(listed.dependents[0].task_id, a.id);

    client
        .remove_dependency(RemoveDependencyRequest {
            task_id: b.id.clone(),
            depends_on_task_id: c.id.clone(),
        })
        .await?;
    let err = client
        .remove_dependency(RemoveDependencyRequest {
            task_id: b.id.clone(),
            depends_on_task_id: c.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    // With b -> c gone, c -> a no longer closes a cycle.
    client.add_dependency(add(&c, &a)).await?;
    Ok(())
}

/// Two calls that together would close a cycle cannot both succeed: for many
/// loops (pairs a -> b, b -> a and triangles a -> b -> c -> a), every edge is
/// added at the same instant (a barrier releases them together); exactly one
/// edge of each loop must be refused.
async fn concurrent_dependencies_never_close_a_cycle(db: TestDb) -> Result<()> {
    let (server, mut client) = start(&db).await;
    const LOOPS_PER_SIZE: usize = 8;
    let mut rings = Vec::new();
    for size in [2usize, 3] {
        for _ in 0..LOOPS_PER_SIZE {
            let mut ring = Vec::new();
            for i in 0..size {
                ring.push(create(&mut client, &format!("ring {i}")).await?.id);
            }
            rings.push(ring);
        }
    }
    let edges: usize = rings.iter().map(Vec::len).sum();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(edges));
    let mut loops = Vec::new();
    for ring in &rings {
        let mut outcomes = Vec::new();
        for i in 0..ring.len() {
            let request = AddDependencyRequest {
                task_id: ring[i].clone(),
                depends_on_task_id: ring[(i + 1) % ring.len()].clone(),
            };
            let mut client = TaskServiceClient::new(server.channel().await);
            let barrier = barrier.clone();
            outcomes.push(tokio::spawn(async move {
                barrier.wait().await;
                client
                    .add_dependency(request)
                    .await
                    .map(|_| ())
                    .map_err(|s| s.code())
            }));
        }
        loops.push(outcomes);
    }
    for outcomes in loops {
        let mut results = Vec::new();
        for outcome in outcomes {
            results.push(outcome.await?);
        }
        let refused = results.iter().filter(|r| r.is_err()).count();
        assert_eq!(
            refused, 1,
            "exactly one edge of the loop is refused: {results:?}"
        );
        assert!(
            results
                .iter()
                .all(|r| matches!(r, Ok(()) | Err(Code::FailedPrecondition)))
        );
    }
    Ok(())
}

async fn audit_trail(db: TestDb) -> Result<()> {
    let (_server, mut client) = start(&db).await;
    let other = create(&mut client, "other").await?;
    let task = create(&mut client, "audited").await?;
    client
        .update_task(UpdateTaskRequest {
            task: Some(Task {
                id: task.id.clone(),
                title: "audited, renamed".into(),
                status: TaskStatus::Blocked as i32,
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["title".into(), "status".into()],
            }),
        })
        .await?;
    move_to(&mut client, &task, TaskStatus::Todo, None).await?;
    client
        .add_dependency(AddDependencyRequest {
            task_id: task.id.clone(),
            depends_on_task_id: other.id.clone(),
        })
        .await?;
    client
        .remove_dependency(RemoveDependencyRequest {
            task_id: task.id.clone(),
            depends_on_task_id: other.id.clone(),
        })
        .await?;

    let events = events_of(&mut client, &task.id).await?;
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "created",
            "updated",
            "status_changed",
            "moved",
            "status_changed",
            "dependency_added",
            "dependency_removed"
        ]
    );
    let updated =
        amon_server::grpc::convert::struct_to_json(events[1].payload.as_ref().context("payload")?);
    assert_eq!(updated["changes"]["title"]["before"], "audited");
    assert_eq!(updated["changes"]["title"]["after"], "audited, renamed");
    let status =
        amon_server::grpc::convert::struct_to_json(events[2].payload.as_ref().context("payload")?);
    assert_eq!(status["from"], "todo");
    assert_eq!(status["to"], "blocked");
    assert!(
        events
            .iter()
            .all(|e| e.actor_type == amon_proto::v1::ActorType::User as i32)
    );
    let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");
    Ok(())
}

/// A watcher started mid-stream gets the backlog after its cursor, then the
/// live events, each exactly once and in order, while writers run
/// concurrently; it also hears of a deleted task.
async fn watch_has_no_gap_and_no_duplicate(db: TestDb) -> Result<()> {
    let (server, mut client) = start(&db).await;
    let first = create(&mut client, "before the watch").await?;
    let backlog = events_of(&mut client, "").await?;
    let cursor = backlog.last().context("one event")?.id;
    create(&mut client, "in the backlog").await?;

    let mut stream = client
        .watch_task_events(WatchTaskEventsRequest {
            task_id: String::new(),
            after_event_id: cursor,
        })
        .await?
        .into_inner();

    const WRITERS: usize = 4;
    const TASKS_EACH: usize = 10;
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let channel = server.channel().await;
        writers.push(tokio::spawn(async move {
            let mut client = TaskServiceClient::new(channel);
            for i in 0..TASKS_EACH {
                create(&mut client, &format!("w{w} t{i}"))
                    .await
                    .expect("create");
            }
        }));
    }
    for writer in writers {
        writer.await?;
    }
    client
        .delete_task(DeleteTaskRequest {
            id: first.id.clone(),
            ..Default::default()
        })
        .await?;

    let expected = 1 + WRITERS * TASKS_EACH + 1; // backlog + created + deleted
    let mut received = Vec::new();
    while received.len() < expected {
        let event = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .context("watch stalled")?
            .context("watch ended")??
            .event
            .context("event")?;
        received.push(event);
    }
    let ids: Vec<i64> = received.iter().map(|e| e.id).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "in order, no duplicate: {ids:?}"
    );
    assert!(ids[0] > cursor, "starts after the cursor");
    assert_eq!(received[0].event_type, "created");
    let last = received.last().context("last")?;
    assert_eq!(
        (last.event_type.as_str(), last.task_id.as_str()),
        ("deleted", first.id.as_str())
    );
    // And it is exactly what the trail holds (the deleted task's rows are gone).
    let trail: Vec<i64> = events_of(&mut client, "")
        .await?
        .into_iter()
        .map(|e| e.id)
        .filter(|id| *id > cursor)
        .collect();
    assert_eq!(trail, ids[..ids.len() - 1]);
    // Nothing more arrives.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), stream.next())
            .await
            .is_err()
    );
    Ok(())
}

/// GetBoard says where the audit trail stood when it read the board: a
/// watcher starting there hears the next change and replays none of the
/// older trail (the web board opens its watch this way).
async fn a_watch_from_the_board_replays_nothing(db: TestDb) -> Result<()> {
    let (_server, mut client) = start(&db).await;
    for title in ["one", "two", "three"] {
        create(&mut client, title).await?;
    }
    let board = client.get_board(GetBoardRequest {}).await?.into_inner();
    let trail = events_of(&mut client, "").await?;
    let newest = trail.last().context("events were written")?.id;
    assert_eq!(
        board.last_event_id, newest,
        "the board names the newest event"
    );
    let on_board: usize = board.columns.iter().map(|c| c.tasks.len()).sum();
    assert_eq!(on_board, 3);

    let mut stream = client
        .watch_task_events(WatchTaskEventsRequest {
            task_id: String::new(),
            after_event_id: board.last_event_id,
        })
        .await?
        .into_inner();
    let after = create(&mut client, "after the board").await?;
    let event = tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .context("watch stalled")?
        .context("watch ended")??
        .event
        .context("event")?;
    assert_eq!(
        (event.event_type.as_str(), event.task_id.as_str()),
        ("created", after.id.as_str()),
        "the first event watched is the change after the board, none before it"
    );
    assert!(event.id > board.last_event_id);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), stream.next())
            .await
            .is_err(),
        "nothing else arrives"
    );
    Ok(())
}

both_backends!(
    task_crud_and_validation,
    board_and_moves,
    dependencies_and_cycles,
    concurrent_dependencies_never_close_a_cycle,
    audit_trail,
    watch_has_no_gap_and_no_duplicate,
    a_watch_from_the_board_replays_nothing
);
