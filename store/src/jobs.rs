//! The durable job queue: background work recorded in the same transaction as its cause (an
//! ended voice call queues its evaluation) and drained by workers in every admin replica.
//!
//! A worker claims a due job with one conditional UPDATE (the row's `attempts` must still be what
//! it read), so of several workers racing for a row exactly one wins on both databases — on
//! PostgreSQL the loser's UPDATE waits for the winner's row lock, re-reads the row and matches
//! nothing. The claim is a lease (`locked_until`): a worker that dies mid-job leaves it to be
//! claimed again once the lease runs out.

use uuid::Uuid;

use crate::db::{RowExt, Store};
use crate::domain::{JobKind, JobStatus, Timestamp, new_id};
use crate::error::Result;
use crate::ids::{AccountId, SessionId};

/// A job handed to a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: Uuid,
    pub kind: JobKind,
    pub account_id: AccountId,
    pub session_id: SessionId,
    /// What in the session the job is about: the flag of a `notify_flag` job.
    pub subject: Option<Uuid>,
    /// Including this one.
    pub attempts: i64,
}

/// A job's state, for tests and operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobState {
    pub status: JobStatus,
    pub attempts: i64,
    pub last_error: Option<String>,
}

/// Queues a job unless one of its kind exists for the session (and `subject`, e.g. the flag of a
/// `notify_flag` job). Call it in the transaction of the change that causes the work, and wake the
/// workers ([`Store::wake_jobs`]) after the commit.
pub(crate) async fn enqueue_tx(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    kind: JobKind,
    account_id: AccountId,
    session_id: SessionId,
    subject: Option<Uuid>,
    run_after: i64,
) -> Result<()> {
    let now = Timestamp::now().millis();
    sqlx::query(
        "INSERT INTO jobs (id, kind, account_id, session_id, subject, status, attempts, run_after, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $7, $7) ON CONFLICT (session_id, kind, subject) DO NOTHING",
    )
    .bind(new_id().to_string())
    .bind(kind.as_str())
    .bind(account_id.to_string())
    .bind(session_id.to_string())
    .bind(subject.map(|s| s.to_string()).unwrap_or_default())
    .bind(run_after)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Queues a session's evaluation (a partner asked for it), or queues it again when an earlier
    /// one finished or gave up; a queued or running one is left alone.
    pub async fn queue_evaluation(&self, account_id: AccountId, session_id: SessionId) -> Result<()> {
        let now = Timestamp::now().millis();
        sqlx::query(
            "INSERT INTO jobs (id, kind, account_id, session_id, subject, status, attempts, run_after, created_at, updated_at) \
             SELECT $1, $2, account_id, id, '', 'pending', 0, $3, $3, $3 FROM sessions WHERE id = $4 AND account_id = $5 \
             ON CONFLICT (session_id, kind, subject) DO UPDATE SET status = 'pending', attempts = 0, run_after = $3, \
             locked_until = NULL, last_error = NULL, updated_at = $3 WHERE jobs.status IN ('done', 'failed')",
        )
        .bind(new_id().to_string())
        .bind(JobKind::EvaluateSession.as_str())
        .bind(now)
        .bind(session_id.to_string())
        .bind(account_id.to_string())
        .execute(&self.pool)
        .await?;
        self.wake_jobs();
        Ok(())
    }
}

const DUE: &str = "((status = 'pending' AND run_after <= $1) OR (status = 'running' AND locked_until < $1))";

