//! The OpenAPI document itself: enums carry their wire values, every reference resolves, every
//! route names its credential; and the response oracle every HTTP test runs through can fail.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::contract;

fn document() -> Value {
    serde_json::to_value(admin::openapi()).expect("document serialises")
}

#[test]
fn enums_are_published_with_their_wire_values() {
    let doc = document();
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for (name, _) in store::enum_schemas() {
        let values = schemas[&name]["enum"].as_array().unwrap_or_else(|| panic!("{name} has no enum values"));
        for v in values {
            let v = v.as_str().expect("string value");
            assert!(!v.chars().any(char::is_uppercase), "{name}: `{v}` is not a wire value");
        }
    }
    assert_eq!(schemas["Role"]["enum"], json!(["counselor", "supervisor", "admin"]));
    assert_eq!(schemas["CheckAnswer"]["enum"], json!(["yes", "no", "not_applicable", "not_assessed"]));
    // What the server really sends for an enum is what the document says.
    assert_eq!(serde_json::to_value(store::ScenarioMode::Phone).ok(), Some(json!("phone")));
}

#[test]
fn every_reference_resolves_and_every_route_names_its_credential() {
    let doc = document();
    let text = doc.to_string();
    let mut missing = Vec::new();
    for piece in text.split("\"#/components/schemas/").skip(1) {
        let name = piece.split('"').next().unwrap_or_default();
        if doc["components"]["schemas"][name].is_null() {
            missing.push(name.to_owned());
        }
    }
    assert!(missing.is_empty(), "unresolved references: {missing:?}");
    // Generated clients name a function per operation id: two routes must not share one.
    let mut ids = std::collections::BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if let Some(id) = op["operationId"].as_str()
                && let Some(other) = ids.insert(id.to_owned(), format!("{method} {path}"))
            {
                panic!("operation id `{id}` is used by {other} and {method} {path}");
            }
        }
    }
    let open = ["/healthz", "/readyz", "/metrics", "/api/auth/login", "/api/auth/demo-users", "/api/auth/demo-login"];
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if open.contains(&path.as_str()) || !op.is_object() || op.get("responses").is_none() {
                continue;
            }
            assert!(op["security"].is_array(), "{method} {path} names no security scheme");
            assert!(!op["responses"]["401"].is_null(), "{method} {path} does not document 401");
        }
    }
}

#[test]
#[should_panic(expected = "does not list")]
fn the_oracle_refuses_an_undocumented_status() {
    contract::check(&Method::GET, "/api/scenarios", StatusCode::IM_A_TEAPOT, None, &Value::Null);
}

#[test]
#[should_panic(expected = "does not match the document")]
fn the_oracle_refuses_a_body_off_its_schema() {
    let body = json!({"id": "not-a-uuid", "email": 7});
    contract::check(&Method::GET, "/api/me", StatusCode::OK, Some("application/json"), &body);
}

#[test]
fn the_oracle_prefers_literal_segments() {
    // `/api/scenarios/import` is its own route, not `/api/scenarios/{id}`: a 201 with a report is
    // documented there and would not validate as a scenario.
    let report = json!({"created": [], "skipped": [], "failed": []});
    contract::check(&Method::POST, "/api/scenarios/import", StatusCode::OK, Some("application/json"), &report);
}
