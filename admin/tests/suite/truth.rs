//! Grading against a scenario's clinical truth, end to end on every backend: the call record,
//! grading that waits for it, uncovered facts, the determination and its gate, the caller's
//! deviations with the held-harmless rule, and suggestions with a supervisor's edit. The
//! simulator answers the truth call from the transcript (keywords), so these transcripts are
//! written to be read that way.

use openai_sim::{Rule, Simulator};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use store::{NewSession, NewTurn, SessionKind, Speaker, testing};

use crate::common::{App, spawn_with};

/// An evaluator answer with every check "yes" (citing counselor turn 2) except `no`.
fn answer(no: &[&str]) -> Value {
    let criteria: Vec<Value> = admin::rubric::criteria("")
        .iter()
        .map(|c| {
            let checks: Vec<Value> = c
                .checks
                .iter()
                .map(|k| {
                    let key = format!("{}.{}", c.key, k.key);
                    let answer = if no.contains(&key.as_str()) { "no" } else { "yes" };
                    json!({"key": k.key, "answer": answer, "turns": [2], "note": "scripted"})
                })
                .collect();
            json!({"key": c.key, "checks": checks, "rating": 4, "comment": "scripted"})
        })
        .collect();
    json!({"criteria": criteria, "strengths": ["s"], "areas_to_improve": ["a"], "overall_score": 95, "flags": [],
           "facts": []})
}

fn profile() -> Value {
    json!({
        "expectedLevel": "high",
        "requiredActions": ["safety_plan", "means_restriction"],
        "facts": [
            {"key": "pain", "kind": "psychological_pain", "text": "Everything hurts since I lost my job.", "disclosure": "volunteered"},
            {"key": "plan", "kind": "plan", "text": "I plan to drive to the lake bridge tonight.", "disclosure": "when_asked"},
            {"key": "gun", "kind": "firearms", "text": "There is a loaded handgun in my nightstand.", "disclosure": "never_volunteered"}
        ]
    })
}

async fn app_with_sim(db: &testing::TestDb) -> (App, Simulator) {
    let sim = Simulator::start().await.expect("sim");
    let base = sim.base_url();
    let app = spawn_with(db, |c| {
        c.openai_api_key = Some(admin::Secret::new("sim-key"));
        c.openai_base_url = base;
    })
    .await;
    (app, sim)
}

/// A counselor's chat session of `scenario` with these turns, caller first.
async fn session(app: &App, scenario: Option<&str>, lines: &[&str]) -> String {
    let new = NewSession {
        user_id: app.counselor,
        assignment_id: None,
        scenario_id: scenario.map(|s| s.parse().expect("scenario id")),
        kind: SessionKind::Chat,
        room_name: None,
    };
    let session = app.store.create_session(app.account, &new).await.expect("session");
    let turns: Vec<NewTurn> = lines
        .iter()
        .enumerate()
        .map(|(i, text)| NewTurn {
            speaker: if i % 2 == 0 { Speaker::Caller } else { Speaker::Counselor },
            text: (*text).into(),
            started_ms: i as i64 * 1000,
            ended_ms: None,
            segment_id: None,
        })
        .collect();
    app.store.append_turns(app.account, session.id, &turns).await.expect("turns");
    session.id.to_string()
}

async fn profiled_scenario(app: &App) -> String {
    let mut body = crate::common::scenario_body("Lake bridge");
    body["riskProfile"] = profile();
    let (status, scenario) = app.post(app.supervisor, "/api/scenarios", body).await;
    assert_eq!(status, StatusCode::CREATED, "{scenario}");
    crate::common::id(&scenario)
}

async fn put(app: &App, user: store::UserId, path: &str, body: Value) -> (StatusCode, Value) {
    app.call(Some(user), Method::PUT, path, Some(body)).await
}

fn find<'a>(list: &'a Value, field: &str, value: &str) -> &'a Value {
    list.as_array().and_then(|a| a.iter().find(|x| x[field] == value)).unwrap_or(&Value::Null)
}

