//! Signing in and out: password login, the current user (`/api/me`), password change, and the
//! demo user switcher (a route that exists only with `DEMO_MODE=true`).

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use store::{Account, Audit, User};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{self, COOKIE, ClientInfo, Login, SECURE_COOKIE};
use crate::error::{ApiError, ErrorBody, Result};
use crate::extract::Json;
use crate::identity::{SignedIn, check_origin, session_token};
use store::UserId;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// The signed-in user, their account, and the CSRF token to send as `x-csrf-token` on every
/// state-changing request.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionInfo {
    pub user: User,
    pub account: Account,
    pub csrf_token: String,
    /// The user signed in with a one-time password and must set their own before anything else.
    pub must_change_password: bool,
    /// Whether the demo user switcher is on (never in production).
    pub demo_mode: bool,
}

async fn session_info(
    state: &AppState,
    user: User,
    csrf_token: String,
    must_change_password: bool,
) -> Result<SessionInfo> {
    let account = state.store.account(user.account_id).await?;
    Ok(SessionInfo { user, account, csrf_token, must_change_password, demo_mode: state.config.demo_mode })
}

fn cookie_name(state: &AppState) -> &'static str {
    if state.config.cookie_secure { SECURE_COOKIE } else { COOKIE }
}

fn set_cookie(state: &AppState, value: &str, max_age_secs: u64) -> Result<HeaderValue> {
    let secure = if state.config.cookie_secure { "; Secure" } else { "" };
    let cookie =
        format!("{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}", cookie_name(state));
    HeaderValue::from_str(&cookie).map_err(|e| ApiError::Internal(e.into()))
}

async fn signed_in_response(state: &AppState, login: Login) -> Result<Response> {
    let cookie = set_cookie(state, &login.token, u64::from(state.config.session_max_hours) * 3600)?;
    let info = session_info(state, login.user, login.csrf_token, login.must_change_password).await?;
    let mut response = Json(info).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Signs in with e-mail and password and sets the session cookie (a new session every time).
/// Rate limited per client address and per account.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = SessionInfo), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    Json(input): Json<LoginRequest>,
) -> Result<Response> {
    // Login CSRF: another site must not sign a browser into an account of its choosing.
    check_origin(&headers, &state)?;
    let previous = session_token(&headers, state.config.cookie_secure);
    let login = auth::login(&state, &input.email, input.password, &client, previous.as_deref()).await?;
    signed_in_response(&state, login).await
}

/// Ends the session and clears the cookie.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth",
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn logout(State(state): State<AppState>, signed_in: SignedIn) -> Result<Response> {
    let audit = Audit::new(Some(signed_in.actor.account_id), Some(signed_in.actor.user_id), "logout");
    state.store.delete_auth_session(&signed_in.session.id, Some(&audit)).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::SET_COOKIE, set_cookie(&state, "", 0)?);
    Ok(response)
}

/// The signed-in user, their account and the session's CSRF token.
#[utoipa::path(get, path = "/api/me", tag = "auth",
    responses((status = 200, body = SessionInfo), (status = 401, body = ErrorBody)))]
pub async fn me(State(state): State<AppState>, signed_in: SignedIn) -> Result<Response> {
    let session = signed_in.session;
    let info = session_info(&state, session.user, session.csrf_token, session.must_change_password).await?;
    let mut response = Json(info).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    /// At least 12 characters.
    pub new_password: String,
}

/// Changes the signed-in user's password; their other sessions end.
#[utoipa::path(post, path = "/api/auth/password", tag = "auth", request_body = PasswordChange,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn change_password(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Json(input): Json<PasswordChange>,
) -> Result<StatusCode> {
    let actor = signed_in.actor;
    let credentials = state.store.credentials(&signed_in.session.user.email).await?;
    let hash = credentials.and_then(|c| c.password_hash);
    if !auth::verify_password(input.current_password.clone(), hash).await {
        return Err(ApiError::validation("currentPassword", "is not the current password"));
    }
    auth::check_password_rules("newPassword", &input.new_password)?;
    if input.new_password == input.current_password {
        return Err(ApiError::validation("newPassword", "must differ from the current password"));
    }
    let hash = auth::hash_password(input.new_password).await?;
    let audit =
        Audit::new(Some(actor.account_id), Some(actor.user_id), "password.changed").target("user", actor.user_id);
    state.store.set_password(actor.account_id, actor.user_id, &hash, None, Some(&signed_in.session.id), &audit).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The seeded demo users the switcher offers. Exists only with `DEMO_MODE=true`.
#[utoipa::path(get, path = "/api/auth/demo-users", tag = "auth",
    responses((status = 200, body = Vec<User>), (status = 404, description = "DEMO_MODE is off")))]
pub async fn demo_users(State(state): State<AppState>) -> Result<Json<Vec<User>>> {
    Ok(Json(state.store.demo_users().await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DemoLogin {
    #[schema(value_type = Uuid)]
    pub user_id: UserId,
}

/// Signs in as a seeded demo user without a password. Exists only with `DEMO_MODE=true`, and
/// only for users marked as demo users.
#[utoipa::path(post, path = "/api/auth/demo-login", tag = "auth", request_body = DemoLogin,
    responses((status = 200, body = SessionInfo), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn demo_login(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    Json(input): Json<DemoLogin>,
) -> Result<Response> {
    check_origin(&headers, &state)?;
    let ip = auth::limit_login_from(&state, &client).await?;
    let user = match state.store.user_by_id(input.user_id).await? {
        Some(user) if user.is_demo && user.active => user,
        _ => return Err(ApiError::NotFound("demo user")),
    };
    if let Some(old) = session_token(&headers, state.config.cookie_secure) {
        state.store.delete_auth_session(&auth::sha256_hex(&old), None).await?;
    }
    let audit = Audit::new(Some(user.account_id), Some(user.id), "login.demo").details(serde_json::json!({ "ip": ip }));
    let login = auth::start_session(&state, &user, false, &client, &audit).await?;
    signed_in_response(&state, login).await
}
