//! `agentmonitor.v1.AgentService`: parse the request, call the store, convert
//! the answer. The rules live in `store::agents` and `store::capabilities`,
//! the conversions in `convert::agent`.

use amon_proto::v1::{
    CreateAgentRequest, CreateAgentResponse, CreateCapabilityRequest, CreateCapabilityResponse,
    CreatePresetAgentRequest, CreatePresetAgentResponse, DeleteAgentRequest, DeleteAgentResponse,
    DeleteCapabilityRequest, DeleteCapabilityResponse, DiscoverAgentsRequest,
    DiscoverAgentsResponse, GetAgentRequest, GetAgentResponse, GetCapabilityRequest,
    GetCapabilityResponse, ListAgentPresetsRequest, ListAgentPresetsResponse, ListAgentsRequest,
    ListAgentsResponse, ListCapabilitiesRequest, ListCapabilitiesResponse, UpdateAgentRequest,
    UpdateAgentResponse, UpdateCapabilityRequest, UpdateCapabilityResponse,
    agent_service_server::AgentService, discover_agents_response,
};
use tonic::{Request, Response, Status};

use super::{
    ResponseStream,
    convert::{agent as convert, discovery, page_reply, parse_id},
};
use crate::{
    dispatch::{Engine, discover::DiscoveryEvent},
    store::Store,
};

/// Time past the scan's own timeout the server waits for the worker's
/// result (the worker stops scanning at the timeout and sends what it has).
const RESULT_GRACE: std::time::Duration = std::time::Duration::from_secs(15);

/// Handlers of `AgentService`.
#[derive(Clone)]
pub struct AgentApi {
    store: Store,
    engine: Engine,
}

impl AgentApi {
    /// Handlers over the engine (discovery asks its workers) and its store.
    pub fn new(engine: Engine) -> Self {
        Self {
            store: engine.store.clone(),
            engine,
        }
    }
}

#[tonic::async_trait]
impl AgentService for AgentApi {
    type DiscoverAgentsStream = ResponseStream<DiscoverAgentsResponse>;

