//! Calibration routes (supervisors): review a session's evaluation with overrides, read the
//! reviews, the account's AI-vs-supervisor agreement report, and export a reviewed session as a
//! golden case after a personal-details review.

use axum::extract::State;
use store::{Evaluation, Review};

use crate::AppState;
use crate::calibration::{self, AgreementReport, GoldenCase, GoldenDraft, GoldenExportInput, ReportQuery, ReviewInput};
use crate::error::{ApiError, ErrorBody, Result};
use crate::extract::{IdPath, Json, Query};
use crate::identity::Actor;
use store::SessionId;

/// Reviews the session's evaluation: overrides of check answers, ratings and flags, each with a
/// reason (none: the AI's answer is confirmed). Stored beside the AI's answer, never over it, and
/// audited. Answers the reviewed evaluation (what the counselor now sees).
#[utoipa::path(post, path = "/api/sessions/{id}/review", tag = "calibration", params(("id" = uuid::Uuid, Path)),
    request_body = ReviewInput,
    responses((status = 200, body = Evaluation), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn review_session(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath<SessionId>,
    Json(input): Json<ReviewInput>,
) -> Result<Json<Evaluation>> {
    Ok(Json(calibration::review_session(&state, &actor, id, input).await?))
}

/// The reviews of the session's evaluation, oldest first, each with its overrides (the AI's
/// value beside the supervisor's).
#[utoipa::path(get, path = "/api/sessions/{id}/reviews", tag = "calibration", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Vec<Review>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_reviews(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath<SessionId>,
) -> Result<Json<Vec<Review>>> {
    actor.require_supervisor()?;
    let session = actor.session(&state.store, id).await?;
    Ok(Json(state.store.reviews(&session).await?))
}

/// AI vs supervisor agreement over the evaluations reviewed in a period: per check and criterion
/// (kappa, AC1, PABAK with bootstrap intervals; weighted kappa for ratings), score bands, flags,
/// and the checks where they disagree most.
#[utoipa::path(get, path = "/api/calibration/agreement", tag = "calibration", params(ReportQuery),
    responses((status = 200, body = AgreementReport), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn agreement_report(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<ReportQuery>,
) -> Result<Json<AgreementReport>> {
    Ok(Json(calibration::agreement_report(&state, &actor, &query).await?))
}

/// The draft golden case of a reviewed session: the transcript with names, numbers, e-mail
/// addresses and places masked, the supervisor-resolved labels, and what was masked. Nothing
/// is exported until the exporter confirms with POST.
#[utoipa::path(get, path = "/api/sessions/{id}/golden-case", tag = "calibration", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = GoldenDraft), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn golden_draft(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath<SessionId>,
) -> Result<Json<GoldenDraft>> {
    Ok(Json(calibration::golden_draft(&state, &actor, id).await?))
}

/// Exports the reviewed session as a golden case once the exporter confirms the personal-details
/// review (422 while a detectable detail is left). Audited; answers the case file's content.
#[utoipa::path(post, path = "/api/sessions/{id}/golden-case", tag = "calibration", params(("id" = uuid::Uuid, Path)),
    request_body = GoldenExportInput,
    responses((status = 200, body = GoldenCase), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn golden_export(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath<SessionId>,
    Json(input): Json<GoldenExportInput>,
) -> Result<Json<GoldenCase>> {
    if input.case.turns.len() > 2000 {
        return Err(ApiError::validation("case.turns", "too many turns"));
    }
    Ok(Json(calibration::golden_export(&state, &actor, id, input).await?))
}
