//! The OpenAPI document as a test oracle: every response an HTTP test receives through
//! [`super::send`] must have a status the document lists for its route, and a JSON body valid
//! against the schema it documents. So the contract cannot drift from the server while the suite
//! exercises it (the authorization matrix alone sends every route x every kind of caller).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use reqwest::{Method, StatusCode};
use serde_json::Value;

struct Contract {
    doc: Value,
    /// Path templates split into segments; `None` is a `{parameter}`.
    templates: Vec<(String, Vec<Option<String>>)>,
    validators: Mutex<HashMap<String, std::sync::Arc<jsonschema::Validator>>>,
}

fn contract() -> &'static Contract {
    static CONTRACT: OnceLock<Contract> = OnceLock::new();
    CONTRACT.get_or_init(|| {
        let doc = serde_json::to_value(admin::openapi()).expect("document serialises");
        let templates = doc["paths"]
            .as_object()
            .expect("paths")
            .keys()
            .map(|t| {
                let segments =
                    t.split('/').map(|s| if s.starts_with('{') { None } else { Some(s.to_owned()) }).collect();
                (t.clone(), segments)
            })
            .collect();
        Contract { doc, templates, validators: Mutex::new(HashMap::new()) }
    })
}

/// The documented template a concrete path belongs to: the one matching the most literal
/// segments (`/api/scenarios/import` before `/api/scenarios/{id}`).
fn template_of(path: &str) -> Option<&'static str> {
    let parts: Vec<&str> = path.split('/').collect();
    contract()
        .templates
        .iter()
        .filter(|(_, segs)| {
            segs.len() == parts.len()
                && segs.iter().zip(&parts).all(|(s, p)| match s {
                    Some(lit) => lit == p,
                    None => !p.is_empty(),
                })
        })
        .max_by_key(|(_, segs)| segs.iter().filter(|s| s.is_some()).count())
        .map(|(t, _)| t.as_str())
}

/// Panics unless the response is what the document promises for this request.
pub fn check(method: &Method, path: &str, status: StatusCode, content_type: Option<&str>, body: &Value) {
    let Some(template) = template_of(path) else {
        return; // not an API route of the document (the UI, /api/docs, an unknown path's 404)
    };
    let c = contract();
    let op = &c.doc["paths"][template][method.as_str().to_lowercase()];
    if op.is_null() {
        assert_eq!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {template}: undocumented method answered {status}"
        );
        return;
    }
    let code = status.as_str();
    let response = &op["responses"][code];
    assert!(
        !response.is_null(),
        "{method} {template} answered {status}, which the OpenAPI document does not list (it lists {:?}); body: {body}",
        op["responses"].as_object().map(|r| r.keys().collect::<Vec<_>>()).unwrap_or_default()
    );
    let json = content_type.is_some_and(|t| t.starts_with("application/json"));
    let schema = &response["content"]["application/json"]["schema"];
    if !json || schema.is_null() {
        return;
    }
    let key = format!("{template} {method} {code}");
    let validator = {
        let mut cache = c.validators.lock().expect("validators");
        cache
            .entry(key)
            .or_insert_with(|| {
                // The schema with the document's components beside it, so `#/components/...`
                // references resolve against this root.
                let mut root = schema.clone();
                if let Some(obj) = root.as_object_mut() {
                    obj.insert("components".into(), c.doc["components"].clone());
                }
                let validator = jsonschema::options().should_validate_formats(true).build(&root).unwrap_or_else(|e| {
                    panic!("{method} {template} {code}: the documented schema does not compile: {e}")
                });
                std::sync::Arc::new(validator)
            })
            .clone()
    };
    let errors: Vec<String> = validator.iter_errors(body).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(
        errors.is_empty(),
        "{method} {template} {code}: body does not match the document: {errors:?}\nbody: {body}"
    );
}
