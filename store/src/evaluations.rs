//! Evaluations: at most one per session, enforced by a unique index so racing evaluators cannot
//! both store one.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::{RowExt, Store};
use crate::domain::{CheckAnswer, Timestamp, WebhookEvent, new_id};
use crate::error::{Error, Result, Violation, violation};
use crate::flags::NewFlag;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Evaluation {
    pub id: Uuid,
    pub session_id: Uuid,
    /// 0 to 100.
    pub overall_score: f64,
    pub criteria: Vec<CriterionScore>,
    pub strengths: Vec<String>,
    pub areas_to_improve: Vec<String>,
    pub model: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CriterionScore {
    pub key: String,
    pub name: String,
    /// 1 (not demonstrated) to 4 (exemplary); None when the criterion did not apply.
    pub rating: Option<u8>,
    pub comment: String,
    /// The yes/no/not-applicable checks the rating rests on.
    #[serde(default)]
    pub checks: Vec<CheckResult>,
}

/// One rubric check: a yes/no question about the call, answered with the turns it rests on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    pub key: String,
    pub question: String,
    pub answer: CheckAnswer,
    /// Transcript turn numbers (1-based) the answer rests on.
    #[serde(default)]
    pub turns: Vec<u32>,
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Clone)]
pub struct NewEvaluation {
    pub session_id: Uuid,
    /// Flags the evaluation raised, stored in the same transaction.
    pub flags: Vec<NewFlag>,
    pub overall_score: f64,
    pub criteria: Vec<CriterionScore>,
    pub strengths: Vec<String>,
    pub areas_to_improve: Vec<String>,
    pub model: String,
    /// The model's answer exactly as received, kept for audit.
    pub raw_output: String,
}

impl Evaluation {
    fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(Evaluation {
            id: row.uuid("id")?,
            session_id: row.uuid("session_id")?,
            overall_score: row.float("overall_score")?,
            criteria: row.json("criteria")?,
            strengths: row.json("strengths")?,
            areas_to_improve: row.json("areas_to_improve")?,
            model: row.text("model")?,
            created_at: row.ts("created_at")?,
        })
    }
}

impl Store {
    /// Stores the session's evaluation. A second one for the same session is a conflict whose
    /// `existing_id` names the stored one.
    #[cfg(feature = "testing")]
    pub async fn insert_evaluation(&self, new: &NewEvaluation) -> Result<Evaluation> {
        if !(0.0..=100.0).contains(&new.overall_score) {
            return Err(Error::invalid("overallScore", "must be 0 to 100"));
        }
        let id = new_id();
        sqlx::query(
            "INSERT INTO evaluations (id, session_id, overall_score, criteria, strengths, areas_to_improve, model, raw_output, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(id.to_string())
        .bind(new.session_id.to_string())
        .bind(new.overall_score)
        .bind(json(&new.criteria)?)
        .bind(json(&new.strengths)?)
        .bind(json(&new.areas_to_improve)?)
        .bind(&new.model)
        .bind(&new.raw_output)
        .bind(Timestamp::now().millis())
        .execute(&self.pool)
        .await
        .map_err(|e| match violation(&e) {
            Some(Violation::Unique(_)) => Error::conflict("the session already has an evaluation"),
            Some(Violation::ForeignKey) => Error::NotFound("session"),
            _ => e.into(),
        })?;
        self.evaluation_for_session(new.session_id).await?.ok_or(Error::NotFound("evaluation"))
    }

    /// Stores an evaluation with its flags, ends the session if it was still active and
    /// completes its assignment — all or nothing. Answers the stored evaluation and the new
    /// flags' ids; a second evaluation of the session is a conflict and changes nothing.
    pub async fn finish_evaluation(&self, account_id: Uuid, new: &NewEvaluation) -> Result<(Evaluation, Vec<Uuid>)> {
        if !(0.0..=100.0).contains(&new.overall_score) {
            return Err(Error::invalid("overallScore", "must be 0 to 100"));
        }
        let now = Timestamp::now().millis();
        let mut tx = self.write_tx().await?;
        let session = sqlx::query("SELECT assignment_id FROM sessions WHERE id = $1 AND account_id = $2")
            .bind(new.session_id.to_string())
            .bind(account_id.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(Error::NotFound("session"))?;
        let assignment_id = session.opt_uuid("assignment_id")?;
        let evaluation_id = new_id();
        sqlx::query(
            "INSERT INTO evaluations (id, session_id, overall_score, criteria, strengths, areas_to_improve, model, raw_output, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(evaluation_id.to_string())
        .bind(new.session_id.to_string())
        .bind(new.overall_score)
        .bind(json(&new.criteria)?)
        .bind(json(&new.strengths)?)
        .bind(json(&new.areas_to_improve)?)
        .bind(&new.model)
        .bind(&new.raw_output)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| match violation(&e) {
            Some(Violation::Unique(_)) => Error::conflict("the session already has an evaluation"),
            _ => e.into(),
        })?;
        let flag_ids = Self::insert_flags_tx(&mut tx, account_id, new.session_id, &new.flags).await?;
        sqlx::query(
            "UPDATE sessions SET status = CASE WHEN status = 'active' THEN 'completed' ELSE status END, \
             ended_at = COALESCE(ended_at, $1), evaluation_error = NULL WHERE id = $2",
        )
        .bind(now)
        .bind(new.session_id.to_string())
        .execute(&mut *tx)
        .await?;
        let mut completed = false;
        if let Some(assignment_id) = assignment_id {
            completed = sqlx::query(
                "UPDATE assignments SET status = 'completed', completed_at = $1, updated_at = $1 \
                 WHERE id = $2 AND status = 'in_progress'",
            )
            .bind(now)
            .bind(assignment_id.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
        }
        // The events, in this transaction: they exist exactly when the evaluation does.
        let ctx = crate::partner::session_context(&mut tx, new.session_id).await?;
        let data = serde_json::json!({
            "evaluation_id": evaluation_id, "session_id": new.session_id, "assignment_id": ctx.assignment_id,
            "attempt": ctx.attempt, "user_id": ctx.user_external_id, "overall_score": new.overall_score,
        });
        crate::partner::enqueue_event_tx(
            &mut tx,
            account_id,
            WebhookEvent::EvaluationCompleted,
            &serde_json::json!({ "data": data }),
        )
        .await?;
        if let (true, Some(assignment_id)) = (completed, ctx.assignment_id) {
            let data = serde_json::json!({
                "assignment_id": assignment_id, "scenario_id": ctx.scenario_id, "user_id": ctx.user_external_id,
                "session_id": new.session_id,
            });
            crate::partner::enqueue_event_tx(
                &mut tx,
                account_id,
                WebhookEvent::AssignmentCompleted,
                &serde_json::json!({ "data": data }),
            )
            .await?;
        }
        tx.commit().await?;
        let evaluation = self.evaluation_for_session(new.session_id).await?.ok_or(Error::NotFound("evaluation"))?;
        Ok((evaluation, flag_ids))
    }

    /// The raw model output of a session's evaluation (audit).
    pub async fn evaluation_raw_output(&self, session_id: Uuid) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT raw_output FROM evaluations WHERE session_id = $1")
            .bind(session_id.to_string())
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn evaluation_for_session(&self, session_id: Uuid) -> Result<Option<Evaluation>> {
        let row = sqlx::query(
            "SELECT id, session_id, overall_score, criteria, strengths, areas_to_improve, model, created_at \
             FROM evaluations WHERE session_id = $1",
        )
        .bind(session_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(Evaluation::from_row).transpose()
    }
}

fn json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Corrupt(e.to_string()))
}
