//! `Idempotency-Key` on the partner API's POSTs: the same key with the same request answers the
//! stored response without doing the work again; the same key with a different request is a
//! client error (422); a key whose first request is still running answers 409, until its lease
//! runs out (its handler died): then the next use runs the request. Keys are per account and
//! remembered for a day. A request that failed on our side (5xx) forgets its
//! key, so the partner's retry runs again.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use store::IdempotencyState;

use crate::AppState;
use crate::auth::{self, API_KEY_HEADER};
use crate::error::ApiError;

pub const HEADER: &str = "idempotency-key";
const REPLAYED: &str = "idempotent-replayed";
/// Partner request and response bodies are JSON well under this.
const MAX_BODY: usize = 2 * 1024 * 1024;

/// How long an unanswered key stays in flight: longer than the slowest partner request can run
/// (an evaluation: every LLM attempt timing out), so only a dead handler's key is taken over.
fn lease_ms(config: &crate::Config) -> i64 {
    let llm = i64::from(config.llm_timeout_secs) * (i64::from(config.llm_max_retries) + 1);
    (llm + 60) * 1000
}

pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST || !req.uri().path().starts_with("/api/external/") {
        return next.run(req).await;
    }
    let Some(key) = req.headers().get(HEADER).map(|v| v.to_str().map(str::trim).map(str::to_owned)) else {
        return next.run(req).await;
    };
    let key = match key {
        Ok(k) if !k.is_empty() && k.len() <= 255 && k.chars().all(|c| c.is_ascii_graphic()) => k,
        _ => {
            return ApiError::BadRequest("Idempotency-Key must be 1 to 255 visible ASCII characters".into())
                .into_response();
        }
    };
    // Unauthenticated requests go through unremembered; the handler answers 401.
    let presented = req.headers().get(API_KEY_HEADER).and_then(|v| v.to_str().ok()).map(str::trim).map(str::to_owned);
    let Some(account_id) = (match presented {
        Some(p) => auth::resolve_api_key(&state.store, &p).await.ok().map(|k| k.account_id),
        None => None,
    }) else {
        return next.run(req).await;
    };
    let (parts, body) = req.into_parts();
    let bytes = match to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return ApiError::PayloadTooLarge("the request body is too large".into()).into_response(),
    };
    let mut fingerprint = format!("{} {}\n", parts.method, parts.uri);
    fingerprint.push_str(&String::from_utf8_lossy(&bytes));
    let hash = auth::sha256_hex(&fingerprint);
    let stored = match state.store.begin_idempotent(account_id, &key, &hash, lease_ms(&state.config)).await {
        Ok(s) => s,
        Err(e) => return ApiError::from(e).into_response(),
    };
    match stored {
        IdempotencyState::Mismatch => ApiError::Validation(vec![store::FieldError::new(
            "Idempotency-Key",
            "this key was used for a different request; use a new key for a new request",
        )])
        .into_response(),
        IdempotencyState::InFlight => ApiError::Conflict {
            message: "a request with this Idempotency-Key is still being processed; retry shortly".into(),
            existing_id: None,
        }
        .into_response(),
        IdempotencyState::Done { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let mut response = (status, body).into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response.headers_mut().insert(REPLAYED, HeaderValue::from_static("true"));
            response
        }
        IdempotencyState::New => {
            let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
            let status = response.status();
            let (mut parts, body) = response.into_parts();
            let bytes = match to_bytes(body, MAX_BODY).await {
                Ok(b) => b,
                Err(_) => {
                    let _ = state.store.abandon_idempotent(account_id, &key).await;
                    return ApiError::Internal(anyhow::anyhow!("response too large to remember")).into_response();
                }
            };
            let remembered = if status.is_server_error() {
                state.store.abandon_idempotent(account_id, &key).await
            } else {
                state.store.finish_idempotent(account_id, &key, status.as_u16(), &String::from_utf8_lossy(&bytes)).await
            };
            if let Err(e) = remembered {
                tracing::error!(error = %e, "remembering an idempotent response");
            }
            parts.headers.insert(REPLAYED, HeaderValue::from_static("false"));
            Response::from_parts(parts, Body::from(bytes))
        }
    }
}
