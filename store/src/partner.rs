//! What the partner API needs remembered: idempotency keys with their stored answers, webhook
//! endpoints and the delivery log with its retry schedule.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::accounts::{Audit, audit_tx};
use crate::db::{RowExt, Store};
use crate::domain::{DeliveryStatus, Timestamp, WebhookEvent, new_id};
use crate::error::{Error, FieldError, Result};
use crate::ids::{AccountId, AssignmentId, FlagId, ScenarioId, SessionId, UserId, WebhookId};

/// What an idempotency key has seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyState {
    /// First use: the caller processes the request and stores the answer.
    New,
    /// The same request is being processed right now.
    InFlight,
    /// The stored answer to replay.
    Done { status: u16, body: String },
    /// The key was used for a different request.
    Mismatch,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    #[schema(value_type = Uuid)]
    pub id: WebhookId,
    #[schema(value_type = Uuid)]
    pub account_id: AccountId,
    pub url: String,
    pub events: Vec<WebhookEvent>,
    pub active: bool,
    #[schema(value_type = Option<Uuid>)]
    pub created_by: Option<UserId>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDelivery {
    pub id: Uuid,
    #[schema(value_type = Uuid)]
    pub webhook_id: WebhookId,
    pub event: WebhookEvent,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
}

/// A delivery due now, with what is needed to send it. `Debug` leaves the signing secret out.
#[derive(Clone)]
pub struct DueDelivery {
    pub id: Uuid,
    pub webhook_id: WebhookId,
    pub event: WebhookEvent,
    pub payload: String,
    pub attempts: i64,
    pub url: String,
    pub secret: String,
}

impl std::fmt::Debug for DueDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DueDelivery")
            .field("id", &self.id)
            .field("webhook_id", &self.webhook_id)
            .field("event", &self.event)
            .field("attempts", &self.attempts)
            .field("url", &self.url)
            .field("secret", &"[redacted]")
            .finish_non_exhaustive()
    }
}

const WEBHOOK_COLUMNS: &str = "id, account_id, url, events, active, created_by, created_at";
const DELIVERY_COLUMNS: &str = "id, webhook_id, event, status, attempts, next_attempt_at, last_status_code, last_error, \
    created_at, delivered_at";

impl Webhook {
    fn from_row(r: &AnyRow) -> Result<Self> {
        let events: Vec<String> = r.json("events")?;
        Ok(Webhook {
            id: r.uuid("id")?,
            account_id: r.uuid("account_id")?,
            url: r.text("url")?,
            events: events.iter().filter_map(|e| e.parse().ok()).collect(),
            active: r.flag("active")?,
            created_by: r.opt_uuid("created_by")?,
            created_at: r.ts("created_at")?,
        })
    }
}

impl WebhookDelivery {
    fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(WebhookDelivery {
            id: r.uuid("id")?,
            webhook_id: r.uuid("webhook_id")?,
            event: r.parsed("event")?,
            status: r.parsed("status")?,
            attempts: r.int("attempts")?,
            next_attempt_at: r.ts("next_attempt_at")?,
            last_status_code: r.opt_int("last_status_code")?,
            last_error: r.opt_text("last_error")?,
            created_at: r.ts("created_at")?,
            delivered_at: r.opt_ts("delivered_at")?,
        })
    }
}

impl Store {
    /// Registers a use of an idempotency key for a request (by its hash) and says what to do.
    /// An unanswered key is leased for `lease_ms` (longer than any handler runs): once that
    /// passes, its handler is taken for dead and the next use takes the key over.
    pub async fn begin_idempotent(
        &self,
        account_id: AccountId,
        key: &str,
        request_hash: &str,
        lease_ms: i64,
    ) -> Result<IdempotencyState> {
        let now = Timestamp::now().millis();
        // One statement, so of two retries racing for a dead key only one takes it.
        let taken = sqlx::query(
            "UPDATE idempotency_keys SET created_at = $1 WHERE account_id = $2 AND idem_key = $3 \
             AND request_hash = $4 AND status_code IS NULL AND created_at < $5",
        )
        .bind(now)
        .bind(account_id.to_string())
        .bind(key)
        .bind(request_hash)
        .bind(now - lease_ms)
        .execute(&self.pool)
        .await?;
        if taken.rows_affected() == 1 {
            return Ok(IdempotencyState::New);
        }
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (account_id, idem_key, request_hash, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (account_id, idem_key) DO NOTHING",
        )
        .bind(account_id.to_string())
        .bind(key)
        .bind(request_hash)
        .bind(now)
        .execute(&self.pool)
        .await?;
        if inserted.rows_affected() == 1 {
            return Ok(IdempotencyState::New);
        }
        let row = sqlx::query(
            "SELECT request_hash, status_code, response_body FROM idempotency_keys WHERE account_id = $1 AND idem_key = $2",
        )
        .bind(account_id.to_string())
        .bind(key)
        .fetch_one(&self.pool)
        .await?;
        if row.text("request_hash")? != request_hash {
            return Ok(IdempotencyState::Mismatch);
        }
        Ok(match row.opt_int("status_code")? {
            None => IdempotencyState::InFlight,
            Some(status) => IdempotencyState::Done {
                status: u16::try_from(status).unwrap_or(500),
                body: row.opt_text("response_body")?.unwrap_or_default(),
            },
        })
    }

