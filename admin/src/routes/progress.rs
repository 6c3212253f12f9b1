//! Progress over time: a counselor's own, or (supervisors) any counselor's or a cohort's.

use axum::extract::State;
use store::{Progress, ProgressQuery, Role};

use crate::AppState;
use crate::error::{ErrorBody, Result};
use crate::extract::{Json, Query};
use crate::identity::Actor;

/// Scores per evaluated session, each criterion's weekly average rating, first / best / latest
/// score per scenario, attempts and completion, flags and the truth figures, all as reviewed (a
/// supervisor's overrides applied, as the session page shows them). Counselors always get their
/// own; supervisors choose a counselor (`counselorId`), the cohort assigned a scenario
/// (`scenarioId`), or, with neither, every counselor of the account.
#[utoipa::path(get, path = "/api/progress", tag = "progress", params(ProgressQuery),
    responses((status = 200, body = Progress), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get_progress(
    State(state): State<AppState>,
    actor: Actor,
    Query(mut query): Query<ProgressQuery>,
) -> Result<Json<Progress>> {
    if actor.role == Role::Counselor {
        query = ProgressQuery { counselor_id: Some(actor.user_id), scenario_id: None };
    }
    Ok(Json(crate::evaluation::progress(&state, actor.account_id, &query).await?))
}
