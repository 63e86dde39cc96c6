//! The operator API: the cluster's state, and a stream of what changes in
//! it (see `cluster_events.rs` for which events and when).

use super::core_loop::CoreHandle;
use super::status::{ServiceError, answer};
use agora_proto::{
    AgentId, FrameworkId, ProtoError, Resources, SandboxFile, TaskId, pb, role_quotas_from_wire, role_weights_from_wire,
};
use std::pin::Pin;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

/// Serves `agora.v1.Operator`.
#[derive(Clone, Debug)]
pub(crate) struct OperatorService {
    core: CoreHandle,
}

impl OperatorService {
    pub(crate) fn new(core: CoreHandle) -> Self {
        Self { core }
    }
}

/// Bytes a read returns when the caller names no limit.
const DEFAULT_READ: u64 = 64 * 1024;
/// The most a single read returns, to bound a message's size.
const MAX_READ: u64 = 1024 * 1024;

fn required_id<W, D>(value: Option<W>, field: &str) -> Result<D, Status>
where
    D: TryFrom<W, Error = ProtoError>,
{
    let wire = value.ok_or_else(|| ServiceError::from(ProtoError::missing(field)))?;
    D::try_from(wire).map_err(|e| ServiceError::from(e.within(field)).into())
}

/// The framework a request names to tell apart tasks with the same id.
fn optional_framework_id(value: Option<pb::FrameworkId>) -> Result<Option<FrameworkId>, Status> {
    value
        .map(FrameworkId::try_from)
        .transpose()
        .map_err(|e| ServiceError::from(e.within("framework_id")).into())
}

/// The agent and resources of a reservation request.
fn reservation(agent_id: Option<pb::AgentId>, resources: Vec<pb::Resource>) -> Result<(AgentId, Resources), Status> {
    let agent_id: AgentId = required_id(agent_id, "agent_id")?;
    let resources =
        Resources::try_from(resources).map_err(|e| ServiceError::from(ProtoError::resources("resources", e)))?;
    Ok((agent_id, resources))
}

/// The stream of cluster events of one watcher.
pub(crate) type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::ClusterEvent, Status>> + Send>>;

#[tonic::async_trait]
impl pb::operator_server::Operator for OperatorService {
    async fn get_state(&self, _request: Request<pb::GetStateRequest>) -> Result<Response<pb::ClusterState>, Status> {
        let state = self.core.state().await.map_err(ServiceError::from)?;
        Ok(Response::new(state.into()))
    }

    async fn read_file(&self, request: Request<pb::ReadFileRequest>) -> Result<Response<pb::ReadFileResponse>, Status> {
        let request = request.into_inner();
        let task_id: TaskId = required_id(request.task_id, "task_id")?;
        let framework_id = optional_framework_id(request.framework_id)?;
        let file = SandboxFile::from_wire(request.file, "file").map_err(ServiceError::from)?;
        let max_bytes = match request.max_bytes {
            0 => DEFAULT_READ,
            n => n.min(MAX_READ),
        };
        let read = answer(
            self.core
                .read_file(framework_id, task_id.clone(), file, request.offset, max_bytes)
                .await,
        )?;
        let chunk =
            read.map_err(|reason| Status::unavailable(format!("cannot read {file} of task {task_id}: {reason}")))?;
        Ok(Response::new(pb::ReadFileResponse {
            data: chunk.data,
            offset: chunk.offset,
            size: chunk.size,
        }))
    }

    async fn kill_task(&self, request: Request<pb::KillTaskRequest>) -> Result<Response<pb::KillTaskResponse>, Status> {
        let request = request.into_inner();
        let task_id: TaskId = required_id(request.task_id, "task_id")?;
        let framework_id = optional_framework_id(request.framework_id)?;
        answer(self.core.kill_task(framework_id, task_id).await)?;
        Ok(Response::new(pb::KillTaskResponse {}))
    }

    async fn update_weights(
        &self,
        request: Request<pb::UpdateWeightsRequest>,
    ) -> Result<Response<pb::UpdateWeightsResponse>, Status> {
        let weights = role_weights_from_wire(request.into_inner().weights).map_err(ServiceError::from)?;
        answer(self.core.update_weights(weights).await)?;
        Ok(Response::new(pb::UpdateWeightsResponse {}))
    }

    async fn update_quota(
        &self,
        request: Request<pb::UpdateQuotaRequest>,
    ) -> Result<Response<pb::UpdateQuotaResponse>, Status> {
        let quotas = role_quotas_from_wire(request.into_inner().quotas).map_err(ServiceError::from)?;
        answer(self.core.update_quota(quotas).await)?;
        Ok(Response::new(pb::UpdateQuotaResponse {}))
    }

    async fn reserve_resources(
        &self,
        request: Request<pb::ReserveResourcesRequest>,
    ) -> Result<Response<pb::ReserveResourcesResponse>, Status> {
        let request = request.into_inner();
        let (agent_id, resources) = reservation(request.agent_id, request.resources)?;
        answer(self.core.reserve_resources(agent_id, resources).await)?;
        Ok(Response::new(pb::ReserveResourcesResponse {}))
    }

    async fn unreserve_resources(
        &self,
        request: Request<pb::UnreserveResourcesRequest>,
    ) -> Result<Response<pb::UnreserveResourcesResponse>, Status> {
        let request = request.into_inner();
        let (agent_id, resources) = reservation(request.agent_id, request.resources)?;
        answer(self.core.unreserve_resources(agent_id, resources).await)?;
        Ok(Response::new(pb::UnreserveResourcesResponse {}))
    }

    async fn get_roles(
        &self,
        _request: Request<pb::GetRolesRequest>,
    ) -> Result<Response<pb::GetRolesResponse>, Status> {
        let roles = self.core.roles().await.map_err(ServiceError::from)?;
        Ok(Response::new(pb::GetRolesResponse {
            roles: roles.into_iter().map(Into::into).collect(),
        }))
    }

    type WatchEventsStream = WatchStream;

    async fn watch_events(&self, _request: Request<pb::WatchEventsRequest>) -> Result<Response<WatchStream>, Status> {
        // The receiver exists before the response does, so a watcher that
        // reads the state after this returns misses nothing.
        let receiver = self.core.watch().await.map_err(ServiceError::from)?;
        let events = BroadcastStream::new(receiver).map(|next| {
            next.map_err(|BroadcastStreamRecvError::Lagged(missed)| {
                // tonic ends the stream after an error: the watcher must
                // start over rather than go on with a hole in its view.
                Status::aborted(format!(
                    "this watcher fell {missed} events behind and was dropped; read the state and watch again"
                ))
            })
        });
        Ok(Response::new(Box::pin(events)))
    }
}
