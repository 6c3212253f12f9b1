//! The admin service: REST API, (later) evaluation and the external and internal APIs, and the
//! web UI. `run` serves it on a given listener until a shutdown future resolves, so tests and the
//! binary start it the same way.

use std::future::Future;
use std::sync::Arc;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::http::{HeaderName, header};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::sensitive_headers::{SetSensitiveRequestHeadersLayer, SetSensitiveResponseHeadersLayer};
use tower_http::trace::TraceLayer;
use utoipa_swagger_ui::SwaggerUi;

pub mod agreement;
pub mod auth;
pub mod backup;
pub mod calibration;
pub mod config;
pub mod docreview;
pub mod doctor;
pub mod documents;
pub mod drafting;
mod error;
pub mod evaluation;
mod extract;
pub mod idempotency;
mod identity;
mod import;
pub mod jobs;
pub mod list_cache;
pub mod llm;
pub mod notify;
mod policies;
mod roleplay;
mod routes;
pub mod rubric;
pub mod sandbox;
pub mod scoring;
mod security;
pub mod seed;
pub mod telemetry;
pub mod testrun;
pub mod transcript;
pub mod truth;
mod upload;
mod web;
pub mod webhooks;

pub use config::{Config, Secret};
pub use error::{ApiError, ErrorBody};

/// Uploads (CSV imports, documents) may be at most this large; PRODUCT.md's limit is 10 MB.
pub const MAX_UPLOAD_BYTES: usize = 10 * 1024 * 1024;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: store::Store,
    pub config: Arc<Config>,
    /// The AI provider; `None` without `OPENAI_API_KEY` (AI routes answer 503).
    pub llm: Option<llm::Llm>,
    /// Flag e-mails; `None` without `SMTP_URL` (flags are only logged).
    pub mailer: Option<notify::Mailer>,
    /// Wakes the webhook dispatcher when an event is queued.
    pub webhook_wake: Arc<tokio::sync::Notify>,
    /// Sessions' reviewed scores as lists show them (`evaluation::session_scores`).
    pub scores: Arc<evaluation::ScoreCache>,
    /// Rendered list pages (`list_cache`); `None` with `LIST_CACHE_MB=0`.
    pub list_cache: Option<Arc<list_cache::ListCache>>,
}

impl AppState {
    pub fn new(store: store::Store, config: Config) -> anyhow::Result<Self> {
        let llm = llm::Llm::from_config(&config, store.clone())?;
        if llm.is_none() {
            tracing::warn!("no AI provider configured (OPENAI_API_KEY): chat, evaluation and analysis answer 503");
        }
        let mailer = notify::Mailer::from_config(&config)?;
        let list_cache = list_cache::ListCache::new(config.list_cache_mb).map(Arc::new);
        Ok(AppState {
            store,
            config: Arc::new(config),
            llm,
            mailer,
            webhook_wake: Arc::new(tokio::sync::Notify::new()),
            scores: Default::default(),
            list_cache,
        })
    }
}

impl AppState {
    /// The AI provider, or the 503 that says none is configured.
    pub fn llm(&self) -> Result<&llm::Llm, ApiError> {
        self.llm.as_ref().ok_or_else(|| llm::LlmError::NotConfigured.into())
    }
}

/// After new flags were stored: their `flag.raised` events and e-mail jobs were queued with them
/// (the store woke the job workers); wake the webhook dispatcher too.
pub(crate) fn flags_raised(state: &AppState, flags: &[store::SessionFlag]) {
    if !flags.is_empty() {
        state.webhook_wake.notify_one();
    }
}

/// Request headers that carry credentials: logs and traces show them as `Sensitive`.
const SENSITIVE_HEADERS: [HeaderName; 6] = [
    header::AUTHORIZATION,
    header::COOKIE,
    HeaderName::from_static(auth::API_KEY_HEADER),
    HeaderName::from_static(auth::INTERNAL_KEY_HEADER),
    HeaderName::from_static(auth::SESSION_CREDENTIAL_HEADER),
    HeaderName::from_static(auth::CSRF_HEADER),
];