    /// Stores the answer to replay for a key.
    pub async fn finish_idempotent(&self, account_id: AccountId, key: &str, status: u16, body: &str) -> Result<()> {
        sqlx::query(
            "UPDATE idempotency_keys SET status_code = $1, response_body = $2 WHERE account_id = $3 AND idem_key = $4",
        )
        .bind(i64::from(status))
        .bind(body)
        .bind(account_id.to_string())
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Forgets a key whose request failed on our side, so the client's retry runs again.
    pub async fn abandon_idempotent(&self, account_id: AccountId, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM idempotency_keys WHERE account_id = $1 AND idem_key = $2")
            .bind(account_id.to_string())
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn purge_idempotency_keys(&self, before: Timestamp) -> Result<u64> {
        let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(before.millis())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn create_webhook(
        &self,
        account_id: AccountId,
        url: &str,
        events: &[WebhookEvent],
        secret: &str,
        created_by: Option<UserId>,
        audit: &Audit,
    ) -> Result<Webhook> {
        if events.is_empty() {
            return Err(Error::Invalid(vec![FieldError::new("events", "subscribe to at least one event")]));
        }
        if events.contains(&WebhookEvent::Ping) {
            return Err(Error::Invalid(vec![FieldError::new(
                "events",
                "ping is the test event, sent on request (Send test event); it cannot be subscribed to",
            )]));
        }
        let id = WebhookId::new();
        let events: Vec<&str> = events.iter().map(|e| e.as_str()).collect();
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO webhooks (id, account_id, url, secret, events, active, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, TRUE, $6, $7)",
        )
        .bind(id.to_string())
        .bind(account_id.to_string())
        .bind(url)
        .bind(secret)
        .bind(serde_json::to_string(&events).map_err(|e| Error::Corrupt(e.to_string()))?)
        .bind(created_by.map(|u| u.to_string()))
        .bind(Timestamp::now().millis())
        .execute(&mut *tx)
        .await?;
        audit_tx(&mut tx, &audit.clone().target("webhook", id)).await?;
        tx.commit().await?;
        self.webhook(account_id, id).await
    }

    pub async fn webhook(&self, account_id: AccountId, id: WebhookId) -> Result<Webhook> {
        let row = sqlx::query(&format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1 AND account_id = $2"))
            .bind(id.to_string())
            .bind(account_id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(Error::NotFound("webhook"))?;
        Webhook::from_row(&row)
    }

    pub async fn list_webhooks(&self, account_id: AccountId) -> Result<Vec<Webhook>> {
        let rows = sqlx::query(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE account_id = $1 ORDER BY created_at, id"
        ))
        .bind(account_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Webhook::from_row).collect()
    }

    pub async fn delete_webhook(&self, account_id: AccountId, id: WebhookId, audit: &Audit) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("DELETE FROM webhooks WHERE id = $1 AND account_id = $2")
            .bind(id.to_string())
            .bind(account_id.to_string())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound("webhook"));
        }
        audit_tx(&mut tx, &audit.clone().target("webhook", id)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Queues a `ping` for one webhook (an admin's "Send test event"), whatever it subscribes to:
    /// an ordinary delivery of the outbox, so it is signed, retried and logged like any event.
    /// Answers the delivery's id.
    pub async fn enqueue_ping(&self, account_id: AccountId, webhook_id: WebhookId, audit: &Audit) -> Result<Uuid> {
        let mut tx = self.write_tx().await?;
        let found = sqlx::query("SELECT id FROM webhooks WHERE id = $1 AND account_id = $2")
            .bind(webhook_id.to_string())
            .bind(account_id.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        if found.is_none() {
            return Err(Error::NotFound("webhook"));
        }
        let id = new_id();
        let now = Timestamp::now();
        let body = serde_json::json!({
            "id": id,
            "event": WebhookEvent::Ping.as_str(),
            "created_at": now,
            "data": { "webhook_id": webhook_id, "message": "A test event sent from Proto Trainer's admin page." },
        });
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, webhook_id, account_id, event, payload, status, attempts, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6)",
        )
        .bind(id.to_string())
        .bind(webhook_id.to_string())
        .bind(account_id.to_string())
        .bind(WebhookEvent::Ping.as_str())
        .bind(body.to_string())
        .bind(now.millis())
        .execute(&mut *tx)
        .await?;
        audit_tx(&mut tx, &audit.clone().target("webhook", webhook_id)).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Queues an event for every active webhook of the account subscribed to it; answers how many
    /// deliveries were queued.
    /// For tests only (not in the production binary).
    #[cfg(feature = "testing")]
    pub async fn enqueue_event(
        &self,
        account_id: AccountId,
        event: WebhookEvent,
        payload: &serde_json::Value,
    ) -> Result<usize> {
        let mut tx = self.write_tx().await?;
        let queued = enqueue_event_tx(&mut tx, account_id, event, payload).await?;
        tx.commit().await?;
        Ok(queued)
    }

    /// Claims up to `limit` deliveries that are due: each is leased for `lease_ms` (its next
    /// attempt moves forward) so that another replica's dispatcher does not send it too.
    ///
    /// At most `per_endpoint` of one webhook's deliveries are claimed at once, so a partner with
    /// a long backlog (or a slow one) fills a few places of the batch, not all of them, and other
    /// endpoints' deliveries go out alongside.
    pub async fn claim_due_deliveries(&self, limit: i64, per_endpoint: i64, lease_ms: i64) -> Result<Vec<DueDelivery>> {
        let now = Timestamp::now().millis();
        let rows = sqlx::query(
            "SELECT d.id, d.webhook_id, d.event, d.payload, d.attempts, d.next_attempt_at, w.url, w.secret FROM \
             (SELECT id, webhook_id, event, payload, attempts, next_attempt_at, \
                ROW_NUMBER() OVER (PARTITION BY webhook_id ORDER BY next_attempt_at, id) AS place \
              FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $1) d \
             JOIN webhooks w ON w.id = d.webhook_id WHERE d.place <= $3 \
             ORDER BY d.next_attempt_at, d.id LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .bind(per_endpoint)
        .fetch_all(&self.pool)
        .await?;
        let mut claimed = Vec::new();
        for r in rows {
            let id: Uuid = r.uuid("id")?;
            let taken = sqlx::query(
                "UPDATE webhook_deliveries SET next_attempt_at = $1 WHERE id = $2 AND status = 'pending' AND next_attempt_at = $3",
            )
            .bind(now + lease_ms)
            .bind(id.to_string())
            .bind(r.int("next_attempt_at")?)
            .execute(&self.pool)
            .await?;
            if taken.rows_affected() == 1 {
                claimed.push(DueDelivery {
                    id,
                    webhook_id: r.uuid("webhook_id")?,
                    event: r.parsed("event")?,
                    payload: r.text("payload")?,
                    attempts: r.int("attempts")?,
                    url: r.text("url")?,
                    secret: r.text("secret")?,
                });
            }
        }
        Ok(claimed)
    }

    /// Records an attempt: delivered, or scheduled again at `retry_at`, or failed for good
    /// (`retry_at` None).
    pub async fn record_delivery_attempt(
        &self,
        id: Uuid,
        delivered: bool,
        status_code: Option<u16>,
        error: Option<&str>,
        retry_at: Option<Timestamp>,
    ) -> Result<()> {
        let now = Timestamp::now().millis();
        let status = if delivered {
            "delivered"
        } else if retry_at.is_some() {
            "pending"
        } else {
            "failed"
        };
        sqlx::query(
            "UPDATE webhook_deliveries SET status = $1, attempts = attempts + 1, last_status_code = $2, last_error = $3, \
             next_attempt_at = $4, delivered_at = $5 WHERE id = $6",
        )
        .bind(status)
        .bind(status_code.map(i64::from))
        .bind(error)
        .bind(retry_at.map(Timestamp::millis).unwrap_or(now))
        .bind(delivered.then_some(now))
        .bind(id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A webhook's delivery log, newest first.
    pub async fn webhook_deliveries(
        &self,
        account_id: AccountId,
        webhook_id: WebhookId,
        limit: i64,
    ) -> Result<Vec<WebhookDelivery>> {
        self.webhook(account_id, webhook_id).await?;
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
        ))
        .bind(webhook_id.to_string())
        .bind(limit.clamp(1, 500))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(WebhookDelivery::from_row).collect()
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewWebhook {
    /// An `https://` URL (plain `http://` only to this machine, for development).
    #[schema(pattern = "^https://")]
    pub url: String,
    pub events: Vec<WebhookEvent>,
}

/// Queues `event` inside the caller's transaction, so the event exists exactly when the change
/// it reports does (the outbox the dispatcher drains; a crash after the commit loses nothing).
pub(crate) async fn enqueue_event_tx(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    account_id: AccountId,
    event: WebhookEvent,
    payload: &serde_json::Value,
) -> Result<usize> {
    let hooks = sqlx::query("SELECT id, events FROM webhooks WHERE account_id = $1 AND active ORDER BY created_at, id")
        .bind(account_id.to_string())
        .fetch_all(&mut **tx)
        .await?;
    let now = Timestamp::now().millis();
    let mut queued = 0;
    for hook in hooks {
        let events: Vec<String> = hook.json("events")?;
        if !events.iter().any(|e| e == event.as_str()) {
            continue;
        }
        let id = new_id();
        let mut body = payload.clone();
        body["id"] = serde_json::json!(id);
        body["event"] = serde_json::json!(event.as_str());
        body["created_at"] = serde_json::json!(Timestamp::from_millis(now));
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, webhook_id, account_id, event, payload, status, attempts, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6)",
        )
        .bind(id.to_string())
        .bind(hook.text("id")?)
        .bind(account_id.to_string())
        .bind(event.as_str())
        .bind(body.to_string())
        .bind(now)
        .execute(&mut **tx)
        .await?;
        queued += 1;
    }
    Ok(queued)
}

/// A webhook event a held evaluation keeps on its row until a supervisor releases it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DeferredEvent {
    pub event: WebhookEvent,
    pub payload: serde_json::Value,
}

/// Queues `event` about a session inside the caller's transaction — unless the session's
/// evaluation is held for review: then the event waits on the evaluation's row and the release
/// queues it. The evaluation's row is locked, so a release running concurrently either sees
/// this event deferred or this transaction sees the evaluation released.
pub(crate) async fn enqueue_or_defer_event_tx(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    account_id: AccountId,
    session_id: SessionId,
    event: WebhookEvent,
    payload: &serde_json::Value,
) -> Result<()> {
    let lock = crate::db::for_update(tx);
    let held =
        sqlx::query(&format!("SELECT id, deferred_events FROM evaluations WHERE session_id = $1 AND held{lock}"))
            .bind(session_id.to_string())
            .fetch_optional(&mut **tx)
            .await?;
    let Some(held) = held else {
        enqueue_event_tx(tx, account_id, event, payload).await?;
        return Ok(());
    };
    let mut deferred: Vec<DeferredEvent> = held.json("deferred_events")?;
    deferred.push(DeferredEvent { event, payload: payload.clone() });
    sqlx::query("UPDATE evaluations SET deferred_events = $1 WHERE id = $2")
        .bind(serde_json::to_string(&deferred).map_err(|e| Error::Corrupt(e.to_string()))?)
        .bind(held.text("id")?)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// What event payloads say about a session: its assignment and attempt, and the partner's id
/// for the counselor.
pub(crate) struct SessionContext {
    pub session_id: SessionId,
    pub assignment_id: Option<AssignmentId>,
    pub scenario_id: Option<ScenarioId>,
    pub attempt: Option<i64>,
    pub user_external_id: Option<String>,
    /// A scenario test run's session (an AI counselor's call): no partner event, flag e-mail or
    /// analysis is about it.
    pub test_run: bool,
}

pub(crate) async fn session_context(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    session_id: SessionId,
) -> Result<SessionContext> {
    let row = sqlx::query(
        "SELECT s.assignment_id, s.scenario_id, s.attempt_number, s.test_run, u.external_id FROM sessions s \
         JOIN users u ON u.id = s.user_id WHERE s.id = $1",
    )
    .bind(session_id.to_string())
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(Error::NotFound("session"))?;
    Ok(SessionContext {
        session_id,
        assignment_id: row.opt_uuid("assignment_id")?,
        scenario_id: row.opt_uuid("scenario_id")?,
        attempt: row.opt_int("attempt_number")?,
        user_external_id: row.opt_text("external_id")?,
        test_run: row.flag("test_run")?,
    })
}

/// `flag.raised` for each new flag, in the caller's transaction (deferred while the session's
/// evaluation is held).
pub(crate) async fn enqueue_flag_events(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    account_id: AccountId,
    ctx: &SessionContext,
    flags: &[(FlagId, &crate::flags::NewFlag)],
) -> Result<()> {
    for (id, flag) in flags {
        let data = serde_json::json!({
            "flag_id": id, "session_id": ctx.session_id, "assignment_id": ctx.assignment_id,
            "user_id": ctx.user_external_id, "flag_type": flag.flag_type, "severity": flag.severity,
            "source": flag.source,
        });
        let payload = serde_json::json!({ "data": data });
        enqueue_or_defer_event_tx(tx, account_id, ctx.session_id, WebhookEvent::FlagRaised, &payload).await?;
    }
    Ok(())
}
