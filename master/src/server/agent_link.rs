//! The agent protocol: one bidirectional stream per agent. A reader task
//! validates what the agent sends and feeds it to the core; the core's
//! messages to the agent flow back through the response stream.

use super::core_loop::{AGENT_BUFFER, CoreHandle};
use super::status::ServiceError;
use crate::ConnectionId;
use agora_proto::{AgentMessage, MasterMessage, pb};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

/// Serves `agora.v1.AgentLink`.
#[derive(Clone, Debug)]
pub(crate) struct AgentLinkService {
    core: CoreHandle,
}

impl AgentLinkService {
    pub(crate) fn new(core: CoreHandle) -> Self {
        Self { core }
    }
}

#[tonic::async_trait]
impl pb::agent_link_server::AgentLink for AgentLinkService {
    type AttachStream = AgentStream;

    async fn attach(&self, request: Request<Streaming<pb::AgentMessage>>) -> Result<Response<AgentStream>, Status> {
        let conn = self.core.next_conn();
        let (messages_tx, messages) = mpsc::channel(AGENT_BUFFER);
        let (ended_tx, ended) = oneshot::channel();
        // Registered before the reader starts, so the core can answer the
        // agent's first message.
        self.core
            .attach_agent(conn, messages_tx)
            .await
            .map_err(ServiceError::from)?;
        let span = tracing::info_span!("agent_link", %conn, agent_id = tracing::field::Empty);
        tokio::spawn(read(self.core.clone(), conn, request.into_inner(), ended).instrument(span));
        Ok(Response::new(AgentStream {
            messages,
            ended: Some(ended_tx),
        }))
    }
}

/// Feeds the agent's messages to the core until its stream ends, it sends
/// something malformed, or the outbound half closes; then tells the core.
async fn read(
    core: CoreHandle,
    conn: ConnectionId,
    mut inbound: Streaming<pb::AgentMessage>,
    mut outbound_ended: oneshot::Receiver<()>,
) {
    tracing::debug!("agent attached");
    loop {
        let wire = tokio::select! {
            // The core closed the stream, or tonic dropped it (the agent went
            // away): stop reading, or the agent could keep talking to a core
            // that no longer listens to this stream.
            _ = &mut outbound_ended => break,
            next = inbound.message() => match next {
                Ok(Some(wire)) => wire,
                Ok(None) => {
                    tracing::debug!("agent closed its stream");
                    break;
                }
                Err(status) => {
                    tracing::debug!(%status, "agent stream failed");
                    break;
                }
            },
        };
        match AgentMessage::try_from(wire) {
            Ok(message) => {
                if let AgentMessage::Register { agent_id: Some(id), .. } = &message {
                    tracing::Span::current().record("agent_id", id.as_str());
                }
                if core.agent_message(conn, message).await.is_err() {
                    return;
                }
            }
            Err(error) => {
                tracing::warn!(%error, "malformed message from agent; closing its stream");
                // The rejection counts as the disconnection: no second report.
                let _ = core
                    .reject_agent(conn, format!("malformed agent message: {error}"))
                    .await;
                return;
            }
        }
    }
    let _ = core.agent_disconnected(conn).await;
}

/// What the master sends an agent, as tonic sends it. It ends when the core
/// closes the stream; ending or being dropped stops the reader task.
#[derive(Debug)]
pub(crate) struct AgentStream {
    messages: mpsc::Receiver<MasterMessage>,
    /// Dropped when the stream ends, which wakes the reader.
    ended: Option<oneshot::Sender<()>>,
}

impl Stream for AgentStream {
    type Item = Result<pb::MasterMessage, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match this.messages.poll_recv(cx) {
            Poll::Ready(Some(message)) => Poll::Ready(Some(Ok(message.into()))),
            Poll::Ready(None) => {
                this.ended = None;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
