//! The `amon` binary against an in-process fake server: argument handling,
//! id resolution, `--json` output, auth metadata, error messages, exit
//! codes and `amon run`'s log streaming, without the real server.
//!
//! The fake answers from fixed data; `WorkerService` is not registered at
//! all, so its calls get UNIMPLEMENTED like a server that lacks them.

use std::{
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Mutex},
};

use amon_proto::v1::{
    CreatePresetAgentRequest, CreatePresetAgentResponse, ListAgentPresetsRequest,
    ListAgentPresetsResponse,
    agent_service_server::{AgentService, AgentServiceServer},
    execution_service_server::{ExecutionService, ExecutionServiceServer},
    task_service_server::{TaskService, TaskServiceServer},
    *,
};
use serde_json::Value;
use tokio::io::AsyncBufReadExt;
use tokio_stream::{Stream, StreamExt, wrappers::TcpListenerStream};
use tonic::{Request, Response, Status};

const TASK_FAILS: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const TASK_SUCCEEDS: &str = "bbbbbbbb-0000-4000-8000-000000000002";
const TASK_TIMES_OUT: &str = "abcdef01-0000-4000-8000-000000000003";
const AGENT_GIT: &str = "99999999-0000-4000-8000-00000000000a";
const CAP_LOG: &str = "cccccccc-0000-4000-8000-00000000000c";

type Stream_<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// What the fake saw.
#[derive(Default)]
struct Seen {
    authorization: Vec<Option<String>>,
    created_tasks: Vec<Task>,
    executions: Vec<CreateExecutionRequest>,
    update_masks: Vec<Vec<String>>,
    presets: Vec<CreatePresetAgentRequest>,
    discoveries: Vec<DiscoverAgentsRequest>,
}

#[derive(Clone, Default)]
struct Fake {
    seen: Arc<Mutex<Seen>>,
}

impl Fake {
    fn note<T>(&self, request: &Request<T>) {
        let auth = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        self.seen.lock().unwrap().authorization.push(auth);
    }
}

fn task(id: &str, title: &str, status: TaskStatus, priority: i32) -> Task {
    Task {
        id: id.to_string(),
        title: title.to_string(),
        status: status as i32,
        priority: Some(priority),
        ..Default::default()
    }
}

fn all_tasks() -> Vec<Task> {
    vec![
        task(TASK_FAILS, "Fails with 3", TaskStatus::Todo, 1),
        task(TASK_SUCCEEDS, "Succeeds", TaskStatus::Todo, 2),
        task(TASK_TIMES_OUT, "Times out", TaskStatus::InProgress, 3),
    ]
}

fn unimplemented<T>(what: &str) -> Result<T, Status> {
    Err(Status::unimplemented(format!("{what} is not in the fake")))
}

#[tonic::async_trait]
impl TaskService for Fake {
    type WatchTaskEventsStream = Stream_<WatchTaskEventsResponse>;

    async fn create_task(
        &self,
        request: Request<CreateTaskRequest>,
    ) -> Result<Response<CreateTaskResponse>, Status> {
        self.note(&request);
        let mut task = request.into_inner().task.unwrap_or_default();
        if task.title.trim().is_empty() {
            return Err(Status::invalid_argument("task.title: must not be blank"));
        }
        self.seen.lock().unwrap().created_tasks.push(task.clone());
        task.id = "dddddddd-0000-4000-8000-000000000004".into();
        task.status = TaskStatus::Todo as i32;
        Ok(Response::new(CreateTaskResponse { task: Some(task) }))
    }

    async fn get_task(
        &self,
        request: Request<GetTaskRequest>,
    ) -> Result<Response<GetTaskResponse>, Status> {
        self.note(&request);
        let id = request.into_inner().id;
        match all_tasks().into_iter().find(|t| t.id == id) {
            Some(task) => Ok(Response::new(GetTaskResponse { task: Some(task) })),
            None => Err(Status::not_found(format!("task {id} not found"))),
        }
    }

    async fn list_tasks(
        &self,
        request: Request<ListTasksRequest>,
    ) -> Result<Response<ListTasksResponse>, Status> {
        self.note(&request);
        // Two pages: the first task, then the rest.
        let tasks = all_tasks();
        let response = if request.get_ref().page_token.is_empty() {
            ListTasksResponse {
                tasks: tasks[..1].to_vec(),
                next_page_token: "page-2".into(),
            }
        } else {
            ListTasksResponse {
                tasks: tasks[1..].to_vec(),
                next_page_token: String::new(),
            }
        };
        Ok(Response::new(response))
    }

    async fn update_task(
        &self,
        request: Request<UpdateTaskRequest>,
    ) -> Result<Response<UpdateTaskResponse>, Status> {
        let request = request.into_inner();
        let paths = request.update_mask.unwrap_or_default().paths;
        self.seen.lock().unwrap().update_masks.push(paths);
        Ok(Response::new(UpdateTaskResponse { task: request.task }))
    }

    async fn delete_task(
        &self,
        _: Request<DeleteTaskRequest>,
    ) -> Result<Response<DeleteTaskResponse>, Status> {
        Ok(Response::new(DeleteTaskResponse {}))
    }

