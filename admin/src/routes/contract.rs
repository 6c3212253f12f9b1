//! Completes the OpenAPI document with what every route of a kind answers because of the
//! extractors and layers it runs through, so no route can forget to document them: a malformed
//! id, query or JSON body (400), an oversize body (413), a body of the wrong type (415), a
//! missing or wrong credential (401), a refused session (403: CSRF, origin, one-time password),
//! a missing record (404), the partner API's `Idempotency-Key` (409 in flight, 422 reused), plus
//! the security requirement of each route and every domain enum as a component (query
//! parameters reference them by name).

use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};

/// Who may call a route, read from its path: the same split [`crate::identity`] enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Anyone,
    /// Anyone, but the login routes check the request's origin (login CSRF).
    SignIn,
    Session,
    Partner,
    Internal,
}

fn caller_of(path: &str) -> Caller {
    match path {
        "/healthz" | "/readyz" | "/metrics" | "/api/auth/demo-users" => Caller::Anyone,
        "/api/auth/login" | "/api/auth/demo-login" => Caller::SignIn,
        p if p.starts_with("/api/external/") => Caller::Partner,
        p if p.starts_with("/api/internal/") => Caller::Internal,
        _ => Caller::Session,
    }
}

/// Adds the shared responses, security requirements and enum components to a document built
/// from the route table.
pub fn complete(doc: &mut OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        let caller = caller_of(path);
        let path_params = item.parameters.as_ref().is_some_and(|p| has_param(p, ParameterIn::Path));
        let ops = [
            ("get", &mut item.get),
            ("put", &mut item.put),
            ("post", &mut item.post),
            ("delete", &mut item.delete),
            ("patch", &mut item.patch),
        ];
        for (method, op) in ops {
            if let Some(op) = op.as_mut() {
                complete_operation(op, caller, method, path_params);
                if path.starts_with("/api/") {
                    // Every API route reads the database (a session, a key, a rate limit).
                    add(op, "503", "The database is unreachable (or the feature is not configured); try again later");
                }
            }
        }
    }
    let components = doc.components.get_or_insert_with(Default::default);
    for (name, schema) in store::enum_schemas() {
        components.schemas.entry(name).or_insert(schema);
    }
}

fn complete_operation(op: &mut Operation, caller: Caller, method: &str, path_params: bool) {
    let params = op.parameters.as_deref().unwrap_or_default();
    let path_params = path_params || has_param(params, ParameterIn::Path);
    let query_params = has_param(params, ParameterIn::Query);
    let body = op.request_body.as_ref().map(body_kinds);
    let changes = method != "get";

    if path_params || query_params || body.is_some() {
        add(op, "400", "A malformed id, query value or body");
    }
    if path_params {
        add(op, "404", "No such record in this account");
    }
    if let Some(kinds) = body {
        add(op, "413", "The body is larger than this route accepts");
        add(op, "415", kinds);
    }
    match caller {
        Caller::Anyone => {}
        Caller::SignIn => add(op, "403", "Cross-site request refused"),
        Caller::Session => {
            add(op, "401", "Not signed in, or the session expired");
            add(
                op,
                "403",
                if changes {
                    "Not allowed for this role, a missing or wrong CSRF token, a cross-site request, or a one-time password still to change"
                } else {
                    "Not allowed for this role, or a one-time password still to change"
                },
            );
            require(op, "session");
        }
        Caller::Partner => {
            add(op, "401", "Missing, wrong or revoked API key");
            require(op, "api_key");
            if method == "post" {
                add(op, "409", "A request with this Idempotency-Key is still in flight");
                add(op, "422", "This Idempotency-Key was used for a different request");
                idempotency_header(op);
            }
        }
        Caller::Internal => {
            add(op, "401", "Missing or wrong internal service key");
            add(op, "429", "Too many wrong internal service keys from this address: every key is refused for a while");
            require(op, "internal_key");
        }
    }
}

fn has_param(params: &[Parameter], kind: ParameterIn) -> bool {
    params.iter().any(|p| std::mem::discriminant(&p.parameter_in) == std::mem::discriminant(&kind))
}

/// The 415 text names the content types the route takes.
fn body_kinds(body: &RequestBody) -> String {
    let kinds: Vec<&str> = body.content.keys().map(String::as_str).collect();
    format!("The body is not of a content type this route takes ({})", kinds.join(", "))
}

/// Documents a response unless the route already describes that status itself.
fn add(op: &mut Operation, status: &str, description: impl Into<String>) {
    op.responses.responses.entry(status.to_owned()).or_insert_with(|| {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
                )
                .build(),
        )
    });
}

fn require(op: &mut Operation, scheme: &str) {
    op.security.get_or_insert_with(|| vec![SecurityRequirement::new(scheme, Vec::<String>::new())]);
}

fn idempotency_header(op: &mut Operation) {
    let params = op.parameters.get_or_insert_with(Vec::new);
    if params.iter().any(|p| p.name.eq_ignore_ascii_case("Idempotency-Key")) {
        return;
    }
    params.push(
        ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .required(utoipa::openapi::Required::False)
            .description(Some(
                "Makes a retried POST safe: the same key and body within 24 h answers the stored response (with `Idempotent-Replayed: true`)",
            ))
            .schema(Some(
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::SchemaType::Type(utoipa::openapi::Type::String))
                    .pattern(Some("^[!-~]{1,255}$")),
            ))
            .build(),
    );
}
