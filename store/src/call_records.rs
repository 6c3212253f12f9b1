//! The counselor's call record: what they file after hanging up, as on a real crisis line (the
//! risk level they judged, the kinds of facts they noted, the actions taken or planned), or that
//! they skipped it. Grading of a scenario with a risk profile compares it with the profile, so
//! the record can be changed only until grading reads it: the session's row is locked while it
//! is written, and claiming the evaluation updates that row, so the two cannot interleave.
//!
//! Also here: the AI caller's deviations from a scenario's risk profile, counted per scenario
//! for the supervisor's view (they are written with the evaluation that found them).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::{RowExt, Store};
use crate::domain::{CallRecordStatus, DeviationKind, RequiredAction, RiskFactKind, RiskLevel, Timestamp};
use crate::error::{Error, FieldError, Result};
use crate::ids::{AccountId, ScenarioId, SessionId};

/// The longest free-text note on a call record.
pub const CALL_RECORD_NOTES_MAX: usize = 2000;

/// A session's call record as filed (or skipped).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallRecord {
    #[schema(value_type = uuid::Uuid)]
    pub session_id: SessionId,
    pub status: CallRecordStatus,
    /// The risk level the counselor judged; null when skipped.
    pub risk_level: Option<RiskLevel>,
    /// The kinds of facts the counselor noted (a checklist, not the facts themselves).
    pub fact_kinds: Vec<RiskFactKind>,
    /// Actions taken on the call or planned after it.
    pub actions: Vec<RequiredAction>,
    /// Free text, at most 2000 characters.
    pub notes: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What the counselor files. `skipped` carries nothing else.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CallRecordInput {
    pub status: CallRecordStatus,
    #[serde(default)]
    pub risk_level: Option<RiskLevel>,
    #[serde(default)]
    pub fact_kinds: Vec<RiskFactKind>,
    #[serde(default)]
    pub actions: Vec<RequiredAction>,
    #[serde(default)]
    pub notes: String,
}

impl CallRecordInput {
    /// The record to store: a filed record names a level; a skipped one names nothing;
    /// duplicates are dropped, notes trimmed and bounded.
    pub fn validate(&self) -> Result<CallRecordInput> {
        let mut errors = Vec::new();
        let notes = self.notes.trim().to_owned();
        match self.status {
            CallRecordStatus::Filed if self.risk_level.is_none() => {
                errors.push(FieldError::new("riskLevel", "choose the risk level you judged"))
            }
            CallRecordStatus::Skipped
                if self.risk_level.is_some()
                    || !self.fact_kinds.is_empty()
                    || !self.actions.is_empty()
                    || !notes.is_empty() =>
            {
                errors.push(FieldError::new("status", "a skipped call record carries nothing else"))
            }
            _ => {}
        }
        if notes.chars().count() > CALL_RECORD_NOTES_MAX {
            errors.push(FieldError::new("notes", format!("at most {CALL_RECORD_NOTES_MAX} characters")));
        }
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        let mut fact_kinds = self.fact_kinds.clone();
        fact_kinds.sort_by_key(|k| RiskFactKind::ALL.iter().position(|a| a == k));
        fact_kinds.dedup();
        let mut actions = self.actions.clone();
        actions.sort_by_key(|k| RequiredAction::ALL.iter().position(|a| a == k));
        actions.dedup();
        Ok(CallRecordInput { status: self.status, risk_level: self.risk_level, fact_kinds, actions, notes })
    }
}

/// One deviation of the AI caller from the risk profile, as grading found it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallerDeviation {
    /// The profile fact's key.
    pub fact_key: String,
    pub kind: DeviationKind,
    /// Transcript turns (1-based) it rests on.
    #[serde(default)]
    pub turns: Vec<u32>,
}

/// How often the AI caller departed from one scenario's risk profile.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioDeviations {
    #[schema(value_type = uuid::Uuid)]
    pub scenario_id: ScenarioId,
    #[serde(flatten)]
    pub counts: DeviationCounts,
}

/// How often the AI caller departed from a scenario's risk profile across its sessions and test
/// runs graded against it (all zero for a scenario never graded so).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviationCounts {
    /// Evaluated sessions and test runs of the scenario graded against its profile.
    pub sessions_checked: i64,
    /// Of those, sessions where the caller deviated at least once.
    pub sessions_with_deviations: i64,
    /// All deviations found, and per kind.
    pub deviations: i64,
    pub withheld: i64,
    pub denied: i64,
    pub volunteered_gated: i64,
}

