//! HTTP plumbing: the router, the accept loop, and what every `/v1` request goes through.
//!
//! Every `/v1` request is recorded, then authenticated (any non-empty bearer token), then routed;
//! responses get OpenAI's `x-request-id` and `openai-processing-ms` headers. Scripted faults are
//! staged here ([`stage`]) so all endpoints fail the same way.
//!
//! [`serve`] runs hyper's HTTP/1 connection loop itself instead of `axum::serve`, because a
//! `drop_connection` fault must close the TCP connection without writing a response, and only the
//! task that owns the connection can do that: each request carries a [`ConnectionKiller`] for its
//! connection. Connections are served with upgrades enabled for the Realtime WebSocket
//! (`/v1/realtime`, see `realtime`), whose sockets outlive their hyper connection task and so get
//! the shutdown signal as a request extension.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::error::ApiError;
use crate::script::{Call, Endpoint, Fault, Plan, RecordedRequest, SimState};
use crate::{chat, control, embeddings, realtime};

/// Largest request body accepted (embedding batches can be big).
const BODY_LIMIT: usize = 16 * 1024 * 1024;
/// How long a `timeout` fault hangs: longer than any client timeout a test would set.
const TIMEOUT_HANG: Duration = Duration::from_secs(3600);
/// How long shutdown waits for in-flight requests before cutting connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// The models `GET /v1/models` always lists (id, created), before any others requests named.
const MODELS: &[(&str, u64)] = &[
    ("gpt-4.1", 1_744_316_542),
    ("gpt-4.1-mini", 1_744_318_173),
    ("gpt-4.1-nano", 1_744_321_707),
    ("gpt-4o", 1_715_367_049),
    ("gpt-4o-mini", 1_721_172_741),
    ("gpt-4o-realtime-preview", 1_727_659_998),
    ("gpt-4o-mini-realtime-preview", 1_734_387_380),
    ("gpt-realtime", 1_756_271_701),
    ("text-embedding-3-small", 1_705_948_997),
    ("text-embedding-3-large", 1_705_953_180),
    ("whisper-1", 1_677_532_384),
];

/// The simulator's routes, for embedding in another server. Served by `axum::serve` instead of
/// [`serve`], a `drop_connection` fault degrades to a response whose body fails mid-stream.
pub fn router(state: SimState) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat::completions))
        .route("/v1/embeddings", post(embeddings::create))
        .route("/v1/models", get(list_models))
        .route("/v1/models/{id}", get(get_model))
        .route("/v1/realtime", get(realtime::connect))
        .merge(control::routes())
        .fallback(invalid_url)
        .method_not_allowed_fallback(invalid_url)
        .layer(middleware::from_fn_with_state(state.clone(), intake))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Serves the simulator on `listener` until `shutdown` completes, then lets in-flight requests
/// finish for up to a second and closes the rest.
pub async fn serve(
    listener: TcpListener,
    state: SimState,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let app = router(state);
    let (stop, stopped) = watch::channel(());
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        while connections.try_join_next().is_some() {}
        // Streamed events (Realtime deltas, SSE chunks) leave as written, as OpenAI's do.
        let _ = stream.set_nodelay(true);
        let killer = ConnectionKiller::default();
        let service = {
            let (app, killer) = (app.clone(), killer.clone());
            let signal = realtime::ShutdownSignal(stopped.clone());
            hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(killer.clone());
                request.extensions_mut().insert(signal.clone());
                app.clone().oneshot(request.map(Body::new))
            })
        };
        let mut stopped = stopped.clone();
        connections.spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .with_upgrades();
            let mut connection = std::pin::pin!(connection);
            let mut draining = false;
            loop {
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(error) = result {
                            tracing::debug!(%peer, %error, "connection ended with an error");
                        }
                        break;
                    }
                    // Returning drops the connection, which closes the socket unanswered.
                    () = killer.0.notified() => {
                        tracing::info!(%peer, "dropping connection (scripted fault)");
                        break;
                    }
                    _ = stopped.changed(), if !draining => {
                        draining = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
        });
    }
    drop(listener);
    stop.send_replace(());
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async { while connections.join_next().await.is_some() {} }).await;
    connections.abort_all();
    Ok(())
}

