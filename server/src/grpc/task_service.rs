//! `agentmonitor.v1.TaskService`: parse → store → convert.

use amon_proto::v1::{
    AddDependencyRequest, AddDependencyResponse, BoardColumn, CreateTaskRequest,
    CreateTaskResponse, DeleteTaskRequest, DeleteTaskResponse, FinishTaskWorktreeRequest,
    FinishTaskWorktreeResponse, GetBoardRequest, GetBoardResponse, GetTaskRequest, GetTaskResponse,
    ListDependenciesRequest, ListDependenciesResponse, ListTaskEventsRequest,
    ListTaskEventsResponse, ListTasksRequest, ListTasksResponse, MoveTaskRequest, MoveTaskResponse,
    RemoveDependencyRequest, RemoveDependencyResponse, UpdateTaskRequest, UpdateTaskResponse,
    WatchTaskEventsRequest, WatchTaskEventsResponse, WorktreeDisposal, move_task_request,
    task_service_server::TaskService,
};
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::ResponseStream;
use super::convert::{
    REPLY_BUDGET,
    enums::WireEnum,
    fit_reply, page_reply, parse_id, parse_optional_id,
    task::{
        board_card, dependency_to_proto, event_to_proto, task_draft, task_patch, task_to_proto,
    },
};
use crate::{
    dispatch::Engine,
    entity::enums::TaskStatus,
    store::{
        Actor, Store, StoreError,
        board::Position,
        page::{EVENT_PAGES, PageRequest, RESOURCE_PAGES, after_id_token, parse_after_id_token},
        tasks::TaskFilter,
    },
};

/// Events fetched per query by a live watcher.
const WATCH_BATCH: u64 = 500;
/// Events buffered per watcher before it waits for its client.
const WATCH_BUFFER: usize = 256;

/// Handlers of `TaskService`.
#[derive(Clone)]
pub struct TaskApi {
    store: Store,
    /// For what only a task's worker can do (its git worktree).
    engine: Engine,
}

impl TaskApi {
    /// Handlers over the engine's store.
    pub fn new(engine: Engine) -> Self {
        Self {
            store: engine.store.clone(),
            engine,
        }
    }
}

/// Whether a disposal removes the branch; `None` when not said.
fn remove_branch(field: &str, disposal: i32) -> Result<Option<bool>, StoreError> {
    match WorktreeDisposal::try_from(disposal) {
        Ok(WorktreeDisposal::Unspecified) => Ok(None),
        Ok(WorktreeDisposal::KeepBranch) => Ok(Some(false)),
        Ok(WorktreeDisposal::RemoveBranch) => Ok(Some(true)),
        Err(_) => Err(StoreError::invalid(
            field,
            format!("{disposal} is not a valid WorktreeDisposal"),
        )),
    }
}

#[tonic::async_trait]
impl TaskService for TaskApi {
    type WatchTaskEventsStream = ResponseStream<WatchTaskEventsResponse>;

    async fn create_task(
        &self,
        request: Request<CreateTaskRequest>,
    ) -> Result<Response<CreateTaskResponse>, Status> {
        let task = request
            .into_inner()
            .task
            .ok_or_else(|| StoreError::invalid("task", "is required"))?;
        let created = self
            .store
            .tasks()
            .create(task_draft(&task)?, Actor::user())
            .await?;
        Ok(Response::new(CreateTaskResponse {
            task: Some(task_to_proto(&created)),
        }))
    }

    async fn get_task(
        &self,
        request: Request<GetTaskRequest>,
    ) -> Result<Response<GetTaskResponse>, Status> {
        let id = parse_id("id", &request.into_inner().id)?;
        let task = self.store.tasks().get(id).await?;
        Ok(Response::new(GetTaskResponse {
            task: Some(task_to_proto(&task)),
        }))
    }

    async fn list_tasks(
        &self,
        request: Request<ListTasksRequest>,
    ) -> Result<Response<ListTasksResponse>, Status> {
        let request = request.into_inner();
        let page = PageRequest::parse(request.page_size, &request.page_token, RESOURCE_PAGES)?;
        let filter = TaskFilter {
            status: TaskStatus::from_proto("status", request.status)?,
            assignee_agent_id: parse_optional_id("assignee_agent_id", &request.assignee_agent_id)?,
            parent_task_id: parse_optional_id("parent_task_id", &request.parent_task_id)?,
            text: None,
        };
        let (rows, next_page_token) = self.store.tasks().list(filter, page).await?;
        let (tasks, next_page_token) = page_reply(
            rows.iter().map(task_to_proto).collect(),
            page,
            next_page_token,
        );
        Ok(Response::new(ListTasksResponse {
            tasks,
            next_page_token,
        }))
    }

