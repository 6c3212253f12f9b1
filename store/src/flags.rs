//! Safety and consistency flags on practice sessions, raised by the evaluation, the analysis or a
//! counselor's report, and reviewed by a supervisor.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use utoipa::{IntoParams, ToSchema};

use crate::accounts::{Audit, audit_tx};
use crate::db::{IN_LIST_MAX, RowExt, Store, page, placeholders};
use crate::domain::{FlagSeverity, FlagSource, FlagStatus, FlagType, JobKind, Timestamp};
use crate::error::{Error, Result};
use crate::ids::{AccountId, FlagId, SessionId, UserId};
use crate::scoped::SessionRef;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionFlag {
    #[schema(value_type = Uuid)]
    pub id: FlagId,
    #[schema(value_type = Uuid)]
    pub account_id: AccountId,
    #[schema(value_type = Uuid)]
    pub session_id: SessionId,
    pub flag_type: FlagType,
    pub severity: FlagSeverity,
    pub source: FlagSource,
    pub status: FlagStatus,
    pub details: String,
    /// Transcript turn numbers (1-based) the flag rests on.
    pub turns: Vec<u32>,
    pub review_note: Option<String>,
    #[schema(value_type = Option<Uuid>)]
    pub reviewed_by: Option<UserId>,
    pub reviewed_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The counselor whose session it is (the queue names them).
    #[schema(value_type = Uuid)]
    pub counselor_id: UserId,
    pub counselor_name: String,
    /// The session's scenario; none for free practice with an improvised caller.
    pub scenario_title: Option<String>,
}

/// A flag's columns with the session's counselor and scenario (`f` the flag, `s` the session).
const FLAG_SELECT: &str = "SELECT f.id, f.account_id, f.session_id, f.flag_type, f.severity, f.source, f.status, \
    f.details, f.turns, f.review_note, f.reviewed_by, f.reviewed_at, f.created_at, f.updated_at, \
    s.user_id AS counselor_id, u.display_name AS counselor_name, sc.title AS scenario_title \
    FROM session_flags f JOIN sessions s ON s.id = f.session_id JOIN users u ON u.id = s.user_id \
    LEFT JOIN scenarios sc ON sc.id = s.scenario_id";

/// Severity as a rank for sorting (most severe first).
const SEVERITY_RANK: &str = "CASE f.severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END";

