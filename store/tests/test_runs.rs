//! Scenario test runs in the store, on every available backend: a run is queued with its
//! session and job in one transaction; its session stays out of lists, progress, the flag queue,
//! flag e-mails, partner events and analysis; "re-run all" covers the profiled scenarios and
//! refuses while it is unfinished; a scenario's deletion takes its runs along.

use store::testing::{self, Fixture, TestDb, fixture};
use store::*;
use uuid::Uuid;

async fn scenario(db: &TestDb, f: &Fixture, title: &str, profiled: bool) -> Scenario {
    let mut input = serde_json::json!({
        "title": title, "prompt": "You are a caller.", "mode": "chat", "category": "onboarding",
    });
    if profiled {
        input["riskProfile"] = serde_json::json!({
            "expectedLevel": "high", "requiredActions": ["safety_plan"],
            "facts": [{"key": "plan", "kind": "plan", "text": "I would take my pills.", "disclosure": "when_asked"}],
        });
    }
    let input: ScenarioInput = serde_json::from_value(input).expect("valid input");
    db.store.create_scenario(f.account.id, Some(f.supervisor.id), &input).await.expect("scenario").0
}

fn run_of(f: &Fixture, kind: TestRunKind) -> NewTestRun {
    NewTestRun { kind, max_turns: 4, requested_by: f.supervisor.id }
}

fn evaluation(session_id: SessionId, flags: Vec<NewFlag>) -> NewEvaluation {
    NewEvaluation {
        session_id,
        overall_score: Some(40.0),
        score_band: Some(ScoreBand::of(40.0)),
        score_basis: Default::default(),
        rubric_version: 3,
        facts: Vec::new(),
        gate_table: None,
        criteria: Vec::new(),
        flags,
        strengths: vec![],
        areas_to_improve: vec![],
        model: "test".into(),
        raw_output: "{}".into(),
        integrity: Default::default(),
    }
}

fn flag() -> NewFlag {
    NewFlag {
        flag_type: FlagType::SuicideNotAsked,
        severity: FlagSeverity::High,
        source: FlagSource::Evaluation,
        details: "never asked".into(),
        turns: vec![],
    }
}

#[tokio::test]
async fn a_run_is_queued_with_its_session_and_job_and_its_session_is_nobodys_practice() {
    for (backend, db) in testing::all().await {
        let f = fixture(&db).await;
        let s = scenario(&db, &f, "Queued", false).await;
        let run = db.store.create_test_run(f.account.id, s.id, &run_of(&f, TestRunKind::Poor)).await.expect("run");
        assert_eq!(
            (run.status, run.kind, run.max_turns, run.rerun),
            (TestRunStatus::Queued, TestRunKind::Poor, 4, false)
        );
        let job = db.store.job_state(run.session_id, JobKind::TestRun, None).await.expect("job").expect("queued");
        assert_eq!(job.status, JobStatus::Pending, "{backend:?}");
        let session = db.store.session(f.account.id, run.session_id).await.expect("session");
        assert_eq!(
            (session.status, session.kind, session.user_id),
            (SessionStatus::Active, SessionKind::Chat, f.supervisor.id)
        );
        assert_eq!(session.scenario_id, Some(s.id));
        // Lists leave it out, whoever asks and whatever the list.
        for list_type in SessionListType::ALL {
            let filter = SessionFilter { list_type: *list_type, ..Default::default() };
            let listed = db.store.list_sessions(f.account.id, &filter).await.expect("list");
            assert!(listed.iter().all(|x| x.id != run.session_id), "{backend:?}: {list_type:?} lists a test run");
        }
        // The worker side: running, then done; a finished run stays finished.
        db.store.start_test_run(f.account.id, run.id).await.expect("start");
        assert_eq!(db.store.test_run(f.account.id, run.id).await.expect("run").status, TestRunStatus::Running);
        db.store.finish_test_run(f.account.id, run.id, None).await.expect("finish");
        db.store.finish_test_run(f.account.id, run.id, Some("late failure")).await.expect("finish again");
        let done = db.store.test_run(f.account.id, run.id).await.expect("run");
        assert_eq!((done.status, done.error), (TestRunStatus::Done, None), "{backend:?}");
        assert!(done.finished_at.is_some() && done.started_at.is_some());
        // Tenancy and bounds.
        let other = db.store.create_account(&format!("Other {}", Uuid::now_v7())).await.expect("account");
        assert!(matches!(
            db.store.create_test_run(other.id, s.id, &run_of(&f, TestRunKind::Poor)).await,
            Err(Error::NotFound(_))
        ));
        assert!(matches!(db.store.test_runs(other.id, s.id).await, Err(Error::NotFound(_))));
        let too_long = NewTestRun { max_turns: MAX_TEST_RUN_TURNS + 1, ..run_of(&f, TestRunKind::Thorough) };
        assert!(matches!(db.store.create_test_run(f.account.id, s.id, &too_long).await, Err(Error::Invalid(_))));
        assert_eq!(
            db.store.test_runs(f.account.id, s.id).await.expect("list").len(),
            1,
            "{backend:?}: nothing half-written"
        );
    }
}

