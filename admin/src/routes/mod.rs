//! The route table. Every API route is registered here through utoipa-axum, so the router and
//! the OpenAPI document cannot disagree.

use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub mod accounts;
pub mod api_keys;
pub mod assignments;
pub mod audit;
pub mod auth;
pub mod calibration;
pub mod contract;
pub mod external;
pub mod flags;
pub mod internal;
pub mod livekit;
pub mod ops;
pub mod privacy;
pub mod progress;
pub mod scenarios;
pub mod sessions;
pub mod spend;
pub mod test_runs;
pub mod truth;
pub mod uploads;
pub mod users;
pub mod voice;
pub mod webhooks;

#[derive(OpenApi)]
#[openapi(
    info(title = "Proto Trainer API", description = "Crisis-line counselor training: scenarios, assignments, practice sessions, evaluations."),
    tags(
        (name = "auth", description = "Sign in and out; the current user and CSRF token"),
        (name = "accounts", description = "Organisations and their category list"),
        (name = "users", description = "Counselors, supervisors, account admins"),
        (name = "scenarios", description = "Caller personas and grading guidance"),
        (name = "assignments", description = "Scenarios given to counselors"),
        (name = "sessions", description = "Practice attempts, chat with the AI caller, evaluation and analysis"),
        (name = "recordings", description = "Voice call recordings (stereo Ogg/Opus: counselor left, caller right)"),
        (name = "policies", description = "Account policy documents the evaluator grades against"),
        (name = "calibration", description = "Supervisor reviews of AI evaluations, AI-vs-supervisor agreement, golden-case export"),
        (name = "flags", description = "Safety and consistency flags for supervisors to review"),
        (name = "progress", description = "Progress over time per counselor and cohort"),
        (name = "api-keys", description = "Partner API keys (account admins)"),
        (name = "webhooks", description = "Signed event deliveries to partner systems (account admins)"),
        (name = "internal", description = "For voice agents apart from the admin service (X-Internal-Service-Key, or a call's X-Session-Credential)"),
        (name = "external", description = "Partner API (X-API-Key; snake_case bodies, the contract partners already use)"),
        (name = "audit", description = "The account's audit trail (account admins)"),
        (name = "privacy", description = "Data retention and erasing a user (account admins)"),
        (name = "ops", description = "Health and metrics"),
    ),
    modifiers(&SecuritySchemes),
)]
struct ApiDoc;

/// How callers authenticate: the session cookie (plus `x-csrf-token` on changes), a partner API
/// key, or the internal service key.
struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components
            .add_security_scheme("session", SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("pt_session"))));
        components
            .add_security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))));
        components.add_security_scheme(
            "internal_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Internal-Service-Key"))),
        );
        components.add_security_scheme(
            "session_credential",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Session-Credential"))),
        );
    }
}

