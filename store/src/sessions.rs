//! Practice sessions (chat or voice attempts) and their transcripts.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::db::{RowExt, Store, for_update, page};
use crate::domain::{
    AssignmentStatus, EndReason, ScoreBand, SessionKind, SessionListType, SessionSort, SessionStatus, Speaker,
    Timestamp, new_id,
};
use crate::error::{Error, Result, Violation, violation};
use crate::evaluations::Evaluation;
use crate::ids::{AccountId, AssignmentId, ScenarioId, SessionId, UserId};
use crate::scoped::SessionRef;

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
    #[param(value_type = Option<Uuid>)]
    pub scenario_id: Option<ScenarioId>,
    pub status: Option<SessionStatus>,
    /// Started at or after this instant.
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<Timestamp>,
    /// Started before this instant.
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<Timestamp>,
    /// Words in the scenario's title or the counselor's name or e-mail (at most 200 characters).
    pub q: Option<String>,
    /// Default `newest`; by score, sessions without one come last.
    pub sort: Option<SessionSort>,
    /// Only sessions a supervisor should look at: an open flag, an evaluation held for review,
    /// or evaluated below 50 and not yet reviewed by a supervisor.
    pub needs_review: Option<bool>,
    /// Page size, 1 to 500 (default 100).
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// A row of a session list: the session with what a supervisor scans a list for.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionListItem {
    #[serde(flatten)]
    pub session: Session,
    /// None for free practice with an improvised caller.
    pub scenario_title: Option<String>,
    pub counselor_name: String,
    /// The stored score; the service answers the reviewed one (none while held, for counselors).
    pub overall_score: Option<f64>,
    pub score_band: Option<ScoreBand>,
    /// Evaluated and held for a supervisor's review.
    pub held: bool,
    /// A supervisor reviewed (calibrated) the evaluation.
    pub reviewed: bool,
    /// Flags raised on the session, and how many are open (supervisors only; 0 for counselors).
    pub flags: i64,
    pub open_flags: i64,
    pub needs_review: bool,
}

/// The "needs review" rule, over `s` (session), `e` (its evaluation, left-joined).
const NEEDS_REVIEW: &str = "(EXISTS (SELECT 1 FROM session_flags nf WHERE nf.session_id = s.id AND nf.status = 'open') \
    OR (e.held = TRUE AND e.released_at IS NULL) \
    OR (e.overall_score < 50 AND NOT EXISTS (SELECT 1 FROM evaluation_reviews nr WHERE nr.session_id = s.id)))";

