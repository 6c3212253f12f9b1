//! The audit trail as an account admin reads it: reads of transcripts and recordings are
//! recorded (once per reader and window, however often a page polls), the log filters by user,
//! action and date, pages by cursor, answers 422 for bad filters and never shows another
//! account's entries. On every backend.

use reqwest::StatusCode;
use serde_json::Value;
use store::testing;

use crate::common::{App, spawn};

/// A chat session of the app's counselor with one turn each way.
async fn session(app: &App) -> store::SessionId {
    let s = &app.store;
    let new = store::NewSession {
        user_id: app.counselor,
        assignment_id: None,
        scenario_id: None,
        kind: store::SessionKind::Chat,
        room_name: None,
    };
    let session = s.create_session(app.account, &new).await.expect("session");
    session.id
}

fn entries(body: &Value) -> Vec<Value> {
    body["entries"].as_array().cloned().unwrap_or_default()
}

fn actions_for(body: &Value, target: &str) -> Vec<(String, String)> {
    entries(body)
        .iter()
        .filter(|e| e["targetId"] == target)
        .map(|e| (e["action"].as_str().unwrap_or("").to_owned(), e["actorUserId"].as_str().unwrap_or("").to_owned()))
        .collect()
}

#[tokio::test]
async fn transcript_reads_are_audited_once_per_reader_and_window() {
    for (backend, db) in testing::all().await {
        let app = spawn(&db).await;
        let id = session(&app).await;
        let path = format!("/api/sessions/{id}");
        // A feedback page polling: three reads, one record.
        for _ in 0..3 {
            assert_eq!(app.get(app.counselor, &path).await.0, StatusCode::OK, "{backend:?}");
        }
        assert_eq!(app.get(app.supervisor, &path).await.0, StatusCode::OK, "{backend:?}");
        // Another account's supervisor neither reads it nor leaves a record.
        assert_eq!(app.get(app.outsider, &path).await.0, StatusCode::NOT_FOUND, "{backend:?}");

        let (status, body) = app.get(app.admin, "/api/audit-events?action=session.transcript_read").await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {body}");
        let mut got = actions_for(&body, &id.to_string());
        got.sort();
        let mut want = vec![
            ("session.transcript_read".to_owned(), app.counselor.to_string()),
            ("session.transcript_read".to_owned(), app.supervisor.to_string()),
        ];
        want.sort();
        assert_eq!(got, want, "{backend:?}: one record per reader");
        let named = entries(&body).iter().any(|e| e["actorName"].as_str().is_some_and(|n| !n.is_empty()));
        assert!(named, "{backend:?}: entries name their actor: {body}");
    }
}

#[tokio::test]
async fn the_log_filters_pages_and_stays_in_its_account() {
    for (backend, db) in testing::all().await {
        let app = spawn(&db).await;
        let ids = [session(&app).await, session(&app).await, session(&app).await];
        for id in &ids {
            app.get(app.supervisor, &format!("/api/sessions/{id}")).await;
        }
        app.get(app.counselor, &format!("/api/sessions/{}", ids[0])).await;

        // By user.
        let (status, body) = app.get(app.admin, &format!("/api/audit-events?userId={}", app.counselor)).await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {body}");
        assert!(!entries(&body).is_empty());
        assert!(
            entries(&body).iter().all(|e| e["actorUserId"] == app.counselor.to_string()),
            "{backend:?}: only the counselor's: {body}"
        );

        // By action prefix, paged two at a time: three supervisor reads and one counselor read.
        let mut seen = Vec::new();
        let mut path = "/api/audit-events?action=session.*&limit=2".to_owned();
        loop {
            let (status, body) = app.get(app.admin, &path).await;
            assert_eq!(status, StatusCode::OK, "{backend:?}: {body}");
            assert!(entries(&body).len() <= 2);
            seen.extend(entries(&body).iter().map(|e| e["id"].as_str().unwrap_or("").to_owned()));
            match body["nextBefore"].as_str() {
                Some(next) => path = format!("/api/audit-events?action=session.*&limit=2&before={next}"),
                None => break,
            }
        }
        let unique: std::collections::BTreeSet<_> = seen.iter().collect();
        assert_eq!(seen.len(), 4, "{backend:?}: every read once across pages: {seen:?}");
        assert_eq!(unique.len(), 4, "{backend:?}: no entry twice");

        // By date: nothing before the epoch's first second, everything since.
        let (_, body) = app.get(app.admin, "/api/audit-events?to=1970-01-01T00:00:01Z").await;
        assert!(entries(&body).is_empty(), "{backend:?}: {body}");
        let (_, body) =
            app.get(app.admin, "/api/audit-events?from=2020-01-01T00:00:00Z&action=session.transcript_read").await;
        assert_eq!(entries(&body).len(), 4, "{backend:?}: {body}");

        // The other account's admin-side view holds none of these.
        let other = app.store.audit_log(app.other_account, &store::AuditFilter::default()).await.expect("log");
        assert!(other.entries.iter().all(|e| !ids.iter().any(|id| e.target_id.as_deref() == Some(&id.to_string()))));

        // Bad filters: 422 naming the field, or 400 for a value that is not even the right type.
        for (query, field) in [
            ("limit=0", "limit"),
            ("limit=201", "limit"),
            ("before=nonsense", "before"),
            ("from=2024-01-02T00:00:00Z&to=2024-01-01T00:00:00Z", "to"),
        ] {
            let (status, body) = app.get(app.admin, &format!("/api/audit-events?{query}")).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{backend:?} {query}: {body}");
            assert!(body.to_string().contains(field), "{backend:?} {query}: {body}");
        }
        let (status, _) = app.get(app.admin, "/api/audit-events?userId=not-a-uuid").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{backend:?}");
        let (status, _) = app.get(app.supervisor, "/api/audit-events").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{backend:?}");
    }
}
