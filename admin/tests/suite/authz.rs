//! The authorization matrix: every route of the OpenAPI document (which the router is built
//! from, so a new route without an entry here fails) x every kind of caller, with the expected
//! status, on every backend. Each cell runs against fresh records, so one caller's allowed
//! change cannot decide another's answer.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use store::testing;
use store::{NewAssignment, NewSession, NewUser, Role, ScenarioInput, ScenarioMode, SessionKind};
use uuid::Uuid;

use crate::common::{self, App, Creds, PASSWORD, spawn_with, with_creds};

const INTERNAL_KEY: &str = "internal-key-for-tests-only";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Anonymous,
    CounselorA,
    CounselorB,
    Supervisor,
    Admin,
    /// A supervisor of another account.
    Outsider,
    ApiKey,
    Internal,
}

const CALLERS: [Caller; 8] = [
    Caller::Anonymous,
    Caller::CounselorA,
    Caller::CounselorB,
    Caller::Supervisor,
    Caller::Admin,
    Caller::Outsider,
    Caller::ApiKey,
    Caller::Internal,
];

/// Fresh records of account A for one cell of the matrix.
struct World {
    /// Reusable scenario with an assignment of counselor A.
    scenario: store::ScenarioId,
    /// Reusable scenario without dependents (for delete).
    spare_scenario: store::ScenarioId,
    one_time_scenario: store::ScenarioId,
    /// Counselor A's pending assignment of `scenario`.
    assignment: store::AssignmentId,
    /// Counselor A's free-practice session.
    session: store::SessionId,
    /// A counselor for user management routes.
    user: store::UserId,
    api_key: store::ApiKeyId,
    /// An open flag on `session`.
    flag: store::FlagId,
    /// Counselor A's assignment with one practised attempt.
    attempted: store::AssignmentId,
    webhook: store::WebhookId,
    policy: Uuid,
    /// Counselor A's live voice session (joined by no one yet).
    voice_live: store::SessionId,
    /// Counselor A's ended voice session with a recording and usage.
    voice_done: store::SessionId,
    n: String,
}

async fn world(app: &App) -> World {
    let s = &app.store;
    let n = Uuid::now_v7().simple().to_string();
    let scenario_input = |title: String, one_time: bool| ScenarioInput {
        title,
        prompt: "You are Sam.".into(),
        description: None,
        mode: ScenarioMode::Phone,
        category: "onboarding".into(),
        skills: vec![],
        difficulty: None,
        estimated_time: None,
        relevant_policy_sections: None,
        evaluator_context: None,
        is_one_time: Some(one_time),
        assign_to: None,
        voice: None,
        risk_profile: None,
    };
    let scenario =
        s.create_scenario(app.account, None, &scenario_input(format!("S {n}"), false)).await.expect("s").0.id;
    let spare_scenario =
        s.create_scenario(app.account, None, &scenario_input(format!("Spare {n}"), false)).await.expect("s").0.id;
    let one_time_scenario =
        s.create_scenario(app.account, None, &scenario_input(format!("Once {n}"), true)).await.expect("s").0.id;
    let new = NewAssignment { scenario_id: scenario, counselor_id: app.counselor, due_at: None, notes: None };
    let assignment = s.create_assignment(app.account, None, &new).await.expect("assignment").id;
    let new = NewSession {
        user_id: app.counselor,
        assignment_id: None,
        scenario_id: None,
        kind: SessionKind::Chat,
        room_name: None,
    };
    let session = s.create_session(app.account, &new).await.expect("session").id;
    let turn = |speaker, text: &str, at| store::NewTurn {
        speaker,
        text: text.into(),
        started_ms: at,
        ended_ms: None,
        segment_id: None,
    };
    s.append_turns(
        app.account,
        session,
        &[
            turn(store::Speaker::Caller, "I can't do this anymore.", 0),
            turn(store::Speaker::Counselor, "I'm here. What's happening?", 1000),
        ],
    )
    .await
    .expect("turns");
    let flag = store::NewFlag {
        flag_type: store::FlagType::AiCallerProblem,
        severity: store::FlagSeverity::Medium,
        source: store::FlagSource::UserFeedback,
        details: "The caller broke character.".into(),
        turns: vec![],
    };
    let flag = s.insert_flag(app.account, session, &flag).await.expect("flag").id;
    let practised =
        s.create_scenario(app.account, None, &scenario_input(format!("Practised {n}"), false)).await.expect("s").0.id;
    let new = NewAssignment { scenario_id: practised, counselor_id: app.counselor, due_at: None, notes: None };
    let attempted = s.create_assignment(app.account, None, &new).await.expect("assignment").id;
    let new = NewSession {
        user_id: app.counselor,
        assignment_id: Some(attempted),
        scenario_id: None,
        kind: SessionKind::Chat,
        room_name: None,
    };
    let attempt = s.create_session(app.account, &new).await.expect("attempt").id;
    s.append_turns(app.account, attempt, &[turn(store::Speaker::Counselor, "Crisis line, I'm listening.", 0)])
        .await
        .expect("turns");
    let webhook = s
        .create_webhook(
            app.account,
            "https://partner.example.org/hook",
            &[store::WebhookEvent::FlagRaised],
            "s",
            None,
            &store::Audit::new(None, None, "test"),
        )
        .await
        .expect("webhook")
        .id;
    let policy = store::NewPolicy {
        file_name: "p.txt".into(),
        content_type: "text/plain".into(),
        byte_size: 1,
        text: "p".into(),
        chunks: vec![("p".into(), None)],
        embedding_model: None,
        uploaded_by: None,
    };
    let policy =
        s.insert_policy(app.account, &policy, &store::Audit::new(None, None, "test")).await.expect("policy").id;
    let user = s
        .create_user(
            app.account,
            NewUser {
                email: format!("u-{n}@example.org"),
                display_name: "Managed".into(),
                role: Role::Counselor,
                external_id: None,
                is_demo: false,
            },
        )
        .await
        .expect("user")
        .id;
    let api_key = admin::auth::create_api_key(s, app.account, "spare", None).await.expect("key").0.id;
    // A category no scenario uses (rename, delete).
    s.add_category(app.account, &format!("Spare {n}")).await.expect("category");
    let voice = |user| NewSession {
        user_id: user,
        assignment_id: None,
        scenario_id: None,
        kind: SessionKind::Voice,
        room_name: None,
    };
    let expires = store::Timestamp::from_millis(store::Timestamp::now().millis() + 600_000);
    // The ended one first: a counselor has one live voice session, and starting one ends the last.
    let voice_done =
        s.start_voice_session(app.account, &voice(app.counselor), Some((&n, expires))).await.expect("voice").0.id;
    let file = format!("{voice_done}.ogg");
    std::fs::write(RECORDINGS.join(&file), b"OggS test bytes").expect("recording file");
    let end = store::VoiceEnd {
        reason: store::EndReason::CounselorLeft,
        usage: Some(store::RealtimeUsage { model: "gpt-realtime".into(), ..Default::default() }),
        turn_metrics: vec![],
        recording: Some(store::RecordingMeta { duration_ms: 1000, bytes: 15 }),
    };
    s.end_voice_session(&common::session_ref(s, voice_done).await, &end).await.expect("ended");
    let voice_live =
        s.start_voice_session(app.account, &voice(app.counselor), Some((&n, expires))).await.expect("voice").0.id;
    World {
        scenario,
        spare_scenario,
        one_time_scenario,
        assignment,
        session,
        user,
        api_key,
        flag,
        attempted,
        webhook,
        policy,
        voice_live,
        voice_done,
        n,
    }
}

