//! Serves the web UI. Until the UI issue lands this is the placeholder page under
//! `web/placeholder/` (sign-in, the demo switcher, links to the API docs); any non-API path
//! gets it, so client-side routes work on reload. Its script is a file, not inline, so the
//! content security policy needs no `unsafe-inline` for scripts.

use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

const INDEX_HTML: &str = include_str!("../../web/placeholder/index.html");
const APP_JS: &str = include_str!("../../web/placeholder/app.js");

pub async fn fallback(uri: Uri) -> Response {
    if uri.path().starts_with("/api/") || uri.path() == "/api" {
        return ApiError::NotFound("route").into_response();
    }
    if uri.path() == "/app.js" {
        return (StatusCode::OK, [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], APP_JS).into_response();
    }
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX_HTML).into_response()
}