/// Which listener a request came in on: they share one application but not all of its routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// `BIND_ADDR:PORT`: browsers, partners, and the internal API unless `INTERNAL_ADDR` is set.
    Public,
    /// `INTERNAL_ADDR`: the internal API for voice agents (and `/healthz`), nothing else.
    Internal,
}

/// The whole HTTP application as the public listener serves it: API, OpenAPI document and docs
/// UI, metrics (behind their token), web UI.
pub fn app(state: AppState) -> Router {
    app_on(state, Listener::Public)
}

/// The application as `listener` serves it: with `INTERNAL_ADDR` set, `/api/internal/*`
/// answers only on the internal listener (404 on the public one, as a route that does not
/// exist), and the internal listener answers nothing else.
pub fn app_on(state: AppState, listener: Listener) -> Router {
    let (api, openapi) = routes::split(state.config.demo_mode);
    let security = Arc::new(security::SecurityHeaders::new(&state.config));
    let separate_internal = state.config.internal_addr.is_some();
    let scope = move |req: axum::extract::Request, next: axum::middleware::Next| async move {
        let path = req.uri().path();
        let internal = path.starts_with("/api/internal/");
        let served = match listener {
            Listener::Public => !(separate_internal && internal),
            Listener::Internal => internal || path == "/healthz",
        };
        if served {
            next.run(req).await
        } else {
            axum::response::IntoResponse::into_response(ApiError::NotFound("route"))
        }
    };
    api.merge(SwaggerUi::new("/api/docs").url("/api/openapi.json", openapi))
        .fallback(web::fallback)
        .layer(axum::middleware::from_fn_with_state(state.clone(), list_cache::layer))
        .layer(axum::middleware::from_fn_with_state(state.clone(), idempotency::layer))
        .layer(axum::middleware::from_fn(telemetry::track))
        .layer(axum::middleware::from_fn_with_state(security, security::headers))
        .layer(TraceLayer::new_for_http())
        .layer(SetSensitiveRequestHeadersLayer::new(SENSITIVE_HEADERS))
        .layer(SetSensitiveResponseHeadersLayer::new([header::SET_COOKIE]))
        .layer(axum::middleware::from_fn(scope))
        .with_state(state)
}

/// The OpenAPI document, for code generation (`proto-trainer openapi`). It describes every
/// route, the demo-only ones included.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes::split(true).1
}

/// Connects to the database, migrates it, and serves until `shutdown` resolves; in-flight
/// requests finish first, then background work in flight (within `SHUTDOWN_GRACE_MS`).
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let store = store::Store::connect(&config.database_url).await?;
    store.migrate().await?;
    run_with_store(config, store, listener, shutdown).await
}