    async fn update_task(
        &self,
        request: Request<UpdateTaskRequest>,
    ) -> Result<Response<UpdateTaskResponse>, Status> {
        let request = request.into_inner();
        let (id, patch) = task_patch(request.task.as_ref(), &request.update_mask)?;
        let updated = self.store.tasks().update(id, patch, Actor::user()).await?;
        Ok(Response::new(UpdateTaskResponse {
            task: Some(task_to_proto(&updated)),
        }))
    }

    async fn delete_task(
        &self,
        request: Request<DeleteTaskRequest>,
    ) -> Result<Response<DeleteTaskResponse>, Status> {
        let request = request.into_inner();
        let id = parse_id("id", &request.id)?;
        if let Some(remove_branch) = remove_branch("worktree", request.worktree)? {
            // First, so a worktree that cannot go keeps its task.
            self.engine
                .finish_task_worktree(id, remove_branch, request.force_worktree)
                .await?;
        }
        self.store.tasks().delete(id, Actor::user()).await?;
        Ok(Response::new(DeleteTaskResponse {}))
    }

    async fn finish_task_worktree(
        &self,
        request: Request<FinishTaskWorktreeRequest>,
    ) -> Result<Response<FinishTaskWorktreeResponse>, Status> {
        let request = request.into_inner();
        let id = parse_id("task_id", &request.task_id)?;
        let remove_branch = remove_branch("disposal", request.disposal)?.ok_or_else(|| {
            StoreError::invalid("disposal", "is required: KEEP_BRANCH or REMOVE_BRANCH")
        })?;
        let finished = self
            .engine
            .finish_task_worktree(id, remove_branch, request.force)
            .await?
            .ok_or_else(|| {
                StoreError::FailedPrecondition(format!(
                    "task {id} has no worktree: no run of it recorded one"
                ))
            })?;
        Ok(Response::new(FinishTaskWorktreeResponse {
            worktree_removed: finished.worktree_removed,
            branch_removed: finished.branch_removed,
            branch: finished.branch,
        }))
    }

    async fn move_task(
        &self,
        request: Request<MoveTaskRequest>,
    ) -> Result<Response<MoveTaskResponse>, Status> {
        let request = request.into_inner();
        let id = parse_id("id", &request.id)?;
        let status = TaskStatus::from_proto("status", request.status)?;
        let position = match &request.position {
            None => Position::Top,
            Some(move_task_request::Position::AfterTaskId(after)) => {
                Position::After(parse_id("after_task_id", after)?)
            }
            Some(move_task_request::Position::BeforeTaskId(before)) => {
                Position::Before(parse_id("before_task_id", before)?)
            }
        };
        if let Some(remove_branch) = remove_branch("worktree", request.worktree)? {
            if status != Some(TaskStatus::Cancelled) {
                return Err(StoreError::invalid(
                    "worktree",
                    "is only for a move to TASK_STATUS_CANCELLED",
                )
                .into());
            }
            // First, so a worktree that cannot go keeps its task where it is.
            self.engine
                .finish_task_worktree(id, remove_branch, request.force_worktree)
                .await?;
        }
        let moved = self
            .store
            .tasks()
            .move_to(id, status, position, Actor::user())
            .await?;
        Ok(Response::new(MoveTaskResponse {
            task: Some(task_to_proto(&moved)),
        }))
    }

    async fn get_board(
        &self,
        _request: Request<GetBoardRequest>,
    ) -> Result<Response<GetBoardResponse>, Status> {
        // Read first: every event up to it is in the board read after, so a
        // watcher starting after it misses nothing (events commit in id
        // order, under the event-order lock).
        let last_event_id = self.store.events().newest_id().await?;
        let columns = self.store.tasks().board().await?;
        let mut budget = REPLY_BUDGET;
        let columns = columns
            .into_iter()
            .map(|(status, tasks)| {
                let mut cards: Vec<_> = tasks.iter().map(board_card).collect();
                let truncated = fit_reply(&mut cards, budget);
                let used: usize = cards.iter().map(|card| card.encoded_len() + 8).sum();
                budget = budget.saturating_sub(used);
                BoardColumn {
                    status: status.to_proto(),
                    tasks: cards,
                    truncated,
                }
            })
            .collect();
        Ok(Response::new(GetBoardResponse {
            columns,
            last_event_id,
        }))
    }

