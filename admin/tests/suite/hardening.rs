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
            let sid: store::SessionId = session.parse().expect("uuid");
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

#[tokio::test]
async fn webhook_urls_to_non_public_addresses_are_refused_at_creation() {
    for (backend, db) in testing::all().await {
        let app = spawn(&db).await;
        for url in [
            "https://127.0.0.1/hook",
            "https://127.9.9.9:8443/hook",
            "https://10.0.0.1/hook",
            "https://172.16.5.4/hook",
            "https://192.168.1.1/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/hook",
            "https://100.100.100.200/hook",
            "https://0.0.0.0/hook",
            "https://[::1]/hook",
            "https://[::]/hook",
            "https://[fd00:ec2::254]/hook",
            "https://[fe80::1]/hook",
            "https://[::ffff:10.0.0.1]/hook",
            "https://[::ffff:127.0.0.1]/hook",
            "http://localhost/hook",
            "http://127.0.0.1:9000/hook",
            "http://partner.example.org/hook",
            // Names of this machine or the local network, refused by name or by what they
            // resolve to now (issue 20: `https://localhost:3003` was accepted).
            "https://localhost:3003/hook",
            "https://LOCALHOST./hook",
            "https://api.localhost/hook",
            "https://printer.local/hook",
            "https://metadata.google.internal/computeMetadata",
        ] {
            let (status, body) =
                app.post(app.admin, "/api/webhooks", json!({"url": url, "events": ["flag.raised"]})).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{backend:?}: {url} -> {body}");
            assert_eq!(body["fields"][0]["field"], "url", "{backend:?}: {url} -> {body}");
        }
        // `ping` is the test event, never a subscription.
        let (status, body) = app
            .post(app.admin, "/api/webhooks", json!({"url": "https://partner.example.org/hook", "events": ["ping"]}))
            .await;
        assert_eq!((status, &body["fields"][0]["field"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!("events")));
        let (status, body) = app
            .post(
                app.admin,
                "/api/webhooks",
                json!({"url": "https://partner.example.org/hook", "events": ["flag.raised"]}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{backend:?}: {body}");
    }
}

#[tokio::test]
async fn a_webhook_host_that_resolves_to_loopback_is_refused_at_delivery() {
    for (backend, db) in testing::all().await {
        let app = spawn(&db).await;
        // Something listening where `localhost` points: it must never see a connection.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = connections.clone();
        tokio::spawn(async move {
            while let Ok((_socket, _)) = listener.accept().await {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
        let url = format!("https://localhost:{port}/hook");
        // Creation refuses it now; a webhook stored before (or a name whose DNS changed since
        // creation, which only delivery can see) is checked again at every delivery.
        let (status, body) = app.post(app.admin, "/api/webhooks", json!({"url": url, "events": ["flag.raised"]})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{backend:?}: {body}");
        let hook = app
            .store
            .create_webhook(
                app.account,
                &url,
                &[store::WebhookEvent::FlagRaised],
                "whsec_test",
                None,
                &store::Audit::new(None, None, "test"),
            )
            .await
            .expect("webhook");
        let hook_id = hook.id.to_string();
        app.store
            .enqueue_event(app.account, store::WebhookEvent::FlagRaised, &json!({"data": {}}))
            .await
            .expect("queue");
        let mut log = Value::Null;
        for _ in 0..100 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            log = app.get(app.admin, &format!("/api/webhooks/{hook_id}/deliveries")).await.1;
            if log[0]["attempts"].as_i64().unwrap_or(0) > 0 {
                break;
            }
        }
        assert_eq!(log[0]["status"], "failed", "{backend:?}: refused for good: {log}");
        assert!(log[0]["lastError"].as_str().unwrap_or("").starts_with("refused"), "{backend:?}: {log}");
        assert!(log[0]["lastStatusCode"].is_null(), "{log}");
        assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 0, "{backend:?}: no connection was made");
    }
}

/// A local receiver that counts deliveries by their delivery id, answering after `delay_ms`.
async fn counting_receiver(delay_ms: u64) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let seen: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let log = log.clone();
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
                let id = headers.get("x-prototrainer-delivery").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                log.lock().expect("lock").push(id);
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

async fn wait_for(seen: &std::sync::Mutex<Vec<String>>, n: usize) {
    for _ in 0..300 {
        if seen.lock().expect("lock").len() >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_evaluation_committed_before_a_crash_is_still_delivered() {
    for (backend, db) in testing::all().await {
        let (url, seen) = counting_receiver(0).await;
        // The "crashed" replica: the evaluation commits, and no code of ours runs after it.
        let account = db.store.create_account(&format!("Crash {}", Uuid::now_v7())).await.expect("account");
        let user = db
            .store
            .create_user(
                account.id,
                store::NewUser {
                    email: format!("c-{}@example.org", Uuid::now_v7().simple()),
                    display_name: "Casey".into(),
                    role: store::Role::Counselor,
                    external_id: Some("ext-casey".into()),
                    is_demo: false,
                },
            )
            .await
            .expect("user");
        db.store
            .create_webhook(
                account.id,
                &url,
                &[store::WebhookEvent::EvaluationCompleted],
                "whsec_test",
                None,
                &store::Audit::new(None, None, "test"),
            )
            .await
            .expect("webhook");
        let session = db
            .store
            .create_session(
                account.id,
                &store::NewSession {
                    user_id: user.id,
                    assignment_id: None,
                    scenario_id: None,
                    kind: store::SessionKind::Chat,
                    room_name: None,
                },
            )
            .await
            .expect("session");
        let new = store::NewEvaluation {
            session_id: session.id,
            overall_score: Some(70.0),
            score_band: Some(store::ScoreBand::Developing),
            score_basis: store::ScoreBasis::default(),
            rubric_version: 2,
            facts: Vec::new(),
            gate_table: None,
            criteria: vec![],
            flags: vec![],
            strengths: vec![],
            areas_to_improve: vec![],
            model: "test".into(),
            raw_output: "{}".into(),
            integrity: Default::default(),
        };
        db.store.finish_evaluation(account.id, &new).await.expect("evaluation");
        // A new replica starts on the same database and drains what the first one committed.
        let _app = spawn_with(&db, |c| c.webhook_allow_private = true).await;
        wait_for(&seen, 1).await;
        assert_eq!(seen.lock().expect("lock").len(), 1, "{backend:?}: evaluation.completed delivered once");
    }
}

#[tokio::test]
async fn two_replicas_send_each_event_once() {
    for (backend, db) in testing::all().await {
        // Answers well inside the timeout even on a loaded machine: a timed-out attempt that the
        // receiver did get is retried (at least once), which is not what this test is about.
        let (url, seen) = counting_receiver(100).await;
        let configure = |c: &mut admin::Config| {
            c.webhook_allow_private = true;
            c.webhook_timeout_ms = 8000;
        };
        let a = spawn_with(&db, configure).await;
        let _b = spawn_with(&db, configure).await;
        let hook = a
            .store
            .create_webhook(
                a.account,
                &url,
                &[store::WebhookEvent::FlagRaised],
                "whsec_test",
                None,
                &store::Audit::new(None, None, "test"),
            )
            .await
            .expect("webhook");
        let n = 40;
        for i in 0..n {
            a.store
                .enqueue_event(a.account, store::WebhookEvent::FlagRaised, &json!({"data": {"i": i}}))
                .await
                .expect("queue");
        }
        wait_for(&seen, n).await;
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        let mut ids = seen.lock().expect("lock").clone();
        let total = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!((total, ids.len()), (n, n), "{backend:?}: every event once");
        let log = a.store.webhook_deliveries(a.account, hook.id, 500).await.expect("log");
        assert!(log.iter().all(|d| d.attempts == 1), "{backend:?}: one attempt each");
    }
}

#[tokio::test]
async fn a_counselors_report_does_not_suppress_the_analyzers_flag() {
    for (backend, db) in testing::all().await {
        let sim = Simulator::start().await.expect("sim");
        let app = spawn_ai(&db, &sim, |_| {}).await;
        sim.add_rule(Rule::chat().last_user_contains("accepted your chat").reply_text("hello?"));
        let (_, started) = app.post(app.counselor, "/api/sessions", json!({})).await;
        let session = started["session"]["id"].as_str().expect("id").to_owned();
        app.post(app.counselor, &format!("/api/sessions/{session}/message"), json!({"content": "Stop your meds."}))
            .await;
        let (status, report) = app
            .post(
                app.counselor,
                &format!("/api/sessions/{session}/flag"),
                // Counselors raise only the report types (not `policy_violation`: hostile_auth.rs).
                json!({"details": "nothing to see", "flagType": "other"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{backend:?}: {report}");
        sim.add_rule(Rule::chat().schema_name("analysis").reply_json(json!({
            "summary": "Policy breach.",
            "findings": [{"flag_type": "policy_violation", "severity": "high", "details": "Medication advice.", "turns": [2]}]
        })));
        let (status, analysis) = app.post(app.supervisor, &format!("/api/sessions/{session}/analyze"), json!({})).await;
        assert_eq!((status, analysis["findings"].as_i64()), (StatusCode::OK, Some(1)), "{backend:?}: {analysis}");
        let flags =
            app.store.session_flags(&crate::common::session_ref(&app.store, &session).await).await.expect("flags");
        assert!(
            flags
                .iter()
                .any(|f| f.source == store::FlagSource::Analysis && f.flag_type == store::FlagType::PolicyViolation),
            "{backend:?}: {flags:?}"
        );
    }
}

#[tokio::test]
async fn nul_bytes_in_text_are_a_client_error_not_a_500() {
    for (backend, db) in testing::all().await {
        let sim = Simulator::start().await.expect("sim");
        let app = spawn_ai(&db, &sim, |_| {}).await;
        let mut body = scenario_body("Nul\u{0}title");
        body["prompt"] = json!("You are\u{0} Sam.");
        let (status, created) = app.post(app.supervisor, "/api/scenarios", body).await;
        assert!(
            status == StatusCode::BAD_REQUEST
                || status == StatusCode::UNPROCESSABLE_ENTITY
                || status == StatusCode::CREATED,
            "{backend:?}: {status} {created}"
        );
        if status == StatusCode::CREATED {
            assert!(!created.to_string().contains("\\u0000"), "stripped: {created}");
        }
        sim.add_rule(Rule::chat().last_user_contains("accepted your chat").reply_text("hello?"));
        sim.add_rule(Rule::chat().reply_text("ok"));
        let (_, started) = app.post(app.counselor, "/api/sessions", json!({})).await;
        let session = started["session"]["id"].as_str().expect("id").to_owned();
        let (status, reply) = app
            .post(app.counselor, &format!("/api/sessions/{session}/message"), json!({"content": "hi\u{0}there"}))
            .await;
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::OK,
            "{backend:?}: {status} {reply}"
        );
    }
}

#[tokio::test]
async fn unknown_http_methods_share_one_metrics_label() {
    let db = testing::sqlite().await;
    let app = spawn_with(&db, |c| c.metrics_token = Some(admin::Secret::new("metrics-token"))).await;
    let method = reqwest::Method::from_bytes(b"FROBNICATEXYZ").expect("method");
    let _ = app.http.request(method, app.url("/api/scenarios")).send().await.expect("request");
    let metrics = app.http.get(app.url("/metrics")).bearer_auth("metrics-token").send().await.expect("metrics");
    let metrics = metrics.text().await.expect("text");
    assert!(!metrics.contains("FROBNICATEXYZ"), "{metrics}");
    assert!(metrics.contains("method=\"other\""), "{metrics}");
}

#[tokio::test]
async fn evaluation_failures_answer_a_generic_message_with_a_correlation_id() {
    for (backend, db) in testing::all().await {
        let sim = Simulator::start().await.expect("sim");
        let app = spawn_ai(&db, &sim, |_| {}).await;
        sim.add_rule(Rule::chat().last_user_contains("accepted your chat").reply_text("hello?"));
        sim.add_rule(Rule::chat().schema_name("evaluation").reply_json(json!({"leaky_internal_detail": 1})));
        sim.add_rule(Rule::chat().reply_text("ok"));
        let (_, started) = app.post(app.counselor, "/api/sessions", json!({})).await;
        let session = started["session"]["id"].as_str().expect("id").to_owned();
        app.post(app.counselor, &format!("/api/sessions/{session}/message"), json!({"content": "Crisis line."})).await;
        let (status, body) = app.post(app.counselor, &format!("/api/sessions/{session}/evaluate"), json!({})).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{backend:?}: {body}");
        assert!(!body.to_string().contains("leaky_internal_detail"), "{backend:?}: {body}");
        assert!(body.to_string().contains("correlation"), "{backend:?}: {body}");
        let (_, view) = app.get(app.counselor, &format!("/api/sessions/{session}")).await;
        assert!(!view["evaluationError"].to_string().contains("leaky_internal_detail"), "{backend:?}: {view}");
    }
}

/// Makes every later audit-trail insert fail, as a full disk or a broken audit table would.
async fn break_audit_trail(backend: store::Backend, db: &testing::TestDb) {
    match backend {
        store::Backend::Sqlite => db
            .store
            .raw_execute("CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'audit down'); END")
            .await
            .expect("trigger"),
        store::Backend::Postgres => {
            db.store
                .raw_execute(
                    "CREATE FUNCTION refuse_audit() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'audit down'; END $$ LANGUAGE plpgsql",
                )
                .await
                .expect("function");
            db.store
                .raw_execute("CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse_audit()")
                .await
                .expect("trigger");
        }
    }
}

/// An audit record is written in the transaction of the change it reports: when it cannot be
/// written, the change is not made either (no user exists after the error, no role changed, no
/// webhook), instead of an error answered after the fact.
#[tokio::test]
async fn a_failed_audit_undoes_the_change_it_reports() {
    for (backend, db) in testing::all().await {
        let app = spawn(&db).await;
        break_audit_trail(backend, &db).await;
        let email = format!("new-{}@example.org", Uuid::now_v7().simple());
        let body = json!({ "email": email, "displayName": "New Person", "role": "counselor" });
        // Sent without the contract check: a broken database is a 500 the document need not list.
        let res = app.as_user(app.admin, app.http.post(app.url("/api/users"))).json(&body).send().await.expect("send");
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR, "{backend:?}");
        assert!(
            db.store.user_by_email(&email).await.expect("lookup").is_none(),
            "{backend:?}: user created without its audit"
        );

        let res = app
            .as_user(app.admin, app.http.patch(app.url(&format!("/api/users/{}", app.counselor))))
            .json(&json!({ "role": "supervisor" }))
            .send()
            .await
            .expect("send");
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR, "{backend:?}");
        let counselor = db.store.user(app.account, app.counselor).await.expect("user");
        assert_eq!(counselor.role, store::Role::Counselor, "{backend:?}: role changed without its audit");

        let res = app
            .as_user(app.admin, app.http.post(app.url("/api/webhooks")))
            .json(&json!({ "url": "https://partner.example.org/hook", "events": ["flag.raised"] }))
            .send()
            .await
            .expect("send");
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR, "{backend:?}");
        assert!(db.store.list_webhooks(app.account).await.expect("list").is_empty(), "{backend:?}");
    }
}

/// A partner with a backlog at a slow endpoint takes a few places of a batch, not all of them:
/// another account's event goes out alongside its first deliveries instead of after all twenty.
#[tokio::test]
async fn a_slow_partner_does_not_hold_up_other_accounts() {
    for (backend, db) in testing::all().await {
        let (slow_url, slow) = counting_receiver(2000).await;
        let (fast_url, fast) = counting_receiver(0).await;
        let app = spawn_with(&db, |c| {
            c.webhook_allow_private = true;
            c.webhook_timeout_ms = 8000;
        })
        .await;
        let audit = store::Audit::new(None, None, "test");
        let events = [store::WebhookEvent::FlagRaised];
        app.store.create_webhook(app.account, &slow_url, &events, "whsec_a", None, &audit).await.expect("webhook");
        app.store
            .create_webhook(app.other_account, &fast_url, &events, "whsec_b", None, &audit)
            .await
            .expect("webhook");
        for i in 0..20 {
            app.store
                .enqueue_event(app.account, store::WebhookEvent::FlagRaised, &json!({"data": {"i": i}}))
                .await
                .expect("queue");
        }
        app.store
            .enqueue_event(app.other_account, store::WebhookEvent::FlagRaised, &json!({"data": {}}))
            .await
            .expect("queue");
        wait_for(&fast, 1).await;
        assert_eq!(fast.lock().expect("lock").len(), 1, "{backend:?}: delivered");
        let slow_done = slow.lock().expect("lock").len();
        assert!(slow_done <= 4, "{backend:?}: the other account waited for {slow_done} slow deliveries");
    }
}

#[tokio::test]
async fn a_test_event_is_a_signed_ping_through_the_outbox() {
    for (backend, db) in testing::all().await {
        let seen: std::sync::Arc<std::sync::Mutex<Vec<(String, String, String)>>> = Default::default();
        let log = seen.clone();
        let receiver = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let log = log.clone();
                async move {
                    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                    log.lock().expect("lock").push((
                        header("x-prototrainer-event"),
                        header("x-prototrainer-signature"),
                        body,
                    ));
                    StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, receiver).await });
        let app = spawn_with(&db, |c| c.webhook_allow_private = true).await;
        let (status, created) =
            app.post(app.admin, "/api/webhooks", json!({"url": url, "events": ["evaluation.completed"]})).await;
        assert_eq!(status, StatusCode::CREATED, "{backend:?}: {created}");
        let hook_id = created["webhook"]["id"].as_str().expect("id").to_owned();
        let secret = created["secret"].as_str().expect("secret").to_owned();
        let path = format!("/api/webhooks/{hook_id}/test");

        assert_eq!(app.post(app.supervisor, &path, json!(null)).await.0, StatusCode::FORBIDDEN);
        assert_eq!(app.post(app.outsider, &path, json!(null)).await.0, StatusCode::FORBIDDEN);
        let missing = format!("/api/webhooks/{}/test", Uuid::now_v7());
        assert_eq!(app.post(app.admin, &missing, json!(null)).await.0, StatusCode::NOT_FOUND);

        let (status, sent) = app.post(app.admin, &path, json!(null)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{backend:?}: {sent}");
        let delivery = sent["deliveryId"].as_str().expect("delivery id").to_owned();
        let mut log = Value::Null;
        for _ in 0..100 {
            log = app.get(app.admin, &format!("/api/webhooks/{hook_id}/deliveries")).await.1;
            if log[0]["status"] == "delivered" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(
            (&log[0]["id"], &log[0]["event"], &log[0]["status"]),
            (&json!(delivery), &json!("ping"), &json!("delivered")),
            "{backend:?}: {log}"
        );
        let got = seen.lock().expect("lock").clone();
        assert_eq!(got.len(), 1, "{backend:?}: one ping, though the hook subscribes to another event");
        let (event, signature, body) = &got[0];
        assert_eq!(event, "ping");
        let t: i64 =
            signature.split(',').next().and_then(|t| t.strip_prefix("t=")).and_then(|t| t.parse().ok()).expect("t");
        assert_eq!(signature, &admin::webhooks::sign(&secret, t, body), "signed like any event");
        let payload: Value = serde_json::from_str(body).expect("json");
        assert_eq!((&payload["event"], &payload["data"]["webhook_id"]), (&json!("ping"), &json!(hook_id)));
        let actions: Vec<String> =
            app.store.audit_events(app.account, 50).await.expect("audit").into_iter().map(|e| e.action).collect();
        assert!(actions.iter().any(|a| a == "webhook.test_sent"), "{actions:?}");
    }
}
