//! Calibration through HTTP on every backend: a supervisor's overrides never change the stored
//! AI answer, are audited, change what the counselor sees (marked as reviewed), move the
//! agreement report as expected, and a reviewed session exports as a golden case only after the
//! personal-details review.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use store::testing;
use store::{
    CheckAnswer, CheckResult, CriterionScore, FlagSeverity, FlagSource, FlagType, GateSource, NewEvaluation, NewFlag,
    NewSession, NewTurn, SessionKind, Speaker,
};
use uuid::Uuid;

use crate::common::{self, App};

fn check(key: &str, answer: CheckAnswer) -> CheckResult {
    CheckResult {
        key: key.into(),
        question: format!("{key}?"),
        answer,
        turns: vec![2],
        note: String::new(),
        ai_answer: None,
        blocked_by: None,
    }
}

fn criterion(key: &str, rating: u8, checks: Vec<CheckResult>) -> CriterionScore {
    CriterionScore {
        key: key.into(),
        name: key.into(),
        rating: Some(rating),
        comment: String::new(),
        checks,
        not_assessed: false,
        rating_overridden: false,
        ai_rating: None,
    }
}

/// A counselor session with a transcript holding personal details, evaluated by "the AI":
/// asked directly (yes), means not asked (no), firearms (no), and a wrongly raised
/// `suicide_not_asked` that caps the score.
pub(crate) async fn evaluated_session(app: &App) -> store::SessionId {
    let new = NewSession {
        user_id: app.counselor,
        assignment_id: None,
        scenario_id: None,
        kind: SessionKind::Chat,
        room_name: None,
    };
    let session = app.store.create_session(app.account, &new).await.expect("session").id;
    let turn = |speaker, text: &str, started_ms| NewTurn {
        speaker,
        text: text.into(),
        started_ms,
        ended_ms: None,
        segment_id: None,
    };
    let turns = [
        turn(Speaker::Counselor, "Crisis line, this is Jordan. What's going on?", 0),
        turn(
            Speaker::Caller,
            "Hi, my name is Dana Whitfield, I live in Springfield. Call me on 555-201-3344 if we get cut off.",
            3000,
        ),
        turn(Speaker::Counselor, "Thank you, Dana. Are you thinking about killing yourself?", 6000),
        turn(Speaker::Caller, "Yes. I have pills at home. You can email me at dana.w@example.org.", 9000),
    ];
    app.store.append_turns(app.account, session, &turns).await.expect("turns");
    let criteria = vec![
        criterion("asks_about_suicide", 4, vec![check("asks_directly", CheckAnswer::Yes)]),
        criterion("risk_capability", 1, vec![check("means", CheckAnswer::No), check("firearms", CheckAnswer::No)]),
        criterion("closing", 3, vec![check("warm_close", CheckAnswer::Yes)]),
    ];
    let raised =
        [admin::scoring::Raised { flag: FlagType::SuicideNotAsked, source: GateSource::Evaluation, turns: vec![] }];
    let table = admin::scoring::GateTable::current();
    let score = admin::scoring::score(&criteria, &[], &raised, &table);
    let new = NewEvaluation {
        session_id: session,
        flags: vec![NewFlag {
            flag_type: FlagType::SuicideNotAsked,
            severity: FlagSeverity::High,
            source: FlagSource::Evaluation,
            details: "Raised by the AI.".into(),
            turns: vec![],
        }],
        overall_score: score.overall,
        score_band: score.band,
        score_basis: score.basis,
        rubric_version: admin::rubric::RUBRIC_VERSION,
        criteria: score.criteria,
        facts: Vec::new(),
        gate_table: Some(table.to_value()),
        strengths: vec![],
        areas_to_improve: vec![],
        model: "test".into(),
        raw_output: "{}".into(),
        integrity: Default::default(),
    };
    app.store.finish_evaluation(app.account, &new).await.expect("evaluation");
    session
}

fn check_of<'a>(evaluation: &'a Value, criterion: &str, key: &str) -> &'a Value {
    evaluation["criteria"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["key"] == criterion))
        .and_then(|c| c["checks"].as_array())
        .and_then(|k| k.iter().find(|k| k["key"] == key))
        .unwrap_or(&Value::Null)
}

