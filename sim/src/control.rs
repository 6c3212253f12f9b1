//! The `/_sim/` control API: the Rust scripting API over HTTP, for other processes (the xtask
//! harness, shell scripts, a demo) that cannot hold a [`SimState`]. No authentication: the
//! simulator only ever listens where tests run.
//!
//! | route | does |
//! |---|---|
//! | `GET /_sim/health` | `ok` (readiness probe) |
//! | `GET /_sim/requests[?path=/v1/...]` | recorded requests, oldest first |
//! | `DELETE /_sim/requests` | forget them |
//! | `GET /_sim/rules` | rules with use counts |
//! | `POST /_sim/rules` | append one rule or an array of rules (201) |
//! | `DELETE /_sim/rules` | remove all rules |
//! | `POST /_sim/reset` | rules, requests and models seen all cleared |

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::error::ApiError;
use crate::script::{SimState, rules_from_json};
use crate::server::JsonBody;

pub(crate) fn routes() -> Router<SimState> {
    Router::new()
        .route("/_sim/health", get(|| async { "ok" }))
        .route("/_sim/requests", get(list_requests).delete(clear_requests))
        .route("/_sim/rules", get(list_rules).post(add_rules).delete(clear_rules))
        .route("/_sim/reset", post(reset))
}

#[derive(Debug, Deserialize)]
struct RequestFilter {
    path: Option<String>,
}

async fn list_requests(State(state): State<SimState>, Query(filter): Query<RequestFilter>) -> Response {
    let mut requests = state.requests();
    if let Some(path) = filter.path {
        requests.retain(|request| request.path == path);
    }
    Json(requests).into_response()
}

async fn clear_requests(State(state): State<SimState>) -> StatusCode {
    state.clear_requests();
    StatusCode::NO_CONTENT
}

async fn list_rules(State(state): State<SimState>) -> Response {
    Json(state.rules()).into_response()
}

async fn add_rules(State(state): State<SimState>, JsonBody(body): JsonBody) -> Result<Response, ApiError> {
    let rules = rules_from_json(body).map_err(|reason| ApiError::invalid(None, reason))?;
    let added = rules.len();
    state.add_rules(rules);
    Ok((StatusCode::CREATED, Json(json!({"added": added, "total": state.rules().len()}))).into_response())
}

async fn clear_rules(State(state): State<SimState>) -> StatusCode {
    state.clear_rules();
    StatusCode::NO_CONTENT
}

async fn reset(State(state): State<SimState>) -> StatusCode {
    state.reset();
    StatusCode::NO_CONTENT
}