    async fn move_task(
        &self,
        _: Request<MoveTaskRequest>,
    ) -> Result<Response<MoveTaskResponse>, Status> {
        unimplemented("MoveTask")
    }

    async fn finish_task_worktree(
        &self,
        _: Request<FinishTaskWorktreeRequest>,
    ) -> Result<Response<FinishTaskWorktreeResponse>, Status> {
        unimplemented("FinishTaskWorktree")
    }

    async fn get_board(
        &self,
        _: Request<GetBoardRequest>,
    ) -> Result<Response<GetBoardResponse>, Status> {
        let tasks = all_tasks();
        let column = |status: TaskStatus| BoardColumn {
            status: status as i32,
            tasks: tasks
                .iter()
                .filter(|t| t.status == status as i32)
                .cloned()
                .collect(),
            truncated: false,
        };
        Ok(Response::new(GetBoardResponse {
            columns: vec![
                column(TaskStatus::Todo),
                column(TaskStatus::InProgress),
                column(TaskStatus::Blocked),
                column(TaskStatus::Done),
                column(TaskStatus::Cancelled),
            ],
            // This fake keeps no audit trail.
            last_event_id: 0,
        }))
    }

    async fn add_dependency(
        &self,
        request: Request<AddDependencyRequest>,
    ) -> Result<Response<AddDependencyResponse>, Status> {
        let r = request.into_inner();
        if r.task_id == r.depends_on_task_id {
            return Err(Status::invalid_argument(
                "depends_on_task_id: a task cannot depend on itself",
            ));
        }
        Err(Status::failed_precondition(
            "dependency would close a cycle",
        ))
    }

    async fn remove_dependency(
        &self,
        _: Request<RemoveDependencyRequest>,
    ) -> Result<Response<RemoveDependencyResponse>, Status> {
        unimplemented("RemoveDependency")
    }

    async fn list_dependencies(
        &self,
        _: Request<ListDependenciesRequest>,
    ) -> Result<Response<ListDependenciesResponse>, Status> {
        unimplemented("ListDependencies")
    }

    async fn list_task_events(
        &self,
        request: Request<ListTaskEventsRequest>,
    ) -> Result<Response<ListTaskEventsResponse>, Status> {
        let event = |id: i64, kind: &str| TaskEvent {
            id,
            task_id: TASK_FAILS.into(),
            actor_type: ActorType::System as i32,
            event_type: kind.into(),
            created_at: Some(prost_types::Timestamp {
                seconds: 1_714_564_800 + id,
                nanos: 0,
            }),
            ..Default::default()
        };
        let response = if request.get_ref().page_token.is_empty() {
            ListTaskEventsResponse {
                events: vec![event(1, "created"), event(2, "updated")],
                next_page_token: "next".into(),
            }
        } else {
            ListTaskEventsResponse {
                events: vec![event(3, "moved")],
                next_page_token: String::new(),
            }
        };
        Ok(Response::new(response))
    }

    /// One event after `after_event_id`; then the stream ends when
    /// following from the start, else it stays open (until Ctrl-C).
    async fn watch_task_events(
        &self,
        request: Request<WatchTaskEventsRequest>,
    ) -> Result<Response<Self::WatchTaskEventsStream>, Status> {
        let after = request.into_inner().after_event_id;
        let event = WatchTaskEventsResponse {
            event: Some(TaskEvent {
                id: after + 1,
                task_id: TASK_FAILS.into(),
                actor_type: ActorType::System as i32,
                event_type: "moved".into(),
                ..Default::default()
            }),
        };
        Ok(Response::new(one_then(Ok(event), after != 0)))
    }
}

#[tonic::async_trait]
impl AgentService for Fake {
    type DiscoverAgentsStream = Stream_<DiscoverAgentsResponse>;

