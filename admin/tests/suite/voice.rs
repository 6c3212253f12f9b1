//! Voice calls around the agent: the per-session credential from the dispatch metadata, the
//! internal call routes, turns idempotent and in spoken order, the call's end grading the
//! session through the durable queue (across a restart, and once with two replicas), one live
//! voice session per counselor under racing requests, never-joined sessions, supervisor end,
//! and recordings with HTTP Range. On every backend.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use store::testing;
use uuid::Uuid;

use crate::common::{App, id, send, spawn_with};

const LIVEKIT_SECRET: &str = "voice-test-livekit-secret-0123456789";

async fn voice_app(db: &store::testing::TestDb, sim: &openai_sim::Simulator, recordings: &std::path::Path) -> App {
    let (sim_url, dir) = (sim.base_url(), recordings.to_owned());
    spawn_with(db, move |c| {
        c.openai_api_key = Some(admin::Secret::new("sim-key"));
        c.openai_base_url = sim_url;
        c.livekit_url = Some("ws://127.0.0.1:7880".into());
        c.livekit_api_key = Some("devkey".into());
        c.livekit_api_secret = Some(admin::Secret::new(LIVEKIT_SECRET));
        c.voice.recordings_dir = dir;
        c.voice.job_poll_ms = 100;
    })
    .await
}

/// A voice session for `user` and the credential its agent would open from the metadata.
async fn start_call(app: &App, user: store::UserId, body: Value) -> (store::SessionId, String) {
    let (status, voice) = app.post(user, "/api/livekit/token", body).await;
    assert_eq!(status, StatusCode::CREATED, "{voice}");
    let claims = livekit_api::access_token::TokenVerifier::with_api_key("devkey", LIVEKIT_SECRET)
        .verify(voice["token"].as_str().expect("token"))
        .expect("token");
    let meta: Value = serde_json::from_str(&claims.room_config.expect("room config").agents[0].metadata).expect("meta");
    let session: store::SessionId = voice["sessionId"].as_str().expect("id").parse().expect("uuid");
    let sealed = meta["credential"].as_str().expect("credential in the metadata");
    assert!(!sealed.starts_with("ptc_"), "the browser-readable token carries the credential sealed");
    let credential = store::credential::open(LIVEKIT_SECRET, session, sealed).expect("opens with the LiveKit secret");
    (session, credential)
}

fn agent(app: &App, credential: &str, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    app.http.request(method, app.url(path)).header("x-session-credential", credential)
}

