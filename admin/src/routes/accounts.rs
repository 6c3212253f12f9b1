//! Accounts and their category list.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use store::{Account, User};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ErrorBody, Result};
use crate::extract::Json;
use crate::identity::Actor;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewAccount {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    /// The new account's first admin (every account needs one to manage it).
    pub admin_email: String,
    pub admin_name: String,
}

/// A new account, its first admin, and the admin's one-time password (shown this once).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionedAccount {
    pub account: Account,
    pub admin: User,
    pub temporary_password: String,
}

/// The caller's account (a list, for the prototype's shape; users see only their own account).
#[utoipa::path(get, path = "/api/accounts", tag = "accounts",
    responses((status = 200, body = Vec<Account>), (status = 401, body = ErrorBody)))]
pub async fn list_accounts(State(state): State<AppState>, actor: Actor) -> Result<Json<Vec<Account>>> {
    Ok(Json(vec![state.store.account(actor.account_id).await?]))
}

/// Creates another account (e.g. a new center of a network) with the default categories and its
/// first admin, who signs in with the one-time password answered here. Account admins only; the
/// caller gets no access to the new account.
#[utoipa::path(post, path = "/api/accounts", tag = "accounts", request_body = NewAccount,
    responses((status = 201, body = ProvisionedAccount), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create_account(
    State(state): State<AppState>,
    actor: Actor,
    Json(input): Json<NewAccount>,
) -> Result<(StatusCode, Json<ProvisionedAccount>)> {
    actor.require_admin()?;
    let provisioned = crate::auth::provision_account(
        &state.store,
        &input.name,
        &input.admin_email,
        &input.admin_name,
        None,
        Some((actor.account_id, actor.user_id)),
    )
    .await?;
    let temporary_password = provisioned.one_time_password.unwrap_or_default();
    Ok((
        StatusCode::CREATED,
        Json(ProvisionedAccount { account: provisioned.account, admin: provisioned.admin, temporary_password }),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Categories {
    /// The account's scenario categories, in display order; validation accepts exactly these.
    pub categories: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewCategory {
    #[schema(pattern = r"^[A-Za-z0-9_-]([A-Za-z0-9_ -]{0,62}[A-Za-z0-9_-])?$")]
    pub name: String,
}

#[utoipa::path(get, path = "/api/categories", tag = "accounts",
    responses((status = 200, body = Categories), (status = 401, body = ErrorBody)))]
pub async fn list_categories(State(state): State<AppState>, actor: Actor) -> Result<Json<Categories>> {
    Ok(Json(Categories { categories: state.store.categories(actor.account_id).await? }))
}

/// Adds a category to the account's list (account admins only).
#[utoipa::path(post, path = "/api/categories", tag = "accounts", request_body = NewCategory,
    responses((status = 201, body = Categories), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add_category(
    State(state): State<AppState>,
    actor: Actor,
    Json(input): Json<NewCategory>,
) -> Result<(StatusCode, Json<Categories>)> {
    actor.require_admin()?;
    state.store.add_category(actor.account_id, &input.name).await?;
    Ok((StatusCode::CREATED, Json(Categories { categories: state.store.categories(actor.account_id).await? })))
}