/// One deviation of the AI caller in one session of a scenario, for the supervisor's list.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionDeviation {
    #[schema(value_type = uuid::Uuid)]
    pub session_id: SessionId,
    /// The session was a test run (an AI counselor), not a counselor's practice.
    pub test_run: bool,
    /// Who practised (none for a test run).
    pub counselor_name: Option<String>,
    #[serde(flatten)]
    pub deviation: CallerDeviation,
    /// When the evaluation that found it was stored.
    pub found_at: Timestamp,
}

impl CallRecord {
    fn from_row(row: &sqlx::any::AnyRow) -> Result<Self> {
        Ok(CallRecord {
            session_id: row.uuid("session_id")?,
            status: row.parsed("status")?,
            risk_level: row.opt_parsed("risk_level")?,
            fact_kinds: row.json("fact_kinds")?,
            actions: row.json("actions")?,
            notes: row.text("notes")?,
            created_at: row.ts("created_at")?,
            updated_at: row.ts("updated_at")?,
        })
    }
}

fn json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Corrupt(e.to_string()))
}

impl Store {
    /// Files (or replaces) a session's call record. A conflict once grading has read it: the
    /// session has an evaluation, or one is being made. A pending evaluation job of the session
    /// (a voice call waiting for the record) is made due now.
    pub async fn file_call_record(
        &self,
        account_id: AccountId,
        session_id: SessionId,
        input: &CallRecordInput,
    ) -> Result<CallRecord> {
        let input = input.validate()?;
        let now = Timestamp::now().millis();
        let mut tx = self.write_tx().await?;
        let lock = crate::db::for_update(&tx);
        let row = sqlx::query(&format!(
            "SELECT evaluation_started_at, (SELECT COUNT(*) FROM evaluations e WHERE e.session_id = s.id) AS evaluated \
             FROM sessions s WHERE s.id = $1 AND s.account_id = $2{lock}"
        ))
        .bind(session_id.to_string())
        .bind(account_id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound("session"))?;
        if row.int("evaluated")? > 0 || row.opt_int("evaluation_started_at")?.is_some() {
            return Err(Error::conflict(
                "the session is being graded or was graded: its call record can no longer change",
            ));
        }
        sqlx::query(
            "INSERT INTO call_records (session_id, account_id, status, risk_level, fact_kinds, actions, notes, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
             ON CONFLICT (session_id) DO UPDATE SET status = $3, risk_level = $4, fact_kinds = $5, actions = $6, \
             notes = $7, updated_at = $8",
        )
        .bind(session_id.to_string())
        .bind(account_id.to_string())
        .bind(input.status.as_str())
        .bind(input.risk_level.map(|l| l.as_str()))
        .bind(json(&input.fact_kinds)?)
        .bind(json(&input.actions)?)
        .bind(&input.notes)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let woke = sqlx::query(
            "UPDATE jobs SET run_after = $1, updated_at = $1 WHERE session_id = $2 AND kind = 'evaluate_session' \
             AND status = 'pending' AND run_after > $1",
        )
        .bind(now)
        .bind(session_id.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        if woke > 0 {
            self.wake_jobs();
        }
        self.call_record(session_id).await?.ok_or(Error::NotFound("call record"))
    }

    /// A session's call record, if one was filed or skipped.
    pub async fn call_record(&self, session_id: SessionId) -> Result<Option<CallRecord>> {
        let row = sqlx::query(
            "SELECT session_id, status, risk_level, fact_kinds, actions, notes, created_at, updated_at \
             FROM call_records WHERE session_id = $1",
        )
        .bind(session_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(CallRecord::from_row).transpose()
    }

    /// When the session last saw activity (ended, or its last turn, or its start): the wait for
    /// a call record is counted from here.
    pub async fn session_last_activity(&self, session_id: SessionId) -> Result<Timestamp> {
        let row = sqlx::query(
            "SELECT s.started_at, s.ended_at, (SELECT MAX(t.created_at) FROM transcript_turns t WHERE t.session_id = s.id) AS last_turn \
             FROM sessions s WHERE s.id = $1",
        )
        .bind(session_id.to_string())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(Error::NotFound("session"))?;
        let latest = [row.opt_int("ended_at")?, row.opt_int("last_turn")?, Some(row.int("started_at")?)]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or_default();
        Ok(Timestamp::from_millis(latest))
    }

    /// The caller deviations per scenario of the account, for the scenarios' supervisor view:
    /// every scenario with at least one session graded against its profile.
    pub async fn deviations_per_scenario(&self, account_id: AccountId) -> Result<Vec<ScenarioDeviations>> {
        let rows = sqlx::query(
            // SUM answers NUMERIC on PostgreSQL: cast back to BIGINT for both backends.
            "SELECT s.scenario_id, COUNT(*) AS checked, \
             CAST(SUM(CASE WHEN d.n > 0 THEN 1 ELSE 0 END) AS BIGINT) AS with_deviations, \
             CAST(SUM(COALESCE(d.n, 0)) AS BIGINT) AS deviations, \
             CAST(SUM(COALESCE(d.withheld, 0)) AS BIGINT) AS withheld, \
             CAST(SUM(COALESCE(d.denied, 0)) AS BIGINT) AS denied, \
             CAST(SUM(COALESCE(d.volunteered, 0)) AS BIGINT) AS volunteered \
             FROM evaluations e JOIN sessions s ON s.id = e.session_id \
             LEFT JOIN (SELECT session_id, COUNT(*) AS n, \
                 SUM(CASE WHEN kind = 'withheld' THEN 1 ELSE 0 END) AS withheld, \
                 SUM(CASE WHEN kind = 'denied' THEN 1 ELSE 0 END) AS denied, \
                 SUM(CASE WHEN kind = 'volunteered_gated' THEN 1 ELSE 0 END) AS volunteered \
                 FROM caller_deviations WHERE account_id = $1 GROUP BY session_id) d ON d.session_id = s.id \
             WHERE s.account_id = $1 AND s.scenario_id IS NOT NULL AND e.truth IS NOT NULL \
             GROUP BY s.scenario_id ORDER BY s.scenario_id",
        )
        .bind(account_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ScenarioDeviations {
                    scenario_id: row.uuid("scenario_id")?,
                    counts: DeviationCounts {
                        sessions_checked: row.int("checked")?,
                        sessions_with_deviations: row.int("with_deviations")?,
                        deviations: row.int("deviations")?,
                        withheld: row.int("withheld")?,
                        denied: row.int("denied")?,
                        volunteered_gated: row.int("volunteered")?,
                    },
                })
            })
            .collect()
    }

