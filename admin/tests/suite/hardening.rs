//! Findings of the hardening review (issue 9), each pinned by a test on both backends:
//! immutable transcripts, SSRF-proof webhooks, events that survive a crash, and the smaller
//! security findings.

use openai_sim::{Rule, Simulator};
use reqwest::StatusCode;
use serde_json::{Value, json};
use store::testing;
use uuid::Uuid;

use crate::common::*;

async fn spawn_ai(db: &testing::TestDb, sim: &Simulator, configure: impl FnOnce(&mut admin::Config)) -> App {
    let base = sim.base_url();
    spawn_with(db, |c| {
        c.openai_api_key = Some(admin::Secret::new("sim-key"));
        c.openai_base_url = base;
        c.llm_max_retries = 0;
        c.llm_timeout_secs = 5;
        configure(c);
    })
    .await
}

async fn transcript_len(app: &App, session: &str) -> usize {
    let (_, detail) = app.get(app.counselor, &format!("/api/sessions/{session}")).await;
    detail["transcript"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn a_chat_reply_that_arrives_after_the_session_ended_is_refused() {
    for (backend, db) in testing::all().await {
        let sim = Simulator::start().await.expect("sim");
        let app = spawn_ai(&db, &sim, |_| {}).await;
        sim.add_rule(Rule::chat().last_user_contains("accepted your chat").reply_text("hello?"));
        let (status, started) = app.post(app.counselor, "/api/sessions", json!({})).await;
        assert_eq!(status, StatusCode::CREATED, "{backend:?}: {started}");
        let session = started["session"]["id"].as_str().expect("id").to_owned();
        let account = app.account;
        sim.add_rule(Rule::chat().last_user_contains("slow one").latency_ms(1500).reply_text("...late"));
        let path = format!("/api/sessions/{session}/message");
        let slow = app.post(app.counselor, &path, json!({"content": "a slow one"}));
        let end = async {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            let sid: Uuid = session.parse().expect("uuid");
            app.store.end_session(account, sid, store::SessionStatus::Completed).await.expect("end")
        };
        let ((status, body), _) = tokio::join!(slow, end);
        assert_eq!(status, StatusCode::CONFLICT, "{backend:?}: {body}");
        assert_eq!(transcript_len(&app, &session).await, 1, "{backend:?}: only the opening is stored");
    }
}

#[tokio::test]
async fn internal_transcript_appends_are_refused_once_the_session_ended() {
    for (backend, db) in testing::all().await {
        let key = "internal-test-key-0123";
        let app = spawn_with(&db, |c| c.internal_service_key = Some(admin::Secret::new(key))).await;
        let (status, session) = send(
            app.http
                .post(app.url("/api/internal/sessions"))
                .header("x-internal-service-key", key)
                .json(&json!({"accountId": app.account, "userId": app.counselor})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{backend:?}: {session}");
        let id = id(&session);
        let push = |segment: &str| {
            let turns = json!({"turns": [{"speaker": "caller", "text": "Hi.", "startedMs": 0, "segmentId": segment}]});
            app.http
                .post(app.url(&format!("/api/internal/sessions/{id}/transcript")))
                .header("x-internal-service-key", key)
                .json(&turns)
        };
        assert_eq!(send(push("a")).await.0, StatusCode::OK);
        let (status, _) = send(
            app.http
                .post(app.url(&format!("/api/internal/sessions/{id}/end")))
                .header("x-internal-service-key", key)
                .json(&json!({"status": "completed"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let (status, body): (StatusCode, Value) = send(push("b")).await;
        assert_eq!(status, StatusCode::CONFLICT, "{backend:?}: {body}");
        assert_eq!(transcript_len(&app, &id).await, 1);
    }
}
