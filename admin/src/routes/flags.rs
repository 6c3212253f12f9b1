//! The account's flags for supervisors: the open ones to review, and the review itself (audited).

use axum::extract::State;
use store::{FlagFilter, FlagReview, SessionFlag};

use crate::AppState;
use crate::error::{ErrorBody, Result};
use crate::extract::{IdPath, Json, Query};
use crate::identity::Actor;
use store::FlagId;

/// Flags of the account, newest first; open ones unless `status` says otherwise.
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

/// Records a supervisor's review: `reviewed` or `dismissed` with a note (or `open` to reopen).
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
    let audit = store::Audit::new(Some(actor.account_id), Some(actor.user_id), "flag.reviewed")
        .details(serde_json::json!({ "status": review.status, "note": note }));
    let flag = state.store.review_flag(actor.account_id, id, actor.user_id, &review, &audit).await?;
    Ok(Json(flag))
}
