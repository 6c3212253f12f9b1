//! Connecting, migrating, and the small helpers every query module shares for reading `AnyRow`s.

use std::str::FromStr;
use std::time::Duration;

use crate::domain::Timestamp;
use crate::error::{Error, Result};
use crate::ids::AccountId;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

pub(crate) static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
pub(crate) static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Backend::Postgres)
        } else {
            Err(Error::invalid("DATABASE_URL", "must start with sqlite: or postgres:"))
        }
    }
}

/// The handle to the database; cheap to clone (a pool inside).
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    backend: Backend,
    /// Wakes this process's job workers when a job is queued (`jobs.rs`).
    pub(crate) jobs_wake: std::sync::Arc<tokio::sync::Notify>,
    /// Voice starts of this process that may hold a connection at once ([`VOICE_STARTS`]).
    pub(crate) voice_starts: std::sync::Arc<tokio::sync::Semaphore>,
    /// Sign-in lookups of this process waiting to share a query (`sign_ins.rs`).
    pub(crate) sign_ins: std::sync::Arc<crate::sign_ins::SignIns>,
}

/// How many voice-session starts of one process may hold a pooled connection at once. A burst
/// of one counselor's requests queues on their user row; without a bound every queued request
/// would hold a connection while it waits, and the pool (8 on SQLite, 16 on PostgreSQL) would
/// have none left for anyone else. Starts are short transactions, so a few at a time is plenty.
pub const VOICE_STARTS: usize = 4;

impl Store {
    /// Opens a pool for `url` (`sqlite://path?mode=rwc` or `postgres://...`). For SQLite the
    /// parent directory is created, and every connection gets WAL, foreign keys and a busy
    /// timeout, so concurrent writers wait instead of failing.
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
        let pool = match backend {
            Backend::Sqlite => {
                let dir = sqlite_path(url).and_then(|p| p.parent().map(|p| p.to_owned()));
                if let Some(dir) = dir.filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(&dir)
                        .map_err(|e| Error::invalid("DATABASE_URL", format!("cannot create {}: {e}", dir.display())))?;
                }
                // sqlx pings a connection it takes from the idle queue; a SQLite connection is a
                // file and a thread, with no server or network to lose it, so the ping is only a
                // second thread hand-off per query.
                options
                    .test_before_acquire(false)
                    .max_connections(8)
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; \
                                 PRAGMA busy_timeout = 10000; PRAGMA synchronous = NORMAL;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect(url)
                    .await?
            }
            Backend::Postgres => options.max_connections(16).connect(url).await?,
        };
        Ok(Store {
            pool,
            backend,
            jobs_wake: Default::default(),
            voice_starts: std::sync::Arc::new(tokio::sync::Semaphore::new(VOICE_STARTS)),
            sign_ins: Default::default(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies the embedded migrations of this backend; safe to run at every start.
    pub async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await?,
        }
        Ok(())
    }

    /// Readiness: the database answers a trivial query.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Starts a write transaction. On SQLite it takes the write lock up front (`BEGIN IMMEDIATE`):
    /// a deferred transaction that reads and then writes can fail with SQLITE_BUSY when another
    /// writer got in between, where an immediate one just waits its turn.
    pub(crate) async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(tx)
    }
}

/// A row lock on PostgreSQL, nothing on SQLite: appended to a SELECT whose rows a read-then-write
/// transaction decides on, so the rule holds under read committed as it does under SQLite's
/// `BEGIN IMMEDIATE`, which already serialises writers (and has no row locks to ask for).
/// `NO KEY UPDATE` because we never change keys: it still excludes other lockers and writers of
/// the row but not the key-share locks foreign-key checks take, so inserts that merely
/// reference the row do not queue behind it (nor deadlock with it).
pub(crate) fn for_update(conn: &sqlx::AnyConnection) -> &'static str {
    if conn.backend_name().eq_ignore_ascii_case("sqlite") { "" } else { " FOR NO KEY UPDATE" }
}

/// Locks rows of `table` by id in id order (one global order, so two transactions locking
/// overlapping sets cannot deadlock).
pub(crate) async fn lock_ids(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    table: &'static str,
    ids: &[impl std::fmt::Display],
) -> Result<()> {
    if for_update(tx).is_empty() {
        return Ok(());
    }
    let mut sorted: Vec<String> = ids.iter().map(ToString::to_string).collect();
    sorted.sort();
    sorted.dedup();
    let sql = format!("SELECT id FROM {table} WHERE id = $1{}", for_update(tx));
    for id in sorted {
        sqlx::query(&sql).bind(id).fetch_optional(&mut **tx).await?;
    }
    Ok(())
}

/// Locks one account's row for the rest of the transaction: rules that count rows across the
/// account (its last admin, its category order) serialise on it.
pub(crate) async fn lock_account(tx: &mut sqlx::Transaction<'static, sqlx::Any>, account_id: AccountId) -> Result<()> {
    let sql = format!("SELECT id FROM accounts WHERE id = $1{}", for_update(tx));
    sqlx::query(&sql).bind(account_id.to_string()).fetch_optional(&mut **tx).await?;
    Ok(())
}