#[tokio::test]
async fn a_graded_run_raises_no_email_event_or_analysis_and_stays_out_of_the_queue_and_progress() {
    for (backend, db) in testing::all().await {
        let f = fixture(&db).await;
        let s = scenario(&db, &f, "Graded", false).await;
        let run = db.store.create_test_run(f.account.id, s.id, &run_of(&f, TestRunKind::Poor)).await.expect("run");
        let turns = [
            NewTurn { speaker: Speaker::Caller, text: "hi".into(), started_ms: 0, ended_ms: None, segment_id: None },
            NewTurn {
                speaker: Speaker::Counselor,
                text: "cheer up".into(),
                started_ms: 1,
                ended_ms: None,
                segment_id: None,
            },
        ];
        db.store.append_turns(f.account.id, run.session_id, &turns).await.expect("turns");
        let (_, flag_ids) =
            db.store.finish_evaluation(f.account.id, &evaluation(run.session_id, vec![flag()])).await.expect("graded");
        assert_eq!(flag_ids.len(), 1);
        // The flag is on the session, for the run's view, but not in the supervisors' queue.
        assert_eq!(
            db.store
                .session_flags(&db.store.session_in(f.account.id, run.session_id).await.expect("handle"))
                .await
                .expect("flags")
                .len(),
            1
        );
        let queue = db.store.list_flags(f.account.id, &FlagFilter::default()).await.expect("queue");
        assert!(queue.is_empty(), "{backend:?}: {queue:?}");
        let mailed =
            db.store.job_state(run.session_id, JobKind::NotifyFlag, Some(flag_ids[0].as_uuid())).await.expect("job");
        assert_eq!(mailed, None, "{backend:?}: a test run's flag is mailed");
        let analysed = db.store.job_state(run.session_id, JobKind::AnalyzeSession, None).await.expect("job");
        assert_eq!(analysed, None, "{backend:?}: a test run is analysed");
        // A counselor's session of the same scenario, graded the same way, is all of those.
        let practice = db
            .store
            .create_session(
                f.account.id,
                &NewSession {
                    user_id: f.counselor.id,
                    assignment_id: None,
                    scenario_id: Some(s.id),
                    kind: SessionKind::Chat,
                    room_name: None,
                },
            )
            .await
            .expect("session");
        db.store.append_turns(f.account.id, practice.id, &turns).await.expect("turns");
        let (_, ids) =
            db.store.finish_evaluation(f.account.id, &evaluation(practice.id, vec![flag()])).await.expect("graded");
        assert!(
            db.store.job_state(practice.id, JobKind::NotifyFlag, Some(ids[0].as_uuid())).await.expect("job").is_some()
        );
        assert!(db.store.job_state(practice.id, JobKind::AnalyzeSession, None).await.expect("job").is_some());
        assert_eq!(db.store.list_flags(f.account.id, &FlagFilter::default()).await.expect("queue").len(), 1);
        // Progress: the account's and the supervisor's own count the counselor's session only.
        let all = db.store.progress(f.account.id, &ProgressQuery::default()).await.expect("progress");
        assert_eq!(all.scores.iter().map(|p| p.session_id).collect::<Vec<_>>(), vec![practice.id], "{backend:?}");
        assert_eq!((all.activity.sessions_started, all.flags.raised), (1, 1), "{backend:?}");
        let own = ProgressQuery { counselor_id: Some(f.supervisor.id), ..Default::default() };
        let own = db.store.progress(f.account.id, &own).await.expect("progress");
        assert!(own.scores.is_empty() && own.activity.sessions_started == 0, "{backend:?}");
    }
}

