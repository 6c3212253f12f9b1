//! What supervisors and counselors work from, through HTTP on every backend: flags from every
//! source (a supervisor's included) in the queue, the session's panel and webhooks, the queue's
//! order and names, a note to close a serious flag, reopening; one chat attempt per start (a
//! repeated or concurrent start resumes it); assignments' due dates (past ones refused, overdue
//! marked) and unassigning; the sessions list's filters, sort, search and "needs review".

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use store::testing;
use store::{FlagSeverity, FlagSource, FlagType, NewFlag, NewSession, SessionKind};

use crate::common::{self, App, id};

async fn deliveries(app: &App, hook: &str) -> Vec<String> {
    let (status, log) = app.get(app.admin, &format!("/api/webhooks/{hook}/deliveries")).await;
    assert_eq!(status, StatusCode::OK, "{log}");
    log.as_array().expect("deliveries").iter().map(|d| d["event"].as_str().unwrap_or("").to_owned()).collect()
}

async fn patch(app: &App, path: &str, body: Value) -> (StatusCode, Value) {
    app.call(Some(app.supervisor), Method::PATCH, path, Some(body)).await
}

fn flags_of(list: &Value) -> Vec<(String, String)> {
    list.as_array()
        .expect("flags")
        .iter()
        .map(|f| (f["flagType"].as_str().unwrap_or("").to_owned(), f["source"].as_str().unwrap_or("").to_owned()))
        .collect()
}

