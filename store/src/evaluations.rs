//! Evaluations: at most one per session, enforced by a unique index so racing evaluators cannot
//! both store one.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::{RowExt, Store};
use crate::domain::{Timestamp, new_id};
use crate::error::{Error, Result, Violation, violation};

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
}

#[derive(Debug, Clone)]
pub struct NewEvaluation {
    pub session_id: Uuid,
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
