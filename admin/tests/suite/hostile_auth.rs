//! Hostile input against sign-in, keys, cookies and tenancy (issue 22, parts 3 and 4), on every
//! backend: each attack the review found, answered with its 4xx, and `/healthz` fast throughout.
//! Figures (time to the first 429, memory under a login flood, `/healthz` latency) are printed;
//! `cargo test -p proto-trainer-admin --test suite -- hostile_auth:: --nocapture` shows them.

use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use store::testing;
use store::{NewSession, NewUser, Role, SessionKind};
use uuid::Uuid;

use crate::common::{App, PASSWORD, spawn, spawn_with};

use admin::config::Limit;

/// The longest `/healthz` may take while an attack runs: it answers from memory, so anything
/// near this means the attack starved the runtime. Generous: the suite runs its tests at once
/// on shared machines (alone, the service answers in a few milliseconds under the login flood).
const HEALTHZ_BUDGET: Duration = Duration::from_millis(1500);

/// A login with `X-Forwarded-For: <xff>`; answers the status.
async fn login_from(app: &App, xff: &str, email: &str, password: &str) -> StatusCode {
    app.http
        .post(app.url("/api/auth/login"))
        .header("x-forwarded-for", xff)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("login")
        .status()
}

/// The slowest of a few `/healthz` answers.
async fn healthz_worst(app: &App) -> Duration {
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        let start = Instant::now();
        let res = app.http.get(app.url("/healthz")).send().await.expect("healthz");
        assert_eq!(res.status(), StatusCode::OK);
        worst = worst.max(start.elapsed());
    }
    worst
}

/// Memory of this process from /proc (kB): the resident set now and its peak.
fn rss_kb() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A client rotating the address it claims in `X-Forwarded-For` still counts as one client: the
/// proxy's entry (the rightmost) is the one read. Also without a trusted proxy, where the header
/// is not read at all.
#[tokio::test]
async fn forwarded_for_rotation_is_throttled() {
    for proxies in [1, 0] {
        // A fresh database per setting: the harness's own sign-ins count for 127.0.0.1.
        for (backend, db) in testing::all().await {
            let app = spawn_with(&db, |c| {
                c.trusted_proxies = proxies;
                // The harness signs five users in from 127.0.0.1 first.
                c.rate_limits.login_per_ip = Limit::new(8, 600);
            })
            .await;
            let email = format!("nobody-{}@example.org", Uuid::now_v7().simple());
            let start = Instant::now();
            let mut answers = Vec::new();
            for i in 0..12 {
                // The client writes any first hop it likes; the proxy appends what it saw.
                let xff = format!("198.18.{}.{}, 203.0.113.50", i / 250, i % 250 + 1);
                let status = login_from(&app, &xff, &email, "wrong password").await;
                answers.push(status.as_u16());
                if status == StatusCode::TOO_MANY_REQUESTS {
                    break;
                }
            }
            println!(
                "{backend:?} TRUSTED_PROXIES={proxies}: XFF rotation answered {answers:?}; first 429 after {:?}",
                start.elapsed()
            );
            assert_eq!(answers.last(), Some(&429), "{backend:?} proxies={proxies}: {answers:?}");
            assert!(answers.len() <= 9, "{backend:?} proxies={proxies}: {answers:?}");
            assert!(healthz_worst(&app).await < HEALTHZ_BUDGET);
        }
    }
}

/// An IPv6 client owns a /64: rotating the interface id is one network.
#[tokio::test]
async fn ipv6_rotation_within_a_64_is_throttled() {
    for (backend, db) in testing::all().await {
        let app = spawn_with(&db, |c| {
            c.trusted_proxies = 1;
            c.rate_limits.login_per_ip = Limit::new(6, 600);
        })
        .await;
        let email = format!("nobody-{}@example.org", Uuid::now_v7().simple());
        let mut answers = Vec::new();
        for i in 1..=8u32 {
            let xff = format!("2001:db8:77:1:{:x}:{:x}::{:x}", i * 7919, (i * 104_729) & 0xffff, i);
            answers.push(login_from(&app, &xff, &email, "wrong password").await.as_u16());
        }
        assert_eq!(answers, [401, 401, 401, 401, 401, 401, 429, 429], "{backend:?}");
        // Another /64 is another network.
        assert_eq!(login_from(&app, "2001:db8:77:2::1", &email, "wrong password").await, StatusCode::UNAUTHORIZED);
        // An IPv4-mapped address is its IPv4 address.
        let mut mapped = Vec::new();
        for _ in 0..7 {
            mapped.push(login_from(&app, "::ffff:192.0.2.9", &email, "wrong password").await.as_u16());
        }
        assert_eq!(mapped, [401, 401, 401, 401, 401, 401, 429], "{backend:?}");
        assert_eq!(login_from(&app, "192.0.2.9", &email, "wrong password").await, StatusCode::TOO_MANY_REQUESTS);
    }
}

