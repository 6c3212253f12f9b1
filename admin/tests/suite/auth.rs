//! Authentication through HTTP: login, cookie attributes, session rotation and expiry, CSRF,
//! password changes and resets, user management, API keys, the internal key, rate limits, the
//! demo switcher and security headers, on every backend.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use store::testing;
use store::{NewUser, Role};
use uuid::Uuid;

use crate::common;
use crate::common::{PASSWORD, cookie_of, send, spawn, spawn_with, with_creds};

async fn audit_actions(app: &common::App, account: store::AccountId) -> Vec<String> {
    app.store.audit_events(account, 500).await.expect("audit").into_iter().map(|e| e.action).collect()
}

#[tokio::test]
async fn login_sets_a_safe_cookie_rotates_and_logs_out() {
    for (backend, db) in testing::all().await {
        let app = spawn(&db).await;
        let email = app.emails[&app.counselor].clone();

        // Wrong password and unknown e-mail: the same 401, both audited.
        let (status, body) = app.login(&email, "not the password").await.expect_err("refused");
        assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")), "{backend:?}");
        let (status, _) = app.login("nobody@example.org", PASSWORD).await.expect_err("refused");
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(audit_actions(&app, app.account).await.contains(&"login.failed".to_owned()));

        let res = app
            .http
            .post(app.url("/api/auth/login"))
            .json(&json!({"email": email.to_uppercase(), "password": PASSWORD}))
            .send()
            .await
            .expect("login");
        assert_eq!(res.status(), StatusCode::OK);
        let set_cookie = res.headers()["set-cookie"].to_str().expect("ascii").to_owned();
        for attribute in ["pt_session=", "HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"] {
            assert!(set_cookie.contains(attribute), "{set_cookie} lacks {attribute}");
        }
        assert!(!set_cookie.contains("Secure"), "plain HTTP without PUBLIC_URL https: no Secure flag");
        let cookie = cookie_of(&res).expect("cookie");
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["user"]["id"], app.counselor.to_string());
        assert_eq!(body["account"]["id"], app.account.to_string());
        assert_eq!(body["mustChangePassword"], false);
        let first = common::Creds { cookie, csrf: body["csrfToken"].as_str().expect("csrf").to_owned() };

        let (status, me) = send(with_creds(&first, app.http.get(app.url("/api/me")))).await;
        assert_eq!((status, me["user"]["email"].as_str()), (StatusCode::OK, Some(email.as_str())));
        assert_eq!(me["csrfToken"], first.csrf.as_str());

        // Signing in again with the old cookie rotates: the old session is gone.
        let res = with_creds(&first, app.http.post(app.url("/api/auth/login")))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .expect("login");
        let second_cookie = cookie_of(&res).expect("cookie");
        assert_ne!(second_cookie, first.cookie);
        let second: Value = res.json().await.expect("json");
        let second = common::Creds { cookie: second_cookie, csrf: second["csrfToken"].as_str().expect("csrf").into() };
        assert_eq!(send(with_creds(&first, app.http.get(app.url("/api/me")))).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(send(with_creds(&second, app.http.get(app.url("/api/me")))).await.0, StatusCode::OK);

        // Logout ends the session and clears the cookie.
        let res = with_creds(&second, app.http.post(app.url("/api/auth/logout"))).send().await.expect("logout");
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        assert!(res.headers()["set-cookie"].to_str().expect("ascii").contains("Max-Age=0"));
        assert_eq!(send(with_creds(&second, app.http.get(app.url("/api/me")))).await.0, StatusCode::UNAUTHORIZED);
        let actions = audit_actions(&app, app.account).await;
        assert!(actions.contains(&"login.succeeded".to_owned()) && actions.contains(&"logout".to_owned()));

        // Stored password hashes are argon2id; no plain text anywhere near them.
        let creds = app.store.credentials(&email).await.expect("db").expect("user");
        let hash = creds.password_hash.expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
        assert!(!hash.contains(PASSWORD));
    }
}

