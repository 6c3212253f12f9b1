//! What operations read from and do to the database as a whole: the migration state
//! `proto-trainer doctor` reports, the job queue's depth and age the metrics gauges sample, and
//! SQLite's online backup (`VACUUM INTO`), which `proto-trainer backup` runs while the service
//! serves. PostgreSQL is backed up with its own tools (`pg_dump`), never here.

use std::path::Path;

use sqlx::Row;

use crate::db::{Backend, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS, Store};
use crate::domain::{JobKind, Timestamp};
use crate::error::{Error, Result};

/// Which embedded migrations a database has applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationState {
    /// Versions this binary carries and the database has not applied (oldest first).
    pub pending: Vec<i64>,
    /// Versions the database applied that this binary does not know: a newer release ran here.
    pub unknown: Vec<i64>,
    /// Applied and known.
    pub applied: usize,
    /// The newest version this binary carries.
    pub latest: i64,
}

impl MigrationState {
    pub fn current(&self) -> bool {
        self.pending.is_empty()
    }
}

impl Store {
    /// Per kind of job not yet done (queued or running): how many, and how long the oldest has
    /// waited since it was queued (milliseconds at `now`). Kinds with none are absent.
    pub async fn job_queue_stats(&self, now: Timestamp) -> Result<Vec<(JobKind, i64, i64)>> {
        let rows = sqlx::query(
            "SELECT kind, COUNT(*) AS n, MIN(created_at) AS oldest FROM jobs \
             WHERE status IN ('pending', 'running') GROUP BY kind",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for row in rows {
            let kind: String = row.try_get("kind")?;
            let kind = kind.parse::<JobKind>().map_err(|_| Error::Corrupt(format!("job kind {kind}")))?;
            let n: i64 = row.try_get("n")?;
            let oldest: i64 = row.try_get("oldest")?;
            out.push((kind, n, (now.millis() - oldest).max(0)));
        }
        Ok(out)
    }

    /// The embedded migrations against those the database recorded (`_sqlx_migrations`; a
    /// database that never migrated has none). Failed migrations count as not applied.
    pub async fn migration_state(&self) -> Result<MigrationState> {
        let migrator = match self.backend() {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        let known: Vec<i64> = migrator.iter().map(|m| m.version).collect();
        let table = match self.backend() {
            Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
            Backend::Postgres => "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = '_sqlx_migrations'",
        };
        let exists: i64 = sqlx::query(table).fetch_one(&self.pool).await?.try_get(0)?;
        let done: Vec<i64> = if exists > 0 {
            sqlx::query("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|row| row.try_get::<i64, _>(0))
                .collect::<Result<_, _>>()?
        } else {
            Vec::new()
        };
        Ok(MigrationState {
            pending: known.iter().copied().filter(|v| !done.contains(v)).collect(),
            unknown: done.iter().copied().filter(|v| !known.contains(v)).collect(),
            applied: done.iter().filter(|v| known.contains(v)).count(),
            latest: known.last().copied().unwrap_or(0),
        })
    }

    /// Writes a consistent copy of a SQLite database to `dest` (which must not exist) while
    /// other connections keep reading and writing: `VACUUM INTO` reads in one transaction, so the
    /// copy holds exactly the commits made before it started, and writers wait at most for the
    /// busy timeout. Returns the copy's size in bytes. PostgreSQL answers `Invalid`: its backup is
    /// `pg_dump`.
    pub async fn backup_sqlite(&self, dest: &Path) -> Result<u64> {
        if self.backend() != Backend::Sqlite {
            return Err(Error::invalid("DATABASE_URL", "only a SQLite database is backed up here; use pg_dump"));
        }
        let text = dest.to_str().ok_or_else(|| Error::invalid("file", "the backup path must be UTF-8"))?;
        if dest.exists() {
            return Err(Error::invalid("file", format!("{text} exists already; choose a new file")));
        }
        sqlx::query("VACUUM INTO $1").bind(text).execute(&self.pool).await?;
        let size = std::fs::metadata(dest).map_err(|e| Error::Corrupt(format!("the backup {text}: {e}")))?.len();
        Ok(size)
    }

    /// `PRAGMA integrity_check` on a SQLite database: `Ok` when it answers `ok`, else the
    /// problems it lists (a restore checks a backup file before it replaces anything).
    pub async fn integrity_check(&self) -> Result<()> {
        if self.backend() != Backend::Sqlite {
            return Ok(());
        }
        let rows = sqlx::query("PRAGMA integrity_check").fetch_all(&self.pool).await?;
        let lines: Vec<String> = rows.iter().filter_map(|r| r.try_get::<String, _>(0).ok()).collect();
        if lines.len() == 1 && lines[0] == "ok" { Ok(()) } else { Err(Error::Corrupt(lines.join("; "))) }
    }
}