async fn evaluated_within(app: &App, session: store::SessionId, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if app
            .store
            .ai_evaluation_raw(&crate::common::session_ref(&app.store, session).await)
            .await
            .expect("read")
            .is_some()
        {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

fn evaluation_requests(sim: &openai_sim::Simulator) -> usize {
    sim.chat_requests()
        .iter()
        .filter(|r| r["response_format"]["json_schema"]["name"].as_str() == Some("evaluation"))
        .count()
}

#[tokio::test]
async fn a_call_through_the_internal_api_is_stored_and_graded_after_hang_up() {
    for (backend, db) in testing::all().await {
        let sim = openai_sim::Simulator::start().await.expect("sim");
        let dir = tempfile::tempdir().expect("dir");
        let app = voice_app(&db, &sim, dir.path()).await;
        let mut phone = crate::common::scenario_body("Voice persona");
        phone["prompt"] = json!("You are Dana, 41, who just lost her job.");
        phone["voice"] = json!({"callerSpeaksFirst": true, "voice": "coral", "phoneLine": true});
        let (status, scenario) = app.post(app.supervisor, "/api/scenarios", phone).await;
        assert_eq!(status, StatusCode::CREATED, "{scenario}");
        assert_eq!(scenario["voice"], json!({"callerSpeaksFirst": true, "voice": "coral", "phoneLine": true}));
        let mut bad = crate::common::scenario_body("Bad voice");
        bad["voice"] = json!({"voice": "robot"});
        assert_eq!(app.post(app.supervisor, "/api/scenarios", bad).await.0, StatusCode::UNPROCESSABLE_ENTITY);
        let (_, assignment) = app
            .post(
                app.supervisor,
                "/api/assignments",
                json!({"scenarioId": id(&scenario), "counselorId": app.counselor}),
            )
            .await;
        let (session, credential) = start_call(&app, app.counselor, json!({"assignmentId": id(&assignment)})).await;
        let base = format!("/api/internal/sessions/{session}");

        // The setup: persona only, the scenario's voice settings, the service's limits.
        let (status, setup) = send(agent(&app, &credential, reqwest::Method::GET, &format!("{base}/setup"))).await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {setup}");
        let instructions = setup["instructions"].as_str().expect("instructions");
        assert!(instructions.contains("Dana, 41") && instructions.contains("calling a crisis line on the phone"));
        assert!(!instructions.to_lowercase().contains("rubric"));
        assert_eq!((setup["voice"].as_str(), setup["callerSpeaksFirst"].as_bool()), (Some("coral"), Some(true)));
        assert_eq!(setup["phoneLine"], true);
        assert_eq!(setup["maxDurationMs"], 30 * 60_000);

        // The credential opens this session only; a wrong one opens nothing.
        let (other, _) = start_call(&app, app.other_counselor, json!({})).await;
        let path = format!("/api/internal/sessions/{other}/status");
        assert_eq!(send(agent(&app, &credential, reqwest::Method::GET, &path)).await.0, StatusCode::UNAUTHORIZED);
        let wrong = format!("{credential}x");
        assert_eq!(
            send(agent(&app, &wrong, reqwest::Method::GET, &format!("{base}/status"))).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            send(agent(&app, &credential, reqwest::Method::GET, "/api/sessions")).await.0,
            StatusCode::UNAUTHORIZED,
            "the credential is no user session"
        );

        // Turns: the counselor's, stamped at speech start, arrives after the caller's reply;
        // a re-sent batch is stored once.
        let turns = json!({"turns": [
            {"speaker": "caller", "text": "Hi... I don't know why I called.", "startedMs": 500, "endedMs": 2500, "segmentId": "c-1"},
            {"speaker": "caller", "text": "I lost my job today.", "startedMs": 9000, "endedMs": 11000, "segmentId": "c-2"},
            {"speaker": "counselor", "text": "I'm glad you called. Are you thinking of suicide?", "startedMs": 3000, "endedMs": 8000, "segmentId": "u-1"},
        ]});
        for expected in [3, 0] {
            let req = agent(&app, &credential, reqwest::Method::POST, &format!("{base}/transcript")).json(&turns);
            let (status, body) = send(req).await;
            assert_eq!((status, body["appended"].as_i64()), (StatusCode::OK, Some(expected)), "{body}");
        }
        let order: Vec<_> = app
            .store
            .transcript(&crate::common::session_ref(&app.store, session).await)
            .await
            .expect("t")
            .into_iter()
            .map(|t| t.started_ms)
            .collect();
        assert_eq!(order, vec![500, 3000, 9000]);
        let (_, status) = send(agent(&app, &credential, reqwest::Method::GET, &format!("{base}/status"))).await;
        assert_eq!(status["ended"], false);

        // Hang-up: usage, metrics and recording stored, the evaluation graded from the queue.
        std::fs::write(dir.path().join(format!("{session}.ogg")), b"OggS0123456789").expect("file");
        let end = json!({
            "reason": "counselor_left",
            "usage": {"inputAudioTokens": 1000, "outputAudioTokens": 2000, "model": "gpt-realtime"},
            "turnMetrics": [{"segmentId": "c-2", "responseLatencyMs": 420, "underruns": 0}],
            "recording": {"durationMs": 11000, "bytes": 14},
        });
        let hung_up = Instant::now();
        let (status, ended) =
            send(agent(&app, &credential, reqwest::Method::POST, &format!("{base}/call-end")).json(&end)).await;
        assert_eq!((status, ended["status"].as_str()), (StatusCode::OK, Some("completed")), "{ended}");
        assert_eq!(ended["endReason"], "counselor_left");
        let took = evaluated_within(&app, session, Duration::from_secs(20)).await;
        let took = took.unwrap_or_else(|| panic!("{backend:?}: no evaluation 20 s after hang-up"));
        println!(
            "{backend:?}: evaluation stored {} ms after hang-up",
            hung_up.elapsed().as_millis().min(took.as_millis())
        );
        assert_eq!(evaluation_requests(&sim), 1);
        // Repeating the end changes nothing (the credential lives on for the grace period).
        let (status, _) =
            send(agent(&app, &credential, reqwest::Method::POST, &format!("{base}/call-end")).json(&end)).await;
        assert_eq!(status, StatusCode::OK);
        let (_, usage) = app.get(app.supervisor, &format!("/api/sessions/{session}/voice-usage")).await;
        assert_eq!(usage["usage"]["outputAudioTokens"], 2000);
        assert!((usage["costUsd"].as_f64().expect("cost") - (1000.0 * 32.0 + 2000.0 * 64.0) / 1e6).abs() < 1e-9);
        assert_eq!(usage["turnMetrics"][0]["responseLatencyMs"], 420);
        // The report cannot name the file: a credential for this session pointing it at another
        // session's recording (or anywhere else) is refused; the file is the session's own.
        for file in [format!("{}.ogg", store::SessionId::new()), "../../etc/passwd".to_owned()] {
            let mut evil = end.clone();
            evil["recording"]["file"] = json!(file);
            let (status, _) =
                send(agent(&app, &credential, reqwest::Method::POST, &format!("{base}/call-end")).json(&evil)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{file}");
        }
        let stored =
            app.store.recording(&crate::common::session_ref(&app.store, session).await).await.expect("recording");
        assert_eq!(stored.file, format!("{session}.ogg"));

        // The recording, with Range.
        let url = app.url(&format!("/api/sessions/{session}/recording"));
        let get = |range: Option<&str>| {
            let mut req = app.as_user(app.counselor, app.http.get(&url));
            if let Some(r) = range {
                req = req.header("range", r);
            }
            req.send()
        };
        let whole = get(None).await.expect("get");
        assert_eq!(whole.status(), StatusCode::OK);
        assert_eq!(whole.headers()["accept-ranges"], "bytes");
        assert_eq!(whole.bytes().await.expect("body").as_ref(), b"OggS0123456789");
        let part = get(Some("bytes=4-7")).await.expect("get");
        assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(part.headers()["content-range"], "bytes 4-7/14");
        assert_eq!(part.bytes().await.expect("body").as_ref(), b"0123");
        let tail = get(Some("bytes=-3")).await.expect("get");
        assert_eq!(tail.bytes().await.expect("body").as_ref(), b"789");
        let bad = get(Some("bytes=14-")).await.expect("get");
        assert_eq!(bad.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(bad.headers()["content-range"], "bytes */14");
        let (status, list) = app.get(app.counselor, "/api/recordings").await;
        assert_eq!((status, list.as_array().map(Vec::len)), (StatusCode::OK, Some(1)));
        assert_eq!(list[0]["durationMs"], 11000);
        let (_, list) = app.get(app.other_counselor, "/api/recordings").await;
        assert_eq!(list.as_array().map(Vec::len), Some(0), "another counselor sees none");
        let (status, _) = app.get(app.other_counselor, &format!("/api/sessions/{session}/recording")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn a_supervisor_ends_a_live_call_and_the_agent_sees_it() {
    for (backend, db) in testing::all().await {
        let sim = openai_sim::Simulator::start().await.expect("sim");
        let dir = tempfile::tempdir().expect("dir");
        let app = voice_app(&db, &sim, dir.path()).await;
        let (session, credential) = start_call(&app, app.counselor, json!({})).await;
        let base = format!("/api/internal/sessions/{session}");
        send(agent(&app, &credential, reqwest::Method::GET, &format!("{base}/setup"))).await;
        let (status, ended) = app.post(app.supervisor, &format!("/api/sessions/{session}/end"), json!({})).await;
        assert_eq!((status, ended["endReason"].as_str()), (StatusCode::OK, Some("ended_by_supervisor")), "{ended}");
        let (status, body) = send(agent(&app, &credential, reqwest::Method::GET, &format!("{base}/status"))).await;
        assert_eq!((status, body["ended"].as_bool()), (StatusCode::OK, Some(true)), "{backend:?}");
        // Setup for an ended session is a conflict, not a new call.
        let (status, _) = send(agent(&app, &credential, reqwest::Method::GET, &format!("{base}/setup"))).await;
        assert_eq!(status, StatusCode::CONFLICT);
        // Another account's supervisor cannot.
        let (status, _) = app.post(app.outsider, &format!("/api/sessions/{session}/end"), json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn a_counselor_has_one_live_voice_session_even_under_racing_requests() {
    for (backend, db) in testing::all().await {
        let sim = openai_sim::Simulator::start().await.expect("sim");
        let dir = tempfile::tempdir().expect("dir");
        let app = voice_app(&db, &sim, dir.path()).await;
        let (first, _) = start_call(&app, app.counselor, json!({})).await;
        let requests = (0..8).map(|_| app.post(app.counselor, "/api/livekit/token", json!({})));
        let answers = futures::future::join_all(requests).await;
        for (status, body) in &answers {
            assert_eq!(*status, StatusCode::CREATED, "{backend:?}: {body}");
        }
        let filter = store::SessionFilter {
            list_type: store::SessionListType::All,
            user_id: Some(app.counselor),
            ..Default::default()
        };
        let sessions = app.store.list_sessions(app.account, &filter).await.expect("list");
        let live: Vec<_> = sessions.iter().filter(|s| s.status == store::SessionStatus::Active).collect();
        assert_eq!(live.len(), 1, "{backend:?}: one live voice session");
        let first = sessions.iter().find(|s| s.id == first).expect("first");
        assert_eq!(
            (first.status, first.end_reason),
            (store::SessionStatus::Abandoned, Some(store::EndReason::Replaced)),
            "never spoke in: abandoned"
        );
    }
}

#[tokio::test]
async fn limits_voice_tokens_per_user() {
    for (_, db) in testing::all().await {
        let app = spawn_with(&db, |c| {
            c.livekit_url = Some("ws://127.0.0.1:7880".into());
            c.livekit_api_key = Some("devkey".into());
            c.livekit_api_secret = Some(admin::Secret::new(LIVEKIT_SECRET));
            c.rate_limits.voice_token = admin::config::Limit::new(2, 3600);
        })
        .await;
        for _ in 0..2 {
            assert_eq!(app.post(app.counselor, "/api/livekit/token", json!({})).await.0, StatusCode::CREATED);
        }
        assert_eq!(app.post(app.counselor, "/api/livekit/token", json!({})).await.0, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(app.post(app.other_counselor, "/api/livekit/token", json!({})).await.0, StatusCode::CREATED);
    }
}

#[tokio::test]
async fn a_session_nobody_joined_is_abandoned_and_is_no_partner_attempt() {
    for (backend, db) in testing::all().await {
        let sim = openai_sim::Simulator::start().await.expect("sim");
        let dir = tempfile::tempdir().expect("dir");
        let app = voice_app(&db, &sim, dir.path()).await;
        let scenario = id(&app.scenario("Never joined").await);
        let (_, assignment) = app
            .post(app.supervisor, "/api/assignments", json!({"scenarioId": scenario, "counselorId": app.counselor}))
            .await;
        let (session, credential) = start_call(&app, app.counselor, json!({"assignmentId": id(&assignment)})).await;
        let (_, key) = admin::auth::create_api_key(&app.store, app.account, "p", None).await.expect("key");
        let result = format!("/api/external/assignments/{}/result", id(&assignment));
        let partner = || app.http.get(app.url(&result)).header("x-api-key", &key);
        assert_eq!(send(partner()).await.0, StatusCode::NOT_FOUND, "{backend:?}: a pending call is no attempt");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(app.store.sweep_voice_sessions(10, 3_600_000).await.expect("sweep"), (1, 0));
        let swept = app.store.session(app.account, session).await.expect("session");
        assert_eq!(
            (swept.status, swept.end_reason),
            (store::SessionStatus::Abandoned, Some(store::EndReason::NeverJoined))
        );
        assert_eq!(send(partner()).await.0, StatusCode::NOT_FOUND);
        // Its credential died with it.
        let path = format!("/api/internal/sessions/{session}/status");
        assert_eq!(send(agent(&app, &credential, reqwest::Method::GET, &path)).await.0, StatusCode::UNAUTHORIZED);
    }
}

/// A call ended (its evaluation queued) while no admin service runs; then two replicas start.
#[tokio::test]
async fn grading_survives_a_restart_and_two_replicas_grade_once() {
    for (backend, db) in testing::all().await {
        let sim = openai_sim::Simulator::start().await.expect("sim");
        let dir = tempfile::tempdir().expect("dir");
        let s = &db.store;
        let account = s.create_account(&format!("Restart {}", Uuid::now_v7())).await.expect("account");
        let new_user = store::NewUser {
            email: format!("c-{}@example.org", Uuid::now_v7().simple()),
            display_name: "C".into(),
            role: store::Role::Counselor,
            external_id: None,
            is_demo: false,
        };
        let user = s.create_user(account.id, new_user).await.expect("user").id;
        let new = store::NewSession {
            user_id: user,
            assignment_id: None,
            scenario_id: None,
            kind: store::SessionKind::Voice,
            room_name: None,
        };
        let expires = store::Timestamp::from_millis(store::Timestamp::now().millis() + 60_000);
        let mut sessions = Vec::new();
        for _ in 0..3 {
            let session = s.start_voice_session(account.id, &new, Some(("h", expires))).await.expect("session").0.id;
            let turn = store::NewTurn {
                speaker: store::Speaker::Counselor,
                text: "Crisis line, I'm here. Are you safe right now?".into(),
                started_ms: 0,
                ended_ms: Some(1000),
                segment_id: Some("u-1".into()),
            };
            s.append_turns(account.id, session, &[turn]).await.expect("turn");
            let end = store::VoiceEnd {
                reason: store::EndReason::CounselorLeft,
                usage: None,
                turn_metrics: vec![],
                recording: None,
            };
            s.end_voice_session(&crate::common::session_ref(s, session).await, &end).await.expect("ended");
            sessions.push(session);
        }
        // Nothing graded them yet: the queue holds them.
        for &session in &sessions {
            let job = s.job_state(session, store::JobKind::EvaluateSession, None).await.expect("job").expect("queued");
            assert_eq!(job.status, store::JobStatus::Pending);
        }
        let one = voice_app(&db, &sim, dir.path()).await;
        let two = voice_app(&db, &sim, dir.path()).await;
        for &session in &sessions {
            assert!(evaluated_within(&one, session, Duration::from_secs(30)).await.is_some(), "{backend:?}: graded");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(evaluation_requests(&sim), 3, "{backend:?}: each session graded once by the two replicas");
        for &session in &sessions {
            let job = s.job_state(session, store::JobKind::EvaluateSession, None).await.expect("job").expect("job");
            assert_eq!((job.status, job.attempts), (store::JobStatus::Done, 1));
        }
        drop(two);
    }
}