/// One e-mail guessed from many addresses hits the per-e-mail limit, known or not; failed
/// sign-ins across an account's users from many addresses hit the per-account limit, which
/// leaves other accounts alone.
#[tokio::test]
async fn per_email_and_per_account_limits() {
    for (backend, db) in testing::all().await {
        let app = spawn_with(&db, |c| {
            c.trusted_proxies = 1;
            c.rate_limits.login_per_email = Limit::new(4, 600);
        })
        .await;
        // A user the harness has not signed in (its sign-ins count for the others' e-mails).
        let known = format!("quiet-{}@example.org", Uuid::now_v7().simple());
        let user = NewUser {
            email: known.clone(),
            display_name: "Quiet Counselor".into(),
            role: Role::Counselor,
            external_id: None,
            is_demo: false,
        };
        let user = app.store.create_user(app.account, user).await.expect("user");
        let hash = admin::auth::hash_password(PASSWORD.into()).await.expect("hash");
        let audit = store::Audit::new(Some(app.account), None, "test.password");
        app.store.set_password(app.account, user.id, &hash, None, None, &audit).await.expect("password");
        let unknown = format!("nobody-{}@example.org", Uuid::now_v7().simple());
        for email in [&known, &unknown] {
            let mut answers = Vec::new();
            for i in 1..=6 {
                answers.push(login_from(&app, &format!("198.51.100.{i}"), email, "wrong password").await.as_u16());
            }
            assert_eq!(answers, [401, 401, 401, 401, 429, 429], "{backend:?}: {email}");
        }
        assert_eq!(
            login_from(&app, "198.51.100.99", &app.emails[&app.supervisor], PASSWORD).await,
            StatusCode::OK,
            "other users are not affected"
        );

        let app = spawn_with(&db, |c| {
            c.trusted_proxies = 1;
            c.rate_limits.login_per_account = Limit::new(5, 600);
        })
        .await;
        let users = [app.admin, app.supervisor, app.counselor, app.other_counselor];
        let mut answers = Vec::new();
        for i in 0..6 {
            let email = &app.emails[&users[i % users.len()]];
            answers.push(login_from(&app, &format!("192.0.2.{}", i + 1), email, "wrong password").await.as_u16());
        }
        assert_eq!(answers, [401, 401, 401, 401, 401, 429], "{backend:?}");
        // Even the right password waits: the answer must not tell a right guess from a wrong one.
        assert_eq!(
            login_from(&app, "192.0.2.77", &app.emails[&app.counselor], PASSWORD).await,
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            login_from(&app, "192.0.2.78", &app.emails[&app.outsider], PASSWORD).await,
            StatusCode::OK,
            "another account signs in"
        );
    }
}

/// 256 concurrent logins: argon2id runs behind a semaphore, so memory stays bounded (each hash
/// takes 19 MiB; unbounded this was gigabytes) and `/healthz` stays fast.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_flood_keeps_memory_bounded() {
    for (backend, db) in testing::all().await {
        let app = spawn(&db).await;
        let email = app.emails[&app.counselor].clone();
        let (rss_before, _) = rss_kb();
        let start = Instant::now();
        let flood = futures::stream::iter(0..256)
            .map(|_| async {
                app.http
                    .post(app.url("/api/auth/login"))
                    .json(&json!({"email": email, "password": "wrong password"}))
                    .send()
                    .await
                    .expect("login")
                    .status()
            })
            .buffer_unordered(256)
            .collect::<Vec<_>>();
        let probe = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            healthz_worst(&app).await
        };
        let (statuses, healthz) = tokio::join!(flood, probe);
        let (_, peak) = rss_kb();
        assert!(statuses.iter().all(|s| *s == StatusCode::UNAUTHORIZED), "{backend:?}");
        let grew_mib = peak.saturating_sub(rss_before) / 1024;
        println!(
            "{backend:?}: 256 concurrent logins in {:?}; RSS {} MiB before, peak {} MiB (+{grew_mib} MiB); /healthz worst {healthz:?} during the flood",
            start.elapsed(),
            rss_before / 1024,
            peak / 1024
        );
        // 256 x 19 MiB would be 4.75 GiB; one hash per CPU is tens of MiB.
        assert!(grew_mib < 1024, "{backend:?}: the peak grew {grew_mib} MiB");
        assert!(healthz < HEALTHZ_BUDGET, "{backend:?}: /healthz took {healthz:?} during the flood");
    }
}

