//! What the AI pipeline remembers besides evaluations and flags: every LLM call's usage and
//! cost, the claim that lets exactly one evaluator call the LLM for a session, post-session
//! analyses, account policy documents with their passages (and embeddings) for retrieval, and
//! reviews of the documentation counselors write after a call.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::accounts::Audit;
use crate::db::{RowExt, Store};
use crate::domain::{LlmTask, Timestamp, new_id};
use crate::error::{Error, Result, Violation, violation};
use crate::flags::NewFlag;
use crate::ids::{AccountId, FlagId, ScenarioId, SessionId, UserId};
use crate::scoped::SessionRef;

/// One LLM call, as recorded for usage and cost accounting.
#[derive(Debug, Clone)]
pub struct LlmCall {
    pub account_id: Option<AccountId>,
    pub session_id: Option<SessionId>,
    pub task: LlmTask,
    pub model: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_usd: f64,
    pub latency_ms: i64,
    pub attempts: i64,
    pub error: Option<String>,
}

/// LLM usage summed over a session.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub calls: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// Estimated from the model's list price; 0 for models without a known price.
    pub cost_usd: f64,
}

/// Post-session analysis: a second pass for safety and consistency, at most one per session.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Analysis {
    pub id: Uuid,
    #[schema(value_type = Uuid)]
    pub session_id: SessionId,
    /// How many flags it raised (0: "analysis clean").
    pub findings: i64,
    pub summary: String,
    pub model: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct NewAnalysis {
    pub session_id: SessionId,
    pub summary: String,
    pub flags: Vec<NewFlag>,
    pub model: String,
    pub raw_output: String,
}

/// An uploaded policy document of an account.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    pub id: Uuid,
    #[schema(value_type = Uuid)]
    pub account_id: AccountId,
    pub file_name: String,
    pub content_type: String,
    pub byte_size: i64,
    /// Characters of extracted text.
    pub text_chars: i64,
    /// Passages stored for retrieval, and how many of them have embeddings.
    pub chunks: i64,
    pub embedded_chunks: i64,
    #[schema(value_type = Option<Uuid>)]
    pub uploaded_by: Option<UserId>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct NewPolicy {
    pub file_name: String,
    pub content_type: String,
    pub byte_size: i64,
    pub text: String,
    /// Passages with their embeddings (None without an embeddings provider).
    pub chunks: Vec<(String, Option<Vec<f32>>)>,
    pub embedding_model: Option<String>,
    pub uploaded_by: Option<UserId>,
}

/// A policy passage for retrieval.
#[derive(Debug, Clone)]
pub struct PolicyChunk {
    pub policy_id: Uuid,
    pub file_name: String,
    pub index: i64,
    pub text: String,
    pub embedding: Option<Vec<f32>>,
}

/// One gap an LLM found in a counselor's documentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DocumentGap {
    pub description: String,
    /// `low`, `medium` or `high`.
    pub severity: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DocumentReview {
    pub id: Uuid,
    #[schema(value_type = Uuid)]
    pub session_id: SessionId,
    #[schema(value_type = Uuid)]
    pub user_id: UserId,
    pub file_name: String,
    pub completeness_score: i64,
    pub accuracy_score: i64,
    pub consistency_score: i64,
    pub gaps: Vec<DocumentGap>,
    pub model: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct NewDocumentReview {
    pub session_id: SessionId,
    pub user_id: UserId,
    pub file_name: String,
    pub extracted_text: String,
    pub completeness_score: i64,
    pub accuracy_score: i64,
    pub consistency_score: i64,
    pub gaps: Vec<DocumentGap>,
    pub model: String,
    pub raw_output: String,
    /// The uploaded file's SHA-256 (hex) when the upload holds a claim
    /// ([`Store::claim_document_review`]): the claim records this review in its transaction.
    pub content_sha256: Option<String>,
}

/// Who reviews an uploaded documentation file (one claim per session and file content).
#[derive(Debug)]
pub enum ReviewClaim {
    /// This request reviews it: store the review with the hash, or release the claim on failure.
    Claimed,
    /// The same file was reviewed already: this is its review.
    Done(DocumentReview),
    /// Another request is reviewing the same file now.
    InProgress,
}

/// A documentation-review claim without a review after this long belongs to a request that died
/// (the review's model call is bounded well below it); another upload may take it over.
const STALE_REVIEW_CLAIM_MS: i64 = 5 * 60_000;

/// An evaluator claim older than this belongs to an evaluator that died; another may take over
/// (sooner when the caller's own bound on an evaluation is shorter: `claim_evaluation`).
const STALE_CLAIM_MS: i64 = 10 * 60_000;

fn json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Corrupt(e.to_string()))
}

