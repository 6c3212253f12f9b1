//! The operator's commands: `doctor` against a good installation (SQLite, the simulator as
//! OpenAI) and against broken ones, each named in its words; `backup` taken while a call writes
//! turns and `restore` of it, which finds every turn stored before the backup, and restore's
//! refusals.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use admin::doctor::Status;
use openai_sim::{Fault, Rule, Simulator};
use store::testing;

use crate::common;

/// The variables of a good installation: `db`, the simulator, a writable recordings folder.
fn good_env(db_url: &str, sim: &Simulator, recordings: &std::path::Path) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", db_url.to_owned()),
        ("OPENAI_BASE_URL", sim.base_url()),
        ("OPENAI_API_KEY", "sk-doctor-test".to_owned()),
        ("RECORDINGS_DIR", recordings.display().to_string()),
    ]
}

async fn doctor(vars: &[(&'static str, String)]) -> admin::doctor::Report {
    admin::doctor::run(|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())).await
}

#[tokio::test]
async fn doctor_passes_a_good_installation() {
    let db = testing::sqlite().await;
    let sim = Simulator::start().await.expect("sim");
    let dir = tempfile::tempdir().expect("tempdir");
    let report = doctor(&good_env(&db.url, &sim, &dir.path().join("recordings"))).await;
    let text = report.render();
    assert!(!report.failed(), "{text}");
    for part in ["config", "database", "openai", "clock"] {
        assert_eq!(report.find(part).map(|f| f.status), Some(Status::Ok), "{part}: {text}");
    }
    assert!(text.contains("schema current"), "{text}");
    assert!(text.contains("key accepted"), "{text}");
    // The simulator's Date header was compared with this clock.
    assert!(report.find("clock").is_some_and(|f| f.detail.contains("openai")), "{text}");
    // Voice is not configured: said, not failed.
    assert_eq!(report.find("livekit").map(|f| f.status), Some(Status::Skipped), "{text}");
    assert!(text.contains("No problems found."), "{text}");
    // The models endpoint was asked with the key.
    let asked = sim.requests();
    assert!(asked.iter().any(|r| r.path.ends_with("/models")), "{asked:?}");
}

#[tokio::test]
async fn doctor_names_each_broken_part_and_how_to_fix_it() {
    let db = testing::sqlite().await;
    let sim = Simulator::start().await.expect("sim");
    let dir = tempfile::tempdir().expect("tempdir");
    let recordings = dir.path().join("recordings");
    let with = |name: &'static str, value: String| {
        let mut vars = good_env(&db.url, &sim, &recordings);
        vars.retain(|(k, _)| *k != name);
        vars.push((name, value));
        vars
    };

    // A database path where there is none.
    let missing = dir.path().join("nowhere/proto-trainer.db");
    let report = doctor(&with("DATABASE_URL", format!("sqlite://{}?mode=rwc", missing.display()))).await;
    let text = report.render();
    assert!(report.failed(), "{text}");
    let found = report.find("database").expect("database finding");
    assert_eq!(found.status, Status::Fail, "{text}");
    assert!(found.detail.contains("no database at") && found.detail.contains("nowhere"), "{text}");
    assert!(found.fix.as_deref().is_some_and(|f| f.contains("proto-trainer migrate")), "{text}");
    assert!(!missing.exists(), "the doctor must not create a database");

    // An empty database file: reachable, but never migrated.
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").expect("empty file");
    let report = doctor(&with("DATABASE_URL", format!("sqlite://{}", empty.display()))).await;
    let found = report.find("database").expect("database finding");
    assert_eq!(found.status, Status::Fail, "{}", report.render());
    assert!(found.detail.contains("not applied"), "{}", report.render());

    // An OpenAI endpoint nobody listens on.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    let report = doctor(&with("OPENAI_BASE_URL", format!("http://{closed}/v1"))).await;
    let found = report.find("openai").expect("openai finding");
    assert_eq!(found.status, Status::Fail, "{}", report.render());
    assert!(found.detail.contains("cannot reach"), "{}", report.render());
    assert!(found.fix.as_deref().is_some_and(|f| f.contains("OPENAI_BASE_URL")), "{}", report.render());

    // A key the endpoint refuses.
    sim.add_rule(Rule::models().fault(Fault::status(401)));
    let report = doctor(&good_env(&db.url, &sim, &recordings)).await;
    let found = report.find("openai").expect("openai finding");
    assert_eq!(found.status, Status::Fail, "{}", report.render());
    assert!(found.detail.contains("refused the key"), "{}", report.render());
    assert!(found.fix.as_deref().is_some_and(|f| f.contains("OPENAI_API_KEY")), "{}", report.render());
    sim.clear_rules();

    // A model the endpoint does not list.
    let report = doctor(&with("CHAT_MODEL", "gpt-nonexistent".into())).await;
    let found = report.find("openai").expect("openai finding");
    assert_eq!(found.status, Status::Fail, "{}", report.render());
    assert!(found.detail.contains("CHAT_MODEL=gpt-nonexistent"), "{}", report.render());

    // A LiveKit that refuses the key and secret (a stand-in answering Twirp's 401).
    let livekit = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let livekit_addr = livekit.local_addr().expect("addr");
    let seen_auth = Arc::new(std::sync::Mutex::new(None::<String>));
    let seen = seen_auth.clone();
    let app = axum::Router::new().route(
        "/twirp/livekit.RoomService/ListRooms",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let seen = seen.clone();
            async move {
                *seen.lock().expect("lock") =
                    headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
                (axum::http::StatusCode::UNAUTHORIZED, "invalid token")
            }
        }),
    );
    tokio::spawn(async move { axum::serve(livekit, app).await });
    let mut vars = good_env(&db.url, &sim, &recordings);
    vars.extend([
        ("LIVEKIT_URL", format!("ws://{livekit_addr}")),
        ("LIVEKIT_API_KEY", "APIdoctor".to_owned()),
        ("LIVEKIT_API_SECRET", "a-secret-that-the-server-does-not-know-0123456789".to_owned()),
    ]);
    let report = doctor(&vars).await;
    let found = report.find("livekit").expect("livekit finding");
    assert_eq!(found.status, Status::Fail, "{}", report.render());
    assert!(found.detail.contains("refused the API key and secret"), "{}", report.render());
    let auth = seen_auth.lock().expect("lock").clone().unwrap_or_default();
    assert!(auth.starts_with("Bearer ey"), "a signed token was sent: {auth}");
    assert!(!report.render().contains("a-secret-that"), "the secret is never printed");

    // Half a LiveKit configuration.
    let report = doctor(&with("LIVEKIT_URL", "ws://127.0.0.1:7880".into())).await;
    assert_eq!(report.find("livekit").map(|f| f.status), Some(Status::Fail), "{}", report.render());

    // A configuration that does not parse stops before anything else.
    let report = doctor(&with("PORT", "http".into())).await;
    assert_eq!(report.findings.len(), 1, "{}", report.render());
    assert!(report.render().contains("PORT"), "{}", report.render());
}

