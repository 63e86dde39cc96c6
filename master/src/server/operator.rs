//! The operator API: the cluster's state, and a stream of what changes in
//! it (see `cluster_events.rs` for which events and when).

use super::core_loop::CoreHandle;
use super::status::ServiceError;
use agora_proto::pb;
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

/// The stream of cluster events of one watcher.
pub(crate) type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::ClusterEvent, Status>> + Send>>;

#[tonic::async_trait]
impl pb::operator_server::Operator for OperatorService {
    async fn get_state(&self, _request: Request<pb::GetStateRequest>) -> Result<Response<pb::ClusterState>, Status> {
        let state = self.core.state().await.map_err(ServiceError::from)?;
        Ok(Response::new(state.into()))
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
