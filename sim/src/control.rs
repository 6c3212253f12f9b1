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
//! | `GET /_sim/realtime/events[?type=..&direction=client\|server]` | Realtime connections and their events |
//! | `DELETE /_sim/realtime/events` | forget them |
//! | `POST /_sim/reset` | rules, requests, Realtime events and models seen all cleared |

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::error::ApiError;
use crate::realtime::record::Direction;
use crate::script::{SimState, rules_from_json};
use crate::server::JsonBody;

pub(crate) fn routes() -> Router<SimState> {
    Router::new()
        .route("/_sim/health", get(|| async { "ok" }))
        .route("/_sim/requests", get(list_requests).delete(clear_requests))
        .route("/_sim/rules", get(list_rules).post(add_rules).delete(clear_rules))
        .route("/_sim/realtime/events", get(list_realtime).delete(clear_realtime))
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

#[derive(Debug, Deserialize)]
struct RealtimeFilter {
    #[serde(rename = "type")]
    kind: Option<String>,
    direction: Option<Direction>,
}

async fn list_realtime(State(state): State<SimState>, Query(filter): Query<RealtimeFilter>) -> Response {
    let mut connections = state.realtime_connections();
    for connection in &mut connections {
        connection.events.retain(|event| {
            filter.kind.as_deref().is_none_or(|kind| event.kind == kind)
                && filter.direction.is_none_or(|direction| event.direction == direction)
        });
    }
    Json(connections).into_response()
}

async fn clear_realtime(State(state): State<SimState>) -> StatusCode {
    state.clear_realtime();
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