/// [`run`] on a store the caller opened and migrated: the product binary shares it with a voice
/// agent in the same process, whose call ends then wake this service's graders at once. The
/// store is closed when serving ends.
pub async fn run_with_store(
    config: Config,
    store: store::Store,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if config.demo_mode {
        tracing::warn!("DEMO_MODE is on: anyone can sign in as a seeded demo user. Never run this in production.");
    }
    telemetry::prometheus();
    auth::limit_password_hashing(config.password_hash_concurrency);
    let grace = Duration::from_millis(u64::from(config.shutdown_grace_ms));
    // The internal and metrics listeners are bound before anything is served, so a taken
    // address stops the start instead of leaving a service without its agents or its scraper.
    let internal_listener = match config.internal_addr {
        Some(addr) => Some(TcpListener::bind(addr).await.with_context(|| format!("binding INTERNAL_ADDR {addr}"))?),
        None => None,
    };
    let metrics_listener = match config.metrics_addr {
        Some(addr) => Some(TcpListener::bind(addr).await.with_context(|| format!("binding METRICS_ADDR {addr}"))?),
        None => None,
    };
    let state = AppState::new(store.clone(), config)?;
    let stop = CancellationToken::new();
    let mut background = tokio::task::JoinSet::new();
    background.spawn(housekeeping(state.clone(), stop.clone()));
    background.spawn(webhooks::dispatch(state.clone(), stop.clone()));
    background.spawn(jobs::run(state.clone(), stop.clone()));
    background.spawn(jobs::housekeeping(state.clone(), stop.clone()));
    background.spawn(telemetry::sample_gauges(store.clone(), state.config.voice.recordings_dir.clone(), stop.clone()));
    // One shutdown signal for every listener.
    let quit = CancellationToken::new();
    tokio::spawn({
        let quit = quit.clone();
        async move {
            shutdown.await;
            quit.cancel();
        }
    });
    let mut listeners = tokio::task::JoinSet::new();
    if let Some(internal) = internal_listener {
        tracing::info!(addr = %internal.local_addr()?, "internal API listening");
        let app = app_on(state.clone(), Listener::Internal).into_make_service_with_connect_info::<SocketAddr>();
        let quit = quit.clone();
        listeners.spawn(async move { axum::serve(internal, app).with_graceful_shutdown(quit.cancelled_owned()).await });
    }
    if let Some(metrics) = metrics_listener {
        tracing::info!(addr = %metrics.local_addr()?, "metrics listening");
        listeners.spawn(telemetry::serve_metrics(metrics, quit.clone().cancelled_owned()));
    }
    tracing::info!(addr = %listener.local_addr()?, "admin service listening");
    let served = axum::serve(listener, app(state).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(quit.clone().cancelled_owned())
        .await;
    // The other listeners stop with the same signal (or already failed: keep their error).
    let mut served = served.map_err(anyhow::Error::from);
    while let Some(done) = listeners.join_next().await {
        if let Ok(Err(e)) | Err(e) = done.map_err(std::io::Error::other) {
            tracing::error!(error = %e, "a listener failed");
            served = served.and(Err(e.into()));
        }
    }
    // Drain: every worker stops taking work and finishes what it holds (a grading, an e-mail, a
    // webhook batch, a sweep), within the grace period. What is still running then is dropped;
    // its lease runs out and another replica, or the next start, takes it over.
    stop.cancel();
    let drained = tokio::time::timeout(grace, async { while background.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            grace_ms = grace.as_millis() as u64,
            "background work did not finish in the grace period; its leases will expire"
        );
        background.shutdown().await;
    }
    served?;
    store.close().await;
    Ok(())
}

/// Forgets expired login sessions and finished rate-limit windows, every few minutes, until
/// `stop` is cancelled (between rounds).
async fn housekeeping(state: AppState, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(300));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let now = store::Timestamp::now();
        let idle_ms = i64::from(state.config.session_idle_minutes) * 60_000;
        if let Err(e) = state.store.purge_auth_sessions(now, idle_ms).await {
            tracing::warn!(error = %e, "purging expired sessions");
        }
        // Idempotency keys are honoured for a day.
        if let Err(e) =
            state.store.purge_idempotency_keys(store::Timestamp::from_millis(now.millis() - 86_400_000)).await
        {
            tracing::warn!(error = %e, "purging idempotency keys");
        }
        // Finished jobs are kept a week, for operations to look into.
        if let Err(e) = state.store.purge_jobs(store::Timestamp::from_millis(now.millis() - 7 * 86_400_000)).await {
            tracing::warn!(error = %e, "purging finished jobs");
        }
        // The longest window is an hour; older counters can no longer matter.
        if let Err(e) = state.store.purge_rate_limits(store::Timestamp::from_millis(now.millis() - 86_400_000)).await {
            tracing::warn!(error = %e, "purging rate-limit windows");
        }
    }
}
