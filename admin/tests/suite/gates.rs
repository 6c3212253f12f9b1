//! Rubric v3's safety gates end to end: an evaluator that answers every rescue check "no" but
//! lists no flag still yields a gated score, a `derived` flag in the session's flags and the flag
//! queue, and a `flag.raised` webhook event — on every backend.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use openai_sim::{Rule, Simulator};
use reqwest::StatusCode;
use serde_json::{Value, json};
use store::testing;

use crate::common::{App, spawn_with};

/// An evaluator answer with every check "yes" except `no` (answered no) and `na` (not
/// applicable), ratings 4, no call facts and no flags at all.
fn answer(no: &[&str], na: &[&str]) -> Value {
    let criteria: Vec<Value> = admin::rubric::criteria("")
        .iter()
        .map(|c| {
            let checks: Vec<Value> = c
                .checks
                .iter()
                .map(|k| {
                    let key = format!("{}.{}", c.key, k.key);
                    let answer = if no.contains(&key.as_str()) {
                        "no"
                    } else if na.contains(&key.as_str()) {
                        "not_applicable"
                    } else {
                        "yes"
                    };
                    json!({"key": k.key, "answer": answer, "turns": [2], "note": "scripted"})
                })
                .collect();
            json!({"key": c.key, "checks": checks, "rating": 4, "comment": "scripted"})
        })
        .collect();
    json!({"criteria": criteria, "strengths": ["s"], "areas_to_improve": ["a"], "overall_score": 95, "flags": []})
}

