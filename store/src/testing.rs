//! Fresh, isolated stores for tests, one per backend: a new SQLite file, and a new PostgreSQL
//! database when `TEST_POSTGRES_URL` names a server. With `REQUIRE_POSTGRES=1` (as CI sets it) a
//! missing server fails the test instead of skipping that backend.

use std::path::PathBuf;

use crate::accounts::Account;
use crate::db::{Backend, Store};
use crate::domain::{Role, new_id};
use crate::users::{NewUser, User};

/// A migrated store that cleans up after itself (SQLite file) when dropped.
#[derive(Debug)]
pub struct TestDb {
    pub store: Store,
    pub url: String,
    sqlite_file: Option<PathBuf>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(path) = &self.sqlite_file {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
    }
}

pub async fn sqlite() -> TestDb {
    let path = std::env::temp_dir().join(format!("proto-trainer-test-{}.db", new_id()));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let store = Store::connect(&url).await.expect("open sqlite test database");
    store.migrate().await.expect("migrate sqlite test database");
    TestDb { store, url, sqlite_file: Some(path) }
}

/// A new database on the server named by `TEST_POSTGRES_URL` (a URL to an existing database
/// whose user may create databases).
pub async fn postgres() -> Option<TestDb> {
    let Ok(admin_url) = std::env::var("TEST_POSTGRES_URL") else {
        assert!(std::env::var("REQUIRE_POSTGRES").is_err(), "REQUIRE_POSTGRES is set but TEST_POSTGRES_URL is not");
        return None;
    };
    let name = format!("pt_test_{}", new_id().simple());
    let admin = Store::connect(&admin_url).await.expect("connect to TEST_POSTGRES_URL");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin.pool).await.expect("create test database");
    admin.close().await;
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin_url.as_str(), String::new()),
    };
    let base = base.rsplit_once('/').map(|(server, _db)| server).unwrap_or(base);
    let url = format!("{base}/{name}{query}");
    let store = Store::connect(&url).await.expect("connect to test database");
    store.migrate().await.expect("migrate postgres test database");
    Some(TestDb { store, url, sqlite_file: None })
}

/// One fresh store per available backend: SQLite always, PostgreSQL when configured.
pub async fn all() -> Vec<(Backend, TestDb)> {
    let mut out = vec![(Backend::Sqlite, sqlite().await)];
    if let Some(pg) = postgres().await {
        out.push((Backend::Postgres, pg));
    }
    out
}

/// The people most store tests start from: a new account (with the default categories), its
/// supervisor and two counselors, "casey" and "robin". Names and e-mails are unique per call, so
/// several fixtures can share one database.
#[derive(Debug)]
pub struct Fixture {
    pub account: Account,
    pub supervisor: User,
    pub counselor: User,
    pub other_counselor: User,
}

/// A new [`Fixture`] in `db`.
pub async fn fixture(db: &TestDb) -> Fixture {
    let s = &db.store;
    let account = s.create_account(&format!("Center {}", new_id())).await.expect("account");
    let user = |name: &str, role| NewUser {
        email: format!("{name}-{}@example.org", new_id().simple()),
        display_name: name.to_owned(),
        role,
        external_id: None,
        is_demo: false,
    };
    let supervisor = s.create_user(account.id, user("sup", Role::Supervisor)).await.expect("supervisor");
    let counselor = s.create_user(account.id, user("casey", Role::Counselor)).await.expect("counselor");
    let other_counselor = s.create_user(account.id, user("robin", Role::Counselor)).await.expect("counselor");
    Fixture { account, supervisor, counselor, other_counselor }
}

impl Store {
    /// Runs one SQL statement as-is: for tests that probe the schema's own constraints.
    /// Moves a session's clock back, as if `by_ms` had passed.
    pub async fn age_auth_sessions(&self, user_id: crate::ids::UserId, by_ms: i64) -> crate::error::Result<()> {
        sqlx::query(
            "UPDATE auth_sessions SET created_at = created_at - $1, last_seen_at = last_seen_at - $1, \
             expires_at = expires_at - $1 WHERE user_id = $2",
        )
        .bind(by_ms)
        .bind(user_id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn raw_execute(&self, sql: &str) -> crate::error::Result<()> {
        sqlx::query(sql).execute(&self.pool).await?;
        Ok(())
    }
}
