//! Mesos' v1 HTTP APIs on the master's port, so frameworks written for
//! Mesos run unchanged (`../shared/reference/mesos-v1-http-api.md`):
//!
//! - `POST /api/v1/scheduler` (also `/master/api/v1/scheduler`): the
//!   scheduler API with JSON bodies. SUBSCRIBE opens a RecordIO stream of
//!   events on its response; every other call is answered at once (202, or
//!   200 for UPDATE_FRAMEWORK) and its results arrive as events.
//! - `POST /api/v1` (also `/api/v1/operator`): the read-only operator calls.
//! - `GET /version`, `GET /master/state`.
//!
//! A subscription here is what a gRPC subscription is: a fresh
//! [`ConnectionId`] fed to the core as `Input::Subscribe`, whose
//! `Output::ToFramework` events this module frames and streams. Calls become
//! the same [`agora_proto::FrameworkCall`]s. So Mesos and SDK frameworks share one core,
//! one allocator and one set of rules; only the translation (`calls.rs`,
//! `events.rs`, `state.rs`) is Mesos-specific.
//!
//! The stream ids Mesos hands out (`Mesos-Stream-Id`) are the one piece of
//! state kept here: framework id → (stream id, connection), for as long as
//! the event stream's response body lives.

mod calls;
mod events;
mod recordio;
mod state;

use super::core_loop::{CoreGone, CoreHandle, FRAMEWORK_BUFFER, StreamGuard};
use crate::{ConnectionId, MasterError};
use agora_proto::{Call, Event, FrameworkId, Timestamp};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use calls::{CallError, MesosCall};
pub(crate) use events::MasterInfo;
use state::OperatorCall;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::hash::{BuildHasher, Hasher};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use tokio::sync::mpsc;
use tokio_stream::Stream;

const APPLICATION_JSON: &str = "application/json";
const STREAM_ID: &str = "Mesos-Stream-Id";

/// Open HTTP event streams by framework.
type Streams = Arc<Mutex<HashMap<FrameworkId, HttpStream>>>;

#[derive(Clone, Debug)]
struct HttpStream {
    stream_id: String,
    conn: ConnectionId,
}

#[derive(Clone, Debug)]
struct Api {
    core: CoreHandle,
    master: Arc<MasterInfo>,
    streams: Streams,
    started: Timestamp,
}

/// The Mesos routes.
pub(crate) fn router(core: CoreHandle, master: MasterInfo, started: Timestamp) -> Router {
    Router::new()
        .route("/api/v1/scheduler", any(scheduler))
        .route("/master/api/v1/scheduler", any(scheduler))
        .route("/api/v1", any(operator))
        .route("/api/v1/operator", any(operator))
        .route("/master/api/v1", any(operator))
        .route("/version", get(version))
        .route("/master/version", get(version))
        .route("/master/state", get(master_state))
        .route("/master/state.json", get(master_state))
        .with_state(Api {
            core,
            master: Arc::new(master),
            streams: Arc::default(),
            started,
        })
}

/// Why a request is refused, with the status code Mesos gives.
#[derive(Debug, thiserror::Error)]
enum HttpError {
    #[error("Expecting 'POST', received '{0}'")]
    MethodNotAllowed(Method),
    #[error("Expecting 'Content-Type' to be present")]
    MissingContentType,
    #[error(
        "Expecting 'Content-Type' of application/json (Agora does not accept application/x-protobuf bodies), got '{0}'"
    )]
    UnsupportedMediaType(String),
    #[error("Expecting 'Accept' to allow 'application/json' (Agora does not send application/x-protobuf)")]
    NotAcceptable,
    #[error(transparent)]
    Call(#[from] CallError),
    #[error("Subscribe calls should not include the 'Mesos-Stream-Id' header")]
    StreamIdOnSubscribe,
    #[error("All non-subscribe calls should include the 'Mesos-Stream-Id' header")]
    MissingStreamId,
    #[error(
        "The stream ID '{given}' included in this request didn't match the stream ID currently associated with framework ID {framework_id}"
    )]
    WrongStreamId { given: String, framework_id: FrameworkId },
    #[error("Framework cannot be found")]
    UnknownFramework,
    #[error("Framework is not subscribed")]
    NotSubscribed,
    #[error("Framework is not connected via HTTP")]
    NotHttp,
    #[error("{0}")]
    Refused(MasterError),
    #[error("Unsupported by Agora: operator call {0}")]
    UnsupportedOperatorCall(String),
    #[error("Failed to parse body into JSON: {0}")]
    OperatorJson(String),
    #[error("Failed to validate master::Call: Expecting 'type' to be present")]
    OperatorWithoutType,
    #[error("the master is shutting down")]
    Unavailable,
}