#[tokio::test]
async fn secure_cookie_behind_https() {
    let db = testing::sqlite().await;
    let app = spawn_with(&db, |c| {
        c.public_url = Some("https://trainer.example.org".into());
        c.cookie_secure = true;
    })
    .await;
    let res = app
        .http
        .post(app.url("/api/auth/login"))
        .json(&json!({"email": app.emails[&app.counselor], "password": PASSWORD}))
        .send()
        .await
        .expect("login");
    let set_cookie = res.headers()["set-cookie"].to_str().expect("ascii").to_owned();
    assert!(set_cookie.starts_with("__Host-pt_session=") && set_cookie.contains("; Secure"), "{set_cookie}");
    // The configured public origin passes the origin check.
    let (status, _) = send(
        app.as_user(app.supervisor, app.http.post(app.url("/api/scenarios")))
            .header("origin", "https://trainer.example.org")
            .json(&common::scenario_body("From the public origin")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn csrf_token_and_origin_are_checked_on_changes() {
    for (backend, db) in testing::all().await {
        let app = spawn(&db).await;
        let creds = app.creds[&app.supervisor].clone();
        let post = |title: &str| app.http.post(app.url("/api/scenarios")).json(&common::scenario_body(title));

        let (status, body) = send(post("No token").header("cookie", &creds.cookie)).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{backend:?}");
        let wrong = post("Wrong token").header("cookie", &creds.cookie).header("x-csrf-token", "guess");
        assert_eq!(send(wrong).await.0, StatusCode::FORBIDDEN);
        // Another user's token does not fit this session.
        let other = &app.creds[&app.counselor];
        let (status, _) =
            send(post("Foreign token").header("cookie", &creds.cookie).header("x-csrf-token", &other.csrf)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        // The right token from another site: refused by the origin check.
        let (status, _) = send(with_creds(&creds, post("Cross site")).header("origin", "https://evil.example")).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) =
            send(with_creds(&creds, post("Cross referer")).header("referer", "https://evil.example/page")).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        // Same origin (the Host the request went to) and the right token: accepted.
        let (status, _) = send(with_creds(&creds, post("Same site")).header("origin", app.base.clone())).await;
        assert_eq!(status, StatusCode::CREATED);
        // Reads need no token.
        let res = app.http.get(app.url("/api/scenarios")).header("cookie", &creds.cookie).send().await.expect("get");
        assert_eq!(res.status(), StatusCode::OK);
        // Login from another site is refused too (login CSRF).
        let res = app
            .http
            .post(app.url("/api/auth/login"))
            .header("origin", "https://evil.example")
            .json(&json!({"email": app.emails[&app.counselor], "password": PASSWORD}))
            .send()
            .await
            .expect("login");
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        // Nothing of the refused requests was written.
        let (_, list) = app.get(app.supervisor, "/api/scenarios").await;
        let titles: Vec<&str> = list.as_array().expect("list").iter().filter_map(|s| s["title"].as_str()).collect();
        assert_eq!(titles, vec!["Same site"]);
    }
}

#[tokio::test]
async fn sessions_expire_when_idle_and_at_their_absolute_end() {
    for (backend, db) in testing::all().await {
        let app = spawn_with(&db, |c| {
            c.session_idle_minutes = 30;
            c.session_max_hours = 8;
        })
        .await;
        assert_eq!(app.get(app.counselor, "/api/me").await.0, StatusCode::OK);
        // 31 minutes without a request: idle expiry.
        app.store.age_auth_sessions(app.counselor, 31 * 60_000).await.expect("age");
        let (status, body) = app.get(app.counselor, "/api/me").await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")), "{backend:?}");
        // Absolute expiry: active all along, but signed in longer ago than the maximum.
        let creds = app.login(&app.emails[&app.supervisor], PASSWORD).await.expect("login");
        app.store.age_auth_sessions(app.supervisor, 8 * 3_600_000 + 1).await.expect("age");
        sqlx_touch(&app, app.supervisor).await;
        assert_eq!(send(with_creds(&creds, app.http.get(app.url("/api/me")))).await.0, StatusCode::UNAUTHORIZED);
        // The dead rows are removed.
        assert!(
            app.store
                .auth_session(&admin::auth::sha256_hex(creds.cookie.trim_start_matches("pt_session=")))
                .await
                .expect("db")
                .is_none()
        );
    }
}

/// Marks the user's sessions as just used (so only the absolute limit applies).
async fn sqlx_touch(app: &common::App, user: store::UserId) {
    let now = store::Timestamp::now().millis();
    app.store
        .raw_execute(&format!("UPDATE auth_sessions SET last_seen_at = {now} WHERE user_id = '{user}'"))
        .await
        .expect("touch");
}

#[tokio::test]
async fn one_time_passwords_user_management_and_password_changes() {
    for (backend, db) in testing::all().await {
        let app = spawn(&db).await;
        // An admin adds a supervisor: a one-time password, shown once.
        let new = json!({"email": "new.sup@example.org", "displayName": "New Sup", "role": "supervisor"});
        let (status, created) = app.post(app.admin, "/api/users", new).await;
        assert_eq!(status, StatusCode::CREATED, "{backend:?}: {created}");
        let once = created["temporaryPassword"].as_str().expect("one-time password").to_owned();
        let new_id: store::UserId = created["id"].as_str().expect("id").parse().expect("uuid");
        let (_, listed) = app.get(app.admin, &format!("/api/users/{new_id}")).await;
        assert!(listed.get("temporaryPassword").is_none(), "shown once only");

        // First sign-in: only the password change is allowed.
        let creds = app.login("new.sup@example.org", &once).await.expect("login");
        let (status, me) = send(with_creds(&creds, app.http.get(app.url("/api/me")))).await;
        assert_eq!((status, me["mustChangePassword"].as_bool()), (StatusCode::OK, Some(true)));
        assert_eq!(send(with_creds(&creds, app.http.get(app.url("/api/scenarios")))).await.0, StatusCode::FORBIDDEN);
        let change = |current: &str, new: &str| {
            with_creds(&creds, app.http.post(app.url("/api/auth/password")))
                .json(&json!({"currentPassword": current, "newPassword": new}))
        };
        let (status, body) = send(change("wrong", "a brand new passphrase")).await;
        assert_eq!(
            (status, body["fields"][0]["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("currentPassword"))
        );
        let (status, body) = send(change(&once, "short")).await;
        assert_eq!(
            (status, body["fields"][0]["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("newPassword"))
        );
        assert_eq!(send(change(&once, "a brand new passphrase")).await.0, StatusCode::NO_CONTENT);
        assert_eq!(send(with_creds(&creds, app.http.get(app.url("/api/scenarios")))).await.0, StatusCode::OK);
        assert!(app.login("new.sup@example.org", &once).await.is_err(), "the one-time password is spent");
        let creds = app.login("new.sup@example.org", "a brand new passphrase").await.expect("login");

        // Role change: audited, and the user's sessions end so the new role applies at once.
        let (status, user) = app
            .call(Some(app.admin), Method::PATCH, &format!("/api/users/{new_id}"), Some(json!({"role": "counselor"})))
            .await;
        assert_eq!((status, user["role"].as_str()), (StatusCode::OK, Some("counselor")));
        assert_eq!(send(with_creds(&creds, app.http.get(app.url("/api/me")))).await.0, StatusCode::UNAUTHORIZED);
        assert!(audit_actions(&app, app.account).await.contains(&"user.role_changed".to_owned()));
        // Supervisors cannot manage users; unknown fields are refused.
        let (status, _) = app
            .call(Some(app.supervisor), Method::PATCH, &format!("/api/users/{new_id}"), Some(json!({"active": false})))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = app
            .call(Some(app.admin), Method::PATCH, &format!("/api/users/{new_id}"), Some(json!({"password": "x"})))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);

        // Deactivation: signed out, and cannot sign in.
        let creds = app.login("new.sup@example.org", "a brand new passphrase").await.expect("login");
        let (status, _) = app
            .call(Some(app.admin), Method::PATCH, &format!("/api/users/{new_id}"), Some(json!({"active": false})))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(send(with_creds(&creds, app.http.get(app.url("/api/me")))).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(
            app.login("new.sup@example.org", "a brand new passphrase").await.expect_err("refused").0,
            StatusCode::UNAUTHORIZED
        );

        // The last active admin cannot demote themselves.
        let (status, body) = app
            .call(
                Some(app.admin),
                Method::PATCH,
                &format!("/api/users/{}", app.admin),
                Some(json!({"role": "supervisor"})),
            )
            .await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::CONFLICT, Some("conflict")));

        // A reset hands out a new one-time password and ends the user's sessions.
        let (status, reset) =
            app.post(app.admin, &format!("/api/users/{}/password-reset", app.counselor), json!({})).await;
        assert_eq!(status, StatusCode::OK, "{reset}");
        assert_eq!(app.get(app.counselor, "/api/me").await.0, StatusCode::UNAUTHORIZED);
        let creds = app
            .login(&app.emails[&app.counselor], reset["temporaryPassword"].as_str().expect("pw"))
            .await
            .expect("login");
        let (_, me) = send(with_creds(&creds, app.http.get(app.url("/api/me")))).await;
        assert_eq!(me["mustChangePassword"], true);
        let actions = audit_actions(&app, app.account).await;
        assert!(actions.contains(&"password.reset".to_owned()) && actions.contains(&"password.changed".to_owned()));
    }
}

#[tokio::test]
async fn api_keys_are_shown_once_hashed_and_revocable() {
    for (backend, db) in testing::all().await {
        let app = spawn(&db).await;
        let (status, created) = app.post(app.admin, "/api/api-keys", json!({"name": "Training guide"})).await;
        assert_eq!(status, StatusCode::CREATED, "{backend:?}: {created}");
        let key = created["key"].as_str().expect("key").to_owned();
        let prefix = created["apiKey"]["prefix"].as_str().expect("prefix").to_owned();
        assert!(key.starts_with(&format!("ptk_{prefix}_")) && key.len() > 50, "{key}");
        let (_, listed) = app.get(app.admin, "/api/api-keys").await;
        assert!(!listed.to_string().contains(&key), "the key itself is never listed");
        assert_eq!(listed[0]["name"], "Training guide");
        assert!(listed[0]["lastUsedAt"].is_null());
        // Stored as a hash only.
        let (stored, hash) = app.store.api_key_by_prefix(&prefix).await.expect("db").expect("row");
        assert_ne!(hash, key);
        assert_eq!(hash, admin::auth::sha256_hex(&key));

        let partner = |key: &str| app.http.get(app.url("/api/external/scenarios")).header("x-api-key", key.to_owned());
        assert_eq!(send(partner(&key)).await.0, StatusCode::OK);
        let (_, listed) = app.get(app.admin, "/api/api-keys").await;
        assert!(listed[0]["lastUsedAt"].is_string(), "use is recorded");
        assert_eq!(send(partner("ptk_nope_nope")).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(send(partner(&format!("{key}x"))).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(send(app.http.get(app.url("/api/external/scenarios"))).await.0, StatusCode::UNAUTHORIZED);
        // A key is no session: it opens nothing outside the partner API.
        assert_eq!(
            send(app.http.get(app.url("/api/scenarios")).header("x-api-key", key.clone())).await.0,
            StatusCode::UNAUTHORIZED
        );

        let (status, _) =
            app.call(Some(app.admin), Method::DELETE, &format!("/api/api-keys/{}", stored.id), None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, body) = send(partner(&key)).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")), "revoked");
        let (_, listed) = app.get(app.admin, "/api/api-keys").await;
        assert!(listed[0]["revokedAt"].is_string());
        // Another account cannot see or revoke it.
        let (status, _) =
            app.call(Some(app.outsider), Method::DELETE, &format!("/api/api-keys/{}", stored.id), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "the outsider is no admin");
        let actions = audit_actions(&app, app.account).await;
        assert!(actions.contains(&"api_key.created".to_owned()) && actions.contains(&"api_key.revoked".to_owned()));
    }
}

#[tokio::test]
async fn internal_key_opens_only_the_internal_api() {
    for (backend, db) in testing::all().await {
        let app =
            spawn_with(&db, |c| c.internal_service_key = Some(admin::Secret::new("internal-test-key-0123"))).await;
        let create = |key: &str| {
            app.http
                .post(app.url("/api/internal/sessions"))
                .header("x-internal-service-key", key.to_owned())
                .json(&json!({"accountId": app.account, "userId": app.counselor, "roomName": format!("room-{}", Uuid::now_v7())}))
        };
        let (status, session) = send(create("internal-test-key-0123")).await;
        assert_eq!((status, session["kind"].as_str()), (StatusCode::CREATED, Some("voice")), "{backend:?}: {session}");
        assert_eq!(send(create("internal-test-key-0124")).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(send(create("")).await.0, StatusCode::UNAUTHORIZED);
        // A user of another account is not found in this one.
        let (status, _) = send(
            app.http
                .post(app.url("/api/internal/sessions"))
                .header("x-internal-service-key", "internal-test-key-0123")
                .json(&json!({"accountId": app.account, "userId": app.outsider})),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let id = session["id"].as_str().expect("id");
        let turns = json!({"turns": [
            {"speaker": "counselor", "text": "This is the crisis line.", "startedMs": 0, "segmentId": "a"},
            {"speaker": "caller", "text": "Hi.", "startedMs": 1500, "segmentId": "b"}]});
        let push = || {
            app.http
                .post(app.url(&format!("/api/internal/sessions/{id}/transcript")))
                .header("x-internal-service-key", "internal-test-key-0123")
                .json(&turns)
        };
        assert_eq!(send(push()).await.1["appended"], 2);
        assert_eq!(send(push()).await.1["appended"], 0, "re-sent segments are stored once");
        let (_, detail) = app.get(app.counselor, &format!("/api/sessions/{id}")).await;
        assert_eq!(detail["transcript"].as_array().map(Vec::len), Some(2));
    }
    // Without a configured key the internal API is closed.
    let db = testing::sqlite().await;
    let app = spawn(&db).await;
    let res = app
        .http
        .post(app.url("/api/internal/sessions"))
        .header("x-internal-service-key", "")
        .json(&json!({}))
        .send()
        .await;
    assert_eq!(res.expect("req").status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn login_is_rate_limited_with_retry_after() {
    for (backend, db) in testing::all().await {
        let app = spawn_with(&db, |c| {
            c.rate_limits.login_per_ip = admin::config::Limit::new(6, 600);
        })
        .await;
        // spawn signed five users in already: one more attempt fits the window, then none.
        assert!(app.login(&app.emails[&app.counselor], PASSWORD).await.is_ok(), "{backend:?}");
        let res = app
            .http
            .post(app.url("/api/auth/login"))
            .json(&json!({"email": app.emails[&app.counselor], "password": PASSWORD}))
            .send()
            .await
            .expect("login");
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "{backend:?}");
        let retry: u64 = res.headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds");
        assert!((1..=600).contains(&retry), "{retry}");
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["error"], "rate_limited");
    }
    // Per (e-mail, address) pair: guessing from one address locks out neither the user signing in
    // from elsewhere nor the rest of the account, and known and unknown e-mails answer alike.
    let db = testing::sqlite().await;
    let app = spawn_with(&db, |c| {
        c.trusted_proxies = 1;
        c.rate_limits.login_per_pair = admin::config::Limit::new(3, 600);
    })
    .await;
    let attempt = async |from: &str, email: &str, password: &str| {
        app.http
            .post(app.url("/api/auth/login"))
            .header("x-forwarded-for", from.to_owned())
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .expect("login")
            .status()
            .as_u16()
    };
    let victim = app.emails[&app.counselor].clone();
    let nobody = format!("nobody-{}@example.org", Uuid::now_v7().simple());
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..4 {
        known.push(attempt("203.0.113.1", &victim, "wrong password").await);
        unknown.push(attempt("203.0.113.1", &nobody, "wrong password").await);
    }
    assert_eq!(known, vec![401, 401, 401, 429]);
    assert_eq!(unknown, known, "an unknown e-mail answers as a known one");
    assert_eq!(attempt("203.0.113.2", &victim, PASSWORD).await, 200, "the user still signs in from elsewhere");
    let colleague = app.emails[&app.other_counselor].clone();
    assert_eq!(attempt("203.0.113.1", &colleague, PASSWORD).await, 200, "the account is not locked");
}

#[tokio::test]
async fn demo_switcher_exists_only_in_demo_mode() {
    for (backend, db) in testing::all().await {
        let demo_user = db
            .store
            .create_user(
                db.store.create_account(&format!("Demo {}", Uuid::now_v7())).await.expect("account").id,
                NewUser {
                    email: format!("demo-{}@example.org", Uuid::now_v7().simple()),
                    display_name: "Demo Counselor".into(),
                    role: Role::Counselor,
                    external_id: None,
                    is_demo: true,
                },
            )
            .await
            .expect("user");
        // Even with a password, a demo user cannot sign in normally.
        let hash = admin::auth::hash_password(PASSWORD.into()).await.expect("hash");
        db.store
            .set_password(demo_user.account_id, demo_user.id, &hash, None, None, &store::Audit::new(None, None, "test"))
            .await
            .expect("pw");

        let app = spawn(&db).await;
        assert_eq!(app.login(&demo_user.email, PASSWORD).await.expect_err("refused").0, StatusCode::UNAUTHORIZED);
        let res = app.http.post(app.url("/api/auth/demo-login")).json(&json!({"userId": demo_user.id})).send().await;
        assert_eq!(res.expect("req").status(), StatusCode::NOT_FOUND, "{backend:?}: no switcher without DEMO_MODE");
        assert_eq!(
            app.http.get(app.url("/api/auth/demo-users")).send().await.expect("req").status(),
            StatusCode::NOT_FOUND
        );

        let demo = spawn_with(&db, |c| c.demo_mode = true).await;
        let (status, users) = send(demo.http.get(demo.url("/api/auth/demo-users"))).await;
        assert_eq!(status, StatusCode::OK);
        assert!(users.as_array().expect("list").iter().all(|u| u["isDemo"] == true));
        let res = demo
            .http
            .post(demo.url("/api/auth/demo-login"))
            .json(&json!({"userId": demo_user.id}))
            .send()
            .await
            .expect("req");
        assert_eq!(res.status(), StatusCode::OK);
        let cookie = cookie_of(&res).expect("cookie");
        let body: Value = res.json().await.expect("json");
        assert_eq!(
            (body["user"]["id"].as_str(), body["demoMode"].as_bool()),
            (Some(demo_user.id.to_string().as_str()), Some(true))
        );
        // Only demo users can be switched to.
        let res =
            demo.http.post(demo.url("/api/auth/demo-login")).json(&json!({"userId": demo.supervisor})).send().await;
        assert_eq!(res.expect("req").status(), StatusCode::NOT_FOUND);
        // A demo session stops working once the server runs without DEMO_MODE.
        let res = app.http.get(app.url("/api/me")).header("cookie", cookie).send().await.expect("req");
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn security_headers_on_ui_and_api() {
    let db = testing::sqlite().await;
    let app = spawn_with(&db, |c| c.livekit_url = Some("wss://voice.example.org".into())).await;
    for path in ["/", "/assignments/1", "/api/me"] {
        let res = app.as_user(app.counselor, app.http.get(app.url(path))).send().await.expect("req");
        let h = res.headers();
        let csp = h["content-security-policy"].to_str().expect("ascii");
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'self'"), "{csp}");
        assert!(csp.contains("connect-src 'self' wss://voice.example.org https://voice.example.org"), "{csp}");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "strict-origin-when-cross-origin");
    }
    let res = app.as_user(app.counselor, app.http.get(app.url("/api/me"))).send().await.expect("req");
    assert_eq!(res.headers()["cache-control"], "no-store");
}

/// Per client address, with backoff: over the limit an address is locked out for a window, and
/// locked out again soon after, for twice as long; other addresses are unaffected. Known and
/// unknown e-mails get the same answers, bodies included. Time is moved by ageing the windows.
#[tokio::test]
async fn login_lockouts_back_off_and_answer_alike() {
    for (backend, db) in testing::all().await {
        let app = spawn_with(&db, |c| {
            c.trusted_proxies = 1;
            c.rate_limits.login_per_ip = admin::config::Limit::new(6, 600); // spawn signs five users in
        })
        .await;
        let attempt = async |from: &str, email: &str| {
            let res = app
                .http
                .post(app.url("/api/auth/login"))
                .header("x-forwarded-for", from.to_owned())
                .json(&json!({"email": email, "password": "wrong password"}))
                .send()
                .await
                .expect("login");
            let status = res.status().as_u16();
            let retry = res.headers().get("retry-after").map(|v| v.to_str().expect("ascii").parse::<u64>().expect("s"));
            (status, retry, res.json::<Value>().await.expect("json"))
        };
        let known = app.emails[&app.counselor].clone();
        let unknown = format!("nobody-{}@example.org", Uuid::now_v7().simple());
        let ip = "198.51.100.7";
        let mut answers = Vec::new();
        for _ in 0..3 {
            answers.push(attempt(ip, &known).await);
            answers.push(attempt(ip, &unknown).await);
        }
        assert!(answers.iter().all(|(s, _, _)| *s == 401), "{backend:?}: {answers:?}");
        assert!(answers.windows(2).all(|w| w[0].2 == w[1].2), "{backend:?}: one body for known and unknown");
        let (status, first, body) = attempt(ip, &unknown).await;
        assert_eq!((status, body["error"].as_str()), (429, Some("rate_limited")), "{backend:?}");
        assert!((590..=600).contains(&first.expect("retry-after")), "{backend:?}: {first:?}");
        let (status, _, locked_body) = attempt(ip, &known).await;
        assert_eq!(status, 429, "{backend:?}: locked out for known e-mails too");
        assert_eq!(locked_body["error"], body["error"]);
        assert_eq!(attempt("198.51.100.8", &known).await.0, 401, "{backend:?}: another address is not locked out");

        // 700 s later: the lockout is over, the window too; six more tries, then a longer lockout.
        db.store.raw_execute("UPDATE rate_limits SET window_start = window_start - 700000").await.expect("age");
        for _ in 0..6 {
            assert_eq!(attempt(ip, &known).await.0, 401, "{backend:?}: the lockout ended");
        }
        let (status, second, _) = attempt(ip, &known).await;
        assert_eq!(status, 429, "{backend:?}");
        assert!((1190..=1200).contains(&second.expect("retry-after")), "{backend:?}: doubled: {second:?}");
    }
}

/// E-mail addresses sign in without naming an account, so they stay unique across accounts; a
/// taken address answers one generic 409 whichever account holds it, with no id, so a supervisor
/// cannot tell another center's user from their own account's.
#[tokio::test]
async fn a_taken_email_does_not_reveal_another_accounts_user() {
    let db = testing::sqlite().await;
    let app = spawn(&db).await;
    let theirs = app.emails[&app.counselor].clone(); // a user of the other account, to the outsider
    let body = |email: &str| json!({ "email": email, "displayName": "Someone", "role": "counselor" });
    let (status, elsewhere) = app.post(app.outsider, "/api/users", body(&theirs)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{elsewhere}");
    let own = app.emails[&app.outsider].clone();
    let (status, at_home) = app.post(app.outsider, "/api/users", body(&own)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{at_home}");
    assert_eq!(elsewhere, at_home, "the same answer whichever account holds the address");
    let text = elsewhere.to_string();
    assert!(!text.contains(&theirs) && !text.contains(&app.counselor.to_string()), "{text}");
    assert!(elsewhere.get("existingId").is_none(), "{text}");
}
