//! The shared store suite: every test runs against each available backend (SQLite always,
//! PostgreSQL when `TEST_POSTGRES_URL` is set, which `cargo xtask ci` does).

use store::testing::{self, Fixture, TestDb, fixture};
use store::*;
use uuid::Uuid;

fn scenario_input(title: &str) -> ScenarioInput {
    serde_json::from_value(serde_json::json!({
        "title": title, "prompt": "You are a caller.", "mode": "phone", "category": "onboarding",
    }))
    .expect("valid input")
}

async fn scenario(db: &TestDb, f: &Fixture, title: &str) -> Scenario {
    db.store.create_scenario(f.account.id, Some(f.supervisor.id), &scenario_input(title)).await.expect("scenario").0
}

fn assign(scenario: &Scenario, counselor: &User) -> NewAssignment {
    NewAssignment { scenario_id: scenario.id, counselor_id: counselor.id, due_at: None, notes: None }
}

fn is_conflict<T: std::fmt::Debug>(r: &Result<T>) -> bool {
    matches!(r, Err(Error::Conflict { .. }))
}

#[tokio::test]
async fn duplicate_active_assignment_is_rejected_until_completed() {
    for (backend, db) in testing::all().await {
        let f = fixture(&db).await;
        let s = scenario(&db, &f, "Dup").await;
        let first = db.store.create_assignment(f.account.id, None, &assign(&s, &f.counselor)).await.expect("first");
        let again = db.store.create_assignment(f.account.id, None, &assign(&s, &f.counselor)).await;
        match &again {
            Err(Error::Conflict { existing_id, .. }) => {
                assert_eq!(existing_id.as_deref(), Some(first.id.to_string().as_str()))
            }
            other => panic!("{backend:?}: expected conflict, got {other:?}"),
        }
        // The schema itself refuses it, not only the code path above.
        let raw = sqlx_insert_assignment(&db, &f, &s).await;
        assert!(raw.is_err(), "{backend:?}: partial unique index must reject a second active row");

        // After completion a new one may be made, for more practice.
        db.store
            .create_session(
                f.account.id,
                &NewSession {
                    user_id: f.counselor.id,
                    assignment_id: Some(first.id),
                    scenario_id: None,
                    kind: SessionKind::Chat,
                    room_name: None,
                },
            )
            .await
            .expect("session");
        let done = db.store.complete_assignment(f.account.id, first.id).await.expect("complete");
        assert_eq!(done.status, AssignmentStatus::Completed);
        db.store.create_assignment(f.account.id, None, &assign(&s, &f.counselor)).await.expect("after completion");
    }
}

/// Inserts an active assignment bypassing the store's checks.
async fn sqlx_insert_assignment(db: &TestDb, f: &Fixture, s: &Scenario) -> std::result::Result<(), String> {
    let url = db.url.clone();
    let store = Store::connect(&url).await.map_err(|e| e.to_string())?;
    store
        .raw_execute(&format!(
            "INSERT INTO assignments (id, account_id, scenario_id, counselor_id, status, notes, created_at, updated_at) \
             VALUES ('{}', '{}', '{}', '{}', 'pending', '', 0, 0)",
            Uuid::now_v7(), f.account.id, s.id, f.counselor.id
        ))
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn one_evaluation_per_session_even_when_racing() {
    for (backend, db) in testing::all().await {
        let f = fixture(&db).await;
        let session = db
            .store
            .create_session(
                f.account.id,
                &NewSession {
                    user_id: f.counselor.id,
                    assignment_id: None,
                    scenario_id: None,
                    kind: SessionKind::Chat,
                    room_name: None,
                },
            )
            .await
            .expect("session");
        let eval = |score| NewEvaluation {
            session_id: session.id,
            overall_score: Some(score),
            score_band: Some(store::ScoreBand::of(score.min(100.0))),
            score_basis: Default::default(),
            rubric_version: 2,
            facts: Vec::new(),
            gate_table: None,
            criteria: vec![CriterionScore {
                key: "rapport".into(),
                name: "Rapport".into(),
                rating: Some(3),
                comment: "ok".into(),
                checks: vec![],
                not_assessed: false,
                rating_overridden: false,
                ai_rating: None,
            }],
            flags: vec![],
            strengths: vec!["warm".into()],
            areas_to_improve: vec![],
            model: "test".into(),
            raw_output: "{}".into(),
            integrity: Default::default(),
        };
        let attempts = (0..6).map(|i| {
            let store = db.store.clone();
            let e = eval(50.0 + i as f64);
            tokio::spawn(async move { store.insert_evaluation(&e).await })
        });
        let results: Vec<_> = futures_join(attempts).await;
        let ok = results.iter().filter(|r| r.is_ok()).count();
        let conflicts = results.iter().filter(|r| is_conflict(r)).count();
        assert_eq!((ok, conflicts), (1, 5), "{backend:?}: {results:?}");
        let stored = db
            .store
            .ai_evaluation_raw(&db.store.session_in(f.account.id, session.id).await.expect("session"))
            .await
            .expect("read")
            .expect("stored");
        assert_eq!(stored.criteria[0].rating, Some(3));
        assert!(db.store.insert_evaluation(&eval(10.0)).await.is_err());
        assert!(matches!(db.store.insert_evaluation(&eval(101.0)).await, Err(Error::Invalid(_))));
    }
}

async fn futures_join<T>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles.collect::<Vec<_>>() {
        out.push(h.await.expect("task"));
    }
    out
}