/// Closes the connection a request arrived on (see [`serve`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct ConnectionKiller(Arc<Notify>);

/// Records, authenticates and stamps every `/v1` request; the control API passes straight through.
async fn intake(State(state): State<SimState>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    if path != "/v1" && !path.starts_with("/v1/") {
        return next.run(request).await;
    }
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return ApiError::too_large().into_response();
    };
    let recorded_body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    state.record(RecordedRequest {
        method: parts.method.to_string(),
        path: path.clone(),
        headers: recorded_headers(&parts.headers),
        body: recorded_body,
        received_at_ms: now_ms(),
    });
    let method = parts.method.clone();
    let authenticated =
        has_bearer_token(&parts.headers) || (path == "/v1/realtime" && realtime::has_subprotocol_key(&parts.headers));
    let mut response = if authenticated {
        next.run(Request::from_parts(parts, Body::from(bytes))).await
    } else {
        ApiError::missing_key().into_response()
    };
    let headers = response.headers_mut();
    let id = state.next_id();
    if let Ok(value) = HeaderValue::from_str(&format!("req_{:016x}{:016x}", mix(id), mix(!id))) {
        headers.insert("x-request-id", value);
    }
    headers.insert(
        "openai-processing-ms",
        HeaderValue::from(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)),
    );
    headers.insert("openai-version", HeaderValue::from_static("2020-10-01"));
    tracing::info!(%method, %path, status = response.status().as_u16(), "openai-sim request");
    response
}

fn has_bearer_token(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.get(..7).filter(|scheme| scheme.eq_ignore_ascii_case("bearer ")).map(|_| &value[7..]))
        .is_some_and(|token| !token.trim().is_empty())
}

fn recorded_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut recorded = BTreeMap::<String, String>::new();
    for (name, value) in headers {
        let value = if name == header::AUTHORIZATION {
            "[redacted]".into()
        } else if name == header::SEC_WEBSOCKET_PROTOCOL {
            // Browsers pass the Realtime key as a subprotocol.
            let protocols = String::from_utf8_lossy(value.as_bytes());
            let redacted: Vec<&str> = protocols
                .split(',')
                .map(|protocol| {
                    if protocol.trim().starts_with("openai-insecure-api-key.") {
                        "openai-insecure-api-key.[redacted]"
                    } else {
                        protocol.trim()
                    }
                })
                .collect();
            redacted.join(", ").into()
        } else {
            String::from_utf8_lossy(value.as_bytes())
        };
        recorded
            .entry(name.as_str().to_owned())
            .and_modify(|existing| {
                existing.push_str(", ");
                existing.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    recorded
}

async fn invalid_url(method: Method, uri: Uri) -> ApiError {
    ApiError::invalid_url(method.as_str(), uri.path())
}

/// A JSON request body, rejected in OpenAI's shape when missing or malformed.
#[derive(Debug)]
pub(crate) struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(request, state).await.map_err(|_| ApiError::too_large())?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::malformed_json("the body is empty"));
        }
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|error| ApiError::malformed_json(&error.to_string()))
    }
}

/// Reads a typed request from a parsed body, answering 400 with serde's reason otherwise.
pub(crate) fn parse<T: DeserializeOwned>(body: Value) -> Result<T, ApiError> {
    serde_json::from_value(body).map_err(|error| ApiError::invalid(None, format!("Invalid request body: {error}.")))
}

/// Applies the scripted latency and any fault that replaces the answer. `None`: go on and answer
/// (then honour [`Plan::malformed`] when writing the body).
pub(crate) async fn stage(plan: &Plan, killer: Option<&ConnectionKiller>) -> Option<Response> {
    if let Some(latency) = plan.latency {
        tokio::time::sleep(latency).await;
    }
    match plan.fault.as_ref()? {
        Fault::Status { status, retry_after_secs } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Some(ApiError::for_status(status, *retry_after_secs).into_response())
        }
        Fault::MalformedJson => None,
        Fault::DropConnection => match killer {
            Some(killer) => {
                killer.0.notify_one();
                // The connection task drops this future together with the connection.
                std::future::pending().await
            }
            None => Some(broken_body()),
        },
        // A session cap is a realtime-only fault (`Rule::validate` keeps it off HTTP rules).
        Fault::SessionCap { .. } => None,
        Fault::Timeout | Fault::Stall => {
            tokio::time::sleep(TIMEOUT_HANG).await;
            Some(ApiError::for_status(StatusCode::GATEWAY_TIMEOUT, None).into_response())
        }
    }
}