/// A webhook receiver that answers 200 and keeps the bodies.
async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let log = log.clone();
            async move {
                log.lock().expect("lock").push(serde_json::from_str(&body).unwrap_or(Value::Null));
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

async fn evaluated(app: &App, sim: &Simulator, scripted: Value) -> (String, Value) {
    sim.clear_rules();
    sim.add_rule(Rule::chat().schema_name("evaluation").reply_json(scripted));
    sim.add_rule(Rule::chat().schema_name("analysis").reply_json(json!({"summary": "Nothing.", "findings": []})));
    sim.add_rule(Rule::chat().reply_text("I took all of them. I'm so tired."));
    let (_, started) = app.post(app.counselor, "/api/sessions", json!({})).await;
    let session = started["session"]["id"].as_str().expect("id").to_owned();
    let (status, _) =
        app.post(app.counselor, &format!("/api/sessions/{session}/message"), json!({"content": "Tell me more."})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, evaluation) = app.post(app.counselor, &format!("/api/sessions/{session}/evaluate"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{evaluation}");
    (session, evaluation)
}

#[tokio::test]
async fn a_missed_rescue_without_its_flag_is_gated_derived_and_announced() {
    for (backend, db) in testing::all().await {
        let sim = Simulator::start().await.expect("sim");
        let base = sim.base_url();
        let app = spawn_with(&db, |c| {
            c.openai_api_key = Some(admin::Secret::new("sim-key"));
            c.openai_base_url = base;
            c.webhook_allow_private = true;
            c.webhook_retry_base_ms = 200;
        })
        .await;
        let (url, seen) = receiver().await;
        let (status, hook) = app.post(app.admin, "/api/webhooks", json!({"url": url, "events": ["flag.raised"]})).await;
        assert_eq!(status, StatusCode::CREATED, "{backend:?}: {hook}");

        // Every rescue step "no", no flag, no facts: v2 scored this 87.3 ("strong").
        let rescue_no = [
            "imminent_risk.location_early",
            "imminent_risk.callback_number",
            "imminent_risk.active_rescue",
            "imminent_risk.stays_on_line",
            "imminent_risk.mobile_crisis_first",
            "imminent_risk.supervisor_consult",
        ];
        let na = ["collaboration.least_invasive", "collaborative_style.caller_led"];
        let (session, evaluation) = evaluated(&app, &sim, answer(&rescue_no, &na)).await;
        let overall = evaluation["overallScore"].as_f64().expect("score");
        assert!(overall <= 25.0, "{backend:?}: {evaluation}");
        assert_eq!(evaluation["scoreBand"], "needs_work");
        let gate = &evaluation["scoreBasis"]["gates"][0];
        assert_eq!((gate["flag"].as_str(), gate["source"].as_str()), (Some("missed_rescue"), Some("answers")));
        assert_eq!((gate["severity"].as_str(), gate["cap"].as_f64()), (Some("critical"), Some(25.0)));
        assert!(gate["reason"].as_str().is_some_and(|r| r.contains("no rescue was started")), "{gate}");
        // The steps a rescue would have made possible are blocked by it, not counted again.
        let imminent =
            evaluation["criteria"].as_array().expect("criteria").iter().find(|c| c["key"] == "imminent_risk");
        let stays =
            imminent.and_then(|c| c["checks"].as_array()).and_then(|k| k.iter().find(|k| k["key"] == "stays_on_line"));
        assert_eq!(stays.map(|k| &k["blockedBy"]), Some(&json!("imminent_risk.active_rescue")));
        // The question a counselor reads carries no grader instruction.
        assert!(!evaluation.to_string().contains("not_applicable only"), "{evaluation}");

        // The gate's flag is recorded, `derived`, citing the answers' turns.
        let (_, detail) = app.get(app.supervisor, &format!("/api/sessions/{session}")).await;
        let flags = detail["flags"].as_array().expect("flags");
        let derived: Vec<&Value> = flags.iter().filter(|f| f["source"] == "derived").collect();
        assert_eq!(derived.len(), 1, "{backend:?}: {flags:?}");
        assert_eq!(derived[0]["flagType"], "missed_rescue");
        assert_eq!(derived[0]["severity"], "critical");
        assert_eq!(derived[0]["turns"], json!([2]));
        let (_, queue) = app.get(app.supervisor, "/api/flags").await;
        assert!(queue.as_array().is_some_and(|q| q.iter().any(|f| f["source"] == "derived")), "{queue}");

        // ... and announced to the partner's webhook.
        let mut announced = false;
        for _ in 0..100 {
            announced = seen.lock().expect("lock").iter().any(|b| {
                b["event"] == "flag.raised"
                    && b["data"]["flag_type"] == "missed_rescue"
                    && b["data"]["source"] == "derived"
            });
            if announced {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(announced, "{backend:?}: {:?}", seen.lock().expect("lock"));

        // Raised by the evaluator itself: the same gate, nothing derived.
        let mut flagged = answer(&rescue_no, &na);
        flagged["flags"] =
            json!([{"flag_type": "missed_rescue", "severity": "critical", "details": "No rescue.", "turns": [2]}]);
        let (session, evaluation) = evaluated(&app, &sim, flagged).await;
        assert_eq!(evaluation["overallScore"].as_f64(), Some(overall));
        assert_eq!(evaluation["scoreBasis"]["gates"][0]["source"], "answers");
        let (_, detail) = app.get(app.supervisor, &format!("/api/sessions/{session}")).await;
        let sources: Vec<&str> =
            detail["flags"].as_array().expect("flags").iter().filter_map(|f| f["source"].as_str()).collect();
        assert_eq!(sources, ["evaluation"], "{backend:?}");
    }
}

#[tokio::test]
async fn a_supervisor_raised_flag_gates_the_reviewed_score_and_says_why() {
    for (backend, db) in testing::all().await {
        let sim = Simulator::start().await.expect("sim");
        let base = sim.base_url();
        let app = spawn_with(&db, |c| {
            c.openai_api_key = Some(admin::Secret::new("sim-key"));
            c.openai_base_url = base;
        })
        .await;
        let (session, evaluation) = evaluated(&app, &sim, answer(&[], &[])).await;
        assert!(evaluation["scoreBasis"]["gates"].as_array().is_some_and(Vec::is_empty), "{evaluation}");
        let body = json!({"overrides": [{"kind": "flag", "target": "medical_advice", "value": "raised", "reason": "Told the caller to halve the dose."}]});
        let (status, reviewed) = app.post(app.supervisor, &format!("/api/sessions/{session}/review"), body).await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {reviewed}");
        assert!(reviewed["overallScore"].as_f64().is_some_and(|s| s <= 49.0), "{reviewed}");
        let gate = &reviewed["scoreBasis"]["gates"][0];
        assert_eq!((gate["flag"].as_str(), gate["source"].as_str()), (Some("medical_advice"), Some("supervisor")));
        // The counselor sees the same, with the reason in plain words.
        let (_, detail) = app.get(app.counselor, &format!("/api/sessions/{session}")).await;
        assert_eq!(detail["evaluation"]["scoreBasis"]["gates"][0]["reason"], gate["reason"]);
    }
}

#[tokio::test]
async fn a_flag_the_analysis_raises_gates_the_score_everyone_sees() {
    for (backend, db) in testing::all().await {
        let sim = Simulator::start().await.expect("sim");
        let base = sim.base_url();
        let app = spawn_with(&db, |c| {
            c.openai_api_key = Some(admin::Secret::new("sim-key"));
            c.openai_base_url = base;
        })
        .await;
        sim.add_rule(Rule::chat().schema_name("evaluation").reply_json(answer(&[], &[])));
        sim.add_rule(Rule::chat().schema_name("analysis").reply_json(json!({
            "summary": "Medication advice.",
            "findings": [{"flag_type": "medical_advice", "severity": "high", "details": "Halve the dose.", "turns": [2]}]
        })));
        sim.add_rule(Rule::chat().reply_text("Should I just stop my pills?"));
        let (_, started) = app.post(app.counselor, "/api/sessions", json!({})).await;
        let session = started["session"]["id"].as_str().expect("id").to_owned();
        app.post(app.counselor, &format!("/api/sessions/{session}/message"), json!({"content": "Halve them."})).await;
        let (status, evaluation) =
            app.post(app.counselor, &format!("/api/sessions/{session}/evaluate"), json!({})).await;
        assert_eq!(status, StatusCode::OK, "{evaluation}");
        // The analysis runs behind the evaluation; once its flag is in, the score is gated.
        let mut seen = Value::Null;
        for _ in 0..100 {
            let (_, detail) = app.get(app.supervisor, &format!("/api/sessions/{session}")).await;
            if !detail["analysis"].is_null() {
                // The counselor's own view of the evaluation.
                let (_, mine) = app.get(app.counselor, &format!("/api/sessions/{session}")).await;
                seen = mine["evaluation"].clone();
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(seen["overallScore"].as_f64().is_some_and(|s| s <= 49.0), "{backend:?}: {seen}");
        let gate = &seen["scoreBasis"]["gates"][0];
        assert_eq!((gate["flag"].as_str(), gate["source"].as_str()), (Some("medical_advice"), Some("analysis")));
        assert_eq!(seen["scoreBand"], "needs_work");
    }
}