/// A flood of wrong internal service keys: 401s until the network's limit, then 429 for every
/// key, the right one included; `/healthz` stays fast. A key shorter than 32 characters refuses
/// to start.
#[tokio::test]
async fn wrong_internal_keys_are_throttled() {
    let key = "internal-key-for-hostile-tests-0123456789";
    for (backend, db) in testing::all().await {
        let app = spawn_with(&db, |c| {
            c.internal_service_key = Some(admin::Secret::new(key));
            c.rate_limits.internal_key_failures = Limit::new(10, 60);
        })
        .await;
        let body = json!({"accountId": app.account, "userId": app.counselor});
        let start = Instant::now();
        let statuses: Vec<u16> = futures::stream::iter(0..1000)
            .map(|i| {
                let req = app
                    .http
                    .post(app.url("/api/internal/sessions"))
                    .header("x-internal-service-key", format!("guess-{i}"))
                    .json(&body);
                async move { req.send().await.expect("internal").status().as_u16() }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        let elapsed = start.elapsed();
        let unauthorized = statuses.iter().filter(|s| **s == 401).count();
        let limited = statuses.iter().filter(|s| **s == 429).count();
        println!("{backend:?}: 1000 wrong internal keys in {elapsed:?}: {unauthorized} x 401, {limited} x 429");
        // Concurrent guesses may each pass the check before the tenth failure is counted.
        assert!((10..=26).contains(&unauthorized), "{backend:?}: {unauthorized} x 401");
        assert_eq!(unauthorized + limited, 1000, "{backend:?}");
        let res = app
            .http
            .post(app.url("/api/internal/sessions"))
            .header("x-internal-service-key", key)
            .json(&body)
            .send()
            .await
            .expect("internal");
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "{backend:?}: the right key waits too");
        assert!(res.headers().contains_key("retry-after"));
        // No key at all guesses nothing and is a plain 401.
        let res = app.http.post(app.url("/api/internal/sessions")).json(&body).send().await.expect("internal");
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert!(healthz_worst(&app).await < HEALTHZ_BUDGET);
    }
    let short = admin::Config::from_lookup(|name| (name == "INTERNAL_SERVICE_KEY").then(|| "x".repeat(31))).err();
    assert_eq!(short.map(|e| e.name), Some("INTERNAL_SERVICE_KEY"), "a short key refuses to start");
    let one = admin::Config::from_lookup(|name| (name == "INTERNAL_SERVICE_KEY").then(|| "k".into())).err();
    assert_eq!(one.map(|e| e.name), Some("INTERNAL_SERVICE_KEY"), "the one-character key the review used");
    assert!(admin::Config::from_lookup(|name| (name == "INTERNAL_SERVICE_KEY").then(|| "x".repeat(32))).is_ok());
}

/// With `INTERNAL_ADDR` the internal API answers only there, and that address answers nothing
/// else; `/metrics` needs its token on the public listener and none on `METRICS_ADDR`.
#[tokio::test]
async fn internal_api_and_metrics_listen_apart() {
    let key = "internal-key-for-hostile-tests-0123456789";
    let free = || {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let (internal_addr, metrics_addr) = (free(), free());
    let db = testing::sqlite().await;
    let app = spawn_with(&db, |c| {
        c.internal_service_key = Some(admin::Secret::new(key));
        c.internal_addr = Some(internal_addr);
        c.metrics_addr = Some(metrics_addr);
        c.metrics_token = Some(admin::Secret::new("metrics-token-for-tests"));
    })
    .await;
    let body = json!({"accountId": app.account, "userId": app.counselor});
    let create = |base: String| {
        app.http.post(format!("{base}/api/internal/sessions")).header("x-internal-service-key", key).json(&body).send()
    };
    assert_eq!(create(app.base.clone()).await.expect("public").status(), StatusCode::NOT_FOUND);
    assert_eq!(create(format!("http://{internal_addr}")).await.expect("internal").status(), StatusCode::CREATED);
    let me = app.http.get(format!("http://{internal_addr}/api/me")).send().await.expect("me");
    assert_eq!(me.status(), StatusCode::NOT_FOUND, "the internal address serves the internal API only");
    let health = app.http.get(format!("http://{internal_addr}/healthz")).send().await.expect("healthz");
    assert_eq!(health.status(), StatusCode::OK);

    let metrics = |token: Option<&str>| {
        let req = app.http.get(app.url("/metrics"));
        let req = match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        async move { req.send().await.expect("metrics").status() }
    };
    assert_eq!(metrics(None).await, StatusCode::UNAUTHORIZED);
    assert_eq!(metrics(Some("wrong")).await, StatusCode::UNAUTHORIZED);
    assert_eq!(metrics(Some("metrics-token-for-tests")).await, StatusCode::OK);
    let scraped = app.http.get(format!("http://{metrics_addr}/metrics")).send().await.expect("metrics listener");
    assert_eq!(scraped.status(), StatusCode::OK);
    assert!(scraped.text().await.expect("text").contains("http_requests_total"));
    // Without a token configured, the public listener never serves them.
    let plain = spawn(&db).await;
    let res = plain.http.get(plain.url("/metrics")).bearer_auth("").send().await.expect("metrics");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

/// Under secure cookies only `__Host-pt_session` is read: a plain `pt_session` (which a sibling
/// subdomain or a plain-HTTP answer could plant) is ignored, first or not. HSTS comes with an
/// https `PUBLIC_URL`; `Config`'s Debug hides the database password.
#[tokio::test]
async fn plain_cookie_is_ignored_under_secure_cookies() {
    for (backend, db) in testing::all().await {
        let app = spawn_with(&db, |c| {
            c.cookie_secure = true;
            c.public_url = Some("https://trainer.example.org".into());
        })
        .await;
        let creds = &app.creds[&app.counselor];
        let token = creds.cookie.strip_prefix("__Host-pt_session=").expect("the secure cookie name").to_owned();
        let me = async |cookie: String| {
            app.http.get(app.url("/api/me")).header("cookie", cookie).send().await.expect("me").status()
        };
        assert_eq!(me(format!("pt_session={token}")).await, StatusCode::UNAUTHORIZED, "{backend:?}");
        assert_eq!(me(format!("__Host-pt_session={token}")).await, StatusCode::OK);
        // A planted plain cookie first no longer decides who the request is.
        let other = app.creds[&app.supervisor].cookie.strip_prefix("__Host-pt_session=").expect("name").to_owned();
        let res = app
            .http
            .get(app.url("/api/me"))
            .header("cookie", format!("pt_session={other}; __Host-pt_session={token}"))
            .send()
            .await
            .expect("me");
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["user"]["id"], json!(app.counselor));
        let res = app.http.get(app.url("/healthz")).send().await.expect("healthz");
        assert_eq!(res.headers()["strict-transport-security"], "max-age=31536000");
    }
    let plain = spawn(&testing::sqlite().await).await;
    let res = plain.http.get(plain.url("/healthz")).send().await.expect("healthz");
    assert!(!res.headers().contains_key("strict-transport-security"), "no HSTS without an https PUBLIC_URL");
    let config = admin::Config::from_lookup(|name| {
        (name == "DATABASE_URL").then(|| "postgres://trainer:hunter2-db-secret@db.internal:5432/trainer".into())
    })
    .expect("valid");
    let debug = format!("{config:?}");
    assert!(!debug.contains("hunter2-db-secret"), "{debug}");
    assert!(debug.contains("db.internal:5432/trainer"));
}

/// Accounts are an operator's to create: the API has no route for it (an admin got the new
/// account's admin password). A 409 on a taken e-mail says nothing of whose it is.
#[tokio::test]
async fn account_creation_is_refused_and_conflicts_leak_nothing() {
    for (backend, db) in testing::all().await {
        let app = spawn(&db).await;
        let before = app.store.list_accounts().await.expect("accounts").len();
        let new_center = json!({"name": "Shadow Center", "adminEmail": "shadow@example.org", "adminName": "S"});
        let (status, _) = app.post(app.admin, "/api/accounts", new_center).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{backend:?}");
        assert_eq!(app.store.list_accounts().await.expect("accounts").len(), before, "no account was made");

        let outsider_email = app.emails[&app.outsider].clone();
        let own_email = app.emails[&app.counselor].clone();
        let mut bodies = Vec::new();
        for email in [&outsider_email, &own_email] {
            let (status, body) = app
                .post(app.admin, "/api/users", json!({"email": email, "displayName": "Dup", "role": "counselor"}))
                .await;
            assert_eq!(status, StatusCode::CONFLICT, "{backend:?}");
            let text = body.to_string();
            assert!(!text.contains(email.as_str()) && !text.contains("Other"), "{backend:?}: {text}");
            bodies.push(body);
        }
        assert_eq!(bodies[0], bodies[1], "another account's user answers as this account's");
    }
}

/// One-time passwords: only an admin sees them, they expire, and a supervisor cannot hand one
/// out.
#[tokio::test]
async fn one_time_passwords_expire_and_stay_with_admins() {
    for (backend, db) in testing::all().await {
        let app = spawn(&db).await;
        let new = |role: &str| json!({"email": format!("otp-{}@example.org", Uuid::now_v7().simple()), "displayName": "New", "role": role});
        let (status, by_supervisor) = app.post(app.supervisor, "/api/users", new("counselor")).await;
        assert_eq!(status, StatusCode::CREATED, "{backend:?}");
        assert!(by_supervisor.get("temporaryPassword").is_none(), "{backend:?}: {by_supervisor}");
        let path = format!("/api/users/{}/password-reset", by_supervisor["id"].as_str().expect("id"));
        assert_eq!(app.post(app.supervisor, &path, json!({})).await.0, StatusCode::FORBIDDEN);
        let (status, reset) = app.post(app.admin, &path, json!({})).await;
        assert_eq!(status, StatusCode::OK);
        assert!(reset["temporaryPassword"].is_string());

        let (status, by_admin) = app.post(app.admin, "/api/users", new("counselor")).await;
        assert_eq!(status, StatusCode::CREATED);
        let email = by_admin["email"].as_str().expect("email").to_owned();
        let once = by_admin["temporaryPassword"].as_str().expect("an admin sees it").to_owned();
        assert!(app.login(&email, &once).await.is_ok(), "{backend:?}: a fresh one-time password signs in");
        // Its expiry passes.
        db.store
            .raw_execute(&format!(
                "UPDATE users SET password_expires_at = {} WHERE email = '{email}'",
                store::Timestamp::now().millis() - 1
            ))
            .await
            .expect("age");
        assert_eq!(app.login(&email, &once).await.expect_err("expired").0, StatusCode::UNAUTHORIZED, "{backend:?}");
    }
}

/// A supervisor cannot review their own session, and a counselor raises only the flag types
/// the API publishes for them.
#[tokio::test]
async fn self_review_and_unpublished_flag_types_are_refused() {
    for (backend, db) in testing::all().await {
        let app = spawn(&db).await;
        let session = |user| NewSession {
            user_id: user,
            assignment_id: None,
            scenario_id: None,
            kind: SessionKind::Chat,
            room_name: None,
        };
        let own = app.store.create_session(app.account, &session(app.supervisor)).await.expect("session");
        let (status, body) = app.post(app.supervisor, &format!("/api/sessions/{}/review", own.id), json!({})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{backend:?}: {body}");
        let theirs = app.store.create_session(app.account, &session(app.counselor)).await.expect("session");
        let (status, _) = app.post(app.supervisor, &format!("/api/sessions/{}/review", theirs.id), json!({})).await;
        assert_eq!(status, StatusCode::CONFLICT, "another's session gets as far as its (missing) evaluation");

        let flag = format!("/api/sessions/{}/flag", theirs.id);
        for unpublished in ["suicide_not_asked", "missed_rescue", "dismissive_language", "made_up"] {
            let (status, body) =
                app.post(app.counselor, &flag, json!({"details": "the caller hung up", "flagType": unpublished})).await;
            assert!(
                status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::BAD_REQUEST,
                "{backend:?}: {unpublished} answered {status}: {body}"
            );
        }
        for published in ["ai_caller_problem", "caller_inconsistency", "other"] {
            let (status, body) =
                app.post(app.counselor, &flag, json!({"details": "the caller hung up", "flagType": published})).await;
            assert_eq!(status, StatusCode::CREATED, "{backend:?}: {published}: {body}");
        }
        assert!(healthz_worst(&app).await < HEALTHZ_BUDGET);
    }
}
