//! Operational endpoints: liveness, readiness, Prometheus metrics.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::ApiError;

/// Liveness: the process serves requests.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses((status = 200, body = String), (status = 503, body = String)))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}

/// Request counts and latencies per route, in Prometheus text format. On this (public) listener
/// only with `Authorization: Bearer <METRICS_TOKEN>`; `METRICS_ADDR` serves them without a token
/// on an address of their own.
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, body = String), (status = 401, body = crate::error::ErrorBody)))]
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let allowed = match (&state.config.metrics_token, presented) {
        (Some(token), Some(presented)) => crate::auth::constant_eq(token.expose(), presented),
        _ => false,
    };
    if !allowed {
        return Err(ApiError::Unauthorized);
    }
    Ok(crate::telemetry::metrics_response())
}
