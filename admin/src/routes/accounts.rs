//! Accounts and their category list.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use store::Account;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ErrorBody, Result};
use crate::extract::Json;
use crate::identity::Actor;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewAccount {
    pub name: String,
}

/// The caller's account (a list, for the prototype's shape; users see only their own account).
#[utoipa::path(get, path = "/api/accounts", tag = "accounts",
    responses((status = 200, body = Vec<Account>), (status = 401, body = ErrorBody)))]
pub async fn list_accounts(State(state): State<AppState>, actor: Actor) -> Result<Json<Vec<Account>>> {
    Ok(Json(vec![state.store.account(actor.account_id).await?]))
}

/// Creates an account with the default categories (account admins only).
#[utoipa::path(post, path = "/api/accounts", tag = "accounts", request_body = NewAccount,
    responses((status = 201, body = Account), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_account(
    State(state): State<AppState>,
    actor: Actor,
    Json(input): Json<NewAccount>,
) -> Result<(StatusCode, Json<Account>)> {
    actor.require_admin()?;
    let account = state.store.create_account(&input.name).await?;
    state
        .store
        .audit(
            Some(actor.account_id),
            Some(actor.user_id),
            "account.created",
            Some(("account", account.id.to_string())),
            serde_json::json!({ "name": account.name }),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(account)))
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
