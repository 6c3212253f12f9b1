//! No secret reaches the logs: every credential the service handles (passwords, one-time
//! passwords, session cookies, CSRF tokens, API keys, the internal key) is used through HTTP
//! while every log line at every level is captured, and none of them appears.
//!
//! Its own test binary: it installs the process-wide log subscriber.

#[path = "suite/common/mod.rs"]
mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use reqwest::StatusCode;
use serde_json::json;
use store::testing;

use common::{PASSWORD, send, spawn_with, with_creds};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_secret_appears_in_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let internal_key = "internal-key-for-the-log-test-0123456789";
    let db = testing::sqlite().await;
    let app = spawn_with(&db, |c| c.internal_service_key = Some(admin::Secret::new(internal_key))).await;
    let mut secrets: Vec<String> = vec![PASSWORD.into(), internal_key.into()];
    for creds in app.creds.values() {
        secrets.push(creds.cookie.trim_start_matches("pt_session=").to_owned());
        secrets.push(creds.csrf.clone());
    }

    // A failed login with a wrong password that is itself a secret.
    let wrong = "wrong-password-that-must-not-be-logged";
    secrets.push(wrong.into());
    assert!(app.login(&app.emails[&app.counselor], wrong).await.is_err());

    // A user with a one-time password, who changes it.
    let (status, created) = app
        .post(app.admin, "/api/users", json!({"email": "logs@example.org", "displayName": "Logs", "role": "counselor"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let once = created["temporaryPassword"].as_str().expect("pw").to_owned();
    let creds = app.login("logs@example.org", &once).await.expect("login");
    let new_password = "a new password that stays secret";
    let req = with_creds(&creds, app.http.post(app.url("/api/auth/password")))
        .json(&json!({"currentPassword": once, "newPassword": new_password}));
    assert_eq!(send(req).await.0, StatusCode::NO_CONTENT);
    secrets.extend([once, new_password.to_owned(), creds.csrf.clone()]);
    secrets.push(creds.cookie.trim_start_matches("pt_session=").to_owned());

    // An API key, used and then revoked; the internal key, right and wrong.
    let (_, key) = app.post(app.admin, "/api/api-keys", json!({"name": "logs"})).await;
    let key = key["key"].as_str().expect("key").to_owned();
    let res = app.http.get(app.url("/api/external/scenarios")).header("x-api-key", &key).send().await.expect("req");
    assert_eq!(res.status(), StatusCode::OK);
    secrets.push(key);
    let res = app
        .http
        .post(app.url("/api/internal/sessions"))
        .header("x-internal-service-key", internal_key)
        .json(&json!({"accountId": app.account, "userId": app.counselor}))
        .send()
        .await
        .expect("req");
    assert_eq!(res.status(), StatusCode::CREATED);

    let logs = String::from_utf8_lossy(&captured.0.lock().expect("lock")).into_owned();
    assert!(logs.contains("login refused"), "the capture works and covers the auth path:\n{logs}");
    assert!(logs.lines().count() > 20);
    for secret in &secrets {
        assert!(!secret.is_empty());
        assert!(!logs.contains(secret.as_str()), "a secret appears in the logs: {secret}");
    }
}