/// Without access to the connection, the nearest thing to dropping it: a body that errors, which
/// makes hyper abort the connection mid-response.
fn broken_body() -> Response {
    let chunks =
        futures::stream::once(async { Err::<Bytes, _>(std::io::Error::other("connection dropped (simulated)")) });
    ([(header::CONTENT_TYPE, "application/json")], Body::from_stream(chunks)).into_response()
}

/// A JSON response; `malformed` cuts the body in half so it no longer parses.
pub(crate) fn json_response(value: &Value, malformed: bool) -> Response {
    let mut text = value.to_string();
    if malformed {
        cut_in_half(&mut text);
    }
    ([(header::CONTENT_TYPE, "application/json")], text).into_response()
}

pub(crate) fn cut_in_half(text: &mut String) {
    let mut cut = text.len() / 2;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
}

async fn list_models(State(state): State<SimState>, killer: Option<Extension<ConnectionKiller>>) -> Response {
    let plan = state.plan(&models_call(None));
    if let Some(response) = stage(&plan, killer.as_deref()).await {
        return response;
    }
    let seen = state.models_seen();
    let extra = seen.iter().filter(|id| !MODELS.iter().any(|(known, _)| known == id));
    let data: Vec<Value> = MODELS
        .iter()
        .map(|(id, created)| model_json(id, *created))
        .chain(extra.map(|id| model_json(id, MODELS[0].1)))
        .collect();
    json_response(&json!({"object": "list", "data": data}), plan.malformed())
}

async fn get_model(
    State(state): State<SimState>,
    killer: Option<Extension<ConnectionKiller>>,
    Path(id): Path<String>,
) -> Response {
    let plan = state.plan(&models_call(Some(&id)));
    if let Some(response) = stage(&plan, killer.as_deref()).await {
        return response;
    }
    let created = match MODELS.iter().find(|(known, _)| *known == id) {
        Some((_, created)) => *created,
        None if state.models_seen().contains(&id) => MODELS[0].1,
        None => return ApiError::model_not_found(&id).into_response(),
    };
    json_response(&model_json(&id, created), plan.malformed())
}

fn models_call(model: Option<&str>) -> Call<'_> {
    Call { endpoint: Endpoint::Models, model, text: "", last_user: None, schema_name: None }
}

fn model_json(id: &str, created: u64) -> Value {
    let owned_by =
        if id.starts_with("text-embedding") || id.starts_with("whisper") { "openai-internal" } else { "system" };
    json!({"id": id, "object": "model", "created": created, "owned_by": owned_by})
}

/// Seconds since the Unix epoch (OpenAI's `created`).
pub(crate) fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs())
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(0))
}

/// OpenAI-looking ids (`chatcmpl-…`), unique within one simulator.
pub(crate) fn response_id(prefix: &str, n: u64) -> String {
    format!("{prefix}-{:016x}{:012x}", mix(n), mix(n ^ 0x5eed) & 0xffff_ffff_ffff)
}

/// splitmix64: spreads a counter into an id-looking number.
fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a: a stable hash (std's hashers may change between releases), so replies and embeddings
/// are the same on every machine and every run.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3))
}

/// OpenAI's rule of thumb, about four characters a token; deterministic, which tests need more
/// than accuracy.
pub(crate) fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_must_be_present_and_non_empty() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
            has_bearer_token(&headers)
        };
        assert!(with("Bearer sk-test"));
        assert!(with("bearer x"));
        assert!(!with("Bearer "));
        assert!(!with("Basic abc"));
        assert!(!has_bearer_token(&HeaderMap::new()));
    }

    #[test]
    fn halving_respects_utf8() {
        let mut text = "ééé".to_owned();
        cut_in_half(&mut text);
        assert_eq!(text, "é");
    }
}
