//! `agentmonitor.v1.TaskService`.

use std::pin::Pin;

use amon_proto::v1::{
    task_service_server::TaskService,
    AddDependencyRequest, AddDependencyResponse, CreateTaskRequest, CreateTaskResponse, DeleteTaskRequest, DeleteTaskResponse, GetBoardRequest, GetBoardResponse, GetTaskRequest, GetTaskResponse, ListDependenciesRequest, ListDependenciesResponse, ListTaskEventsRequest, ListTaskEventsResponse, ListTasksRequest, ListTasksResponse, MoveTaskRequest, MoveTaskResponse, RemoveDependencyRequest, RemoveDependencyResponse, UpdateTaskRequest, UpdateTaskResponse, WatchTaskEventsRequest, WatchTaskEventsResponse,
};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::not_built_yet;
use crate::app::AppState;

/// Handlers of `TaskService`.
#[derive(Clone)]
pub struct TaskApi {
    #[allow(dead_code)]
    state: AppState,
}

impl TaskApi {
    /// Handlers over the shared server state.
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// A boxed server stream of one response type.
pub type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl TaskService for TaskApi {
    type WatchTaskEventsStream = ResponseStream<WatchTaskEventsResponse>;

    async fn create_task(
        &self,
        _request: Request<CreateTaskRequest>,
    ) -> Result<Response<CreateTaskResponse>, Status> {
        Err(not_built_yet("TaskService.CreateTask"))
    }

    async fn get_task(
        &self,
        _request: Request<GetTaskRequest>,
    ) -> Result<Response<GetTaskResponse>, Status> {
        Err(not_built_yet("TaskService.GetTask"))
    }

    async fn list_tasks(
        &self,
        _request: Request<ListTasksRequest>,
    ) -> Result<Response<ListTasksResponse>, Status> {
        Err(not_built_yet("TaskService.ListTasks"))
    }

    async fn update_task(
        &self,
        _request: Request<UpdateTaskRequest>,
    ) -> Result<Response<UpdateTaskResponse>, Status> {
        Err(not_built_yet("TaskService.UpdateTask"))
    }

    async fn delete_task(
        &self,
        _request: Request<DeleteTaskRequest>,
    ) -> Result<Response<DeleteTaskResponse>, Status> {
        Err(not_built_yet("TaskService.DeleteTask"))
    }

    async fn move_task(
        &self,
        _request: Request<MoveTaskRequest>,
    ) -> Result<Response<MoveTaskResponse>, Status> {
        Err(not_built_yet("TaskService.MoveTask"))
    }

    async fn get_board(
        &self,
        _request: Request<GetBoardRequest>,
    ) -> Result<Response<GetBoardResponse>, Status> {
        Err(not_built_yet("TaskService.GetBoard"))
    }

    async fn add_dependency(
        &self,
        _request: Request<AddDependencyRequest>,
    ) -> Result<Response<AddDependencyResponse>, Status> {
        Err(not_built_yet("TaskService.AddDependency"))
    }

    async fn remove_dependency(
        &self,
        _request: Request<RemoveDependencyRequest>,
    ) -> Result<Response<RemoveDependencyResponse>, Status> {
        Err(not_built_yet("TaskService.RemoveDependency"))
    }

    async fn list_dependencies(
        &self,
        _request: Request<ListDependenciesRequest>,
    ) -> Result<Response<ListDependenciesResponse>, Status> {
        Err(not_built_yet("TaskService.ListDependencies"))
    }

    async fn list_task_events(
        &self,
        _request: Request<ListTaskEventsRequest>,
    ) -> Result<Response<ListTaskEventsResponse>, Status> {
        Err(not_built_yet("TaskService.ListTaskEvents"))
    }

    async fn watch_task_events(
        &self,
        _request: Request<WatchTaskEventsRequest>,
    ) -> Result<Response<Self::WatchTaskEventsStream>, Status> {
        Err(not_built_yet("TaskService.WatchTaskEvents"))
    }

}
