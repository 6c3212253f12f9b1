//! The partner API's contract, through HTTP with an API key, on every backend: PRODUCT.md's
//! example body verbatim, snake_case round trips, one-time scenarios hidden, the user_id filter,
//! 409 with `existing_id`, attempts and results, background evaluation, transcripts by attempt,
//! revoked keys, cross-account ids, Idempotency-Key replays, and signed webhooks retried after a
//! failure.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use openai_sim::{Rule, Simulator};
use reqwest::StatusCode;
use serde_json::{Value, json};
use store::testing;

use crate::common::{App, spawn_with};

const EXAMPLE: &str = r#"{ "title": "Caller with financial stress", "prompt": "You are Sarah, 34, calling about...",
  "description": "Practice de-escalation", "mode": "phone", "category": "sales",
  "skills": ["de-escalation", "active-listening"], "difficulty": "intermediate",
  "estimated_time": 15, "is_one_time": true, "relevant_policy_sections": "Section 4.2..." }"#;

struct Partner<'a> {
    app: &'a App,
    key: String,
}

impl Partner<'_> {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&str>,
        idem: Option<&str>,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let mut req = self.app.http.request(method, self.app.url(path)).header("x-api-key", &self.key);
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body.to_owned());
        }
        if let Some(idem) = idem {
            req = req.header("idempotency-key", idem);
        }
        let res = req.send().await.expect("request");
        let (status, headers) = (res.status(), res.headers().clone());
        let text = res.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)), headers)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (s, v, _) = self.call(reqwest::Method::GET, path, None, None).await;
        (s, v)
    }

    async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let (s, v, _) = self.call(reqwest::Method::POST, path, Some(&body.to_string()), None).await;
        (s, v)
    }
}

async fn partner(app: &App, account: store::AccountId) -> Partner<'_> {
    let (_, key) = admin::auth::create_api_key(&app.store, account, "guide", None).await.expect("key");
    Partner { app, key }
}

