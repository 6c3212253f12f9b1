//! Supervisor calibration of AI evaluations: a review (with a note) and the overrides it makes to
//! check answers, ratings and flags. Overrides are stored beside the evaluation, which is never
//! updated: the AI's answer stays readable, and the reviewed version is computed from both. Each
//! review is audited in the same transaction that stores it.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::{IN_LIST_MAX, RowExt, Store, placeholders};
use crate::domain::{OverrideKind, Timestamp, new_id};
use crate::error::{Error, Result, Violation, violation};
use crate::evaluations::{EVALUATION_COLUMNS, Evaluation};
use crate::flags::{NewFlag, SessionFlag};
use crate::ids::{AccountId, SessionId, UserId};
use crate::scoped::SessionRef;

/// One override: what the AI said and what the supervisor says instead, with why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Override {
    pub id: Uuid,
    pub review_id: Uuid,
    pub kind: OverrideKind,
    /// `<criterion>.<check>` (check), `<criterion>` (rating) or a flag type (flag).
    pub target: String,
    /// The AI's value: yes | no | not_applicable; 1-4 or `none`; raised | not_raised.
    pub ai_value: Option<String>,
    /// The supervisor's value, in the same form.
    pub value: Option<String>,
    pub reason: String,
    pub created_at: Timestamp,
}

/// A stored review with the overrides it made.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Review {
    pub id: Uuid,
    pub evaluation_id: Uuid,
    #[schema(value_type = Uuid)]
    pub session_id: SessionId,
    #[schema(value_type = Option<Uuid>)]
    pub reviewer_id: Option<UserId>,
    pub reviewer_name: Option<String>,
    pub note: String,
    pub created_at: Timestamp,
    pub overrides: Vec<Override>,
}

/// An override to store (validated by the caller against the evaluation's rubric).
#[derive(Debug, Clone)]
pub struct NewOverride {
    pub kind: OverrideKind,
    pub target: String,
    pub ai_value: Option<String>,
    pub value: Option<String>,
    pub reason: String,
}

/// A reviewed evaluation with what the comparison needs: the AI's flags and every review.
#[derive(Debug, Clone)]
pub struct ReviewedEvaluation {
    pub evaluation: Evaluation,
    pub guidance: String,
    pub flags: Vec<SessionFlag>,
    pub reviews: Vec<Review>,
}

/// One session's part of [`Store::scoring_inputs`].
#[derive(Debug, Clone)]
pub struct ScoringInput {
    pub evaluation_id: Uuid,
    pub reviews: Vec<Review>,
    pub flags: Vec<SessionFlag>,
}

/// Binds `ids` in order, for an `IN (...)` list of [`placeholders`].
fn bind_ids<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ids: &[Uuid],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for id in ids {
        query = query.bind(id.to_string());
    }
    query
}

/// A review row with its overrides, picked from `overrides` (its evaluation's, or more).
fn review_from_row(row: &AnyRow, overrides: &[Override]) -> Result<Review> {
    let id = row.uuid("id")?;
    Ok(Review {
        id,
        evaluation_id: row.uuid("evaluation_id")?,
        session_id: row.uuid("session_id")?,
        reviewer_id: row.opt_uuid("reviewer_id")?,
        reviewer_name: row.opt_text("display_name")?,
        note: row.text("note")?,
        created_at: row.ts("created_at")?,
        overrides: overrides.iter().filter(|o| o.review_id == id).cloned().collect(),
    })
}

impl Override {
    fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(Override {
            id: row.uuid("id")?,
            review_id: row.uuid("review_id")?,
            kind: row.parsed("kind")?,
            target: row.text("target")?,
            ai_value: row.opt_text("ai_value")?,
            value: row.opt_text("value")?,
            reason: row.text("reason")?,
            created_at: row.ts("created_at")?,
        })
    }
}

impl Store {
    /// Stores a review of the session's evaluation and its overrides, with an
    /// `evaluation.reviewed` audit event, all in one transaction. The evaluation row is not
    /// touched.
    pub async fn record_review(
        &self,
        account_id: AccountId,
        session_id: SessionId,
        reviewer_id: UserId,
        note: &str,
        overrides: &[NewOverride],
    ) -> Result<Review> {
        self.record_review_raising(account_id, session_id, reviewer_id, note, overrides, &[]).await
    }