    async fn discover_agents(
        &self,
        request: Request<DiscoverAgentsRequest>,
    ) -> Result<Response<Self::DiscoverAgentsStream>, Status> {
        let request = request.into_inner();
        self.seen.lock().unwrap().discoveries.push(request.clone());
        if request.worker_id == "gone" {
            return Err(Status::not_found("worker \"gone\" (worker_id) not found"));
        }
        let progress = DiscoverAgentsResponse {
            message: Some(discover_agents_response::Message::Progress(
                DiscoveryProgress {
                    done: 1,
                    total: 2,
                    binary: "git".into(),
                },
            )),
        };
        let report = DiscoverAgentsResponse {
            message: Some(discover_agents_response::Message::Report(DiscoveryReport {
                proposals: vec![AgentProposal {
                    slug: "git".into(),
                    name: "git".into(),
                    binary_path: "/usr/bin/git".into(),
                    discovery_method: DiscoveryMethod::PathScan as i32,
                    version: Some("git version 2.47.3".into()),
                    package_name: Some("git".into()),
                    package_section: Some("vcs".into()),
                    tool_type: "cli-tool".into(),
                    capabilities: vec![CapabilityProposal {
                        key: "push".into(),
                        label: "git push".into(),
                        source: CapabilitySource::ScanHelp as i32,
                        interaction_mode: InteractionMode::Template as i32,
                        command_tokens: vec!["push".into()],
                        danger_level: 1,
                        danger_reason: "the subcommand \"push\" changes state".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                problems: vec![DiscoveryProblem {
                    binary: "hangs".into(),
                    probe: "--version".into(),
                    problem: ProbeProblem::TimedOut as i32,
                    detail: "did not finish in time; killed".into(),
                }],
                binaries_scanned: 2,
                elapsed: Some(prost_types::Duration {
                    seconds: 1,
                    nanos: 500_000_000,
                }),
                applied: request.apply,
                applied_agents: if request.apply {
                    vec![AppliedAgent {
                        agent_id: AGENT_GIT.into(),
                        slug: "git".into(),
                        action: ApplyAction::Created as i32,
                        capabilities: vec![AppliedCapability {
                            capability_id: CAP_LOG.into(),
                            key: "push".into(),
                            action: ApplyAction::Created as i32,
                            reason: String::new(),
                        }],
                        reason: String::new(),
                    }]
                } else {
                    Vec::new()
                },
            })),
        };
        Ok(Response::new(Box::pin(tokio_stream::iter([
            Ok(progress),
            Ok(report),
        ]))))
    }

    async fn list_agent_presets(
        &self,
        _: Request<ListAgentPresetsRequest>,
    ) -> Result<Response<ListAgentPresetsResponse>, Status> {
        unimplemented("ListAgentPresets")
    }

    async fn create_preset_agent(
        &self,
        request: Request<CreatePresetAgentRequest>,
    ) -> Result<Response<CreatePresetAgentResponse>, Status> {
        let request = request.into_inner();
        self.seen.lock().unwrap().presets.push(request.clone());
        let slug = request.slug.unwrap_or_else(|| request.preset.clone());
        Ok(Response::new(CreatePresetAgentResponse {
            agent: Some(Agent {
                id: "eeeeeeee-0000-4000-8000-00000000000e".into(),
                slug: slug.clone(),
                name: "Codex".into(),
                binary_path: request.binary_path.unwrap_or_default(),
                mcp_enabled: request.mcp_enabled,
                ..Default::default()
            }),
            capability: Some(Capability {
                id: "ffffffff-0000-4000-8000-00000000000f".into(),
                key: "prompt".into(),
                label: "Prompt".into(),
                ..Default::default()
            }),
        }))
    }

    async fn create_agent(
        &self,
        _: Request<CreateAgentRequest>,
    ) -> Result<Response<CreateAgentResponse>, Status> {
        Err(Status::already_exists("an agent with slug \"git\" exists"))
    }

    async fn get_agent(
        &self,
        request: Request<GetAgentRequest>,
    ) -> Result<Response<GetAgentResponse>, Status> {
        let id = request.into_inner().id;
        Err(Status::not_found(format!("agent {id} not found")))
    }

    async fn list_agents(
        &self,
        request: Request<ListAgentsRequest>,
    ) -> Result<Response<ListAgentsResponse>, Status> {
        // The agent sought is on the second page.
        let agent = |id: &str, slug: &str| Agent {
            id: id.into(),
            slug: slug.into(),
            name: slug.to_uppercase(),
            binary_path: slug.into(),
            is_active: Some(true),
            ..Default::default()
        };
        let response = if request.get_ref().page_token.is_empty() {
            ListAgentsResponse {
                agents: vec![agent("11111111-0000-4000-8000-000000000011", "rg")],
                next_page_token: "2".into(),
            }
        } else {
            ListAgentsResponse {
                agents: vec![agent(AGENT_GIT, "git")],
                next_page_token: String::new(),
            }
        };
        Ok(Response::new(response))
    }

    async fn update_agent(
        &self,
        _: Request<UpdateAgentRequest>,
    ) -> Result<Response<UpdateAgentResponse>, Status> {
        unimplemented("UpdateAgent")
    }

    async fn delete_agent(
        &self,
        _: Request<DeleteAgentRequest>,
    ) -> Result<Response<DeleteAgentResponse>, Status> {
        unimplemented("DeleteAgent")
    }

    async fn create_capability(
        &self,
        _: Request<CreateCapabilityRequest>,
    ) -> Result<Response<CreateCapabilityResponse>, Status> {
        unimplemented("CreateCapability")
    }

    async fn get_capability(
        &self,
        _: Request<GetCapabilityRequest>,
    ) -> Result<Response<GetCapabilityResponse>, Status> {
        unimplemented("GetCapability")
    }

    async fn list_capabilities(
        &self,
        request: Request<ListCapabilitiesRequest>,
    ) -> Result<Response<ListCapabilitiesResponse>, Status> {
        let agent_id = request.into_inner().agent_id;
        let capabilities = if agent_id.is_empty() || agent_id == AGENT_GIT {
            vec![Capability {
                id: CAP_LOG.into(),
                agent_id: AGENT_GIT.into(),
                key: "log".into(),
                label: "git log".into(),
                ..Default::default()
            }]
        } else {
            vec![]
        };
        Ok(Response::new(ListCapabilitiesResponse {
            capabilities,
            next_page_token: String::new(),
        }))
    }

    async fn update_capability(
        &self,
        _: Request<UpdateCapabilityRequest>,
    ) -> Result<Response<UpdateCapabilityResponse>, Status> {
        unimplemented("UpdateCapability")
    }

    async fn delete_capability(
        &self,
        _: Request<DeleteCapabilityRequest>,
    ) -> Result<Response<DeleteCapabilityResponse>, Status> {
        unimplemented("DeleteCapability")
    }
}

/// The execution of a task's run, as it ends.
fn finished_execution(id: &str) -> Result<Execution, Status> {
    let task_id = id.replace("eeeeeeee", "");
    let (status, exit_code, task_id) = if TASK_FAILS.ends_with(&task_id) {
        (ExecutionStatus::Failed, Some(3), TASK_FAILS)
    } else if TASK_SUCCEEDS.ends_with(&task_id) {
        (ExecutionStatus::Succeeded, Some(0), TASK_SUCCEEDS)
    } else if TASK_TIMES_OUT.ends_with(&task_id) {
        (ExecutionStatus::TimedOut, None, TASK_TIMES_OUT)
    } else {
        return Err(Status::not_found(format!("execution {id} not found")));
    };
    Ok(Execution {
        id: id.to_string(),
        task_id: task_id.into(),
        agent_id: AGENT_GIT.into(),
        capability_id: CAP_LOG.into(),
        status: status as i32,
        exit_code,
        log_byte_size: LOG.len() as i64,
        ..Default::default()
    })
}

/// Execution ids: `eeeeeeee` then the task id's tail.
fn execution_id(task_id: &str) -> String {
    format!("eeeeeeee{}", &task_id[8..])
}

/// The diff of every run.
const FAKE_DIFF: &[u8] = b"diff --git a/notes.txt b/notes.txt\n--- a/notes.txt\n+++ b/notes.txt\n@@ -1 +1 @@\n-old\n+new\n";

/// The output of every run.
const LOG: &[u8] = b"hello \xff world\n";

#[tonic::async_trait]
impl ExecutionService for Fake {
    type StreamLogsStream = Stream_<StreamLogsResponse>;
    type WatchExecutionsStream = Stream_<WatchExecutionsResponse>;
    type AttachTerminalStream = Stream_<amon_proto::v1::AttachTerminalResponse>;
    type AttachTerminalOutputStream = Stream_<amon_proto::v1::AttachTerminalOutputResponse>;

    // `amon attach` is tested against the real server (tests/tests/terminal.rs).
    async fn attach_terminal(
        &self,
        _request: Request<tonic::Streaming<amon_proto::v1::AttachTerminalRequest>>,
    ) -> Result<Response<Self::AttachTerminalStream>, Status> {
        unimplemented("AttachTerminal")
    }

    async fn attach_terminal_output(
        &self,
        _request: Request<amon_proto::v1::AttachTerminalOutputRequest>,
    ) -> Result<Response<Self::AttachTerminalOutputStream>, Status> {
        unimplemented("AttachTerminalOutput")
    }

    async fn attach_terminal_input(
        &self,
        _request: Request<amon_proto::v1::AttachTerminalInputRequest>,
    ) -> Result<Response<amon_proto::v1::AttachTerminalInputResponse>, Status> {
        unimplemented("AttachTerminalInput")
    }

    async fn attach_terminal_resize(
        &self,
        _request: Request<amon_proto::v1::AttachTerminalResizeRequest>,
    ) -> Result<Response<amon_proto::v1::AttachTerminalResizeResponse>, Status> {
        unimplemented("AttachTerminalResize")
    }

    async fn create_execution(
        &self,
        request: Request<CreateExecutionRequest>,
    ) -> Result<Response<CreateExecutionResponse>, Status> {
        let request = request.into_inner();
        let mut execution = finished_execution(&execution_id(&request.task_id))?;
        execution.status = ExecutionStatus::Queued as i32;
        execution.exit_code = None;
        self.seen.lock().unwrap().executions.push(request);
        Ok(Response::new(CreateExecutionResponse {
            execution: Some(execution),
        }))
    }

    async fn get_execution_diff(
        &self,
        request: Request<GetExecutionDiffRequest>,
    ) -> Result<Response<GetExecutionDiffResponse>, Status> {
        finished_execution(&request.into_inner().execution_id)?;
        Ok(Response::new(GetExecutionDiffResponse {
            diff: FAKE_DIFF.to_vec(),
            truncated: false,
            worktree: Some(WorktreeSummary {
                branch: "amon/dddddddd-fake".into(),
                base_ref: "HEAD".into(),
                base_commit: "0123456789abcdef".into(),
                commits: 1,
                path: "/data/worktrees/x".into(),
                files: vec![WorktreeFileChange {
                    path: "notes.txt".into(),
                    added: 1,
                    removed: 1,
                    binary: false,
                }],
                ..Default::default()
            }),
        }))
    }

    async fn get_execution(
        &self,
        request: Request<GetExecutionRequest>,
    ) -> Result<Response<GetExecutionResponse>, Status> {
        let execution = finished_execution(&request.into_inner().id)?;
        Ok(Response::new(GetExecutionResponse {
            execution: Some(execution),
            ancestor_execution_ids: vec![],
        }))
    }

    async fn list_executions(
        &self,
        _: Request<ListExecutionsRequest>,
    ) -> Result<Response<ListExecutionsResponse>, Status> {
        let executions = [TASK_FAILS, TASK_SUCCEEDS, TASK_TIMES_OUT]
            .iter()
            .map(|t| finished_execution(&execution_id(t)).unwrap())
            .collect();
        Ok(Response::new(ListExecutionsResponse {
            executions,
            next_page_token: String::new(),
        }))
    }

    async fn cancel_execution(
        &self,
        _: Request<CancelExecutionRequest>,
    ) -> Result<Response<CancelExecutionResponse>, Status> {
        Err(Status::failed_precondition(
            "the execution has already finished",
        ))
    }

    async fn retry_execution(
        &self,
        _: Request<RetryExecutionRequest>,
    ) -> Result<Response<RetryExecutionResponse>, Status> {
        unimplemented("RetryExecution")
    }

    async fn approve_execution(
        &self,
        _: Request<ApproveExecutionRequest>,
    ) -> Result<Response<ApproveExecutionResponse>, Status> {
        unimplemented("ApproveExecution")
    }

    async fn continue_execution(
        &self,
        _: Request<ContinueExecutionRequest>,
    ) -> Result<Response<ContinueExecutionResponse>, Status> {
        unimplemented("ContinueExecution")
    }

    async fn stream_logs(
        &self,
        request: Request<StreamLogsRequest>,
    ) -> Result<Response<Self::StreamLogsStream>, Status> {
        let request = request.into_inner();
        finished_execution(&request.execution_id)?;
        let from = request.offset.clamp(0, LOG.len() as i64) as usize;
        // The log in two chunks, the second overlapping the first (as after
        // a reconnect): the client must write each byte once.
        let chunks: Vec<Result<StreamLogsResponse, Status>> = vec![
            Ok(StreamLogsResponse {
                offset: from as i64,
                data: LOG[from..(from + 4).min(LOG.len())].to_vec(),
            }),
            Ok(StreamLogsResponse {
                offset: from as i64,
                data: LOG[from..].to_vec(),
            }),
        ];
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks))))
    }

