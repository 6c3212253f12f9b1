//! Oversize `PUT /api/accounts/risk-levels`, on every backend: 10,000 levels, a 100 KB label, a
//! body past the route's limit. Each answers a 413 or a short 422 naming the field, and nothing is
//! stored; the caps (`store::RISK_LEVELS_MAX`, `store::RISK_LEVEL_LABEL_MAX`) are the document's
//! `maxItems`/`maxLength`, and their boundaries are accepted.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use store::testing;

use crate::common::{App, spawn};

const PATH: &str = "/api/accounts/risk-levels";

async fn put_levels(app: &App, levels: Value) -> (StatusCode, Value) {
    app.call(Some(app.admin), Method::PUT, PATH, Some(json!({ "levels": levels }))).await
}

/// `n` distinct labels, all mapped to `low` (so only the count is wrong).
fn levels(n: usize) -> Value {
    Value::Array((0..n).map(|i| json!({"label": format!("Level {i}"), "standard": "low"})).collect())
}

/// The fields a 422 names, in order (at most 5 and a count, so a failure stays readable).
fn fields(body: &Value) -> Vec<String> {
    let all: Vec<String> = body["fields"]
        .as_array()
        .map(|f| f.iter().map(|e| e["field"].as_str().unwrap_or("").to_owned()).collect())
        .unwrap_or_default();
    let mut shown: Vec<String> = all.iter().take(5).cloned().collect();
    if all.len() > 5 {
        shown.push(format!("... {} in all", all.len()));
    }
    shown
}

#[tokio::test]
async fn oversize_risk_levels_are_refused_naming_the_field_and_store_nothing() {
    for (backend, db) in testing::all().await {
        let app = spawn(&db).await;
        let (_, defaults) = app.get(app.counselor, PATH).await;
        let stored = || async { app.store.risk_levels(app.account).await.expect("risk levels") };
        let before = stored().await;

        // 10,000 levels: one error for the list, not one per level (the answer stays small).
        let many = levels(10_000);
        let (status, body) = put_levels(&app, many).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{backend:?}");
        assert_eq!(fields(&body), ["levels"], "{backend:?}: {body}");
        assert!(body["fields"][0]["message"].as_str().is_some_and(|m| m.contains("12")), "{body}");
        // Even when every one of them is also wrong on its own (duplicates, out of order).
        let bad: Vec<Value> = (0..10_000)
            .map(|i| json!({"label": "Same", "standard": if i % 2 == 0 { "imminent" } else { "low" }}))
            .collect();
        let (status, body) = put_levels(&app, Value::Array(bad)).await;
        assert_eq!(
            (status, fields(&body)),
            (StatusCode::UNPROCESSABLE_ENTITY, vec!["levels".to_owned()]),
            "{backend:?}"
        );
        assert!(body.to_string().len() < 1024, "{backend:?}: a short answer, got {} bytes", body.to_string().len());

        // A 100 KB label: its field named, the label not echoed back.
        let huge = "x".repeat(100 * 1024);
        let (status, body) = put_levels(&app, json!([{"label": huge, "standard": "low"}])).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{backend:?}");
        assert_eq!(fields(&body), ["levels[0].label"], "{backend:?}");
        assert!(body["fields"][0]["message"].as_str().is_some_and(|m| m.contains("60")), "{body}");
        assert!(body.to_string().len() < 1024, "{backend:?}: {} bytes", body.to_string().len());
        // The same label among valid levels: only that one is named.
        let (status, body) = put_levels(
            &app,
            json!([{"label": "Green", "standard": "low"}, {"label": "y".repeat(100 * 1024), "standard": "high"}]),
        )
        .await;
        assert_eq!((status, fields(&body)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["levels[1].label".to_owned()]));

        // Past the route's body limit (2 MB): 413 before any parsing.
        let (status, body) = put_levels(&app, json!([{"label": "z".repeat(3 * 1024 * 1024), "standard": "low"}])).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{backend:?}: {body}");

        // Just past each cap: refused the same way.
        let (status, body) = put_levels(&app, levels(store::RISK_LEVELS_MAX + 1)).await;
        assert_eq!((status, fields(&body)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["levels".to_owned()]));
        let (status, body) = put_levels(&app, json!([{"label": "é".repeat(61), "standard": "low"}])).await;
        assert_eq!((status, fields(&body)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["levels[0].label".to_owned()]));

        // Nothing stored, nothing audited.
        assert_eq!(stored().await, before, "{backend:?}");
        assert_eq!(app.get(app.counselor, PATH).await.1, defaults, "{backend:?}");
        let audited = app.store.audit_events(app.account, 100).await.expect("audit");
        assert!(audited.iter().all(|e| e.action != "account.risk_levels_set"), "{backend:?}");

        // The caps themselves are accepted: 12 levels, 60 characters (not bytes).
        let mut at_cap = levels(store::RISK_LEVELS_MAX);
        at_cap[0]["label"] = json!("é".repeat(store::RISK_LEVEL_LABEL_MAX));
        let (status, body) = put_levels(&app, at_cap.clone()).await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {body}");
        assert_eq!(body["levels"], at_cap, "{backend:?}");
        assert_eq!(stored().await.len(), store::RISK_LEVELS_MAX, "{backend:?}");
    }
}

/// The document states the caps the domain enforces, so a client can check before sending.
#[test]
fn the_document_states_the_risk_level_caps() {
    let doc = serde_json::to_value(admin::openapi()).expect("document");
    let body = &doc["paths"][PATH]["put"]["requestBody"]["content"]["application/json"]["schema"]["$ref"];
    let name = body.as_str().and_then(|r| r.rsplit('/').next()).expect("a named request schema");
    let levels = &doc["components"]["schemas"][name]["properties"]["levels"];
    assert_eq!(levels["maxItems"], json!(store::RISK_LEVELS_MAX), "{levels}");
    assert_eq!(levels["minItems"], json!(1), "{levels}");
    let item = levels["items"]["$ref"].as_str().and_then(|r| r.rsplit('/').next()).expect("a named level schema");
    let label = &doc["components"]["schemas"][item]["properties"]["label"];
    assert_eq!(label["maxLength"], json!(store::RISK_LEVEL_LABEL_MAX), "{label}");
}
