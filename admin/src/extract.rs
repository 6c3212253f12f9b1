//! Extractors that turn every malformed request into our JSON error (400 with a message naming
//! the field or id), instead of axum's plain-text rejections.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use std::str::FromStr;
use uuid::Uuid;

use crate::error::ApiError;

/// A JSON body. Syntax errors, wrong types and missing fields answer 400; oversize bodies 413.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json_type = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|ct| {
                let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
                mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
            })
            .unwrap_or(false);
        if !json_type {
            return Err(ApiError::UnsupportedMediaType("expected a JSON body (Content-Type: application/json)".into()));
        }
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge("request body too large".into())
            } else {
                ApiError::BadRequest(e.body_text())
            }
        })?;
        // No text we store may hold NUL (PostgreSQL cannot): refuse it here, for every route.
        if has_escaped_nul(&bytes) {
            return Err(ApiError::BadRequest("text must not contain NUL characters (\\u0000)".into()));
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// Whether JSON text holds the escape `\u0000` (raw NUL is not valid JSON anyway). A backslash
/// starts an escape only after an even run of backslashes, so `"\\u0000"` (a literal backslash
/// followed by `u0000`) is not one.
fn has_escaped_nul(json: &[u8]) -> bool {
    json.windows(6).enumerate().any(|(i, w)| {
        w[0] == b'\\'
            && w[1] == b'u'
            && &w[2..] == b"0000"
            && json[..i].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 0
    })
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge("request body too large".into()),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ApiError::UnsupportedMediaType("expected a JSON body (Content-Type: application/json)".into())
        }
        _ => ApiError::BadRequest(match rejection {
            JsonRejection::JsonDataError(e) => format!(
                "invalid JSON body: {}",
                e.body_text().trim_start_matches("Failed to deserialize the JSON body into the target type: ")
            ),
            JsonRejection::JsonSyntaxError(e) => format!(
                "malformed JSON: {}",
                e.body_text().trim_start_matches("Failed to parse the request body as JSON: ")
            ),
            other => other.body_text(),
        }),
    }
}

/// The `{id}` in a route path, which must be a UUID: a typed id (`IdPath<store::SessionId>`)
/// or, for aggregates without one, a bare [`Uuid`].
#[derive(Debug, Clone, Copy)]
pub struct IdPath<T = Uuid>(pub T);

impl<T: FromStr, S: Send + Sync> FromRequestParts<S> for IdPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(raw) = axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e: PathRejection| ApiError::BadRequest(e.body_text()))?;
        raw.parse::<T>().map(IdPath).map_err(|_| ApiError::BadRequest(format!("invalid id `{raw}`: expected a UUID")))
    }
}

/// A `{name}` in a route path that is text, not an id (a category's name), percent-decoded.
/// Invalid UTF-8 and control characters (`%00`, `%0A`, ...) answer 400: no name holds them, and
/// a newline must not be collapsed into a space that matches a real name. The error never echoes
/// the name back (it may be kilobytes).
#[derive(Debug, Clone)]
pub struct NamePath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for NamePath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state).await.map_err(|_: PathRejection| {
                ApiError::BadRequest("the name in the path is not percent-encoded UTF-8".into())
            })?;
        if raw.chars().any(char::is_control) {
            return Err(ApiError::BadRequest("the name in the path holds a control character".into()));
        }
        Ok(NamePath(raw))
    }
}

/// Query parameters; bad values answer 400 naming the parameter.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state).await.map(|q| Query(q.0)).map_err(
            |e: QueryRejection| {
                ApiError::BadRequest(e.body_text().replace("Failed to deserialize query string: ", "invalid query: "))
            },
        )
    }
}

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn escaped_nul_is_found_only_as_an_escape() {
        assert!(super::has_escaped_nul(br#"{"a":"x\u0000y"}"#));
        assert!(!super::has_escaped_nul(br#"{"a":"x\\u0000y"}"#));
        assert!(super::has_escaped_nul(br#"{"a":"x\\\u0000y"}"#));
        assert!(!super::has_escaped_nul(br#"{"a":"u0000"}"#));
    }
}
