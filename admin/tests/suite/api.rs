//! HTTP tests: the real app on 127.0.0.1:0, real requests, a fresh database per test, on every
//! available backend (SQLite always, PostgreSQL when `TEST_POSTGRES_URL` is set).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use store::testing;
use uuid::Uuid;

use crate::common::{id, scenario_body, spawn, spawn_with};

#[tokio::test]
async fn scenario_crud_round_trips_and_rejects_bad_input() {
    for (backend, db) in testing::all().await {
        let app = spawn(&db).await;
        let full = json!({
            "title": "Caller with financial stress", "prompt": "You are Sarah, 34, calling about...",
            "description": "Practice de-escalation", "mode": "phone", "category": "refresher",
            "skills": ["de-escalation", "active-listening"], "difficulty": "intermediate",
            "estimatedTime": 15, "relevantPolicySections": "Section 4.2", "evaluatorContext": "Look for means.",
        });
        let (status, created) = app.post(app.supervisor, "/api/scenarios", full.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{backend:?}: {created}");
        for (key, value) in full.as_object().expect("object") {
            assert_eq!(&created[key], value, "{backend:?}: field {key}");
        }
        assert_eq!(created["isOneTime"], false);
        assert_eq!(created["assignment"], Value::Null);
        let sid = id(&created);

        let (status, got) = app.get(app.supervisor, &format!("/api/scenarios/{sid}")).await;
        assert_eq!((status, got["title"].clone()), (StatusCode::OK, full["title"].clone()));

        let mut edited = full.clone();
        edited["title"] = json!("Renamed");
        edited["mode"] = json!("chat");
        let (status, put) =
            app.call(Some(app.supervisor), Method::PUT, &format!("/api/scenarios/{sid}"), Some(edited)).await;
        assert_eq!(
            (status, put["title"].as_str(), put["mode"].as_str()),
            (StatusCode::OK, Some("Renamed"), Some("chat"))
        );

        let (status, list) = app.get(app.supervisor, "/api/scenarios?category=refresher&q=renam").await;
        assert_eq!((status, list.as_array().map(Vec::len)), (StatusCode::OK, Some(1)));

        // Client mistakes: precise 4xx, never 500.
        let (status, body) = app.get(app.supervisor, "/api/scenarios/not-a-uuid").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body["message"].as_str().unwrap_or("").contains("not-a-uuid"));
        let (status, _) =
            app.raw(app.supervisor, Method::POST, "/api/scenarios", "application/json", b"{\"title\":".to_vec()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, body) = app
            .post(
                app.supervisor,
                "/api/scenarios",
                json!({"title": 5, "prompt": "p", "mode": "phone", "category": "onboarding"}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body["message"].as_str().unwrap_or("").contains("title"), "{body}");
        let (status, body) = app
            .post(app.supervisor, "/api/scenarios", json!({"prompt": "p", "mode": "phone", "category": "onboarding"}))
            .await;
        assert!(
            status == StatusCode::BAD_REQUEST && body["message"].as_str().unwrap_or("").contains("title"),
            "{body}"
        );
        let (status, body) = app
            .post(
                app.supervisor,
                "/api/scenarios",
                json!({"title": "t", "prompt": "p", "mode": "phone", "category": "sales"}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["fields"][0]["field"], "category");
        assert!(body["fields"][0]["message"].as_str().unwrap_or("").contains("onboarding, refresher"));
        let long = "x".repeat(50_001);
        let (status, body) = app.post(app.supervisor, "/api/scenarios", json!({"title": "t", "prompt": "p", "mode": "phone", "category": "onboarding", "evaluatorContext": long})).await;
        assert_eq!(
            (status, body["fields"][0]["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("evaluatorContext"))
        );
        let (status, _) = app
            .post(
                app.supervisor,
                "/api/scenarios",
                json!({"title": "renamed", "prompt": "p", "mode": "phone", "category": "onboarding"}),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "titles are unique case-insensitively");
        let (status, _) = app.raw(app.supervisor, Method::POST, "/api/scenarios", "text/plain", b"{}".to_vec()).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

        // Roles and tenancy.
        assert_eq!(app.get(app.counselor, "/api/scenarios").await.0, StatusCode::FORBIDDEN);
        assert_eq!(app.get(app.outsider, &format!("/api/scenarios/{sid}")).await.0, StatusCode::NOT_FOUND);
        let (status, _) = app.call(Some(app.outsider), Method::DELETE, &format!("/api/scenarios/{sid}"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        // Mode locks and deletion refuses once assigned.
        let (status, _) = app
            .post(app.supervisor, "/api/assignments", json!({"scenarioId": sid, "counselorId": app.counselor}))
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let mut back = full.clone();
        back["mode"] = json!("phone");
        let (status, body) =
            app.call(Some(app.supervisor), Method::PUT, &format!("/api/scenarios/{sid}"), Some(back)).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        let (status, body) =
            app.call(Some(app.supervisor), Method::DELETE, &format!("/api/scenarios/{sid}"), None).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::CONFLICT, Some("conflict")));

        let spare = app.scenario("Spare").await;
        let res = app
            .http
            .delete(format!("{}/api/scenarios/{}", app.base, id(&spare)))
            .header("cookie", &app.creds[&app.supervisor].cookie)
            .header("x-csrf-token", &app.creds[&app.supervisor].csrf)
            .send()
            .await
            .expect("delete");
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        assert!(res.bytes().await.expect("body").is_empty(), "204 has no body");
        assert_eq!(app.get(app.supervisor, &format!("/api/scenarios/{}", id(&spare))).await.0, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn one_time_scenarios_assign_on_creation_and_promote_after_warning() {
    for (backend, db) in testing::all().await {
        let app = spawn(&db).await;
        let mut body = scenario_body("Just for Casey");
        body["isOneTime"] = json!(true);
        body["assignTo"] =
            json!({"counselorId": app.counselor, "dueAt": "2030-01-31", "notes": "Focus on safety planning"});
        let (status, created) = app.post(app.supervisor, "/api/scenarios", body).await;
        assert_eq!(status, StatusCode::CREATED, "{backend:?}: {created}");
        assert_eq!(created["assignment"]["counselorId"], json!(app.counselor));
        assert_eq!(created["assignment"]["dueAt"], "2030-01-31T23:59:59.999Z");
        let sid = id(&created);

        let (_, reusable) = app.get(app.supervisor, "/api/scenarios").await;
        assert!(reusable.as_array().expect("list").iter().all(|s| s["id"] != json!(sid)));
        let (_, one_time) = app.get(app.supervisor, "/api/scenarios?kind=one_time").await;
        assert!(one_time.as_array().expect("list").iter().any(|s| s["id"] == json!(sid)));

        let promote = format!("/api/scenarios/{sid}/promote");
        let (status, body) = app.post(app.supervisor, &promote, json!({"confirmPersonalDetailsReviewed": false})).await;
        assert_eq!(
            (status, body["fields"][0]["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("confirmPersonalDetailsReviewed"))
        );
        let (status, body) = app.post(app.supervisor, &promote, json!({"confirmPersonalDetailsReviewed": true})).await;
        assert_eq!((status, body["isOneTime"].as_bool()), (StatusCode::OK, Some(false)));
        assert_eq!(
            app.post(app.supervisor, &promote, json!({"confirmPersonalDetailsReviewed": true})).await.0,
            StatusCode::CONFLICT
        );

        let mut bad = scenario_body("Reusable with assignee");
        bad["assignTo"] = json!({"counselorId": app.counselor});
        assert_eq!(app.post(app.supervisor, "/api/scenarios", bad).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    }
}

#[tokio::test]
async fn csv_import_reports_created_skipped_and_failed_rows() {
    for (backend, db) in testing::all().await {
        let app = spawn(&db).await;
        app.scenario("Existing title").await;
        let csv = "title,prompt,description,mode,category,skills,difficulty,estimated_time\n\
                   Grief call,You are Lee,,phone,onboarding,listening;empathy,beginner,10\n\
                   EXISTING TITLE,You are X,,chat,refresher,,,\n\
                   grief call,Same title again,,phone,onboarding,,,\n\
                   Bad mode,You are Y,,video,onboarding,,,\n\
                   Bad category,You are Z,,chat,sales,,,\n\
                   Bad time,You are Q,,chat,advanced,,,soon\n\
                   \"Quoted, title\",\"Multi\nline prompt\",,chat,advanced,,advanced,30\n";
        let (status, report) =
            app.raw(app.supervisor, Method::POST, "/api/scenarios/import", "text/csv", csv.into()).await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {report}");
        let rows = |key: &str| {
            report[key].as_array().expect("list").iter().map(|r| r["row"].as_u64().unwrap_or(0)).collect::<Vec<_>>()
        };
        assert_eq!(rows("created"), vec![1, 7], "{report}");
        assert_eq!(rows("skipped"), vec![2, 3]);
        assert_eq!(rows("failed"), vec![4, 5, 6]);
        assert_eq!(report["failed"][0]["errors"][0]["field"], "mode");
        assert_eq!(report["failed"][1]["errors"][0]["field"], "category");
        assert_eq!(report["failed"][2]["errors"][0]["field"], "estimated_time");
        let (_, list) = app.get(app.supervisor, "/api/scenarios?q=quoted").await;
        assert_eq!(list[0]["prompt"], "Multi\nline prompt");

        // Multipart upload of the same file: everything is now a duplicate.
        let form = reqwest::multipart::Form::new()
            .part("file", reqwest::multipart::Part::bytes(csv.as_bytes().to_vec()).file_name("s.csv"));
        let res = app
            .http
            .post(format!("{}/api/scenarios/import", app.base))
            .header("cookie", &app.creds[&app.supervisor].cookie)
            .header("x-csrf-token", &app.creds[&app.supervisor].csrf)
            .multipart(form)
            .send()
            .await
            .expect("multipart");
        assert_eq!(res.status(), StatusCode::OK);
        let again: Value = res.json().await.expect("json");
        assert_eq!(again["created"].as_array().map(Vec::len), Some(0));
        assert_eq!(again["skipped"].as_array().map(Vec::len), Some(4));

        let (status, body) = app
            .raw(app.supervisor, Method::POST, "/api/scenarios/import", "text/csv", b"title,prompt\nA,B\n".to_vec())
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body["message"].as_str().unwrap_or("").contains("missing column `mode`"));
        let many: String = std::iter::once("title,prompt,mode,category\n".to_owned())
            .chain((0..101).map(|i| format!("T{i},P,phone,onboarding\n")))
            .collect();
        assert_eq!(
            app.raw(app.supervisor, Method::POST, "/api/scenarios/import", "text/csv", many.into()).await.0,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let huge = vec![b'a'; admin::MAX_UPLOAD_BYTES + 1];
        assert_eq!(
            app.raw(app.supervisor, Method::POST, "/api/scenarios/import", "text/csv", huge).await.0,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            app.raw(app.supervisor, Method::POST, "/api/scenarios/import", "application/pdf", b"%PDF".to_vec()).await.0,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        assert_eq!(
            app.raw(app.supervisor, Method::POST, "/api/scenarios/import", "text/csv", vec![0xff, 0xfe, 0x00]).await.0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            app.raw(app.counselor, Method::POST, "/api/scenarios/import", "text/csv", csv.into()).await.0,
            StatusCode::FORBIDDEN
        );
    }
}

#[tokio::test]
async fn assignments_single_bulk_and_state_machine() {
    for (backend, db) in testing::all().await {
        let app = spawn(&db).await;
        let a = id(&app.scenario("A").await);
        let b = id(&app.scenario("B").await);

        let (status, single) = app
            .post(
                app.supervisor,
                "/api/assignments",
                json!({"scenarioId": a, "counselorId": app.counselor, "notes": "n"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{backend:?}: {single}");
        assert_eq!((single["status"].as_str(), single["attempts"].as_i64()), (Some("pending"), Some(0)));
        assert_eq!(single["scenario"]["title"], "A");
        let aid = id(&single);
        let (status, dup) =
            app.post(app.supervisor, "/api/assignments", json!({"scenarioId": a, "counselorId": app.counselor})).await;
        assert_eq!((status, dup["existingId"].as_str()), (StatusCode::CONFLICT, Some(aid.as_str())));

        let (status, report) = app
            .post(app.supervisor, "/api/assignments", json!({"scenarioIds": [a, b], "counselorIds": [app.counselor, app.other_counselor, app.supervisor], "dueAt": "2030-02-01T12:00:00Z"}))
            .await;
        assert_eq!(status, StatusCode::OK, "{report}");
        assert_eq!(report["created"].as_array().map(Vec::len), Some(3));
        assert_eq!(report["skipped"].as_array().map(Vec::len), Some(1));
        assert_eq!(report["skipped"][0]["existingAssignmentId"], json!(aid));
        assert_eq!(report["blocked"].as_array().map(Vec::len), Some(2));
        let too_many: Vec<Uuid> = (0..501).map(|_| Uuid::now_v7()).collect();
        assert_eq!(
            app.post(app.supervisor, "/api/assignments", json!({"scenarioIds": [a], "counselorIds": too_many})).await.0,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            app.post(app.supervisor, "/api/assignments", json!({"scenarioId": a})).await.0,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            app.post(app.counselor, "/api/assignments", json!({"scenarioId": b, "counselorId": app.counselor})).await.0,
            StatusCode::FORBIDDEN
        );

        // Counselors see only their own.
        let (_, mine) = app.get(app.counselor, "/api/assignments").await;
        let mine = mine.as_array().expect("list");
        assert_eq!(mine.len(), 2);
        assert!(mine.iter().all(|x| x["counselorId"] == json!(app.counselor)));
        let theirs = report["created"]
            .as_array()
            .expect("list")
            .iter()
            .find(|x| x["counselorId"] == json!(app.other_counselor))
            .map(id)
            .expect("other's");
        assert_eq!(app.get(app.counselor, &format!("/api/assignments/{theirs}")).await.0, StatusCode::NOT_FOUND);
        assert_eq!(app.get(app.outsider, &format!("/api/assignments/{aid}")).await.0, StatusCode::NOT_FOUND);

        // State machine through PATCH.
        let path = format!("/api/assignments/{aid}");
        let patch = |user, body| app.call(Some(user), Method::PATCH, &path, Some(body));
        assert_eq!(patch(app.counselor, json!({"notes": "mine now"})).await.0, StatusCode::FORBIDDEN);
        let (status, started) = patch(app.counselor, json!({"status": "in_progress"})).await;
        assert_eq!((status, started["status"].as_str()), (StatusCode::OK, Some("in_progress")));
        assert_eq!(patch(app.supervisor, json!({"status": "completed"})).await.0, StatusCode::CONFLICT);
        let (status, reset) =
            patch(app.supervisor, json!({"status": "pending", "dueAt": null, "notes": "try again"})).await;
        assert_eq!(
            (status, reset["status"].as_str(), reset["notes"].as_str()),
            (StatusCode::OK, Some("pending"), Some("try again"))
        );
        assert_eq!(patch(app.supervisor, json!({"status": "finished"})).await.0, StatusCode::BAD_REQUEST);
        assert_eq!(patch(app.supervisor, json!({"colour": "red"})).await.0, StatusCode::BAD_REQUEST);

        assert_eq!(app.call(Some(app.counselor), Method::DELETE, &path, None).await.0, StatusCode::FORBIDDEN);
        assert_eq!(app.call(Some(app.supervisor), Method::DELETE, &path, None).await.0, StatusCode::NO_CONTENT);
        assert_eq!(app.get(app.supervisor, &path).await.0, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn sessions_list_by_type_and_show_transcripts_to_their_owner() {
    for (backend, db) in testing::all().await {
        let app = spawn(&db).await;
        let sid: store::ScenarioId = id(&app.scenario("Practice").await).parse().expect("uuid");
        let assignment = db
            .store
            .create_assignment(
                app.account,
                None,
                &store::NewAssignment { scenario_id: sid, counselor_id: app.counselor, due_at: None, notes: None },
            )
            .await
            .expect("assign");
        let new = |assignment_id| store::NewSession {
            user_id: app.counselor,
            assignment_id,
            scenario_id: None,
            kind: store::SessionKind::Chat,
            room_name: None,
        };
        let assigned = db.store.create_session(app.account, &new(Some(assignment.id))).await.expect("session");
        let free = db.store.create_session(app.account, &new(None)).await.expect("session");
        let turn = |speaker, text: &str, at| store::NewTurn {
            speaker,
            text: text.into(),
            started_ms: at,
            ended_ms: None,
            segment_id: None,
        };
        db.store
            .append_turns(
                app.account,
                free.id,
                &[turn(store::Speaker::Caller, "second", 900), turn(store::Speaker::Counselor, "first", 100)],
            )
            .await
            .expect("turns");

        let ids = |v: &Value| v.as_array().expect("list").iter().map(id).collect::<Vec<_>>();
        let (_, default) = app.get(app.counselor, "/api/sessions").await;
        assert_eq!(ids(&default), vec![free.id.to_string()], "{backend:?}: default is free practice");
        let (_, only_assigned) = app.get(app.supervisor, "/api/sessions?type=assigned").await;
        assert_eq!(ids(&only_assigned), vec![assigned.id.to_string()]);
        let (_, all) = app.get(app.supervisor, "/api/sessions?type=all").await;
        assert_eq!(all.as_array().map(Vec::len), Some(2));
        let (_, none) = app.get(app.other_counselor, "/api/sessions?type=all").await;
        assert_eq!(none.as_array().map(Vec::len), Some(0));
        assert_eq!(app.get(app.supervisor, "/api/sessions?type=bogus").await.0, StatusCode::BAD_REQUEST);

        let (status, detail) = app.get(app.counselor, &format!("/api/sessions/{}", free.id)).await;
        assert_eq!(status, StatusCode::OK);
        let texts: Vec<_> = detail["transcript"].as_array().expect("turns").iter().map(|t| t["text"].clone()).collect();
        assert_eq!(texts, vec![json!("first"), json!("second")]);
        assert_eq!(detail["evaluation"], Value::Null);
        assert_eq!(app.get(app.other_counselor, &format!("/api/sessions/{}", free.id)).await.0, StatusCode::NOT_FOUND);
        assert_eq!(app.get(app.outsider, &format!("/api/sessions/{}", free.id)).await.0, StatusCode::NOT_FOUND);
        assert_eq!(app.get(app.supervisor, "/api/sessions/123").await.0, StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn users_accounts_and_categories() {
    for (backend, db) in testing::all().await {
        let app = spawn(&db).await;
        let (status, found) = app.get(app.supervisor, "/api/users?role=counselor&q=rob").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            found.as_array().map(|a| a.iter().map(id).collect::<Vec<_>>()),
            Some(vec![app.other_counselor.to_string()]),
            "{backend:?}"
        );
        assert_eq!(app.get(app.supervisor, "/api/users?role=boss").await.0, StatusCode::BAD_REQUEST);
        assert_eq!(app.get(app.counselor, "/api/users").await.0, StatusCode::FORBIDDEN);
        assert_eq!(app.get(app.counselor, &format!("/api/users/{}", app.counselor)).await.0, StatusCode::OK);
        assert_eq!(
            app.get(app.counselor, &format!("/api/users/{}", app.other_counselor)).await.0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(app.get(app.outsider, &format!("/api/users/{}", app.counselor)).await.0, StatusCode::NOT_FOUND);

        let new = json!({"email": "New.Person@Example.org", "displayName": "New Person", "role": "counselor", "externalId": "ptg-9"});
        let (status, created) = app.post(app.supervisor, "/api/users", new.clone()).await;
        assert_eq!((status, created["email"].as_str()), (StatusCode::CREATED, Some("new.person@example.org")));
        assert_eq!(app.post(app.supervisor, "/api/users", new).await.0, StatusCode::CONFLICT);
        let sup = json!({"email": "boss@example.org", "displayName": "Boss", "role": "supervisor"});
        assert_eq!(app.post(app.supervisor, "/api/users", sup.clone()).await.0, StatusCode::FORBIDDEN);
        assert_eq!(app.post(app.admin, "/api/users", sup).await.0, StatusCode::CREATED);
        let (status, body) =
            app.post(app.admin, "/api/users", json!({"email": "nope", "displayName": "", "role": "counselor"})).await;
        assert_eq!((status, body["fields"].as_array().map(Vec::len)), (StatusCode::UNPROCESSABLE_ENTITY, Some(2)));

        let (status, accounts) = app.get(app.counselor, "/api/accounts").await;
        assert_eq!(
            (status, accounts.as_array().map(|a| a.iter().map(id).collect::<Vec<_>>())),
            (StatusCode::OK, Some(vec![app.account.to_string()]))
        );
        // Accounts are created by an operator (`proto-trainer account create`), not through the
        // API (hostile_auth.rs).
        let new_center = json!({"name": "Another Center", "adminEmail": "boss@another.example", "adminName": "Boss"});
        assert_eq!(app.post(app.admin, "/api/accounts", new_center).await.0, StatusCode::METHOD_NOT_ALLOWED);

        let (_, cats) = app.get(app.counselor, "/api/categories").await;
        assert_eq!(cats["categories"][0], "onboarding");
        assert_eq!(
            app.post(app.supervisor, "/api/categories", json!({"name": "Sales"})).await.0,
            StatusCode::FORBIDDEN
        );
        let (status, cats) = app.post(app.admin, "/api/categories", json!({"name": "Sales"})).await;
        assert_eq!(
            (status, cats["categories"].as_array().and_then(|c| c.last()).cloned()),
            (StatusCode::CREATED, Some(json!("Sales"))),
            "capitals kept as typed"
        );
        assert_eq!(app.post(app.admin, "/api/categories", json!({"name": "sales"})).await.0, StatusCode::CONFLICT);
        let (status, body) = app.post(app.admin, "/api/categories", json!({"name": "bad<name>"})).await;
        assert_eq!((status, &body["fields"][0]["field"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!("name")));
        let mut sales = scenario_body("Upsell caller");
        sales["category"] = json!("sales");
        let (status, created) = app.post(app.supervisor, "/api/scenarios", sales).await;
        assert_eq!((status, &created["category"]), (StatusCode::CREATED, &json!("Sales")), "{backend:?}: {created}");
    }
}

#[tokio::test]
async fn categories_are_renamed_and_deleted_as_typed() {
    for (backend, db) in testing::all().await {
        let app = spawn(&db).await;
        let (status, cats) = app.post(app.admin, "/api/categories", json!({"name": "  Youth   and LGBTQ+ "})).await;
        assert_eq!(status, StatusCode::CREATED, "{backend:?}: {cats}");
        assert!(cats["categories"].as_array().is_some_and(|c| c.contains(&json!("Youth and LGBTQ+"))), "{cats}");
        let (status, _) = app.post(app.admin, "/api/categories", json!({"name": "youth AND lgbtq+"})).await;
        assert_eq!(status, StatusCode::CONFLICT, "{backend:?}: duplicates ignore capitals");

        // A scenario in it follows the rename.
        let mut youth = scenario_body("Teen caller");
        youth["category"] = json!("youth and lgbtq+");
        let (status, scenario) = app.post(app.supervisor, "/api/scenarios", youth).await;
        assert_eq!((status, &scenario["category"]), (StatusCode::CREATED, &json!("Youth and LGBTQ+")), "{scenario}");
        let scenario_path = format!("/api/scenarios/{}", id(&scenario));

        let app = &app;
        let patch = |from: &str, to: &str| {
            let path = format!("/api/categories/{}", urlencode(from));
            let body = json!({ "name": to });
            async move { app.call(Some(app.admin), Method::PATCH, &path, Some(body)).await }
        };
        let (status, cats) = patch("Youth and LGBTQ+", "Youth & LGBTQ+").await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {cats}");
        assert!(cats["categories"].as_array().is_some_and(|c| c.contains(&json!("Youth & LGBTQ+"))), "{cats}");
        assert_eq!(app.get(app.supervisor, &scenario_path).await.1["category"], "Youth & LGBTQ+", "{backend:?}");
        // Capitals alone, and the old name found ignoring them.
        let (status, cats) = patch("youth & lgbtq+", "YOUTH & LGBTQ+").await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {cats}");
        assert_eq!(app.get(app.supervisor, &scenario_path).await.1["category"], "YOUTH & LGBTQ+");
        // Onto another category's name: 409; a bad name: 422; a missing one: 404.
        assert_eq!(patch("YOUTH & LGBTQ+", "Onboarding").await.0, StatusCode::CONFLICT, "{backend:?}");
        let (status, body) = patch("YOUTH & LGBTQ+", "semi;colon").await;
        assert_eq!((status, &body["fields"][0]["field"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!("name")));
        assert_eq!(patch("No such", "Whatever").await.0, StatusCode::NOT_FOUND);
        let path = format!("/api/categories/{}", urlencode("YOUTH & LGBTQ+"));
        assert_eq!(
            app.call(Some(app.supervisor), Method::PATCH, &path, Some(json!({"name": "x"}))).await.0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            app.call(Some(app.outsider), Method::DELETE, &path, None).await.0,
            StatusCode::FORBIDDEN,
            "a supervisor of another account is not an admin"
        );

        // In use: refused with what to do; the scenario is untouched.
        let (status, body) = app.call(Some(app.admin), Method::DELETE, &path, None).await;
        assert_eq!(status, StatusCode::CONFLICT, "{backend:?}: {body}");
        let message = body["message"].as_str().unwrap_or("");
        assert!(message.contains("1 scenario uses") && message.contains("move them"), "{message}");
        // Moved elsewhere, it can go.
        let mut moved = scenario_body("Teen caller");
        moved["category"] = json!("onboarding");
        let (status, body) = app.call(Some(app.supervisor), Method::PUT, &scenario_path, Some(moved)).await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {body}");
        let (status, cats) = app.call(Some(app.admin), Method::DELETE, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {cats}");
        assert!(!cats["categories"].to_string().to_lowercase().contains("youth"), "{cats}");
        assert_eq!(app.call(Some(app.admin), Method::DELETE, &path, None).await.0, StatusCode::NOT_FOUND);
        let actions: Vec<String> =
            app.store.audit_events(app.account, 50).await.expect("audit").into_iter().map(|e| e.action).collect();
        assert!(actions.iter().any(|a| a == "category.renamed") && actions.iter().any(|a| a == "category.deleted"));
    }
}

/// Percent-encodes a path segment (spaces, `&`, `+`).
fn urlencode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

#[tokio::test]
async fn ops_docs_and_web_ui() {
    let db = testing::sqlite().await;
    let app = spawn_with(&db, |c| c.metrics_token = Some(admin::Secret::new("metrics-token"))).await;
    // `/metrics` on the public listener answers its token only (hostile_auth.rs).
    let get = |path: &str| app.http.get(format!("{}{path}", app.base)).bearer_auth("metrics-token").send();
    assert_eq!(get("/healthz").await.expect("req").text().await.expect("body"), "ok");
    assert_eq!(get("/readyz").await.expect("req").status(), StatusCode::OK);
    app.get(app.supervisor, "/api/scenarios").await;
    let metrics = get("/metrics").await.expect("req").text().await.expect("body");
    assert!(
        metrics.contains("http_requests_total{method=\"GET\",route=\"/api/scenarios\",status=\"200\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("http_request_duration_seconds_bucket"));

    let spec: Value = get("/api/openapi.json").await.expect("req").json().await.expect("json");
    assert_eq!(spec["openapi"], "3.1.0");
    for path in
        ["/api/scenarios", "/api/scenarios/{id}", "/api/scenarios/import", "/api/assignments/{id}", "/api/sessions"]
    {
        assert!(spec["paths"][path].is_object(), "OpenAPI lacks {path}");
    }
    assert!(spec["components"]["schemas"]["Scenario"]["properties"]["isOneTime"].is_object());
    let docs = get("/api/docs/").await.expect("req");
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.text().await.expect("body").contains("swagger"));

    let page = get("/assignments/123").await.expect("req");
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.expect("body").contains("Proto Trainer"));
    let (status, body) = app.get(app.supervisor, "/api/nope").await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
}

#[tokio::test]
async fn voice_token_starts_a_session_and_dispatches_the_agent() {
    for (backend, db) in testing::all().await {
        let app = spawn(&db).await;
        // Without LiveKit settings the route says so instead of failing obscurely.
        let (status, body) = app.post(app.counselor, "/api/livekit/token", json!({})).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{backend:?}: {body}");
        assert!(body["message"].as_str().unwrap_or("").contains("LIVEKIT_URL"));

        let secret = format!("test-secret-{}", Uuid::now_v7().simple());
        let app = spawn_with(&db, |c| {
            c.livekit_url = Some("ws://127.0.0.1:7880".into());
            c.livekit_api_key = Some("devkey".into());
            c.livekit_api_secret = Some(admin::Secret::new(secret.clone()));
        })
        .await;
        let phone = id(&app.scenario("Voice call").await);
        let (_, assignment) = app
            .post(app.supervisor, "/api/assignments", json!({"scenarioId": phone, "counselorId": app.counselor}))
            .await;
        let (status, voice) =
            app.post(app.counselor, "/api/livekit/token", json!({"assignmentId": id(&assignment)})).await;
        assert_eq!(status, StatusCode::CREATED, "{voice}");
        assert_eq!(voice["url"], "ws://127.0.0.1:7880");
        assert_eq!(voice["agentName"], "proto-trainer");

        let claims = livekit_api::access_token::TokenVerifier::with_api_key("devkey", &secret)
            .verify(voice["token"].as_str().expect("token"))
            .expect("token signed with the configured secret");
        assert_eq!(claims.sub, app.counselor.to_string());
        assert_eq!(claims.video.room, voice["roomName"].as_str().expect("room"));
        assert!(claims.video.room_join && claims.video.can_publish == Some(true));
        let room_config = claims.room_config.expect("room config");
        // The room outlives the agent's 60 s rejoin grace (LiveKit's default is 20 s).
        assert!(room_config.departure_timeout >= 80, "{}", room_config.departure_timeout);
        let agents = room_config.agents;
        assert_eq!(agents[0].agent_name, "proto-trainer");
        let meta: Value = serde_json::from_str(&agents[0].metadata).expect("metadata JSON");
        assert_eq!(meta["sessionId"], voice["sessionId"]);
        assert_eq!(meta["assignmentId"], assignment["id"]);

        // The session exists as a voice attempt, and the assignment has started.
        let (_, session) =
            app.get(app.counselor, &format!("/api/sessions/{}", voice["sessionId"].as_str().expect("id"))).await;
        assert_eq!((session["kind"].as_str(), session["attemptNumber"].as_i64()), (Some("voice"), Some(1)));
        assert_eq!(session["roomName"], voice["roomName"]);
        let (_, assignment) = app.get(app.counselor, &format!("/api/assignments/{}", id(&assignment))).await;
        assert_eq!(assignment["status"], "in_progress");

        // Free practice needs no assignment; someone else's assignment is not found; chat
        // scenarios are not practised by voice.
        assert_eq!(app.post(app.other_counselor, "/api/livekit/token", json!({})).await.0, StatusCode::CREATED);
        let (status, _) =
            app.post(app.other_counselor, "/api/livekit/token", json!({"assignmentId": id(&assignment)})).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let mut chat = scenario_body("Chat only");
        chat["mode"] = json!("chat");
        let (_, chat) = app.post(app.supervisor, "/api/scenarios", chat).await;
        let (_, chat_assignment) = app
            .post(app.supervisor, "/api/assignments", json!({"scenarioId": id(&chat), "counselorId": app.counselor}))
            .await;
        let (status, _) =
            app.post(app.counselor, "/api/livekit/token", json!({"assignmentId": id(&chat_assignment)})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }
}
