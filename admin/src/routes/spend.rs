//! The account's LLM spending ceiling and spend (account admins): the monthly budget and the chat
//! session token cap every LLM call is checked against before it is made (`llm.rs`), and the
//! spend per counselor and per day, read from the usage every call records.

use axum::extract::State;
use serde::Deserialize;
use store::{AccountBudget, SpendReport, Timestamp};

use crate::AppState;
use crate::error::{ApiError, ErrorBody, Result};
use crate::extract::{Json, Query};
use crate::identity::Actor;

/// The account's LLM limits; absent values mean no limit.
#[utoipa::path(get, path = "/api/accounts/budget", tag = "accounts",
    responses((status = 200, body = AccountBudget), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn get_budget(State(state): State<AppState>, actor: Actor) -> Result<Json<AccountBudget>> {
    actor.require_admin()?;
    Ok(Json(state.store.account_budget(actor.account_id).await?))
}

/// Sets the account's LLM limits (audited): over the monthly budget every AI call of the account
/// (chat, grading, analysis, drafting, documentation review) answers 429 `budget_exceeded`, and
/// a chat session over the token cap does too, until an admin raises the limit or the month
/// ends. Calls already running finish, so concurrent calls may overshoot by one call each.
#[utoipa::path(put, path = "/api/accounts/budget", tag = "accounts", request_body = AccountBudget,
    responses((status = 200, body = AccountBudget), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_budget(
    State(state): State<AppState>,
    actor: Actor,
    Json(input): Json<AccountBudget>,
) -> Result<Json<AccountBudget>> {
    actor.require_admin()?;
    let audit = store::Audit::new(Some(actor.account_id), Some(actor.user_id), "account.budget_set")
        .target("account", actor.account_id);
    Ok(Json(state.store.set_account_budget(actor.account_id, &input, &audit).await?))
}

#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SpendQuery {
    /// Calls from (RFC 3339 or YYYY-MM-DD; default: the start of this month, UTC); at most 366
    /// days before `to` (422 otherwise).
    pub from: Option<String>,
    /// Calls before (RFC 3339 or YYYY-MM-DD, the end of that day; default: now).
    pub to: Option<String>,
}

/// The account's estimated LLM spend in a period, per counselor (the calls of their sessions;
/// calls tied to no session in one row without a counselor) and per UTC day, with the limits and
/// this month's spend the budget is held against.
#[utoipa::path(get, path = "/api/accounts/spend", tag = "accounts", params(SpendQuery),
    responses((status = 200, body = SpendReport), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn get_spend(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<SpendQuery>,
) -> Result<Json<SpendReport>> {
    actor.require_admin()?;
    let parse = |field: &str, v: &Option<String>| -> Result<Option<Timestamp>> {
        v.as_deref().map(|t| Timestamp::parse(t).map_err(|m| ApiError::validation(field, m))).transpose()
    };
    let to = parse("to", &query.to)?.unwrap_or_else(Timestamp::now);
    let from = parse("from", &query.from)?.unwrap_or_else(|| store::month_start(to));
    Ok(Json(state.store.spend_report(actor.account_id, from, to).await?))
}
