//! Hostile names in the category path (`PATCH`/`DELETE /api/categories/{name}`), on every
//! backend: a 10 KB name, `/` percent-encoded, control characters, broken percent-encoding and
//! an empty name each answer a 4xx (never a 5xx) and leave the account's categories as they were;
//! a real name holding `/` still reaches exactly its own category.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use store::testing;

use crate::common::{App, spawn};

/// The account's categories, read straight from the store (not through the route under test).
async fn categories(app: &App) -> Vec<String> {
    app.store.categories(app.account).await.expect("categories")
}

/// `method` on `/api/categories/<segment>` as the account admin, `segment` sent as written
/// (already percent-encoded, or deliberately not).
async fn hit(app: &App, method: Method, segment: &str) -> (StatusCode, Value) {
    let body = (method == Method::PATCH).then(|| json!({"name": "Renamed"}));
    app.call(Some(app.admin), method, &format!("/api/categories/{segment}"), body).await
}

#[tokio::test]
async fn hostile_category_paths_answer_4xx_and_change_nothing() {
    for (backend, db) in testing::all().await {
        let app = spawn(&db).await;
        for name in ["Crisis", "Youth", "Crisis/Youth"] {
            let (status, body) = app.post(app.admin, "/api/categories", json!({ "name": name })).await;
            assert_eq!(status, StatusCode::CREATED, "{backend:?}: {body}");
        }
        let before = categories(&app).await;
        let long = "A".repeat(10 * 1024);
        // (what, path segment as sent, the status it must answer)
        let cases: &[(&str, &str, StatusCode)] = &[
            ("10 KB name", &long, StatusCode::NOT_FOUND),
            ("10 KB of %41", &"%41".repeat(10 * 1024), StatusCode::NOT_FOUND),
            ("`/` encoded, no such category", "Nobody%2FElse", StatusCode::NOT_FOUND),
            ("`/` encoded, an existing name's half", "Crisis%2F", StatusCode::NOT_FOUND),
            ("`/` unencoded: another route shape", "Crisis/Youth", StatusCode::NOT_FOUND),
            ("NUL alone", "%00", StatusCode::BAD_REQUEST),
            ("NUL after a real name", "onboarding%00", StatusCode::BAD_REQUEST),
            ("newline before a real name", "%0Aonboarding", StatusCode::BAD_REQUEST),
            ("CRLF inside a real name", "Crisis%0D%0AYouth", StatusCode::BAD_REQUEST),
            ("tab before a real name", "%09onboarding", StatusCode::BAD_REQUEST),
            ("DEL", "onboarding%7F", StatusCode::BAD_REQUEST),
            ("C1 control (U+0085)", "onboarding%C2%85", StatusCode::BAD_REQUEST),
            ("invalid UTF-8", "%FF%FE", StatusCode::BAD_REQUEST),
            ("truncated UTF-8", "onboarding%E2%82", StatusCode::BAD_REQUEST),
            ("not hex after %", "onboarding%ZZ", StatusCode::NOT_FOUND),
            ("a lone %", "%", StatusCode::NOT_FOUND),
            ("spaces only", "%20%20", StatusCode::NOT_FOUND),
            ("empty", "", StatusCode::NOT_FOUND),
        ];
        for (what, segment, expected) in cases {
            for method in [Method::PATCH, Method::DELETE] {
                let (status, body) = hit(&app, method.clone(), segment).await;
                let shown: String = body.to_string().chars().take(200).collect();
                assert_eq!(status, *expected, "{backend:?} {method} {what}: {shown}");
                if status != StatusCode::NOT_FOUND || !segment.is_empty() {
                    assert!(body["message"].is_string(), "{backend:?} {method} {what}: a JSON error, got {shown}");
                }
                assert!(
                    body.to_string().len() < 2048,
                    "{backend:?} {method} {what}: the error does not echo the name back ({} bytes)",
                    body.to_string().len()
                );
                assert_eq!(categories(&app).await, before, "{backend:?} {method} {what}: the categories changed");
            }
        }

        // A name that holds `/`, sent encoded, reaches exactly that category: renamed, then
        // deleted, with "Crisis" and "Youth" untouched.
        let (status, cats) = hit(&app, Method::PATCH, "crisis%2Fyouth").await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {cats}");
        let expected: Vec<String> =
            before.iter().map(|c| if c == "Crisis/Youth" { "Renamed".to_owned() } else { c.clone() }).collect();
        assert_eq!(categories(&app).await, expected, "{backend:?}");
        let (status, _) = app.post(app.admin, "/api/categories", json!({"name": "Crisis/Youth"})).await;
        assert_eq!(status, StatusCode::CREATED, "{backend:?}");
        let (status, cats) = hit(&app, Method::DELETE, "Crisis%2FYouth").await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {cats}");
        assert_eq!(categories(&app).await, expected, "{backend:?}");
        assert!(app.store.categories(app.other_account).await.expect("other").iter().all(|c| c != "Renamed"));
    }
}
