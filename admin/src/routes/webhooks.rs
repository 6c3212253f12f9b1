//! Webhook endpoints of the caller's account (account admins): register (the signing secret is
//! shown once; a URL to a local or private destination is refused), list, remove, send a test
//! event, and read the delivery log.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use store::{NewWebhook, Webhook, WebhookDelivery};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth;
use crate::error::{ErrorBody, Result};
use crate::extract::{IdPath, Json};
use crate::identity::Actor;
use crate::webhooks;
use store::WebhookId;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedWebhook {
    pub webhook: Webhook,
    /// The HMAC-SHA256 signing secret. Shown this once.
    pub secret: String,
}

#[utoipa::path(get, path = "/api/webhooks", tag = "webhooks",
    responses((status = 200, body = Vec<Webhook>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_webhooks(State(state): State<AppState>, actor: Actor) -> Result<Json<Vec<Webhook>>> {
    actor.require_admin()?;
    Ok(Json(state.store.list_webhooks(actor.account_id).await?))
}

/// Registers an endpoint for events. Deliveries are POSTs with `X-ProtoTrainer-Event`,
/// `X-ProtoTrainer-Delivery` and `X-ProtoTrainer-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret,
/// "<t>.<body>")>`; non-2xx answers are retried with exponential backoff (8 attempts).
#[utoipa::path(post, path = "/api/webhooks", tag = "webhooks", request_body = NewWebhook,
    responses((status = 201, body = CreatedWebhook), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_webhook(
    State(state): State<AppState>,
    actor: Actor,
    Json(input): Json<NewWebhook>,
) -> Result<(StatusCode, Json<CreatedWebhook>)> {
    actor.require_admin()?;
    webhooks::check_new_url(&input.url, state.config.webhook_allow_private).await?;
    let secret = format!("whsec_{}", auth::random_token(32));
    let audit = store::Audit::new(Some(actor.account_id), Some(actor.user_id), "webhook.created")
        .details(serde_json::json!({ "url": input.url.trim(), "events": input.events }));
    let webhook = state
        .store
        .create_webhook(actor.account_id, input.url.trim(), &input.events, &secret, Some(actor.user_id), &audit)
        .await?;
    Ok((StatusCode::CREATED, Json(CreatedWebhook { webhook, secret })))
}

#[utoipa::path(delete, path = "/api/webhooks/{id}", tag = "webhooks", params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_webhook(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath<WebhookId>,
) -> Result<StatusCode> {
    actor.require_admin()?;
    let audit = store::Audit::new(Some(actor.account_id), Some(actor.user_id), "webhook.deleted");
    state.store.delete_webhook(actor.account_id, id, &audit).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The webhook's deliveries, newest first: status, attempts, last answer, next retry.
#[utoipa::path(get, path = "/api/webhooks/{id}/deliveries", tag = "webhooks", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Vec<WebhookDelivery>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath<WebhookId>,
) -> Result<Json<Vec<WebhookDelivery>>> {
    actor.require_admin()?;
    Ok(Json(state.store.webhook_deliveries(actor.account_id, id, 200).await?))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestEvent {
    /// The queued `ping` delivery: its result appears in the delivery log.
    pub delivery_id: uuid::Uuid,
}

/// Sends a test event: queues a `ping` delivery to this webhook through the ordinary outbox
/// (signed, retried and logged like any event) and answers 202 with the delivery's id; the
/// delivery log shows its result.
#[utoipa::path(post, path = "/api/webhooks/{id}/test", tag = "webhooks", params(("id" = uuid::Uuid, Path)),
    responses((status = 202, body = TestEvent), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn send_test_event(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath<WebhookId>,
) -> Result<(StatusCode, Json<TestEvent>)> {
    actor.require_admin()?;
    let audit = store::Audit::new(Some(actor.account_id), Some(actor.user_id), "webhook.test_sent");
    let delivery_id = state.store.enqueue_ping(actor.account_id, id, &audit).await?;
    state.webhook_wake.notify_one();
    Ok((StatusCode::ACCEPTED, Json(TestEvent { delivery_id })))
}
