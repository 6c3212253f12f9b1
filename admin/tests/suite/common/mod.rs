//! The harness every HTTP test uses: the real app on 127.0.0.1:0 over a fresh database, two
//! accounts with users of every role, each signed in through the real login route.

#![allow(dead_code)] // each test binary uses a different part of it

pub mod contract;
pub mod pdf;
pub mod smtp;

use std::collections::HashMap;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use store::testing::TestDb;
use store::{NewUser, Role};
use uuid::Uuid;

/// Every test user's password (a fixture, not a secret of any deployment).
pub const PASSWORD: &str = "test-password-not-secret";

/// The extraction child for tests: the app runs in this process, which cannot re-execute itself
/// as `proto-trainer extract`, so uploads are parsed by the admin crate's own binary.
pub const EXTRACT_BIN: &str = env!("CARGO_BIN_EXE_proto-trainer-extract");

/// The default extraction settings with the tests' extraction child.
pub fn extract_config() -> admin::config::ExtractConfig {
    let mut extract = admin::Config::for_database("sqlite::memory:").extract;
    extract.program = Some(EXTRACT_BIN.into());
    extract
}

/// A signed-in user's credentials as a browser holds them.
#[derive(Debug, Clone)]
pub struct Creds {
    pub cookie: String,
    pub csrf: String,
}

pub struct App {
    pub base: String,
    pub http: reqwest::Client,
    pub store: store::Store,
    pub account: store::AccountId,
    pub other_account: store::AccountId,
    pub admin: store::UserId,
    pub supervisor: store::UserId,
    pub counselor: store::UserId,
    pub other_counselor: store::UserId,
    /// A supervisor of another account.
    pub outsider: store::UserId,
    pub emails: HashMap<store::UserId, String>,
    pub creds: HashMap<store::UserId, Creds>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

/// The app with default configuration (no rate limits in the way).
pub async fn spawn(db: &TestDb) -> App {
    spawn_with(db, |_| {}).await
}

pub async fn spawn_with(db: &TestDb, configure: impl FnOnce(&mut admin::Config)) -> App {
    let s = &db.store;
    let account = s.create_account(&format!("Center {}", Uuid::now_v7())).await.expect("account");
    let other = s.create_account(&format!("Other {}", Uuid::now_v7())).await.expect("account");
    let hash = admin::auth::hash_password(PASSWORD.into()).await.expect("hash");
    let mut emails = HashMap::new();
    let mut user = async |account: store::AccountId, name: &str, role| {
        let email = format!("{}-{}@example.org", name.replace(' ', ".").to_lowercase(), Uuid::now_v7().simple());
        let new = NewUser {
            email: email.clone(),
            display_name: name.to_owned(),
            role,
            external_id: Some(format!("ext-{name}")),
            is_demo: false,
        };
        let id = s.create_user(account, new).await.expect("user").id;
        s.set_password(account, id, &hash, None, None, &store::Audit::new(Some(account), None, "test.password"))
            .await
            .expect("password");
        emails.insert(id, email);
        id
    };
    let admin = user(account.id, "Ada Admin", Role::Admin).await;
    let supervisor = user(account.id, "Sue Supervisor", Role::Supervisor).await;
    let counselor = user(account.id, "Casey Counselor", Role::Counselor).await;
    let other_counselor = user(account.id, "Robin Counselor", Role::Counselor).await;
    let outsider = user(other.id, "Olga Outsider", Role::Supervisor).await;

    let mut config = admin::Config::for_database(&db.url);
    config.rate_limits = admin::config::RateLimits::unlimited();
    config.extract.program = Some(EXTRACT_BIN.into());
    configure(&mut config);
    let (base, tx) = serve(config).await;
    let mut app = App {
        base,
        http: reqwest::Client::new(),
        store: s.clone(),
        account: account.id,
        other_account: other.id,
        admin,
        supervisor,
        counselor,
        other_counselor,
        outsider,
        emails,
        creds: HashMap::new(),
        _shutdown: tx,
    };
    for id in [admin, supervisor, counselor, other_counselor, outsider] {
        let creds = app.login(&app.emails[&id].clone(), PASSWORD).await.expect("test users sign in");
        app.creds.insert(id, creds);
    }
    app
}

/// Runs the app with `config` on a free port until the returned sender is dropped; answers its
/// base URL. A second call on the same database is a second replica.
pub async fn serve(config: admin::Config) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        admin::run(config, listener, async {
            let _ = rx.await;
        })
        .await
        .expect("server runs");
    });
    (base, tx)
}

/// The `name=value` part of a `Set-Cookie` header.
pub fn cookie_of(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.contains("pt_session="))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}

impl App {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Signs in through the login route; `Err` carries the status and body of a refusal.
    pub async fn login(&self, email: &str, password: &str) -> Result<Creds, (StatusCode, Value)> {
        let res = self
            .http
            .post(self.url("/api/auth/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .expect("login request");
        let status = res.status();
        let cookie = cookie_of(&res);
        let body: Value = res.json().await.unwrap_or(Value::Null);
        match (status, cookie) {
            (StatusCode::OK, Some(cookie)) => {
                Ok(Creds { cookie, csrf: body["csrfToken"].as_str().expect("csrf token").to_owned() })
            }
            _ => Err((status, body)),
        }
    }

    /// Adds a signed-in user's cookie and CSRF token to a request.
    pub fn as_user(&self, user: store::UserId, req: RequestBuilder) -> RequestBuilder {
        let creds = &self.creds[&user];
        with_creds(creds, req)
    }

    pub async fn call(
        &self,
        as_user: Option<store::UserId>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(user) = as_user {
            req = self.as_user(user, req);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        send(req).await
    }

    pub async fn get(&self, user: store::UserId, path: &str) -> (StatusCode, Value) {
        self.call(Some(user), Method::GET, path, None).await
    }

    pub async fn post(&self, user: store::UserId, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Some(user), Method::POST, path, Some(body)).await
    }

    pub async fn raw(
        &self,
        user: store::UserId,
        method: Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let req = self
            .as_user(user, self.http.request(method, self.url(path)))
            .header("content-type", content_type)
            .body(body);
        send(req).await
    }

    pub async fn scenario(&self, title: &str) -> Value {
        let (status, body) = self.post(self.supervisor, "/api/scenarios", scenario_body(title)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }
}

pub fn with_creds(creds: &Creds, req: RequestBuilder) -> RequestBuilder {
    req.header("cookie", &creds.cookie).header("x-csrf-token", &creds.csrf)
}

/// Sends a request and answers its status and body (JSON, else the text), after holding the
/// response to the OpenAPI document ([`contract::check`]).
pub async fn send(req: RequestBuilder) -> (StatusCode, Value) {
    let (client, req) = req.build_split();
    let req = req.expect("request builds");
    let (method, path) = (req.method().clone(), req.url().path().to_owned());
    let res = client.execute(req).await.expect("request");
    let status = res.status();
    let content_type = res.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let text = res.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    contract::check(&method, &path, status, content_type.as_deref(), &body);
    (status, body)
}

pub fn scenario_body(title: &str) -> Value {
    json!({ "title": title, "prompt": "You are Sam, calling at night.", "mode": "phone", "category": "onboarding" })
}

pub fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

/// The handle the store's session-data reads take, for a test that inspects what was stored
/// (looked up across accounts, as the system's own paths do).
pub async fn session_ref(store: &store::Store, id: impl ToString) -> store::SessionRef {
    let id: store::SessionId = id.to_string().parse().expect("a session id");
    store.session_for_system(id).await.expect("the session")
}