    async fn discover_agents(
        &self,
        request: Request<DiscoverAgentsRequest>,
    ) -> Result<Response<Self::DiscoverAgentsStream>, Status> {
        let discovery::DiscoverCall {
            worker_id,
            scan,
            apply,
            llm_agent,
        } = discovery::discover_request(request.into_inner())?;
        // The AI agent to ask is checked before the worker is asked.
        let llm_agent = match llm_agent {
            Some(slug) => Some(self.engine.llm_agent(&slug).await?),
            None => None,
        };
        let deadline = tokio::time::Instant::now() + scan.timeout + RESULT_GRACE;
        let timeout = scan.timeout;
        let mut pending = self.engine.discover(&worker_id, scan).await?;
        let store = self.store.clone();
        let engine = self.engine.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            let outcome = loop {
                let event = tokio::select! {
                    event = pending.next() => event,
                    () = tokio::time::sleep_until(deadline) => {
                        break Err(Status::deadline_exceeded(format!(
                            "worker {worker_id:?} sent no discovery result within the scan's \
                             timeout ({} s) and {} s more",
                            timeout.as_secs(),
                            RESULT_GRACE.as_secs()
                        )));
                    }
                    () = tx.closed() => return,
                };
                match event {
                    Some(DiscoveryEvent::Progress(progress)) => {
                        let message = discover_agents_response::Message::Progress(
                            discovery::progress_to_proto(progress),
                        );
                        if tx
                            .send(Ok(DiscoverAgentsResponse {
                                message: Some(message),
                            }))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    Some(DiscoveryEvent::Done(Ok(mut found))) => {
                        crate::store::discovery::with_preset_capabilities(&mut found);
                        // The AI agent's runs have the scan's timeout again.
                        if let Some(agent) = &llm_agent {
                            engine.ask_llm(agent, &mut found, timeout).await;
                        }
                        let applied = if apply {
                            match store.discovery().apply(&found.proposals).await {
                                Ok(applied) => Some(applied),
                                Err(err) => break Err(Status::from(err)),
                            }
                        } else {
                            None
                        };
                        break Ok(discovery::report_to_proto(&found, applied));
                    }
                    Some(DiscoveryEvent::Done(Err(error))) => {
                        break Err(Status::failed_precondition(format!(
                            "worker {worker_id:?} could not scan: {error}"
                        )));
                    }
                    None => {
                        break Err(Status::failed_precondition(format!(
                            "worker {worker_id:?} disconnected during the scan"
                        )));
                    }
                }
            };
            let last = outcome.map(|report| DiscoverAgentsResponse {
                message: Some(discover_agents_response::Message::Report(report)),
            });
            let _ = tx.send(last).await;
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn list_agent_presets(
        &self,
        _request: Request<ListAgentPresetsRequest>,
    ) -> Result<Response<ListAgentPresetsResponse>, Status> {
        Ok(Response::new(ListAgentPresetsResponse {
            presets: crate::store::presets::presets(None)
                .iter()
                .map(convert::preset_to_proto)
                .collect(),
        }))
    }

    async fn create_preset_agent(
        &self,
        request: Request<CreatePresetAgentRequest>,
    ) -> Result<Response<CreatePresetAgentResponse>, Status> {
        let preset_request = convert::preset_request(request.into_inner());
        let (agent, capability) = self
            .store
            .agents()
            .create_from_preset(preset_request)
            .await?;
        Ok(Response::new(CreatePresetAgentResponse {
            agent: Some(convert::agent_to_proto(&agent)),
            capability: Some(convert::capability_to_proto(&capability)),
        }))
    }

    async fn create_agent(
        &self,
        request: Request<CreateAgentRequest>,
    ) -> Result<Response<CreateAgentResponse>, Status> {
        let spec = convert::agent_spec(request.get_ref().agent.as_ref())?;
        let agent = self.store.agents().create(spec).await?;
        Ok(Response::new(CreateAgentResponse {
            agent: Some(convert::agent_to_proto(&agent)),
        }))
    }

    async fn get_agent(
        &self,
        request: Request<GetAgentRequest>,
    ) -> Result<Response<GetAgentResponse>, Status> {
        let id = parse_id("id", &request.get_ref().id)?;
        let agent = self.store.agents().get(id).await?;
        Ok(Response::new(GetAgentResponse {
            agent: Some(convert::agent_to_proto(&agent)),
        }))
    }

    async fn list_agents(
        &self,
        request: Request<ListAgentsRequest>,
    ) -> Result<Response<ListAgentsResponse>, Status> {
        let (filter, page) = convert::agent_list(request.get_ref())?;
        let (agents, next_page_token) = self.store.agents().list(filter, page).await?;
        let (agents, next_page_token) = page_reply(
            agents.iter().map(convert::agent_to_proto).collect(),
            page,
            next_page_token,
        );
        Ok(Response::new(ListAgentsResponse {
            agents,
            next_page_token,
        }))
    }

    async fn update_agent(
        &self,
        request: Request<UpdateAgentRequest>,
    ) -> Result<Response<UpdateAgentResponse>, Status> {
        let request = request.get_ref();
        let (id, patch) = convert::agent_patch(request.agent.as_ref(), &request.update_mask)?;
        let agent = self.store.agents().update(id, patch).await?;
        Ok(Response::new(UpdateAgentResponse {
            agent: Some(convert::agent_to_proto(&agent)),
        }))
    }

    async fn delete_agent(
        &self,
        request: Request<DeleteAgentRequest>,
    ) -> Result<Response<DeleteAgentResponse>, Status> {
        let id = parse_id("id", &request.get_ref().id)?;
        self.store.agents().delete(id).await?;
        Ok(Response::new(DeleteAgentResponse {}))
    }

    async fn create_capability(
        &self,
        request: Request<CreateCapabilityRequest>,
    ) -> Result<Response<CreateCapabilityResponse>, Status> {
        let spec = convert::capability_spec(request.get_ref().capability.as_ref())?;
        let capability = self.store.capabilities().create(spec).await?;
        Ok(Response::new(CreateCapabilityResponse {
            capability: Some(convert::capability_to_proto(&capability)),
        }))
    }

    async fn get_capability(
        &self,
        request: Request<GetCapabilityRequest>,
    ) -> Result<Response<GetCapabilityResponse>, Status> {
        let id = parse_id("id", &request.get_ref().id)?;
        let capability = self.store.capabilities().get(id).await?;
        Ok(Response::new(GetCapabilityResponse {
            capability: Some(convert::capability_to_proto(&capability)),
        }))
    }

    async fn list_capabilities(
        &self,
        request: Request<ListCapabilitiesRequest>,
    ) -> Result<Response<ListCapabilitiesResponse>, Status> {
        let (filter, page) = convert::capability_list(request.get_ref())?;
        let (capabilities, next_page_token) = self.store.capabilities().list(filter, page).await?;
        let (capabilities, next_page_token) = page_reply(
            capabilities
                .iter()
                .map(convert::capability_to_proto)
                .collect(),
            page,
            next_page_token,
        );
        Ok(Response::new(ListCapabilitiesResponse {
            capabilities,
            next_page_token,
        }))
    }

    async fn update_capability(
        &self,
        request: Request<UpdateCapabilityRequest>,
    ) -> Result<Response<UpdateCapabilityResponse>, Status> {
        let request = request.get_ref();
        let (id, patch) =
            convert::capability_patch(request.capability.as_ref(), &request.update_mask)?;
        let capability = self.store.capabilities().update(id, patch).await?;
        Ok(Response::new(UpdateCapabilityResponse {
            capability: Some(convert::capability_to_proto(&capability)),
        }))
    }

    async fn delete_capability(
        &self,
        request: Request<DeleteCapabilityRequest>,
    ) -> Result<Response<DeleteCapabilityResponse>, Status> {
        let id = parse_id("id", &request.get_ref().id)?;
        self.store.capabilities().delete(id).await?;
        Ok(Response::new(DeleteCapabilityResponse {}))
    }
}
