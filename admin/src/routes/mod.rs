//! The route table. Every API route is registered here through utoipa-axum, so the router and
//! the OpenAPI document cannot disagree.

use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub mod accounts;
pub mod assignments;
pub mod livekit;
pub mod ops;
pub mod scenarios;
pub mod sessions;
pub mod users;

#[derive(OpenApi)]
#[openapi(
    info(title = "Proto Trainer API", description = "Crisis-line counselor training: scenarios, assignments, practice sessions, evaluations."),
    tags(
        (name = "accounts", description = "Organisations and their category list"),
        (name = "users", description = "Counselors, supervisors, account admins"),
        (name = "scenarios", description = "Caller personas and grading guidance"),
        (name = "assignments", description = "Scenarios given to counselors"),
        (name = "sessions", description = "Practice attempts and transcripts"),
        (name = "ops", description = "Health and metrics"),
    )
)]
struct ApiDoc;

/// The API routes (no UI, no middleware) and their OpenAPI document.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(accounts::list_accounts, accounts::create_account))
        .routes(routes!(accounts::list_categories, accounts::add_category))
        .routes(routes!(users::list_users, users::create_user))
        .routes(routes!(users::get_user))
        .routes(routes!(scenarios::list_scenarios, scenarios::create_scenario))
        .routes(routes!(scenarios::get_scenario, scenarios::update_scenario, scenarios::delete_scenario))
        .routes(routes!(scenarios::promote_scenario))
        .routes(with_upload_limit(routes!(scenarios::import_scenarios)))
        .routes(routes!(assignments::list_assignments, assignments::create_assignments))
        .routes(routes!(assignments::get_assignment, assignments::patch_assignment, assignments::delete_assignment))
        .routes(routes!(sessions::list_sessions))
        .routes(routes!(sessions::get_session))
        .routes(routes!(livekit::voice_token))
}

/// Raises the body limit for an upload route to [`crate::MAX_UPLOAD_BYTES`]; every other route
/// keeps the default (2 MB).
fn with_upload_limit(
    (schemas, paths, method): utoipa_axum::router::UtoipaMethodRouter<AppState>,
) -> utoipa_axum::router::UtoipaMethodRouter<AppState> {
    (schemas, paths, method.layer(axum::extract::DefaultBodyLimit::max(crate::MAX_UPLOAD_BYTES)))
}