    /// [`Store::record_review`], also storing the flags the review raised (`supervisor` source)
    /// in its transaction, with their `flag.raised` events and e-mail jobs: a flag a supervisor
    /// raises reaches the queue, the session's panel and webhooks like any other.
    pub async fn record_review_raising(
        &self,
        account_id: AccountId,
        session_id: SessionId,
        reviewer_id: UserId,
        note: &str,
        overrides: &[NewOverride],
        raised: &[NewFlag],
    ) -> Result<Review> {
        if overrides.iter().any(|o| o.reason.trim().is_empty()) {
            return Err(Error::invalid("overrides", "every override needs a reason"));
        }
        let now = Timestamp::now().millis();
        let review_id = new_id();
        let mut tx = self.write_tx().await?;
        let evaluation_id: String = sqlx::query_scalar(
            "SELECT e.id FROM evaluations e JOIN sessions s ON s.id = e.session_id \
             WHERE e.session_id = $1 AND s.account_id = $2",
        )
        .bind(session_id.to_string())
        .bind(account_id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound("evaluation"))?;
        sqlx::query(
            "INSERT INTO evaluation_reviews (id, account_id, evaluation_id, session_id, reviewer_id, note, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(review_id.to_string())
        .bind(account_id.to_string())
        .bind(&evaluation_id)
        .bind(session_id.to_string())
        .bind(reviewer_id.to_string())
        .bind(note.trim())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| match violation(&e) {
            Some(Violation::ForeignKey) => Error::NotFound("reviewer"),
            _ => e.into(),
        })?;
        for o in overrides {
            sqlx::query(
                "INSERT INTO evaluation_overrides (id, review_id, evaluation_id, kind, target, ai_value, value, reason, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(new_id().to_string())
            .bind(review_id.to_string())
            .bind(&evaluation_id)
            .bind(o.kind.as_str())
            .bind(&o.target)
            .bind(o.ai_value.as_deref())
            .bind(o.value.as_deref())
            .bind(o.reason.trim())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        let details = serde_json::json!({
            "sessionId": session_id,
            "evaluationId": evaluation_id,
            "note": note.trim(),
            "overrides": overrides.iter().map(|o| serde_json::json!({
                "kind": o.kind, "target": o.target, "aiValue": o.ai_value, "value": o.value, "reason": o.reason.trim(),
            })).collect::<Vec<_>>(),
        });
        sqlx::query(
            "INSERT INTO audit_events (id, account_id, actor_user_id, action, target_type, target_id, details, created_at) \
             VALUES ($1, $2, $3, 'evaluation.reviewed', 'review', $4, $5, $6)",
        )
        .bind(new_id().to_string())
        .bind(account_id.to_string())
        .bind(reviewer_id.to_string())
        .bind(review_id.to_string())
        .bind(details.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        Store::insert_flags_tx(&mut tx, account_id, session_id, raised).await?;
        tx.commit().await?;
        if !raised.is_empty() {
            self.wake_jobs();
        }
        let evaluation_id: Uuid = evaluation_id.parse().map_err(|_| Error::Corrupt("evaluation id".into()))?;
        self.reviews_of(evaluation_id).await?.into_iter().find(|r| r.id == review_id).ok_or(Error::NotFound("review"))
    }

    /// The reviews of the session's evaluation, oldest first, each with its overrides.
    pub async fn reviews(&self, session: &SessionRef) -> Result<Vec<Review>> {
        match self.evaluation_of(session.id()).await? {
            Some(evaluation) => self.reviews_of(evaluation.id).await,
            None => Ok(Vec::new()),
        }
    }

    /// What the score everyone sees of many sessions depends on besides their stored
    /// evaluations — each evaluation's id, its reviews and its session's flags — read in a few
    /// small queries for the whole list. Sessions without an evaluation are absent. The parts
    /// are as [`Store::reviews`] and [`Store::session_flags`] read them.
    pub async fn scoring_inputs(&self, sessions: &[&SessionRef]) -> Result<HashMap<SessionId, ScoringInput>> {
        let ids: Vec<SessionId> = sessions.iter().map(|s| s.id()).collect();
        let mut evaluations: Vec<(Uuid, SessionId)> = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IN_LIST_MAX) {
            let sql = format!(
                "SELECT id, session_id FROM evaluations WHERE session_id IN ({})",
                placeholders(1, chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(id.to_string());
            }
            for row in query.fetch_all(&self.pool).await? {
                evaluations.push((row.uuid("id")?, row.uuid("session_id")?));
            }
        }
        let mut reviews = self.reviews_of_many(&evaluations.iter().map(|(id, _)| *id).collect::<Vec<_>>()).await?;
        let mut flags = self.flags_of_many(&ids).await?;
        Ok(evaluations
            .into_iter()
            .map(|(evaluation_id, session_id)| {
                let input = ScoringInput {
                    evaluation_id,
                    reviews: reviews.remove(&evaluation_id).unwrap_or_default(),
                    flags: flags.remove(&session_id).unwrap_or_default(),
                };
                (session_id, input)
            })
            .collect())
    }

    /// [`Store::ai_evaluation_raw`] for many sessions at once (in one query per page), without
    /// the suggestions, which no score reads. Sessions without an evaluation are absent.
    pub async fn ai_evaluations_raw(&self, sessions: &[&SessionRef]) -> Result<Vec<Evaluation>> {
        self.evaluations_of_many(&sessions.iter().map(|s| s.id()).collect::<Vec<_>>()).await
    }

    /// [`Store::reviews_of`] for many evaluations (by evaluation id) at once.
    async fn reviews_of_many(&self, evaluation_ids: &[Uuid]) -> Result<HashMap<Uuid, Vec<Review>>> {
        let mut out: HashMap<Uuid, Vec<Review>> = HashMap::new();
        for chunk in evaluation_ids.chunks(IN_LIST_MAX) {
            let list = placeholders(1, chunk.len());
            let reviews_sql = format!(
                "SELECT r.id, r.evaluation_id, r.session_id, r.reviewer_id, u.display_name, r.note, r.created_at \
                 FROM evaluation_reviews r LEFT JOIN users u ON u.id = r.reviewer_id \
                 WHERE r.evaluation_id IN ({list}) ORDER BY r.created_at, r.id"
            );
            let rows = bind_ids(sqlx::query(&reviews_sql), chunk).fetch_all(&self.pool).await?;
            if rows.is_empty() {
                continue;
            }
            let overrides_sql = format!(
                "SELECT id, review_id, kind, target, ai_value, value, reason, created_at FROM evaluation_overrides \
                 WHERE evaluation_id IN ({list}) ORDER BY created_at, id"
            );
            let overrides = bind_ids(sqlx::query(&overrides_sql), chunk)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(Override::from_row)
                .collect::<Result<Vec<_>>>()?;
            for row in &rows {
                let review = review_from_row(row, &overrides)?;
                out.entry(review.evaluation_id).or_default().push(review);
            }
        }
        Ok(out)
    }

    /// By evaluation id, for the store's own reads that have checked the session's account.
    async fn reviews_of(&self, evaluation_id: Uuid) -> Result<Vec<Review>> {
        let rows = sqlx::query(
            "SELECT r.id, r.evaluation_id, r.session_id, r.reviewer_id, u.display_name, r.note, r.created_at \
             FROM evaluation_reviews r LEFT JOIN users u ON u.id = r.reviewer_id \
             WHERE r.evaluation_id = $1 ORDER BY r.created_at, r.id",
        )
        .bind(evaluation_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        let overrides = sqlx::query(
            "SELECT id, review_id, kind, target, ai_value, value, reason, created_at FROM evaluation_overrides \
             WHERE evaluation_id = $1 ORDER BY created_at, id",
        )
        .bind(evaluation_id.to_string())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(Override::from_row)
        .collect::<Result<Vec<_>>>()?;
        rows.iter().map(|row| review_from_row(row, &overrides)).collect()
    }

    /// Evaluations of the account reviewed at least once in `[from, to)` (by review time),
    /// with their evaluation flags and all their reviews.
    pub async fn reviewed_evaluations(
        &self,
        account_id: AccountId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<ReviewedEvaluation>> {
        let columns: String =
            EVALUATION_COLUMNS.split(", ").map(|c| format!("e.{}", c.trim())).collect::<Vec<_>>().join(", ");
        let rows = sqlx::query(&format!(
            "SELECT {columns}, COALESCE(sc.evaluator_context, '') AS guidance FROM evaluations e \
             JOIN sessions s ON s.id = e.session_id LEFT JOIN scenarios sc ON sc.id = s.scenario_id \
             WHERE s.account_id = $1 AND EXISTS (SELECT 1 FROM evaluation_reviews r WHERE r.evaluation_id = e.id \
             AND r.created_at >= $2 AND r.created_at < $3) ORDER BY e.created_at, e.id"
        ))
        .bind(account_id.to_string())
        .bind(from.millis())
        .bind(to.millis())
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let evaluation = Evaluation::from_row(row)?;
            let flags = self.flags_of(evaluation.session_id).await?;
            let reviews = self.reviews_of(evaluation.id).await?;
            out.push(ReviewedEvaluation { guidance: row.text("guidance")?, evaluation, flags, reviews });
        }
        Ok(out)
    }
}
