//! The account's flags for supervisors: the open ones to review, and the review itself (audited).

use axum::extract::State;
use store::{FlagFilter, FlagReview, SessionFlag};

use crate::AppState;
use crate::error::{ErrorBody, Result};
use crate::extract::{IdPath, Json, Query};
use crate::identity::Actor;
use store::FlagId;

/// Flags of the account: open ones (unless `status` says otherwise) most severe first, then
/// the longest waiting; each names the counselor and scenario.
#[utoipa::path(get, path = "/api/flags", tag = "flags", params(FlagFilter),
    responses((status = 200, body = Vec<SessionFlag>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_flags(
    State(state): State<AppState>,
    actor: Actor,
    Query(filter): Query<FlagFilter>,
) -> Result<Json<Vec<SessionFlag>>> {
    actor.require_supervisor()?;
    Ok(Json(state.store.list_flags(actor.account_id, &filter).await?))
}

/// Records a supervisor's review: `reviewed` or `dismissed` with a note (required for a high or
/// critical flag: 422), or `open` to reopen a closed flag (audited as `flag.reopened`).
#[utoipa::path(patch, path = "/api/flags/{id}", tag = "flags", params(("id" = uuid::Uuid, Path)), request_body = FlagReview,
    responses((status = 200, body = SessionFlag), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn review_flag(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath<FlagId>,
    Json(review): Json<FlagReview>,
) -> Result<Json<SessionFlag>> {
    actor.require_supervisor()?;
    let note = review.note.as_deref().map(str::trim).filter(|n| !n.is_empty());
    let action = if review.status == store::FlagStatus::Open { "flag.reopened" } else { "flag.reviewed" };
    let audit = store::Audit::new(Some(actor.account_id), Some(actor.user_id), action)
        .details(serde_json::json!({ "status": review.status, "note": note }));
    let flag = state.store.review_flag(actor.account_id, id, actor.user_id, &review, &audit).await?;
    Ok(Json(flag))
}

/// The open-flag count for the navigation's badge (supervisors).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlagCount {
    pub open: i64,
}

#[utoipa::path(get, path = "/api/flags/count", tag = "flags",
    responses((status = 200, body = FlagCount), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn count_flags(State(state): State<AppState>, actor: Actor) -> Result<Json<FlagCount>> {
    actor.require_supervisor()?;
    Ok(Json(FlagCount { open: state.store.open_flag_count(actor.account_id).await? }))
}
