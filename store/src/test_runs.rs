//! Scenario test runs: before assigning a scenario, a supervisor has an AI counselor practise a
//! text call against its caller and sees how the call and its grade came out.
//!
//! A run is three rows written in one transaction with the request: the `test_runs` row, its
//! session (a chat session flagged `test_run`, which lists, progress, the flag queue, flag
//! e-mails, analyses and partner events all leave out) and a `test_run` job, so a restart never
//! loses a requested run; the job workers (`admin::testrun`) hold the call, grade it and record
//! the outcome here. "Re-run all" queues both kinds for each of an account's profiled scenarios
//! and refuses while one of its runs is unfinished (the check and the inserts hold the account's
//! row lock on PostgreSQL; SQLite's write lock serialises them).

use serde::Serialize;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use crate::db::{RowExt, Store, lock_account};
use crate::domain::{JobKind, TestRunKind, TestRunStatus, Timestamp};
use crate::error::{Error, Result};
use crate::ids::{AccountId, ScenarioId, SessionId, TestRunId, UserId};

/// The most counselor turns a test run may take (the schema's CHECK says the same).
pub const MAX_TEST_RUN_TURNS: i64 = 30;

/// Runs listed per scenario, newest first.
const LIST_LIMIT: i64 = 50;

/// Which scenarios "re-run all" runs: reusable ones with a risk profile (a scenario's clinical
/// truth is what a test run checks).
const PROFILED: &str = "is_one_time = FALSE AND risk_profile IS NOT NULL";

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestRun {
    #[schema(value_type = Uuid)]
    pub id: TestRunId,
    #[schema(value_type = Uuid)]
    pub scenario_id: ScenarioId,
    /// The practice call (a session flagged as a test run; its transcript is at
    /// `GET /api/sessions/{id}`).
    #[schema(value_type = Uuid)]
    pub session_id: SessionId,
    pub kind: TestRunKind,
    pub status: TestRunStatus,
    /// The most counselor turns the call takes.
    pub max_turns: i64,
    /// Queued by "re-run all".
    pub rerun: bool,
    #[schema(value_type = Option<Uuid>)]
    pub requested_by: Option<UserId>,
    /// Why the run failed, if it did.
    pub error: Option<String>,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
}

const COLUMNS: &str = "id, scenario_id, session_id, kind, status, max_turns, rerun, requested_by, error, created_at, \
    started_at, finished_at";

impl TestRun {
    fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(TestRun {
            id: row.uuid("id")?,
            scenario_id: row.uuid("scenario_id")?,
            session_id: row.uuid("session_id")?,
            kind: row.parsed("kind")?,
            status: row.parsed("status")?,
            max_turns: row.int("max_turns")?,
            rerun: row.flag("rerun")?,
            requested_by: row.opt_uuid("requested_by")?,
            error: row.opt_text("error")?,
            created_at: row.ts("created_at")?,
            started_at: row.opt_ts("started_at")?,
            finished_at: row.opt_ts("finished_at")?,
        })
    }
}

/// What a supervisor asks for.
#[derive(Debug, Clone, Copy)]
pub struct NewTestRun {
    pub kind: TestRunKind,
    pub max_turns: i64,
    pub requested_by: UserId,
}

/// Inserts a run, its session and its job in the caller's transaction.
async fn insert_tx(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    account_id: AccountId,
    scenario_id: ScenarioId,
    new: &NewTestRun,
    rerun: bool,
) -> Result<TestRunId> {
    if !(1..=MAX_TEST_RUN_TURNS).contains(&new.max_turns) {
        return Err(Error::invalid("maxTurns", format!("must be 1 to {MAX_TEST_RUN_TURNS}")));
    }
    let now = Timestamp::now().millis();
    let (id, session_id) = (TestRunId::new(), SessionId::new());
    // The session is the requester's (a supervisor), a chat with the scenario's caller.
    sqlx::query(
        "INSERT INTO sessions (id, account_id, user_id, scenario_id, kind, status, started_at, created_at, test_run) \
         VALUES ($1, $2, $3, $4, 'chat', 'active', $5, $5, TRUE)",
    )
    .bind(session_id.to_string())
    .bind(account_id.to_string())
    .bind(new.requested_by.to_string())
    .bind(scenario_id.to_string())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    // Literal booleans: one SQL text per value serves both backends.
    let rerun = if rerun { "TRUE" } else { "FALSE" };
    sqlx::query(&format!(
        "INSERT INTO test_runs (id, account_id, scenario_id, session_id, kind, status, max_turns, rerun, requested_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, 'queued', $6, {rerun}, $7, $8)"
    ))
    .bind(id.to_string())
    .bind(account_id.to_string())
    .bind(scenario_id.to_string())
    .bind(session_id.to_string())
    .bind(new.kind.as_str())
    .bind(new.max_turns)
    .bind(new.requested_by.to_string())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    crate::jobs::enqueue_tx(tx, JobKind::TestRun, account_id, session_id, None, now).await?;
    Ok(id)
}

