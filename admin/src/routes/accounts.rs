//! The caller's account and its category list. Accounts are created by an operator
//! (`proto-trainer account create`), never through the API: an account admin minting accounts
//! would hold each new admin's password, and a name conflict would tell them other centers'
//! names.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use store::Account;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ErrorBody, Result};
use crate::extract::Json;
use crate::identity::Actor;

/// The caller's account (a list, for the prototype's shape; users see only their own account).
#[utoipa::path(get, path = "/api/accounts", tag = "accounts",
    responses((status = 200, body = Vec<Account>), (status = 401, body = ErrorBody)))]
pub async fn list_accounts(State(state): State<AppState>, actor: Actor) -> Result<Json<Vec<Account>>> {
    Ok(Json(vec![state.store.account(actor.account_id).await?]))
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
