//! Logs and metrics: tracing set-up (`LOG_FORMAT=json`: one JSON object per line, each carrying
//! its request's span with `request_id`, `route`, `account_id`, `user_id` and `session_id`), per-route
//! request counts and latencies for Prometheus, and the operations gauges sampled in the
//! background (grading queue depth and age, free space for recordings).

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Installs the log subscriber (`RUST_LOG`, default info; `LOG_FORMAT=json` for JSON lines).
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,str0m=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = if std::env::var("LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// The process-wide Prometheus recorder (metrics macros write to one global recorder, so every
/// app in a process, such as several under test, shares it).
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
            .expect("static buckets are valid")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (a benchmark harness): then ours just renders empty.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// The Prometheus text answer of `/metrics` (the public route behind its token, or the
/// metrics listener).
pub fn metrics_response() -> Response {
    use axum::response::IntoResponse;
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], prometheus().render()).into_response()
}

/// Serves `/metrics` alone, without a token, on `METRICS_ADDR` (an address for a scraper on a
/// private network), until `shutdown`.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = axum::Router::new().route("/metrics", axum::routing::get(|| async { metrics_response() }));
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

/// The header carrying a request's id: taken from the client or proxy when well-formed, made
/// otherwise, and answered back, so a user's report, a proxy's log and ours can be matched.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// A caller-supplied id is used only when short and plain (it is logged verbatim).
fn usable_request_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 64
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The session a route is about (`.../sessions/{id}...`), read from the raw path at the place
/// the route template names it; not parsed further (the handler does that).
fn session_in_path(route: &str, path: &str) -> Option<String> {
    let template: Vec<&str> = route.split('/').collect();
    let actual: Vec<&str> = path.split('/').collect();
    (template.len() == actual.len())
        .then(|| template.windows(2).position(|w| w[0] == "sessions" && w[1] == "{id}"))
        .flatten()
        .map(|i| actual[i + 1])
        .filter(|id| usable_request_id(id))
        .map(str::to_owned)
}

/// Puts the signed-in caller on the current request's span (the identity extractors call it),
/// so every log line of the request names its account.
pub fn record_caller(account_id: store::AccountId, user_id: Option<store::UserId>) {
    let span = tracing::Span::current();
    span.record("account_id", tracing::field::display(account_id));
    if let Some(user) = user_id {
        span.record("user_id", tracing::field::display(user));
    }
}

/// Counts and times every request under its route template (`/api/scenarios/{id}`), never the
/// raw path, so ids cannot blow up the label set; runs the request inside its span (request id,
/// route, session; the caller is added when identified) and answers its `x-request-id`.
pub async fn track(req: Request, next: Next) -> Response {
    use tracing::Instrument;
    let start = Instant::now();
    let route =
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".to_owned());
    let request_id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| usable_request_id(v))
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        route = %route,
        account_id = tracing::field::Empty,
        user_id = tracing::field::Empty,
        session_id = tracing::field::Empty,
    );
    if let Some(session) = session_in_path(&route, req.uri().path()) {
        span.record("session_id", session.as_str());
    }
    // A fixed set of labels: an arbitrary method must not mint a new time series.
    let method = match req.method().as_str() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => m,
        _ => "other",
    }
    .to_owned();
    let mut response = next.run(req).instrument(span).await;
    if let Ok(value) = axum::http::HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let status = response.status().as_u16().to_string();
    let elapsed = start.elapsed().as_secs_f64();
    metrics::counter!("http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route).record(elapsed);
    response
}