#[tokio::test]
async fn backup_during_a_call_restores_every_turn_stored_before_it() {
    let db = testing::sqlite().await;
    let app = common::spawn(&db).await;
    let new = store::NewSession {
        user_id: app.counselor,
        assignment_id: None,
        scenario_id: None,
        kind: store::SessionKind::Chat,
        room_name: None,
    };
    let session = db.store.create_session(app.account, &new).await.expect("session").id;

    // The call: turns written one by one, as the agent's turn writer does, while the service runs.
    let stored = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, account, stored, stop) = (db.store.clone(), app.account, stored.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let turn = store::NewTurn {
                    speaker: if n.is_multiple_of(2) { store::Speaker::Caller } else { store::Speaker::Counselor },
                    text: format!("turn {n}"),
                    started_ms: i64::try_from(n).expect("small") * 1000,
                    ended_ms: None,
                    segment_id: Some(format!("seg-{n}")),
                };
                store.append_turns(account, session, &[turn]).await.expect("append");
                n += 1;
                stored.store(n, Ordering::SeqCst);
            }
        })
    };
    let wait_for = async |at_least: usize| {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        while stored.load(Ordering::SeqCst) < at_least {
            assert!(tokio::time::Instant::now() < deadline, "the writer is stuck at {}", stored.load(Ordering::SeqCst));
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    };
    wait_for(30).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("backup.db");
    let before = stored.load(Ordering::SeqCst);
    let said = admin::backup::backup(&db.url, &file).await.expect("backup while writing");
    let after = stored.load(Ordering::SeqCst);
    assert!(said.contains("Backed up"), "{said}");
    // The call went on writing after the backup: the copy did not stop it.
    wait_for(after + 10).await;
    stop.store(true, Ordering::SeqCst);
    writer.await.expect("writer");

    // A second backup onto an existing file is refused (never overwrites).
    let again = admin::backup::backup(&db.url, &file).await.expect_err("existing file");
    assert!(again.to_string().contains("exists already"), "{again}");

    let target = dir.path().join("restored/proto-trainer.db");
    let target_url = format!("sqlite://{}?mode=rwc", target.display());
    let request =
        admin::backup::Restore { database_url: target_url.clone(), source: file.clone(), force: false, service: None };
    let said = admin::backup::restore(&request).await.expect("restore into a new place");
    assert!(said.contains("Restored"), "{said}");
    let restored = store::Store::connect(&target_url).await.expect("open restored");
    let turns = restored.transcript(&crate::common::session_ref(&restored, session).await).await.expect("transcript");
    assert!(turns.len() >= before, "every turn stored before the backup is there: {} < {before}", turns.len());
    assert!(turns.len() <= after, "nothing written after the backup returned: {} > {after}", turns.len());
    for (i, turn) in turns.iter().enumerate() {
        assert_eq!(turn.text, format!("turn {i}"), "turns in order, none missing");
    }
    assert!(restored.migration_state().await.expect("state").current());
    restored.close().await;

    // Over a database that holds data: only with --force, and the old file is kept.
    let refused = admin::backup::restore(&request).await.expect_err("target holds data");
    assert!(refused.to_string().contains("--force"), "{refused}");
    let said = admin::backup::restore(&admin::backup::Restore { force: true, ..request.clone() })
        .await
        .expect("forced restore");
    assert!(said.contains("previous database is kept"), "{said}");

    // While the service answers at its address: refused, whatever --force says.
    let addr = app.base.trim_start_matches("http://").parse().expect("addr");
    let refused = admin::backup::restore(&admin::backup::Restore {
        database_url: db.url.clone(),
        source: file.clone(),
        force: true,
        service: Some(addr),
    })
    .await
    .expect_err("service runs");
    assert!(refused.to_string().contains("the service is running"), "{refused}");

    // A file that is not a backup is refused before anything is replaced.
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, b"not a database at all, just words").expect("junk");
    let refused =
        admin::backup::restore(&admin::backup::Restore { source: junk, force: true, ..request.clone() }).await;
    assert!(refused.is_err(), "junk restored");
    let still = store::Store::connect(&target_url).await.expect("open");
    assert_eq!(
        still.transcript(&crate::common::session_ref(&still, session).await).await.expect("transcript").len(),
        turns.len(),
        "target untouched"
    );
    still.close().await;
}