#[tokio::test]
async fn a_flag_a_supervisor_raises_reaches_the_queue_the_session_and_webhooks() {
    for (backend, db) in testing::all().await {
        let app = common::spawn(&db).await;
        let (status, hook) = app
            .post(
                app.admin,
                "/api/webhooks",
                json!({"url": "https://partner.example.org/hook", "events": ["flag.raised"]}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{hook}");
        let hook = id(&hook["webhook"]);
        // Evaluated with the AI's `suicide_not_asked` (high); its event is the first delivery.
        let session = crate::calibration::evaluated_session(&app).await;
        assert_eq!(deliveries(&app, &hook).await.len(), 1, "{backend:?}");
        let (_, before) = app.get(app.supervisor, &format!("/api/sessions/{session}")).await;
        let score_before = before["evaluation"]["overallScore"].as_f64().expect("score");

        // The supervisor raises "missed rescue" in a calibration review (the case).
        let review = json!({"overrides": [{"kind": "flag", "target": "missed_rescue", "value": "raised",
            "reason": "Turn 4: pills at home and no rescue started."}]});
        let (status, reviewed) = app.post(app.supervisor, &format!("/api/sessions/{session}/review"), review).await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {reviewed}");
        let score_after = reviewed["overallScore"].as_f64().expect("score");
        assert!(score_after <= 25.0 && score_after <= score_before, "{backend:?}: capped by the flag: {score_after}");

        // In the queue, most severe first, naming counselor and scenario.
        let (status, queue) = app.get(app.supervisor, "/api/flags").await;
        assert_eq!(status, StatusCode::OK, "{queue}");
        assert_eq!(
            flags_of(&queue),
            [
                ("missed_rescue".to_owned(), "supervisor".to_owned()),
                ("suicide_not_asked".to_owned(), "evaluation".to_owned())
            ],
            "{backend:?}: {queue}"
        );
        assert_eq!(queue[0]["severity"], "critical");
        assert_eq!(queue[0]["counselorName"], "Casey Counselor");
        assert!(queue[0]["details"].as_str().unwrap_or("").contains("pills at home"), "{queue}");
        // In the session's own panel, and as a `flag.raised` delivery.
        let (_, view) = app.get(app.supervisor, &format!("/api/sessions/{session}")).await;
        assert!(flags_of(&view["flags"]).contains(&("missed_rescue".to_owned(), "supervisor".to_owned())));
        assert_eq!(deliveries(&app, &hook).await, ["flag.raised", "flag.raised"], "{backend:?}");
        // The badge counts both.
        let (status, count) = app.get(app.supervisor, "/api/flags/count").await;
        assert_eq!((status, count["open"].as_i64()), (StatusCode::OK, Some(2)), "{count}");

        // The same review again raises nothing new.
        let again =
            json!({"overrides": [{"kind": "flag", "target": "missed_rescue", "value": "raised", "reason": "Still."}]});
        assert_eq!(app.post(app.supervisor, &format!("/api/sessions/{session}/review"), again).await.0, StatusCode::OK);
        let (_, queue) = app.get(app.supervisor, "/api/flags").await;
        assert_eq!(queue.as_array().map(Vec::len), Some(2), "{backend:?}: {queue}");
    }
}

#[tokio::test]
async fn flags_of_every_source_queue_by_severity_then_age_and_close_with_a_note() {
    for (backend, db) in testing::all().await {
        let app = common::spawn(&db).await;
        let new = NewSession {
            user_id: app.counselor,
            assignment_id: None,
            scenario_id: None,
            kind: SessionKind::Chat,
            room_name: None,
        };
        let session = app.store.create_session(app.account, &new).await.expect("session").id;
        let flag = |source, severity, flag_type| NewFlag {
            flag_type,
            severity,
            source,
            details: format!("from {source}"),
            turns: vec![2],
        };
        let raised = [
            flag(FlagSource::UserFeedback, FlagSeverity::Medium, FlagType::AiCallerProblem),
            flag(FlagSource::Analysis, FlagSeverity::High, FlagType::MedicalAdvice),
            flag(FlagSource::Evaluation, FlagSeverity::Low, FlagType::Other),
            flag(FlagSource::Derived, FlagSeverity::Critical, FlagType::MissedRescue),
            flag(FlagSource::Supervisor, FlagSeverity::High, FlagType::DismissiveLanguage),
        ];
        let mut ids = Vec::new();
        for f in &raised {
            ids.push(app.store.insert_flag(app.account, session, f).await.expect("flag").id);
        }
        let (status, queue) = app.get(app.supervisor, "/api/flags").await;
        assert_eq!(status, StatusCode::OK, "{queue}");
        let order: Vec<String> =
            queue.as_array().expect("list").iter().map(|f| f["source"].as_str().unwrap_or("").into()).collect();
        // Critical, then the two high ones oldest first, then medium, then low.
        assert_eq!(order, ["derived", "analysis", "supervisor", "user_feedback", "evaluation"], "{backend:?}");
        assert!(queue.as_array().expect("list").iter().all(|f| f["counselorName"] == "Casey Counselor"));

        // A high flag is not closed without a note (422 naming it); with one it is.
        let high = format!("/api/flags/{}", ids[1]);
        let (status, body) = patch(&app, &high, json!({"status": "dismissed", "note": "  "})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{backend:?}: {body}");
        assert!(body.to_string().contains("note"), "{body}");
        let (status, body) = patch(&app, &high, json!({"status": "reviewed", "note": "Talked it through."})).await;
        assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("reviewed")), "{body}");
        // A low one closes without.
        let low = format!("/api/flags/{}", ids[2]);
        assert_eq!(patch(&app, &low, json!({"status": "dismissed"})).await.0, StatusCode::OK);

        // Reopened: back in the queue, the review cleared, audited as such.
        let (status, body) = patch(&app, &high, json!({"status": "open"})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!((body["status"].as_str(), &body["reviewedAt"]), (Some("open"), &Value::Null));
        let (_, queue) = app.get(app.supervisor, "/api/flags").await;
        assert_eq!(queue.as_array().map(Vec::len), Some(4), "{backend:?}");
        let (status, audit) = app.get(app.admin, "/api/audit-events?action=flag.reopened").await;
        assert_eq!(status, StatusCode::OK, "{audit}");
        assert_eq!(audit["entries"].as_array().map(Vec::len), Some(1), "{backend:?}: {audit}");
    }
}

/// A chat scenario assigned to counselor A; answers the assignment's id.
async fn chat_assignment(app: &App) -> String {
    let body = json!({"title": "Night caller", "prompt": "You are Jordan.", "mode": "chat", "category": "onboarding"});
    let (status, scenario) = app.post(app.supervisor, "/api/scenarios", body).await;
    assert_eq!(status, StatusCode::CREATED, "{scenario}");
    let (status, assignment) = app
        .post(app.supervisor, "/api/assignments", json!({"scenarioId": id(&scenario), "counselorId": app.counselor}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{assignment}");
    id(&assignment)
}

#[tokio::test]
async fn a_repeated_chat_start_resumes_the_attempt_in_progress() {
    for (backend, db) in testing::all().await {
        let sim = openai_sim::Simulator::start().await.expect("simulator");
        let base = sim.base_url();
        let app = common::spawn_with(&db, |c| {
            c.openai_api_key = Some(admin::Secret::new("sim-key"));
            c.openai_base_url = base;
        })
        .await;
        let assignment = chat_assignment(&app).await;
        let body = json!({"assignmentId": assignment});
        // A double click: two starts at once are one attempt.
        let (a, b) = tokio::join!(
            app.post(app.counselor, "/api/sessions", body.clone()),
            app.post(app.counselor, "/api/sessions", body.clone())
        );
        let mut statuses = [a.0, b.0];
        statuses.sort();
        assert_eq!(statuses, [StatusCode::OK, StatusCode::CREATED], "{backend:?}: {} {}", a.1, b.1);
        assert_eq!(a.1["session"]["id"], b.1["session"]["id"], "{backend:?}");
        let session = a.1["session"]["id"].as_str().expect("id").to_owned();
        // Start again after writing: still the same attempt, with its conversation.
        let (status, body) =
            app.post(app.counselor, &format!("/api/sessions/{session}/message"), json!({"content": "I'm here."})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, again) = app.post(app.counselor, "/api/sessions", json!({"assignmentId": assignment})).await;
        assert_eq!((status, again["resumed"].as_bool()), (StatusCode::OK, Some(true)), "{again}");
        assert_eq!(again["session"]["id"], session.as_str());
        let (_, one) = app.get(app.counselor, &format!("/api/assignments/{assignment}")).await;
        assert_eq!(one["attempts"], 1, "{backend:?}: {one}");
        // A supervisor's reset puts the abandoned attempt aside: the next start is a new one.
        let (status, _) = patch(&app, &format!("/api/assignments/{assignment}"), json!({"status": "pending"})).await;
        assert_eq!(status, StatusCode::OK);
        let (status, fresh) = app.post(app.counselor, "/api/sessions", json!({"assignmentId": assignment})).await;
        assert_eq!(status, StatusCode::CREATED, "{backend:?}: {fresh}");
        assert_eq!(fresh["session"]["attemptNumber"], 2);

        // Free practice: a start the counselor has not written in yet is resumed; once they
        // have, a start is a new session.
        let (s1, first) = app.post(app.counselor, "/api/sessions", json!({})).await;
        let (s2, second) = app.post(app.counselor, "/api/sessions", json!({})).await;
        assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::OK), "{backend:?}");
        assert_eq!(first["session"]["id"], second["session"]["id"]);
        let free = first["session"]["id"].as_str().expect("id");
        let (status, _) =
            app.post(app.counselor, &format!("/api/sessions/{free}/message"), json!({"content": "Hi."})).await;
        assert_eq!(status, StatusCode::OK);
        let (s3, third) = app.post(app.counselor, "/api/sessions", json!({})).await;
        assert_eq!(s3, StatusCode::CREATED, "{backend:?}: {third}");
        assert_ne!(third["session"]["id"], first["session"]["id"]);
    }
}

#[tokio::test]
async fn assignments_refuse_past_due_dates_mark_overdue_and_unassign() {
    for (backend, db) in testing::all().await {
        let app = common::spawn(&db).await;
        let scenario = id(&app.scenario("Due dates").await);
        let past = "2020-01-01T00:00:00Z";
        let body = json!({"scenarioId": scenario, "counselorId": app.counselor, "dueAt": past});
        let (status, refused) = app.post(app.supervisor, "/api/assignments", body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{backend:?}: {refused}");
        assert!(refused.to_string().contains("dueAt") && refused.to_string().contains("passed"), "{refused}");
        let bulk = json!({"scenarioIds": [scenario], "counselorIds": [app.counselor], "dueAt": past});
        assert_eq!(app.post(app.supervisor, "/api/assignments", bulk).await.0, StatusCode::UNPROCESSABLE_ENTITY);

        // Due in a moment: not overdue yet; then overdue, and still editable to a later date.
        let soon = store::Timestamp::from_millis(store::Timestamp::now().millis() + 1500);
        let body = json!({"scenarioId": scenario, "counselorId": app.counselor, "dueAt": soon});
        let (status, made) = app.post(app.supervisor, "/api/assignments", body).await;
        assert_eq!(status, StatusCode::CREATED, "{made}");
        assert_eq!(made["overdue"], false);
        let path = format!("/api/assignments/{}", id(&made));
        tokio::time::sleep(std::time::Duration::from_millis(1700)).await;
        let (_, late) = app.get(app.supervisor, &path).await;
        assert_eq!(late["overdue"], true, "{backend:?}: {late}");
        let (status, body) = patch(&app, &path, json!({"dueAt": past})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let (status, moved) = patch(&app, &path, json!({"dueAt": "2031-05-01"})).await;
        assert_eq!((status, &moved["overdue"]), (StatusCode::OK, &json!(false)), "{moved}");

        // Unassigned (no attempt yet): gone.
        let (status, _) = app.call(Some(app.supervisor), Method::DELETE, &path, None).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{backend:?}");
        assert_eq!(app.get(app.supervisor, &path).await.0, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn the_sessions_list_filters_sorts_searches_and_finds_what_needs_review() {
    for (backend, db) in testing::all().await {
        let app = common::spawn(&db).await;
        // Evaluated, capped by an open flag: needs review. A free session with no score: does not.
        let evaluated = crate::calibration::evaluated_session(&app).await;
        let scenario = app.scenario("Harbour night shift").await;
        let new = NewSession {
            user_id: app.other_counselor,
            assignment_id: None,
            scenario_id: Some(id(&scenario).parse().expect("id")),
            kind: SessionKind::Chat,
            room_name: None,
        };
        let plain = app.store.create_session(app.account, &new).await.expect("session").id;

        let list = |query: &str| {
            let (app, path) = (&app, format!("/api/sessions?type=all{query}"));
            async move { app.get(app.supervisor, &path).await }
        };
        let ids = |v: &Value| -> Vec<String> {
            v.as_array().expect("list").iter().map(|s| s["id"].as_str().unwrap_or("").to_owned()).collect()
        };
        let (status, all) = list("").await;
        assert_eq!(status, StatusCode::OK, "{all}");
        assert_eq!(ids(&all), [plain.to_string(), evaluated.to_string()], "{backend:?}: newest first");
        assert_eq!(all[0]["scenarioTitle"], "Harbour night shift");
        assert_eq!(all[0]["counselorName"], "Robin Counselor");
        assert_eq!(all[1]["openFlags"], 1);
        assert!(all[1]["overallScore"].is_number());

        let (_, oldest) = list("&sort=oldest").await;
        assert_eq!(ids(&oldest), [evaluated.to_string(), plain.to_string()]);
        let (_, by_score) = list("&sort=score_high").await;
        assert_eq!(ids(&by_score)[0], evaluated.to_string(), "{backend:?}: sessions without a score come last");
        let (_, found) = list("&q=harbour").await;
        assert_eq!(ids(&found), [plain.to_string()], "{backend:?}");
        let (_, found) = list("&q=robin").await;
        assert_eq!(ids(&found), [plain.to_string()]);
        let (_, none) = list("&q=100%25").await;
        assert_eq!(ids(&none), Vec::<String>::new(), "{backend:?}: % is a character, not a wildcard");
        let (_, review) = list("&needsReview=true").await;
        assert_eq!(ids(&review), [evaluated.to_string()], "{backend:?}");
        let (_, active) = list("&status=active").await;
        assert_eq!(ids(&active), [plain.to_string()], "{backend:?}: the evaluated one is completed");
        let (_, future) = list("&from=2099-01-01T00:00:00Z").await;
        assert_eq!(ids(&future), Vec::<String>::new());
        let (_, scoped) = list(&format!("&scenarioId={}", id(&scenario))).await;
        assert_eq!(ids(&scoped), [plain.to_string()], "{backend:?}");
        let (_, theirs) = list(&format!("&userId={}", app.counselor)).await;
        assert_eq!(ids(&theirs), [evaluated.to_string()], "{backend:?}");

        // Bad query values: 400; a range that ends before it starts: 422.
        assert_eq!(list("&sort=sideways").await.0, StatusCode::BAD_REQUEST);
        assert_eq!(list("&status=paused").await.0, StatusCode::BAD_REQUEST);
        let (status, body) = list("&from=2030-01-02T00:00:00Z&to=2030-01-01T00:00:00Z").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{backend:?}: {body}");

        // A counselor sees their own rows, with no review state.
        let (_, mine) = app.get(app.counselor, "/api/sessions?type=all&needsReview=true").await;
        assert_eq!(ids(&mine), [evaluated.to_string()]);
        assert_eq!((&mine[0]["openFlags"], &mine[0]["needsReview"]), (&json!(0), &json!(false)));
    }
}

#[tokio::test]
async fn a_voice_call_the_counselor_never_spoke_in_is_not_an_attempt() {
    for (backend, db) in testing::all().await {
        let app = common::spawn(&db).await;
        let scenario = id(&app.scenario("Quiet line").await);
        let (status, assignment) = app
            .post(app.supervisor, "/api/assignments", json!({"scenarioId": scenario, "counselorId": app.counselor}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{assignment}");
        let new = NewSession {
            user_id: app.counselor,
            assignment_id: Some(id(&assignment).parse().expect("id")),
            scenario_id: None,
            kind: SessionKind::Voice,
            room_name: Some(format!("pt-{}", uuid::Uuid::now_v7())),
        };
        let expires = store::Timestamp::from_millis(store::Timestamp::now().millis() + 600_000);
        let (session, _) = app.store.start_voice_session(app.account, &new, Some(("h", expires))).await.expect("voice");
        let caller = store::NewTurn {
            speaker: store::Speaker::Caller,
            text: "Hello? Is anyone there?".into(),
            started_ms: 0,
            ended_ms: Some(900),
            segment_id: Some("c1".into()),
        };
        app.store.append_turns(app.account, session.id, &[caller]).await.expect("turn");
        let end =
            store::VoiceEnd { reason: store::EndReason::Silence, usage: None, turn_metrics: vec![], recording: None };
        let handle = crate::common::session_ref(&app.store, session.id).await;
        let ended = app.store.end_voice_session(&handle, &end).await.expect("ended");
        assert_eq!(ended.status, store::SessionStatus::Abandoned, "{backend:?}");
        let (_, view) = app.get(app.counselor, &format!("/api/sessions/{}", session.id)).await;
        assert!(view["notGradedReason"].as_str().unwrap_or("").contains("not an attempt"), "{backend:?}: {view}");
        let (_, after) = app.get(app.counselor, &format!("/api/assignments/{}", id(&assignment))).await;
        assert_eq!((after["attempts"].as_i64(), after["status"].as_str()), (Some(0), Some("in_progress")), "{after}");
    }
}

#[tokio::test]
async fn a_live_voice_call_is_rejoined_in_its_own_room() {
    for (backend, db) in testing::all().await {
        let secret = format!("test-secret-{}", uuid::Uuid::now_v7().simple());
        let app = common::spawn_with(&db, |c| {
            c.livekit_url = Some("ws://127.0.0.1:7880".into());
            c.livekit_api_key = Some("devkey".into());
            c.livekit_api_secret = Some(admin::Secret::new(secret.clone()));
        })
        .await;
        let (status, first) = app.post(app.counselor, "/api/livekit/token", json!({})).await;
        assert_eq!(status, StatusCode::CREATED, "{first}");
        let session = first["sessionId"].as_str().expect("id").to_owned();
        // After a reload: a token for the same room and session, dispatching no second agent.
        let (status, again) = app.post(app.counselor, "/api/livekit/token", json!({"rejoinSessionId": session})).await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {again}");
        assert_eq!((&again["sessionId"], &again["roomName"]), (&first["sessionId"], &first["roomName"]));
        let claims = livekit_api::access_token::TokenVerifier::with_api_key("devkey", &secret)
            .verify(again["token"].as_str().expect("token"))
            .expect("signed");
        assert_eq!(claims.video.room, first["roomName"].as_str().expect("room"));
        assert!(claims.room_config.is_none_or(|c| c.agents.is_empty()), "{backend:?}: no second dispatch");
        let (_, live) = app.get(app.counselor, &format!("/api/sessions/{session}")).await;
        assert_eq!(live["status"], "active");
        // Someone else's call is not found; an ended one answers 409.
        let body = json!({"rejoinSessionId": session});
        assert_eq!(app.post(app.other_counselor, "/api/livekit/token", body.clone()).await.0, StatusCode::NOT_FOUND);
        app.store
            .end_session(app.account, session.parse().expect("id"), store::SessionStatus::Abandoned)
            .await
            .expect("end");
        assert_eq!(app.post(app.counselor, "/api/livekit/token", body).await.0, StatusCode::CONFLICT);
    }
}

/// The list shows the score everyone reads (the reviewed one), and follows a review made after
/// the list was read: lists keep each evaluation's score with the reviews and flags it came
/// from (`evaluation::session_scores`), so a stale one would show here.
#[tokio::test]
async fn the_session_list_follows_a_review_made_after_it_was_read() {
    for (backend, db) in testing::all().await {
        let app = common::spawn(&db).await;
        let session = crate::calibration::evaluated_session(&app).await;
        let (listed, detail) = list_and_detail_scores(&app, session).await;
        assert!(listed.is_number() && listed == detail, "{backend:?}: {listed} vs {detail}");

        let review = json!({"overrides": [{"kind": "flag", "target": "missed_rescue", "value": "raised",
            "reason": "Turn 4: pills at home and no rescue started."}]});
        let (status, reviewed) = app.post(app.supervisor, &format!("/api/sessions/{session}/review"), review).await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {reviewed}");
        let (after, detail_after) = list_and_detail_scores(&app, session).await;
        assert_eq!(after, reviewed["overallScore"], "{backend:?}");
        assert_eq!(after, detail_after, "{backend:?}");
        assert_ne!(after, listed, "{backend:?}: the review capped the score");
    }
}

/// A session's score in the supervisor's list and in its own view.
async fn list_and_detail_scores(app: &App, session: store::SessionId) -> (Value, Value) {
    let (status, list) = app.get(app.supervisor, "/api/sessions?type=all").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let row = list.as_array().expect("list").iter().find(|r| r["id"] == session.to_string()).cloned();
    let (_, detail) = app.get(app.supervisor, &format!("/api/sessions/{session}")).await;
    (row.expect("listed")["overallScore"].clone(), detail["evaluation"]["overallScore"].clone())
}