impl Store {
    pub async fn record_llm_call(&self, call: &LlmCall) -> Result<()> {
        sqlx::query(
            "INSERT INTO llm_calls (id, account_id, session_id, task, model, prompt_tokens, completion_tokens, cost_usd, \
             latency_ms, attempts, outcome, error, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(new_id().to_string())
        .bind(call.account_id.map(|u| u.to_string()))
        .bind(call.session_id.map(|u| u.to_string()))
        .bind(call.task.as_str())
        .bind(&call.model)
        .bind(call.prompt_tokens)
        .bind(call.completion_tokens)
        .bind(call.cost_usd)
        .bind(call.latency_ms)
        .bind(call.attempts)
        .bind(if call.error.is_some() { "error" } else { "ok" })
        .bind(call.error.as_deref())
        .bind(Timestamp::now().millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// LLM usage of a session, summed over its successful calls.
    pub async fn session_usage(&self, session: &SessionRef) -> Result<Usage> {
        let row = sqlx::query(
            // PostgreSQL sums BIGINTs as NUMERIC, which `Any` cannot read: cast back.
            "SELECT COUNT(*) AS calls, CAST(COALESCE(SUM(prompt_tokens), 0) AS BIGINT) AS p, \
             CAST(COALESCE(SUM(completion_tokens), 0) AS BIGINT) AS c, \
             CAST(COALESCE(SUM(cost_usd), 0.0) AS DOUBLE PRECISION) AS cost FROM llm_calls WHERE session_id = $1 AND outcome = 'ok'",
        )
        .bind(session.id().to_string())
        .fetch_one(&self.pool)
        .await?;
        Ok(Usage {
            calls: row.int("calls")?,
            prompt_tokens: row.int("p")?,
            completion_tokens: row.int("c")?,
            cost_usd: row.float("cost")?,
        })
    }

    /// Claims the right to evaluate a session: true for exactly one of any number of racing
    /// callers, and for a taker-over of a claim older than `stale_ms` (its evaluator died: a
    /// replica killed mid-grading). `stale_ms` is the caller's bound on one evaluation (every LLM
    /// attempt timing out, plus a margin), the grading job's lease: when the lease has run out
    /// and another replica holds the job, the claim is stale too, and the job is finished then
    /// rather than failing until a fixed ten minutes have passed.
    pub async fn claim_evaluation(&self, session_id: SessionId, stale_ms: i64) -> Result<bool> {
        let now = Timestamp::now().millis();
        let done = sqlx::query(
            "UPDATE sessions SET evaluation_started_at = $1, evaluation_error = NULL WHERE id = $2 \
             AND (evaluation_started_at IS NULL OR evaluation_started_at < $3) \
             AND NOT EXISTS (SELECT 1 FROM evaluations e WHERE e.session_id = $2)",
        )
        .bind(now)
        .bind(session_id.to_string())
        .bind(now - stale_ms.min(STALE_CLAIM_MS))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives a claim back after a failed evaluation, noting why, so a retry may claim it.
    pub async fn release_evaluation(&self, session_id: SessionId, error: &str) -> Result<()> {
        sqlx::query("UPDATE sessions SET evaluation_started_at = NULL, evaluation_error = $1 WHERE id = $2")
            .bind(error)
            .bind(session_id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Whether an evaluation of the session is running now, and the last failure if any.
    pub async fn evaluation_state(&self, session: &SessionRef) -> Result<(bool, Option<String>)> {
        let session_id = session.id();
        let row = sqlx::query("SELECT evaluation_started_at, evaluation_error FROM sessions WHERE id = $1")
            .bind(session_id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(Error::NotFound("session"))?;
        let started = row.opt_int("evaluation_started_at")?;
        // A grading job queued and not yet tried counts as running: it has been asked for and
        // is about to start (once started, the claim above says it; a failed try shows its error).
        let queued: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE session_id = $1 AND kind = 'evaluate_session' AND status = 'pending' \
             AND attempts = 0",
        )
        .bind(session_id.to_string())
        .fetch_one(&self.pool)
        .await?;
        let running = (queued > 0 || started.is_some_and(|t| t >= Timestamp::now().millis() - STALE_CLAIM_MS))
            && self.evaluation_of(session_id).await?.is_none();
        Ok((running, row.opt_text("evaluation_error")?))
    }

    /// Stores a session's analysis and its flags together (a clean one with its `analysis.clean`
    /// audit record). A second analysis of the session is a
    /// conflict and changes nothing.
    pub async fn insert_analysis(&self, account_id: AccountId, new: &NewAnalysis) -> Result<(Analysis, Vec<FlagId>)> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO session_analyses (id, session_id, findings, summary, model, raw_output, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(new_id().to_string())
        .bind(new.session_id.to_string())
        .bind(new.flags.len() as i64)
        .bind(&new.summary)
        .bind(&new.model)
        .bind(&new.raw_output)
        .bind(Timestamp::now().millis())
        .execute(&mut *tx)
        .await
        .map_err(|e| match violation(&e) {
            Some(Violation::Unique(_)) => Error::conflict("the session has been analysed"),
            Some(Violation::ForeignKey) => Error::NotFound("session"),
            _ => e.into(),
        })?;
        let ids = Self::insert_flags_tx(&mut tx, account_id, new.session_id, &new.flags).await?;
        if new.flags.is_empty() {
            let clean = Audit::new(Some(account_id), None, "analysis.clean").target("session", new.session_id);
            crate::accounts::audit_tx(&mut tx, &clean).await?;
        }
        tx.commit().await?;
        self.wake_jobs();
        Ok((self.analysis_of(new.session_id).await?.ok_or(Error::NotFound("analysis"))?, ids))
    }

    pub async fn analysis(&self, session: &SessionRef) -> Result<Option<Analysis>> {
        self.analysis_of(session.id()).await
    }

    /// By session id, for the store's own write that has just stored it.
    async fn analysis_of(&self, session_id: SessionId) -> Result<Option<Analysis>> {
        let row = sqlx::query(
            "SELECT id, session_id, findings, summary, model, created_at FROM session_analyses WHERE session_id = $1",
        )
        .bind(session_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(Analysis {
                id: r.uuid("id")?,
                session_id: r.uuid("session_id")?,
                findings: r.int("findings")?,
                summary: r.text("summary")?,
                model: r.text("model")?,
                created_at: r.ts("created_at")?,
            })
        })
        .transpose()
    }

    /// Stores a policy document and its passages in one transaction.
    pub async fn insert_policy(&self, account_id: AccountId, new: &NewPolicy, audit: &Audit) -> Result<Policy> {
        let id = new_id();
        let now = Timestamp::now().millis();
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO account_policies (id, account_id, file_name, content_type, byte_size, text, uploaded_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id.to_string())
        .bind(account_id.to_string())
        .bind(&new.file_name)
        .bind(&new.content_type)
        .bind(new.byte_size)
        .bind(&new.text)
        .bind(new.uploaded_by.map(|u| u.to_string()))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        for (index, (text, embedding)) in new.chunks.iter().enumerate() {
            sqlx::query(
                "INSERT INTO policy_chunks (id, policy_id, account_id, chunk_index, text, embedding, embedding_model, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(new_id().to_string())
            .bind(id.to_string())
            .bind(account_id.to_string())
            .bind(index as i64)
            .bind(text)
            .bind(embedding.as_ref().map(json).transpose()?)
            .bind(embedding.as_ref().and(new.embedding_model.as_deref()))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        crate::accounts::audit_tx(&mut tx, &audit.clone().target("policy", id)).await?;
        tx.commit().await?;
        self.policy(account_id, id).await
    }

    const POLICY_COLUMNS: &'static str = "p.id, p.account_id, p.file_name, p.content_type, p.byte_size, \
        LENGTH(p.text) AS text_chars, p.uploaded_by, p.created_at, \
        (SELECT COUNT(*) FROM policy_chunks c WHERE c.policy_id = p.id) AS chunks, \
        (SELECT COUNT(*) FROM policy_chunks c WHERE c.policy_id = p.id AND c.embedding IS NOT NULL) AS embedded_chunks";

    fn policy_from_row(r: &AnyRow) -> Result<Policy> {
        Ok(Policy {
            id: r.uuid("id")?,
            account_id: r.uuid("account_id")?,
            file_name: r.text("file_name")?,
            content_type: r.text("content_type")?,
            byte_size: r.int("byte_size")?,
            text_chars: r.int("text_chars")?,
            chunks: r.int("chunks")?,
            embedded_chunks: r.int("embedded_chunks")?,
            uploaded_by: r.opt_uuid("uploaded_by")?,
            created_at: r.ts("created_at")?,
        })
    }

    pub async fn policy(&self, account_id: AccountId, id: Uuid) -> Result<Policy> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM account_policies p WHERE p.id = $1 AND p.account_id = $2",
            Self::POLICY_COLUMNS
        ))
        .bind(id.to_string())
        .bind(account_id.to_string())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(Error::NotFound("policy"))?;
        Self::policy_from_row(&row)
    }

    pub async fn list_policies(&self, account_id: AccountId) -> Result<Vec<Policy>> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM account_policies p WHERE p.account_id = $1 ORDER BY p.created_at, p.id",
            Self::POLICY_COLUMNS
        ))
        .bind(account_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Self::policy_from_row).collect()
    }

    pub async fn delete_policy(&self, account_id: AccountId, id: Uuid, audit: &Audit) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("DELETE FROM account_policies WHERE id = $1 AND account_id = $2")
            .bind(id.to_string())
            .bind(account_id.to_string())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound("policy"));
        }
        crate::accounts::audit_tx(&mut tx, &audit.clone().target("policy", id)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every policy passage of the account, for retrieval (a center's policies are at most a few
    /// thousand passages; ranking them in memory is cheaper than a vector index to run).
    pub async fn policy_chunks(&self, account_id: AccountId) -> Result<Vec<PolicyChunk>> {
        let rows = sqlx::query(
            "SELECT c.policy_id, p.file_name, c.chunk_index, c.text, c.embedding FROM policy_chunks c \
             JOIN account_policies p ON p.id = c.policy_id WHERE c.account_id = $1 ORDER BY p.created_at, c.chunk_index",
        )
        .bind(account_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let embedding = r.opt_text("embedding")?;
                Ok(PolicyChunk {
                    policy_id: r.uuid("policy_id")?,
                    file_name: r.text("file_name")?,
                    index: r.int("chunk_index")?,
                    text: r.text("text")?,
                    embedding: embedding
                        .map(|e| serde_json::from_str(&e).map_err(|e| Error::Corrupt(e.to_string())))
                        .transpose()?,
                })
            })
            .collect()
    }

    /// The full text of the account's policies, oldest first (the fallback without embeddings).
    pub async fn policy_texts(&self, account_id: AccountId) -> Result<Vec<(String, String)>> {
        let rows =
            sqlx::query("SELECT file_name, text FROM account_policies WHERE account_id = $1 ORDER BY created_at, id")
                .bind(account_id.to_string())
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(|r| Ok((r.text("file_name")?, r.text("text")?))).collect()
    }

    pub async fn set_evaluator_context(
        &self,
        account_id: AccountId,
        scenario_id: ScenarioId,
        text: &str,
        audit: &Audit,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE scenarios SET evaluator_context = $1, updated_at = $2 WHERE id = $3 AND account_id = $4",
        )
        .bind(text)
        .bind(Timestamp::now().millis())
        .bind(scenario_id.to_string())
        .bind(account_id.to_string())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound("scenario"));
        }
        crate::accounts::audit_tx(&mut tx, &audit.clone().target("scenario", scenario_id)).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn insert_document_review(
        &self,
        account_id: AccountId,
        new: &NewDocumentReview,
    ) -> Result<DocumentReview> {
        let id = new_id();
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO document_reviews (id, account_id, session_id, user_id, file_name, extracted_text, completeness_score, \
             accuracy_score, consistency_score, gaps, model, raw_output, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(id.to_string())
        .bind(account_id.to_string())
        .bind(new.session_id.to_string())
        .bind(new.user_id.to_string())
        .bind(&new.file_name)
        .bind(&new.extracted_text)
        .bind(new.completeness_score)
        .bind(new.accuracy_score)
        .bind(new.consistency_score)
        .bind(json(&new.gaps)?)
        .bind(&new.model)
        .bind(&new.raw_output)
        .bind(Timestamp::now().millis())
        .execute(&mut *tx)
        .await?;
        if let Some(sha) = &new.content_sha256 {
            // The claim answers repeats of this upload from now on, committed with the review.
            sqlx::query(
                "UPDATE document_review_claims SET review_id = $1 WHERE session_id = $2 AND content_sha256 = $3",
            )
            .bind(id.to_string())
            .bind(new.session_id.to_string())
            .bind(sha)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        let reviews = self.document_reviews_of(new.session_id).await?;
        reviews.into_iter().find(|r| r.id == id).ok_or(Error::NotFound("document review"))
    }

    /// Claims the review of an uploaded documentation file, identified by its SHA-256 (hex), for
    /// this session. The claim is a row keyed by session and hash, inserted with `ON CONFLICT DO
    /// NOTHING`: of concurrent uploads of the same file (a double click) exactly one inserts it,
    /// on both databases (PostgreSQL's unique check waits for the other transaction), and the
    /// others see it in progress, then its review.
    pub async fn claim_document_review(&self, session: &SessionRef, content_sha256: &str) -> Result<ReviewClaim> {
        let now = Timestamp::now().millis();
        let mut tx = self.write_tx().await?;
        let inserted = sqlx::query(
            "INSERT INTO document_review_claims (session_id, content_sha256, claimed_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(session.id().to_string())
        .bind(content_sha256)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 1 {
            tx.commit().await?;
            return Ok(ReviewClaim::Claimed);
        }
        let row = sqlx::query(
            "SELECT review_id, claimed_at FROM document_review_claims WHERE session_id = $1 AND content_sha256 = $2",
        )
        .bind(session.id().to_string())
        .bind(content_sha256)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            // Released between the insert and the read: the caller asks again.
            return Ok(ReviewClaim::InProgress);
        };
        let review_id: Option<String> = row.opt_text("review_id")?;
        let claimed_at: i64 = row.int("claimed_at")?;
        if let Some(review_id) = review_id {
            tx.commit().await?;
            let review =
                self.document_reviews_of(session.id()).await?.into_iter().find(|r| r.id.to_string() == review_id);
            return review.map(ReviewClaim::Done).ok_or(Error::NotFound("document review"));
        }
        if claimed_at < now - STALE_REVIEW_CLAIM_MS {
            // Taken over from a request that died: one winner, by the conditional update.
            let taken = sqlx::query(
                "UPDATE document_review_claims SET claimed_at = $1 \
                 WHERE session_id = $2 AND content_sha256 = $3 AND review_id IS NULL AND claimed_at = $4",
            )
            .bind(now)
            .bind(session.id().to_string())
            .bind(content_sha256)
            .bind(claimed_at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            return Ok(if taken == 1 { ReviewClaim::Claimed } else { ReviewClaim::InProgress });
        }
        tx.commit().await?;
        Ok(ReviewClaim::InProgress)
    }

    /// Gives up a claim whose review failed (the model failed, the file was refused), so the
    /// same file can be uploaded again at once.
    pub async fn release_document_review(&self, session: &SessionRef, content_sha256: &str) -> Result<()> {
        sqlx::query(
            "DELETE FROM document_review_claims WHERE session_id = $1 AND content_sha256 = $2 AND review_id IS NULL",
        )
        .bind(session.id().to_string())
        .bind(content_sha256)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn document_reviews(&self, session: &SessionRef) -> Result<Vec<DocumentReview>> {
        self.document_reviews_of(session.id()).await
    }

    /// By session id, for the store's own write that has just stored one.
    async fn document_reviews_of(&self, session_id: SessionId) -> Result<Vec<DocumentReview>> {
        let rows = sqlx::query(
            "SELECT id, session_id, user_id, file_name, completeness_score, accuracy_score, consistency_score, gaps, model, created_at \
             FROM document_reviews WHERE session_id = $1 ORDER BY created_at, id",
        )
        .bind(session_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DocumentReview {
                    id: r.uuid("id")?,
                    session_id: r.uuid("session_id")?,
                    user_id: r.uuid("user_id")?,
                    file_name: r.text("file_name")?,
                    completeness_score: r.int("completeness_score")?,
                    accuracy_score: r.int("accuracy_score")?,
                    consistency_score: r.int("consistency_score")?,
                    gaps: r.json("gaps")?,
                    model: r.text("model")?,
                    created_at: r.ts("created_at")?,
                })
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The spending ceiling (issue 22): budgets are columns of `accounts` (migration 0033); spend is
// read from `llm_calls`, whose estimated costs every LLM call records.

/// The largest monthly budget an admin can set (a typo guard, not a product limit).
const MAX_BUDGET_USD: f64 = 1_000_000.0;
/// A session cap below this would stop a chat after a handful of messages.
const MIN_SESSION_TOKENS: i64 = 1_000;
const MAX_SESSION_TOKENS: i64 = 1_000_000_000;
/// A spend report covers at most this many days (one row per day).
pub const MAX_SPEND_DAYS: i64 = 366;
const DAY_MS: i64 = 86_400_000;

/// An account's LLM spending limits, set by its admins; absent: no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountBudget {
    /// US dollars of estimated LLM cost per calendar month (UTC) for the whole account: chat,
    /// grading, analysis, drafting, documentation review, embeddings and voice calls (a call's
    /// Realtime usage counts once it has ended). Over it, new chat messages, gradings and voice
    /// calls are refused.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1000000)]
    pub monthly_budget_usd: Option<f64>,
    /// Tokens (prompt + completion) the AI caller of one session may use: a chat's messages
    /// are refused past it, a voice call is ended when its Realtime tokens (text and audio, in
    /// and out) reach it. The history sent with every turn makes a long session grow
    /// quadratically.
    #[serde(default)]
    #[schema(minimum = 1000, maximum = 1000000000)]
    pub session_token_cap: Option<i64>,
}

impl AccountBudget {
    fn problems(&self) -> Vec<crate::error::FieldError> {
        use crate::error::FieldError;
        let mut out = Vec::new();
        if let Some(b) = self.monthly_budget_usd
            && !(b.is_finite() && (0.0..=MAX_BUDGET_USD).contains(&b))
        {
            out.push(FieldError::new("monthlyBudgetUsd", format!("must be 0 to {MAX_BUDGET_USD} US dollars")));
        }
        if let Some(c) = self.session_token_cap
            && !(MIN_SESSION_TOKENS..=MAX_SESSION_TOKENS).contains(&c)
        {
            out.push(FieldError::new(
                "sessionTokenCap",
                format!("must be {MIN_SESSION_TOKENS} to {MAX_SESSION_TOKENS} tokens"),
            ));
        }
        out
    }
}

/// What the ceiling check before an LLM call reads, in one query.
#[derive(Debug, Clone, PartialEq)]
pub struct SpendCheck {
    pub budget: AccountBudget,
    /// Estimated cost of the account's LLM calls since `month_start`.
    pub spent_usd: f64,
    pub month_start: Timestamp,
    /// Tokens the session's chat calls used so far (0 without a session).
    pub session_chat_tokens: i64,
}

/// LLM spend of one counselor (their sessions' calls) in a period; `user_id` None sums the calls
/// tied to no session (drafting, documentation review, embeddings, a chat's opening message).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CounselorSpend {
    #[schema(value_type = Option<Uuid>)]
    pub user_id: Option<UserId>,
    pub display_name: Option<String>,
    pub calls: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_usd: f64,
}

/// LLM spend of the account on one UTC day.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DaySpend {
    /// The day, `YYYY-MM-DD` (UTC).
    pub day: String,
    pub calls: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_usd: f64,
}

/// An account's LLM spend in a period, per counselor and per day, with its limits.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SpendReport {
    pub from: Timestamp,
    pub to: Timestamp,
    pub budget: AccountBudget,
    /// Spent this calendar month (UTC), what the monthly budget is held against.
    pub month_spent_usd: f64,
    pub month_start: Timestamp,
    pub total_usd: f64,
    /// Most expensive first.
    pub by_counselor: Vec<CounselorSpend>,
    /// Days with calls, oldest first.
    pub by_day: Vec<DaySpend>,
}

/// The first millisecond of `at`'s calendar month (UTC).
pub fn month_start(at: Timestamp) -> Timestamp {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at.millis()) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let first = t.date().replace_day(1).unwrap_or(t.date()).midnight().assume_utc();
    Timestamp::from_millis((first.unix_timestamp_nanos() / 1_000_000) as i64)
}