#[tokio::test]
async fn scenarios_and_assignments_keep_the_contract() {
    for (backend, db) in testing::all().await {
        let app = spawn_with(&db, |_| {}).await;
        app.post(app.admin, "/api/categories", json!({"name": "sales"})).await;
        let p = partner(&app, app.account).await;

        // The example body, verbatim: every field round-trips, snake_case.
        let (status, created, _) = p.call(reqwest::Method::POST, "/api/external/scenarios", Some(EXAMPLE), None).await;
        assert_eq!(status, StatusCode::CREATED, "{backend:?}: {created}");
        let example: Value = serde_json::from_str(EXAMPLE).expect("example");
        for (field, value) in example.as_object().expect("object") {
            assert_eq!(&created[field], value, "{field} round-trips");
        }
        assert!(created["id"].is_string() && created["created_at"].is_string());
        // One-time scenarios are hidden from the list; reusable ones (the default) are listed.
        let mut reusable = example.clone();
        reusable["title"] = json!("Reusable caller");
        reusable.as_object_mut().expect("object").remove("is_one_time");
        let (status, reusable) = p.post("/api/external/scenarios", &reusable).await;
        assert_eq!((status, reusable["is_one_time"].as_bool()), (StatusCode::CREATED, Some(false)));
        let (_, list) = p.get("/api/external/scenarios").await;
        let titles: Vec<&str> = list.as_array().expect("list").iter().filter_map(|s| s["title"].as_str()).collect();
        assert_eq!(titles, vec!["Reusable caller"]);
        // Validation errors name the field in the partner's spelling.
        let mut bad = example.clone();
        bad["estimated_time"] = json!(-5);
        bad["title"] = json!("Another");
        let (status, body) = p.post("/api/external/scenarios", &bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["fields"][0]["field"], "estimated_time");
        let (status, body) = p.post("/api/external/scenarios", &json!({"title": "x"})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

        // Assignments by the partner's user id; an active duplicate is 409 with existing_id.
        let new = json!({"user_id": "ext-Casey Counselor", "scenario_id": reusable["id"], "due_date": "2026-12-31", "notes": "Focus on risk"});
        let (status, assignment) = p.post("/api/external/assignments", &new).await;
        assert_eq!(status, StatusCode::CREATED, "{assignment}");
        assert_eq!(
            (assignment["user_id"].as_str(), assignment["status"].as_str()),
            (Some("ext-Casey Counselor"), Some("pending"))
        );
        assert!(assignment["due_date"].as_str().unwrap_or("").starts_with("2026-12-31T23:59:59"));
        let (status, dup) = p.post("/api/external/assignments", &new).await;
        assert_eq!((status, dup["existing_id"].as_str()), (StatusCode::CONFLICT, assignment["id"].as_str()), "{dup}");
        let (status, body) =
            p.post("/api/external/assignments", &json!({"user_id": "nobody", "scenario_id": reusable["id"]})).await;
        assert_eq!((status, body["fields"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("user_id")));
        let (_, mine) = p.get("/api/external/assignments?user_id=ext-Casey%20Counselor").await;
        assert_eq!(mine.as_array().map(Vec::len), Some(1));
        let (_, theirs) = p.get("/api/external/assignments?user_id=ext-Robin%20Counselor").await;
        assert_eq!(theirs.as_array().map(Vec::len), Some(0));
        assert_eq!(p.get("/api/external/assignments").await.0, StatusCode::BAD_REQUEST);
        // Before any attempt there is no result or transcript.
        let id = assignment["id"].as_str().expect("id");
        assert_eq!(p.get(&format!("/api/external/assignments/{id}/result")).await.0, StatusCode::NOT_FOUND);
        assert_eq!(p.get(&format!("/api/external/assignments/{id}/transcript")).await.0, StatusCode::NOT_FOUND);

        // Another account's key sees none of it.
        let other = partner(&app, app.other_account).await;
        assert_eq!(other.get(&format!("/api/external/assignments/{id}/result")).await.0, StatusCode::NOT_FOUND);
        assert_eq!(other.get("/api/external/scenarios").await.1.as_array().map(Vec::len), Some(0));
        let (status, _) = other
            .post("/api/external/assignments", &json!({"user_id": "ext-Olga Outsider", "scenario_id": reusable["id"]}))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "another account's scenario id");

        // No key, a wrong key, a revoked key: 401.
        let res = app.http.get(app.url("/api/external/scenarios")).send().await.expect("req");
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let revoked = partner(&app, app.account).await;
        let key_id = app.store.list_api_keys(app.account).await.expect("keys")[0].id;
        app.store.revoke_api_key(app.account, key_id, &store::Audit::new(None, None, "test")).await.expect("revoke");
        assert_eq!(revoked.get("/api/external/scenarios").await.0, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn idempotency_keys_replay_without_duplicates() {
    for (backend, db) in testing::all().await {
        let app = spawn_with(&db, |_| {}).await;
        app.post(app.admin, "/api/categories", json!({"name": "sales"})).await;
        let p = partner(&app, app.account).await;
        let post = |body: &'static str, key: &'static str| {
            p.call(reqwest::Method::POST, "/api/external/scenarios", Some(body), Some(key))
        };
        let (s1, first, h1) = post(EXAMPLE, "key-1").await;
        let (s2, second, h2) = post(EXAMPLE, "key-1").await;
        assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::CREATED), "{backend:?}: {second}");
        assert_eq!(first, second, "the same answer");
        assert_eq!(
            (h1["idempotent-replayed"].to_str().ok(), h2["idempotent-replayed"].to_str().ok()),
            (Some("false"), Some("true"))
        );
        let (_, all) = app.get(app.supervisor, "/api/scenarios?kind=all").await;
        assert_eq!(all.as_array().map(Vec::len), Some(1), "no duplicate");
        // The same key for another request is refused; a failed request can be retried.
        let other = r#"{"title": "Different", "prompt": "You are Al.", "mode": "chat", "category": "sales"}"#;
        let (status, body, _) = post(other, "key-1").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let invalid = r#"{"title": "", "prompt": "x", "mode": "chat", "category": "sales"}"#;
        let (status, _, _) = post(invalid, "key-2").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (status, _, _) = post(invalid, "key-2").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "client errors replay too");
        // Keys are per account.
        let other_partner = partner(&app, app.other_account).await;
        let (status, _, headers) =
            other_partner.call(reqwest::Method::POST, "/api/external/scenarios", Some(EXAMPLE), Some("key-1")).await;
        // (That account has no `sales` category: its own answer, not the other account's replay.)
        assert_eq!(
            (status, headers["idempotent-replayed"].to_str().ok()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("false"))
        );
    }
}

/// A local webhook receiver: answers 500 to the first delivery, 200 afterwards.
async fn receiver() -> (String, Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>>) {
    let seen: Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>> = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let log = log.clone();
            async move {
                let mut log = log.lock().expect("lock");
                log.push((headers, body));
                if log.len() == 1 { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test]
async fn attempts_results_evaluation_and_signed_webhooks() {
    for (backend, db) in testing::all().await {
        let sim = Simulator::start().await.expect("sim");
        let base = sim.base_url();
        let app = spawn_with(&db, |c| {
            c.openai_api_key = Some(admin::Secret::new("sim-key"));
            c.openai_base_url = base;
            c.webhook_retry_base_ms = 200;
            c.webhook_allow_private = true;
        })
        .await;
        let (url, seen) = receiver().await;
        let (status, hook) = app
            .post(
                app.admin,
                "/api/webhooks",
                json!({"url": url, "events": ["evaluation.completed", "assignment.completed", "flag.raised"]}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{backend:?}: {hook}");
        let secret = hook["secret"].as_str().expect("secret").to_owned();
        let (_, hooks) = app.get(app.admin, "/api/webhooks").await;
        assert!(!hooks.to_string().contains(&secret), "the secret is shown once");
        assert_eq!(
            app.post(
                app.admin,
                "/api/webhooks",
                json!({"url": "http://partner.example.org/x", "events": ["flag.raised"]})
            )
            .await
            .0,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            app.post(app.supervisor, "/api/webhooks", json!({"url": url, "events": ["flag.raised"]})).await.0,
            StatusCode::FORBIDDEN
        );

        let p = partner(&app, app.account).await;
        let scenario =
            json!({"title": "Chat caller", "prompt": "You are Max.", "mode": "chat", "category": "onboarding"});
        let (_, scenario) = p.post("/api/external/scenarios", &scenario).await;
        let (_, assignment) = p
            .post(
                "/api/external/assignments",
                &json!({"user_id": "ext-Casey Counselor", "scenario_id": scenario["id"]}),
            )
            .await;
        let id = assignment["id"].as_str().expect("id").to_owned();

        // Two attempts: the counselor practises twice (the first abandoned: a supervisor resets
        // the assignment, else a start resumes the attempt in progress).
        for text in ["First try, hello.", "Second try: are you thinking about suicide?"] {
            let reset = Some(json!({"status": "pending"}));
            app.call(Some(app.supervisor), reqwest::Method::PATCH, &format!("/api/assignments/{id}"), reset).await;
            let (status, started) = app.post(app.counselor, "/api/sessions", json!({"assignmentId": id})).await;
            assert_eq!(status, StatusCode::CREATED, "{started}");
            let session = started["session"]["id"].as_str().expect("id").to_owned();
            app.post(app.counselor, &format!("/api/sessions/{session}/message"), json!({"content": text})).await;
        }
        let (status, result) = p.get(&format!("/api/external/assignments/{id}/result")).await;
        assert_eq!(status, StatusCode::OK, "{result}");
        assert_eq!((result["attempts"].as_i64(), result["latest_attempt"]["attempt"].as_i64()), (Some(2), Some(2)));
        assert_eq!(
            (result["evaluation_status"].as_str(), result["evaluation"].clone()),
            (Some("not_started"), Value::Null)
        );
        let (_, first) = p.get(&format!("/api/external/assignments/{id}/transcript?attempt=1")).await;
        assert_eq!(first["turns"][1]["text"], "First try, hello.");
        assert_eq!(first["turns"][1]["index"], 2);
        let (_, latest) = p.get(&format!("/api/external/assignments/{id}/transcript")).await;
        assert_eq!(
            (latest["attempt"].as_i64(), latest["turns"][1]["text"].as_str()),
            (Some(2), Some("Second try: are you thinking about suicide?"))
        );
        assert_eq!(
            p.get(&format!("/api/external/assignments/{id}/transcript?attempt=3")).await.0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            p.get(&format!("/api/external/assignments/{id}/transcript?attempt=x")).await.0,
            StatusCode::BAD_REQUEST
        );

        // Evaluate: 202 with a location while it runs in the background, then the result.
        let criteria: Vec<Value> = admin::rubric::criteria("")
            .iter()
            .map(|c| json!({"key": c.key, "checks": [], "rating": 4, "comment": "good"}))
            .collect();
        let answer = json!({"criteria": criteria, "strengths": ["direct"], "areas_to_improve": ["slow down"], "overall_score": 90,
            "flags": [{"flag_type": "dismissive_language", "severity": "medium", "details": "Rushed the caller.", "turns": [2]}]});
        sim.add_rule(Rule::chat().schema_name("evaluation").reply_json(answer).latency_ms(400));
        sim.add_rule(Rule::chat().schema_name("analysis").reply_json(json!({"summary": "ok", "findings": []})));
        let (status, body, headers) =
            p.call(reqwest::Method::POST, &format!("/api/external/assignments/{id}/evaluate"), None, None).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(headers["location"].to_str().ok(), Some(format!("/api/external/assignments/{id}/result").as_str()));
        assert_eq!(body["evaluation_status"], "running");
        let (status, again, _) =
            p.call(reqwest::Method::POST, &format!("/api/external/assignments/{id}/evaluate"), None, None).await;
        assert_eq!((status, again["evaluation_status"].as_str()), (StatusCode::ACCEPTED, Some("running")));
        let mut result = Value::Null;
        for _ in 0..60 {
            let (_, r) = p.get(&format!("/api/external/assignments/{id}/result")).await;
            if r["evaluation_status"] == "completed" {
                result = r;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(result["status"], "completed", "{result}");
        // Every rating 4 (100), held by the `dismissive_language` safety gate the flag raised (v3).
        assert_eq!(
            (result["evaluation"]["overall_score"].as_f64(), result["evaluation"]["attempt"].as_i64()),
            (Some(49.0), Some(2))
        );
        assert_eq!(result["evaluation"]["criteria"].as_array().map(Vec::len), Some(admin::rubric::CRITERIA.len()));
        assert_eq!(result["evaluation"]["score_band"], "needs_work");
        assert_eq!(result["evaluation"]["improvements"][0], "slow down");
        assert_eq!(result["evaluation"]["flags"][0]["flag_type"], "dismissive_language");
        let evaluations =
            sim.chat_requests().iter().filter(|r| r["response_format"]["json_schema"]["name"] == "evaluation").count();
        assert_eq!(evaluations, 1, "evaluated once");
        let (status, done, _) =
            p.call(reqwest::Method::POST, &format!("/api/external/assignments/{id}/evaluate"), None, None).await;
        assert_eq!((status, done["evaluation_status"].as_str()), (StatusCode::OK, Some("completed")), "idempotent");

        // Webhooks: three events, the first delivery refused once and retried; valid signatures.
        let mut deliveries = Vec::new();
        for _ in 0..80 {
            deliveries = seen.lock().expect("lock").clone();
            let events: std::collections::HashSet<String> =
                deliveries.iter().map(|(h, _)| h["x-prototrainer-event"].to_str().unwrap_or("").to_owned()).collect();
            if events.len() == 3 && deliveries.len() >= 4 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(deliveries.len() >= 4, "3 events, one of them retried: {}", deliveries.len());
        let refused = deliveries[0].0["x-prototrainer-delivery"].clone();
        assert_eq!(
            deliveries.iter().filter(|(h, _)| h["x-prototrainer-delivery"] == refused).count(),
            2,
            "the refused one came again"
        );
        for (headers, body) in &deliveries {
            let sig = headers["x-prototrainer-signature"].to_str().expect("ascii");
            let t: i64 =
                sig.split(',').next().and_then(|p| p.strip_prefix("t=")).and_then(|t| t.parse().ok()).expect("t");
            assert_eq!(sig, admin::webhooks::sign(&secret, t, body), "valid signature");
            assert!((t - store::Timestamp::now().millis() / 1000).abs() < 60);
            let payload: Value = serde_json::from_str(body).expect("json");
            assert_eq!(payload["data"]["user_id"], "ext-Casey Counselor");
        }
        let evaluation_event =
            deliveries.iter().find(|(h, _)| h["x-prototrainer-event"] == "evaluation.completed").expect("event");
        let payload: Value = serde_json::from_str(&evaluation_event.1).expect("json");
        assert_eq!(payload["data"]["assignment_id"], id.as_str());
        let hook_id = hook["webhook"]["id"].as_str().expect("id");
        let (_, log) = app.get(app.admin, &format!("/api/webhooks/{hook_id}/deliveries")).await;
        let log = log.as_array().expect("log");
        assert_eq!(log.len(), 3);
        assert!(log.iter().all(|d| d["status"] == "delivered"));
        assert!(log.iter().any(|d| d["attempts"] == 2));
    }
}
