//! The admin service: REST API, (later) evaluation and the external and internal APIs, and the
//! web UI. `run` serves it on a given listener until a shutdown future resolves, so tests and the
//! binary start it the same way.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;
use utoipa_swagger_ui::SwaggerUi;

pub mod config;
mod error;
mod extract;
mod identity;
mod import;
mod routes;
pub mod seed;
pub mod telemetry;
mod web;

pub use config::{Config, Secret};
pub use error::{ApiError, ErrorBody};
pub use identity::DEMO_USER_HEADER;

/// Uploads (CSV imports, documents) may be at most this large; PRODUCT.md's limit is 10 MB.
pub const MAX_UPLOAD_BYTES: usize = 10 * 1024 * 1024;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: store::Store,
    pub config: Arc<Config>,
}

/// The whole HTTP application: API, OpenAPI document and docs UI, metrics, web UI.
pub fn app(state: AppState) -> Router {
    let (api, openapi) = routes::api().split_for_parts();
    api.merge(SwaggerUi::new("/api/docs").url("/api/openapi.json", openapi))
        .fallback(web::fallback)
        .layer(axum::middleware::from_fn(telemetry::track))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The OpenAPI document, for code generation (`proto-trainer openapi`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes::api().split_for_parts().1
}

/// Connects to the database, migrates it, and serves until `shutdown` resolves; in-flight
/// requests finish first.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let store = store::Store::connect(&config.database_url).await?;
    store.migrate().await?;
    if config.demo_mode {
        tracing::warn!("DEMO_MODE is on: the x-user-id header acts as any user. Never run this in production.");
    }
    telemetry::prometheus();
    let state = AppState { store: store.clone(), config: Arc::new(config) };
    tracing::info!(addr = %listener.local_addr()?, "admin service listening");
    axum::serve(listener, app(state)).with_graceful_shutdown(shutdown).await?;
    store.close().await;
    Ok(())
}