impl Store {
    /// Resolves when a job may have been queued by this process (the in-process wake-up; other
    /// replicas' jobs are found by polling).
    pub fn job_queued(&self) -> tokio::sync::futures::Notified<'_> {
        self.jobs_wake.notified()
    }

    /// Wakes this process's workers: call it after committing a transaction that queued a job.
    pub fn wake_jobs(&self) {
        self.jobs_wake.notify_waiters();
    }

    /// Claims up to `limit` due jobs for `worker`, each leased for `lease_ms`.
    pub async fn claim_jobs(&self, worker: &str, lease_ms: i64, limit: i64) -> Result<Vec<Job>> {
        let now = Timestamp::now().millis();
        let rows = sqlx::query(&format!(
            "SELECT id, kind, account_id, session_id, subject, attempts FROM jobs WHERE {DUE} ORDER BY run_after, id LIMIT $2"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut claimed = Vec::new();
        for row in rows {
            let attempts = row.int("attempts")?;
            let done = sqlx::query(&format!(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_until = $2, locked_by = $3, \
                 updated_at = $1 WHERE id = $4 AND attempts = $5 AND {DUE}"
            ))
            .bind(now)
            .bind(now + lease_ms)
            .bind(worker)
            .bind(row.text("id")?)
            .bind(attempts)
            .execute(&self.pool)
            .await?;
            if done.rows_affected() == 1 {
                claimed.push(Job {
                    id: row.uuid("id")?,
                    kind: row.parsed("kind")?,
                    account_id: row.uuid("account_id")?,
                    session_id: row.uuid("session_id")?,
                    subject: match row.text("subject")?.as_str() {
                        "" => None,
                        s => Some(s.parse().map_err(|_| crate::error::Error::Corrupt(format!("job subject {s}")))?),
                    },
                    attempts: attempts + 1,
                });
            }
        }
        Ok(claimed)
    }

    /// Marks a claimed job done (with a note when it finished without doing its work, e.g. a call
    /// with nothing to grade). A worker whose lease was taken over changes nothing.
    pub async fn complete_job(&self, job: &Job, worker: &str, note: Option<&str>) -> Result<()> {
        sqlx::query(
            "UPDATE jobs SET status = 'done', locked_until = NULL, last_error = $1, updated_at = $2 \
             WHERE id = $3 AND locked_by = $4 AND attempts = $5",
        )
        .bind(note)
        .bind(Timestamp::now().millis())
        .bind(job.id.to_string())
        .bind(worker)
        .bind(job.attempts)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Extends a claimed job's lease to `lease_ms` from now, for long jobs that work in steps (a
    /// test run's call). Answers false when the lease was taken over: the job is someone else's
    /// now and this worker must stop.
    pub async fn extend_job_lease(&self, job: &Job, worker: &str, lease_ms: i64) -> Result<bool> {
        let now = Timestamp::now().millis();
        let done = sqlx::query(
            "UPDATE jobs SET locked_until = $1, updated_at = $2 WHERE id = $3 AND locked_by = $4 AND attempts = $5 \
             AND status = 'running'",
        )
        .bind(now + lease_ms)
        .bind(now)
        .bind(job.id.to_string())
        .bind(worker)
        .bind(job.attempts)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives a failed job back to run again at `retry_at`, or fails it for good without one.
    pub async fn fail_job(&self, job: &Job, worker: &str, error: &str, retry_at: Option<Timestamp>) -> Result<()> {
        let now = Timestamp::now().millis();
        let status = if retry_at.is_some() { JobStatus::Pending } else { JobStatus::Failed };
        sqlx::query(
            "UPDATE jobs SET status = $1, run_after = $2, locked_until = NULL, last_error = $3, updated_at = $4 \
             WHERE id = $5 AND locked_by = $6 AND attempts = $7",
        )
        .bind(status.as_str())
        .bind(retry_at.map_or(now, Timestamp::millis))
        .bind(error)
        .bind(now)
        .bind(job.id.to_string())
        .bind(worker)
        .bind(job.attempts)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The state of a session's job of `kind` (about `subject`, for a `notify_flag` job), if one
    /// was queued.
    /// For tests only (not in the production binary).
    #[cfg(feature = "testing")]
    pub async fn job_state(
        &self,
        session_id: SessionId,
        kind: JobKind,
        subject: Option<Uuid>,
    ) -> Result<Option<JobState>> {
        let row = sqlx::query(
            "SELECT status, attempts, last_error FROM jobs WHERE session_id = $1 AND kind = $2 AND subject = $3",
        )
        .bind(session_id.to_string())
        .bind(kind.as_str())
        .bind(subject.map(|s| s.to_string()).unwrap_or_default())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(JobState {
                status: r.parsed("status")?,
                attempts: r.int("attempts")?,
                last_error: r.opt_text("last_error")?,
            })
        })
        .transpose()
    }

    /// Forgets finished jobs older than `before`.
    pub async fn purge_jobs(&self, before: Timestamp) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM jobs WHERE status IN ('done', 'failed') AND updated_at < $1")
            .bind(before.millis())
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}
