//! `GET /api/progress` on every backend: scores in time order, weekly criterion averages,
//! first / best / latest per scenario, activity and flag counts, cohorts, and who may see what.

use reqwest::StatusCode;
use serde_json::{Value, json};
use store::testing;
use store::{CriterionScore, FlagSeverity, FlagSource, FlagType, NewEvaluation, NewFlag, NewSession, SessionKind};

use crate::common::{App, id, spawn};

const WEEK: i64 = 7 * 24 * 3600 * 1000;

fn criterion(key: &str, rating: Option<u8>) -> CriterionScore {
    CriterionScore {
        key: key.into(),
        name: format!("Criterion {key}"),
        rating,
        comment: String::new(),
        checks: vec![],
        not_assessed: false,
        rating_overridden: false,
        ai_rating: None,
    }
}

/// A finished, evaluated session of `counselor` (on `assignment`, or free practice), moved
/// `weeks_ago` weeks into the past.
async fn evaluated(
    app: &App,
    counselor: store::UserId,
    assignment: Option<store::AssignmentId>,
    score: impl Into<Option<f64>>,
    ratings: [Option<u8>; 2],
    flag: bool,
    weeks_ago: i64,
) -> store::SessionId {
    let new = NewSession {
        user_id: counselor,
        assignment_id: assignment,
        scenario_id: None,
        kind: SessionKind::Chat,
        room_name: None,
    };
    let session = app.store.create_session(app.account, &new).await.expect("session").id;
    let flags = if flag {
        vec![NewFlag {
            flag_type: FlagType::MissedPlanOrMeans,
            severity: FlagSeverity::High,
            source: FlagSource::Evaluation,
            details: "Did not ask about the pills.".into(),
            turns: vec![3],
        }]
    } else {
        vec![]
    };
    let score = score.into();
    let evaluation = NewEvaluation {
        session_id: session,
        flags,
        overall_score: score,
        score_band: score.map(store::ScoreBand::of),
        score_basis: store::ScoreBasis {
            absent_reason: score.is_none().then(|| "the safety criterion `safety` was not assessed".into()),
            ..Default::default()
        },
        rubric_version: 2,
        facts: Vec::new(),
        gate_table: None,
        criteria: vec![criterion("rapport", ratings[0]), criterion("safety", ratings[1])],
        strengths: vec![],
        areas_to_improve: vec![],
        model: "test".into(),
        raw_output: "{}".into(),
        integrity: Default::default(),
    };
    app.store.finish_evaluation(app.account, &evaluation).await.expect("evaluation");
    app.store.backdate_session(app.account, session, weeks_ago * WEEK).await.expect("backdate");
    session
}