impl SessionFilter {
    /// Refuses what no list can answer (422): a date range ending before it starts, a search
    /// too long to be one.
    pub fn validate(&self) -> Result<()> {
        if let (Some(from), Some(to)) = (self.from, self.to)
            && from.millis() > to.millis()
        {
            return Err(Error::invalid("to", "the end date is before the start date"));
        }
        if self.q.as_deref().is_some_and(|q| q.chars().count() > 200) {
            return Err(Error::invalid("q", "the search is at most 200 characters"));
        }
        Ok(())
    }
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

/// See [`Store::resumable_chat`].
async fn resumable_chat_tx(
    conn: &mut sqlx::AnyConnection,
    account_id: AccountId,
    new: &NewSession,
) -> Result<Option<SessionId>> {
    let row = match new.assignment_id {
        Some(assignment_id) => {
            sqlx::query(
                "SELECT s.id FROM sessions s JOIN assignments a ON a.id = s.assignment_id \
                 WHERE s.account_id = $1 AND s.user_id = $2 AND s.kind = 'chat' AND s.status = 'active' \
                 AND s.assignment_id = $3 AND a.status = 'in_progress' ORDER BY s.created_at DESC, s.id DESC LIMIT 1",
            )
            .bind(account_id.to_string())
            .bind(new.user_id.to_string())
            .bind(assignment_id.to_string())
            .fetch_optional(&mut *conn)
            .await?
        }
        None => {
            sqlx::query(
                "SELECT s.id FROM sessions s WHERE s.account_id = $1 AND s.user_id = $2 AND s.kind = 'chat' \
                 AND s.status = 'active' AND s.assignment_id IS NULL \
                 AND (($3 IS NULL AND s.scenario_id IS NULL) OR s.scenario_id = $3) \
                 AND NOT EXISTS (SELECT 1 FROM transcript_turns t WHERE t.session_id = s.id AND t.speaker = 'counselor') \
                 ORDER BY s.created_at DESC, s.id DESC LIMIT 1",
            )
            .bind(account_id.to_string())
            .bind(new.user_id.to_string())
            .bind(new.scenario_id.map(|u| u.to_string()))
            .fetch_optional(&mut *conn)
            .await?
        }
    };
    row.map(|r| r.uuid("id")).transpose()
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
    /// The chat attempt in progress that a start would repeat, if any: for an assignment in
    /// progress, its active chat session (a supervisor's reset to pending puts an abandoned one
    /// aside: the next start is a new attempt); for free practice, an active one on the same scenario (or none)
    /// where the counselor has not written yet. Starting again resumes it, so a double click or
    /// a second tab is one attempt, not two.
    pub async fn resumable_chat(&self, account_id: AccountId, new: &NewSession) -> Result<Option<Session>> {
        let mut conn = self.pool.acquire().await?;
        let id = resumable_chat_tx(&mut conn, account_id, new).await?;
        drop(conn);
        match id {
            Some(id) => Ok(Some(self.session(account_id, id).await?)),
            None => Ok(None),
        }
    }

    /// Starts a chat session with the caller's opening turn, in one transaction, unless a start
    /// already made one ([`Store::resumable_chat`], decided under the counselor's row lock so two
    /// racing starts cannot both insert): answers the session and whether it was resumed (then
    /// `opening` is not stored).
    pub async fn start_chat_session(
        &self,
        account_id: AccountId,
        new: &NewSession,
        opening: &NewTurn,
    ) -> Result<(Session, bool)> {
        let mut tx = self.write_tx().await?;
        sqlx::query(&format!("SELECT 1 FROM users WHERE id = $1 AND account_id = $2{}", for_update(&tx)))
            .bind(new.user_id.to_string())
            .bind(account_id.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(Error::NotFound("user"))?;
        if let Some(id) = resumable_chat_tx(&mut tx, account_id, new).await? {
            tx.commit().await?;
            return Ok((self.session(account_id, id).await?, true));
        }
        let id = insert_session_tx(&mut tx, account_id, new).await?;
        sqlx::query(
            "INSERT INTO transcript_turns (id, session_id, speaker, text, started_ms, ended_ms, segment_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL, $7)",
        )
        .bind(new_id().to_string())
        .bind(id.to_string())
        .bind(opening.speaker.as_str())
        .bind(&opening.text)
        .bind(opening.started_ms)
        .bind(opening.ended_ms)
        .bind(Timestamp::now().millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((self.session(account_id, id).await?, false))
    }

    /// The account's session row (its metadata, no transcript): what lists and writes need. Its
    /// data is read through a [`SessionRef`] from [`Store::session_in`] or
    /// [`Store::session_for_reader`].
    pub async fn session(&self, account_id: AccountId, id: SessionId) -> Result<Session> {
        Ok(self.session_in(account_id, id).await?.into_session())
    }

    /// The session with its transcript and the AI's evaluation.
    pub async fn session_detail(&self, session: &SessionRef) -> Result<SessionDetail> {
        let transcript = self.transcript(session).await?;
        let evaluation = self.ai_evaluation_raw(session).await?;
        Ok(SessionDetail { session: session.session().clone(), transcript, evaluation })
    }

    /// Sessions by the filter (see [`SessionFilter`]); newest first unless sorted otherwise.
    pub async fn list_sessions(&self, account_id: AccountId, filter: &SessionFilter) -> Result<Vec<Session>> {
        Ok(self.session_list(account_id, filter).await?.into_iter().map(|i| i.session).collect())
    }

    /// [`Store::list_sessions`] with each row's scenario, counselor, stored score and flags.
    pub async fn session_list(&self, account_id: AccountId, filter: &SessionFilter) -> Result<Vec<SessionListItem>> {
        Ok(self.session_list_with_handles(account_id, filter).await?.into_iter().map(|(_, item)| item).collect())
    }

    /// [`Store::session_list`] with each listed session's handle, so the list's sessions' data
    /// (their evaluations, for the score everyone reads) can be read for the whole page at once.
    pub async fn session_list_with_handles(
        &self,
        account_id: AccountId,
        filter: &SessionFilter,
    ) -> Result<Vec<(SessionRef, SessionListItem)>> {
        filter.validate()?;
        let assigned = match filter.list_type {
            SessionListType::FreePractice => Some(false),
            SessionListType::Assigned => Some(true),
            SessionListType::All => None,
        };
        let (limit, offset) = page(filter.limit, filter.offset);
        let order = match filter.sort.unwrap_or_default() {
            SessionSort::Newest => "s.created_at DESC, s.id DESC",
            SessionSort::Oldest => "s.created_at, s.id",
            SessionSort::ScoreLow => {
                "CASE WHEN e.overall_score IS NULL THEN 1 ELSE 0 END, e.overall_score, s.created_at DESC, s.id DESC"
            }
            SessionSort::ScoreHigh => {
                "CASE WHEN e.overall_score IS NULL THEN 1 ELSE 0 END, e.overall_score DESC, s.created_at DESC, s.id DESC"
            }
        };
        let columns = SESSION_COLUMNS.split(", ").map(|c| format!("s.{c}")).collect::<Vec<_>>().join(", ");
        let q = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()).map(crate::db::like_pattern);
        let rows = sqlx::query(&format!(
            "SELECT {columns}, sc.title AS scenario_title, u.display_name AS counselor_name, \
             e.overall_score, e.score_band, \
             CASE WHEN e.held = TRUE AND e.released_at IS NULL THEN 1 ELSE 0 END AS held_now, \
             CASE WHEN EXISTS (SELECT 1 FROM evaluation_reviews r WHERE r.session_id = s.id) THEN 1 ELSE 0 END AS reviewed, \
             (SELECT COUNT(*) FROM session_flags f WHERE f.session_id = s.id) AS flag_count, \
             (SELECT COUNT(*) FROM session_flags f WHERE f.session_id = s.id AND f.status = 'open') AS open_flag_count, \
             CASE WHEN {NEEDS_REVIEW} THEN 1 ELSE 0 END AS needs_review \
             FROM sessions s JOIN users u ON u.id = s.user_id LEFT JOIN scenarios sc ON sc.id = s.scenario_id \
             LEFT JOIN evaluations e ON e.session_id = s.id \
             WHERE s.account_id = $1 AND s.test_run = FALSE \
             AND ($2 IS NULL OR (s.assignment_id IS NOT NULL) = $2) \
             AND ($3 IS NULL OR s.user_id = $3) \
             AND ($4 IS NULL OR s.assignment_id = $4) \
             AND ($5 IS NULL OR s.scenario_id = $5) \
             AND ($6 IS NULL OR s.status = $6) \
             AND ($7 IS NULL OR s.started_at >= $7) \
             AND ($8 IS NULL OR s.started_at < $8) \
             AND ($9 IS NULL OR LOWER(COALESCE(sc.title, '')) LIKE $9 ESCAPE '\\' OR LOWER(u.display_name) LIKE $9 ESCAPE '\\' \
                  OR LOWER(u.email) LIKE $9 ESCAPE '\\') \
             AND ($10 IS NULL OR $10 = FALSE OR {NEEDS_REVIEW}) \
             ORDER BY {order} LIMIT $11 OFFSET $12"
        ))
        .bind(account_id.to_string())
        .bind(assigned)
        .bind(filter.user_id.map(|u| u.to_string()))
        .bind(filter.assignment_id.map(|u| u.to_string()))
        .bind(filter.scenario_id.map(|u| u.to_string()))
        .bind(filter.status.map(SessionStatus::as_str))
        .bind(filter.from.map(Timestamp::millis))
        .bind(filter.to.map(Timestamp::millis))
        .bind(q)
        .bind(filter.needs_review)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let session = Session::from_row(row)?;
                let item = SessionListItem {
                    session: session.clone(),
                    scenario_title: row.opt_text("scenario_title")?,
                    counselor_name: row.text("counselor_name")?,
                    overall_score: row
                        .try_get::<Option<f64>, _>("overall_score")
                        .map_err(|e| Error::Corrupt(format!("overall_score: {e}")))?,
                    score_band: row.opt_parsed("score_band")?,
                    held: row.flag("held_now")?,
                    reviewed: row.flag("reviewed")?,
                    flags: row.int("flag_count")?,
                    open_flags: row.int("open_flag_count")?,
                    needs_review: row.flag("needs_review")?,
                };
                // Read under the account's check above, like `Store::sessions_in`'s handles.
                Ok((SessionRef::new(session), item))
            })
            .collect()
    }

    /// The transcript in the order it was spoken (not the order transcriptions arrived).
    pub async fn transcript(&self, session: &SessionRef) -> Result<Vec<TranscriptTurn>> {
        let rows = sqlx::query(
            "SELECT id, speaker, text, started_ms, ended_ms FROM transcript_turns WHERE session_id = $1 \
             ORDER BY started_ms, created_at, id",
        )
        .bind(session.id().to_string())
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