fn row<'a>(report: &'a Value, key: &str) -> &'a Value {
    report["checks"].as_array().and_then(|r| r.iter().find(|r| r["key"] == key)).unwrap_or(&Value::Null)
}

fn flag_row<'a>(report: &'a Value, flag: &str) -> &'a Value {
    report["flags"].as_array().and_then(|r| r.iter().find(|r| r["flagType"] == flag)).unwrap_or(&Value::Null)
}

#[tokio::test]
async fn overrides_sit_beside_the_ai_answer_are_audited_and_reach_the_counselor() {
    for (backend, db) in testing::all().await {
        let app = common::spawn(&db).await;
        let session = evaluated_session(&app).await;
        let stored_before = app
            .store
            .ai_evaluation_raw(&common::session_ref(&app.store, session).await)
            .await
            .expect("read")
            .expect("stored");
        assert_eq!(stored_before.score_band, Some(store::ScoreBand::NeedsWork), "capped by the flag");
        let review_path = format!("/api/sessions/{session}/review");

        // Before any review: the counselor sees the AI's evaluation, not marked as reviewed.
        let (status, view) = app.get(app.counselor, &format!("/api/sessions/{session}")).await;
        assert_eq!(status, StatusCode::OK, "{view}");
        assert_eq!(view["evaluation"]["review"], Value::Null);

        // Bad input: who, what, and how.
        let good = json!({"overrides": [{"kind": "check", "target": "risk_capability.means", "value": "yes", "reason": "Turn 4: the caller said she has pills; means were established."}]});
        assert_eq!(app.post(app.counselor, &review_path, good.clone()).await.0, StatusCode::FORBIDDEN);
        let bad = |o: Value| json!({"overrides": [o]});
        for (body, field) in [
            (
                bad(json!({"kind": "check", "target": "risk_capability.vibes", "value": "yes", "reason": "x"})),
                "overrides[0].target",
            ),
            (
                bad(json!({"kind": "check", "target": "risk_capability.means", "value": "maybe", "reason": "x"})),
                "overrides[0].value",
            ),
            (
                bad(json!({"kind": "check", "target": "risk_capability.means", "value": "yes", "reason": "  "})),
                "overrides[0].reason",
            ),
            (
                bad(json!({"kind": "rating", "target": "risk_capability", "value": "5", "reason": "x"})),
                "overrides[0].value",
            ),
            (
                bad(json!({"kind": "flag", "target": "policy_violation", "value": "raised", "reason": "x"})),
                "overrides[0].target",
            ),
            (
                bad(json!({"kind": "flag", "target": "missed_rescue", "value": "yes", "reason": "x"})),
                "overrides[0].value",
            ),
        ] {
            let (status, err) = app.post(app.supervisor, &review_path, body).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{backend:?}: {err}");
            assert!(err.to_string().contains(field), "{field}: {err}");
        }
        let (status, _) = app.post(app.supervisor, &review_path, json!({"overrides": [{"kind": "nope"}]})).await;
        assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY, "{status}");
        let (status, _) =
            app.raw(app.supervisor, Method::POST, &review_path, "application/json", b"{not json".to_vec()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            app.post(app.supervisor, "/api/sessions/not-a-uuid/review", good.clone()).await.0,
            StatusCode::BAD_REQUEST
        );
        let missing = format!("/api/sessions/{}/review", Uuid::now_v7());
        assert_eq!(app.post(app.supervisor, &missing, good.clone()).await.0, StatusCode::NOT_FOUND);
        let unevaluated = app
            .store
            .create_session(
                app.account,
                &NewSession {
                    user_id: app.counselor,
                    assignment_id: None,
                    scenario_id: None,
                    kind: SessionKind::Chat,
                    room_name: None,
                },
            )
            .await
            .expect("session")
            .id;
        let (status, _) = app.post(app.supervisor, &format!("/api/sessions/{unevaluated}/review"), good.clone()).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(app.get(app.supervisor, "/api/calibration/agreement").await.1["evaluations"], 0);

        // The review: a check, a rating and a flag overridden, each with a reason.
        let body = json!({"note": "Means were asked implicitly; the flag was wrong.", "overrides": [
            {"kind": "check", "target": "risk_capability.means", "value": "yes", "reason": "Turn 4: means were established."},
            {"kind": "rating", "target": "risk_capability", "value": "3", "reason": "Better than the AI thought."},
            {"kind": "flag", "target": "suicide_not_asked", "value": "not_raised", "reason": "Turn 3 asks directly."},
        ]});
        let (status, reviewed) = app.post(app.supervisor, &review_path, body).await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {reviewed}");
        assert_eq!(reviewed["review"]["reviewed"], true);
        assert_eq!(reviewed["review"]["aiFlags"], json!(["suicide_not_asked"]));
        assert_eq!(reviewed["review"]["flags"], json!([]));
        let means = check_of(&reviewed, "risk_capability", "means");
        assert_eq!((means["answer"].as_str(), means["aiAnswer"].as_str()), (Some("yes"), Some("no")), "{reviewed}");
        let capability = reviewed["criteria"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["key"] == "risk_capability"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            (capability["rating"].as_u64(), capability["aiRating"].as_u64(), capability["ratingOverridden"].as_bool()),
            (Some(3), Some(1), Some(true))
        );
        // The score is recomputed without the cap; the AI's stays beside it.
        assert_eq!(reviewed["review"]["aiOverallScore"], json!(stored_before.overall_score));
        assert_eq!(reviewed["scoreBasis"]["cappedBy"], json!([]));
        assert!(reviewed["overallScore"].as_f64() > stored_before.overall_score, "{reviewed}");

        // The stored AI answer never changes.
        let stored_after = app
            .store
            .ai_evaluation_raw(&common::session_ref(&app.store, session).await)
            .await
            .expect("read")
            .expect("stored");
        assert_eq!(stored_after.criteria, stored_before.criteria);
        assert_eq!(stored_after.overall_score, stored_before.overall_score);
        assert_eq!(stored_after.score_band, stored_before.score_band);
        let flags = app.store.session_flags(&common::session_ref(&app.store, session).await).await.expect("flags");
        assert!(flags.iter().any(|f| f.flag_type == FlagType::SuicideNotAsked), "the AI's flag stays");

        // Audited with the overrides.
        let events = app.store.audit_events(app.account, 20).await.expect("audit");
        let event = events.iter().find(|e| e.action == "evaluation.reviewed").expect("audit event");
        assert_eq!(event.actor_user_id, Some(app.supervisor));
        let details = event.details.to_string();
        assert!(details.contains("risk_capability.means") && details.contains("Turn 3 asks directly."), "{details}");

        // The counselor now sees the reviewed version, marked as reviewed.
        let (_, view) = app.get(app.counselor, &format!("/api/sessions/{session}")).await;
        assert_eq!(view["evaluation"]["review"]["reviewed"], true, "{view}");
        assert_eq!(check_of(&view["evaluation"], "risk_capability", "means")["answer"], "yes");
        assert_eq!(view["evaluation"]["overallScore"], reviewed["overallScore"]);
        let (status, reviews) = app.get(app.supervisor, &format!("/api/sessions/{session}/reviews")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(reviews[0]["overrides"].as_array().map(Vec::len), Some(3));
        assert_eq!(app.get(app.counselor, &format!("/api/sessions/{session}/reviews")).await.0, StatusCode::FORBIDDEN);

        // The agreement report moves: means and the flag disagree, the direct ask agrees.
        let (status, report) = app.get(app.supervisor, "/api/calibration/agreement").await;
        assert_eq!(status, StatusCode::OK, "{report}");
        assert_eq!((report["evaluations"].as_u64(), report["overrides"].as_u64()), (Some(1), Some(3)));
        assert_eq!(row(&report, "risk_capability.means")["disagreements"], 1);
        assert_eq!(row(&report, "risk_capability.means")["agreement"], 0.0);
        assert_eq!(row(&report, "asks_about_suicide.asks_directly")["agreement"], 1.0);
        assert_eq!(report["mostDisagreed"], json!(["risk_capability.means"]));
        let f = flag_row(&report, "suicide_not_asked");
        assert_eq!(
            (f["expected"].as_u64(), f["raised"].as_u64(), f["falsePositives"].as_u64()),
            (Some(0), Some(1), Some(1))
        );
        assert_eq!(report["ratings"]["exact"], 2, "{report}");

        // A second review takes the means override back: the latest override wins, history stays.
        let body = json!({"overrides": [{"kind": "check", "target": "risk_capability.means", "value": "no", "reason": "On reflection the counselor never asked."}]});
        assert_eq!(app.post(app.supervisor, &review_path, body).await.0, StatusCode::OK);
        let (_, report) = app.get(app.supervisor, "/api/calibration/agreement").await;
        assert_eq!(row(&report, "risk_capability.means")["agreement"], 1.0, "{report}");
        assert_eq!(report["reviews"], 2);
        assert_eq!(report["mostDisagreed"], json!([]));
        // Outside the period, nothing; a bad period is a 422.
        let (_, empty) = app.get(app.supervisor, "/api/calibration/agreement?from=2000-01-01&to=2000-01-31").await;
        assert_eq!(empty["evaluations"], 0);
        assert_eq!(
            app.get(app.supervisor, "/api/calibration/agreement?from=yesterday").await.0,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(app.get(app.counselor, "/api/calibration/agreement").await.0, StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn a_reviewed_session_exports_as_a_golden_case_after_the_personal_details_review() {
    for (backend, db) in testing::all().await {
        let app = common::spawn(&db).await;
        let session = evaluated_session(&app).await;
        let path = format!("/api/sessions/{session}/golden-case");
        // Not reviewed yet: nothing to export.
        assert_eq!(app.get(app.supervisor, &path).await.0, StatusCode::CONFLICT);
        let body = json!({"overrides": [{"kind": "flag", "target": "suicide_not_asked", "value": "not_raised", "reason": "Turn 3 asks directly."}]});
        assert_eq!(app.post(app.supervisor, &format!("/api/sessions/{session}/review"), body).await.0, StatusCode::OK);

        let (status, draft) = app.get(app.supervisor, &path).await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {draft}");
        let text = draft["case"]["turns"].to_string();
        for detail in ["Dana", "Whitfield", "Springfield", "555-201-3344", "dana.w@example.org"] {
            assert!(!text.contains(detail), "{detail} left in {text}");
        }
        assert!(draft["redactions"].as_array().is_some_and(|r| r.len() >= 5), "{draft}");
        assert_eq!(draft["case"]["source"], "supervisor_review");
        assert_eq!(draft["case"]["labels"]["checks"]["asks_about_suicide.asks_directly"], "yes");
        assert_eq!(draft["case"]["labels"]["flags"], json!([]), "the supervisor's resolved flags");
        assert_eq!(app.get(app.counselor, &path).await.0, StatusCode::FORBIDDEN);

        // Not confirmed, or a detail put back: 422. Confirmed: the case, audited.
        let case = draft["case"].clone();
        let (status, _) = app.post(app.supervisor, &path, json!({"case": case, "personalDetailsRemoved": false})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let mut leaked = case.clone();
        leaked["turns"][1]["text"] = json!("Call me on 555-201-3344.");
        let (status, err) =
            app.post(app.supervisor, &path, json!({"case": leaked, "personalDetailsRemoved": true})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
        assert!(err.to_string().contains("phone"), "{err}");
        let mut edited = case.clone();
        edited["title"] = json!("Direct ask, means not explored");
        let (status, exported) =
            app.post(app.supervisor, &path, json!({"case": edited, "personalDetailsRemoved": true})).await;
        assert_eq!(status, StatusCode::OK, "{exported}");
        assert_eq!(exported["title"], "Direct ask, means not explored");
        let events = app.store.audit_events(app.account, 20).await.expect("audit");
        assert!(events.iter().any(|e| e.action == "evaluation.golden_exported"));
    }
}
