//! Evaluations: at most one per session, enforced by a unique index so racing evaluators cannot
//! both store one.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::accounts::{Audit, audit_tx};
use crate::db::{IN_LIST_MAX, RowExt, Store, placeholders};
use crate::domain::{
    CheckAnswer, Determination, DisclosureRule, FactOutcome, FlagType, GateSeverity, GateSource, JobKind,
    ManipulationKind, RequiredAction, RiskFactKind, RiskLevel, ScoreBand, Speaker, Timestamp, WebhookEvent, new_id,
};
use crate::error::{Error, Result, Violation, violation};
use crate::flags::NewFlag;
use crate::ids::{AccountId, AssignmentId, FlagId, SessionId, UserId};
use crate::scoped::SessionRef;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Evaluation {
    pub id: Uuid,
    #[schema(value_type = Uuid)]
    pub session_id: SessionId,
    /// 0 to 100, computed from the check answers and ratings with safety criteria weighted and
    /// held in `needs_work` by the safety gates (`scoreBasis.gates`); null when it cannot be
    /// computed (never a fallback 0).
    pub overall_score: Option<f64>,
    /// The band of the score; null exactly when the score is.
    pub score_band: Option<ScoreBand>,
    /// What the score rests on: criteria not assessed or not applicable, flags capping it.
    pub score_basis: ScoreBasis,
    /// The rubric version graded against (1: before the rubric was versioned).
    pub rubric_version: i64,
    pub criteria: Vec<CriterionScore>,
    /// The call facts the evaluator answered (rubric v3; about the caller, not scored): what
    /// the safety gates and the not-applicable rules read. Empty before v3.
    #[serde(default)]
    pub facts: Vec<CallFact>,
    pub strengths: Vec<String>,
    pub areas_to_improve: Vec<String>,
    pub model: String,
    pub created_at: Timestamp,
    /// The gate table (gates and blocked-by rules, JSON) the score was computed with, frozen
    /// with the evaluation so a later rubric never re-scores it; None before v3. Not published.
    #[serde(skip)]
    pub gate_table: Option<serde_json::Value>,
    /// Present when a supervisor reviewed this evaluation: then `criteria`, the score and the
    /// band are the reviewed version, and each overridden item keeps the AI's answer beside it.
    #[serde(default)]
    pub review: Option<ReviewSummary>,
    /// Present when the evaluation was held for a supervisor's review because its transcript
    /// tried to steer the grader (still held, or released).
    #[serde(default)]
    pub hold: Option<EvaluationHold>,
    /// The evaluator's "yes" answers turned into `not_assessed` because they cited no real
    /// counselor turn.
    #[serde(default)]
    pub downgraded_checks: Vec<DowngradedCheck>,
    /// Graded against the scenario's risk profile (null when the scenario has none): which
    /// facts were uncovered, the counselor's risk determination, the required actions and
    /// whether the AI caller followed the profile.
    #[serde(default)]
    pub truth: Option<TruthAssessment>,
    /// What the counselor could have said instead, at the turn where it mattered: one per failed
    /// check or missed fact at most, as reviewed (a supervisor may edit or remove one).
    #[serde(default)]
    pub suggestions: Vec<Suggestion>,
}

/// An evaluation graded against the scenario's clinical truth (its risk profile).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TruthAssessment {
    /// Per profile fact: what became of it in the call.
    pub facts: Vec<FactAssessment>,
    pub determination: DeterminationResult,
    /// Per required action of the profile: whether it happened in the call.
    pub actions: Vec<ActionAssessment>,
    /// Where the AI caller departed from the profile.
    pub deviations: Vec<crate::call_records::CallerDeviation>,
    /// Checks not held against the counselor because the caller withheld what they rested on.
    pub held_harmless: Vec<HeldHarmless>,
}

/// One profile fact in a graded call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FactAssessment {
    pub key: String,
    pub kind: RiskFactKind,
    /// The fact as the profile states it (shown only after the call, with the feedback).
    pub text: String,
    pub rule: DisclosureRule,
    pub outcome: FactOutcome,
    /// Counselor turns that asked about it.
    #[serde(default)]
    pub asked_turns: Vec<u32>,
    /// Caller turns that disclosed it.
    #[serde(default)]
    pub disclosed_turns: Vec<u32>,
    /// Caller turns that denied it when asked directly.
    #[serde(default)]
    pub denied_turns: Vec<u32>,
}

