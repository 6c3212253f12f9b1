//! Partner API keys of the caller's account, managed by account admins. A key is shown once, at
//! creation; afterwards only its name, prefix and use are listed.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use store::ApiKey;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth;
use crate::error::{ErrorBody, Result};
use crate::extract::{IdPath, Json};
use crate::identity::Actor;
use store::ApiKeyId;

#[utoipa::path(get, path = "/api/api-keys", tag = "api-keys",
    responses((status = 200, body = Vec<ApiKey>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_api_keys(State(state): State<AppState>, actor: Actor) -> Result<Json<Vec<ApiKey>>> {
    actor.require_admin()?;
    Ok(Json(state.store.list_api_keys(actor.account_id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewApiKey {
    /// What the key is for, e.g. the partner system's name.
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedApiKey {
    pub api_key: ApiKey,
    /// The key, for the `X-API-Key` header. Shown this once; only its hash is stored.
    pub key: String,
}

#[utoipa::path(post, path = "/api/api-keys", tag = "api-keys", request_body = NewApiKey,
    responses((status = 201, body = CreatedApiKey), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_api_key(
    State(state): State<AppState>,
    actor: Actor,
    Json(input): Json<NewApiKey>,
) -> Result<(StatusCode, Json<CreatedApiKey>)> {
    actor.require_admin()?;
    let (api_key, key) = auth::create_api_key(&state.store, actor.account_id, &input.name, Some(actor.user_id)).await?;
    Ok((StatusCode::CREATED, Json(CreatedApiKey { api_key, key })))
}

/// Revokes a key: requests with it answer 401 from now on. Revoking twice is harmless.
#[utoipa::path(delete, path = "/api/api-keys/{id}", tag = "api-keys", params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath<ApiKeyId>,
) -> Result<StatusCode> {
    actor.require_admin()?;
    let key = state.store.api_key(actor.account_id, id).await?;
    let audit = store::Audit::new(Some(actor.account_id), Some(actor.user_id), "api_key.revoked")
        .details(serde_json::json!({ "name": key.name, "prefix": key.prefix }));
    state.store.revoke_api_key(actor.account_id, id, &audit).await?;
    Ok(StatusCode::NO_CONTENT)
}