    /// One scenario's caller deviations across its sessions and test runs, newest first (at
    /// most `limit`).
    pub async fn scenario_deviations(
        &self,
        account_id: AccountId,
        scenario_id: ScenarioId,
        limit: i64,
    ) -> Result<Vec<SessionDeviation>> {
        let rows = sqlx::query(
            "SELECT d.session_id, d.fact_key, d.kind, d.turns, d.created_at, s.test_run, u.display_name \
             FROM caller_deviations d JOIN sessions s ON s.id = d.session_id \
             LEFT JOIN users u ON u.id = s.user_id \
             WHERE d.account_id = $1 AND d.scenario_id = $2 \
             ORDER BY d.created_at DESC, d.id LIMIT $3",
        )
        .bind(account_id.to_string())
        .bind(scenario_id.to_string())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let test_run = row.flag("test_run")?;
                Ok(SessionDeviation {
                    session_id: row.uuid("session_id")?,
                    test_run,
                    counselor_name: if test_run { None } else { row.opt_text("display_name")? },
                    deviation: CallerDeviation {
                        fact_key: row.text("fact_key")?,
                        kind: row.parsed("kind")?,
                        turns: row.json("turns")?,
                    },
                    found_at: row.ts("created_at")?,
                })
            })
            .collect()
    }

    /// One session's caller deviations, as stored with its evaluation.
    pub async fn session_deviations(&self, session_id: SessionId) -> Result<Vec<CallerDeviation>> {
        let rows = sqlx::query(
            "SELECT fact_key, kind, turns FROM caller_deviations WHERE session_id = $1 ORDER BY created_at, id",
        )
        .bind(session_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(CallerDeviation {
                    fact_key: row.text("fact_key")?,
                    kind: row.parsed("kind")?,
                    turns: row.json("turns")?,
                })
            })
            .collect()
    }
}
