//! Plain HTTP on the master's port: `/health`, `/metrics` (Prometheus text
//! format) and `/state` (the cluster as JSON, the same snapshot as the
//! operator's GetState).

use super::core_loop::CoreHandle;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;
use tokio::sync::Mutex;

/// The content type of the Prometheus text exposition format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone, Debug)]
struct Http {
    core: CoreHandle,
    prometheus: PrometheusHandle,
    /// Held from a scrape's refresh to its render: a render drops the gauges
    /// not set since the previous one (`server/metrics.rs`), so two scrapes
    /// must not interleave.
    scrape: Arc<Mutex<()>>,
}

/// The HTTP routes.
pub(crate) fn router(core: CoreHandle, prometheus: PrometheusHandle) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/state", get(state))
        .with_state(Http {
            core,
            prometheus,
            scrape: Arc::new(Mutex::new(())),
        })
}

fn unavailable() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "the master is shutting down\n").into_response()
}

/// 200 while the core loop runs: a master whose core stopped cannot serve.
async fn health(State(http): State<Http>) -> Response {
    if http.core.is_running() {
        (StatusCode::OK, "ok").into_response()
    } else {
        unavailable()
    }
}

async fn metrics(State(http): State<Http>) -> Response {
    let _scrape = http.scrape.lock().await;
    if http.core.refresh_metrics().await.is_err() {
        return unavailable();
    }
    ([(header::CONTENT_TYPE, PROMETHEUS_TEXT)], http.prometheus.render()).into_response()
}

async fn state(State(http): State<Http>) -> Response {
    match http.core.state().await {
        Ok(state) => axum::Json(state).into_response(),
        Err(_) => unavailable(),
    }
}

/// Unknown paths: gRPC clients get UNIMPLEMENTED as a gRPC status (which is
/// what tonic's own router answers), everyone else a 404.
pub(crate) async fn fallback(request: Request) -> Response {
    let grpc = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if grpc {
        tonic::Status::unimplemented(format!("no such method: {}", request.uri().path())).into_http()
    } else {
        (StatusCode::NOT_FOUND, "not found\n").into_response()
    }
}
