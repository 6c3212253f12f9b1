//! Assignments: single and bulk creation, state transitions, deletion.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use store::{
    Assignment, AssignmentFilter, AssignmentPatch, AssignmentReport, AssignmentStatus, NewAssignment, Timestamp,
};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ErrorBody, Result};
use crate::extract::{IdPath, Json, Query};
use crate::identity::Actor;
use store::{AssignmentId, ScenarioId, UserId};

#[utoipa::path(get, path = "/api/assignments", tag = "assignments", params(AssignmentFilter),
    responses((status = 200, body = Vec<Assignment>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list_assignments(
    State(state): State<AppState>,
    actor: Actor,
    Query(mut filter): Query<AssignmentFilter>,
) -> Result<Json<Vec<Assignment>>> {
    if !actor.role.is_supervisor() {
        filter.counselor_id = Some(actor.user_id);
    }
    Ok(Json(state.store.list_assignments(actor.account_id, &filter).await?))
}

/// One assignment (`scenarioId` + `counselorId`), or many: every scenario of `scenarioIds` for
/// every counselor of `counselorIds` (at most 500 pairs), answered with a partial-success report.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateAssignments {
    #[schema(value_type = Option<Uuid>)]
    pub scenario_id: Option<ScenarioId>,
    #[schema(value_type = Option<Uuid>)]
    pub counselor_id: Option<UserId>,
    #[schema(value_type = Option<Vec<Uuid>>)]
    pub scenario_ids: Option<Vec<ScenarioId>>,
    #[schema(value_type = Option<Vec<Uuid>>)]
    pub counselor_ids: Option<Vec<UserId>>,
    pub due_at: Option<Timestamp>,
    pub notes: Option<String>,
}

#[utoipa::path(post, path = "/api/assignments", tag = "assignments", request_body = CreateAssignments,
    responses(
        (status = 201, description = "single assignment created", body = Assignment),
        (status = 200, description = "bulk request: per-pair report", body = AssignmentReport),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_assignments(
    State(state): State<AppState>,
    actor: Actor,
    Json(input): Json<CreateAssignments>,
) -> Result<Response> {
    actor.require_supervisor()?;
    let bulk = input.scenario_ids.is_some() || input.counselor_ids.is_some();
    if bulk {
        let scenario_ids: Vec<ScenarioId> =
            input.scenario_ids.unwrap_or_default().into_iter().chain(input.scenario_id).collect();
        let counselor_ids: Vec<UserId> =
            input.counselor_ids.unwrap_or_default().into_iter().chain(input.counselor_id).collect();
        let report = state
            .store
            .bulk_assign(
                actor.account_id,
                Some(actor.user_id),
                &scenario_ids,
                &counselor_ids,
                input.due_at,
                input.notes.as_deref(),
            )
            .await?;
        return Ok((StatusCode::OK, Json(report)).into_response());
    }
    let (Some(scenario_id), Some(counselor_id)) = (input.scenario_id, input.counselor_id) else {
        return Err(ApiError::validation(
            "scenarioId",
            "give scenarioId and counselorId, or scenarioIds and counselorIds",
        ));
    };
    let new = NewAssignment { scenario_id, counselor_id, due_at: input.due_at, notes: input.notes };
    let assignment = state.store.create_assignment(actor.account_id, Some(actor.user_id), &new).await?;
    Ok((StatusCode::CREATED, Json(assignment)).into_response())
}

async fn visible(state: &AppState, actor: &Actor, id: AssignmentId) -> Result<Assignment> {
    let assignment = state.store.assignment(actor.account_id, id).await?;
    actor.require_sees(assignment.counselor_id, "assignment")?;
    Ok(assignment)
}

#[utoipa::path(get, path = "/api/assignments/{id}", tag = "assignments", params(("id" = Uuid, Path)),
    responses((status = 200, body = Assignment), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_assignment(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath<AssignmentId>,
) -> Result<Json<Assignment>> {
    Ok(Json(visible(&state, &actor, id).await?))
}

/// Changes status, due date or notes. A counselor may only start their own assignment
/// (`status: in_progress`); supervisors edit due date and notes and reset an abandoned attempt
/// (`in_progress -> pending`). Completion comes from the evaluation, never from here. A due
/// date already past is refused (422).
#[utoipa::path(patch, path = "/api/assignments/{id}", tag = "assignments", params(("id" = Uuid, Path)),
    request_body = AssignmentPatch,
    responses((status = 200, body = Assignment), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn patch_assignment(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath<AssignmentId>,
    Json(patch): Json<AssignmentPatch>,
) -> Result<Json<Assignment>> {
    visible(&state, &actor, id).await?;
    if !actor.role.is_supervisor() {
        let only_start =
            patch.status == Some(AssignmentStatus::InProgress) && patch.due_at.is_none() && patch.notes.is_none();
        if !only_start {
            return Err(ApiError::Forbidden("counselors may only start their own assignments"));
        }
    }
    let reset = (patch.status == Some(AssignmentStatus::Pending))
        .then(|| store::Audit::new(Some(actor.account_id), Some(actor.user_id), "assignment.reset"));
    let assignment = state.store.patch_assignment(actor.account_id, id, &patch, reset.as_ref()).await?;
    Ok(Json(assignment))
}

/// Unassigns: deletes an assignment without attempts; one with practice sessions answers 409
/// (its attempts are a training record: reset or leave it instead).
#[utoipa::path(delete, path = "/api/assignments/{id}", tag = "assignments", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_assignment(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath<AssignmentId>,
) -> Result<StatusCode> {
    actor.require_supervisor()?;
    state.store.delete_assignment(actor.account_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
