//! Practice sessions (chat or voice attempts) and their transcripts.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::db::{RowExt, Store, for_update, page};
use crate::domain::{
    AssignmentStatus, EndReason, SessionKind, SessionListType, SessionStatus, Speaker, Timestamp, new_id,
};
use crate::error::{Error, Result, Violation, violation};
use crate::evaluations::Evaluation;
use crate::ids::{AccountId, AssignmentId, ScenarioId, SessionId, UserId};

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    #[schema(value_type = Uuid)]
    pub id: SessionId,
    #[schema(value_type = Uuid)]
    pub account_id: AccountId,
    /// The counselor practising.
    #[schema(value_type = Uuid)]
    pub user_id: UserId,
    /// None for free practice.
    #[schema(value_type = Option<Uuid>)]
    pub assignment_id: Option<AssignmentId>,
    /// None for free practice.
    #[schema(value_type = Option<Uuid>)]
    pub scenario_id: Option<ScenarioId>,
    /// 1 for an assignment's first attempt, 2 for its second, ...
    pub attempt_number: Option<i64>,
    pub kind: SessionKind,
    pub status: SessionStatus,
    pub room_name: Option<String>,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    pub created_at: Timestamp,
    /// Voice: when the agent began the call with the counselor in the room; a voice session
    /// never joined is not an attempt.
    pub joined_at: Option<Timestamp>,
    /// Voice: why the call ended.
    pub end_reason: Option<EndReason>,
}

pub(crate) const SESSION_COLUMNS: &str = "id, account_id, user_id, assignment_id, scenario_id, attempt_number, kind, status, \
    room_name, started_at, ended_at, created_at, joined_at, end_reason";

impl Session {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(Session {
            id: row.uuid("id")?,
            account_id: row.uuid("account_id")?,
            user_id: row.uuid("user_id")?,
            assignment_id: row.opt_uuid("assignment_id")?,
            scenario_id: row.opt_uuid("scenario_id")?,
            attempt_number: row.opt_int("attempt_number")?,
            kind: row.parsed("kind")?,
            status: row.parsed("status")?,
            room_name: row.opt_text("room_name")?,
            started_at: row.ts("started_at")?,
            ended_at: row.opt_ts("ended_at")?,
            created_at: row.ts("created_at")?,
            joined_at: row.opt_ts("joined_at")?,
            end_reason: row.opt_parsed("end_reason")?,
        })
    }
}