#[tokio::test]
async fn rerun_all_covers_profiled_scenarios_and_refuses_while_unfinished() {
    for (backend, db) in testing::all().await {
        let f = fixture(&db).await;
        let profiled = scenario(&db, &f, "Profiled", true).await;
        let plain = scenario(&db, &f, "Plain", false).await;
        let queued = db.store.rerun_all_test_runs(f.account.id, f.supervisor.id, 6).await.expect("rerun");
        assert_eq!(queued, 2, "{backend:?}: both kinds of the one profiled scenario");
        let runs = db.store.test_runs(f.account.id, profiled.id).await.expect("runs");
        let mut kinds: Vec<_> = runs.iter().map(|r| (r.kind, r.rerun, r.max_turns)).collect();
        kinds.sort_by_key(|k| k.0.as_str());
        assert_eq!(kinds, vec![(TestRunKind::Poor, true, 6), (TestRunKind::Thorough, true, 6)]);
        assert!(db.store.test_runs(f.account.id, plain.id).await.expect("runs").is_empty());
        // Unfinished: refused, and nothing more is queued.
        let again = db.store.rerun_all_test_runs(f.account.id, f.supervisor.id, 6).await;
        assert!(matches!(again, Err(Error::Conflict { .. })), "{backend:?}: {again:?}");
        // A single run does not block a re-run, nor the re-run a single run.
        db.store.create_test_run(f.account.id, plain.id, &run_of(&f, TestRunKind::Poor)).await.expect("single run");
        db.store.finish_test_run(f.account.id, runs[0].id, None).await.expect("done");
        assert!(db.store.rerun_all_test_runs(f.account.id, f.supervisor.id, 6).await.is_err(), "one still unfinished");
        db.store.finish_test_run(f.account.id, runs[1].id, Some("the AI provider failed")).await.expect("failed");
        assert_eq!(
            db.store.rerun_all_test_runs(f.account.id, f.supervisor.id, 6).await.expect("rerun"),
            2,
            "{backend:?}"
        );
        assert_eq!(db.store.test_runs(f.account.id, profiled.id).await.expect("runs").len(), 4);
    }
}

#[tokio::test]
async fn racing_reruns_queue_once() {
    for (backend, db) in testing::all().await {
        let f = fixture(&db).await;
        scenario(&db, &f, "Raced", true).await;
        let attempts: Vec<_> = (0..4)
            .map(|_| {
                let (store, account, user) = (db.store.clone(), f.account.id, f.supervisor.id);
                tokio::spawn(async move { store.rerun_all_test_runs(account, user, 4).await })
            })
            .collect();
        let mut results = Vec::new();
        for a in attempts {
            results.push(a.await.expect("task"));
        }
        let ok: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        let conflicts = results.iter().filter(|r| matches!(r, Err(Error::Conflict { .. }))).count();
        assert_eq!((ok, conflicts), (vec![&2], 3), "{backend:?}: {results:?}");
    }
}

#[tokio::test]
async fn deleting_a_scenario_takes_its_test_runs_along() {
    for (backend, db) in testing::all().await {
        let f = fixture(&db).await;
        let s = scenario(&db, &f, "Tried out", false).await;
        let run = db.store.create_test_run(f.account.id, s.id, &run_of(&f, TestRunKind::Thorough)).await.expect("run");
        db.store
            .delete_scenario(f.account.id, s.id, &store::Audit::new(None, None, "test"))
            .await
            .unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        assert!(matches!(db.store.session(f.account.id, run.session_id).await, Err(Error::NotFound(_))));
        assert!(matches!(db.store.test_run(f.account.id, run.id).await, Err(Error::NotFound(_))));
        // A counselor's practice still protects a scenario.
        let kept = scenario(&db, &f, "Practised", false).await;
        db.store.create_test_run(f.account.id, kept.id, &run_of(&f, TestRunKind::Poor)).await.expect("run");
        let practice = NewSession {
            user_id: f.counselor.id,
            assignment_id: None,
            scenario_id: Some(kept.id),
            kind: SessionKind::Chat,
            room_name: None,
        };
        db.store.create_session(f.account.id, &practice).await.expect("session");
        assert!(matches!(
            db.store.delete_scenario(f.account.id, kept.id, &store::Audit::new(None, None, "test")).await,
            Err(Error::Conflict { .. })
        ));
        assert_eq!(db.store.test_runs(f.account.id, kept.id).await.expect("runs").len(), 1, "{backend:?}: rolled back");
    }
}

fn truth(filed: Option<RiskLevel>, result: Determination, outcomes: &[FactOutcome], taken: bool) -> TruthAssessment {
    let fact = |(i, outcome): (usize, &FactOutcome)| FactAssessment {
        key: format!("f{i}"),
        kind: RiskFactKind::Plan,
        text: "A plan.".into(),
        rule: DisclosureRule::WhenAsked,
        outcome: *outcome,
        asked_turns: vec![],
        disclosed_turns: vec![],
        denied_turns: vec![],
    };
    let mut facts: Vec<FactAssessment> = outcomes.iter().enumerate().map(fact).collect();
    // A volunteered fact is heard, never elicited: it is not a hidden fact.
    facts.push(FactAssessment {
        rule: DisclosureRule::Volunteered,
        outcome: FactOutcome::Volunteered,
        ..fact((9, &FactOutcome::Volunteered))
    });
    TruthAssessment {
        facts,
        determination: DeterminationResult { expected: RiskLevel::High, filed, result, held_harmless: None },
        actions: vec![ActionAssessment {
            action: RequiredAction::SafetyPlan,
            answer: if taken { CheckAnswer::Yes } else { CheckAnswer::No },
            turns: vec![],
            in_call_record: taken,
            note: String::new(),
        }],
        deviations: vec![],
        held_harmless: vec![],
    }
}