/// The counselor's risk level (from the call record) against the profile's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeterminationResult {
    pub expected: RiskLevel,
    /// Null when no call record was filed.
    pub filed: Option<RiskLevel>,
    pub result: Determination,
    /// Why an under-estimate is not held against the counselor (the caller withheld what the
    /// level rests on), when it is not.
    #[serde(default)]
    pub held_harmless: Option<String>,
}

/// One required action of the profile in a graded call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActionAssessment {
    pub action: RequiredAction,
    /// yes (with counselor turns), no, or not_assessed (a yes that cited no counselor turn).
    pub answer: CheckAnswer,
    #[serde(default)]
    pub turns: Vec<u32>,
    /// Whether the counselor's call record lists it as taken or planned.
    pub in_call_record: bool,
    #[serde(default)]
    pub note: String,
}

/// A check answered "no" that is not held against the counselor: it rested on a fact the
/// caller withheld against the profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeldHarmless {
    /// `<criterion>.<check>`.
    pub target: String,
    pub fact_key: String,
    pub reason: String,
}

/// What the counselor could have said at one turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Suggestion {
    pub id: Uuid,
    /// What it answers: `check:<criterion>.<check>` or `fact:<fact key>`.
    pub target: String,
    /// The transcript turn (1-based) it belongs at: a counselor turn to say instead, or the
    /// caller turn it answers.
    pub turn: u32,
    pub text: String,
    /// Set when a supervisor edited it: the evaluator's text.
    #[serde(default)]
    pub ai_text: Option<String>,
}

/// A suggestion to store with an evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSuggestion {
    pub target: String,
    pub turn: u32,
    pub text: String,
}

/// What grading against the truth adds to an evaluation, stored in its transaction.
#[derive(Debug, Clone, Default)]
pub struct TruthRecord {
    pub truth: Option<TruthAssessment>,
    /// The session's scenario (the deviations are counted against it).
    pub scenario_id: Option<crate::ids::ScenarioId>,
    pub suggestions: Vec<NewSuggestion>,
    /// The truth grader's answer as received (None: no follow-up call was made).
    pub grader: Option<GraderOutput>,
}

/// A grader call's answer kept for audit: the model, the prompt's version, the answer exactly
/// as received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GraderOutput {
    pub model: String,
    /// The version of the prompt that asked (the rubric's version for the rubric grader).
    pub prompt_version: i64,
    /// The model's answer exactly as received.
    pub raw_output: String,
}

/// What the graders of a session's evaluation answered, for a supervisor's audit: the rubric
/// grader's and, when one was made, the truth grader's (uncovered facts, suggestions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GraderAudit {
    pub rubric: GraderOutput,
    pub truth: Option<GraderOutput>,
}

/// Text in a transcript turn that imitated the transcript's structure or addressed the grader;
/// the evaluator read it neutralised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManipulationSignal {
    /// The turn (1-based, in spoken order) whose text held it.
    pub turn: u32,
    pub speaker: Speaker,
    pub kind: ManipulationKind,
    /// What was found, as written (at most 80 characters).
    pub excerpt: String,
}

/// A check the evaluator answered "yes" without citing a real counselor turn: stored as
/// `not_assessed`, counted as neither yes nor no.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DowngradedCheck {
    /// `<criterion>.<check>`.
    pub target: String,
    /// The turns the evaluator cited (none, missing ones or caller turns).
    pub cited_turns: Vec<u32>,
    pub reason: String,
}

/// Why and how an evaluation was held for review. While `held`, the counselor sees "under
/// review" without scores, partners see `pending`, and its webhook events wait.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvaluationHold {
    /// True until a supervisor releases it.
    pub held: bool,
    pub reason: String,
    pub signals: Vec<ManipulationSignal>,
    pub released_at: Option<Timestamp>,
    #[schema(value_type = Option<Uuid>)]
    pub released_by: Option<UserId>,
}