/// A session with its transcript, in spoken order, and its evaluation once there is one.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionDetail {
    #[serde(flatten)]
    pub session: Session,
    pub transcript: Vec<TranscriptTurn>,
    pub evaluation: Option<Evaluation>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TranscriptTurn {
    pub id: Uuid,
    pub speaker: Speaker,
    pub text: String,
    /// Milliseconds from the session's start to when the turn began being spoken.
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewSession {
    pub user_id: UserId,
    pub assignment_id: Option<AssignmentId>,
    /// For free practice with a chosen scenario; taken from the assignment otherwise.
    pub scenario_id: Option<ScenarioId>,
    pub kind: SessionKind,
    pub room_name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewTurn {
    pub speaker: Speaker,
    pub text: String,
    #[schema(minimum = 0)]
    pub started_ms: i64,
    #[serde(default)]
    #[schema(minimum = 0)]
    pub ended_ms: Option<i64>,
    /// A sender's id for the turn; re-sending the same id does not duplicate it.
    #[serde(default)]
    pub segment_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct SessionFilter {
    #[serde(default, rename = "type")]
    #[param(rename = "type", inline)]
    pub list_type: SessionListType,
    #[param(value_type = Option<Uuid>)]
    pub user_id: Option<UserId>,
    #[param(value_type = Option<Uuid>)]
    pub assignment_id: Option<AssignmentId>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Inserts a session in the caller's transaction: for an assignment it numbers the attempt and
/// moves a pending assignment to in_progress; a completed assignment takes no new attempts.
/// Shared by [`Store::create_session`] and the voice start, which ends the previous live call
/// and inserts the new one in one transaction (`voice.rs`).
pub(crate) async fn insert_session_tx(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    account_id: AccountId,
    new: &NewSession,
) -> Result<SessionId> {
    let now = Timestamp::now().millis();
    let id = SessionId::new();
    let (scenario_id, attempt) = match new.assignment_id {
        Some(assignment_id) => {
            // Locked: completing the assignment waits for this attempt, or this sees it completed.
            let row = sqlx::query(&format!(
                "SELECT scenario_id, counselor_id, status FROM assignments WHERE id = $1 AND account_id = $2{}",
                for_update(tx)
            ))
            .bind(assignment_id.to_string())
            .bind(account_id.to_string())
            .fetch_optional(&mut **tx)
            .await?
            .ok_or(Error::NotFound("assignment"))?;
            if row.uuid::<UserId>("counselor_id")? != new.user_id {
                return Err(Error::NotFound("assignment"));
            }
            let status: AssignmentStatus = row.parsed("status")?;
            if status == AssignmentStatus::Completed {
                return Err(Error::conflict("the assignment is completed; ask for a new one to practise again"));
            }
            if status == AssignmentStatus::Pending {
                sqlx::query(
                    "UPDATE assignments SET status = 'in_progress', started_at = COALESCE(started_at, $1), updated_at = $1 \
                     WHERE id = $2",
                )
                .bind(now)
                .bind(assignment_id.to_string())
                .execute(&mut **tx)
                .await?;
            }
            let attempt: i64 = sqlx::query_scalar("SELECT COUNT(*) + 1 FROM sessions WHERE assignment_id = $1")
                .bind(assignment_id.to_string())
                .fetch_one(&mut **tx)
                .await?;
            (Some(row.uuid("scenario_id")?), Some(attempt))
        }
        None => {
            if let Some(scenario_id) = new.scenario_id {
                // Tenancy: the foreign key alone would accept another account's scenario.
                sqlx::query("SELECT 1 FROM scenarios WHERE id = $1 AND account_id = $2")
                    .bind(scenario_id.to_string())
                    .bind(account_id.to_string())
                    .fetch_optional(&mut **tx)
                    .await?
                    .ok_or(Error::NotFound("scenario"))?;
            }
            (new.scenario_id, None)
        }
    };
    sqlx::query(
        "INSERT INTO sessions (id, account_id, user_id, assignment_id, scenario_id, attempt_number, kind, status, room_name, started_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $9, $9)",
    )
    .bind(id.to_string())
    .bind(account_id.to_string())
    .bind(new.user_id.to_string())
    .bind(new.assignment_id.map(|u| u.to_string()))
    .bind(scenario_id.map(|u| u.to_string()))
    .bind(attempt)
    .bind(new.kind.as_str())
    .bind(new.room_name.as_deref())
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(|e| match violation(&e) {
        Some(Violation::Unique(what)) if what.contains("room") => Error::conflict("a session uses this room"),
        Some(Violation::Unique(_)) => Error::conflict("another attempt started at the same moment; retry"),
        Some(Violation::ForeignKey) => Error::invalid("scenarioId", "scenario or user not found"),
        _ => e.into(),
    })?;
    Ok(id)
}

impl Store {
    /// Starts a session. For an assignment it numbers the attempt and moves a pending assignment
    /// to in_progress, in one transaction; a completed assignment takes no new attempts.
    pub async fn create_session(&self, account_id: AccountId, new: &NewSession) -> Result<Session> {
        let mut tx = self.write_tx().await?;
        let id = insert_session_tx(&mut tx, account_id, new).await?;
        tx.commit().await?;
        self.session(account_id, id).await
    }
    pub async fn session(&self, account_id: AccountId, id: SessionId) -> Result<Session> {
        let row = sqlx::query(&format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1 AND account_id = $2"))
            .bind(id.to_string())
            .bind(account_id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(Error::NotFound("session"))?;
        Session::from_row(&row)
    }

    /// A session by id whatever its account, for internal callers (voice agents) that act across
    /// accounts; everything else goes through [`Store::session`].
    pub async fn session_by_id(&self, id: SessionId) -> Result<Session> {
        let row = sqlx::query(&format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(Error::NotFound("session"))?;
        Session::from_row(&row)
    }

    pub async fn session_detail(&self, account_id: AccountId, id: SessionId) -> Result<SessionDetail> {
        let session = self.session(account_id, id).await?;
        let transcript = self.transcript(id).await?;
        let evaluation = self.ai_evaluation_raw(id).await?;
        Ok(SessionDetail { session, transcript, evaluation })
    }

    pub async fn list_sessions(&self, account_id: AccountId, filter: &SessionFilter) -> Result<Vec<Session>> {
        let assigned = match filter.list_type {
            SessionListType::FreePractice => Some(false),
            SessionListType::Assigned => Some(true),
            SessionListType::All => None,
        };
        let (limit, offset) = page(filter.limit, filter.offset);
        let rows = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE account_id = $1 \
             AND ($2 IS NULL OR (assignment_id IS NOT NULL) = $2) \
             AND ($3 IS NULL OR user_id = $3) \
             AND ($4 IS NULL OR assignment_id = $4) AND test_run = FALSE \
             ORDER BY created_at DESC, id DESC LIMIT $5 OFFSET $6"
        ))
        .bind(account_id.to_string())
        .bind(assigned)
        .bind(filter.user_id.map(|u| u.to_string()))
        .bind(filter.assignment_id.map(|u| u.to_string()))
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Session::from_row).collect()
    }

    /// The transcript in the order it was spoken (not the order transcriptions arrived).
    pub async fn transcript(&self, session_id: SessionId) -> Result<Vec<TranscriptTurn>> {
        let rows = sqlx::query(
            "SELECT id, speaker, text, started_ms, ended_ms FROM transcript_turns WHERE session_id = $1 \
             ORDER BY started_ms, created_at, id",
        )
        .bind(session_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TranscriptTurn {
                    id: r.uuid("id")?,
                    speaker: r.parsed("speaker")?,
                    text: r.text("text")?,
                    started_ms: r.int("started_ms")?,
                    ended_ms: r.opt_int("ended_ms")?,
                })
            })
            .collect()
    }

    /// Appends turns as they happen. A turn whose `segment_id` is already stored is skipped, so
    /// a sender may retry a batch. Answers how many turns were new. Only an active session takes
    /// turns: once it is completed, abandoned or evaluated the append is a conflict.
    pub async fn append_turns(&self, account_id: AccountId, session_id: SessionId, turns: &[NewTurn]) -> Result<usize> {
        for (i, turn) in turns.iter().enumerate() {
            if turn.started_ms < 0 || turn.ended_ms.is_some_and(|e| e < turn.started_ms) {
                return Err(Error::invalid(&format!("turns[{i}].startedMs"), "times must be >= 0 and end after start"));
            }
            if turn.text.contains('\0') {
                return Err(Error::invalid(&format!("turns[{i}].text"), "must not contain NUL characters"));
            }
        }
        let mut tx = self.write_tx().await?;
        // Locked, so ending or evaluating the session (both write this row) waits for this append
        // or happens first and is seen here: a graded transcript never changes.
        let status: SessionStatus =
            sqlx::query(&format!("SELECT status FROM sessions WHERE id = $1 AND account_id = $2{}", for_update(&tx)))
                .bind(session_id.to_string())
                .bind(account_id.to_string())
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(Error::NotFound("session"))?
                .parsed("status")?;
        if status != SessionStatus::Active {
            return Err(Error::conflict(format!("the session is {status}; its transcript can no longer change")));
        }
        let now = Timestamp::now().millis();
        let mut added = 0;
        for turn in turns {
            let done = sqlx::query(
                "INSERT INTO transcript_turns (id, session_id, speaker, text, started_ms, ended_ms, segment_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (session_id, segment_id) WHERE segment_id IS NOT NULL DO NOTHING",
            )
            .bind(new_id().to_string())
            .bind(session_id.to_string())
            .bind(turn.speaker.as_str())
            .bind(&turn.text)
            .bind(turn.started_ms)
            .bind(turn.ended_ms)
            .bind(turn.segment_id.as_deref())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            added += done.rows_affected() as usize;
        }
        tx.commit().await?;
        Ok(added)
    }

    /// Ends an active session; ending an ended one changes nothing.
    pub async fn end_session(&self, account_id: AccountId, id: SessionId, status: SessionStatus) -> Result<Session> {
        if status == SessionStatus::Active {
            return Err(Error::invalid("status", "a session ends as completed or abandoned"));
        }
        sqlx::query(
            "UPDATE sessions SET status = $1, ended_at = $2 WHERE id = $3 AND account_id = $4 AND status = 'active'",
        )
        .bind(status.as_str())
        .bind(Timestamp::now().millis())
        .bind(id.to_string())
        .bind(account_id.to_string())
        .execute(&self.pool)
        .await?;
        self.session(account_id, id).await
    }
}
