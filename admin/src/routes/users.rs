//! Users of the caller's account, and the counselor type-ahead (`?role=counselor&q=`).

use axum::extract::State;
use axum::http::StatusCode;
use store::{NewUser, Role, User, UserFilter};

use crate::AppState;
use crate::error::{ErrorBody, Result};
use crate::extract::{IdPath, Json, Query};
use crate::identity::Actor;

#[utoipa::path(get, path = "/api/users", tag = "users", params(UserFilter),
    responses((status = 200, body = Vec<User>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_users(
    State(state): State<AppState>,
    actor: Actor,
    Query(filter): Query<UserFilter>,
) -> Result<Json<Vec<User>>> {
    actor.require_supervisor()?;
    Ok(Json(state.store.list_users(actor.account_id, &filter).await?))
}

/// Creates a user. Supervisors add counselors; only account admins add supervisors and admins.
#[utoipa::path(post, path = "/api/users", tag = "users", request_body = NewUser,
    responses((status = 201, body = User), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_user(
    State(state): State<AppState>,
    actor: Actor,
    Json(input): Json<NewUser>,
) -> Result<(StatusCode, Json<User>)> {
    actor.require_supervisor()?;
    if input.role != Role::Counselor {
        actor.require_admin()?;
    }
    let user = state.store.create_user(actor.account_id, input).await?;
    state
        .store
        .audit(
            Some(actor.account_id),
            Some(actor.user_id),
            "user.created",
            Some(("user", user.id.to_string())),
            serde_json::json!({ "role": user.role }),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[utoipa::path(get, path = "/api/users/{id}", tag = "users", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = User), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_user(State(state): State<AppState>, actor: Actor, IdPath(id): IdPath) -> Result<Json<User>> {
    if !actor.sees_user(id) {
        return Err(crate::error::ApiError::NotFound("user"));
    }
    Ok(Json(state.store.user(actor.account_id, id).await?))
}