impl From<CoreGone> for HttpError {
    fn from(_: CoreGone) -> Self {
        Self::Unavailable
    }
}

impl HttpError {
    fn status(&self) -> StatusCode {
        match self {
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            Self::NotSubscribed | Self::NotHttp => StatusCode::FORBIDDEN,
            Self::Refused(MasterError::FrameworkNotSubscribed(_)) => StatusCode::FORBIDDEN,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::MissingContentType
            | Self::Call(_)
            | Self::StreamIdOnSubscribe
            | Self::MissingStreamId
            | Self::WrongStreamId { .. }
            | Self::UnknownFramework
            | Self::Refused(_)
            | Self::UnsupportedOperatorCall(_)
            | Self::OperatorJson(_)
            | Self::OperatorWithoutType => StatusCode::BAD_REQUEST,
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, self.to_string()).into_response();
        if status == StatusCode::METHOD_NOT_ALLOWED {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        response
    }
}

/// The media type of a `Content-Type` value, without parameters, lowercase.
fn media_type(value: &str) -> String {
    value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

/// Checks the method and that the body is JSON.
fn check_post_json(method: &Method, headers: &HeaderMap) -> Result<(), HttpError> {
    if method != Method::POST {
        return Err(HttpError::MethodNotAllowed(method.clone()));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .ok_or(HttpError::MissingContentType)?
        .to_str()
        .map_err(|_| HttpError::UnsupportedMediaType("<not text>".to_owned()))?;
    if media_type(content_type) != APPLICATION_JSON {
        return Err(HttpError::UnsupportedMediaType(content_type.to_owned()));
    }
    Ok(())
}

/// Whether the `Accept` header allows JSON: absent, `*/*`, `application/*`
/// or `application/json`, with a non-zero quality.
fn accepts_json(headers: &HeaderMap) -> bool {
    let values: Vec<&str> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if values.is_empty() {
        return true;
    }
    values.iter().flat_map(|v| v.split(',')).any(|range| {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let refused = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f64>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        !refused && matches!(media.as_str(), "*/*" | "application/*" | APPLICATION_JSON)
    })
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(APPLICATION_JSON))],
        value.to_string(),
    )
        .into_response()
}

async fn scheduler(State(api): State<Api>, method: Method, headers: HeaderMap, body: Bytes) -> Response {
    match api.scheduler(&method, &headers, &body).await {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!(%error, "Mesos scheduler call refused");
            error.into_response()
        }
    }
}

impl Api {
    async fn scheduler(&self, method: &Method, headers: &HeaderMap, body: &[u8]) -> Result<Response, HttpError> {
        // Not a leader or still recovering (307 / 503 in Mesos) cannot
        // happen yet: there is one master and it keeps no registry.
        check_post_json(method, headers)?;
        let stream_id = headers.get(STREAM_ID);
        let (framework_id, call) = match calls::parse(body)? {
            MesosCall::Subscribe(info) => {
                if !accepts_json(headers) {
                    return Err(HttpError::NotAcceptable);
                }
                if stream_id.is_some() {
                    return Err(HttpError::StreamIdOnSubscribe);
                }
                return self.subscribe(info).await;
            }
            MesosCall::Call(call) => (call.framework_id.clone(), Some(call)),
            MesosCall::Ignored(framework_id) => (framework_id, None),
        };
        self.check_stream(&framework_id, stream_id).await?;
        let Some(call) = call else {
            return Ok(StatusCode::ACCEPTED.into_response());
        };
        let update = matches!(call.call, Call::UpdateFramework(_));
        self.core.call(call).await?.map_err(|refusal| match refusal {
            MasterError::UnknownFramework(_) | MasterError::FrameworkRemoved(_) => HttpError::UnknownFramework,
            other => HttpError::Refused(other),
        })?;
        Ok(if update { StatusCode::OK } else { StatusCode::ACCEPTED }.into_response())
    }