async fn assign(app: &App, scenario: &str, counselor: store::UserId) -> store::AssignmentId {
    let (status, body) =
        app.post(app.supervisor, "/api/assignments", json!({"scenarioId": scenario, "counselorId": counselor})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    id(&body).parse().expect("uuid")
}

fn scores(body: &Value) -> Vec<f64> {
    body["scores"].as_array().expect("scores").iter().map(|p| p["overallScore"].as_f64().expect("score")).collect()
}

#[tokio::test]
async fn progress_aggregates_scores_criteria_scenarios_and_flags() {
    for (backend, db) in testing::all().await {
        let app = spawn(&db).await;
        let scenario = app.scenario("Caller with pills").await;
        let scenario_id = id(&scenario);
        let first = assign(&app, &scenario_id, app.counselor).await;
        // Three attempts of the scenario over three weeks (60, then 85, then 75) and a free
        // practice session; the other counselor practised once, freely.
        evaluated(&app, app.counselor, Some(first), 60.0, [Some(2), Some(1)], true, 2).await;
        let second = assign(&app, &scenario_id, app.counselor).await;
        evaluated(&app, app.counselor, Some(second), 85.0, [Some(4), None], false, 1).await;
        let third = assign(&app, &scenario_id, app.counselor).await;
        evaluated(&app, app.counselor, Some(third), 75.0, [Some(3), Some(3)], false, 1).await;
        evaluated(&app, app.counselor, None, 50.0, [Some(1), Some(2)], true, 0).await;
        evaluated(&app, app.other_counselor, None, 90.0, [Some(4), Some(4)], false, 0).await;

        let (status, mine) = app.get(app.supervisor, &format!("/api/progress?counselorId={}", app.counselor)).await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {mine}");
        assert_eq!(scores(&mine), [60.0, 85.0, 75.0, 50.0], "{backend:?}: oldest first");
        assert_eq!(mine["scores"][0]["scenarioTitle"], "Caller with pills", "{backend:?}");
        assert!(mine["scores"][3]["scenarioTitle"].is_null(), "{backend:?}: free practice");
        assert_eq!(mine["scores"][0]["kind"], "chat", "{backend:?}");

        // Weekly averages per criterion, not-applicable ratings left out.
        let weeks: Vec<(String, f64, i64)> = mine["criteria"]
            .as_array()
            .expect("criteria")
            .iter()
            .map(|c| {
                (
                    c["key"].as_str().expect("key").to_owned(),
                    c["averageRating"].as_f64().expect("avg"),
                    c["ratings"].as_i64().expect("n"),
                )
            })
            .collect();
        let safety: Vec<_> = weeks.iter().filter(|w| w.0 == "safety").map(|w| (w.1, w.2)).collect();
        let rapport: Vec<_> = weeks.iter().filter(|w| w.0 == "rapport").map(|w| (w.1, w.2)).collect();
        assert_eq!(rapport, [(2.0, 1), (3.5, 2), (1.0, 1)], "{backend:?}: {weeks:?}");
        assert_eq!(safety, [(1.0, 1), (3.0, 1), (2.0, 1)], "{backend:?}: {weeks:?}");
        let week_starts: Vec<&str> =
            mine["criteria"].as_array().expect("criteria").iter().filter_map(|c| c["weekStart"].as_str()).collect();
        assert!(week_starts.windows(2).all(|w| w[0] <= w[1]), "{backend:?}: weeks in order");

        let per_scenario = &mine["scenarios"];
        assert_eq!(per_scenario.as_array().map(Vec::len), Some(1), "{backend:?}: {per_scenario}");
        assert_eq!(per_scenario[0]["attempts"], 3, "{backend:?}");
        assert_eq!(per_scenario[0]["firstScore"], 60.0, "{backend:?}");
        assert_eq!(per_scenario[0]["bestScore"], 85.0, "{backend:?}");
        assert_eq!(per_scenario[0]["latestScore"], 75.0, "{backend:?}");

        let activity = &mine["activity"];
        assert_eq!(activity["sessionsStarted"], 4, "{backend:?}: {activity}");
        assert_eq!(activity["sessionsCompleted"], 4, "{backend:?}");
        assert_eq!(activity["sessionsEvaluated"], 4, "{backend:?}");
        assert_eq!(activity["assignments"], 3, "{backend:?}");
        assert_eq!(activity["assignmentsCompleted"], 3, "{backend:?}");
        assert_eq!(mine["flags"], json!({"raised": 2, "open": 2, "reviewed": 0, "dismissed": 0}), "{backend:?}");
        let by_week: i64 =
            mine["flagsByWeek"].as_array().expect("weeks").iter().map(|w| w["raised"].as_i64().expect("n")).sum();
        assert_eq!(by_week, 2, "{backend:?}");

        // A review moves the count.
        let (_, flags) = app.get(app.supervisor, "/api/flags").await;
        let flag = flags[0]["id"].as_str().expect("flag id").to_owned();
        let (status, _) = app
            .call(
                Some(app.supervisor),
                reqwest::Method::PATCH,
                &format!("/api/flags/{flag}"),
                Some(json!({"status": "reviewed", "note": "Talked it through"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{backend:?}");
        let (_, mine) = app.get(app.supervisor, &format!("/api/progress?counselorId={}", app.counselor)).await;
        assert_eq!(mine["flags"]["reviewed"], 1, "{backend:?}");
        assert_eq!(mine["flags"]["open"], 1, "{backend:?}");

        // The whole account, and the cohort of those assigned the scenario.
        let (_, all) = app.get(app.supervisor, "/api/progress").await;
        assert_eq!(scores(&all).len(), 5, "{backend:?}");
        let (status, cohort) = app.get(app.supervisor, &format!("/api/progress?scenarioId={scenario_id}")).await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {cohort}");
        assert_eq!(scores(&cohort), [60.0, 85.0, 75.0, 50.0], "{backend:?}: only the assigned counselor");

        // Counselors see their own progress, whatever they ask for.
        let (status, own) = app.get(app.other_counselor, &format!("/api/progress?counselorId={}", app.counselor)).await;
        assert_eq!(status, StatusCode::OK, "{backend:?}");
        assert_eq!(scores(&own), [90.0], "{backend:?}");

        // Another account's counselor or scenario is not found; a malformed id is a 400.
        let (status, _) = app.get(app.outsider, &format!("/api/progress?counselorId={}", app.counselor)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{backend:?}");
        let (status, _) = app.get(app.outsider, &format!("/api/progress?scenarioId={scenario_id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{backend:?}");
        let (status, body) = app.get(app.supervisor, "/api/progress?counselorId=nope").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{backend:?}: {body}");
    }
}

#[tokio::test]
async fn progress_is_empty_not_an_error_without_history() {
    for (backend, db) in testing::all().await {
        let app = spawn(&db).await;
        let (status, body) = app.get(app.counselor, "/api/progress").await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {body}");
        assert_eq!(body["scores"], json!([]), "{backend:?}");
        assert_eq!(body["activity"]["sessionsStarted"], 0, "{backend:?}");
        assert_eq!(body["flags"]["raised"], 0, "{backend:?}");
    }
}

/// An evaluation without a score (the safety criterion not assessed, nothing scorable: a call
/// hung up at once) is a session evaluated, not a point on the chart; it never turns the page
/// into an error. A scenario's first, best and latest are its scored attempts'.
#[tokio::test]
async fn an_unscored_evaluation_is_counted_but_not_charted() {
    for (backend, db) in testing::all().await {
        let app = spawn(&db).await;
        let scenario = app.scenario("Caller who hangs up").await;
        let scenario_id = id(&scenario);
        let first = assign(&app, &scenario_id, app.counselor).await;
        evaluated(&app, app.counselor, Some(first), None, [Some(2), None], false, 2).await;
        let second = assign(&app, &scenario_id, app.counselor).await;
        evaluated(&app, app.counselor, Some(second), 70.0, [Some(3), Some(3)], false, 1).await;
        let third = assign(&app, &scenario_id, app.counselor).await;
        evaluated(&app, app.counselor, Some(third), None, [None, None], false, 0).await;
        evaluated(&app, app.other_counselor, None, None, [None, None], false, 0).await;

        for (who, path) in [
            (app.supervisor, format!("/api/progress?counselorId={}", app.counselor)),
            (app.supervisor, "/api/progress".to_owned()),
            (app.supervisor, format!("/api/progress?scenarioId={scenario_id}")),
            (app.counselor, "/api/progress".to_owned()),
        ] {
            let (status, body) = app.get(who, &path).await;
            assert_eq!(status, StatusCode::OK, "{backend:?} {path}: {body}");
            assert_eq!(scores(&body), [70.0], "{backend:?} {path}: only the scored session is a point");
            assert_eq!(
                body["activity"]["sessionsEvaluated"],
                if path == "/api/progress" && who == app.supervisor { 4 } else { 3 },
                "{backend:?} {path}"
            );
            let per_scenario = &body["scenarios"];
            assert_eq!(per_scenario.as_array().map(Vec::len), Some(1), "{backend:?} {path}: {per_scenario}");
            assert_eq!(per_scenario[0]["attempts"], 3, "{backend:?} {path}: every evaluated attempt");
            for figure in ["firstScore", "bestScore", "latestScore"] {
                assert_eq!(per_scenario[0][figure], 70.0, "{backend:?} {path}: {figure} of the scored attempt");
            }
        }
        // The other counselor has nothing scored: no points and no scenario figures, no error.
        let (status, body) = app.get(app.other_counselor, "/api/progress").await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {body}");
        assert_eq!(body["scores"], json!([]), "{backend:?}");
        assert_eq!(body["activity"]["sessionsEvaluated"], 1, "{backend:?}");
    }
}

/// A supervisor's review moves the session's point: progress charts the score everyone sees
/// (the sessions list's and the session page's), not the AI's stored one.
#[tokio::test]
async fn progress_charts_the_reviewed_score() {
    for (backend, db) in testing::all().await {
        let app = spawn(&db).await;
        let session = crate::calibration::evaluated_session(&app).await;
        let (status, before) = app.get(app.supervisor, "/api/progress").await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {before}");
        let ai = scores(&before);
        assert_eq!(ai.len(), 1, "{backend:?}: {before}");

        // The wrongly raised flag capped the AI's score; the review takes it back.
        let review = json!({"note": "The flag was wrong.", "overrides": [
            {"kind": "flag", "target": "suicide_not_asked", "value": "not_raised", "reason": "Turn 3 asks directly."},
        ]});
        let (status, reviewed) = app.post(app.supervisor, &format!("/api/sessions/{session}/review"), review).await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {reviewed}");
        let score = reviewed["overallScore"].as_f64().expect("reviewed score");
        assert!(score > ai[0], "{backend:?}: the review lifts the cap: {score} vs {}", ai[0]);

        for who in [app.supervisor, app.counselor] {
            let (status, after) = app.get(who, "/api/progress").await;
            assert_eq!(status, StatusCode::OK, "{backend:?}: {after}");
            assert_eq!(scores(&after), [score], "{backend:?}: the reviewed score");
        }
        let (_, list) = app.get(app.supervisor, "/api/sessions").await;
        let row = list.as_array().and_then(|rows| rows.iter().find(|r| r["id"] == session.to_string()));
        assert_eq!(row.map(|r| r["overallScore"].clone()), Some(json!(score)), "{backend:?}: the list agrees: {list}");
    }
}

#[tokio::test]
async fn progress_averages_the_reviewed_ratings() {
    for (backend, db) in testing::all().await {
        let app = spawn(&db).await;
        let session = crate::calibration::evaluated_session(&app).await;
        let (status, before) = app.get(app.supervisor, "/api/progress").await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {before}");
        let heat = before["counselorCriteria"].as_array().expect("heat map");
        let first = heat.first().expect("a rated criterion");
        let key = first["key"].as_str().expect("key").to_owned();
        let ai = first["averageRating"].as_f64().expect("average");
        let reviewed = if ai >= 3.0 { 1.0 } else { 4.0 };

        let review = json!({"overrides": [
            {"kind": "rating", "target": key, "value": format!("{reviewed}"), "reason": "Read the call again."},
        ]});
        let (status, body) = app.post(app.supervisor, &format!("/api/sessions/{session}/review"), review).await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {body}");
        let shown = body["criteria"].as_array().and_then(|c| c.iter().find(|c| c["key"] == key)).expect("criterion");
        assert_eq!(shown["rating"].as_f64(), Some(reviewed), "{backend:?}: the page shows the override");

        for who in [app.supervisor, app.counselor] {
            let (status, after) = app.get(who, "/api/progress").await;
            assert_eq!(status, StatusCode::OK, "{backend:?}: {after}");
            let of = |list: &str| -> Vec<f64> {
                after[list]
                    .as_array()
                    .expect("list")
                    .iter()
                    .filter(|c| c["key"] == key)
                    .map(|c| c["averageRating"].as_f64().expect("average"))
                    .collect()
            };
            // One session: each average is its one rating, the reviewed one.
            assert_eq!(of("counselorCriteria"), [reviewed], "{backend:?}: the heat map: {after}");
            assert_eq!(of("criteria"), [reviewed], "{backend:?}: the weekly average: {after}");
            // The other criteria keep the AI's ratings.
            let others = |body: &Value| -> Vec<Value> {
                body["counselorCriteria"]
                    .as_array()
                    .expect("heat")
                    .iter()
                    .filter(|c| c["key"] != key)
                    .cloned()
                    .collect()
            };
            assert_eq!(others(&after), others(&before), "{backend:?}");
        }
    }
}