fn rated(session_id: SessionId, rating: u8) -> NewEvaluation {
    NewEvaluation {
        criteria: vec![CriterionScore {
            key: "rapport".into(),
            name: "Rapport".into(),
            rating: Some(rating),
            comment: "ok".into(),
            checks: vec![],
            not_assessed: false,
            rating_overridden: false,
            ai_rating: None,
        }],
        ..evaluation(session_id, vec![])
    }
}

#[tokio::test]
async fn progress_counts_determinations_hidden_facts_and_actions_per_counselor_and_a_heat_map() {
    for (backend, db) in testing::all().await {
        let f = fixture(&db).await;
        let robin = &f.other_counselor;
        let s = scenario(&db, &f, "Measured", true).await;
        let graded = async |user: UserId, rating: u8, t: TruthAssessment| {
            let new = NewSession {
                user_id: user,
                assignment_id: None,
                scenario_id: Some(s.id),
                kind: SessionKind::Chat,
                room_name: None,
            };
            let session = db.store.create_session(f.account.id, &new).await.expect("session");
            let turn = NewTurn {
                speaker: Speaker::Counselor,
                text: "hi".into(),
                started_ms: 0,
                ended_ms: None,
                segment_id: None,
            };
            db.store.append_turns(f.account.id, session.id, &[turn]).await.expect("turn");
            let record = TruthRecord { truth: Some(t), scenario_id: Some(s.id), suggestions: vec![], grader: None };
            db.store.finish_evaluation_with(f.account.id, &rated(session.id, rating), &record).await.expect("graded");
        };
        use FactOutcome::*;
        graded(f.counselor.id, 4, truth(Some(RiskLevel::High), Determination::Correct, &[Elicited, Elicited], true))
            .await;
        graded(
            f.counselor.id,
            2,
            truth(Some(RiskLevel::Low), Determination::UnderEstimate, &[Missed, WithheldByCaller], false),
        )
        .await;
        graded(robin.id, 3, truth(Some(RiskLevel::Imminent), Determination::OverEstimate, &[Elicited, Missed], true))
            .await;
        // A test run graded the same way counts for nobody.
        let run = db.store.create_test_run(f.account.id, s.id, &run_of(&f, TestRunKind::Thorough)).await.expect("run");
        let turn =
            NewTurn { speaker: Speaker::Counselor, text: "hi".into(), started_ms: 0, ended_ms: None, segment_id: None };
        db.store.append_turns(f.account.id, run.session_id, &[turn]).await.expect("turn");
        let record = TruthRecord {
            truth: Some(truth(None, Determination::NotFiled, &[Missed], false)),
            scenario_id: Some(s.id),
            suggestions: vec![],
            grader: None,
        };
        db.store.finish_evaluation_with(f.account.id, &rated(run.session_id, 1), &record).await.expect("graded");

        let all = db.store.progress(f.account.id, &ProgressQuery::default()).await.expect("progress");
        let casey = all.truth.iter().find(|w| w.counselor_id == f.counselor.id).expect("casey's week");
        assert_eq!(all.truth.len(), 2, "{backend:?}: one week per counselor: {:?}", all.truth);
        assert_eq!(
            (casey.sessions, casey.correct, casey.under, casey.over, casey.not_filed),
            (2, 1, 1, 0, 0),
            "{backend:?}"
        );
        assert_eq!(
            (casey.hidden_facts, casey.elicited),
            (3, 2),
            "{backend:?}: withheld by the caller and volunteered left out"
        );
        assert_eq!((casey.required_actions, casey.actions_taken), (2, 1), "{backend:?}");
        let r = all.truth.iter().find(|w| w.counselor_id == robin.id).expect("robin's week");
        assert_eq!((r.sessions, r.over, r.hidden_facts, r.elicited, r.actions_taken), (1, 1, 2, 1, 1), "{backend:?}");
        // The heat map: each counselor's average per criterion.
        let cell = |u: UserId| {
            all.counselor_criteria
                .iter()
                .find(|c| c.counselor_id == u && c.key == "rapport")
                .map(|c| (c.average_rating, c.ratings))
        };
        assert_eq!(cell(f.counselor.id), Some((3.0, 2)), "{backend:?}: {:?}", all.counselor_criteria);
        assert_eq!(cell(robin.id), Some((3.0, 1)));
        assert_eq!(cell(f.supervisor.id), None, "{backend:?}: the test run is nobody's");
        // One counselor's own.
        let own = ProgressQuery { counselor_id: Some(robin.id), ..Default::default() };
        let own = db.store.progress(f.account.id, &own).await.expect("progress");
        assert_eq!(own.truth.len(), 1);
        assert_eq!(own.truth[0].counselor_id, robin.id);
    }
}