    /// One execution; then the stream ends when it is filtered by task,
    /// else it stays open (until Ctrl-C).
    async fn watch_executions(
        &self,
        request: Request<WatchExecutionsRequest>,
    ) -> Result<Response<Self::WatchExecutionsStream>, Status> {
        let stay_open = request.into_inner().task_id.is_empty();
        let execution = finished_execution(&execution_id(TASK_FAILS))?;
        let response = WatchExecutionsResponse {
            execution: Some(execution),
        };
        Ok(Response::new(one_then(Ok(response), stay_open)))
    }
}

/// A server stream of one message that then ends, or stays open.
fn one_then<T: Send + 'static>(message: Result<T, Status>, stay_open: bool) -> Stream_<T> {
    let one = tokio_stream::once(message);
    if stay_open {
        Box::pin(one.chain(tokio_stream::pending()))
    } else {
        Box::pin(one)
    }
}

/// Starts the fake on a free port.
async fn start() -> (SocketAddr, Fake) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let fake = Fake::default();
    let server = tonic::transport::Server::builder()
        .add_service(TaskServiceServer::new(fake.clone()))
        .add_service(AgentServiceServer::new(fake.clone()))
        .add_service(ExecutionServiceServer::new(fake.clone()))
        .serve_with_incoming(TcpListenerStream::new(listener));
    tokio::spawn(server);
    (addr, fake)
}

struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

impl Run {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|e| panic!("{e}: stdout {:?} stderr {}", self.stdout(), self.stderr))
    }
}

/// `amon ARGS` with, of its environment variables, only `vars`.
fn command_with(args: &[&str], vars: &[(&str, &str)]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_amon"));
    command.args(args);
    for var in ["AMON_SERVER", "AMON_ADDR", "AMON_TOKEN", "COLUMNS"] {
        command.env_remove(var);
    }
    command.envs(vars.iter().copied());
    command
}

/// `amon ARGS` talking to the fake at `addr`.
fn command(addr: SocketAddr, args: &[&str]) -> tokio::process::Command {
    command_with(args, &[("AMON_ADDR", &addr.to_string())])
}

async fn output(mut command: tokio::process::Command) -> Run {
    let output = command.output().await.unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

async fn amon(addr: SocketAddr, args: &[&str]) -> Run {
    output(command(addr, args)).await
}

#[tokio::test]
async fn board_as_table_and_json() {
    let (addr, _) = start().await;
    let run = amon(addr, &["board", "--width", "160"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = run.stdout();
    assert!(text.starts_with("TODO (2)"), "{text}");
    assert!(text.contains("│ IN PROGRESS (1)"), "{text}");
    assert!(text.contains("aaaaaaaa P1 Fails with 3"), "{text}");

    let run = amon(addr, &["board", "--json"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let board = run.json();
    let columns = board["columns"].as_array().unwrap();
    assert_eq!(columns.len(), 5);
    assert_eq!(columns[0]["status"], "todo");
    assert_eq!(columns[1]["status"], "in_progress");
    assert_eq!(columns[0]["tasks"][0]["id"], TASK_FAILS);
    assert_eq!(columns[0]["tasks"][0]["priority"], 1);
    assert_eq!(columns[0]["tasks"][0]["due_at"], Value::Null);
}

#[tokio::test]
async fn create_sends_args_as_a_struct_and_the_token() {
    let (addr, fake) = start().await;
    let run = amon(
        addr,
        &[
            "--token",
            "s3cret",
            "--json",
            "tasks",
            "create",
            "Write docs",
            "--arg",
            "n=3",
            "--arg",
            "name=x y",
            "--assignee",
            "git",
            "-p",
            "2",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let task = run.json();
    assert_eq!(task["title"], "Write docs");
    assert_eq!(task["status"], "todo");
    assert_eq!(task["assignee_agent_id"], AGENT_GIT);
    assert_eq!(
        task["input_context"]["args"],
        serde_json::json!({"n": 3, "name": "x y"})
    );

    let seen = fake.seen.lock().unwrap();
    assert_eq!(seen.created_tasks[0].priority, Some(2));
    assert!(
        seen.authorization
            .iter()
            .all(|a| a.as_deref() == Some("Bearer s3cret")),
        "{:?}",
        seen.authorization
    );
}

#[tokio::test]
async fn agents_preset_sends_the_choices() {
    let (addr, fake) = start().await;
    let run = amon(
        addr,
        &[
            "agents",
            "preset",
            "codex",
            "--binary",
            "/opt/codex",
            "--mcp",
            "--arg",
            "--model",
            "--arg",
            "o3",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout().contains("amon run TASK codex/prompt"),
        "{}",
        run.stdout()
    );
    {
        let seen = fake.seen.lock().unwrap();
        let request = &seen.presets[0];
        assert_eq!(request.preset, "codex");
        assert_eq!(request.binary_path.as_deref(), Some("/opt/codex"));
        assert!(request.mcp_enabled);
        assert_eq!(request.extra_args, vec!["--model", "o3"]);
        assert_eq!(request.slug, None);
    }
    let run = amon(addr, &["--json", "agents", "preset", "codex"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json = run.json();
    assert_eq!(json["agent"]["slug"], "codex");
    assert_eq!(json["capability"]["key"], "prompt");
    // Unknown presets never reach the server.
    let run = amon(addr, &["agents", "preset", "cursor"]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(fake.seen.lock().unwrap().presets.len(), 2);
}

#[tokio::test]
async fn agents_discover_sends_the_choices_and_shows_the_report() {
    let (addr, fake) = start().await;
    let run = amon(
        addr,
        &[
            "agents",
            "discover",
            "--worker",
            "w1",
            "git",
            "hangs",
            "--sources",
            "help,man",
            "--timeout",
            "30",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = run.stdout();
    assert!(
        text.starts_with(
            "2 binaries examined in 1.5 s: 1 agents, 1 capabilities proposed, 1 problems"
        ),
        "{text}"
    );
    assert!(text.contains("git version 2.47.3"), "{text}");
    assert!(text.contains("git (vcs)"), "{text}");
    assert!(text.contains("git/push"), "{text}");
    assert!(text.contains("hangs (--version): timed out"), "{text}");
    assert!(text.contains("dry run"), "{text}");
    {
        let seen = fake.seen.lock().unwrap();
        let request = &seen.discoveries[0];
        assert_eq!(request.worker_id, "w1");
        assert_eq!(request.binaries, vec!["git", "hangs"]);
        assert_eq!(
            request.sources,
            vec![DiscoverySource::Help as i32, DiscoverySource::Man as i32]
        );
        assert!(!request.apply);
        assert_eq!(request.timeout.map(|t| t.seconds), Some(30));
    }
    let run = amon(
        addr,
        &["--json", "agents", "discover", "--worker", "w1", "--apply"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json = run.json();
    assert_eq!(json["applied"], true);
    assert_eq!(json["applied_agents"][0]["action"], "created");
    assert_eq!(
        json["proposals"][0]["capabilities"][0]["source"],
        "scan_help"
    );
    assert_eq!(json["problems"][0]["problem"], "PROBE_PROBLEM_TIMED_OUT");
    // A source the client does not know never reaches the server; a
    // server refusal is reported with its code.
    let run = amon(
        addr,
        &["agents", "discover", "--worker", "w1", "--sources", "magic"],
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    let run = amon(addr, &["agents", "discover", "--worker", "gone"]).await;
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("gone"), "{}", run.stderr);
    assert_eq!(fake.seen.lock().unwrap().discoveries.len(), 3);
}

#[tokio::test]
async fn no_token_no_header() {
    let (addr, fake) = start().await;
    let run = amon(addr, &["tasks", "list"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Both pages listed.
    assert_eq!(run.stdout().lines().count(), 1 + 3, "{}", run.stdout());
    let seen = fake.seen.lock().unwrap();
    assert!(seen.authorization.iter().all(Option::is_none));
    assert_eq!(seen.authorization.len(), 2);
}

#[tokio::test]
async fn server_errors_print_code_and_message() {
    let (addr, _) = start().await;
    let run = amon(
        addr,
        &["tasks", "get", "ffffffff-0000-4000-8000-000000000000"],
    )
    .await;
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr.trim(),
        "error: NOT_FOUND: task ffffffff-0000-4000-8000-000000000000 not found"
    );
    assert!(run.stdout.is_empty());

    let run = amon(addr, &["tasks", "create", " "]).await;
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr.trim(),
        "error: INVALID_ARGUMENT: task.title: must not be blank"
    );

    let run = amon(addr, &["deps", "add", "aaaa", "bbbb"]).await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.starts_with("error: FAILED_PRECONDITION: "),
        "{}",
        run.stderr
    );

    let run = amon(addr, &["workers"]).await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.starts_with("error: UNIMPLEMENTED"),
        "{}",
        run.stderr
    );

    let run = amon(addr, &["worker-config", "set", "--stale-window", "3m"]).await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.starts_with("error: UNIMPLEMENTED"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn references_resolve_by_prefix_and_slug() {
    let (addr, fake) = start().await;
    // The slug is on the second page of agents.
    let run = amon(
        addr,
        &["tasks", "update", "bbbbbbbb", "--assignee", "git", "--json"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["id"], TASK_SUCCEEDS);
    assert_eq!(run.json()["assignee_agent_id"], AGENT_GIT);
    assert_eq!(
        fake.seen.lock().unwrap().update_masks,
        vec![vec!["assignee_agent_id".to_string()]]
    );

    // "a" matches nothing usable; "abcd" one task; "ab" is too short.
    let run = amon(addr, &["tasks", "delete", "abcd"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout().trim(),
        format!("deleted task {TASK_TIMES_OUT}")
    );
    let run = amon(addr, &["tasks", "delete", "ab"]).await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("at least its first 4 characters"),
        "{}",
        run.stderr
    );
    let run = amon(addr, &["tasks", "delete", "0000"]).await;
    assert_eq!(run.code, 2);
    assert_eq!(run.stderr.trim(), "error: no task id starts with '0000'");

    let run = amon(addr, &["agents", "get", "hg"]).await;
    assert_eq!(run.code, 2);
    assert_eq!(run.stderr.trim(), "error: no agent with slug 'hg'");
}

#[tokio::test]
async fn events_follow_pages_and_filter() {
    let (addr, _) = start().await;
    let run = amon(addr, &["events", "--after", "1"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<_> = run.stdout().lines().map(str::to_string).collect();
    assert_eq!(
        lines,
        vec![
            "2 2024-05-01T12:00:02Z updated aaaaaaaa system {}",
            "3 2024-05-01T12:00:03Z moved aaaaaaaa system {}",
        ]
    );
    let run = amon(addr, &["events", "--json"]).await;
    let ids: Vec<i64> = run
        .stdout()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(ids, vec![1, 2, 3]);
}

#[tokio::test]
async fn run_streams_the_log_exactly_and_exits_with_the_run() {
    let (addr, fake) = start().await;
    let run = amon(addr, &["run", "aaaa", "git/log", "--arg", "count=2"]).await;
    assert_eq!(run.stdout, LOG, "stderr: {}", run.stderr);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("failed (exit code 3)"),
        "{}",
        run.stderr
    );
    {
        let seen = fake.seen.lock().unwrap();
        let request = &seen.executions[0];
        assert_eq!(request.task_id, TASK_FAILS);
        assert_eq!(request.capability_id, CAP_LOG);
        let count = &request.args.as_ref().unwrap().fields["count"];
        assert_eq!(count.kind, Some(prost_types::value::Kind::NumberValue(2.0)));
    }

    let run = amon(addr, &["run", TASK_SUCCEEDS, "log"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, LOG);

    let run = amon(addr, &["run", "abcdef", CAP_LOG]).await;
    assert_eq!(run.code, 124, "{}", run.stderr);

    // --json: the log goes to stderr, the finished execution to stdout.
    let run = amon(addr, &["run", "aaaa", "git/log", "--json"]).await;
    assert_eq!(run.code, 3);
    assert_eq!(run.json()["status"], "failed");
    assert_eq!(run.json()["exit_code"], 3);
    assert!(run.stderr.starts_with("hello "), "{}", run.stderr);

    let run = amon(addr, &["run", "aaaa", "git/nope"]).await;
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr.trim(),
        "error: agent 'git' has no capability 'nope'"
    );
}

#[tokio::test]
async fn logs_resume_from_an_offset() {
    let (addr, _) = start().await;
    let id = format!("eeeeeeee{}", &TASK_FAILS[8..]);
    let run = amon(addr, &["logs", &id, "--from", "6"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, &LOG[6..]);
    let run = amon(addr, &["logs", "eeee"]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("ambiguous"), "{}", run.stderr);
}

#[tokio::test]
async fn diff_is_coloured_on_request_with_its_summary_on_stderr() {
    let (addr, _) = start().await;
    let id = format!("eeeeeeee{}", &TASK_FAILS[8..]);
    let run = amon(addr, &["diff", &id, "--color", "never"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, FAKE_DIFF);
    assert!(
        run.stderr.contains("branch amon/dddddddd-fake"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("+1     -1  notes.txt"),
        "{}",
        run.stderr
    );
    let run = amon(addr, &["diff", &id, "--color", "always"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = run.stdout();
    assert!(text.contains("\x1b[32m+new\x1b[0m"), "{text:?}");
    assert!(text.contains("\x1b[31m-old\x1b[0m"), "{text:?}");
    let run = amon(addr, &["diff", &id, "--json"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let reply = run.json();
    assert_eq!(reply["worktree"]["files"][0]["added"], 1);
    assert_eq!(reply["truncated"], false);
}

#[tokio::test]
async fn exec_list_and_cancel() {
    let (addr, _) = start().await;
    let run = amon(addr, &["exec", "list", "--json", "-n", "2"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let list = run.json();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[2], Value::Null);
    assert_eq!(list[0]["status"], "failed");
    let run = amon(
        addr,
        &["exec", "cancel", &format!("eeeeeeee{}", &TASK_FAILS[8..])],
    )
    .await;
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr.trim(),
        "error: FAILED_PRECONDITION: the execution has already finished"
    );
}

#[tokio::test]
async fn usage_and_connection_errors() {
    let run = amon("127.0.0.1:1".parse().unwrap(), &["board"]).await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .starts_with("error: cannot connect to the server at http://127.0.0.1:1"),
        "{}",
        run.stderr
    );
    let (addr, _) = start().await;
    let run = amon(addr, &["tasks", "create", "x", "--priority", "9"]).await;
    assert_eq!(run.code, 2);
    let run = amon(addr, &["tasks", "update", "aaaa"]).await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("nothing to update"), "{}", run.stderr);
    // https:// is TLS (nothing listens there: a connection failure, 1);
    // TLS settings with a plaintext URL are the caller's mistake (2).
    let run = amon(addr, &["--addr", "https://127.0.0.1:1", "board"]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("error: cannot connect to the server at https://127.0.0.1:1"),
        "{}",
        run.stderr
    );
    let run = amon(addr, &["--ca-cert", "/nonexistent.pem", "board"]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("use https://"), "{}", run.stderr);
}

/// Runs a following `amon` command until its first line of output, then
/// presses Ctrl-C (SIGINT): that line and the exit code.
async fn interrupt_after_first_line(addr: SocketAddr, args: &[&str]) -> (String, i32) {
    use std::{process::Stdio, time::Duration};

    let mut child = command(addr, args)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("no output in time")
        .unwrap()
        .expect("stdout closed before a line");
    // The command now waits for more with its Ctrl-C handler in place.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = child.id().unwrap().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("no exit in time after Ctrl-C")
        .unwrap();
    (first, status.code().unwrap_or(-1))
}

#[tokio::test]
async fn following_ends_with_ctrl_c_or_the_stream() {
    let (addr, _) = start().await;
    // The server ending the event stream is a failure...
    let run = amon(addr, &["events", "-f", "--json"]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.json()["event_type"], "moved");
    assert_eq!(
        run.stderr.trim(),
        "error: the server closed the event stream"
    );
    // ...while Ctrl-C ends it with success.
    let (line, code) = interrupt_after_first_line(addr, &["events", "-f", "--after", "7"]).await;
    assert_eq!(code, 0);
    assert!(line.starts_with("8 "), "{line}");

    // `exec watch` ends with success either way.
    let run = amon(addr, &["exec", "watch", "--json", "--task", "aaaa"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["status"], "failed");
    let (line, code) = interrupt_after_first_line(addr, &["exec", "watch"]).await;
    assert_eq!(code, 0);
    assert!(line.contains(" failed task=aaaaaaaa agent=git"), "{line}");
}

#[tokio::test]
async fn the_server_is_named_by_either_flag_or_either_variable() {
    let (addr, fake) = start().await;
    let addr = addr.to_string();
    let nowhere = "127.0.0.1:1";
    let list = ["tasks", "list", "--json"];
    let reaches_the_fake = |run: Run, how: &str| {
        assert_eq!(run.code, 0, "{how}: {}", run.stderr);
        assert_eq!(run.json().as_array().unwrap().len(), 3, "{how}");
    };

    // Either spelling of the flag, before or after the command, wins over
    // both variables.
    for flag in ["--server", "--addr"] {
        let vars = [("AMON_SERVER", nowhere), ("AMON_ADDR", nowhere)];
        let mut args = vec![flag, addr.as_str()];
        args.extend(list);
        reaches_the_fake(output(command_with(&args, &vars)).await, flag);
        let mut args = list.to_vec();
        args.extend([flag, addr.as_str()]);
        reaches_the_fake(output(command_with(&args, &vars)).await, flag);
    }
    // AMON_SERVER alone, and over AMON_ADDR; AMON_ADDR alone still works.
    let vars = [("AMON_SERVER", addr.as_str())];
    reaches_the_fake(output(command_with(&list, &vars)).await, "AMON_SERVER");
    let vars = [("AMON_SERVER", addr.as_str()), ("AMON_ADDR", nowhere)];
    reaches_the_fake(output(command_with(&list, &vars)).await, "both");
    let vars = [("AMON_ADDR", addr.as_str())];
    reaches_the_fake(output(command_with(&list, &vars)).await, "AMON_ADDR");
    // Two list calls (two pages) per run.
    assert_eq!(fake.seen.lock().unwrap().authorization.len(), 7 * 2);

    // A flag given badly is refused whichever way it is spelt.
    let run = output(command_with(&["board", "--server"], &[])).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    let run = output(command_with(&["--addr", "", "board"], &[])).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(run.stderr.trim(), "error: the server URL is empty");
}
