//! OpenAI's error body, `{"error":{"message","type","param","code"}}`, as one response type.
//!
//! Clients (async-openai, the official SDKs, our own reqwest code) branch on the status and on
//! `error.type`/`error.code`, so every failure the simulator reports — real protocol errors and
//! scripted faults alike — goes through here and looks exactly like OpenAI's.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answered in OpenAI's shape.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Human-readable message (`error.message`).
    pub message: String,
    /// `error.type`, e.g. `invalid_request_error`, `server_error`.
    pub kind: &'static str,
    /// `error.param`: the request field at fault, if any.
    pub param: Option<String>,
    /// `error.code`, e.g. `invalid_api_key`, `rate_limit_exceeded`.
    pub code: Option<&'static str>,
    /// Seconds for a `Retry-After` header (rate limits).
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), kind, param: None, code: None, retry_after_secs: None }
    }

    /// 400 `invalid_request_error`, naming the field at fault.
    pub fn invalid(param: Option<&str>, message: impl Into<String>) -> Self {
        let mut error = Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message);
        error.param = param.map(str::to_owned);
        error
    }

    /// 400 for a body that is not JSON, worded like OpenAI's.
    pub fn malformed_json(detail: &str) -> Self {
        Self::invalid(
            None,
            format!(
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your \
                 HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid \
                 JSON. If you have trouble figuring out how to fix this, please contact us through our help center \
                 at help.openai.com.) Detail: {detail}"
            ),
        )
    }

    /// 413 for a body over the simulator's limit.
    pub fn too_large() -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "invalid_request_error", "Request body too large.")
    }

    /// 401 for a missing or empty bearer token.
    pub fn missing_key() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "You didn't provide an API key. You need to provide your API key in an Authorization header using \
             Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        )
    }

    /// 404 for a path the API does not have (OpenAI answers wrong methods the same way).
    pub fn invalid_url(method: &str, path: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "invalid_request_error", format!("Invalid URL ({method} {path})"))
    }

    /// 404 for an unknown model id.
    pub fn model_not_found(model: &str) -> Self {
        let mut error = Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!("The model '{model}' does not exist or you do not have access to it."),
        );
        error.param = Some("model".to_owned());
        error.code = Some("model_not_found");
        error
    }

    /// The error a scripted `status` fault answers: 429 as a rate limit, 5xx as a server error,
    /// anything else as an invalid request.
    pub fn for_status(status: StatusCode, retry_after_secs: Option<u64>) -> Self {
        let mut error = match status.as_u16() {
            429 => {
                let mut error = Self::new(
                    status,
                    "requests",
                    "Rate limit reached for requests (simulated). Please try again later.",
                );
                error.code = Some("rate_limit_exceeded");
                error
            }
            503 => Self::new(status, "server_error", "The server is overloaded or not ready yet (simulated)."),
            500..=599 => Self::new(
                status,
                "server_error",
                "The server had an error while processing your request (simulated). Sorry about that!",
            ),
            _ => Self::new(status, "invalid_request_error", format!("Simulated error with status {status}.")),
        };
        error.retry_after_secs = retry_after_secs;
        error
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