#[tokio::test]
async fn scenario_with_assignments_cannot_be_deleted_and_mode_is_locked() {
    for (backend, db) in testing::all().await {
        let f = fixture(&db).await;
        let free = scenario(&db, &f, "Free to delete").await;
        db.store
            .delete_scenario(f.account.id, free.id, &Audit::new(None, None, "test"))
            .await
            .expect("delete unassigned");
        assert!(matches!(db.store.scenario(f.account.id, free.id).await, Err(Error::NotFound(_))));

        let s = scenario(&db, &f, "Assigned").await;
        db.store.create_assignment(f.account.id, None, &assign(&s, &f.counselor)).await.expect("assign");
        assert!(
            is_conflict(&db.store.delete_scenario(f.account.id, s.id, &Audit::new(None, None, "test")).await),
            "{backend:?}"
        );
        assert_eq!(db.store.scenario(f.account.id, s.id).await.expect("still there").assignment_count, 1);

        let mut input = scenario_input("Assigned");
        input.mode = ScenarioMode::Chat;
        assert!(is_conflict(&db.store.update_scenario(f.account.id, s.id, &input).await));
        input.mode = ScenarioMode::Phone;
        input.description = Some("edited".into());
        let edited = db.store.update_scenario(f.account.id, s.id, &input).await.expect("same mode edits");
        assert_eq!(edited.description, "edited");
    }
}

#[tokio::test]
async fn one_time_scenario_and_its_assignment_are_made_together() {
    for (backend, db) in testing::all().await {
        let f = fixture(&db).await;
        let mut input = scenario_input("For Casey only");
        input.is_one_time = Some(true);
        input.assign_to =
            Some(OneTimeAssignment { counselor_id: f.counselor.id, due_at: None, notes: Some("hi".into()) });
        let (s, a) = db.store.create_scenario(f.account.id, Some(f.supervisor.id), &input).await.expect("create");
        assert!(s.is_one_time);
        assert_eq!(a.map(|a| a.counselor_id), Some(f.counselor.id));

        // Hidden from the default list, shown with kind=one_time.
        let listed = db.store.list_scenarios(f.account.id, &ScenarioFilter::default()).await.expect("list");
        assert!(listed.iter().all(|x| x.id != s.id), "{backend:?}");
        let filter = ScenarioFilter { kind: ScenarioListKind::OneTime, ..Default::default() };
        assert!(db.store.list_scenarios(f.account.id, &filter).await.expect("list").iter().any(|x| x.id == s.id));

        // A one-time scenario serves a single assignment.
        assert!(is_conflict(&db.store.create_assignment(f.account.id, None, &assign(&s, &f.other_counselor)).await));

        // A failing assignment rolls the scenario back: no half-made pair.
        let mut bad = scenario_input("Orphan?");
        bad.is_one_time = Some(true);
        bad.assign_to = Some(OneTimeAssignment { counselor_id: f.supervisor.id, due_at: None, notes: None });
        assert!(db.store.create_scenario(f.account.id, None, &bad).await.is_err());
        let all = ScenarioFilter { kind: ScenarioListKind::All, ..Default::default() };
        assert!(db.store.list_scenarios(f.account.id, &all).await.expect("list").iter().all(|x| x.title != "Orphan?"));

        // Promotion makes it reusable.
        let promoted = db
            .store
            .promote_scenario(f.account.id, s.id, &store::Audit::new(None, None, "test"))
            .await
            .expect("promote");
        assert!(!promoted.is_one_time);
        assert!(is_conflict(
            &db.store.promote_scenario(f.account.id, s.id, &store::Audit::new(None, None, "test")).await
        ));
    }
}

#[tokio::test]
async fn reusable_titles_are_unique_case_insensitively() {
    for (backend, db) in testing::all().await {
        let f = fixture(&db).await;
        scenario(&db, &f, "Grief call").await;
        let dup = db.store.create_scenario(f.account.id, None, &scenario_input("GRIEF CALL")).await;
        assert!(is_conflict(&dup), "{backend:?}: {dup:?}");
    }
}