fn day_label(day: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(day * 86_400)
        .map(|t| t.date().to_string())
        .unwrap_or_else(|_| day.to_string())
}

/// Sums read back through `Any`: PostgreSQL sums BIGINTs as NUMERIC, so every sum is cast.
const SUMS: &str = "COUNT(*) AS calls, CAST(COALESCE(SUM(c.prompt_tokens), 0) AS BIGINT) AS p, \
    CAST(COALESCE(SUM(c.completion_tokens), 0) AS BIGINT) AS t, \
    CAST(COALESCE(SUM(c.cost_usd), 0.0) AS DOUBLE PRECISION) AS cost";

impl Store {
    pub async fn account_budget(&self, account_id: AccountId) -> Result<AccountBudget> {
        let row = sqlx::query("SELECT llm_monthly_budget_usd, session_token_cap FROM accounts WHERE id = $1")
            .bind(account_id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(Error::NotFound("account"))?;
        budget_from_row(&row)
    }

    /// Sets an account's limits (audited with the old and new values in the same transaction).
    pub async fn set_account_budget(
        &self,
        account_id: AccountId,
        budget: &AccountBudget,
        audit: &Audit,
    ) -> Result<AccountBudget> {
        let problems = budget.problems();
        if !problems.is_empty() {
            return Err(Error::Invalid(problems));
        }
        let mut tx = self.write_tx().await?;
        let old = sqlx::query(&format!(
            "SELECT llm_monthly_budget_usd, session_token_cap FROM accounts WHERE id = $1{}",
            crate::db::for_update(&tx)
        ))
        .bind(account_id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound("account"))?;
        let old = budget_from_row(&old)?;
        sqlx::query("UPDATE accounts SET llm_monthly_budget_usd = $1, session_token_cap = $2 WHERE id = $3")
            .bind(budget.monthly_budget_usd)
            .bind(budget.session_token_cap)
            .bind(account_id.to_string())
            .execute(&mut *tx)
            .await?;
        let mut audit = audit.clone();
        audit.details = serde_json::json!({"old": old, "new": budget});
        crate::accounts::audit_tx(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(*budget)
    }

    /// What the ceiling is checked against before an LLM call: the account's limits, its spend
    /// this month and the session's chat tokens, in one query over the two `llm_calls` indexes.
    pub async fn spend_check(&self, account_id: AccountId, session_id: Option<SessionId>) -> Result<SpendCheck> {
        let month_start = month_start(Timestamp::now());
        let row = sqlx::query(
            "SELECT a.llm_monthly_budget_usd, a.session_token_cap, \
             (SELECT CAST(COALESCE(SUM(c.cost_usd), 0.0) AS DOUBLE PRECISION) FROM llm_calls c \
               WHERE c.account_id = a.id AND c.created_at >= $2) AS spent, \
             (SELECT CAST(COALESCE(SUM(c.prompt_tokens + c.completion_tokens), 0) AS BIGINT) FROM llm_calls c \
               WHERE c.session_id = $3 AND c.task = 'chat') AS tokens \
             FROM accounts a WHERE a.id = $1",
        )
        .bind(account_id.to_string())
        .bind(month_start.millis())
        .bind(session_id.map(|s| s.to_string()))
        .fetch_optional(&self.pool)
        .await?
        .ok_or(Error::NotFound("account"))?;
        Ok(SpendCheck {
            budget: budget_from_row(&row)?,
            spent_usd: row.float("spent")?,
            month_start,
            session_chat_tokens: row.int("tokens")?,
        })
    }

    /// The account's LLM spend from `from` to `to` (at most [`MAX_SPEND_DAYS`] apart), per
    /// counselor and per UTC day.
    pub async fn spend_report(&self, account_id: AccountId, from: Timestamp, to: Timestamp) -> Result<SpendReport> {
        if from > to {
            return Err(Error::invalid("from", "must not be after `to`"));
        }
        if to.millis() - from.millis() > MAX_SPEND_DAYS * DAY_MS {
            return Err(Error::invalid("from", format!("the period may span at most {MAX_SPEND_DAYS} days")));
        }
        let check = self.spend_check(account_id, None).await?;
        let counselors = sqlx::query(&format!(
            "SELECT s.user_id, u.display_name, {SUMS} FROM llm_calls c \
             LEFT JOIN sessions s ON s.id = c.session_id \
             LEFT JOIN users u ON u.id = s.user_id \
             WHERE c.account_id = $1 AND c.created_at >= $2 AND c.created_at <= $3 \
             GROUP BY s.user_id, u.display_name ORDER BY cost DESC, calls DESC"
        ))
        .bind(account_id.to_string())
        .bind(from.millis())
        .bind(to.millis())
        .fetch_all(&self.pool)
        .await?;
        let by_counselor = counselors
            .iter()
            .map(|r| {
                Ok(CounselorSpend {
                    user_id: r.opt_uuid("user_id")?,
                    display_name: r.opt_text("display_name")?,
                    calls: r.int("calls")?,
                    prompt_tokens: r.int("p")?,
                    completion_tokens: r.int("t")?,
                    cost_usd: r.float("cost")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        // Integer division by a day's milliseconds: the same UTC day on both backends.
        let days = sqlx::query(&format!(
            "SELECT c.created_at / {DAY_MS} AS day, {SUMS} FROM llm_calls c \
             WHERE c.account_id = $1 AND c.created_at >= $2 AND c.created_at <= $3 \
             GROUP BY c.created_at / {DAY_MS} ORDER BY day"
        ))
        .bind(account_id.to_string())
        .bind(from.millis())
        .bind(to.millis())
        .fetch_all(&self.pool)
        .await?;
        let by_day = days
            .iter()
            .map(|r| {
                Ok(DaySpend {
                    day: day_label(r.int("day")?),
                    calls: r.int("calls")?,
                    prompt_tokens: r.int("p")?,
                    completion_tokens: r.int("t")?,
                    cost_usd: r.float("cost")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let total_usd = by_day.iter().map(|d| d.cost_usd).sum();
        Ok(SpendReport {
            from,
            to,
            budget: check.budget,
            month_spent_usd: check.spent_usd,
            month_start: check.month_start,
            total_usd,
            by_counselor,
            by_day,
        })
    }
}

/// Records a voice call's Realtime usage as one `llm_calls` row (task `voice`), inside the
/// transaction that stores the call's end: it then counts toward the account's monthly budget
/// and shows in the spend report under the call's counselor. Prompt tokens are the input (text
/// and audio, cached included), completion tokens the output; `cost_usd` is the per-model
/// estimate (audio priced apart, [`crate::voice::realtime_cost_usd`]), 0 for an unknown model.
pub(crate) async fn record_voice_spend_tx(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    session: &crate::sessions::Session,
    usage: &crate::voice::RealtimeUsage,
    cost_usd: Option<f64>,
    now: i64,
) -> Result<()> {
    let tokens = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    sqlx::query(
        "INSERT INTO llm_calls (id, account_id, session_id, task, model, prompt_tokens, completion_tokens, cost_usd, \
         latency_ms, attempts, outcome, error, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, 'ok', NULL, $10)",
    )
    .bind(new_id().to_string())
    .bind(session.account_id.to_string())
    .bind(session.id.to_string())
    .bind(LlmTask::Voice.as_str())
    .bind(&usage.model)
    .bind(tokens(usage.input_text_tokens.saturating_add(usage.input_audio_tokens)))
    .bind(tokens(usage.output_text_tokens.saturating_add(usage.output_audio_tokens)))
    .bind(cost_usd.unwrap_or(0.0))
    // The call's length: the "latency" of one call that lasted the whole session.
    .bind((now - session.started_at.millis()).max(0))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn budget_from_row(row: &AnyRow) -> Result<AccountBudget> {
    use sqlx::Row;
    Ok(AccountBudget {
        monthly_budget_usd: row
            .try_get::<Option<f64>, _>("llm_monthly_budget_usd")
            .map_err(|e| Error::Corrupt(format!("column llm_monthly_budget_usd: {e}")))?,
        session_token_cap: row.opt_int("session_token_cap")?,
    })
}

#[cfg(test)]
mod spend_tests {
    use super::*;

    #[test]
    fn months_start_on_the_first_at_midnight_utc() {
        let t = Timestamp::parse("2026-03-17T15:04:05Z").expect("time");
        assert_eq!(month_start(t), Timestamp::parse("2026-03-01T00:00:00Z").expect("time"));
        let first = Timestamp::parse("2026-01-01T00:00:00Z").expect("time");
        assert_eq!(month_start(first), first);
        assert_eq!(day_label(first.millis() / DAY_MS), "2026-01-01");
    }

    #[test]
    fn budgets_are_validated() {
        let ok = AccountBudget { monthly_budget_usd: Some(0.0), session_token_cap: Some(50_000) };
        assert!(ok.problems().is_empty());
        let bad = AccountBudget { monthly_budget_usd: Some(-1.0), session_token_cap: Some(10) };
        let fields: Vec<_> = bad.problems().into_iter().map(|f| f.field).collect();
        assert_eq!(fields, ["monthlyBudgetUsd", "sessionTokenCap"]);
        assert_eq!(AccountBudget { monthly_budget_usd: Some(f64::NAN), ..ok }.problems().len(), 1);
    }
}
