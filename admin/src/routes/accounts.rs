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
use crate::extract::{Json, NamePath};
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

/// A category's name as people read it ("Youth and LGBTQ+"): capitals kept, letters, digits,
/// spaces and `& + - _ / ' , ( )`; unique in the account ignoring capitals (409).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewCategory {
    #[schema(min_length = 1, max_length = 64, example = "Youth and LGBTQ+")]
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

/// Renames a category (account admins only); the scenarios in it follow. `{name}` is the current
/// name (any capitals); a change of capitals alone is a rename too.
#[utoipa::path(patch, path = "/api/categories/{name}", tag = "accounts", request_body = NewCategory,
    params(("name" = String, Path, description = "The category's current name")),
    responses((status = 200, body = Categories), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn rename_category(
    State(state): State<AppState>,
    actor: Actor,
    NamePath(current): NamePath,
    Json(input): Json<NewCategory>,
) -> Result<Json<Categories>> {
    actor.require_admin()?;
    let audit = store::Audit::new(Some(actor.account_id), Some(actor.user_id), "category.renamed");
    state.store.rename_category(actor.account_id, &current, &input.name, &audit).await?;
    Ok(Json(Categories { categories: state.store.categories(actor.account_id).await? }))
}

/// Deletes a category no scenario uses (account admins only). In use: 409 saying how many
/// scenarios use it and to move them (or rename the category) first; nothing is moved silently.
/// The last category is kept (409), so scenarios can still be written.
#[utoipa::path(delete, path = "/api/categories/{name}", tag = "accounts",
    params(("name" = String, Path, description = "The category's name")),
    responses((status = 200, body = Categories), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn delete_category(
    State(state): State<AppState>,
    actor: Actor,
    NamePath(name): NamePath,
) -> Result<Json<Categories>> {
    actor.require_admin()?;
    let audit = store::Audit::new(Some(actor.account_id), Some(actor.user_id), "category.deleted");
    state.store.delete_category(actor.account_id, &name, &audit).await?;
    Ok(Json(Categories { categories: state.store.categories(actor.account_id).await? }))
}
