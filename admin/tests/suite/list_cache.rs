//! Kept list pages (`admin::list_cache`) on every backend: a list is served again only while the
//! account's revision stands, and any change moves it, whoever makes it: this replica, another
//! replica on the same database, or a write below the API (a background job, an operator's SQL).
//! One caller's kept page is never another's. Every table is either watched by a revision
//! trigger or listed as one no list reads, and concurrent writers of one account neither fail
//! nor deadlock on the revision row (PostgreSQL's read committed included).

use reqwest::StatusCode;
use serde_json::Value;
use store::testing;
use store::{NewSession, NewTurn, SessionKind, Speaker};

use crate::common::{self, App, id};

/// GET as `user`, answering the body and whether the page was kept (`x-list-cache: hit`).
async fn list(app: &App, base: &str, user: store::UserId, path: &str) -> (Value, bool) {
    let res = app.as_user(user, app.http.get(format!("{base}{path}"))).send().await.expect("request");
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    let kept = match res.headers().get(admin::list_cache::HEADER).and_then(|v| v.to_str().ok()) {
        Some("hit") => true,
        Some("miss") => false,
        other => panic!("{path}: no cache header ({other:?})"),
    };
    (res.json().await.expect("json"), kept)
}

fn titles(page: &Value) -> Vec<String> {
    page.as_array().expect("list").iter().map(|s| s["title"].as_str().unwrap_or("").to_owned()).collect()
}

#[tokio::test]
async fn a_kept_list_follows_every_change_whoever_makes_it() {
    for (backend, db) in testing::all().await {
        let app = common::spawn(&db).await;
        let (other, _stop) = common::serve(admin::Config::for_database(&db.url)).await;
        // A description long enough that the page is worth gzipping (over 1 KiB).
        let mut body = common::scenario_body("Kept one");
        body["description"] = Value::from("A caller who has just lost their job. ".repeat(40));
        let (status, made) = app.post(app.supervisor, "/api/scenarios", body).await;
        assert_eq!(status, StatusCode::CREATED, "{backend:?}: {made}");
        let first = id(&made);

        let (page, kept) = list(&app, &app.base, app.supervisor, "/api/scenarios").await;
        assert!(!kept, "{backend:?}: the first read renders");
        assert_eq!(titles(&page), ["Kept one"]);
        let (again, kept) = list(&app, &app.base, app.supervisor, "/api/scenarios").await;
        assert!(kept, "{backend:?}: nothing changed, so the page is served again");
        assert_eq!(again, page);
        // A browser's request gets the kept page gzipped, the same JSON once unpacked.
        let res = app
            .as_user(app.supervisor, app.http.get(app.url("/api/scenarios")))
            .header("accept-encoding", "gzip, deflate, br")
            .send()
            .await
            .expect("request");
        assert_eq!(res.headers().get("content-encoding").map(|v| v.as_bytes()), Some(&b"gzip"[..]), "{backend:?}");
        let packed = res.bytes().await.expect("body");
        let mut unpacked = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&packed[..]), &mut unpacked).expect("gunzip");
        assert_eq!(serde_json::from_slice::<Value>(&unpacked).expect("json"), page, "{backend:?}");

        // Through the other replica: this replica's kept page is no longer current.
        let res = app
            .as_user(app.supervisor, app.http.post(format!("{other}/api/scenarios")))
            .json(&common::scenario_body("Made elsewhere"))
            .send()
            .await
            .expect("create");
        assert_eq!(res.status(), StatusCode::CREATED, "{backend:?}");
        let (page, kept) = list(&app, &app.base, app.supervisor, "/api/scenarios").await;
        assert!(!kept, "{backend:?}");
        assert_eq!(titles(&page), ["Made elsewhere", "Kept one"], "{backend:?}");

        // Below the API, as an operator's SQL or another process would write.
        db.store
            .raw_execute(&format!("UPDATE scenarios SET title = 'Renamed in SQL' WHERE id = '{first}'"))
            .await
            .expect("update");
        let (page, _) = list(&app, &app.base, app.supervisor, "/api/scenarios").await;
        assert_eq!(titles(&page), ["Made elsewhere", "Renamed in SQL"], "{backend:?}");

        // A child row without an account of its own (a turn) moves its session's account. The
        // assignments list counts an ended voice call as an attempt only once the counselor spoke.
        let scenario = page[0]["id"].as_str().expect("id").to_owned();
        let (status, made) = app
            .post(
                app.supervisor,
                "/api/assignments",
                serde_json::json!({"scenarioIds": [scenario], "counselorIds": [app.counselor]}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {made}");
        let assignment = made["created"][0]["id"].as_str().expect("assignment").parse().expect("uuid");
        let new = NewSession {
            user_id: app.counselor,
            assignment_id: Some(assignment),
            scenario_id: None,
            kind: SessionKind::Voice,
            room_name: None,
        };
        let session = app.store.create_session(app.account, &new).await.expect("session");
        app.store.end_session(app.account, session.id, store::SessionStatus::Completed).await.expect("end");
        let attempts = |page: &Value| page[0]["attempts"].as_i64();
        let (before, _) = list(&app, &app.base, app.supervisor, "/api/assignments").await;
        let (_, kept) = list(&app, &app.base, app.supervisor, "/api/assignments").await;
        assert!(kept, "{backend:?}");
        db.store
            .raw_execute(&format!(
                "INSERT INTO transcript_turns (id, session_id, speaker, text, started_ms, ended_ms, created_at) \
                 VALUES ('{}', '{}', 'counselor', 'Hello, crisis line.', 0, 1000, 0)",
                uuid::Uuid::now_v7(),
                session.id
            ))
            .await
            .expect("turn");
        let (after, kept) = list(&app, &app.base, app.supervisor, "/api/assignments").await;
        assert!(!kept, "{backend:?}: a turn moved the revision");
        assert_eq!((attempts(&before), attempts(&after)), (Some(0), Some(1)), "{backend:?}: {before} then {after}");
    }
}