    async fn add_dependency(
        &self,
        request: Request<AddDependencyRequest>,
    ) -> Result<Response<AddDependencyResponse>, Status> {
        let request = request.into_inner();
        let task_id = parse_id("task_id", &request.task_id)?;
        let depends_on = parse_id("depends_on_task_id", &request.depends_on_task_id)?;
        let edge = self
            .store
            .dependencies()
            .add(task_id, depends_on, Actor::user())
            .await?;
        Ok(Response::new(AddDependencyResponse {
            dependency: Some(dependency_to_proto(&edge)),
        }))
    }

    async fn remove_dependency(
        &self,
        request: Request<RemoveDependencyRequest>,
    ) -> Result<Response<RemoveDependencyResponse>, Status> {
        let request = request.into_inner();
        let task_id = parse_id("task_id", &request.task_id)?;
        let depends_on = parse_id("depends_on_task_id", &request.depends_on_task_id)?;
        self.store
            .dependencies()
            .remove(task_id, depends_on, Actor::user())
            .await?;
        Ok(Response::new(RemoveDependencyResponse {}))
    }

    async fn list_dependencies(
        &self,
        request: Request<ListDependenciesRequest>,
    ) -> Result<Response<ListDependenciesResponse>, Status> {
        let task_id = parse_id("task_id", &request.into_inner().task_id)?;
        let edges = self.store.dependencies().list(task_id).await?;
        Ok(Response::new(ListDependenciesResponse {
            dependencies: edges.dependencies.iter().map(dependency_to_proto).collect(),
            dependents: edges.dependents.iter().map(dependency_to_proto).collect(),
        }))
    }

    async fn list_task_events(
        &self,
        request: Request<ListTaskEventsRequest>,
    ) -> Result<Response<ListTaskEventsResponse>, Status> {
        let request = request.into_inner();
        let limit = PageRequest::parse(request.page_size, "", EVENT_PAGES)?.limit;
        let after_id = parse_after_id_token(&request.page_token)?;
        let events = self.store.events();
        let filter = events
            .filter(parse_optional_id("task_id", &request.task_id)?)
            .await?;
        let (rows, next_page_token) = events.list(filter, after_id, limit).await?;
        let mut events: Vec<_> = rows.iter().map(event_to_proto).collect();
        let next_page_token = if fit_reply(&mut events, REPLY_BUDGET) {
            events
                .last()
                .map(|event| after_id_token(event.id))
                .unwrap_or_default()
        } else {
            next_page_token
        };
        Ok(Response::new(ListTaskEventsResponse {
            events,
            next_page_token,
        }))
    }

    async fn watch_task_events(
        &self,
        request: Request<WatchTaskEventsRequest>,
    ) -> Result<Response<Self::WatchTaskEventsStream>, Status> {
        let request = request.into_inner();
        if request.after_event_id < 0 {
            return Err(StoreError::invalid("after_event_id", "must not be negative").into());
        }
        let filter = self
            .store
            .events()
            .filter(parse_optional_id("task_id", &request.task_id)?)
            .await?;
        let store = self.store.clone();
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        // Subscribe before the first read, so no commit between the two is missed.
        let mut committed = store.event_hub().subscribe();
        tokio::spawn(async move {
            let mut last_sent = request.after_event_id;
            loop {
                let batch = match store
                    .events()
                    .next_for_watcher(filter, last_sent, WATCH_BATCH)
                    .await
                {
                    Ok(batch) => batch,
                    Err(err) => {
                        let _ = tx.send(Err(err.into())).await;
                        return;
                    }
                };
                let full = batch.len() as u64 >= WATCH_BATCH;
                for event in &batch {
                    let response = WatchTaskEventsResponse {
                        event: Some(event_to_proto(event)),
                    };
                    if tx.send(Ok(response)).await.is_err() {
                        return; // the client is gone
                    }
                    last_sent = event.id;
                }
                if full {
                    continue; // more backlog: keep reading before waiting
                }
                tokio::select! {
                    changed = committed.changed() => if changed.is_err() { return },
                    _ = tx.closed() => return,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