/// What the overall score rests on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScoreBasis {
    /// Criteria the evaluator did not assess (left out of the score; a safety criterion among
    /// them makes the score null).
    #[serde(default)]
    pub not_assessed: Vec<String>,
    /// Criteria that did not apply to this call (every check not applicable, no rating).
    #[serde(default)]
    pub not_applicable: Vec<String>,
    /// The flag types of the safety gates (or, before v3, the hard flags) that capped the score.
    #[serde(default)]
    pub capped_by: Vec<FlagType>,
    /// The score before the cap.
    #[serde(default)]
    pub uncapped: Option<f64>,
    /// The safety gates that held the score (rubric v3), each with why, in plain words.
    #[serde(default)]
    pub gates: Vec<GateHit>,
    /// Criteria left out of the score because every applicable check was blocked by an
    /// omission upstream (the omission is weighed once, where it happened).
    #[serde(default)]
    pub blocked: Vec<String>,
    /// Why there is no score, when there is none.
    #[serde(default)]
    pub absent_reason: Option<String>,
}

/// A safety gate that held a score below its cap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GateHit {
    /// The gate, named by its flag type.
    pub flag: FlagType,
    pub severity: GateSeverity,
    /// The highest score a call held by this gate can have.
    pub cap: f64,
    /// Why, in words a counselor understands.
    pub reason: String,
    /// What fired it: the check answers, or a flag of its type and who raised it.
    pub source: GateSource,
    /// Transcript turns (1-based) it rests on.
    #[serde(default)]
    pub turns: Vec<u32>,
}

/// One call fact (rubric v3): a yes/no about the caller and the call, not about the counselor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallFact {
    pub key: String,
    /// yes or no.
    pub answer: CheckAnswer,
    #[serde(default)]
    pub turns: Vec<u32>,
}

/// A supervisor review on an evaluation, as the counselor and the supervisor see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewSummary {
    /// Always true: marks the evaluation as the reviewed version.
    pub reviewed: bool,
    /// The latest review.
    pub reviewed_at: Timestamp,
    #[schema(value_type = Option<Uuid>)]
    pub reviewer_id: Option<UserId>,
    pub reviewer_name: Option<String>,
    /// The reviews' notes, oldest first.
    pub notes: Vec<String>,
    /// The overrides in force (the latest per target).
    pub overrides: Vec<crate::calibration::Override>,
    /// The AI's own score and band, before the review.
    pub ai_overall_score: Option<f64>,
    pub ai_score_band: Option<ScoreBand>,
    /// The flags in force after the review (evaluation flags, with overrides applied).
    pub flags: Vec<FlagType>,
    /// The flags the AI raised.
    pub ai_flags: Vec<FlagType>,
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
    /// The evaluator skipped this criterion entirely (it is left out of the score, explicitly).
    #[serde(default)]
    pub not_assessed: bool,
    /// In a reviewed evaluation: a supervisor overrode the rating; `aiRating` is the AI's.
    #[serde(default)]
    pub rating_overridden: bool,
    #[serde(default)]
    pub ai_rating: Option<u8>,
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
    /// In a reviewed evaluation: the AI's answer when a supervisor overrode it.
    #[serde(default)]
    pub ai_answer: Option<CheckAnswer>,
    /// A "no" not counted as a failure of its own: the check could not happen because of an
    /// omission upstream (`<criterion>.<check>` of that omission), which is weighed once.
    #[serde(default)]
    pub blocked_by: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewEvaluation {
    pub session_id: SessionId,
    /// Flags the evaluation raised, stored in the same transaction.
    pub flags: Vec<NewFlag>,
    pub overall_score: Option<f64>,
    pub score_band: Option<ScoreBand>,
    pub score_basis: ScoreBasis,
    pub rubric_version: i64,
    pub criteria: Vec<CriterionScore>,
    pub facts: Vec<CallFact>,
    /// The gate table the score was computed with (None: scored without one, before v3).
    pub gate_table: Option<serde_json::Value>,
    pub strengths: Vec<String>,
    pub areas_to_improve: Vec<String>,
    pub model: String,
    /// The model's answer exactly as received, kept for audit.
    pub raw_output: String,
    /// What validation found in the transcript and the answer (default: nothing).
    pub integrity: Integrity,
}

