//! `agentmonitor.v1.AgentService`: parse the request, call the store, convert
//! the answer. The rules live in `store::agents` and `store::capabilities`,
//! the conversions in `convert::agent`.

use amon_proto::v1::{
    CreateAgentRequest, CreateAgentResponse, CreateCapabilityRequest, CreateCapabilityResponse,
    CreatePresetAgentRequest, CreatePresetAgentResponse, DeleteAgentRequest, DeleteAgentResponse,
    DeleteCapabilityRequest, DeleteCapabilityResponse, GetAgentRequest, GetAgentResponse,
    GetCapabilityRequest, GetCapabilityResponse, ListAgentPresetsRequest, ListAgentPresetsResponse,
    ListAgentsRequest, ListAgentsResponse, ListCapabilitiesRequest, ListCapabilitiesResponse,
    UpdateAgentRequest, UpdateAgentResponse, UpdateCapabilityRequest, UpdateCapabilityResponse,
    agent_service_server::AgentService,
};
use tonic::{Request, Response, Status};

use super::convert::{agent as convert, page_reply, parse_id};
use crate::store::Store;

/// Handlers of `AgentService`.
#[derive(Clone)]
pub struct AgentApi {
    store: Store,
}

impl AgentApi {
    /// Handlers over the store.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

#[tonic::async_trait]
impl AgentService for AgentApi {
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
