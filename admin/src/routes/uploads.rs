//! Document uploads and the LLM work on them (being written): account policies, scenario
//! evaluator context files, counselor documentation review, text extraction and scenario
//! generation.

use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

/// Adds this module's routes.
pub fn register(router: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    router
}
