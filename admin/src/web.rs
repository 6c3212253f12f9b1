//! Serves the web UI: the Vite build in `web/dist`, embedded in the binary with rust-embed
//! (`cargo xtask web-build` makes it; `cargo xtask demo` and `ci` run that first). Any non-API
//! GET that is not a file gets `index.html`, so client-side routes work on reload; a missing
//! file under `assets/` is a 404, never HTML posing as a script. Hashed assets are cached for a
//! year, `index.html` is revalidated every time (`no-cache` with an ETag), so a new build is
//! picked up at once. Vite emits no inline scripts, so the CSP needs no `unsafe-inline` for them.
//!
//! A clone that never built the UI still compiles (the folder may be missing or empty: tests
//! and clippy on a clean checkout need no Node); it then answers a page saying how to build it.

use std::borrow::Cow;

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

use crate::error::ApiError;

#[derive(RustEmbed)]
#[folder = "../web/dist"]
#[allow_missing = true]
struct Dist;

const NOT_BUILT: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Proto Trainer</title></head>\
<body><h1>The web UI is not built</h1><p>Run <code>cargo xtask web-build</code> (or <code>cargo xtask demo</code>) \
and rebuild the binary. The API works regardless: <a href=\"/api/docs\">/api/docs</a>.</p></body></html>";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

pub async fn fallback(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    serve::<Dist>(&method, &uri, &headers)
}

fn serve<E: RustEmbed>(method: &Method, uri: &Uri, headers: &HeaderMap) -> Response {
    let path = uri.path();
    if path.starts_with("/api/") || path == "/api" {
        return ApiError::NotFound("route").into_response();
    }
    if method != Method::GET && method != Method::HEAD {
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET, HEAD")]).into_response();
    }
    let file = path.trim_start_matches('/');
    if !file.is_empty() && file != "index.html" {
        if let Some(asset) = E::get(file) {
            let cache = if file.starts_with("assets/") { IMMUTABLE } else { "public, max-age=3600" };
            return respond(asset, cache, headers);
        }
        if file.starts_with("assets/") {
            return (StatusCode::NOT_FOUND, "no such asset").into_response();
        }
    }
    match E::get("index.html") {
        Some(index) => respond(index, "no-cache", headers),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")],
            NOT_BUILT,
        )
            .into_response(),
    }
}

fn respond(file: rust_embed::EmbeddedFile, cache: &'static str, headers: &HeaderMap) -> Response {
    let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()[..16]));
    let mime = file.metadata.mimetype();
    let content_type = if mime.starts_with("text/") || mime.contains("javascript") || mime.contains("json") {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_owned()
    };
    let mut response = if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let body: Cow<'static, [u8]> = file.data;
        (StatusCode::OK, body).into_response()
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    response
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in build: `index.html` and one hashed asset.
    #[derive(RustEmbed)]
    #[folder = "src/web_fixture"]
    struct Fixture;

    /// An empty build, as on a clean clone.
    #[derive(RustEmbed)]
    #[folder = "src/web_fixture_missing"]
    #[allow_missing = true]
    struct Missing;

    fn get<E: RustEmbed>(path: &str, headers: &HeaderMap) -> Response {
        serve::<E>(&Method::GET, &path.parse().unwrap(), headers)
    }

    fn header_of(r: &Response, name: header::HeaderName) -> &str {
        r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    #[test]
    fn hashed_assets_are_immutable_and_typed() {
        let r = get::<Fixture>("/assets/index-abc123.js", &HeaderMap::new());
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header_of(&r, header::CACHE_CONTROL), IMMUTABLE);
        assert!(header_of(&r, header::CONTENT_TYPE).starts_with("text/javascript"), "{:?}", r.headers());
    }

    #[test]
    fn client_routes_fall_back_to_index_without_caching() {
        for path in ["/", "/practice", "/sessions/0190/feedback", "/index.html"] {
            let r = get::<Fixture>(path, &HeaderMap::new());
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            assert_eq!(header_of(&r, header::CACHE_CONTROL), "no-cache", "{path}");
            assert!(header_of(&r, header::CONTENT_TYPE).starts_with("text/html"), "{path}");
        }
    }

    #[test]
    fn index_revalidates_with_its_etag() {
        let first = get::<Fixture>("/", &HeaderMap::new());
        let etag = header_of(&first, header::ETAG).to_owned();
        assert!(etag.starts_with('"'));
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, etag.parse().unwrap());
        assert_eq!(get::<Fixture>("/practice", &headers).status(), StatusCode::NOT_MODIFIED);
    }

    #[test]
    fn missing_assets_and_api_paths_are_404_not_html() {
        assert_eq!(get::<Fixture>("/assets/gone-1234.js", &HeaderMap::new()).status(), StatusCode::NOT_FOUND);
        let api = get::<Fixture>("/api/nope", &HeaderMap::new());
        assert_eq!(api.status(), StatusCode::NOT_FOUND);
        assert!(header_of(&api, header::CONTENT_TYPE).starts_with("application/json"));
    }

    #[test]
    fn other_methods_are_not_allowed() {
        let r = serve::<Fixture>(&Method::POST, &"/practice".parse().unwrap(), &HeaderMap::new());
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    }

    #[test]
    fn an_unbuilt_ui_says_how_to_build_it() {
        let r = get::<Missing>("/", &HeaderMap::new());
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