impl Store {
    /// Queues a test run of a scenario of the account (with its session and job, together).
    pub async fn create_test_run(
        &self,
        account_id: AccountId,
        scenario_id: ScenarioId,
        new: &NewTestRun,
    ) -> Result<TestRun> {
        let mut tx = self.write_tx().await?;
        sqlx::query("SELECT 1 FROM scenarios WHERE id = $1 AND account_id = $2")
            .bind(scenario_id.to_string())
            .bind(account_id.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(Error::NotFound("scenario"))?;
        let id = insert_tx(&mut tx, account_id, scenario_id, new, false).await?;
        tx.commit().await?;
        self.wake_jobs();
        self.test_run(account_id, id).await
    }

    /// Queues both kinds of run for every profiled scenario of the account; answers how many
    /// runs were queued. Refused (conflict) while a run of an earlier re-run is unfinished.
    pub async fn rerun_all_test_runs(
        &self,
        account_id: AccountId,
        requested_by: UserId,
        max_turns: i64,
    ) -> Result<usize> {
        let mut tx = self.write_tx().await?;
        // Two racing requests: the second waits here for the first's commit, then sees its runs.
        lock_account(&mut tx, account_id).await?;
        let busy: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM test_runs WHERE account_id = $1 AND rerun = TRUE AND status IN ('queued', 'running')",
        )
        .bind(account_id.to_string())
        .fetch_one(&mut *tx)
        .await?;
        if busy > 0 {
            return Err(Error::conflict(format!(
                "a re-run of all scenarios is in progress ({busy} run{} unfinished); wait for it to finish",
                if busy == 1 { "" } else { "s" }
            )));
        }
        let ids: Vec<String> =
            sqlx::query_scalar(&format!("SELECT id FROM scenarios WHERE account_id = $1 AND {PROFILED} ORDER BY id"))
                .bind(account_id.to_string())
                .fetch_all(&mut *tx)
                .await?;
        let mut queued = 0;
        for id in ids {
            let scenario_id: ScenarioId = id.parse().map_err(|_| Error::Corrupt(format!("scenario id {id}")))?;
            for kind in TestRunKind::ALL {
                let new = NewTestRun { kind: *kind, max_turns, requested_by };
                insert_tx(&mut tx, account_id, scenario_id, &new, true).await?;
                queued += 1;
            }
        }
        tx.commit().await?;
        self.wake_jobs();
        Ok(queued)
    }

    pub async fn test_run(&self, account_id: AccountId, id: TestRunId) -> Result<TestRun> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM test_runs WHERE id = $1 AND account_id = $2"))
            .bind(id.to_string())
            .bind(account_id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(Error::NotFound("test run"))?;
        TestRun::from_row(&row)
    }

    /// The run whose call is this session (what a `test_run` job is about).
    pub async fn test_run_of_session(&self, account_id: AccountId, session_id: SessionId) -> Result<TestRun> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM test_runs WHERE session_id = $1 AND account_id = $2"))
            .bind(session_id.to_string())
            .bind(account_id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(Error::NotFound("test run"))?;
        TestRun::from_row(&row)
    }

    /// A scenario's runs, newest first (at most 50).
    pub async fn test_runs(&self, account_id: AccountId, scenario_id: ScenarioId) -> Result<Vec<TestRun>> {
        sqlx::query("SELECT 1 FROM scenarios WHERE id = $1 AND account_id = $2")
            .bind(scenario_id.to_string())
            .bind(account_id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(Error::NotFound("scenario"))?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM test_runs WHERE scenario_id = $1 AND account_id = $2 \
             ORDER BY created_at DESC, id DESC LIMIT $3"
        ))
        .bind(scenario_id.to_string())
        .bind(account_id.to_string())
        .bind(LIST_LIMIT)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(TestRun::from_row).collect()
    }

    /// A worker took the run up (again, after a restart: the first start time stays).
    pub async fn start_test_run(&self, account_id: AccountId, id: TestRunId) -> Result<()> {
        sqlx::query(
            "UPDATE test_runs SET status = 'running', started_at = COALESCE(started_at, $1) \
             WHERE id = $2 AND account_id = $3 AND status IN ('queued', 'running')",
        )
        .bind(Timestamp::now().millis())
        .bind(id.to_string())
        .bind(account_id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records how a run ended: done, or failed with the reason. A finished run stays as it is.
    pub async fn finish_test_run(&self, account_id: AccountId, id: TestRunId, error: Option<&str>) -> Result<()> {
        let status = if error.is_some() { TestRunStatus::Failed } else { TestRunStatus::Done };
        sqlx::query(
            "UPDATE test_runs SET status = $1, error = $2, finished_at = $3, started_at = COALESCE(started_at, $3) \
             WHERE id = $4 AND account_id = $5 AND status IN ('queued', 'running')",
        )
        .bind(status.as_str())
        .bind(error)
        .bind(Timestamp::now().millis())
        .bind(id.to_string())
        .bind(account_id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
