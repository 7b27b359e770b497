//! `agentmonitor.v1.AgentService`.


use amon_proto::v1::{
    agent_service_server::AgentService,
    CreateAgentRequest, CreateAgentResponse, CreateCapabilityRequest, CreateCapabilityResponse, DeleteAgentRequest, DeleteAgentResponse, DeleteCapabilityRequest, DeleteCapabilityResponse, GetAgentRequest, GetAgentResponse, GetCapabilityRequest, GetCapabilityResponse, ListAgentsRequest, ListAgentsResponse, ListCapabilitiesRequest, ListCapabilitiesResponse, UpdateAgentRequest, UpdateAgentResponse, UpdateCapabilityRequest, UpdateCapabilityResponse,
};
use tonic::{Request, Response, Status};

use super::not_built_yet;
use crate::app::AppState;

/// Handlers of `AgentService`.
#[derive(Clone)]
pub struct AgentApi {
    #[allow(dead_code)]
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
    async fn create_agent(
        &self,
        _request: Request<CreateAgentRequest>,
    ) -> Result<Response<CreateAgentResponse>, Status> {
        Err(not_built_yet("AgentService.CreateAgent"))
    }

    async fn get_agent(
        &self,
        _request: Request<GetAgentRequest>,
    ) -> Result<Response<GetAgentResponse>, Status> {
        Err(not_built_yet("AgentService.GetAgent"))
    }

    async fn list_agents(
        &self,
        _request: Request<ListAgentsRequest>,
    ) -> Result<Response<ListAgentsResponse>, Status> {
        Err(not_built_yet("AgentService.ListAgents"))
    }

    async fn update_agent(
        &self,
        _request: Request<UpdateAgentRequest>,
    ) -> Result<Response<UpdateAgentResponse>, Status> {
        Err(not_built_yet("AgentService.UpdateAgent"))
    }

    async fn delete_agent(
        &self,
        _request: Request<DeleteAgentRequest>,
    ) -> Result<Response<DeleteAgentResponse>, Status> {
        Err(not_built_yet("AgentService.DeleteAgent"))
    }

    async fn create_capability(
        &self,
        _request: Request<CreateCapabilityRequest>,
    ) -> Result<Response<CreateCapabilityResponse>, Status> {
        Err(not_built_yet("AgentService.CreateCapability"))
    }

    async fn get_capability(
        &self,
        _request: Request<GetCapabilityRequest>,
    ) -> Result<Response<GetCapabilityResponse>, Status> {
        Err(not_built_yet("AgentService.GetCapability"))
    }

    async fn list_capabilities(
        &self,
        _request: Request<ListCapabilitiesRequest>,
    ) -> Result<Response<ListCapabilitiesResponse>, Status> {
        Err(not_built_yet("AgentService.ListCapabilities"))
    }

    async fn update_capability(
        &self,
        _request: Request<UpdateCapabilityRequest>,
    ) -> Result<Response<UpdateCapabilityResponse>, Status> {
        Err(not_built_yet("AgentService.UpdateCapability"))
    }

    async fn delete_capability(
        &self,
        _request: Request<DeleteCapabilityRequest>,
    ) -> Result<Response<DeleteCapabilityResponse>, Status> {
        Err(not_built_yet("AgentService.DeleteCapability"))
    }

}