#[tokio::test]
async fn postgres_backups_name_their_own_tools() {
    let url = "postgres://proto:secret@db.example.org/proto_trainer";
    let said = admin::backup::backup(url, std::path::Path::new("/tmp/x.dump")).await.expect_err("postgres");
    assert!(said.to_string().contains("pg_dump"), "{said}");
    let request =
        admin::backup::Restore { database_url: url.into(), source: "/tmp/x.dump".into(), force: false, service: None };
    let said = admin::backup::restore(&request).await.expect_err("postgres");
    assert!(said.to_string().contains("pg_restore"), "{said}");
    assert!(!said.to_string().contains("secret"), "the password is never printed");
}

/// A writer the JSON subscriber fills, for reading the lines back.
#[derive(Clone, Default)]
struct Lines(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn each_request_logs_its_id_account_user_and_session() {
    let db = testing::sqlite().await;
    let app = common::spawn(&db).await;
    let new = store::NewSession {
        user_id: app.counselor,
        assignment_id: None,
        scenario_id: None,
        kind: store::SessionKind::Chat,
        room_name: None,
    };
    let session = db.store.create_session(app.account, &new).await.expect("session").id;
    // JSON lines as LOG_FORMAT=json writes them, plus one line per closed span (its fields).
    // The test runtime has one thread, so the server's tasks log through this subscriber too.
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let req = app.http.get(app.url(&format!("/api/sessions/{session}"))).header("x-request-id", "support-ticket-77");
    let res = app.as_user(app.counselor, req).send().await.expect("request");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-request-id"], "support-ticket-77", "the id is answered back");

    // The span's closing line may be written just after the answer reached us: wait for it.
    let mut text = String::new();
    let mut spans: Vec<serde_json::Value> = Vec::new();
    for _ in 0..100 {
        text = String::from_utf8(lines.0.lock().expect("lock").clone()).expect("utf-8");
        spans = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["span"]["name"] == "request" && v["span"]["request_id"] == "support-ticket-77")
            .filter(|v| v["span"].get("account_id").is_some())
            .collect();
        if !spans.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let span = &spans.last().unwrap_or_else(|| panic!("no line of the request's span in:\n{text}"))["span"];
    assert_eq!(span["route"], "/api/sessions/{id}", "{text}");
    assert_eq!(span["session_id"], session.to_string(), "{text}");
    assert_eq!(span["account_id"], app.account.to_string(), "{text}");
    assert_eq!(span["user_id"], app.counselor.to_string(), "{text}");
}
