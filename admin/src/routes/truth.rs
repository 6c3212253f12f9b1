//! Grading against a scenario's clinical truth: the counselor's call record after hanging up,
//! and a supervisor's review of the suggestions stored with an evaluation.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use store::{CallRecord, CallRecordInput, GraderAudit, ScenarioId, SessionId, Suggestion};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, ErrorBody, Result};
use crate::extract::{IdPath, Json};
use crate::identity::Actor;

/// Files the call record of the counselor's own session, as on a real line: the risk level
/// they judged, the kinds of facts they noted, the actions taken or planned — or `skipped`.
/// It can be changed until grading reads it (then 409). A scenario with a risk profile is
/// graded against it.
#[utoipa::path(put, path = "/api/sessions/{id}/call-record", tag = "sessions", params(("id" = Uuid, Path)),
    request_body = CallRecordInput,
    responses((status = 200, body = CallRecord), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn file_call_record(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath<SessionId>,
    Json(input): Json<CallRecordInput>,
) -> Result<Json<CallRecord>> {
    Ok(Json(crate::truth::file_call_record(&state, &actor, id, &input).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SuggestionEdit {
    /// One or two sentences (1 to 300 characters).
    #[schema(min_length = 1, max_length = 300, pattern = r"\S")]
    pub text: String,
}

/// A supervisor edits a suggestion of an evaluation (audited; the evaluator's text is kept).
#[utoipa::path(patch, path = "/api/evaluation-suggestions/{id}", tag = "calibration", params(("id" = Uuid, Path)),
    request_body = SuggestionEdit,
    responses((status = 200, body = Suggestion), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn edit_suggestion(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath<Uuid>,
    Json(edit): Json<SuggestionEdit>,
) -> Result<Json<Suggestion>> {
    let edited = crate::truth::review_suggestion(&state, &actor, id, Some(&edit.text)).await?;
    edited.map(Json).ok_or(ApiError::NotFound("suggestion"))
}

/// A supervisor removes a suggestion of an evaluation (audited).
#[utoipa::path(delete, path = "/api/evaluation-suggestions/{id}", tag = "calibration", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove_suggestion(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath<Uuid>,
) -> Result<StatusCode> {
    crate::truth::review_suggestion(&state, &actor, id, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What the graders answered for a session's evaluation, exactly as received, with the model
/// and the prompt's version: the rubric grader's and, when one was made, the truth grader's
/// (uncovered facts and suggestions). Supervisors' audit; 404 before the evaluation.
#[utoipa::path(get, path = "/api/sessions/{id}/grader-output", tag = "calibration", params(("id" = Uuid, Path)),
    responses((status = 200, body = GraderAudit), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn grader_output(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath<SessionId>,
) -> Result<Json<GraderAudit>> {
    Ok(Json(crate::truth::grader_output(&state, &actor, id).await?))
}

/// Where the AI caller departed from the scenario's risk profile across its graded sessions and
/// test runs (a fact withheld when its rule was met, a true fact denied, a gated fact
/// volunteered): the counts and each deviation with its fact, rule, session and turns.
/// Supervisors.
#[utoipa::path(get, path = "/api/scenarios/{id}/fidelity", tag = "scenarios", params(("id" = Uuid, Path)),
    responses((status = 200, body = crate::truth::ScenarioFidelity), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn scenario_fidelity(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath<ScenarioId>,
) -> Result<Json<crate::truth::ScenarioFidelity>> {
    Ok(Json(crate::truth::scenario_fidelity(&state, &actor, id).await?))
}

/// The center's risk levels, in order from least to most severe, each with the standard level it
/// maps to (which grading reads).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RiskLevels {
    /// From least to most severe; 1 to 12 levels (more answer 422 naming `levels`).
    // 12 is `store::RISK_LEVELS_MAX`, which the domain enforces; `hostile_risk_levels` holds
    // the document to it.
    #[schema(min_items = 1, max_items = 12)]
    pub levels: Vec<store::CenterRiskLevel>,
}

/// The account's risk levels (the four standard levels until an admin sets its own). Everyone
/// signed in reads them: the forms and feedback show the center's labels.
#[utoipa::path(get, path = "/api/accounts/risk-levels", tag = "accounts",
    responses((status = 200, body = RiskLevels), (status = 401, body = ErrorBody)))]
pub async fn get_risk_levels(State(state): State<AppState>, actor: Actor) -> Result<Json<RiskLevels>> {
    Ok(Json(RiskLevels { levels: state.store.risk_levels(actor.account_id).await? }))
}

/// Sets the account's risk levels (account admins; audited). 422 per field: an empty or
/// duplicate label, levels out of order; 409 when a level is in use (the only one mapped to a
/// standard level that a scenario's profile expects or a filed call record carries).
#[utoipa::path(put, path = "/api/accounts/risk-levels", tag = "accounts", request_body = RiskLevels,
    responses((status = 200, body = RiskLevels), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_risk_levels(
    State(state): State<AppState>,
    actor: Actor,
    Json(input): Json<RiskLevels>,
) -> Result<Json<RiskLevels>> {
    actor.require_admin()?;
    let audit = store::Audit::new(Some(actor.account_id), Some(actor.user_id), "account.risk_levels_set")
        .target("account", actor.account_id);
    Ok(Json(RiskLevels { levels: state.store.set_risk_levels(actor.account_id, &input.levels, &audit).await? }))
}
