//! Scenario test runs through HTTP and the job queue, against the OpenAI simulator (whose chat
//! model plays the AI counselor when the system prompt casts it so), on every backend: a run is
//! queued (202), called and graded in the background and listed with its evaluation; its call
//! uses the caller counselors meet; it stays out of counselors' lists and the flag queue; a run
//! whose worker died mid-call resumes from its stored transcript; "re-run all" answers 409 while
//! it is unfinished.

use std::time::Duration;

use openai_sim::{Rule, Simulator};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use store::testing;

use crate::common::{App, id, spawn_with};

const WAIT: Duration = Duration::from_secs(60);
const RERUN: &str = "/api/scenarios/test-runs/rerun-all";

async fn spawn_ai(db: &testing::TestDb, sim: &Simulator) -> App {
    let base = sim.base_url();
    spawn_with(db, |c| {
        c.openai_api_key = Some(admin::Secret::new("sim-key"));
        c.openai_base_url = base;
        c.llm_max_retries = 1;
        c.llm_timeout_secs = 10;
    })
    .await
}

fn profiled_scenario(title: &str) -> Value {
    json!({
        "title": format!("{title} {}", uuid::Uuid::now_v7()),
        "prompt": "You are Sam, 34, calling late at night after a breakup.",
        "mode": "chat", "category": "onboarding",
        "riskProfile": {
            "expectedLevel": "high", "requiredActions": ["safety_plan", "means_restriction"],
            "facts": [
                {"key": "pain", "kind": "psychological_pain", "text": "Everything hurts since she left.", "disclosure": "volunteered"},
                {"key": "ideation", "kind": "ideation", "text": "I keep thinking about killing myself.", "disclosure": "asked_directly_after_rapport"},
                {"key": "pills", "kind": "means_access", "text": "I have a bottle of sleeping pills.", "disclosure": "when_asked"},
            ],
        },
    })
}

async fn runs_of(app: &App, scenario: &str) -> Vec<Value> {
    let (status, runs) = app.get(app.supervisor, &format!("/api/scenarios/{scenario}/test-runs")).await;
    assert_eq!(status, StatusCode::OK, "{runs}");
    runs.as_array().expect("a list").clone()
}

/// Polls the scenario's runs until none is queued or running.
async fn finished_runs(app: &App, scenario: &str) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let runs = runs_of(app, scenario).await;
        if runs.iter().all(|r| r["status"] == "done" || r["status"] == "failed") {
            return runs;
        }
        assert!(tokio::time::Instant::now() < deadline, "runs unfinished: {runs:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn schema_name(request: &Value) -> Option<&str> {
    request["response_format"]["json_schema"]["name"].as_str()
}

fn counselor_lines(session: &Value) -> Vec<String> {
    session["transcript"]
        .as_array()
        .expect("transcript")
        .iter()
        .filter(|t| t["speaker"] == "counselor")
        .map(|t| t["text"].as_str().unwrap_or_default().to_lowercase())
        .collect()
}