#[tokio::test]
async fn one_callers_kept_list_is_never_anothers() {
    for (backend, db) in testing::all().await {
        let app = common::spawn(&db).await;
        let scenario = id(&app.scenario("Whose sessions").await);
        for counselor in [app.counselor, app.other_counselor] {
            let new = NewSession {
                user_id: counselor,
                assignment_id: None,
                scenario_id: Some(scenario.parse().expect("uuid")),
                kind: SessionKind::Chat,
                room_name: None,
            };
            app.store.create_session(app.account, &new).await.expect("session");
        }
        let owners = |page: &Value| -> Vec<String> {
            let mut ids: Vec<String> =
                page.as_array().expect("list").iter().map(|s| s["userId"].as_str().unwrap_or("").to_owned()).collect();
            ids.sort();
            ids
        };
        for _ in 0..2 {
            let (all, _) = list(&app, &app.base, app.supervisor, "/api/sessions").await;
            assert_eq!(owners(&all).len(), 2, "{backend:?}: {all}");
            for counselor in [app.counselor, app.other_counselor] {
                let (mine, _) = list(&app, &app.base, counselor, "/api/sessions").await;
                assert_eq!(owners(&mine), [counselor.to_string()], "{backend:?}");
            }
        }
        let (_, kept) = list(&app, &app.base, app.counselor, "/api/sessions").await;
        assert!(kept, "{backend:?}: each caller's own page is kept");
        // Another account's supervisor: their own (empty) list, not this account's page.
        let (theirs, _) = list(&app, &app.base, app.outsider, "/api/sessions").await;
        assert_eq!(theirs, Value::Array(Vec::new()), "{backend:?}");
    }
}

#[tokio::test]
async fn every_table_is_watched_or_named_as_unread() {
    for (backend, db) in testing::all().await {
        let tables = db.store.revision_triggers().await.expect("tables");
        for (table, watched) in &tables {
            let tracked = store::REVISION_TRACKED.contains(&table.as_str());
            let untracked = store::REVISION_UNTRACKED.contains(&table.as_str());
            assert!(
                tracked != untracked,
                "{backend:?}: table `{table}` must be in exactly one of REVISION_TRACKED and REVISION_UNTRACKED \
                 (does a list read it? then add revision triggers for it in a migration)"
            );
            assert_eq!(*watched, tracked, "{backend:?}: `{table}`: a revision trigger exactly when tracked");
        }
        for table in store::REVISION_TRACKED.iter().chain(store::REVISION_UNTRACKED) {
            assert!(tables.iter().any(|(t, _)| t == table), "{backend:?}: `{table}` is listed but does not exist");
        }
    }
}

/// Concurrent writers of one account all move the revision at commit. On PostgreSQL the
/// revision row is taken last (deferred triggers), so writers that lock other rows first
/// (assignments lock their scenario, sessions their assignment) never deadlock through it.
#[tokio::test]
async fn concurrent_writers_of_one_account_all_commit_and_all_count() {
    for (backend, db) in testing::all().await {
        let app = common::spawn(&db).await;
        let scenario: store::ScenarioId = id(&app.scenario("Busy account").await).parse().expect("uuid");
        let start = app.store.account_revision(app.account).await.expect("revision");
        let writers = 24;
        let tasks: Vec<_> = (0..writers)
            .map(|i| {
                let (s, account, counselor) = (app.store.clone(), app.account, app.counselor);
                tokio::spawn(async move {
                    let new = NewSession {
                        user_id: counselor,
                        assignment_id: None,
                        scenario_id: Some(scenario),
                        kind: SessionKind::Chat,
                        room_name: None,
                    };
                    let session = s.create_session(account, &new).await?;
                    let turns: Vec<NewTurn> = (0..3)
                        .map(|t| NewTurn {
                            speaker: if t % 2 == 0 { Speaker::Caller } else { Speaker::Counselor },
                            text: format!("turn {t} of writer {i}"),
                            started_ms: t * 1_000,
                            ended_ms: Some(t * 1_000 + 500),
                            segment_id: None,
                        })
                        .collect();
                    s.append_turns(account, session.id, &turns).await?;
                    s.end_session(account, session.id, store::SessionStatus::Completed).await?;
                    Ok::<_, store::Error>(())
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task").unwrap_or_else(|e| panic!("{backend:?}: a writer failed: {e}"));
        }
        let end = app.store.account_revision(app.account).await.expect("revision");
        // Each writer: a session row, three turns and the session's end, each moving it.
        assert!(end - start >= writers * 5, "{backend:?}: revision {start} -> {end}");
        let other = app.store.account_revision(app.other_account).await.expect("revision");
        let (_, _) = list(&app, &app.base, app.outsider, "/api/sessions").await;
        assert_eq!(
            app.store.account_revision(app.other_account).await.expect("revision"),
            other,
            "{backend:?}: another account's writes and reads leave its revision alone"
        );
    }
}