impl SessionFlag {
    fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(SessionFlag {
            id: row.uuid("id")?,
            account_id: row.uuid("account_id")?,
            session_id: row.uuid("session_id")?,
            flag_type: row.parsed("flag_type")?,
            severity: row.parsed("severity")?,
            source: row.parsed("source")?,
            status: row.parsed("status")?,
            details: row.text("details")?,
            turns: row.json("turns")?,
            review_note: row.opt_text("review_note")?,
            reviewed_by: row.opt_uuid("reviewed_by")?,
            reviewed_at: row.opt_ts("reviewed_at")?,
            created_at: row.ts("created_at")?,
            updated_at: row.ts("updated_at")?,
            counselor_id: row.uuid("counselor_id")?,
            counselor_name: row.text("counselor_name")?,
            scenario_title: row.opt_text("scenario_title")?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct NewFlag {
    pub flag_type: FlagType,
    pub severity: FlagSeverity,
    pub source: FlagSource,
    pub details: String,
    pub turns: Vec<u32>,
}

/// Filter for the account's flag list (default: open flags).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct FlagFilter {
    /// Default `open`.
    pub status: Option<FlagStatus>,
    #[param(value_type = Option<Uuid>)]
    pub session_id: Option<SessionId>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// A supervisor's review of a flag.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FlagReview {
    /// `reviewed` (a real concern, handled) or `dismissed` (not a concern); `open` reopens.
    pub status: FlagStatus,
    #[serde(default)]
    pub note: Option<String>,
}

impl Store {
    /// Inserts flags inside a caller's transaction (evaluation and analysis store their flags
    /// atomically with their own record), with their `flag.raised` events and each flag's e-mail
    /// job (the caller wakes the workers after its commit).
    pub(crate) async fn insert_flags_tx(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        account_id: AccountId,
        session_id: SessionId,
        flags: &[NewFlag],
    ) -> Result<Vec<FlagId>> {
        let now = Timestamp::now().millis();
        let mut ids = Vec::with_capacity(flags.len());
        for flag in flags {
            let id = FlagId::new();
            sqlx::query(
                "INSERT INTO session_flags (id, account_id, session_id, flag_type, severity, source, status, details, turns, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8, $9, $9)",
            )
            .bind(id.to_string())
            .bind(account_id.to_string())
            .bind(session_id.to_string())
            .bind(flag.flag_type.as_str())
            .bind(flag.severity.as_str())
            .bind(flag.source.as_str())
            .bind(&flag.details)
            .bind(serde_json::to_string(&flag.turns).map_err(|e| Error::Corrupt(e.to_string()))?)
            .bind(now)
            .execute(&mut **tx)
            .await?;
            ids.push(id);
        }
        let ctx = if flags.is_empty() { None } else { Some(crate::partner::session_context(tx, session_id).await?) };
        // A test run's flags judge an AI counselor: nobody is mailed and no partner hears of them.
        if let Some(ctx) = ctx.filter(|c| !c.test_run) {
            let pairs: Vec<(FlagId, &NewFlag)> = ids.iter().copied().zip(flags.iter()).collect();
            crate::partner::enqueue_flag_events(tx, account_id, &ctx, &pairs).await?;
            for id in &ids {
                crate::jobs::enqueue_tx(tx, JobKind::NotifyFlag, account_id, session_id, Some(id.as_uuid()), now)
                    .await?;
            }
        }
        Ok(ids)
    }

    /// Raises one flag (a counselor's report about the AI caller).
    pub async fn insert_flag(
        &self,
        account_id: AccountId,
        session_id: SessionId,
        flag: &NewFlag,
    ) -> Result<SessionFlag> {
        if flag.details.trim().is_empty() || flag.details.chars().count() > 5000 {
            return Err(Error::invalid("details", "must be 1 to 5000 characters"));
        }
        let mut tx = self.write_tx().await?;
        let ids = Self::insert_flags_tx(&mut tx, account_id, session_id, std::slice::from_ref(flag)).await?;
        tx.commit().await?;
        self.wake_jobs();
        self.flag(account_id, ids[0]).await
    }

    pub async fn flag(&self, account_id: AccountId, id: FlagId) -> Result<SessionFlag> {
        let row = sqlx::query(&format!("{FLAG_SELECT} WHERE f.id = $1 AND f.account_id = $2"))
            .bind(id.to_string())
            .bind(account_id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(Error::NotFound("flag"))?;
        SessionFlag::from_row(&row)
    }

    pub async fn flags_by_ids(&self, account_id: AccountId, ids: &[FlagId]) -> Result<Vec<SessionFlag>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.flag(account_id, *id).await?);
        }
        Ok(out)
    }

    /// The account's flags, the queue's order: most severe first, then oldest first (the longest
    /// waiting); reviewed and dismissed ones newest first.
    pub async fn list_flags(&self, account_id: AccountId, filter: &FlagFilter) -> Result<Vec<SessionFlag>> {
        let (limit, offset) = page(filter.limit, filter.offset);
        let status = filter.status.unwrap_or(FlagStatus::Open);
        let order = if status == FlagStatus::Open {
            format!("{SEVERITY_RANK}, f.created_at, f.id")
        } else {
            "f.updated_at DESC, f.id DESC".to_owned()
        };
        let rows = sqlx::query(&format!(
            "{FLAG_SELECT} WHERE f.account_id = $1 AND f.status = $2 \
             AND ($3 IS NULL OR f.session_id = $3) \
             AND NOT EXISTS (SELECT 1 FROM sessions t WHERE t.id = f.session_id AND t.test_run = TRUE) ORDER BY {order} LIMIT $4 OFFSET $5"
        ))
        .bind(account_id.to_string())
        .bind(status.as_str())
        .bind(filter.session_id.map(|s| s.to_string()))
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(SessionFlag::from_row).collect()
    }