#[tokio::test]
async fn import_reports_every_row() {
    for (backend, db) in testing::all().await {
        let f = fixture(&db).await;
        let existing = scenario(&db, &f, "Existing").await;
        let mut bad_category = scenario_input("Bad category");
        bad_category.category = "sales".into();
        let rows = vec![
            (1, Ok(scenario_input("New one"))),
            (2, Ok(scenario_input("existing"))),
            (3, Ok(scenario_input("NEW ONE"))),
            (4, Ok(bad_category)),
            (5, Err(vec![FieldError::new("mode", "bad")])),
        ];
        let report = db.store.import_scenarios(f.account.id, None, rows).await.expect("import");
        assert_eq!(report.created.iter().map(|r| r.row).collect::<Vec<_>>(), vec![1], "{backend:?}");
        assert_eq!(report.skipped.iter().map(|r| r.row).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(report.skipped[0].existing_id, Some(existing.id));
        assert_eq!(report.failed.iter().map(|r| r.row).collect::<Vec<_>>(), vec![4, 5]);
        assert!(report.failed[0].errors[0].message.contains("allowed: onboarding"));

        let too_many = (1..=101).map(|i| (i, Ok(scenario_input(&format!("S{i}"))))).collect();
        assert!(matches!(db.store.import_scenarios(f.account.id, None, too_many).await, Err(Error::Invalid(_))));
    }
}

#[tokio::test]
async fn bulk_assignment_reports_partial_success() {
    for (backend, db) in testing::all().await {
        let f = fixture(&db).await;
        let a = scenario(&db, &f, "A").await;
        let b = scenario(&db, &f, "B").await;
        db.store.create_assignment(f.account.id, None, &assign(&a, &f.counselor)).await.expect("pre-existing");
        let report = db
            .store
            .bulk_assign(
                f.account.id,
                Some(f.supervisor.id),
                &[a.id, b.id],
                &[f.counselor.id, f.other_counselor.id, f.supervisor.id, store::UserId::new()],
                None,
                Some("go"),
            )
            .await
            .expect("bulk");
        assert_eq!(report.created.len(), 3, "{backend:?}: {report:?}");
        assert_eq!(report.skipped.len(), 1);
        assert_eq!(report.skipped[0].counselor_id, f.counselor.id);
        assert!(report.skipped[0].existing_assignment_id.is_some());
        assert_eq!(report.blocked.len(), 4);
        assert!(report.blocked.iter().any(|p| p.reason == "user is not a counselor"));
        assert!(report.blocked.iter().any(|p| p.reason == "counselor not found"));

        let many: Vec<store::UserId> = (0..251).map(|_| store::UserId::new()).collect();
        assert!(matches!(
            db.store.bulk_assign(f.account.id, None, &[a.id, b.id], &many, None, None).await,
            Err(Error::Invalid(_))
        ));
    }
}

#[tokio::test]
async fn assignment_state_machine_and_attempts() {
    for (backend, db) in testing::all().await {
        let f = fixture(&db).await;
        let s = scenario(&db, &f, "States").await;
        let a = db.store.create_assignment(f.account.id, None, &assign(&s, &f.counselor)).await.expect("assign");
        assert_eq!(a.status, AssignmentStatus::Pending);
        let to = |status| AssignmentPatch { status: Some(status), ..Default::default() };
        assert!(is_conflict(
            &db.store.patch_assignment(f.account.id, a.id, &to(AssignmentStatus::Completed), None).await
        ));
        assert!(is_conflict(&db.store.complete_assignment(f.account.id, a.id).await));

        // Starting a session starts the assignment and numbers attempts.
        let start = NewSession {
            user_id: f.counselor.id,
            assignment_id: Some(a.id),
            scenario_id: None,
            // Chat: two live voice sessions of one counselor cannot exist (0005).
            kind: SessionKind::Chat,
            room_name: None,
        };
        let first = db.store.create_session(f.account.id, &start).await.expect("attempt 1");
        let second = db.store.create_session(f.account.id, &start).await.expect("attempt 2");
        assert_eq!((first.attempt_number, second.attempt_number), (Some(1), Some(2)), "{backend:?}");
        assert_eq!(first.scenario_id, Some(s.id));
        let a = db.store.assignment(f.account.id, a.id).await.expect("read");
        assert_eq!((a.status, a.attempts), (AssignmentStatus::InProgress, 2));
        assert!(a.started_at.is_some());

        // Another counselor cannot practise it; a supervisor may reset it.
        let theirs = NewSession { user_id: f.other_counselor.id, ..start.clone() };
        assert!(matches!(db.store.create_session(f.account.id, &theirs).await, Err(Error::NotFound(_))));
        let reset =
            db.store.patch_assignment(f.account.id, a.id, &to(AssignmentStatus::Pending), None).await.expect("reset");
        assert_eq!(reset.status, AssignmentStatus::Pending);

        // Sessions keep their assignment: it cannot be deleted.
        assert!(is_conflict(&db.store.delete_assignment(f.account.id, a.id).await));
        db.store.patch_assignment(f.account.id, a.id, &to(AssignmentStatus::InProgress), None).await.expect("restart");
        let done = db.store.complete_assignment(f.account.id, a.id).await.expect("complete");
        assert!(done.completed_at.is_some());
        assert!(is_conflict(&db.store.create_session(f.account.id, &start).await));

        let patch = AssignmentPatch {
            notes: Some(" read the policy ".into()),
            due_at: Some(Some(Timestamp::from_millis(1_800_000_000_000))),
            ..Default::default()
        };
        let noted = db.store.patch_assignment(f.account.id, done.id, &patch, None).await.expect("notes");
        assert_eq!(noted.notes, "read the policy");
        assert_eq!(noted.due_at, Some(Timestamp::from_millis(1_800_000_000_000)));
    }
}

#[tokio::test]
async fn transcripts_keep_spoken_order_and_ignore_resent_segments() {
    for (backend, db) in testing::all().await {
        let f = fixture(&db).await;
        let session = db
            .store
            .create_session(
                f.account.id,
                &NewSession {
                    user_id: f.counselor.id,
                    assignment_id: None,
                    scenario_id: None,
                    kind: SessionKind::Voice,
                    room_name: Some(format!("room-{}", Uuid::now_v7())),
                },
            )
            .await
            .expect("session");
        let turn = |speaker, text: &str, at, seg: &str| NewTurn {
            speaker,
            text: text.into(),
            started_ms: at,
            ended_ms: Some(at + 100),
            segment_id: Some(seg.into()),
        };
        // The caller's reply arrives before the counselor's (late) transcription.
        let added = db
            .store
            .append_turns(f.account.id, session.id, &[turn(Speaker::Caller, "reply", 2_000, "c1")])
            .await
            .expect("append");
        assert_eq!(added, 1);
        let batch = [turn(Speaker::Counselor, "question", 1_000, "u1"), turn(Speaker::Caller, "reply", 2_000, "c1")];
        assert_eq!(db.store.append_turns(f.account.id, session.id, &batch).await.expect("append"), 1, "{backend:?}");
        let texts: Vec<_> = db
            .store
            .transcript(&db.store.session_in(f.account.id, session.id).await.expect("session"))
            .await
            .expect("read")
            .into_iter()
            .map(|t| t.text)
            .collect();
        assert_eq!(texts, vec!["question", "reply"]);
        let bad = [NewTurn {
            speaker: Speaker::Caller,
            text: "x".into(),
            started_ms: 5,
            ended_ms: Some(1),
            segment_id: None,
        }];
        assert!(matches!(db.store.append_turns(f.account.id, session.id, &bad).await, Err(Error::Invalid(_))));
        let ended = db.store.end_session(f.account.id, session.id, SessionStatus::Completed).await.expect("end");
        assert!(ended.ended_at.is_some());
    }
}

#[tokio::test]
async fn other_accounts_records_are_not_found() {
    for (_backend, db) in testing::all().await {
        let mine = fixture(&db).await;
        let theirs = fixture(&db).await;
        let s = scenario(&db, &mine, "Private").await;
        let a = db.store.create_assignment(mine.account.id, None, &assign(&s, &mine.counselor)).await.expect("assign");
        let other = theirs.account.id;
        assert!(matches!(db.store.scenario(other, s.id).await, Err(Error::NotFound(_))));
        assert!(matches!(db.store.assignment(other, a.id).await, Err(Error::NotFound(_))));
        assert!(matches!(
            db.store.delete_scenario(other, s.id, &Audit::new(None, None, "test")).await,
            Err(Error::NotFound(_))
        ));
        assert!(matches!(db.store.user(other, mine.counselor.id).await, Err(Error::NotFound(_))));
        // Cross-account assignment is refused: their counselor is unknown here.
        let cross = NewAssignment { scenario_id: s.id, counselor_id: theirs.counselor.id, due_at: None, notes: None };
        assert!(matches!(db.store.create_assignment(mine.account.id, None, &cross).await, Err(Error::Invalid(_))));
    }
}

#[tokio::test]
async fn users_type_ahead_and_uniqueness() {
    for (backend, db) in testing::all().await {
        let f = fixture(&db).await;
        let filter = UserFilter { role: Some(Role::Counselor), q: Some("ROB".into()), ..Default::default() };
        let found = db.store.list_users(f.account.id, &filter).await.expect("search");
        assert_eq!(found.iter().map(|u| u.id).collect::<Vec<_>>(), vec![f.other_counselor.id], "{backend:?}");
        let wildcard = UserFilter { q: Some("%".into()), ..Default::default() };
        assert!(db.store.list_users(f.account.id, &wildcard).await.expect("search").is_empty());

        let dup = NewUser {
            email: f.counselor.email.to_uppercase(),
            display_name: "Again".into(),
            role: Role::Counselor,
            external_id: None,
            is_demo: false,
        };
        assert!(is_conflict(&db.store.create_user(f.account.id, dup).await));
        let ext = |email: &str| NewUser {
            email: email.into(),
            display_name: "Ext".into(),
            role: Role::Counselor,
            external_id: Some("p-1".into()),
            is_demo: false,
        };
        db.store
            .create_user(f.account.id, ext(&format!("e1-{}@x.org", Uuid::now_v7().simple())))
            .await
            .expect("external id");
        assert!(is_conflict(
            &db.store.create_user(f.account.id, ext(&format!("e2-{}@x.org", Uuid::now_v7().simple()))).await
        ));
        let found = db.store.user_by_external_id(f.account.id, "p-1").await.expect("lookup");
        assert!(found.is_some());
        let bad = NewUser {
            email: "not-an-email".into(),
            display_name: " ".into(),
            role: Role::Counselor,
            external_id: None,
            is_demo: false,
        };
        match db.store.create_user(f.account.id, bad).await {
            Err(Error::Invalid(fields)) => assert_eq!(fields.len(), 2),
            other => panic!("expected invalid, got {other:?}"),
        }
        let off = db.store.set_user_active(f.account.id, f.other_counselor.id, false).await.expect("deactivate");
        assert!(!off.active);
    }
}

#[tokio::test]
async fn categories_are_per_account_and_enforced_by_the_schema() {
    for (backend, db) in testing::all().await {
        let f = fixture(&db).await;
        assert_eq!(db.store.categories(f.account.id).await.expect("list"), DEFAULT_CATEGORIES);
        // Capitals kept as typed; a duplicate ignoring them is a conflict.
        assert_eq!(db.store.add_category(f.account.id, "Sales").await.expect("add"), "Sales");
        assert!(is_conflict(&db.store.add_category(f.account.id, "sales").await), "{backend:?}");
        let mut input = scenario_input("Upsell");
        input.category = "SALES".into();
        assert_eq!(db.store.create_scenario(f.account.id, None, &input).await.expect("create").0.category, "Sales");
        // The schema holds the rule too (the index on lower(name)), whatever the code does.
        let dup = db
            .store
            .raw_execute(&format!(
                "INSERT INTO account_categories (account_id, name, position, created_at) VALUES ('{}', 'sALES', 99, 0)",
                f.account.id
            ))
            .await;
        assert!(dup.is_err(), "{backend:?}: a duplicate ignoring case");
        // The foreign key refuses a category the account does not have, whatever the code does.
        let raw = db
            .store
            .raw_execute(&format!(
                "INSERT INTO scenarios (id, account_id, title, prompt, mode, category, created_at, updated_at) \
                 VALUES ('{}', '{}', 't', 'p', 'phone', 'nonsense', 0, 0)",
                Uuid::now_v7(),
                f.account.id
            ))
            .await;
        assert!(raw.is_err(), "{backend:?}");
    }
}

/// Every value of every enum is accepted by the schema's CHECK constraints, and a value outside
/// the enum is refused: the Rust enums and the migrations cannot drift apart.
#[tokio::test]
async fn schema_checks_match_the_enums() {
    for (backend, db) in testing::all().await {
        let f = fixture(&db).await;
        let s = scenario(&db, &f, "Enums").await;
        let session = db
            .store
            .create_session(
                f.account.id,
                &NewSession {
                    user_id: f.counselor.id,
                    assignment_id: None,
                    scenario_id: None,
                    kind: SessionKind::Chat,
                    room_name: None,
                },
            )
            .await
            .expect("session");
        db.store
            .raw_execute(&format!(
                "INSERT INTO session_flags (id, account_id, session_id, flag_type, severity, source, details, created_at, updated_at) \
                 VALUES ('f1', '{}', '{}', 'other', 'low', 'analysis', 'd', 0, 0)",
                f.account.id, session.id
            ))
            .await
            .expect("flag row");
        db.store
            .raw_execute(&format!(
                "INSERT INTO transcript_turns (id, session_id, speaker, text, started_ms, created_at) VALUES ('t1', '{}', 'caller', 'x', 0, 0)",
                session.id
            ))
            .await
            .expect("turn row");
        db.store
            .raw_execute(&format!(
                "INSERT INTO llm_calls (id, account_id, session_id, task, model, latency_ms, attempts, outcome, created_at) \
                 VALUES ('c1', '{}', '{}', 'chat', 'm', 0, 1, 'ok', 0)",
                f.account.id, session.id
            ))
            .await
            .expect("llm call row");
        let (user_id, scenario_id, session_id) = (f.counselor.id.to_string(), s.id.to_string(), session.id.to_string());
        let checks: Vec<(&str, &str, &str, Vec<&str>)> = vec![
            ("users", "role", &user_id, Role::ALL.iter().map(|v| v.as_str()).collect()),
            ("scenarios", "mode", &scenario_id, ScenarioMode::ALL.iter().map(|v| v.as_str()).collect()),
            ("scenarios", "difficulty", &scenario_id, Difficulty::ALL.iter().map(|v| v.as_str()).collect()),
            ("sessions", "kind", &session_id, SessionKind::ALL.iter().map(|v| v.as_str()).collect()),
            ("sessions", "status", &session_id, SessionStatus::ALL.iter().map(|v| v.as_str()).collect()),
            ("transcript_turns", "speaker", "t1", Speaker::ALL.iter().map(|v| v.as_str()).collect()),
            ("session_flags", "flag_type", "f1", FlagType::ALL.iter().map(|v| v.as_str()).collect()),
            ("session_flags", "severity", "f1", FlagSeverity::ALL.iter().map(|v| v.as_str()).collect()),
            ("session_flags", "source", "f1", FlagSource::ALL.iter().map(|v| v.as_str()).collect()),
            ("llm_calls", "task", "c1", LlmTask::ALL.iter().map(|v| v.as_str()).collect()),
        ];
        for (table, column, id, values) in checks {
            for value in values {
                let sql = format!("UPDATE {table} SET {column} = '{value}' WHERE id = '{id}'");
                db.store
                    .raw_execute(&sql)
                    .await
                    .unwrap_or_else(|e| panic!("{backend:?}: {table}.{column} = {value}: {e}"));
            }
            let sql = format!("UPDATE {table} SET {column} = 'bogus' WHERE id = '{id}'");
            assert!(db.store.raw_execute(&sql).await.is_err(), "{backend:?}: {table}.{column} accepted bogus");
        }
        // Statuses that carry timestamps are checked with them.
        for status in AssignmentStatus::ALL {
            let completed_at = if *status == AssignmentStatus::Completed { "1" } else { "NULL" };
            let a = db.store.create_assignment(f.account.id, None, &assign(&s, &f.counselor)).await;
            let id = match a {
                Ok(a) => a.id,
                Err(_) => continue,
            };
            let sql =
                format!("UPDATE assignments SET status = '{status}', completed_at = {completed_at} WHERE id = '{id}'");
            db.store.raw_execute(&sql).await.unwrap_or_else(|e| panic!("{backend:?}: status {status}: {e}"));
        }
        let flag_statuses =
            FlagStatus::ALL.iter().map(|v| (v.as_str(), if *v == FlagStatus::Open { "NULL" } else { "1" }));
        for (status, reviewed_at) in flag_statuses {
            let sql =
                format!("UPDATE session_flags SET status = '{status}', reviewed_at = {reviewed_at} WHERE id = 'f1'");
            db.store.raw_execute(&sql).await.unwrap_or_else(|e| panic!("{backend:?}: flag status {status}: {e}"));
        }
    }
}

#[tokio::test]
async fn a_dead_handlers_idempotency_key_frees_after_its_lease() {
    for (backend, db) in testing::all().await {
        let f = fixture(&db).await;
        let s = &db.store;
        let lease = 300_000;
        assert_eq!(s.begin_idempotent(f.account.id, "k1", "h", lease).await.expect("begin"), IdempotencyState::New);
        assert_eq!(
            s.begin_idempotent(f.account.id, "k1", "h", lease).await.expect("again"),
            IdempotencyState::InFlight
        );
        // The handler died without an answer; its lease runs out.
        s.raw_execute("UPDATE idempotency_keys SET created_at = created_at - 600000").await.expect("age");
        let retry = s.begin_idempotent(f.account.id, "k1", "h", lease).await.expect("retry");
        assert_eq!(retry, IdempotencyState::New, "{backend:?}");
        assert_eq!(
            s.begin_idempotent(f.account.id, "k1", "h", lease).await.expect("again"),
            IdempotencyState::InFlight
        );
        // A different request under the key is still a mismatch, dead handler or not.
        s.raw_execute("UPDATE idempotency_keys SET created_at = created_at - 600000").await.expect("age");
        assert_eq!(
            s.begin_idempotent(f.account.id, "k1", "other", lease).await.expect("x"),
            IdempotencyState::Mismatch
        );
    }
}

#[test]
fn debug_output_hides_secrets() {
    let d = DueDelivery {
        id: Uuid::now_v7(),
        webhook_id: store::WebhookId::new(),
        event: WebhookEvent::FlagRaised,
        payload: "{}".into(),
        attempts: 0,
        url: "https://partner.example.org".into(),
        secret: "whsec_not_for_logs".into(),
    };
    assert!(!format!("{d:?}").contains("whsec_not_for_logs"));
}

#[tokio::test]
async fn reviews_sit_beside_the_evaluation_and_are_audited_in_the_same_transaction() {
    for (backend, db) in testing::all().await {
        let f = fixture(&db).await;
        let s = &db.store;
        let new = NewSession {
            user_id: f.counselor.id,
            assignment_id: None,
            scenario_id: None,
            kind: SessionKind::Chat,
            room_name: None,
        };
        let session = s.create_session(f.account.id, &new).await.expect("session");
        let eval = NewEvaluation {
            session_id: session.id,
            flags: vec![],
            overall_score: None,
            score_band: None,
            score_basis: ScoreBasis { absent_reason: Some("nothing scorable".into()), ..Default::default() },
            rubric_version: 2,
            facts: Vec::new(),
            gate_table: None,
            criteria: vec![],
            strengths: vec![],
            areas_to_improve: vec![],
            model: "test".into(),
            raw_output: "{}".into(),
            integrity: Default::default(),
        };
        // A score without a band (or the reverse) is refused; an absent score is stored as null.
        let mut half = eval.clone();
        half.overall_score = Some(40.0);
        assert!(matches!(s.insert_evaluation(&half).await, Err(Error::Invalid(_))), "{backend:?}");
        let stored = s.insert_evaluation(&eval).await.expect("evaluation");
        assert_eq!((stored.overall_score, stored.score_band, stored.rubric_version), (None, None, 2));
        let overrides = [NewOverride {
            kind: OverrideKind::Check,
            target: "risk_intent.plan".into(),
            ai_value: Some("no".into()),
            value: Some("yes".into()),
            reason: "Turn 9 asks about a plan.".into(),
        }];
        let blank = [NewOverride { reason: " ".into(), ..overrides[0].clone() }];
        assert!(matches!(
            s.record_review(f.account.id, session.id, f.supervisor.id, "", &blank).await,
            Err(Error::Invalid(_))
        ));
        // Another account cannot review it.
        let other = s.create_account(&format!("Other {}", Uuid::now_v7())).await.expect("account");
        assert!(matches!(
            s.record_review(other.id, session.id, f.supervisor.id, "", &overrides).await,
            Err(Error::NotFound(_))
        ));
        let review =
            s.record_review(f.account.id, session.id, f.supervisor.id, "looked", &overrides).await.expect("review");
        assert_eq!(review.overrides.len(), 1);
        assert_eq!(review.overrides[0].ai_value.as_deref(), Some("no"));
        assert_eq!(review.reviewer_name.as_deref(), Some("sup"));
        // The evaluation row is untouched; the audit event names the review.
        let after = s
            .ai_evaluation_raw(&s.session_in(f.account.id, session.id).await.expect("session"))
            .await
            .expect("read")
            .expect("stored");
        assert_eq!((after.overall_score, after.criteria.len(), after.review.is_none()), (None, 0, true));
        let events = s.audit_events(f.account.id, 10).await.expect("audit");
        let event = events.iter().find(|e| e.action == "evaluation.reviewed").expect("audited");
        assert_eq!(event.target_id.as_deref(), Some(review.id.to_string().as_str()));
        // The period filter is on review time.
        let now = Timestamp::now().millis();
        let within = s
            .reviewed_evaluations(
                f.account.id,
                Timestamp::from_millis(now - 60_000),
                Timestamp::from_millis(now + 60_000),
            )
            .await
            .expect("reviewed");
        assert_eq!(within.len(), 1);
        assert_eq!(within[0].reviews.len(), 1);
        let before = s
            .reviewed_evaluations(f.account.id, Timestamp::from_millis(0), Timestamp::from_millis(now - 60_000))
            .await
            .expect("reviewed");
        assert!(before.is_empty());
        // The schema holds the enums to their Rust definitions.
        for kind in OverrideKind::ALL {
            let ok = s
                .record_review(
                    f.account.id,
                    session.id,
                    f.supervisor.id,
                    "",
                    &[NewOverride { kind: *kind, ..overrides[0].clone() }],
                )
                .await;
            assert!(ok.is_ok(), "{kind:?}: {ok:?}");
        }
        let mut banded = eval.clone();
        for band in ScoreBand::ALL {
            let session = s.create_session(f.account.id, &new).await.expect("session");
            banded.session_id = session.id;
            banded.overall_score = Some(10.0);
            banded.score_band = Some(*band);
            let stored = s.insert_evaluation(&banded).await;
            assert!(stored.is_ok(), "{band:?}: {stored:?}");
        }
    }
}

/// The audit records of `action` in the account.
async fn audited(s: &Store, account: AccountId, action: &str) -> usize {
    s.audit_events(account, 500).await.expect("audit").iter().filter(|e| e.action == action).count()
}

/// Every audited write takes its `Audit` and writes it in the change's transaction: with a
/// record the database refuses (its actor is no user: a foreign-key violation at the record's
/// INSERT, the change's last statement) the change is rolled back too, so neither exists; with a
/// good record both do.
#[tokio::test]
async fn audited_writes_commit_with_their_record_or_not_at_all() {
    for (backend, db) in testing::all().await {
        let f = fixture(&db).await;
        let s = &db.store;
        let a = f.account.id;
        let good = |action| Audit::new(Some(a), Some(f.supervisor.id), action);
        // Refused by the database: no such user.
        let bad = |action| Audit::new(Some(a), Some(UserId::new()), action);

        // Retention.
        let keep = Retention { transcript_days: Some(7), evaluation_days: None, audit_days: None };
        assert!(s.set_retention(a, &keep, bad("retention.changed")).await.is_err(), "{backend:?}");
        assert_eq!(s.retention(a).await.expect("read"), Retention::default(), "{backend:?}: rolled back");
        assert_eq!(audited(s, a, "retention.changed").await, 0, "{backend:?}");
        s.set_retention(a, &keep, good("retention.changed")).await.expect("set");
        assert_eq!(s.retention(a).await.expect("read"), keep, "{backend:?}");
        assert_eq!(audited(s, a, "retention.changed").await, 1, "{backend:?}");

        // Role change and deactivation.
        let promote = UserPatch { role: Some(Role::Supervisor), ..Default::default() };
        assert!(s.update_user(a, f.counselor.id, &promote, &bad("user.updated")).await.is_err(), "{backend:?}");
        assert_eq!(s.user(a, f.counselor.id).await.expect("user").role, Role::Counselor, "{backend:?}: rolled back");
        assert_eq!(audited(s, a, "user.role_changed").await, 0, "{backend:?}");
        s.update_user(a, f.counselor.id, &promote, &good("user.updated")).await.expect("promote");
        assert_eq!(audited(s, a, "user.role_changed").await, 1, "{backend:?}");
        let off = UserPatch { active: Some(false), ..Default::default() };
        assert!(s.update_user(a, f.counselor.id, &off, &bad("user.updated")).await.is_err(), "{backend:?}");
        assert!(s.user(a, f.counselor.id).await.expect("user").active, "{backend:?}: still active");
        s.update_user(a, f.counselor.id, &off, &good("user.updated")).await.expect("deactivate");
        assert_eq!(audited(s, a, "user.deactivated").await, 1, "{backend:?}");

        // API key: created and revoked.
        let hash = format!("{:064x}", 7);
        assert!(s.create_api_key(a, "partner", "ptk_aaaa", &hash, None, &bad("api_key.created")).await.is_err());
        assert!(s.list_api_keys(a).await.expect("keys").is_empty(), "{backend:?}: no key without its record");
        let key = s.create_api_key(a, "partner", "ptk_aaaa", &hash, None, &good("api_key.created")).await.expect("key");
        assert_eq!(audited(s, a, "api_key.created").await, 1, "{backend:?}");
        assert!(s.revoke_api_key(a, key.id, &bad("api_key.revoked")).await.is_err(), "{backend:?}");
        assert!(s.api_key(a, key.id).await.expect("key").revoked_at.is_none(), "{backend:?}: still valid");
        s.revoke_api_key(a, key.id, &good("api_key.revoked")).await.expect("revoke");
        assert_eq!(audited(s, a, "api_key.revoked").await, 1, "{backend:?}");

        // Scenario deletion.
        let gone = scenario(&db, &f, "To delete").await;
        assert!(s.delete_scenario(a, gone.id, &bad("scenario.deleted")).await.is_err(), "{backend:?}");
        s.scenario(a, gone.id).await.expect("the scenario stays");
        s.delete_scenario(a, gone.id, &good("scenario.deleted")).await.expect("delete");
        assert_eq!(audited(s, a, "scenario.deleted").await, 1, "{backend:?}");

        // Flag resolution.
        let new = NewSession {
            user_id: f.other_counselor.id,
            assignment_id: None,
            scenario_id: None,
            kind: SessionKind::Chat,
            room_name: None,
        };
        let session = s.create_session(a, &new).await.expect("session");
        let raised = NewFlag {
            flag_type: FlagType::AiCallerProblem,
            severity: FlagSeverity::Medium,
            source: FlagSource::UserFeedback,
            details: "the caller repeated itself".into(),
            turns: Vec::new(),
        };
        let flag = s.insert_flag(a, session.id, &raised).await.expect("flag");
        let review = FlagReview { status: FlagStatus::Dismissed, note: None };
        assert!(s.review_flag(a, flag.id, f.supervisor.id, &review, &bad("flag.reviewed")).await.is_err());
        assert_eq!(s.flag(a, flag.id).await.expect("flag").status, FlagStatus::Open, "{backend:?}: still open");
        s.review_flag(a, flag.id, f.supervisor.id, &review, &good("flag.reviewed")).await.expect("review");
        assert_eq!(audited(s, a, "flag.reviewed").await, 1, "{backend:?}");

        // Erasure.
        assert!(s.erase_user(a, f.other_counselor.id, bad("user.erased")).await.is_err(), "{backend:?}");
        let kept = s.user(a, f.other_counselor.id).await.expect("user");
        assert_eq!(kept.display_name, "robin", "{backend:?}: not pseudonymised without its record");
        let (erased, _) = s.erase_user(a, f.other_counselor.id, good("user.erased")).await.expect("erase");
        assert!(erased.display_name.starts_with("Erased user"), "{backend:?}: {}", erased.display_name);
        assert_eq!(audited(s, a, "user.erased").await, 1, "{backend:?}");
    }
}