/// Free space below which `recordings_free_bytes` matters: sampled, not enforced.
const SAMPLE_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Samples the operations gauges until `stop`: `jobs_queued{kind}` and
/// `jobs_oldest_queued_seconds{kind}` (the grading queue's depth and the age of its oldest job
/// due; an alert fires when grading falls behind) and `recordings_free_bytes` (the disk under
/// `RECORDINGS_DIR`). Every replica samples the same shared numbers; alerts take the max.
pub async fn sample_gauges(
    store: store::Store,
    recordings_dir: std::path::PathBuf,
    stop: tokio_util::sync::CancellationToken,
) {
    let kinds = store::JobKind::ALL;
    loop {
        match store.job_queue_stats(store::Timestamp::now()).await {
            Ok(stats) => {
                for kind in kinds {
                    let (queued, oldest_ms) = stats.iter().find(|s| s.0 == *kind).map_or((0, 0), |s| (s.1, s.2));
                    metrics::gauge!("jobs_queued", "kind" => kind.as_str()).set(queued as f64);
                    metrics::gauge!("jobs_oldest_queued_seconds", "kind" => kind.as_str())
                        .set(oldest_ms as f64 / 1000.0);
                }
            }
            Err(e) => tracing::debug!(error = %e, "job queue gauges not sampled"),
        }
        if let Ok(stat) = nix::sys::statvfs::statvfs(&recordings_dir) {
            let free = stat.blocks_available() * stat.fragment_size();
            metrics::gauge!("recordings_free_bytes").set(free as f64);
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(SAMPLE_EVERY) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::body::Body;
    use tower::ServiceExt;

    use super::*;

    #[test]
    fn the_session_is_read_where_the_route_names_it() {
        let id = "0190f0c4-7e5a-7000-8000-000000000001";
        assert_eq!(
            session_in_path("/api/sessions/{id}/message", &format!("/api/sessions/{id}/message")).as_deref(),
            Some(id)
        );
        assert_eq!(
            session_in_path("/api/internal/sessions/{id}/setup", &format!("/api/internal/sessions/{id}/setup"))
                .as_deref(),
            Some(id)
        );
        assert_eq!(session_in_path("/api/scenarios/{id}", &format!("/api/scenarios/{id}")), None);
        assert_eq!(
            session_in_path("/api/sessions/{id}", "/api/sessions/a%20b<script>"),
            None,
            "odd ids are not logged"
        );
    }

    #[test]
    fn caller_request_ids_are_used_only_when_plain() {
        assert!(usable_request_id("req-1234.abc:5"));
        assert!(!usable_request_id(""));
        assert!(!usable_request_id(&"a".repeat(65)));
        assert!(!usable_request_id("two words"));
        assert!(!usable_request_id("line\nbreak"));
    }

    /// A writer the JSON subscriber fills, for reading the lines back.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn json_lines_carry_the_request_id_and_session() {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt().json().with_writer(move || writer.clone()).finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = axum::Router::new()
            .route(
                "/api/sessions/{id}/message",
                axum::routing::post(|| async {
                    tracing::info!("handled");
                    "ok"
                }),
            )
            .layer(axum::middleware::from_fn(track));
        let id = "0190f0c4-7e5a-7000-8000-000000000001";
        let request = |request_id: Option<&str>| {
            let mut r = axum::http::Request::post(format!("/api/sessions/{id}/message"));
            if let Some(value) = request_id {
                r = r.header(REQUEST_ID_HEADER, value);
            }
            r.body(Body::empty()).expect("request")
        };
        let response = app.clone().oneshot(request(Some("proxy-42"))).await.expect("response");
        assert_eq!(response.headers()[REQUEST_ID_HEADER], "proxy-42", "a plain id from the proxy is kept");
        let response = app.oneshot(request(Some("not plain at all"))).await.expect("response");
        let made = response.headers()[REQUEST_ID_HEADER].to_str().expect("ascii").to_owned();
        assert_ne!(made, "not plain at all");
        assert!(uuid::Uuid::parse_str(&made).is_ok(), "{made}");

        let text = String::from_utf8(lines.0.lock().expect("lock").clone()).expect("utf-8");
        let events: Vec<serde_json::Value> =
            text.lines().map(|l| serde_json::from_str(l).expect("every line is JSON")).collect();
        assert_eq!(events.len(), 2, "{text}");
        assert_eq!(events[0]["span"]["request_id"], "proxy-42", "{text}");
        assert_eq!(events[0]["span"]["session_id"], id, "{text}");
        assert_eq!(events[0]["span"]["route"], "/api/sessions/{id}/message", "{text}");
        assert_eq!(events[1]["span"]["request_id"], made.as_str(), "{text}");
    }
}