    /// How many flags of the account are open (the navigation's badge).
    pub async fn open_flag_count(&self, account_id: AccountId) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM session_flags WHERE account_id = $1 AND status = 'open'")
            .bind(account_id.to_string())
            .fetch_one(&self.pool)
            .await?)
    }

    /// Flags of one session, oldest first.
    pub async fn session_flags(&self, session: &SessionRef) -> Result<Vec<SessionFlag>> {
        self.flags_of(session.id()).await
    }

    /// By session id, for the store's own reads that have checked the session's account.
    pub(crate) async fn flags_of(&self, session_id: SessionId) -> Result<Vec<SessionFlag>> {
        let rows = sqlx::query(&format!("{FLAG_SELECT} WHERE f.session_id = $1 ORDER BY f.created_at, f.id"))
            .bind(session_id.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(SessionFlag::from_row).collect()
    }

    /// The flags of many sessions, each session's oldest first as [`Store::session_flags`] reads
    /// them, in one query per [`IN_LIST_MAX`] sessions: for lists. The ids come from handles
    /// (account-checked) the caller holds.
    pub(crate) async fn flags_of_many(&self, ids: &[SessionId]) -> Result<HashMap<SessionId, Vec<SessionFlag>>> {
        let mut out: HashMap<SessionId, Vec<SessionFlag>> = HashMap::new();
        for chunk in ids.chunks(IN_LIST_MAX) {
            let sql = format!(
                "{FLAG_SELECT} WHERE f.session_id IN ({}) ORDER BY f.created_at, f.id",
                placeholders(1, chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(id.to_string());
            }
            for row in query.fetch_all(&self.pool).await? {
                let flag = SessionFlag::from_row(&row)?;
                out.entry(flag.session_id).or_default().push(flag);
            }
        }
        Ok(out)
    }

    /// Records a supervisor's review (or reopens the flag). Closing a high or critical flag takes
    /// a note saying what was done: the record a later reader relies on. Reopening clears the
    /// review; its audit record keeps what it was.
    pub async fn review_flag(
        &self,
        account_id: AccountId,
        id: FlagId,
        reviewer: UserId,
        review: &FlagReview,
        audit: &Audit,
    ) -> Result<SessionFlag> {
        let note = review.note.as_deref().map(str::trim).filter(|n| !n.is_empty());
        if note.is_some_and(|n| n.chars().count() > 5000) {
            return Err(Error::invalid("note", "must be at most 5000 characters"));
        }
        let now = Timestamp::now().millis();
        let reopened = review.status == FlagStatus::Open;
        let mut tx = self.write_tx().await?;
        let severity: FlagSeverity = sqlx::query(&format!(
            "SELECT severity FROM session_flags WHERE id = $1 AND account_id = $2{}",
            crate::db::for_update(&tx)
        ))
        .bind(id.to_string())
        .bind(account_id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound("flag"))?
        .parsed("severity")?;
        if !reopened && note.is_none() && matches!(severity, FlagSeverity::High | FlagSeverity::Critical) {
            return Err(Error::invalid(
                "note",
                format!(
                    "a {severity} flag is closed with a note: say what was done about it or why it is not a concern"
                ),
            ));
        }
        sqlx::query(
            "UPDATE session_flags SET status = $1, review_note = $2, reviewed_by = $3, reviewed_at = $4, updated_at = $5 \
             WHERE id = $6 AND account_id = $7",
        )
        .bind(review.status.as_str())
        .bind(note)
        .bind((!reopened).then(|| reviewer.to_string()))
        .bind((!reopened).then_some(now))
        .bind(now)
        .bind(id.to_string())
        .bind(account_id.to_string())
        .execute(&mut *tx)
        .await?;
        audit_tx(&mut tx, &audit.clone().target("flag", id)).await?;
        tx.commit().await?;
        self.flag(account_id, id).await
    }
}
