//! `cargo xtask bench api`: HTTP throughput and latency of list routes over 1,000 stored rows,
//! next to a bare axum "hello" handler measured in the same run on the same machine, so the
//! numbers say what the API costs above the HTTP stack. Client and server share the machine.
//!
//! Environment: `BENCH_SECONDS` per measurement (default 5), `BENCH_CONCURRENCY` (default 16),
//! `TEST_POSTGRES_URL` to also measure PostgreSQL.

use std::time::{Duration, Instant};

use store::testing::{self, TestDb};
use store::{NewUser, Role, ScenarioMode};

const ROWS: usize = 1_000;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
        let concurrency: usize = std::env::var("BENCH_CONCURRENCY").ok().and_then(|s| s.parse().ok()).unwrap_or(16);
        let duration = Duration::from_secs(seconds);
        println!(
            "bench api: {ROWS} scenarios and {ROWS} assignments, {concurrency} concurrent clients, {seconds}s each"
        );
        println!("{:<44} {:>10} {:>10} {:>10} {:>8}", "target", "req/s", "p50 ms", "p99 ms", "errors");

        let hello = hello_server().await;
        report("bare axum hello", &load(&format!("{hello}/"), None, concurrency, duration).await);

        let mut dbs = vec![("sqlite", testing::sqlite().await)];
        if let Some(pg) = testing::postgres().await {
            dbs.push(("postgres", pg));
        }
        for (name, db) in &dbs {
            let (base, supervisor) = seeded_app(db).await;
            for path in ["/api/scenarios", "/api/assignments", "/api/scenarios?limit=500"] {
                let stats = load(&format!("{base}{path}"), Some(&supervisor), concurrency, duration).await;
                report(&format!("{name} GET {path}"), &stats);
            }
        }
    });
}

struct Stats {
    count: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

fn report(name: &str, s: &Stats) {
    let pct = |p: f64| {
        let i = ((s.latencies.len() as f64 - 1.0) * p).round() as usize;
        s.latencies.get(i).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(f64::NAN)
    };
    println!(
        "{name:<44} {:>10.0} {:>10.2} {:>10.2} {:>8}",
        s.count as f64 / s.elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        s.errors
    );
}

/// Closed-loop load: each client sends its next request when the last one answered.
async fn load(url: &str, user: Option<&str>, concurrency: usize, duration: Duration) -> Stats {
    let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build().expect("client");
    // Warm up connections and caches.
    for _ in 0..concurrency {
        let _ = request(&client, url, user).await;
    }
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, url, user) = (client.clone(), url.to_owned(), user.map(str::to_owned));
            tokio::spawn(async move {
                let (mut latencies, mut errors) = (Vec::new(), 0);
                while Instant::now() < deadline {
                    let t = Instant::now();
                    match request(&client, &url, user.as_deref()).await {
                        Ok(()) => latencies.push(t.elapsed()),
                        Err(()) => errors += 1,
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut stats = Stats { count: 0, errors: 0, elapsed: Duration::ZERO, latencies: Vec::new() };
    for task in tasks {
        let (latencies, errors) = task.await.expect("load task");
        stats.errors += errors;
        stats.latencies.extend(latencies);
    }
    stats.elapsed = start.elapsed();
    stats.count = stats.latencies.len();
    stats.latencies.sort();
    stats
}

/// `cookie` is a signed-in supervisor's session cookie: every measured request pays for the
/// session lookup, as real ones do.
async fn request(client: &reqwest::Client, url: &str, cookie: Option<&str>) -> Result<(), ()> {
    let mut req = client.get(url);
    if let Some(cookie) = cookie {
        req = req.header("cookie", cookie);
    }
    let res = req.send().await.map_err(|_| ())?;
    let ok = res.status().is_success();
    res.bytes().await.map_err(|_| ())?;
    if ok { Ok(()) } else { Err(()) }
}

async fn hello_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// Seeds 1,000 scenarios, each assigned to one counselor, and starts the app on a free port.
async fn seeded_app(db: &TestDb) -> (String, String) {
    let s = &db.store;
    let account = s.create_account("Bench Center").await.expect("account");
    let person = |email: &str, role| NewUser {
        email: email.into(),
        display_name: email.into(),
        role,
        external_id: None,
        is_demo: false,
    };
    let supervisor = s.create_user(account.id, person("sup@bench.test", Role::Supervisor)).await.expect("user");
    let counselor = s.create_user(account.id, person("c@bench.test", Role::Counselor)).await.expect("user");
    let mut rows = Vec::new();
    for i in 0..ROWS {
        let input = serde_json::json!({
            "title": format!("Scenario {i}"),
            "prompt": "You are a caller in distress; open slowly, respond to empathy.",
            "description": "Benchmark scenario", "mode": ScenarioMode::Phone, "category": "onboarding",
            "skills": ["active-listening", "risk-assessment"], "estimatedTime": 15,
        });
        rows.push((i + 1, Ok(serde_json::from_value(input).expect("input"))));
        if rows.len() == 100 {
            s.import_scenarios(account.id, None, std::mem::take(&mut rows)).await.expect("import");
        }
    }
    let filter = store::ScenarioFilter { limit: Some(500), ..Default::default() };
    let mut ids = Vec::new();
    for offset in [0, 500] {
        let page = store::ScenarioFilter { offset: Some(offset), ..filter.clone() };
        ids.extend(s.list_scenarios(account.id, &page).await.expect("list").into_iter().map(|x| x.id));
    }
    for chunk in ids.chunks(500) {
        let report = s.bulk_assign(account.id, None, chunk, &[counselor.id], None, None).await.expect("assign");
        assert_eq!(report.created.len(), chunk.len());
    }

    let password = "bench-password-not-secret";
    let hash = admin::auth::hash_password(password.into()).await.expect("hash");
    s.set_password(
        account.id,
        supervisor.id,
        &hash,
        None,
        None,
        &store::Audit::new(Some(account.id), None, "bench.password"),
    )
    .await
    .expect("password");

    let config = admin::Config::for_database(&db.url);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { admin::run(config, listener, std::future::pending()).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let res = reqwest::Client::new()
        .post(format!("{base}/api/auth/login"))
        .json(&serde_json::json!({"email": "sup@bench.test", "password": password}))
        .send()
        .await
        .expect("login");
    let cookie = res
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("session cookie")
        .to_owned();
    (base, cookie)
}