    /// Mesos' checks, in its order: the framework exists, is subscribed,
    /// over HTTP, and the call carries its current stream id.
    async fn check_stream(&self, framework_id: &FrameworkId, given: Option<&HeaderValue>) -> Result<(), HttpError> {
        let expected = self
            .streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(framework_id)
            .map(|s| s.stream_id.clone());
        let Some(expected) = expected else {
            let state = self.core.state().await?;
            return Err(match state.frameworks.iter().find(|f| f.id == *framework_id) {
                None => HttpError::UnknownFramework,
                Some(f) if !f.connected => HttpError::NotSubscribed,
                Some(_) => HttpError::NotHttp,
            });
        };
        let given = given.ok_or(HttpError::MissingStreamId)?;
        if given.as_bytes() != expected.as_bytes() {
            return Err(HttpError::WrongStreamId {
                given: String::from_utf8_lossy(given.as_bytes()).into_owned(),
                framework_id: framework_id.clone(),
            });
        }
        Ok(())
    }

    /// SUBSCRIBE: a new connection to the core and its events as the body.
    async fn subscribe(&self, info: Result<agora_proto::FrameworkInfo, String>) -> Result<Response, HttpError> {
        let stream_id = new_stream_id();
        let info = match info {
            Ok(info) => info,
            // Mesos answers an invalid subscription with a stream holding an ERROR.
            Err(message) => return Ok(self.error_stream(&stream_id, message)),
        };
        let conn = self.core.next_conn();
        let (events_tx, mut events) = mpsc::channel(FRAMEWORK_BUFFER);
        let guard = self.core.stream_guard(conn);
        if let Err(refusal) = self.core.subscribe(conn, info, events_tx).await? {
            tracing::debug!(%refusal, "Mesos subscription refused");
            return Ok(self.error_stream(&stream_id, refusal.to_string()));
        }
        // The core queued SUBSCRIBED before answering; register the stream
        // id before the client can read it, so its next call finds it.
        let first = events.recv().await.ok_or(HttpError::Unavailable)?;
        let registration = match &first {
            Event::Subscribed { framework_id, .. } => {
                tracing::info!(%conn, %framework_id, "Mesos framework subscribed over HTTP");
                Some(Registration::new(
                    &self.streams,
                    framework_id.clone(),
                    stream_id.clone(),
                    conn,
                ))
            }
            _ => None,
        };
        let stream = RecordStream {
            queued: VecDeque::from([self.frame(&first)]),
            events: Some(events),
            master: Arc::clone(&self.master),
            _guard: Some(guard),
            _registration: registration,
        };
        Ok(stream_response(&stream_id, stream))
    }

    fn frame(&self, event: &Event) -> Bytes {
        let json = events::event(event, &self.master).to_string();
        Bytes::from(recordio::frame(json.as_bytes()))
    }

    fn error_stream(&self, stream_id: &str, message: String) -> Response {
        let stream = RecordStream {
            queued: VecDeque::from([self.frame(&Event::Error(message))]),
            events: None,
            master: Arc::clone(&self.master),
            _guard: None,
            _registration: None,
        };
        stream_response(stream_id, stream)
    }
}

fn stream_response(stream_id: &str, stream: RecordStream) -> Response {
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(APPLICATION_JSON));
    if let Ok(value) = HeaderValue::from_str(stream_id) {
        headers.insert(STREAM_ID, value);
    }
    response
}

/// A random version-4 UUID in its text form (the std hasher's random keys
/// are the entropy: a stream id only has to be unguessable by accident).
fn new_stream_id() -> String {
    let state = std::collections::hash_map::RandomState::new();
    let mut bytes = [0u8; 16];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        let mut hasher = state.build_hasher();
        hasher.write_usize(i);
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        chunk.copy_from_slice(&hasher.finish().to_be_bytes());
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    agora_proto::StatusUuid(bytes).to_string()
}

/// Keeps a framework's stream id registered while its stream lives.
#[derive(Debug)]
struct Registration {
    streams: Streams,
    framework_id: FrameworkId,
    conn: ConnectionId,
}

