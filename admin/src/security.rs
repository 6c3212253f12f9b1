//! Response headers that make the browser an ally: a content security policy that allows our
//! own scripts and the LiveKit websocket and nothing else, no framing, no MIME sniffing, a
//! referrer policy that does not leak paths to other sites, no caching of API answers
//! (they carry staff and practice data), and HSTS when the service is public over HTTPS.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::config::Config;

/// The headers, built once from the configuration.
#[derive(Debug, Clone)]
pub struct SecurityHeaders {
    csp: HeaderValue,
    /// `Strict-Transport-Security` when `PUBLIC_URL` is https: once a browser has seen it, it
    /// never again sends the session cookie over plain HTTP to this host.
    hsts: Option<HeaderValue>,
}

impl SecurityHeaders {
    pub fn new(config: &Config) -> Self {
        let mut connect = vec!["'self'".to_owned()];
        if let Some(url) = &config.livekit_url {
            let url = url.trim_end_matches('/');
            // The LiveKit client speaks WebSocket to the signal URL and HTTP(S) to the same host
            // for region and validation requests.
            let (ws, http) = match url.split_once("://") {
                Some(("wss" | "https", rest)) => (format!("wss://{rest}"), format!("https://{rest}")),
                Some((_, rest)) => (format!("ws://{rest}"), format!("http://{rest}")),
                None => (format!("wss://{url}"), format!("https://{url}")),
            };
            connect.push(ws);
            connect.push(http);
        }
        let csp = format!(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; \
             media-src 'self' blob:; font-src 'self' data:; connect-src {}; worker-src 'self' blob:; \
             frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'",
            connect.join(" ")
        );
        // A year, the host only: `includeSubDomains` would bind every sibling service of the
        // organisation's domain to HTTPS, which is not this service's decision.
        let https = config.public_url.as_deref().is_some_and(|u| u.starts_with("https://"));
        SecurityHeaders {
            csp: HeaderValue::from_str(&csp)
                .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'")),
            hsts: https.then(|| HeaderValue::from_static("max-age=31536000")),
        }
    }
}

pub async fn headers(State(policy): State<Arc<SecurityHeaders>>, req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, policy.csp.clone());
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("strict-origin-when-cross-origin"));
    h.insert(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("microphone=(self), camera=(), geolocation=()"),
    );
    h.insert(HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin"));
    if let Some(hsts) = &policy.hsts {
        h.insert(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
    }
    if api && !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