impl Error {
    /// Whether this error means the database cannot be reached (down, restarting, the pool
    /// exhausted or closed), rather than a fault of the request or the data: the service then
    /// answers 503 and background loops back off. SQLSTATE class 08 is a connection exception;
    /// 57P01-57P03 are an administrator's shutdown, a crash shutdown and "cannot connect now".
    pub fn database_unreachable(&self) -> bool {
        match self {
            Error::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed,
            ) => true,
            Error::Database(sqlx::Error::Database(db)) => db
                .code()
                .is_some_and(|code| code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03")),
            _ => false,
        }
    }
}

/// The file a `sqlite:` URL names (`None` for in-memory databases and other backends).
pub fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then(|| path.into())
}

/// Typed reads from an `AnyRow`, turning a bad stored value into [`Error::Corrupt`].
pub(crate) trait RowExt {
    /// A UUID column, as a bare [`uuid::Uuid`] or any typed id (`crate::ids`).
    fn uuid<T: FromStr>(&self, col: &str) -> Result<T>;
    fn opt_uuid<T: FromStr>(&self, col: &str) -> Result<Option<T>>;
    fn text(&self, col: &str) -> Result<String>;
    fn opt_text(&self, col: &str) -> Result<Option<String>>;
    fn int(&self, col: &str) -> Result<i64>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>>;
    fn float(&self, col: &str) -> Result<f64>;
    fn flag(&self, col: &str) -> Result<bool>;
    fn ts(&self, col: &str) -> Result<Timestamp>;
    fn opt_ts(&self, col: &str) -> Result<Option<Timestamp>>;
    fn parsed<T: FromStr>(&self, col: &str) -> Result<T>;
    fn opt_parsed<T: FromStr>(&self, col: &str) -> Result<Option<T>>;
    fn json<T: serde::de::DeserializeOwned>(&self, col: &str) -> Result<T>;
}

fn corrupt(col: &str, why: impl std::fmt::Display) -> Error {
    Error::Corrupt(format!("column {col}: {why}"))
}

impl RowExt for AnyRow {
    fn uuid<T: FromStr>(&self, col: &str) -> Result<T> {
        self.parsed(col)
    }
    fn opt_uuid<T: FromStr>(&self, col: &str) -> Result<Option<T>> {
        self.opt_parsed(col)
    }
    fn text(&self, col: &str) -> Result<String> {
        self.try_get::<String, _>(col).map_err(|e| corrupt(col, e))
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>> {
        self.try_get::<Option<String>, _>(col).map_err(|e| corrupt(col, e))
    }
    fn int(&self, col: &str) -> Result<i64> {
        self.try_get::<i64, _>(col).map_err(|e| corrupt(col, e))
    }
    fn opt_int(&self, col: &str) -> Result<Option<i64>> {
        self.try_get::<Option<i64>, _>(col).map_err(|e| corrupt(col, e))
    }
    fn float(&self, col: &str) -> Result<f64> {
        self.try_get::<f64, _>(col).map_err(|e| corrupt(col, e))
    }
    fn flag(&self, col: &str) -> Result<bool> {
        // SQLite hands booleans back as integers through `Any`; accept both.
        self.try_get::<bool, _>(col)
            .or_else(|_| self.try_get::<i64, _>(col).map(|v| v != 0))
            .map_err(|e| corrupt(col, e))
    }
    fn ts(&self, col: &str) -> Result<Timestamp> {
        self.int(col).map(Timestamp::from_millis)
    }
    fn opt_ts(&self, col: &str) -> Result<Option<Timestamp>> {
        Ok(self.opt_int(col)?.map(Timestamp::from_millis))
    }
    fn parsed<T: FromStr>(&self, col: &str) -> Result<T> {
        let text = self.text(col)?;
        text.parse().map_err(|_| corrupt(col, format!("unexpected value `{text}`")))
    }
    fn opt_parsed<T: FromStr>(&self, col: &str) -> Result<Option<T>> {
        match self.opt_text(col)? {
            None => Ok(None),
            Some(text) => text.parse().map(Some).map_err(|_| corrupt(col, format!("unexpected value `{text}`"))),
        }
    }
    fn json<T: serde::de::DeserializeOwned>(&self, col: &str) -> Result<T> {
        serde_json::from_str(&self.text(col)?).map_err(|e| corrupt(col, e))
    }
}

/// `text` with `%`, `_` and `\` escaped, for a LIKE pattern used with `ESCAPE '\'`.
pub(crate) fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A case-insensitive "contains" pattern (`%needle%`, lowercased) for `ESCAPE '\'`.
pub(crate) fn like_pattern(needle: &str) -> String {
    format!("%{}%", like_escape(&needle.to_lowercase()))
}

/// `$first, $first+1, ...` (`n` placeholders), for an `IN (...)` list bound in that order.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// How many ids one `IN (...)` list binds: a list page at most, well within both databases'
/// limits on bound parameters.
pub(crate) const IN_LIST_MAX: usize = 500;

/// A list page: size 1 to 500 (default 100) and a non-negative offset.
pub(crate) fn page(limit: Option<i64>, offset: Option<i64>) -> (i64, i64) {
    (limit.unwrap_or(100).clamp(1, 500), offset.unwrap_or(0).max(0))
}
