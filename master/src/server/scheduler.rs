//! The scheduler API: a framework's event stream (SUBSCRIBE) and its unary
//! calls. Requests are validated into domain calls here; the core decides.

use super::core_loop::{CoreHandle, FRAMEWORK_BUFFER, StreamGuard};
use super::status::ServiceError;
use agora_proto::{Event, FrameworkCall, FrameworkInfo, ProtoError, pb};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use tracing::Instrument;

/// Serves `agora.v1.Scheduler`.
#[derive(Clone, Debug)]
pub(crate) struct SchedulerService {
    core: CoreHandle,
}

impl SchedulerService {
    pub(crate) fn new(core: CoreHandle) -> Self {
        Self { core }
    }

    async fn open_stream(&self, request: pb::SubscribeRequest) -> Result<EventStream, ServiceError> {
        let wire = request
            .framework_info
            .ok_or_else(|| ProtoError::missing("framework_info"))?;
        let info = FrameworkInfo::try_from(wire).map_err(|e| e.within("framework_info"))?;
        let conn = self.core.next_conn();
        let span = tracing::info_span!(
            "subscribe",
            %conn,
            framework = %info.name,
            framework_id = info.id.as_ref().map(|id| id.as_str()),
        );
        async move {
            let (events_tx, events) = mpsc::channel(FRAMEWORK_BUFFER);
            // Made before the subscription is sent: if the client gives up
            // while this waits, the core still hears that the stream is gone.
            let guard = self.core.stream_guard(conn);
            self.core
                .subscribe(conn, info, events_tx)
                .await?
                .inspect_err(|refusal| {
                    tracing::debug!(%refusal, "subscription refused");
                })?;
            Ok(EventStream { events, _guard: guard })
        }
        .instrument(span)
        .await
    }

    async fn call<R>(&self, request: Request<R>) -> Result<Response<pb::CallResponse>, Status>
    where
        FrameworkCall: TryFrom<R, Error = ProtoError>,
    {
        let call = FrameworkCall::try_from(request.into_inner()).map_err(ServiceError::from)?;
        let span = tracing::info_span!("call", framework_id = %call.framework_id, call = call.call.name());
        async move {
            let verdict = self.core.call(call).await.map_err(ServiceError::from)?;
            verdict.map_err(|refusal| {
                tracing::debug!(%refusal, "call refused");
                ServiceError::from(refusal)
            })?;
            Ok(Response::new(pb::CallResponse {}))
        }
        .instrument(span)
        .await
    }
}

/// A framework's events as tonic sends them. It ends when the core closes
/// the stream (the channel's sender is dropped); when tonic drops it (the
/// client went away), its guard tells the core.
#[derive(Debug)]
pub(crate) struct EventStream {
    events: mpsc::Receiver<Event>,
    _guard: StreamGuard,
}

impl Stream for EventStream {
    type Item = Result<pb::Event, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut()
            .events
            .poll_recv(cx)
            .map(|event| event.map(|event| Ok(event.into())))
    }
}

#[tonic::async_trait]
impl pb::scheduler_server::Scheduler for SchedulerService {
    type SubscribeStream = EventStream;

    async fn subscribe(&self, request: Request<pb::SubscribeRequest>) -> Result<Response<EventStream>, Status> {
        Ok(Response::new(self.open_stream(request.into_inner()).await?))
    }

    async fn accept(&self, request: Request<pb::AcceptRequest>) -> Result<Response<pb::CallResponse>, Status> {
        self.call(request).await
    }

    async fn decline(&self, request: Request<pb::DeclineRequest>) -> Result<Response<pb::CallResponse>, Status> {
        self.call(request).await
    }

    async fn revive(&self, request: Request<pb::ReviveRequest>) -> Result<Response<pb::CallResponse>, Status> {
        self.call(request).await
    }

    async fn suppress(&self, request: Request<pb::SuppressRequest>) -> Result<Response<pb::CallResponse>, Status> {
        self.call(request).await
    }

    async fn kill(&self, request: Request<pb::KillRequest>) -> Result<Response<pb::CallResponse>, Status> {
        self.call(request).await
    }

    async fn acknowledge(
        &self,
        request: Request<pb::AcknowledgeRequest>,
    ) -> Result<Response<pb::CallResponse>, Status> {
        self.call(request).await
    }

    async fn reconcile(&self, request: Request<pb::ReconcileRequest>) -> Result<Response<pb::CallResponse>, Status> {
        self.call(request).await
    }

    async fn teardown(&self, request: Request<pb::TeardownRequest>) -> Result<Response<pb::CallResponse>, Status> {
        self.call(request).await
    }

    async fn update_framework(
        &self,
        request: Request<pb::UpdateFrameworkRequest>,
    ) -> Result<Response<pb::CallResponse>, Status> {
        self.call(request).await
    }
}