#[tokio::test]
async fn a_test_run_is_queued_called_with_the_counselors_caller_graded_and_kept_apart() {
    for (backend, db) in testing::all().await {
        let sim = Simulator::start().await.expect("sim");
        let app = spawn_ai(&db, &sim).await;
        let (status, scenario) = app.post(app.supervisor, "/api/scenarios", profiled_scenario("Tested")).await;
        assert_eq!(status, StatusCode::CREATED, "{scenario}");
        let scenario = id(&scenario);
        let path = format!("/api/scenarios/{scenario}/test-runs");
        let (status, queued) = app.post(app.supervisor, &path, json!({"kind": "thorough", "maxTurns": 4})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
        assert_eq!((queued["kind"].as_str(), queued["maxTurns"].as_i64()), (Some("thorough"), Some(4)));
        let (status, _) = app.post(app.supervisor, &path, json!({"kind": "poor", "maxTurns": 3})).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        // Validation and authorization.
        let (status, body) = app.post(app.supervisor, &path, json!({"kind": "poor", "maxTurns": 31})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let (status, _) = app.post(app.supervisor, &path, json!({"kind": "sloppy"})).await;
        assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY, "{status}");
        let (status, _) = app.post(app.counselor, &path, json!({"kind": "poor"})).await;
        assert_eq!(status, StatusCode::FORBIDDEN);

        let runs = finished_runs(&app, &scenario).await;
        assert_eq!(runs.len(), 2, "{backend:?}: {runs:?}");
        let (poor, thorough) = (&runs[0], &runs[1]);
        for (run, turns) in [(thorough, 4), (poor, 3)] {
            assert_eq!(run["status"], "done", "{backend:?}: {run}");
            assert_eq!(run["counselorTurns"].as_i64(), Some(turns), "{run}");
            assert_eq!(run["callerTurns"].as_i64(), Some(turns + 1), "the caller opens and answers each line: {run}");
            assert!(run["evaluation"]["scoreBasis"].is_object(), "graded: {run}");
            assert!(run["startedAt"].is_string() && run["finishedAt"].is_string());
        }
        // The thorough counselor asked directly; the poor one never did.
        let (_, session) =
            app.get(app.supervisor, &format!("/api/sessions/{}", thorough["sessionId"].as_str().unwrap())).await;
        let lines = counselor_lines(&session);
        assert!(lines.iter().any(|l| l.contains("suicide")), "{backend:?}: {lines:?}");
        assert_eq!(session["status"], "completed");
        let (_, session) =
            app.get(app.supervisor, &format!("/api/sessions/{}", poor["sessionId"].as_str().unwrap())).await;
        let lines = counselor_lines(&session);
        assert!(lines.iter().all(|l| !l.contains("suicide")), "{backend:?}: {lines:?}");

        // The caller is the one counselors chat with: the same system prompt as a counselor's
        // practice of the scenario gets.
        let requests = sim.chat_requests();
        let system = |r: &Value| r["messages"][0]["content"].as_str().unwrap_or_default().to_owned();
        let counselor = |r: &&Value| system(r).starts_with("You are playing a crisis-line counselor");
        let lines = requests.iter().filter(counselor).filter(|r| r["response_format"].is_null()).count();
        assert_eq!(lines, 7, "{backend:?}: one AI counselor call per counselor turn");
        // Then each files its call record (the scenario has a risk profile), which grading read.
        let records = requests.iter().filter(counselor).filter(|r| schema_name(r) == Some("test_run_call_record"));
        assert_eq!(records.count(), 2, "{backend:?}");
        assert_eq!(poor["evaluation"]["truth"]["determination"]["filed"], "low", "{poor}");
        assert!(thorough["evaluation"]["truth"]["determination"]["filed"].is_string(), "{thorough}");
        assert!(thorough["evaluation"]["truth"]["facts"].as_array().is_some_and(|f| f.len() == 3), "{thorough}");
        let callers: std::collections::BTreeSet<String> = requests
            .iter()
            .filter(|r| r["response_format"].is_null())
            .map(system)
            .filter(|s| !s.starts_with("You are playing a crisis-line counselor"))
            .collect();
        sim.clear_requests();
        let (status, started) = app.post(app.counselor, "/api/sessions", json!({"scenarioId": scenario})).await;
        assert_eq!(status, StatusCode::CREATED, "{started}");
        let practice: std::collections::BTreeSet<String> = sim.chat_requests().iter().map(system).collect();
        assert_eq!(callers, practice, "{backend:?}: the test run's caller prompt differs from practice");
        assert!(
            !callers.iter().any(|p| p.contains("thorough") || p.contains("Approach")),
            "the caller never sees the counselor's brief"
        );

        // Kept apart: no list shows the runs' sessions, no flag reaches the queue.
        let run_sessions: Vec<&str> = runs.iter().filter_map(|r| r["sessionId"].as_str()).collect();
        for who in [app.supervisor, app.admin] {
            let (_, sessions) = app.get(who, "/api/sessions?type=all").await;
            let listed: Vec<&str> =
                sessions.as_array().expect("list").iter().filter_map(|s| s["id"].as_str()).collect();
            assert!(run_sessions.iter().all(|r| !listed.contains(r)), "{backend:?}: {listed:?}");
        }
        let (_, flags) = app.get(app.supervisor, "/api/flags").await;
        let flagged: Vec<&str> =
            flags.as_array().expect("list").iter().filter_map(|f| f["sessionId"].as_str()).collect();
        assert!(run_sessions.iter().all(|r| !flagged.contains(r)), "{backend:?}: {flagged:?}");
        let (_, progress) = app.get(app.supervisor, "/api/progress").await;
        assert!(progress["scores"].as_array().expect("scores").is_empty(), "{backend:?}: {progress}");
        // Another account cannot see them.
        let (status, _) = app.get(app.outsider, &format!("/api/scenarios/{scenario}/test-runs")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

/// A worker that died mid-call (its lease ran out) leaves the call's stored turns: the next
/// worker resumes from them, and the call ends with exactly the turns asked for.
#[tokio::test]
async fn a_run_whose_worker_died_resumes_from_its_transcript() {
    for (backend, db) in testing::all().await {
        let sim = Simulator::start().await.expect("sim");
        let s = &db.store;
        let account = s.create_account(&format!("Center {}", uuid::Uuid::now_v7())).await.expect("account");
        let new_user = store::NewUser {
            email: format!("sup-{}@example.org", uuid::Uuid::now_v7().simple()),
            display_name: "Sup".into(),
            role: store::Role::Supervisor,
            external_id: None,
            is_demo: false,
        };
        let sup = s.create_user(account.id, new_user).await.expect("user");
        let input: store::ScenarioInput = serde_json::from_value(profiled_scenario("Resumed")).expect("input");
        let scenario = s.create_scenario(account.id, Some(sup.id), &input).await.expect("scenario").0;
        let new = store::NewTestRun { kind: store::TestRunKind::Thorough, max_turns: 3, requested_by: sup.id };
        let run = s.create_test_run(account.id, scenario.id, &new).await.expect("queued");
        // The dead worker: it claimed the job with a lease already over and stored one exchange.
        let claimed = s.claim_jobs("dead-worker", -1, 10).await.expect("claim");
        assert_eq!(claimed.len(), 1, "{backend:?}");
        let turn = |speaker, text: &str, at| store::NewTurn {
            speaker,
            text: text.into(),
            started_ms: at,
            ended_ms: Some(at),
            segment_id: None,
        };
        let stored = [
            turn(store::Speaker::Caller, "Hi... is this the crisis line?", 0),
            turn(store::Speaker::Counselor, "Thank you for reaching out tonight. What's been going on?", 1000),
            turn(store::Speaker::Caller, "It's been a really hard week.", 2000),
        ];
        s.append_turns(account.id, run.session_id, &stored).await.expect("turns");
        assert!(!s.extend_job_lease(&claimed[0], "someone-else", 60_000).await.expect("extend"), "not their lease");

        let base = sim.base_url();
        let mut config = admin::Config::for_database(&db.url);
        config.openai_api_key = Some(admin::Secret::new("sim-key"));
        config.openai_base_url = base;
        config.voice.job_poll_ms = 50;
        let state = admin::AppState::new(s.clone(), config).expect("state");
        let stop = tokio_util::sync::CancellationToken::new();
        let worker = tokio::spawn(admin::jobs::run(state, stop.clone()));
        let deadline = tokio::time::Instant::now() + WAIT;
        let done = loop {
            let r = s.test_run(account.id, run.id).await.expect("run");
            if r.status == store::TestRunStatus::Done || r.status == store::TestRunStatus::Failed {
                break r;
            }
            assert!(tokio::time::Instant::now() < deadline, "{backend:?}: still {:?}", r.status);
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        stop.cancel();
        worker.await.expect("worker");
        assert_eq!(done.status, store::TestRunStatus::Done, "{backend:?}: {:?}", done.error);
        let transcript = s.transcript(&crate::common::session_ref(s, run.session_id).await).await.expect("transcript");
        let texts: Vec<&str> = transcript.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(
            &texts[..3],
            stored.iter().map(|t| t.text.as_str()).collect::<Vec<_>>().as_slice(),
            "kept as stored"
        );
        let counselor = transcript.iter().filter(|t| t.speaker == store::Speaker::Counselor).count();
        assert_eq!((counselor, transcript.len()), (3, 7), "{backend:?}: {texts:?}");
        // The resumed counselor carried on (its second line), it did not start over.
        assert!(texts[3].contains("sounds really painful"), "{texts:?}");
        assert!(
            s.ai_evaluation_raw(&crate::common::session_ref(s, run.session_id).await).await.expect("read").is_some(),
            "graded"
        );
        let job = s.job_state(run.session_id, store::JobKind::TestRun, None).await.expect("job").expect("job");
        assert_eq!((job.status, job.attempts), (store::JobStatus::Done, 2));
    }
}

#[tokio::test]
async fn rerun_all_queues_both_kinds_and_refuses_while_unfinished() {
    for (backend, db) in testing::all().await {
        let sim = Simulator::start().await.expect("sim");
        // Slow enough that the re-run is still going when it is asked for again.
        sim.add_rule(Rule::chat().latency_ms(300));
        let app = spawn_ai(&db, &sim).await;
        let (status, profiled) = app.post(app.supervisor, "/api/scenarios", profiled_scenario("Rerun")).await;
        assert_eq!(status, StatusCode::CREATED, "{profiled}");
        let (status, _) = app.post(app.supervisor, "/api/scenarios", crate::common::scenario_body("Unprofiled")).await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, body) = app.call(Some(app.supervisor), Method::POST, RERUN, None).await;
        assert_eq!((status, body["queued"].as_i64()), (StatusCode::ACCEPTED, Some(2)), "{backend:?}: {body}");
        let (status, body) = app.call(Some(app.admin), Method::POST, RERUN, None).await;
        assert_eq!(status, StatusCode::CONFLICT, "{backend:?}: {body}");
        let runs = runs_of(&app, &id(&profiled)).await;
        let mut kinds: Vec<&str> = runs.iter().filter_map(|r| r["kind"].as_str()).collect();
        kinds.sort_unstable();
        assert_eq!(kinds, ["poor", "thorough"]);
        assert!(runs.iter().all(|r| r["rerun"] == true));
        let (status, _) = app.call(Some(app.counselor), Method::POST, RERUN, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
}
