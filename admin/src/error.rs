//! The admin service's one error type, mapped to HTTP in exactly one place. Client mistakes get a
//! precise 4xx; server faults are logged with detail and answered without it.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use store::FieldError;
use utoipa::ToSchema;

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("authentication required")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    Conflict { message: String, existing_id: Option<String> },
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("invalid input")]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    Unavailable(String),
    /// An upstream service (the LLM provider) failed or answered unusably.
    #[error("{0}")]
    BadGateway(String),
    /// A `Range` the resource cannot satisfy.
    #[error("{0}")]
    RangeNotSatisfiable(String),
    #[error("too many requests: {what}; try again in {retry_after_secs} s")]
    TooManyRequests { what: &'static str, retry_after_secs: u64 },
    /// The account's monthly AI budget or a chat session's token cap is reached: 429 with the
    /// code `budget_exceeded` (a quota, like the provider's own 429 for an exhausted quota), and
    /// for the monthly budget a `Retry-After` until the next month starts.
    #[error("{message}")]
    BudgetExceeded { message: String, retry_after_secs: Option<u64> },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// A stable machine-readable code, e.g. `not_found`, `validation_failed`. A 429 is
    /// `rate_limited` (too many requests; see `Retry-After`) or `budget_exceeded` (the account's
    /// monthly AI budget, or the chat session's AI token cap, is reached: nothing was sent to the
    /// AI provider; an account admin can raise the limit). A 503 is `unavailable`: the database
    /// is unreachable, or a feature is not configured.
    pub error: &'static str,
    pub message: String,
    /// Per-field problems (validation errors).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
    /// On a conflict with an existing record, its id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing_id: Option<String>,
}

impl From<store::Error> for ApiError {
    fn from(err: store::Error) -> Self {
        match err {
            store::Error::NotFound(what) => ApiError::NotFound(what),
            store::Error::Conflict { message, existing_id } => ApiError::Conflict { message, existing_id },
            store::Error::Invalid(fields) => ApiError::Validation(fields),
            e if e.database_unreachable() => {
                // The detail (host, port, driver message) is for the log, once per request.
                tracing::warn!(error = %e, "database unreachable");
                ApiError::Unavailable(DATABASE_DOWN.into())
            }
            other => ApiError::Internal(other.into()),
        }
    }
}

/// What a client is told while the database cannot be reached.
pub const DATABASE_DOWN: &str =
    "the database is unreachable; the service is temporarily unavailable, try again in a minute";

impl ApiError {
    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::new(field, message)])
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict { .. } => (StatusCode::CONFLICT, "conflict"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            ApiError::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::BadGateway(_) => (StatusCode::BAD_GATEWAY, "upstream_failed"),
            ApiError::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::BudgetExceeded { .. } => (StatusCode::TOO_MANY_REQUESTS, "budget_exceeded"),
            ApiError::RangeNotSatisfiable(_) => (StatusCode::RANGE_NOT_SATISFIABLE, "range_not_satisfiable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            ApiError::Internal(err) => {
                let correlation_id = uuid::Uuid::now_v7();
                tracing::error!(%correlation_id, error = ?err, "request failed");
                format!("internal error; it has been logged (correlation id {correlation_id})")
            }
            // Upstream detail (provider messages, parse errors naming the answer's fields) is
            // for the log; the client gets an id to quote.
            ApiError::BadGateway(detail) => {
                let correlation_id = uuid::Uuid::now_v7();
                tracing::error!(%correlation_id, error = %detail, "upstream call failed");
                format!("the AI provider failed or gave an unusable answer (correlation id {correlation_id})")
            }
            ApiError::Validation(fields) => {
                fields.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; ")
            }
            other => other.to_string(),
        };
        let retry_after = match &self {
            ApiError::TooManyRequests { retry_after_secs, .. } => Some(*retry_after_secs),
            ApiError::BudgetExceeded { retry_after_secs, .. } => *retry_after_secs,
            _ => None,
        };
        let (fields, existing_id) = match self {
            ApiError::Validation(fields) => (fields, None),
            ApiError::Conflict { existing_id, .. } => (Vec::new(), existing_id),
            _ => (Vec::new(), None),
        };
        let mut response = (status, Json(ErrorBody { error: code, message, fields, existing_id })).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Session"));
        }
        if let Some(secs) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
}