/// The API routes (no UI, no middleware) and their OpenAPI document. The demo user switcher
/// exists only when `demo` is on (the document always describes it).
pub fn api(demo: bool) -> OpenApiRouter<AppState> {
    let router = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(auth::change_password))
        .routes(routes!(accounts::list_accounts))
        .routes(routes!(accounts::list_categories, accounts::add_category))
        .routes(routes!(accounts::rename_category, accounts::delete_category))
        .routes(routes!(spend::get_budget, spend::set_budget))
        .routes(routes!(spend::get_spend))
        .routes(routes!(users::list_users, users::create_user))
        .routes(routes!(users::get_user, users::update_user))
        .routes(routes!(users::reset_password))
        .routes(routes!(api_keys::list_api_keys, api_keys::create_api_key))
        .routes(routes!(api_keys::revoke_api_key))
        .routes(routes!(scenarios::list_scenarios, scenarios::create_scenario))
        .routes(routes!(scenarios::get_scenario, scenarios::update_scenario, scenarios::delete_scenario))
        .routes(routes!(scenarios::promote_scenario))
        .routes(routes!(scenarios::preview_caller))
        .routes(routes!(test_runs::list_test_runs, test_runs::start_test_run))
        .routes(routes!(test_runs::rerun_all))
        .routes(with_upload_limit(routes!(scenarios::import_scenarios)))
        .routes(routes!(assignments::list_assignments, assignments::create_assignments))
        .routes(routes!(assignments::get_assignment, assignments::patch_assignment, assignments::delete_assignment))
        .routes(routes!(sessions::list_sessions, sessions::create_chat_session))
        .routes(routes!(sessions::get_session))
        .routes(routes!(sessions::post_message))
        .routes(routes!(sessions::evaluate))
        .routes(routes!(sessions::release_evaluation))
        .routes(routes!(sessions::analyze))
        .routes(routes!(sessions::report_flag))
        .routes(routes!(truth::file_call_record))
        .routes(routes!(truth::grader_output))
        .routes(routes!(truth::scenario_fidelity))
        .routes(routes!(truth::get_risk_levels, truth::set_risk_levels))
        .routes(routes!(truth::edit_suggestion, truth::remove_suggestion))
        .routes(routes!(calibration::review_session))
        .routes(routes!(calibration::list_reviews))
        .routes(routes!(calibration::agreement_report))
        .routes(routes!(calibration::golden_draft, calibration::golden_export))
        .routes(routes!(flags::list_flags))
        .routes(routes!(flags::count_flags))
        .routes(routes!(flags::review_flag))
        .routes(routes!(progress::get_progress))
        .routes(routes!(livekit::voice_token))
        .routes(routes!(external::list_scenarios, external::create_scenario))
        .routes(routes!(external::list_assignments, external::create_assignment))
        .routes(routes!(external::assignment_result))
        .routes(routes!(external::evaluate_assignment))
        .routes(routes!(external::assignment_transcript))
        .routes(routes!(webhooks::list_webhooks, webhooks::create_webhook))
        .routes(routes!(webhooks::delete_webhook))
        .routes(routes!(webhooks::list_deliveries))
        .routes(routes!(webhooks::send_test_event))
        .routes(routes!(internal::create_session))
        .routes(routes!(internal::append_transcript))
        .routes(routes!(internal::end_session))
        .routes(routes!(internal::call_setup))
        .routes(routes!(internal::call_end))
        .routes(routes!(internal::call_status))
        .routes(routes!(voice::end_session))
        .routes(routes!(voice::get_recording))
        .routes(routes!(voice::list_recordings))
        .routes(routes!(voice::voice_usage))
        .routes(routes!(audit::list_audit_events))
        .routes(routes!(privacy::get_retention, privacy::put_retention))
        .routes(routes!(privacy::erase_user));
    let router = uploads::register(router);
    if demo { router.routes(routes!(auth::demo_users)).routes(routes!(auth::demo_login)) } else { router }
}

/// The API router and its OpenAPI document, completed with the responses every route of a
/// kind answers ([`contract::complete`]).
pub fn split(demo: bool) -> (axum::Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = api(demo).split_for_parts();
    contract::complete(&mut doc);
    (router, doc)
}

/// Raises the body limit for an upload route to [`crate::MAX_UPLOAD_BYTES`]; every other route
/// keeps the default (2 MB).
/// Room for a multipart envelope around a file of [`crate::MAX_UPLOAD_BYTES`]; the file itself
/// is checked against the exact limit.
const MULTIPART_OVERHEAD: usize = 64 * 1024;

/// Raises the body limit of an upload route (every other route keeps the default 2 MB): the one
/// limit for every upload, CSV imports and documents alike.
pub(crate) fn with_upload_limit(
    (schemas, paths, method): utoipa_axum::router::UtoipaMethodRouter<AppState>,
) -> utoipa_axum::router::UtoipaMethodRouter<AppState> {
    (schemas, paths, method.layer(axum::extract::DefaultBodyLimit::max(crate::MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD)))
}
