//! Users of the caller's account, the counselor type-ahead (`?role=counselor&q=`), and user
//! management by account admins (role, deactivation, password reset).

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use store::{NewUser, Role, User, UserFilter, UserPatch};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth;
use crate::error::{ApiError, ErrorBody, Result};
use crate::extract::{IdPath, Json, Query};
use crate::identity::Actor;
use store::UserId;

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

/// A new user and, for an account admin, the one-time password to hand them (shown this once;
/// they choose their own at first sign-in, within `ONE_TIME_PASSWORD_HOURS`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedUser {
    #[serde(flatten)]
    pub user: User,
    /// Only in an account admin's answer: a supervisor who adds a counselor does not learn the
    /// counselor's password (they could sign in as them); the admin hands one out with a
    /// password reset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temporary_password: Option<String>,
}

/// Creates a user with a one-time password. Supervisors add counselors; only account admins add
/// supervisors and admins, and only they see the one-time password.
#[utoipa::path(post, path = "/api/users", tag = "users", request_body = NewUser,
    responses((status = 201, body = CreatedUser), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create_user(
    State(state): State<AppState>,
    actor: Actor,
    Json(input): Json<NewUser>,
) -> Result<(StatusCode, Json<CreatedUser>)> {
    actor.require_supervisor()?;
    if input.role != Role::Counselor {
        actor.require_admin()?;
    }
    let temporary_password = auth::one_time_password();
    let hash = auth::hash_password(temporary_password.clone()).await?;
    let audit = store::Audit::new(Some(actor.account_id), Some(actor.user_id), "user.created")
        .details(serde_json::json!({ "role": input.role }));
    let expires = auth::one_time_password_expiry(&state.config);
    let user = state.store.create_user_with_password(actor.account_id, input, &hash, Some(expires), &audit).await?;
    let temporary_password = (actor.role == Role::Admin).then_some(temporary_password);
    Ok((StatusCode::CREATED, Json(CreatedUser { user, temporary_password })))
}

#[utoipa::path(get, path = "/api/users/{id}", tag = "users", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = User), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_user(State(state): State<AppState>, actor: Actor, IdPath(id): IdPath<UserId>) -> Result<Json<User>> {
    actor.require_sees(id, "user")?;
    Ok(Json(state.store.user(actor.account_id, id).await?))
}

/// Changes a user's name, role, active flag or external id (account admins). A role change or
/// deactivation ends the user's sessions; the last active admin cannot be demoted (409).
#[utoipa::path(patch, path = "/api/users/{id}", tag = "users", params(("id" = uuid::Uuid, Path)), request_body = UserPatch,
    responses((status = 200, body = User), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_user(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath<UserId>,
    Json(patch): Json<UserPatch>,
) -> Result<Json<User>> {
    actor.require_admin()?;
    // Role and activity changes are audited in the change's transaction.
    let audit = store::Audit::new(Some(actor.account_id), Some(actor.user_id), "user.updated");
    let user = state.store.update_user(actor.account_id, id, &patch, &audit).await?;
    Ok(Json(user))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordReset {
    /// The user's new one-time password (shown this once; it signs in until it expires).
    pub temporary_password: String,
}

/// Resets a user's password to a one-time password, valid for `ONE_TIME_PASSWORD_HOURS`, and
/// ends their sessions (account admins).
#[utoipa::path(post, path = "/api/users/{id}/password-reset", tag = "users", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = PasswordReset), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn reset_password(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath<UserId>,
) -> Result<Json<PasswordReset>> {
    actor.require_admin()?;
    let user = state.store.user(actor.account_id, id).await?;
    if user.is_demo {
        return Err(ApiError::validation("id", "demo users sign in through the demo switcher only"));
    }
    let temporary_password = auth::one_time_password();
    let hash = auth::hash_password(temporary_password.clone()).await?;
    let audit = store::Audit::new(Some(actor.account_id), Some(actor.user_id), "password.reset").target("user", id);
    let expires = auth::one_time_password_expiry(&state.config);
    state.store.set_password(actor.account_id, id, &hash, Some(expires), None, &audit).await?;
    Ok(Json(PasswordReset { temporary_password }))
}
