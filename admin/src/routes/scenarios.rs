//! Scenarios: CRUD, promotion of one-time scenarios, and CSV import. Supervisors only: the
//! prompt and grading guidance are not for counselors' eyes.

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{StatusCode, header};
use serde::{Deserialize, Serialize};
use store::persona::{self, Medium};
use store::{Assignment, ImportReport, RiskProfile, Scenario, ScenarioFilter, ScenarioInput, ScenarioMode};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ErrorBody, Result};
use crate::extract::{IdPath, Json, Query};
use crate::identity::Actor;
use crate::import;
use store::ScenarioId;

#[utoipa::path(get, path = "/api/scenarios", tag = "scenarios", params(ScenarioFilter),
    responses((status = 200, body = Vec<Scenario>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_scenarios(
    State(state): State<AppState>,
    actor: Actor,
    Query(filter): Query<ScenarioFilter>,
) -> Result<Json<Vec<Scenario>>> {
    actor.require_supervisor()?;
    Ok(Json(state.store.list_scenarios(actor.account_id, &filter).await?))
}

/// A created scenario, with its assignment when a one-time scenario was assigned on creation.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioCreated {
    #[serde(flatten)]
    pub scenario: Scenario,
    pub assignment: Option<Assignment>,
}

#[utoipa::path(post, path = "/api/scenarios", tag = "scenarios", request_body = ScenarioInput,
    responses((status = 201, body = ScenarioCreated), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_scenario(
    State(state): State<AppState>,
    actor: Actor,
    Json(input): Json<ScenarioInput>,
) -> Result<(StatusCode, Json<ScenarioCreated>)> {
    actor.require_supervisor()?;
    let (scenario, assignment) = state.store.create_scenario(actor.account_id, Some(actor.user_id), &input).await?;
    Ok((StatusCode::CREATED, Json(ScenarioCreated { scenario, assignment })))
}

#[utoipa::path(get, path = "/api/scenarios/{id}", tag = "scenarios", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Scenario), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_scenario(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath<ScenarioId>,
) -> Result<Json<Scenario>> {
    actor.require_supervisor()?;
    Ok(Json(state.store.scenario(actor.account_id, id).await?))
}

/// Replaces a scenario. Its mode cannot change once assignments exist (409).
#[utoipa::path(put, path = "/api/scenarios/{id}", tag = "scenarios", params(("id" = uuid::Uuid, Path)),
    request_body = ScenarioInput,
    responses((status = 200, body = Scenario), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update_scenario(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath<ScenarioId>,
    Json(input): Json<ScenarioInput>,
) -> Result<Json<Scenario>> {
    actor.require_supervisor()?;
    Ok(Json(state.store.update_scenario(actor.account_id, id, &input).await?))
}

/// Deletes a scenario; one with assignments answers 409 and stays.
#[utoipa::path(delete, path = "/api/scenarios/{id}", tag = "scenarios", params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_scenario(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath<ScenarioId>,
) -> Result<StatusCode> {
    actor.require_supervisor()?;
    let audit = store::Audit::new(Some(actor.account_id), Some(actor.user_id), "scenario.deleted");
    state.store.delete_scenario(actor.account_id, id, &audit).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What the caller preview compiles: the persona and risk profile being edited.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CallerPreviewRequest {
    /// The caller persona (the scenario's `prompt`); empty: the free-practice caller.
    #[serde(default)]
    #[schema(max_length = 50000)]
    pub prompt: String,
    /// Chat or phone wording; default phone.
    #[serde(default)]
    pub mode: Option<ScenarioMode>,
    #[serde(default)]
    pub risk_profile: Option<RiskProfile>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallerPreview {
    /// The AI caller's instructions exactly as chat or voice would send them.
    pub instructions: String,
}

/// The AI caller's instructions that a persona and risk profile compile to, for the editor's
/// live preview (nothing is stored). An invalid profile answers 422 with the same per-field
/// problems a save would.
#[utoipa::path(post, path = "/api/scenarios/preview-caller", tag = "scenarios", request_body = CallerPreviewRequest,
    responses((status = 200, body = CallerPreview), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn preview_caller(actor: Actor, Json(input): Json<CallerPreviewRequest>) -> Result<Json<CallerPreview>> {
    actor.require_supervisor()?;
    if input.prompt.chars().count() > store::MAX_EVALUATOR_CONTEXT_CHARS {
        return Err(ApiError::validation("prompt", "must be at most 50000 characters"));
    }
    let profile = input
        .risk_profile
        .as_ref()
        .map(|p| p.validate("riskProfile"))
        .transpose()
        .map_err(|fields| ApiError::from(store::Error::Invalid(fields)))?;
    let medium = match input.mode.unwrap_or(ScenarioMode::Phone) {
        ScenarioMode::Chat => Medium::Chat,
        ScenarioMode::Phone => Medium::Voice,
    };
    Ok(Json(CallerPreview {
        instructions: persona::caller_instructions(Some(&input.prompt), profile.as_ref(), medium),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PromoteRequest {
    /// The user confirms they checked the scenario for personal details of the person it was
    /// written for; one-time scenarios often hold them.
    pub confirm_personal_details_reviewed: bool,
}

/// Turns a one-time scenario into a reusable one, after the personal-details warning.
#[utoipa::path(post, path = "/api/scenarios/{id}/promote", tag = "scenarios", params(("id" = uuid::Uuid, Path)),
    request_body = PromoteRequest,
    responses((status = 200, body = Scenario), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn promote_scenario(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath<ScenarioId>,
    Json(input): Json<PromoteRequest>,
) -> Result<Json<Scenario>> {
    actor.require_supervisor()?;
    if !input.confirm_personal_details_reviewed {
        return Err(ApiError::validation(
            "confirmPersonalDetailsReviewed",
            "one-time scenarios may hold personal details; confirm you reviewed it before making it reusable",
        ));
    }
    let audit = store::Audit::new(Some(actor.account_id), Some(actor.user_id), "scenario.promoted");
    let scenario = state.store.promote_scenario(actor.account_id, id, &audit).await?;
    Ok(Json(scenario))
}

/// Bulk import from CSV (a `text/csv` body, or a multipart form with a `file` field): at most 100
/// rows; columns `title, prompt, mode, category` and optionally `description, skills,
/// difficulty, estimated_time, relevant_policy_sections, evaluator_context`. Answers a per-row
/// report; duplicate titles (case-insensitive) are skipped and listed.
#[utoipa::path(post, path = "/api/scenarios/import", tag = "scenarios",
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = ImportReport), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn import_scenarios(State(state): State<AppState>, actor: Actor, req: Request) -> Result<Json<ImportReport>> {
    actor.require_supervisor()?;
    let bytes = upload_bytes(req).await?;
    let rows = import::parse_csv(&bytes)?;
    Ok(Json(state.store.import_scenarios(actor.account_id, Some(actor.user_id), rows).await?))
}

/// The uploaded file's bytes, from a raw body or a multipart `file` field.
async fn upload_bytes(req: Request) -> Result<Vec<u8>> {
    let content_type =
        req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let too_large = |e: &dyn std::fmt::Display| {
        let text = e.to_string();
        if text.contains("length limit") || text.contains("too large") {
            ApiError::PayloadTooLarge("upload larger than 10 MB".into())
        } else {
            ApiError::BadRequest(format!("could not read the upload: {text}"))
        }
    };
    if content_type.starts_with("multipart/form-data") {
        let mut form = Multipart::from_request(req, &()).await.map_err(|e| ApiError::BadRequest(e.body_text()))?;
        while let Some(field) = form.next_field().await.map_err(|e| too_large(&e))? {
            if field.name() == Some("file") {
                return Ok(field.bytes().await.map_err(|e| too_large(&e))?.to_vec());
            }
        }
        Err(ApiError::validation("file", "the form has no `file` field"))
    } else if content_type.starts_with("text/csv") || content_type.starts_with("text/plain") {
        let body = axum::body::to_bytes(req.into_body(), crate::MAX_UPLOAD_BYTES).await.map_err(|e| too_large(&e))?;
        Ok(body.to_vec())
    } else {
        Err(ApiError::UnsupportedMediaType("send text/csv, or multipart/form-data with a `file` field".into()))
    }
}