/// What the evaluation's validation found: a reason to hold it, the manipulation signals and
/// the downgraded checks.
#[derive(Debug, Clone, Default)]
pub struct Integrity {
    /// Set when the evaluation must wait for a supervisor (its events are deferred with it).
    pub hold_reason: Option<String>,
    pub manipulation_signals: Vec<ManipulationSignal>,
    pub downgraded_checks: Vec<DowngradedCheck>,
}

impl NewEvaluation {
    fn check(&self) -> Result<()> {
        if let Some(score) = self.overall_score
            && !(0.0..=100.0).contains(&score)
        {
            return Err(Error::invalid("overallScore", "must be 0 to 100"));
        }
        if self.overall_score.is_some() != self.score_band.is_some() {
            return Err(Error::invalid("scoreBand", "a band goes with a score, and only with one"));
        }
        Ok(())
    }
}

/// The columns [`Evaluation::from_row`] reads.
pub(crate) const EVALUATION_COLUMNS: &str = "id, session_id, overall_score, score_band, score_basis, rubric_version, \
    criteria, strengths, areas_to_improve, model, created_at, facts, gate_table, held, hold_reason, \
    manipulation_signals, downgraded_checks, released_at, released_by, truth";

impl Evaluation {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(Evaluation {
            id: row.uuid("id")?,
            session_id: row.uuid("session_id")?,
            overall_score: row.try_get::<Option<f64>, _>("overall_score").map_err(|e| Error::Corrupt(e.to_string()))?,
            score_band: row.opt_parsed("score_band")?,
            score_basis: row.json("score_basis")?,
            rubric_version: row.int("rubric_version")?,
            criteria: row.json("criteria")?,
            strengths: row.json("strengths")?,
            areas_to_improve: row.json("areas_to_improve")?,
            model: row.text("model")?,
            created_at: row.ts("created_at")?,
            facts: row.json("facts")?,
            gate_table: row
                .opt_text("gate_table")?
                .map(|t| serde_json::from_str(&t).map_err(|e| Error::Corrupt(e.to_string())))
                .transpose()?,
            review: None,
            hold: match row.opt_text("hold_reason")? {
                Some(reason) => Some(EvaluationHold {
                    held: row.flag("held")?,
                    reason,
                    signals: row.json("manipulation_signals")?,
                    released_at: row.opt_ts("released_at")?,
                    released_by: row.opt_uuid("released_by")?,
                }),
                None => None,
            },
            downgraded_checks: row.json("downgraded_checks")?,
            truth: row
                .opt_text("truth")?
                .map(|t| serde_json::from_str(&t).map_err(|e| Error::Corrupt(e.to_string())))
                .transpose()?,
            // Read separately (`Store::suggestions`).
            suggestions: Vec::new(),
        })
    }
}

impl Store {
    /// Stores the session's evaluation. A second one for the same session is a conflict whose
    /// `existing_id` names the stored one.
    #[cfg(feature = "testing")]
    /// For tests only (not in the production binary).
    #[cfg(feature = "testing")]
    pub async fn insert_evaluation(&self, new: &NewEvaluation) -> Result<Evaluation> {
        new.check()?;
        let id = new_id();
        sqlx::query(
            "INSERT INTO evaluations (id, session_id, overall_score, criteria, strengths, areas_to_improve, model, raw_output, created_at, \
             score_band, score_basis, rubric_version, facts, gate_table) \
             VALUES ($1, $2, CASE WHEN $13 = 1 THEN $3 ELSE NULL END, $4, $5, $6, $7, $8, $9, $10, $11, $12, $14, $15)",
        )
        .bind(id.to_string())
        .bind(new.session_id.to_string())
        // Always bound as a number (PostgreSQL keeps the first bind's type for a prepared
        // statement, and a typed NULL there breaks later numbers); $13 says whether it is one.
        .bind(new.overall_score.unwrap_or_default())
        .bind(json(&new.criteria)?)
        .bind(json(&new.strengths)?)
        .bind(json(&new.areas_to_improve)?)
        .bind(&new.model)
        .bind(&new.raw_output)
        .bind(Timestamp::now().millis())
        .bind(new.score_band.map(|b| b.as_str()))
        .bind(json(&new.score_basis)?)
        .bind(new.rubric_version)
        .bind(i64::from(new.overall_score.is_some()))
        .bind(json(&new.facts)?)
        .bind(new.gate_table.as_ref().map(json).transpose()?)
        .execute(&self.pool)
        .await
        .map_err(|e| match violation(&e) {
            Some(Violation::Unique(_)) => Error::conflict("the session already has an evaluation"),
            Some(Violation::ForeignKey) => Error::NotFound("session"),
            _ => e.into(),
        })?;
        self.evaluation_of(new.session_id).await?.ok_or(Error::NotFound("evaluation"))
    }