/// Where the matrix's app reads recordings: under the target directory, one per test process.
/// Those of processes that have ended are deleted here, so repeated runs leave one behind at most.
static RECORDINGS: std::sync::LazyLock<std::path::PathBuf> = std::sync::LazyLock::new(|| {
    let parent = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    for entry in std::fs::read_dir(parent).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let pid = name.to_str().and_then(|n| n.strip_prefix("authz-recordings-"));
        if pid.is_some_and(|pid| !std::path::Path::new("/proc").join(pid).exists()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let dir = parent.join(format!("authz-recordings-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("recordings dir");
    dir
});

/// The request for one route, given the records of the cell.
fn request(
    app: &App,
    method: &Method,
    path: &str,
    w: &World,
) -> (String, Option<Value>, Option<(&'static str, String)>) {
    let n = &w.n;
    let body = |v: Value| Some(v);
    let (url, body, raw) = match (method.as_str(), path) {
        ("GET", "/api/external/assignments") => {
            ("/api/external/assignments?user_id=ext-Casey%20Counselor".into(), None, None)
        }
        ("GET", p) if !p.contains('{') => (p.to_owned(), None, None),
        ("POST", "/api/auth/login") => {
            (path.to_owned(), body(json!({"email": app.emails[&app.counselor], "password": PASSWORD})), None)
        }
        ("POST", "/api/auth/logout") => (path.to_owned(), None, None),
        ("POST", "/api/auth/password") => (
            path.to_owned(),
            body(json!({"currentPassword": PASSWORD, "newPassword": PASSWORD})), // same password: 422 once authorized
            None,
        ),
        ("POST", "/api/auth/demo-login") => (path.to_owned(), body(json!({"userId": app.counselor})), None),
        ("POST", "/api/categories") => (path.to_owned(), body(json!({"name": format!("cat-{n}")})), None),
        ("PATCH", "/api/categories/{name}") => {
            (format!("/api/categories/Spare%20{n}"), body(json!({"name": format!("Renamed & {n}")})), None)
        }
        ("DELETE", "/api/categories/{name}") => (format!("/api/categories/Spare%20{n}"), None, None),
        ("PUT", "/api/accounts/budget") => {
            (path.to_owned(), body(json!({"monthlyBudgetUsd": 500.0, "sessionTokenCap": 200000})), None)
        }
        ("POST", "/api/users") => (
            path.to_owned(),
            body(json!({"email": format!("new-{n}@example.org"), "displayName": "New", "role": "counselor"})),
            None,
        ),
        ("GET", "/api/users/{id}") => (format!("/api/users/{}", app.counselor), None, None),
        ("PATCH", "/api/users/{id}") => {
            (format!("/api/users/{}", w.user), body(json!({"displayName": "Renamed"})), None)
        }
        ("POST", "/api/users/{id}/password-reset") => (format!("/api/users/{}/password-reset", w.user), None, None),
        ("POST", "/api/users/{id}/erase") => (format!("/api/users/{}/erase", w.user), None, None),
        ("PUT", "/api/retention") => (path.to_owned(), body(json!({"transcriptDays": 365})), None),
        ("POST", "/api/api-keys") => (path.to_owned(), body(json!({"name": "partner"})), None),
        ("DELETE", "/api/api-keys/{id}") => (format!("/api/api-keys/{}", w.api_key), None, None),
        ("POST", "/api/scenarios") => (
            path.to_owned(),
            body(
                json!({"title": format!("New {n}"), "prompt": "You are Al.", "mode": "phone", "category": "onboarding"}),
            ),
            None,
        ),
        ("GET", "/api/scenarios/{id}") => (format!("/api/scenarios/{}", w.scenario), None, None),
        ("PUT", "/api/scenarios/{id}") => (
            format!("/api/scenarios/{}", w.scenario),
            body(
                json!({"title": format!("S {n}"), "prompt": "You are Sam, again.", "mode": "phone", "category": "onboarding"}),
            ),
            None,
        ),
        ("DELETE", "/api/scenarios/{id}") => (format!("/api/scenarios/{}", w.spare_scenario), None, None),
        ("POST", "/api/scenarios/{id}/promote") => (
            format!("/api/scenarios/{}/promote", w.one_time_scenario),
            body(json!({"confirmPersonalDetailsReviewed": true})),
            None,
        ),
        ("POST", "/api/scenarios/preview-caller") => (path.to_owned(), body(json!({"prompt": "You are Al."})), None),
        ("POST", "/api/scenarios/import") => (
            path.to_owned(),
            None,
            Some(("text/csv", format!("title,prompt,mode,category\nImported {n},You are Jo.,chat,refresher\n"))),
        ),
        ("POST", "/api/assignments") => {
            (path.to_owned(), body(json!({"scenarioId": w.spare_scenario, "counselorId": app.other_counselor})), None)
        }
        ("GET", "/api/assignments/{id}") => (format!("/api/assignments/{}", w.assignment), None, None),
        ("PATCH", "/api/assignments/{id}") => {
            (format!("/api/assignments/{}", w.assignment), body(json!({"status": "in_progress"})), None)
        }
        ("DELETE", "/api/assignments/{id}") => (format!("/api/assignments/{}", w.assignment), None, None),
        ("GET", "/api/sessions/{id}") => (format!("/api/sessions/{}", w.session), None, None),
        ("POST", "/api/sessions") => (path.to_owned(), body(json!({})), None),
        ("POST", "/api/sessions/{id}/message") => {
            (format!("/api/sessions/{}/message", w.session), body(json!({"content": "Are you safe right now?"})), None)
        }
        ("POST", "/api/sessions/{id}/evaluate") => (format!("/api/sessions/{}/evaluate", w.session), None, None),
        ("POST", "/api/sessions/{id}/evaluation/release") => {
            (format!("/api/sessions/{}/evaluation/release", w.session), body(json!({"note": "checked"})), None)
        }
        ("POST", "/api/sessions/{id}/analyze") => (format!("/api/sessions/{}/analyze", w.session), None, None),
        ("GET", "/api/sessions/{id}/grader-output") => {
            (format!("/api/sessions/{}/grader-output", w.session), None, None)
        }
        ("PUT", "/api/sessions/{id}/call-record") => (
            format!("/api/sessions/{}/call-record", w.session),
            body(json!({"status": "filed", "riskLevel": "moderate", "actions": ["safety_plan"]})),
            None,
        ),
        // No suggestion exists in the matrix's world: who may ask is what is checked here
        // (`truth.rs` edits real ones).
        ("PATCH", "/api/evaluation-suggestions/{id}") => {
            (format!("/api/evaluation-suggestions/{}", Uuid::now_v7()), body(json!({"text": "Try asking."})), None)
        }
        ("DELETE", "/api/evaluation-suggestions/{id}") => {
            (format!("/api/evaluation-suggestions/{}", Uuid::now_v7()), None, None)
        }
        ("POST", "/api/sessions/{id}/flag") => {
            (format!("/api/sessions/{}/flag", w.session), body(json!({"details": "The caller repeated itself."})), None)
        }
        ("PATCH", "/api/flags/{id}") => (format!("/api/flags/{}", w.flag), body(json!({"status": "dismissed"})), None),
        ("GET", "/api/external/assignments/{id}/result") => {
            (format!("/api/external/assignments/{}/result", w.attempted), None, None)
        }
        ("POST", "/api/external/assignments/{id}/evaluate") => {
            (format!("/api/external/assignments/{}/evaluate", w.attempted), None, None)
        }
        ("GET", "/api/external/assignments/{id}/transcript") => {
            (format!("/api/external/assignments/{}/transcript?attempt=1", w.attempted), None, None)
        }
        ("POST", "/api/webhooks") => {
            (path.to_owned(), body(json!({"url": "https://partner.example.org/hook", "events": ["flag.raised"]})), None)
        }
        ("DELETE", "/api/webhooks/{id}") => (format!("/api/webhooks/{}", w.webhook), None, None),
        ("POST", "/api/policies") => {
            (path.to_owned(), None, Some(("text/plain", format!("Policy {n}: call a supervisor."))))
        }
        ("DELETE", "/api/policies/{id}") => (format!("/api/policies/{}", w.policy), None, None),
        ("GET" | "POST", "/api/scenarios/{id}/test-runs") => (
            format!("/api/scenarios/{}/test-runs", w.scenario),
            (method.as_str() == "POST").then(|| json!({"kind": "poor", "maxTurns": 1})),
            None,
        ),
        ("GET", "/api/scenarios/{id}/fidelity") => (format!("/api/scenarios/{}/fidelity", w.scenario), None, None),
        ("PUT", "/api/accounts/risk-levels") => (
            path.to_owned(),
            body(json!({"levels": [{"label": "Low", "standard": "low"}, {"label": "Moderate", "standard": "moderate"},
                                   {"label": "High", "standard": "high"}, {"label": "Imminent", "standard": "imminent"}]})),
            None,
        ),
        ("POST", "/api/scenarios/test-runs/rerun-all") => (path.to_owned(), None, None),
        ("POST", "/api/scenarios/{id}/evaluator-context") => (
            format!("/api/scenarios/{}/evaluator-context", w.scenario),
            None,
            Some(("text/plain", "Expect a direct question about suicide.".into())),
        ),
        ("POST", "/api/scenarios/extract-text") => (path.to_owned(), None, Some(("text/plain", "A complaint.".into()))),
        ("POST", "/api/scenarios/generate") => {
            (path.to_owned(), body(json!({"complaintText": "A caller complained."})), None)
        }
        ("POST", "/api/sessions/{id}/document-review") => (
            format!("/api/sessions/{}/document-review", w.session),
            None,
            Some(("application/pdf", "%PDF-1.4 notes".into())),
        ),
        ("GET", "/api/sessions/{id}/document-reviews") => {
            (format!("/api/sessions/{}/document-reviews", w.session), None, None)
        }
        ("GET", "/api/webhooks/{id}/deliveries") => (format!("/api/webhooks/{}/deliveries", w.webhook), None, None),
        ("POST", "/api/webhooks/{id}/test") => (format!("/api/webhooks/{}/test", w.webhook), None, None),
        ("POST", "/api/livekit/token") => (path.to_owned(), body(json!({})), None),
        ("POST", "/api/internal/sessions") => {
            (path.to_owned(), body(json!({"accountId": app.account, "userId": app.counselor})), None)
        }
        ("POST", "/api/internal/sessions/{id}/transcript") => (
            format!("/api/internal/sessions/{}/transcript", w.session),
            body(json!({"turns": [{"speaker": "counselor", "text": "Hello", "startedMs": 0}]})),
            None,
        ),
        ("POST", "/api/internal/sessions/{id}/end") => {
            (format!("/api/internal/sessions/{}/end", w.session), body(json!({"status": "completed"})), None)
        }
        ("GET", "/api/internal/sessions/{id}/setup") => {
            (format!("/api/internal/sessions/{}/setup", w.voice_live), None, None)
        }
        ("GET", "/api/internal/sessions/{id}/status") => {
            (format!("/api/internal/sessions/{}/status", w.voice_live), None, None)
        }
        ("POST", "/api/internal/sessions/{id}/call-end") => (
            format!("/api/internal/sessions/{}/call-end", w.voice_live),
            body(json!({"reason": "counselor_left"})),
            None,
        ),
        ("POST", "/api/sessions/{id}/end") => (format!("/api/sessions/{}/end", w.voice_live), None, None),
        ("GET", "/api/sessions/{id}/recording") => (format!("/api/sessions/{}/recording", w.voice_done), None, None),
        ("GET", "/api/sessions/{id}/voice-usage") => {
            (format!("/api/sessions/{}/voice-usage", w.voice_done), None, None)
        }
        ("POST", "/api/external/scenarios") => (
            path.to_owned(),
            body(
                json!({"title": format!("Partner {n}"), "prompt": "You are Sarah.", "mode": "phone", "category": "onboarding"}),
            ),
            None,
        ),
        ("POST", "/api/external/assignments") => {
            (path.to_owned(), body(json!({"user_id": "ext-Robin Counselor", "scenario_id": w.spare_scenario})), None)
        }
        ("POST", "/api/sessions/{id}/review") => (
            format!("/api/sessions/{}/review", w.session),
            body(
                json!({"overrides": [{"kind": "check", "target": "rapport.warm_opening", "value": "yes", "reason": "Turn 1 greets the caller."}]}),
            ),
            None,
        ),
        ("GET", "/api/sessions/{id}/reviews") => (format!("/api/sessions/{}/reviews", w.session), None, None),
        ("GET", "/api/sessions/{id}/golden-case") => (format!("/api/sessions/{}/golden-case", w.session), None, None),
        ("POST", "/api/sessions/{id}/golden-case") => {
            let case: Value = serde_json::from_str(include_str!("../../../golden/01_direct_ask_good_assessment.json"))
                .expect("golden case");
            (
                format!("/api/sessions/{}/golden-case", w.session),
                body(json!({"case": case, "personalDetailsRemoved": true})),
                None,
            )
        }
        (m, p) => panic!("no request for {m} {p}: add the route to the authorization matrix"),
    };
    (url, body, raw)
}

/// Expected status per caller, in the order of [`CALLERS`]:
/// anonymous, counselor A, counselor B, supervisor, admin, outsider, API key, internal key.
fn expected(method: &Method, path: &str) -> [u16; 8] {
    const PUBLIC: [u16; 8] = [200; 8];
    match (method.as_str(), path) {
        ("GET", "/healthz" | "/readyz") => PUBLIC,
        // On the public listener only with METRICS_TOKEN, which no caller here holds.
        ("GET", "/metrics") => [401; 8],
        ("POST", "/api/auth/login") => PUBLIC,
        ("POST", "/api/auth/logout") => [401, 204, 204, 204, 204, 204, 401, 401],
        ("GET", "/api/me") => [401, 200, 200, 200, 200, 200, 401, 401],
        ("POST", "/api/auth/password") => [401, 422, 422, 422, 422, 422, 401, 401],
        // DEMO_MODE is off: the switcher does not exist.
        ("GET", "/api/auth/demo-users") | ("POST", "/api/auth/demo-login") => [404; 8],
        ("GET", "/api/accounts" | "/api/categories") => [401, 200, 200, 200, 200, 200, 401, 401],
        ("POST", "/api/categories") => [401, 403, 403, 403, 201, 403, 401, 401],
        ("PATCH" | "DELETE", "/api/categories/{name}") => [401, 403, 403, 403, 200, 403, 401, 401],
        // The LLM spending ceiling and spend: account admins only.
        ("GET" | "PUT", "/api/accounts/budget") | ("GET", "/api/accounts/spend") => {
            [401, 403, 403, 403, 200, 403, 401, 401]
        }
        ("GET", "/api/users") => [401, 403, 403, 200, 200, 200, 401, 401],
        // Supervisors add counselors to their own account, the outsider to theirs.
        ("POST", "/api/users") => [401, 403, 403, 201, 201, 201, 401, 401],
        ("GET", "/api/users/{id}") => [401, 200, 404, 200, 200, 404, 401, 401],
        ("PATCH", "/api/users/{id}") | ("POST", "/api/users/{id}/password-reset") => {
            [401, 403, 403, 403, 200, 403, 401, 401]
        }
        ("GET", "/api/api-keys") => [401, 403, 403, 403, 200, 403, 401, 401],
        ("POST", "/api/api-keys") => [401, 403, 403, 403, 201, 403, 401, 401],
        ("DELETE", "/api/api-keys/{id}") => [401, 403, 403, 403, 204, 403, 401, 401],
        ("GET", "/api/scenarios") => [401, 403, 403, 200, 200, 200, 401, 401],
        ("POST", "/api/scenarios") => [401, 403, 403, 201, 201, 201, 401, 401],
        ("GET" | "PUT", "/api/scenarios/{id}") | ("POST", "/api/scenarios/{id}/promote") => {
            [401, 403, 403, 200, 200, 404, 401, 401]
        }
        ("DELETE", "/api/scenarios/{id}") => [401, 403, 403, 204, 204, 404, 401, 401],
        ("POST", "/api/scenarios/import") => [401, 403, 403, 200, 200, 200, 401, 401],
        ("POST", "/api/scenarios/preview-caller") => [401, 403, 403, 200, 200, 200, 401, 401],
        ("GET", "/api/assignments" | "/api/sessions") => [401, 200, 200, 200, 200, 200, 401, 401],
        // The outsider's account has neither the scenario nor the counselor: the field is named,
        // exactly as for ids that exist nowhere.
        ("POST", "/api/assignments") => [401, 403, 403, 201, 201, 422, 401, 401],
        ("GET" | "PATCH", "/api/assignments/{id}") => [401, 200, 404, 200, 200, 404, 401, 401],
        ("DELETE", "/api/assignments/{id}") => [401, 403, 403, 204, 204, 404, 401, 401],
        ("GET", "/api/sessions/{id}") => [401, 200, 404, 200, 200, 404, 401, 401],
        // Anyone signed in practises in their own account.
        ("POST", "/api/sessions") => [401, 201, 201, 201, 201, 201, 401, 401],
        // Only the session's counselor chats in it.
        ("POST", "/api/sessions/{id}/message") => [401, 200, 404, 404, 404, 404, 401, 401],
        ("POST", "/api/sessions/{id}/evaluate") => [401, 200, 404, 200, 200, 404, 401, 401],
        // Supervisors release a held evaluation; this one is not held (or not made yet): 409.
        ("POST", "/api/sessions/{id}/evaluation/release") => [401, 403, 403, 409, 409, 404, 401, 401],
        ("POST", "/api/sessions/{id}/analyze") => [401, 403, 403, 200, 200, 404, 401, 401],
        // Only the counselor who took the call files its record.
        ("PUT", "/api/sessions/{id}/call-record") => [401, 200, 404, 403, 403, 404, 401, 401],
        ("PATCH" | "DELETE", "/api/evaluation-suggestions/{id}") => [401, 403, 403, 404, 404, 404, 401, 401],
        // Supervisors audit what the graders answered; the matrix's session is not evaluated.
        ("GET", "/api/sessions/{id}/grader-output") => [401, 403, 403, 404, 404, 404, 401, 401],
        ("POST", "/api/sessions/{id}/flag") => [401, 201, 404, 201, 201, 404, 401, 401],
        ("GET", "/api/flags") => [401, 403, 403, 200, 200, 200, 401, 401],
        ("GET", "/api/flags/count") => [401, 403, 403, 200, 200, 200, 401, 401],
        // Counselors get their own progress; staff any counselor's or a cohort's.
        ("GET", "/api/progress") => [401, 200, 200, 200, 200, 200, 401, 401],
        ("GET", "/api/external/assignments/{id}/result" | "/api/external/assignments/{id}/transcript") => {
            [401, 401, 401, 401, 401, 401, 200, 401]
        }
        // Evaluation runs in the background: 202 with the result URL.
        ("POST", "/api/external/assignments/{id}/evaluate") => [401, 401, 401, 401, 401, 401, 202, 401],
        ("GET", "/api/webhooks") | ("GET", "/api/webhooks/{id}/deliveries") => [401, 403, 403, 403, 200, 403, 401, 401],
        ("POST", "/api/webhooks") => [401, 403, 403, 403, 201, 403, 401, 401],
        ("DELETE", "/api/webhooks/{id}") => [401, 403, 403, 403, 204, 403, 401, 401],
        ("POST", "/api/webhooks/{id}/test") => [401, 403, 403, 403, 202, 403, 401, 401],
        // Supervisors maintain training material, policies included.
        ("GET", "/api/policies") => [401, 403, 403, 200, 200, 200, 401, 401],
        ("POST", "/api/policies") => [401, 403, 403, 201, 201, 201, 401, 401],
        ("DELETE", "/api/policies/{id}") => [401, 403, 403, 204, 204, 404, 401, 401],
        ("POST", "/api/scenarios/{id}/evaluator-context") => [401, 403, 403, 200, 200, 404, 401, 401],
        // Test runs are supervisors' (queued: 202); the outsider's account has no such scenario.
        ("GET", "/api/scenarios/{id}/test-runs") => [401, 403, 403, 200, 200, 404, 401, 401],
        ("GET", "/api/scenarios/{id}/fidelity") => [401, 403, 403, 200, 200, 404, 401, 401],
        // Everyone reads the center's risk levels (forms and feedback show them); admins set them.
        ("GET", "/api/accounts/risk-levels") => [401, 200, 200, 200, 200, 200, 401, 401],
        ("PUT", "/api/accounts/risk-levels") => [401, 403, 403, 403, 200, 403, 401, 401],
        ("POST", "/api/scenarios/{id}/test-runs") => [401, 403, 403, 202, 202, 404, 401, 401],
        ("POST", "/api/scenarios/test-runs/rerun-all") => [401, 403, 403, 202, 202, 202, 401, 401],
        ("POST", "/api/scenarios/extract-text" | "/api/scenarios/generate") => [401, 403, 403, 200, 200, 200, 401, 401],
        // The owner reviews their documentation once the session is evaluated (here it is not yet).
        ("POST", "/api/sessions/{id}/document-review") => [401, 409, 404, 403, 403, 404, 401, 401],
        ("GET", "/api/sessions/{id}/document-reviews") => [401, 200, 404, 200, 200, 404, 401, 401],
        ("PATCH", "/api/flags/{id}") => [401, 403, 403, 200, 200, 404, 401, 401],
        ("POST", "/api/livekit/token") => [401, 201, 201, 201, 201, 201, 401, 401],
        ("POST", "/api/internal/sessions") => [401, 401, 401, 401, 401, 401, 401, 201],
        ("POST", "/api/internal/sessions/{id}/transcript" | "/api/internal/sessions/{id}/end") => {
            [401, 401, 401, 401, 401, 401, 401, 200]
        }
        // A call's own routes: the internal key here (the session credential has its own tests).
        ("GET", "/api/internal/sessions/{id}/setup" | "/api/internal/sessions/{id}/status")
        | ("POST", "/api/internal/sessions/{id}/call-end") => [401, 401, 401, 401, 401, 401, 401, 200],
        ("POST", "/api/sessions/{id}/end") | ("GET", "/api/sessions/{id}/recording") => {
            [401, 200, 404, 200, 200, 404, 401, 401]
        }
        ("GET", "/api/recordings") => [401, 200, 200, 200, 200, 200, 401, 401],
        ("GET", "/api/sessions/{id}/voice-usage") => [401, 403, 403, 200, 200, 404, 401, 401],
        ("GET", "/api/external/scenarios" | "/api/external/assignments") => [401, 401, 401, 401, 401, 401, 200, 401],
        ("POST", "/api/external/scenarios" | "/api/external/assignments") => [401, 401, 401, 401, 401, 401, 201, 401],
        // Calibration is for supervisors; the matrix's session is not evaluated (nothing to review).
        ("GET", "/api/calibration/agreement") => [401, 403, 403, 200, 200, 200, 401, 401],
        ("POST", "/api/sessions/{id}/review")
        | ("GET", "/api/sessions/{id}/golden-case")
        | ("POST", "/api/sessions/{id}/golden-case") => [401, 403, 403, 409, 409, 404, 401, 401],
        ("GET", "/api/sessions/{id}/reviews") => [401, 403, 403, 200, 200, 404, 401, 401],
        // The audit trail is for account admins (the outsider is a supervisor elsewhere).
        ("GET", "/api/audit-events") => [401, 403, 403, 403, 200, 403, 401, 401],
        ("GET" | "PUT", "/api/retention") | ("POST", "/api/users/{id}/erase") => {
            [401, 403, 403, 403, 200, 403, 401, 401]
        }
        (m, p) => panic!("no expectation for {m} {p}: add the route to the authorization matrix"),
    }
}

/// Every (method, path) of the OpenAPI document.
fn documented_routes() -> BTreeSet<(String, String)> {
    let spec = serde_json::to_value(admin::openapi()).expect("spec");
    let mut routes = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                routes.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    routes
}

#[tokio::test]
async fn every_route_answers_every_caller_as_expected() {
    let routes = documented_routes();
    assert!(routes.len() >= 40, "the document lists the routes ({})", routes.len());
    for (backend, db) in testing::all().await {
        let sim = openai_sim::Simulator::start().await.expect("simulator");
        let sim_url = sim.base_url();
        let app = spawn_with(&db, |c| {
            c.openai_api_key = Some(admin::Secret::new("sim-key"));
            c.openai_base_url = sim_url;
            c.internal_service_key = Some(admin::Secret::new(INTERNAL_KEY));
            c.livekit_url = Some("ws://127.0.0.1:7880".into());
            c.livekit_api_key = Some("devkey".into());
            c.livekit_api_secret = Some(admin::Secret::new("matrix-test-livekit-secret-0123456789"));
            c.voice.recordings_dir = RECORDINGS.clone();
        })
        .await;
        let (_, partner_key) = admin::auth::create_api_key(&app.store, app.account, "matrix", None).await.expect("key");
        let mut failures = Vec::new();
        for (method, path) in &routes {
            let method = Method::from_bytes(method.as_bytes()).expect("method");
            let want = expected(&method, path);
            for (caller, want) in CALLERS.iter().zip(want) {
                let w = world(&app).await;
                let (url, body, raw) = request(&app, &method, path, &w);
                let mut req = app.http.request(method.clone(), app.url(&url));
                req = match caller {
                    Caller::Anonymous => req,
                    Caller::ApiKey => req.header("x-api-key", &partner_key),
                    Caller::Internal => req.header("x-internal-service-key", INTERNAL_KEY),
                    user => {
                        let id = match user {
                            Caller::CounselorA => app.counselor,
                            Caller::CounselorB => app.other_counselor,
                            Caller::Supervisor => app.supervisor,
                            Caller::Admin => app.admin,
                            _ => app.outsider,
                        };
                        // Logging out, and signing in again (which rotates the session presented),
                        // must not end the session the rest of the matrix uses.
                        let creds: Creds = if path == "/api/auth/logout" || path == "/api/auth/login" {
                            app.login(&app.emails[&id], PASSWORD).await.expect("sign in")
                        } else {
                            app.creds[&id].clone()
                        };
                        with_creds(&creds, req)
                    }
                };
                if let Some(body) = body {
                    req = req.json(&body);
                }
                if let Some((content_type, text)) = raw {
                    req = req.header("content-type", content_type).body(text);
                }
                let (got, text) = common::send(req).await;
                if got != StatusCode::from_u16(want).expect("status") {
                    failures.push(format!("{method} {path} as {caller:?}: want {want}, got {got}: {text}"));
                }
            }
        }
        assert!(failures.is_empty(), "{backend:?}: {} cells differ:\n{}", failures.len(), failures.join("\n"));
    }
}

/// Tenancy: every route that reads or acts on a session's data (`/api/sessions/{id}/...`),
/// asked by a counselor, a supervisor or an admin of another account about this account's
/// sessions, answers 404 — never 200 or 409 — exactly as for an id that exists nowhere (a
/// counselor asking a supervisors' route gets the same 403 for both: the role is refused before
/// any lookup, so nothing is confirmed); and every partner route about this account's
/// assignments (and their sessions) with another account's key answers 404. The sessions hold
/// data: a transcript, a flag, a recording and usage.
#[tokio::test]
async fn another_accounts_sessions_are_not_found_for_everyone() {
    let routes = documented_routes();
    let session_routes: Vec<_> = routes.iter().filter(|(_, p)| p.starts_with("/api/sessions/{id}")).collect();
    let partner_routes: Vec<_> =
        routes.iter().filter(|(_, p)| p.starts_with("/api/external/assignments/{id}")).collect();
    assert!(session_routes.len() >= 15 && partner_routes.len() >= 3, "{session_routes:?} {partner_routes:?}");
    for (backend, db) in testing::all().await {
        let sim = openai_sim::Simulator::start().await.expect("simulator");
        let sim_url = sim.base_url();
        let app = spawn_with(&db, |c| {
            c.openai_api_key = Some(admin::Secret::new("sim-key"));
            c.openai_base_url = sim_url;
            c.voice.recordings_dir = RECORDINGS.clone();
        })
        .await;
        // Account B's people: the outsider (a supervisor), a counselor and an admin.
        let mut outsiders = vec![("supervisor", app.creds[&app.outsider].clone())];
        for (role, name) in [(Role::Counselor, "counselor"), (Role::Admin, "admin")] {
            let email = format!("b-{name}-{}@example.org", Uuid::now_v7().simple());
            let new =
                NewUser { email: email.clone(), display_name: name.into(), role, external_id: None, is_demo: false };
            let id = app.store.create_user(app.other_account, new).await.expect("user").id;
            let hash = admin::auth::hash_password(PASSWORD.into()).await.expect("hash");
            let audit = store::Audit::new(Some(app.other_account), None, "test.password");
            app.store.set_password(app.other_account, id, &hash, None, None, &audit).await.expect("password");
            outsiders.push((name, app.login(&email, PASSWORD).await.expect("sign in")));
        }
        let (_, other_key) =
            admin::auth::create_api_key(&app.store, app.other_account, "other", None).await.expect("key");
        let mut failures = Vec::new();
        for (method, path) in &session_routes {
            let method = Method::from_bytes(method.as_bytes()).expect("method");
            for (who, creds) in &outsiders {
                let w = world(&app).await;
                let (url, body, raw) = request(&app, &method, path, &w);
                // The same request about a session that does not exist anywhere.
                let mut missing_url = url.clone();
                for id in [w.session, w.voice_live, w.voice_done] {
                    missing_url = missing_url.replace(&id.to_string(), &Uuid::now_v7().to_string());
                }
                let mut answers = Vec::new();
                for url in [&url, &missing_url] {
                    let mut req = with_creds(creds, app.http.request(method.clone(), app.url(url)));
                    if let Some(body) = body.clone() {
                        req = req.json(&body);
                    }
                    if let Some((content_type, text)) = raw.clone() {
                        req = req.header("content-type", content_type).body(text);
                    }
                    answers.push(common::send(req).await);
                }
                let ((got, text), (missing, _)) = (&answers[0], &answers[1]);
                // 404; or, for a route the caller's role may not use at all, the same 403 a
                // missing id gets (the role is refused before any lookup, so it confirms nothing).
                let refused_by_role = *got == StatusCode::FORBIDDEN && who == &"counselor";
                if !(*got == StatusCode::NOT_FOUND || refused_by_role) || got != missing {
                    failures.push(format!(
                        "{method} {path} as account B's {who}: got {got} (a missing id: {missing}): {text}"
                    ));
                }
            }
        }
        for (method, path) in &partner_routes {
            let method = Method::from_bytes(method.as_bytes()).expect("method");
            let w = world(&app).await;
            let (url, body, _) = request(&app, &method, path, &w);
            let mut req = app.http.request(method.clone(), app.url(&url)).header("x-api-key", &other_key);
            if let Some(body) = body {
                req = req.json(&body);
            }
            let (got, text) = common::send(req).await;
            if got != StatusCode::NOT_FOUND {
                failures.push(format!("{method} {path} with account B's key: got {got}: {text}"));
            }
        }
        assert!(
            failures.is_empty(),
            "{backend:?}: {} answers confirm another account's ids:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}
