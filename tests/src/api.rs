//! Clients of every service on one channel, with the few calls end-to-end
//! tests make over and over (register a tool, queue a run, wait for it).

use std::time::Duration;

use amon_proto::{
    prost_types::{Duration as ProtoDuration, FieldMask, Struct},
    v1::{
        Agent, Capability, CreateAgentRequest, CreateCapabilityRequest, CreateExecutionRequest,
        CreateTaskRequest, Execution, ExecutionStatus, GetExecutionRequest, SetWorkerConfigRequest,
        StreamLogsRequest, Task, WorkerConfig, agent_service_client::AgentServiceClient,
        execution_service_client::ExecutionServiceClient, task_service_client::TaskServiceClient,
        worker_service_client::WorkerServiceClient,
    },
};
use serde_json::Value;
use tokio_stream::StreamExt;
use tonic::transport::Channel;

/// A client of each service.
#[derive(Clone)]
pub struct Api {
    /// AgentService.
    pub agents: AgentServiceClient<Channel>,
    /// TaskService.
    pub tasks: TaskServiceClient<Channel>,
    /// ExecutionService.
    pub executions: ExecutionServiceClient<Channel>,
    /// WorkerService.
    pub workers: WorkerServiceClient<Channel>,
}

/// A JSON object as a protobuf Struct.
pub fn object(value: Value) -> Struct {
    amon_server::grpc::convert::json_to_struct(&value)
}

/// Strings from string literals.
pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

impl Api {
    /// Clients over `channel`.
    pub fn new(channel: Channel) -> Self {
        Self {
            agents: AgentServiceClient::new(channel.clone()),
            tasks: TaskServiceClient::new(channel.clone()),
            executions: ExecutionServiceClient::new(channel.clone()),
            workers: WorkerServiceClient::new(channel),
        }
    }

    /// Registers an agent running `binary_path`.
    pub async fn agent(&mut self, agent: Agent) -> Agent {
        self.agents
            .create_agent(CreateAgentRequest { agent: Some(agent) })
            .await
            .expect("create agent")
            .into_inner()
            .agent
            .expect("agent")
    }

    /// A plain agent: `slug` running `binary_path`, allowed to see `env_allowlist`.
    pub async fn tool(&mut self, slug: &str, binary_path: &str, env_allowlist: &[&str]) -> Agent {
        self.agent(Agent {
            name: slug.into(),
            slug: slug.into(),
            binary_path: binary_path.into(),
            env_allowlist: strings(env_allowlist),
            max_concurrent: Some(8),
            ..Default::default()
        })
        .await
    }

    /// A template-mode capability of `agent` with `tokens` and `args_schema`.
    pub async fn capability(&mut self, capability: Capability) -> Capability {
        self.agents
            .create_capability(CreateCapabilityRequest {
                capability: Some(capability),
            })
            .await
            .expect("create capability")
            .into_inner()
            .capability
            .expect("capability")
    }

    /// A capability passing `tokens` with a schema that admits any args.
    pub async fn command(&mut self, agent: &Agent, key: &str, tokens: &[&str]) -> Capability {
        self.capability(Capability {
            agent_id: agent.id.clone(),
            key: key.into(),
            label: key.into(),
            command_tokens: strings(tokens),
            args_schema: Some(object(serde_json::json!({
                "type": "object",
                "additionalProperties": true
            }))),
            ..Default::default()
        })
        .await
    }

    /// A task.
    pub async fn task(&mut self, task: Task) -> Task {
        self.tasks
            .create_task(CreateTaskRequest { task: Some(task) })
            .await
            .expect("create task")
            .into_inner()
            .task
            .expect("task")
    }

    /// A task with just a title.
    pub async fn titled(&mut self, title: &str) -> Task {
        self.task(Task {
            title: title.into(),
            ..Default::default()
        })
        .await
    }

    /// Queues a run.
    pub async fn run(
        &mut self,
        task: &Task,
        capability: &Capability,
        args: Value,
        max_retries: i32,
    ) -> Execution {
        self.executions
            .create_execution(CreateExecutionRequest {
                task_id: task.id.clone(),
                capability_id: capability.id.clone(),
                args: Some(object(args)),
                max_retries,
            })
            .await
            .expect("create execution")
            .into_inner()
            .execution
            .expect("execution")
    }

    /// The execution as stored now.
    pub async fn execution(&mut self, id: &str) -> Execution {
        self.executions
            .get_execution(GetExecutionRequest { id: id.into() })
            .await
            .expect("get execution")
            .into_inner()
            .execution
            .expect("execution")
    }

    /// Waits until the execution reaches `status` (or any final status, which
    /// then must be `status`).
    pub async fn wait_for(
        &mut self,
        id: &str,
        status: ExecutionStatus,
        within: Duration,
    ) -> Execution {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let execution = self.execution(id).await;
            if execution.status == status as i32 {
                return execution;
            }
            let terminal = matches!(
                execution.status(),
                ExecutionStatus::Succeeded
                    | ExecutionStatus::Failed
                    | ExecutionStatus::Cancelled
                    | ExecutionStatus::TimedOut
            );
            assert!(
                !terminal,
                "execution ended {:?} while waiting for {status:?}: {execution:?}",
                execution.status()
            );
            assert!(
                tokio::time::Instant::now() < deadline,
                "execution still {:?} after {within:?}, expected {status:?}",
                execution.status()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The whole stored log.
    pub async fn log(&mut self, id: &str) -> Vec<u8> {
        self.follow_log(id, 0, false).await
    }

    /// The log from `offset`; with `follow`, until the execution has ended.
    pub async fn follow_log(&mut self, id: &str, offset: i64, follow: bool) -> Vec<u8> {
        let mut stream = self
            .executions
            .stream_logs(StreamLogsRequest {
                execution_id: id.into(),
                offset,
                follow,
            })
            .await
            .expect("stream logs")
            .into_inner();
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.expect("log chunk");
            assert_eq!(
                chunk.offset as usize,
                offset as usize + bytes.len(),
                "contiguous chunks"
            );
            bytes.extend(chunk.data);
        }
        bytes
    }

    /// Sets the worker tuning (durations in milliseconds).
    pub async fn tune(&mut self, stale_window_ms: u64, heartbeat_ms: u64, cancel_grace_ms: u64) {
        let ms = |v: u64| ProtoDuration {
            seconds: (v / 1000) as i64,
            nanos: ((v % 1000) * 1_000_000) as i32,
        };
        self.workers
            .set_worker_config(SetWorkerConfigRequest {
                config: Some(WorkerConfig {
                    stale_window: Some(ms(stale_window_ms)),
                    heartbeat_interval: Some(ms(heartbeat_ms)),
                    cancel_grace: Some(ms(cancel_grace_ms)),
                    log_chunk_bytes: 0,
                }),
                update_mask: Some(FieldMask {
                    paths: strings(&["stale_window", "heartbeat_interval", "cancel_grace"]),
                }),
            })
            .await
            .expect("set worker config");
    }
}
