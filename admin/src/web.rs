//! Serves the web UI. Until the UI issue lands this is the placeholder page under
//! `web/placeholder/`; any non-API path gets it, so client-side routes work on reload.

use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

const INDEX_HTML: &str = include_str!("../../web/placeholder/index.html");

pub async fn fallback(uri: Uri) -> Response {
    if uri.path().starts_with("/api/") || uri.path() == "/api" {
        return ApiError::NotFound("route").into_response();
    }
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX_HTML).into_response()
}
