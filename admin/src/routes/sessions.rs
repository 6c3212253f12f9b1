//! Practice sessions: lists (free practice, assigned, all) and one session with its transcript.

use axum::extract::State;
use store::{Session, SessionDetail, SessionFilter};

use crate::AppState;
use crate::error::{ApiError, ErrorBody, Result};
use crate::extract::{IdPath, Json, Query};
use crate::identity::Actor;

/// Sessions, newest first. `type` = free_practice (default) | assigned | all. Counselors see
/// their own; supervisors see the account's and may filter by `userId`.
#[utoipa::path(get, path = "/api/sessions", tag = "sessions", params(SessionFilter),
    responses((status = 200, body = Vec<Session>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list_sessions(
    State(state): State<AppState>,
    actor: Actor,
    Query(mut filter): Query<SessionFilter>,
) -> Result<Json<Vec<Session>>> {
    if !actor.role.is_supervisor() {
        filter.user_id = Some(actor.user_id);
    }
    Ok(Json(state.store.list_sessions(actor.account_id, &filter).await?))
}

#[utoipa::path(get, path = "/api/sessions/{id}", tag = "sessions", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = SessionDetail), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_session(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath,
) -> Result<Json<SessionDetail>> {
    let detail = state.store.session_detail(actor.account_id, id).await?;
    if !actor.sees_user(detail.session.user_id) {
        return Err(ApiError::NotFound("session"));
    }
    Ok(Json(detail))
}