#[tokio::test]
async fn a_profiled_call_is_graded_against_the_truth_and_its_record() {
    for (backend, db) in testing::all().await {
        let (app, sim) = app_with_sim(&db).await;
        sim.add_rule(
            Rule::chat()
                .schema_name("evaluation")
                .reply_json(answer(&["risk_capability.firearms", "safety_planning.means_restriction"])),
        );
        sim.add_rule(Rule::chat().schema_name("analysis").reply_json(json!({"summary": "Nothing.", "findings": []})));
        let scenario = profiled_scenario(&app).await;
        let id = session(
            &app,
            Some(&scenario),
            &[
                "Everything hurts since I lost my job.",
                "That sounds so painful. Do you have a plan to end your life?",
                "I would drive to the lake bridge tonight.",
                "Thank you for telling me. Let's make a safety plan together.",
                "Okay.",
                "I'm glad you called.",
            ],
        )
        .await;
        let base = format!("/api/sessions/{id}");

        // Grading waits for the call record.
        let (status, body) = app.post(app.counselor, &format!("{base}/evaluate"), json!({})).await;
        assert_eq!(status, StatusCode::CONFLICT, "{backend:?}: {body}");
        // A record is validated per field; only the counselor of the call files it.
        let (status, body) = put(&app, app.counselor, &format!("{base}/call-record"), json!({"status": "filed"})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body.to_string().contains("riskLevel"), "{body}");
        let skipped_with_level = json!({"status": "skipped", "riskLevel": "low"});
        let (status, _) = put(&app, app.counselor, &format!("{base}/call-record"), skipped_with_level).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let record = json!({"status": "filed", "riskLevel": "moderate", "factKinds": ["plan", "plan"],
                            "actions": ["safety_plan"], "notes": "  Bridge tonight.  "});
        let (status, _) = put(&app, app.supervisor, &format!("{base}/call-record"), record.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, filed) = put(&app, app.counselor, &format!("{base}/call-record"), record.clone()).await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {filed}");
        assert_eq!((filed["factKinds"].clone(), filed["notes"].clone()), (json!(["plan"]), json!("Bridge tonight.")));

        let (status, evaluation) = app.post(app.counselor, &format!("{base}/evaluate"), json!({})).await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {evaluation}");
        let truth = &evaluation["truth"];
        let facts = &truth["facts"];
        assert_eq!(find(facts, "key", "pain")["outcome"], "volunteered", "{truth}");
        assert_eq!(find(facts, "key", "plan")["outcome"], "elicited", "{truth}");
        assert_eq!(find(facts, "key", "plan")["askedTurns"], json!([2, 4]));
        assert_eq!(find(facts, "key", "plan")["disclosedTurns"], json!([3]));
        assert_eq!(find(facts, "key", "gun")["outcome"], "missed", "{truth}");
        assert_eq!(truth["deviations"], json!([]));
        let det = &truth["determination"];
        assert_eq!((det["expected"].as_str(), det["filed"].as_str()), (Some("high"), Some("moderate")));
        assert_eq!(det["result"], "under_estimate");
        assert_eq!(find(&truth["actions"], "action", "safety_plan")["answer"], "yes");
        assert_eq!(find(&truth["actions"], "action", "safety_plan")["inCallRecord"], true);
        assert_eq!(find(&truth["actions"], "action", "means_restriction")["answer"], "no");
        // The under-estimate of a high risk is a hard gate, with its derived flag.
        let capped: Vec<&str> =
            evaluation["scoreBasis"]["cappedBy"].as_array().expect("capped").iter().filter_map(Value::as_str).collect();
        assert!(capped.contains(&"high_risk_underestimated"), "{capped:?}");
        assert!(evaluation["overallScore"].as_f64().is_some_and(|s| s <= 49.0));
        let (_, view) = app.get(app.supervisor, &base).await;
        let flag = find(&view["flags"], "flagType", "high_risk_underestimated");
        assert_eq!(flag["source"], "derived", "{}", view["flags"]);
        assert_eq!(view["callRecord"]["riskLevel"], "moderate");

        // Suggestions: at the failed check's turn, and for the fact never asked about; none for
        // a "no" that is blocked (the scripted rescue came first, so firearms was not reached).
        let suggestions = &evaluation["suggestions"];
        let means = find(suggestions, "target", "check:safety_planning.means_restriction");
        assert_eq!(means["turn"], 2, "{suggestions}");
        assert!(find(suggestions, "target", "check:risk_capability.firearms").is_null(), "{suggestions}");
        let gun = find(suggestions, "target", "fact:gun");
        assert!(gun["text"].as_str().is_some_and(|t| t.contains("gun")), "{suggestions}");
        assert!(find(suggestions, "target", "fact:plan").is_null(), "an elicited fact gets none");

        // Both graders' answers are kept for audit, with the model and prompt version:
        // supervisors read them, a counselor may not.
        let (status, _) = app.get(app.counselor, &format!("{base}/grader-output")).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, audit) = app.get(app.supervisor, &format!("{base}/grader-output")).await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {audit}");
        assert_eq!(audit["rubric"]["promptVersion"], admin::rubric::RUBRIC_VERSION);
        let rubric_raw: Value =
            serde_json::from_str(audit["rubric"]["rawOutput"].as_str().expect("raw")).expect("json");
        assert_eq!(rubric_raw["overall_score"], 95, "the rubric grader's answer as received");
        assert_eq!(audit["truth"]["promptVersion"], admin::truth::PROMPT_VERSION);
        assert!(audit["truth"]["model"].as_str().is_some_and(|m| !m.is_empty()), "{audit}");
        let truth_raw: Value = serde_json::from_str(audit["truth"]["rawOutput"].as_str().expect("raw")).expect("json");
        let raw_plan = find(&truth_raw["facts"], "key", "plan");
        assert_eq!(raw_plan["disclosed_turns"], json!([3]), "the truth grader's answer as received: {truth_raw}");

        // A supervisor's override is re-read through the truth: answering the means-restriction
        // check yes makes the required action taken; the determination and its gate stay
        // (the record did not change), and the score is still capped.
        let review = json!({"overrides": [{"kind": "check", "target": "safety_planning.means_restriction",
                                           "value": "yes", "reason": "It was discussed at turn 4."}]});
        let actions = |progress: &Value| {
            let weeks = progress["truth"].as_array().expect("truth weeks");
            assert_eq!(weeks.len(), 1, "{progress}");
            (weeks[0]["actionsTaken"].as_i64(), weeks[0]["requiredActions"].as_i64())
        };
        let (status, progress) = app.get(app.supervisor, "/api/progress").await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {progress}");
        assert_eq!(actions(&progress), (Some(1), Some(2)), "{backend:?}: the AI's answers: {progress}");
        let (status, reviewed) = app.post(app.supervisor, &format!("{base}/review"), review).await;
        assert!(status.is_success(), "{backend:?}: {reviewed}");
        // Progress counts the action as the page shows it: taken.
        let (_, progress) = app.get(app.supervisor, "/api/progress").await;
        assert_eq!(actions(&progress), (Some(2), Some(2)), "{backend:?}: the reviewed truth: {progress}");
        let (_, view) = app.get(app.counselor, &base).await;
        let truth = &view["evaluation"]["truth"];
        assert_eq!(find(&truth["actions"], "action", "means_restriction")["answer"], "yes", "{truth}");
        assert_eq!(truth["determination"]["result"], "under_estimate");
        let capped = view["evaluation"]["scoreBasis"]["cappedBy"].to_string();
        assert!(capped.contains("high_risk_underestimated"), "{capped}");
        // The record cannot change once graded (the feedback shows the scenario's level), in
        // the store too; the reviewed evaluation reads it as it is (`truth::reassess`).
        app.store
            .file_call_record(
                app.account,
                id.parse().expect("id"),
                &serde_json::from_value(json!({"status": "filed", "riskLevel": "high", "actions": ["safety_plan"]}))
                    .expect("input"),
            )
            .await
            .expect_err("the record is frozen once graded");

        // The record is frozen once graded.
        let (status, _) = put(&app, app.counselor, &format!("{base}/call-record"), record).await;
        assert_eq!(status, StatusCode::CONFLICT);

        // A supervisor edits and removes suggestions (audited); a counselor may not.
        let sid = gun["id"].as_str().expect("id");
        let path = format!("/api/evaluation-suggestions/{sid}");
        let edit = json!({"text": "You mentioned nights are worst. Is there a gun at home?"});
        let (status, _) = app.call(Some(app.counselor), Method::PATCH, &path, Some(edit.clone())).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = app.call(Some(app.supervisor), Method::PATCH, &path, Some(json!({"text": " "}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (status, edited) = app.call(Some(app.supervisor), Method::PATCH, &path, Some(edit)).await;
        assert_eq!(status, StatusCode::OK, "{edited}");
        assert_eq!(edited["text"], "You mentioned nights are worst. Is there a gun at home?");
        assert_eq!(edited["aiText"], gun["text"]);
        let (_, view) = app.get(app.counselor, &base).await;
        assert_eq!(find(&view["evaluation"]["suggestions"], "id", sid)["text"], edited["text"]);
        let (status, _) = app.call(Some(app.supervisor), Method::DELETE, &path, None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = app.call(Some(app.supervisor), Method::DELETE, &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (_, view) = app.get(app.counselor, &base).await;
        assert!(find(&view["evaluation"]["suggestions"], "id", sid).is_null());
        let (status, audit) = app.get(app.admin, "/api/audit-events?action=suggestion.").await;
        assert_eq!(status, StatusCode::OK, "{audit}");
        assert!(audit.to_string().contains("suggestion.edited") && audit.to_string().contains("suggestion.removed"));

        // The scenario's deviations: one session checked, none found.
        let counts = app.store.deviations_per_scenario(app.account).await.expect("deviations");
        assert_eq!(counts.len(), 1, "{backend:?}");
        assert_eq!((counts[0].counts.sessions_checked, counts[0].counts.deviations), (1, 0));
    }
}

#[tokio::test]
async fn what_the_caller_withheld_is_not_held_against_the_counselor() {
    for (backend, db) in testing::all().await {
        let (app, sim) = app_with_sim(&db).await;
        sim.add_rule(Rule::chat().schema_name("evaluation").reply_json(answer(&["safety_planning.means_restriction"])));
        sim.add_rule(Rule::chat().schema_name("analysis").reply_json(json!({"summary": "Nothing.", "findings": []})));
        let scenario = profiled_scenario(&app).await;
        // Asked directly about a gun, the caller says no: against the profile.
        let id = session(
            &app,
            Some(&scenario),
            &[
                "Everything hurts since I lost my job.",
                "I hear you. Do you have a plan to end your life?",
                "I would drive to the lake bridge tonight.",
                "Do you have a gun, or access to a firearm?",
                "No.",
                "Let's make a safety plan together.",
            ],
        )
        .await;
        let base = format!("/api/sessions/{id}");
        let record = json!({"status": "filed", "riskLevel": "moderate", "actions": ["safety_plan"]});
        let (status, _) = put(&app, app.counselor, &format!("{base}/call-record"), record).await;
        assert_eq!(status, StatusCode::OK);
        let (status, evaluation) = app.post(app.counselor, &format!("{base}/evaluate"), json!({})).await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {evaluation}");
        let truth = &evaluation["truth"];
        assert_eq!(find(&truth["facts"], "key", "gun")["outcome"], "withheld_by_caller", "{truth}");
        assert_eq!(truth["deviations"], json!([{"factKey": "gun", "kind": "withheld", "turns": [4]}]));
        // The means restriction rested on the gun: not held against the counselor, and said so.
        let safety = find(&evaluation["criteria"], "key", "safety_planning");
        let means = find(&safety["checks"], "key", "means_restriction");
        assert_eq!(means["answer"], "not_applicable", "{means}");
        assert!(means["note"].as_str().is_some_and(|n| n.contains("Not held against you")));
        assert_eq!(truth["heldHarmless"][0]["target"], "safety_planning.means_restriction");
        // The under-estimate is excused: the caller hid what the level rests on.
        assert_eq!(truth["determination"]["result"], "under_estimate");
        assert!(truth["determination"]["heldHarmless"].is_string(), "{truth}");
        let capped = evaluation["scoreBasis"]["cappedBy"].to_string();
        assert!(!capped.contains("underestimated"), "{capped}");
        // Nothing suggested for what the caller withheld.
        assert!(find(&evaluation["suggestions"], "target", "fact:gun").is_null());
        let counts = app.store.deviations_per_scenario(app.account).await.expect("deviations");
        assert_eq!(
            (counts[0].counts.sessions_checked, counts[0].counts.sessions_with_deviations, counts[0].counts.withheld),
            (1, 1, 1),
            "{backend:?}"
        );
        // The scenario's fidelity for its supervisor: counted, with the fact, its rule and
        // where (session, turns); a counselor may not read it.
        let path = format!("/api/scenarios/{scenario}/fidelity");
        let (status, _) = app.get(app.counselor, &path).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, fidelity) = app.get(app.supervisor, &path).await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {fidelity}");
        assert_eq!((fidelity["sessionsChecked"].as_i64(), fidelity["withheld"].as_i64()), (Some(1), Some(1)));
        // The counts sit beside the entries, and nothing else does (no scenario id).
        let mut keys: Vec<&str> =
            fidelity.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "denied",
                "deviations",
                "entries",
                "sessionsChecked",
                "sessionsWithDeviations",
                "volunteeredGated",
                "withheld"
            ]
        );
        let entry = &fidelity["entries"][0];
        assert_eq!(
            (&entry["factKey"], &entry["kind"], &entry["turns"], &entry["sessionId"], &entry["testRun"]),
            (&json!("gun"), &json!("withheld"), &json!([4]), &json!(id), &json!(false)),
            "{entry}"
        );
        assert_eq!(
            (&entry["rule"], &entry["factText"]),
            (&json!("never_volunteered"), &json!("There is a loaded handgun in my nightstand."))
        );
        assert!(entry["counselorName"].is_string(), "{entry}");
    }
}

#[tokio::test]
async fn an_unprofiled_call_grades_as_before_with_suggestions_for_failed_checks() {
    for (backend, db) in testing::all().await {
        let (app, sim) = app_with_sim(&db).await;
        sim.add_rule(Rule::chat().schema_name("evaluation").reply_json(answer(&["closing.warm_close"])));
        sim.add_rule(Rule::chat().schema_name("analysis").reply_json(json!({"summary": "Nothing.", "findings": []})));
        let id = session(&app, None, &["I can't sleep.", "What's keeping you up?", "Work.", "Okay, bye."]).await;
        let (status, evaluation) = app.post(app.counselor, &format!("/api/sessions/{id}/evaluate"), json!({})).await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {evaluation}");
        assert!(evaluation["truth"].is_null());
        let s = find(&evaluation["suggestions"], "target", "check:closing.warm_close");
        assert_eq!(s["turn"], 2, "{}", evaluation["suggestions"]);
        assert_eq!(evaluation["suggestions"].as_array().map(Vec::len), Some(1));
        // No record to wait for, and none to file after grading.
        let (status, _) =
            put(&app, app.counselor, &format!("/api/sessions/{id}/call-record"), json!({"status": "skipped"})).await;
        assert_eq!(status, StatusCode::CONFLICT);
    }
}

/// The center's own risk levels: defaults, an admin's list (checked per field), and a level in
/// use that cannot be removed; the partner-facing standard levels are unchanged.
#[tokio::test]
async fn the_center_names_its_own_risk_levels() {
    for (backend, db) in testing::all().await {
        let (app, _sim) = app_with_sim(&db).await;
        let path = "/api/accounts/risk-levels";
        let (status, levels) = app.get(app.counselor, path).await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {levels}");
        assert_eq!(
            levels["levels"],
            json!([{"label": "Low", "standard": "low"}, {"label": "Moderate", "standard": "moderate"},
                   {"label": "High", "standard": "high"}, {"label": "Imminent", "standard": "imminent"}])
        );
        // Per field: an empty label, a duplicate, levels out of order.
        let (status, body) = put_levels(&app, json!([{"label": " ", "standard": "low"}])).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body.to_string().contains("levels[0].label"), "{body}");
        let (status, body) = put_levels(
            &app,
            json!([{"label": "Green", "standard": "low"}, {"label": "green", "standard": "moderate"}]),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body.to_string().contains("levels[1].label"), "{body}");
        let (status, body) =
            put_levels(&app, json!([{"label": "Red", "standard": "high"}, {"label": "Green", "standard": "low"}]))
                .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body.to_string().contains("levels[1].standard"), "{body}");
        let (status, _) =
            put(&app, app.supervisor, path, json!({"levels": [{"label": "Any", "standard": "low"}]})).await;
        assert_eq!(status, StatusCode::FORBIDDEN);

        // The center's five levels, two of them mapped to high.
        let five = json!([{"label": "Green", "standard": "low"}, {"label": "Amber", "standard": "moderate"},
                          {"label": "Red", "standard": "high"}, {"label": "Red with a firearm", "standard": "high"},
                          {"label": "Emergency", "standard": "imminent"}]);
        let (status, body) = put_levels(&app, five.clone()).await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {body}");
        let (_, levels) = app.get(app.counselor, path).await;
        assert_eq!(levels["levels"], five);

        // A scenario expects high: one of the two high levels may go, not both.
        let scenario = profiled_scenario(&app).await;
        let without_firearm = json!([{"label": "Green", "standard": "low"}, {"label": "Amber", "standard": "moderate"},
                                     {"label": "Red", "standard": "high"}, {"label": "Emergency", "standard": "imminent"}]);
        let (status, body) = put_levels(&app, without_firearm).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let no_high = json!([{"label": "Green", "standard": "low"}, {"label": "Amber", "standard": "moderate"},
                             {"label": "Emergency", "standard": "imminent"}]);
        let (status, body) = put_levels(&app, no_high).await;
        assert_eq!(status, StatusCode::CONFLICT, "{backend:?}: {body}");
        assert!(body.to_string().contains("Red") && body.to_string().contains("1 scenario"), "{body}");
        // The scenario still speaks the standard level.
        let (_, s) = app.get(app.supervisor, &format!("/api/scenarios/{scenario}")).await;
        assert_eq!(s["riskProfile"]["expectedLevel"], "high");
        let (status, audit) = app.get(app.admin, "/api/audit-events?action=account.risk_levels_set").await;
        assert_eq!(status, StatusCode::OK, "{audit}");
        assert!(audit.to_string().contains("account.risk_levels_set"), "{audit}");
    }
}

async fn put_levels(app: &App, levels: Value) -> (StatusCode, Value) {
    put(app, app.admin, "/api/accounts/risk-levels", json!({ "levels": levels })).await
}
