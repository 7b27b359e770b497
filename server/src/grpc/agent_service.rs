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

use super::convert::{agent as convert, parse_id};
use crate::app::AppState;

/// Handlers of `AgentService`.
#[derive(Clone)]
pub struct AgentApi {
    state: AppState,
}

impl AgentApi {
    /// Handlers over the shared server state.
    pub fn new(state: AppState) -> Self {
        Self { state }
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
        let (agent, capability) = self.state.store.create_preset_agent(preset_request).await?;
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
        let agent = self.state.store.create_agent(spec).await?;
        Ok(Response::new(CreateAgentResponse {
            agent: Some(convert::agent_to_proto(&agent)),
        }))
    }

    async fn get_agent(
        &self,
        request: Request<GetAgentRequest>,
    ) -> Result<Response<GetAgentResponse>, Status> {
        let id = parse_id("id", &request.get_ref().id)?;
        let agent = self.state.store.get_agent(id).await?;
        Ok(Response::new(GetAgentResponse {
            agent: Some(convert::agent_to_proto(&agent)),
        }))
    }

    async fn list_agents(
        &self,
        request: Request<ListAgentsRequest>,
    ) -> Result<Response<ListAgentsResponse>, Status> {
        let (filter, page) = convert::agent_list(request.get_ref())?;
        let (agents, next_page_token) = self.state.store.list_agents(filter, page).await?;
        Ok(Response::new(ListAgentsResponse {
            agents: agents.iter().map(convert::agent_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn update_agent(
        &self,
        request: Request<UpdateAgentRequest>,
    ) -> Result<Response<UpdateAgentResponse>, Status> {
        let request = request.get_ref();
        let (id, patch) = convert::agent_patch(request.agent.as_ref(), &request.update_mask)?;
        let agent = self.state.store.update_agent(id, patch).await?;
        Ok(Response::new(UpdateAgentResponse {
            agent: Some(convert::agent_to_proto(&agent)),
        }))
    }

    async fn delete_agent(
        &self,
        request: Request<DeleteAgentRequest>,
    ) -> Result<Response<DeleteAgentResponse>, Status> {
        let id = parse_id("id", &request.get_ref().id)?;
        self.state.store.delete_agent(id).await?;
        Ok(Response::new(DeleteAgentResponse {}))
    }

    async fn create_capability(
        &self,
        request: Request<CreateCapabilityRequest>,
    ) -> Result<Response<CreateCapabilityResponse>, Status> {
        let spec = convert::capability_spec(request.get_ref().capability.as_ref())?;
        let capability = self.state.store.create_capability(spec).await?;
        Ok(Response::new(CreateCapabilityResponse {
            capability: Some(convert::capability_to_proto(&capability)),
        }))
    }

    async fn get_capability(
        &self,
        request: Request<GetCapabilityRequest>,
    ) -> Result<Response<GetCapabilityResponse>, Status> {
        let id = parse_id("id", &request.get_ref().id)?;
        let capability = self.state.store.get_capability(id).await?;
        Ok(Response::new(GetCapabilityResponse {
            capability: Some(convert::capability_to_proto(&capability)),
        }))
    }

    async fn list_capabilities(
        &self,
        request: Request<ListCapabilitiesRequest>,
    ) -> Result<Response<ListCapabilitiesResponse>, Status> {
        let (filter, page) = convert::capability_list(request.get_ref())?;
        let (capabilities, next_page_token) =
            self.state.store.list_capabilities(filter, page).await?;
        Ok(Response::new(ListCapabilitiesResponse {
            capabilities: capabilities
                .iter()
                .map(convert::capability_to_proto)
                .collect(),
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
        let capability = self.state.store.update_capability(id, patch).await?;
        Ok(Response::new(UpdateCapabilityResponse {
            capability: Some(convert::capability_to_proto(&capability)),
        }))
    }

    async fn delete_capability(
        &self,
        request: Request<DeleteCapabilityRequest>,
    ) -> Result<Response<DeleteCapabilityResponse>, Status> {
        let id = parse_id("id", &request.get_ref().id)?;
        self.state.store.delete_capability(id).await?;
        Ok(Response::new(DeleteCapabilityResponse {}))
    }
}