impl Registration {
    fn new(streams: &Streams, framework_id: FrameworkId, stream_id: String, conn: ConnectionId) -> Self {
        // A re-subscription replaces the entry; the old stream, closed by the
        // core, then leaves the new entry alone (see `Drop`).
        streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(framework_id.clone(), HttpStream { stream_id, conn });
        Self {
            streams: Arc::clone(streams),
            framework_id,
            conn,
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut streams = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        if streams.get(&self.framework_id).is_some_and(|s| s.conn == self.conn) {
            streams.remove(&self.framework_id);
        }
    }
}

/// A subscription's response body: each event as one RecordIO record (one
/// chunk). It ends when the core closes the stream; when hyper drops it
/// (the client went away), its guard tells the core.
#[derive(Debug)]
struct RecordStream {
    queued: VecDeque<Bytes>,
    events: Option<mpsc::Receiver<Event>>,
    master: Arc<MasterInfo>,
    // Dropped after `events`' fields above: order does not matter for
    // correctness, the core tolerates either.
    _guard: Option<StreamGuard>,
    _registration: Option<Registration>,
}

impl Stream for RecordStream {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(bytes) = this.queued.pop_front() {
            return Poll::Ready(Some(Ok(bytes)));
        }
        let Some(events) = this.events.as_mut() else {
            return Poll::Ready(None);
        };
        events.poll_recv(cx).map(|event| {
            event.map(|event| {
                let json = events::event(&event, &this.master).to_string();
                Ok(Bytes::from(recordio::frame(json.as_bytes())))
            })
        })
    }
}

async fn operator(State(api): State<Api>, method: Method, headers: HeaderMap, body: Bytes) -> Response {
    match api.operator(&method, &headers, &body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

impl Api {
    async fn operator(&self, method: &Method, headers: &HeaderMap, body: &[u8]) -> Result<Response, HttpError> {
        check_post_json(method, headers)?;
        if !accepts_json(headers) {
            return Err(HttpError::NotAcceptable);
        }
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| HttpError::OperatorJson(e.to_string()))?;
        let kind = value
            .get("type")
            .and_then(serde_json::Value::as_str)
            .ok_or(HttpError::OperatorWithoutType)?;
        let call = OperatorCall::from_type(kind).ok_or_else(|| HttpError::UnsupportedOperatorCall(kind.to_owned()))?;
        let state = if call.needs_state() {
            Some(self.core.state().await?)
        } else {
            None
        };
        Ok(json_response(StatusCode::OK, &call.answer(state.as_ref())))
    }
}

async fn version() -> Response {
    json_response(StatusCode::OK, &state::version())
}

async fn master_state(State(api): State<Api>) -> Response {
    match api.core.state().await {
        Ok(cluster) => json_response(StatusCode::OK, &state::master_state(&cluster, &api.master, api.started)),
        Err(CoreGone) => HttpError::Unavailable.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn accept_allows_json_wildcards_and_absence() {
        assert!(accepts_json(&headers(&[])));
        assert!(accepts_json(&headers(&[("accept", "*/*")])));
        assert!(accepts_json(&headers(&[("accept", "application/json")])));
        assert!(accepts_json(&headers(&[("accept", "text/html, application/*;q=0.5")])));
        assert!(!accepts_json(&headers(&[("accept", "application/x-protobuf")])));
        assert!(!accepts_json(&headers(&[("accept", "application/json;q=0")])));
    }

    #[test]
    fn content_type_must_be_json() {
        let post = Method::POST;
        assert!(check_post_json(&post, &headers(&[("content-type", "application/json")])).is_ok());
        assert!(check_post_json(&post, &headers(&[("content-type", "application/json; charset=utf-8")])).is_ok());
        assert!(matches!(
            check_post_json(&post, &headers(&[])),
            Err(HttpError::MissingContentType)
        ));
        assert!(matches!(
            check_post_json(&post, &headers(&[("content-type", "application/x-protobuf")])),
            Err(HttpError::UnsupportedMediaType(_))
        ));
        assert!(matches!(
            check_post_json(&Method::GET, &headers(&[("content-type", "application/json")])),
            Err(HttpError::MethodNotAllowed(_))
        ));
    }

    #[test]
    fn stream_ids_are_distinct_version_4_uuids() {
        let a = new_stream_id();
        let b = new_stream_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
    }
}