    /// Stores an evaluation with its flags, ends the session if it was still active, completes
    /// its assignment and queues its events, the flags' e-mails and the analysis — all or nothing. Answers the stored evaluation and the new
    /// flags' ids; a second evaluation of the session is a conflict and changes nothing.
    pub async fn finish_evaluation(
        &self,
        account_id: AccountId,
        new: &NewEvaluation,
    ) -> Result<(Evaluation, Vec<FlagId>)> {
        self.finish_evaluation_with(account_id, new, &TruthRecord::default()).await
    }

    /// [`Store::finish_evaluation`] with what grading against the truth adds: the truth
    /// assessment on the evaluation, its suggestions and the caller's deviations (counted
    /// against the scenario), in the same transaction.
    pub async fn finish_evaluation_with(
        &self,
        account_id: AccountId,
        new: &NewEvaluation,
        truth: &TruthRecord,
    ) -> Result<(Evaluation, Vec<FlagId>)> {
        new.check()?;
        let now = Timestamp::now().millis();
        let mut tx = self.write_tx().await?;
        let session = sqlx::query("SELECT assignment_id FROM sessions WHERE id = $1 AND account_id = $2")
            .bind(new.session_id.to_string())
            .bind(account_id.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(Error::NotFound("session"))?;
        let assignment_id: Option<AssignmentId> = session.opt_uuid("assignment_id")?;
        let evaluation_id = new_id();
        // `held` is written as a literal: one statement per value keeps the SQL text shared by
        // both backends (SQLite stores 0/1, PostgreSQL a boolean).
        let held = if new.integrity.hold_reason.is_some() { "TRUE" } else { "FALSE" };
        sqlx::query(&format!(
            "INSERT INTO evaluations (id, session_id, overall_score, criteria, strengths, areas_to_improve, model, raw_output, created_at, \
             score_band, score_basis, rubric_version, facts, gate_table, held, hold_reason, manipulation_signals, \
             downgraded_checks) \
             VALUES ($1, $2, CASE WHEN $13 = 1 THEN $3 ELSE NULL END, $4, $5, $6, $7, $8, $9, $10, $11, $12, $14, $15, \
             {held}, $16, $17, $18)",
        ))
        .bind(evaluation_id.to_string())
        .bind(new.session_id.to_string())
        // Always bound as a number (PostgreSQL keeps the first bind's type for a prepared
        // statement, and a typed NULL there breaks later numbers); $13 says whether it is one.
        .bind(new.overall_score.unwrap_or_default())
        .bind(json(&new.criteria)?)
        .bind(json(&new.strengths)?)
        .bind(json(&new.areas_to_improve)?)
        .bind(&new.model)
        .bind(&new.raw_output)
        .bind(now)
        .bind(new.score_band.map(|b| b.as_str()))
        .bind(json(&new.score_basis)?)
        .bind(new.rubric_version)
        .bind(i64::from(new.overall_score.is_some()))
        .bind(json(&new.facts)?)
        .bind(new.gate_table.as_ref().map(json).transpose()?)
        .bind(new.integrity.hold_reason.as_deref())
        .bind(json(&new.integrity.manipulation_signals)?)
        .bind(json(&new.integrity.downgraded_checks)?)
        .execute(&mut *tx)
        .await
        .map_err(|e| match violation(&e) {
            Some(Violation::Unique(_)) => Error::conflict("the session already has an evaluation"),
            _ => e.into(),
        })?;
        let flag_ids = Self::insert_flags_tx(&mut tx, account_id, new.session_id, &new.flags).await?;
        Self::insert_truth_tx(&mut tx, account_id, new.session_id, evaluation_id, truth, now).await?;
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
        // The events, in this transaction: they exist exactly when the evaluation does (a held
        // evaluation keeps them deferred on its row until it is released).
        let ctx = crate::partner::session_context(&mut tx, new.session_id).await?;
        // A test run grades an AI counselor: no partner hears of it and no analysis follows.
        if !ctx.test_run {
            let data = serde_json::json!({
                "evaluation_id": evaluation_id, "session_id": new.session_id, "assignment_id": ctx.assignment_id,
                "attempt": ctx.attempt, "user_id": ctx.user_external_id, "overall_score": new.overall_score,
            });
            crate::partner::enqueue_or_defer_event_tx(
                &mut tx,
                account_id,
                new.session_id,
                WebhookEvent::EvaluationCompleted,
                &serde_json::json!({ "data": data }),
            )
            .await?;
            if let (true, Some(assignment_id)) = (completed, ctx.assignment_id) {
                let data = serde_json::json!({
                    "assignment_id": assignment_id, "scenario_id": ctx.scenario_id, "user_id": ctx.user_external_id,
                    "session_id": new.session_id,
                });
                crate::partner::enqueue_or_defer_event_tx(
                    &mut tx,
                    account_id,
                    new.session_id,
                    WebhookEvent::AssignmentCompleted,
                    &serde_json::json!({ "data": data }),
                )
                .await?;
            }
            // The second pass over the call follows every evaluation; queued here so that a restart
            // right after this commit still runs it.
            crate::jobs::enqueue_tx(&mut tx, JobKind::AnalyzeSession, account_id, new.session_id, None, now).await?;
        }
        tx.commit().await?;
        self.wake_jobs();
        let evaluation = self.evaluation_of(new.session_id).await?.ok_or(Error::NotFound("evaluation"))?;
        Ok((evaluation, flag_ids))
    }

    /// The raw model output of a session's evaluation (audit).
    /// For tests only (not in the production binary).
    #[cfg(feature = "testing")]
    pub async fn evaluation_raw_output(&self, session: &SessionRef) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT raw_output FROM evaluations WHERE session_id = $1")
            .bind(session.id().to_string())
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The AI's evaluation of a session exactly as stored, without supervisor overrides. Named
    /// for what it is: whatever shows an evaluation to a person or a partner reads the reviewed
    /// one (`admin::evaluation::session_evaluation`), which starts here.
    pub async fn ai_evaluation_raw(&self, session: &SessionRef) -> Result<Option<Evaluation>> {
        self.evaluation_of(session.id()).await
    }

    /// The stored evaluation by session id, for the store's own writes that have just checked
    /// the session's account.
    pub(crate) async fn evaluation_of(&self, session_id: SessionId) -> Result<Option<Evaluation>> {
        let row = sqlx::query(&format!("SELECT {EVALUATION_COLUMNS} FROM evaluations WHERE session_id = $1"))
            .bind(session_id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        let Some(mut evaluation) = row.as_ref().map(Evaluation::from_row).transpose()? else { return Ok(None) };
        evaluation.suggestions = self.suggestions(session_id).await?;
        Ok(Some(evaluation))
    }

    /// What the graders answered for a session's evaluation, exactly as received (audit).
    pub async fn grader_audit(&self, session: &SessionRef) -> Result<Option<GraderAudit>> {
        let row = sqlx::query(
            "SELECT model, rubric_version, raw_output, truth_model, truth_prompt_version, truth_raw_output \
             FROM evaluations WHERE session_id = $1",
        )
        .bind(session.id().to_string())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let truth = match (row.opt_text("truth_model")?, row.opt_int("truth_prompt_version")?) {
            (Some(model), Some(prompt_version)) => Some(GraderOutput {
                model,
                prompt_version,
                raw_output: row.opt_text("truth_raw_output")?.unwrap_or_default(),
            }),
            _ => None,
        };
        Ok(Some(GraderAudit {
            rubric: GraderOutput {
                model: row.text("model")?,
                prompt_version: row.int("rubric_version")?,
                raw_output: row.text("raw_output")?,
            },
            truth,
        }))
    }

    /// The stored evaluations of many sessions (without their suggestions, which no score
    /// reads), in one query per [`IN_LIST_MAX`] sessions: for lists. The ids come from handles
    /// (account-checked) the caller holds.
    pub(crate) async fn evaluations_of_many(&self, ids: &[SessionId]) -> Result<Vec<Evaluation>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IN_LIST_MAX) {
            let sql = format!(
                "SELECT {EVALUATION_COLUMNS} FROM evaluations WHERE session_id IN ({})",
                placeholders(1, chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(id.to_string());
            }
            for row in query.fetch_all(&self.pool).await? {
                out.push(Evaluation::from_row(&row)?);
            }
        }
        Ok(out)
    }

    /// The truth assessment's column and rows, in the evaluation's transaction.
    async fn insert_truth_tx(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        account_id: AccountId,
        session_id: SessionId,
        evaluation_id: Uuid,
        truth: &TruthRecord,
        now: i64,
    ) -> Result<()> {
        if let Some(grader) = &truth.grader {
            sqlx::query(
                "UPDATE evaluations SET truth_model = $1, truth_prompt_version = $2, truth_raw_output = $3 WHERE id = $4",
            )
            .bind(&grader.model)
            .bind(grader.prompt_version)
            .bind(&grader.raw_output)
            .bind(evaluation_id.to_string())
            .execute(&mut **tx)
            .await?;
        }
        if let Some(assessment) = &truth.truth {
            sqlx::query("UPDATE evaluations SET truth = $1 WHERE id = $2")
                .bind(json(assessment)?)
                .bind(evaluation_id.to_string())
                .execute(&mut **tx)
                .await?;
            if let Some(scenario_id) = truth.scenario_id {
                for d in &assessment.deviations {
                    sqlx::query(
                        "INSERT INTO caller_deviations (id, account_id, session_id, scenario_id, fact_key, kind, turns, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(new_id().to_string())
                    .bind(account_id.to_string())
                    .bind(session_id.to_string())
                    .bind(scenario_id.to_string())
                    .bind(&d.fact_key)
                    .bind(d.kind.as_str())
                    .bind(json(&d.turns)?)
                    .bind(now)
                    .execute(&mut **tx)
                    .await?;
                }
            }
        }
        for (position, s) in truth.suggestions.iter().enumerate() {
            sqlx::query(
                "INSERT INTO evaluation_suggestions (id, session_id, target, turn, text, ai_text, position, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $7) ON CONFLICT (session_id, target) DO NOTHING",
            )
            .bind(new_id().to_string())
            .bind(session_id.to_string())
            .bind(&s.target)
            .bind(i64::from(s.turn))
            .bind(&s.text)
            .bind(position as i64)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// A session's suggestions in force (not removed), in the evaluator's order.
    pub async fn suggestions(&self, session_id: SessionId) -> Result<Vec<Suggestion>> {
        let rows = sqlx::query(
            "SELECT id, target, turn, text, ai_text FROM evaluation_suggestions \
             WHERE session_id = $1 AND removed_at IS NULL ORDER BY position, id",
        )
        .bind(session_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let text = row.text("text")?;
                let ai_text = row.text("ai_text")?;
                Ok(Suggestion {
                    id: row.uuid("id")?,
                    target: row.text("target")?,
                    turn: u32::try_from(row.int("turn")?).map_err(|e| Error::Corrupt(e.to_string()))?,
                    ai_text: (ai_text != text).then_some(ai_text),
                    text,
                })
            })
            .collect()
    }

    /// A supervisor edits (`Some(text)`) or removes (`None`) one of the account's suggestions,
    /// audited in the same transaction. Answers the suggestion as it now stands (None: removed).
    pub async fn review_suggestion(
        &self,
        account_id: AccountId,
        suggestion_id: Uuid,
        text: Option<&str>,
        audit: &Audit,
    ) -> Result<Option<Suggestion>> {
        let now = Timestamp::now().millis();
        let mut tx = self.write_tx().await?;
        let lock = crate::db::for_update(&tx);
        let row = sqlx::query(&format!(
            "SELECT g.text, g.target, g.session_id FROM evaluation_suggestions g JOIN sessions s ON s.id = g.session_id \
             WHERE g.id = $1 AND s.account_id = $2 AND g.removed_at IS NULL{lock}"
        ))
        .bind(suggestion_id.to_string())
        .bind(account_id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound("suggestion"))?;
        let before = row.text("text")?;
        let session_id: SessionId = row.uuid("session_id")?;
        let editor = audit.actor_user_id.map(|u| u.to_string());
        match text {
            Some(text) => {
                sqlx::query(
                    "UPDATE evaluation_suggestions SET text = $1, edited_by = $2, updated_at = $3 WHERE id = $4",
                )
                .bind(text)
                .bind(editor)
                .bind(now)
                .bind(suggestion_id.to_string())
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query(
                    "UPDATE evaluation_suggestions SET removed_at = $1, edited_by = $2, updated_at = $1 WHERE id = $3",
                )
                .bind(now)
                .bind(editor)
                .bind(suggestion_id.to_string())
                .execute(&mut *tx)
                .await?;
            }
        }
        let mut audit = audit.clone().target("suggestion", suggestion_id);
        audit.details["sessionId"] = serde_json::json!(session_id);
        audit.details["suggestionTarget"] = serde_json::json!(row.text("target")?);
        audit.details["before"] = serde_json::json!(before);
        audit.details["after"] = serde_json::json!(text);
        audit_tx(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(self.suggestions(session_id).await?.into_iter().find(|s| s.id == suggestion_id))
    }

    /// Releases an evaluation held for review: it stops being held, the webhook events it
    /// deferred are queued (`evaluation.completed` with `overall_score`, the reviewed score), and
    /// the release is audited — one transaction, the evaluation's row locked so that a flag
    /// raised concurrently is either deferred before or fired after. Not held: a conflict.
    pub async fn release_held_evaluation(
        &self,
        account_id: AccountId,
        session_id: SessionId,
        overall_score: Option<f64>,
        audit: &Audit,
    ) -> Result<usize> {
        let now = Timestamp::now().millis();
        let mut tx = self.write_tx().await?;
        let lock = crate::db::for_update(&tx);
        let row = sqlx::query(&format!(
            "SELECT e.id, e.held, e.deferred_events FROM evaluations e JOIN sessions s ON s.id = e.session_id \
             WHERE e.session_id = $1 AND s.account_id = $2{lock}"
        ))
        .bind(session_id.to_string())
        .bind(account_id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound("evaluation"))?;
        if !row.flag("held")? {
            return Err(Error::conflict("the evaluation is not held for review"));
        }
        let evaluation_id = row.text("id")?;
        let deferred: Vec<crate::partner::DeferredEvent> = row.json("deferred_events")?;
        sqlx::query(
            "UPDATE evaluations SET held = FALSE, released_at = $1, released_by = $2, deferred_events = '[]' WHERE id = $3",
        )
        .bind(now)
        .bind(audit.actor_user_id.map(|u| u.to_string()))
        .bind(&evaluation_id)
        .execute(&mut *tx)
        .await?;
        let mut queued = 0;
        for mut event in deferred {
            if event.event == WebhookEvent::EvaluationCompleted {
                event.payload["data"]["overall_score"] = serde_json::json!(overall_score);
            }
            queued += crate::partner::enqueue_event_tx(&mut tx, account_id, event.event, &event.payload).await?;
        }
        let mut audit = audit.clone().target("evaluation", &evaluation_id);
        audit.details["sessionId"] = serde_json::json!(session_id);
        audit.details["deliveriesQueued"] = serde_json::json!(queued);
        audit_tx(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(queued)
    }
}

fn json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Corrupt(e.to_string()))
}
