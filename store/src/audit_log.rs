//! Reading the audit trail: an account admin's view of who did what, filtered by user, action
//! and date, newest first, paged by a cursor so a busy account's log reads in constant time per
//! page. Writing stays with each change (`accounts::audit_tx`), in the change's transaction.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::db::{RowExt, Store};
use crate::domain::Timestamp;
use crate::error::{Error, Result};
use crate::ids::{AccountId, UserId};

/// The most entries one page holds.
pub const AUDIT_PAGE_MAX: i64 = 200;

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// Entries by this user (the actor).
    #[param(value_type = Option<Uuid>)]
    pub user_id: Option<UserId>,
    /// One action, e.g. `session.transcript_read`; a value ending in `.` or `*` matches every
    /// action starting with it (`user.` or `user*`).
    pub action: Option<String>,
    /// At or after this time (RFC 3339).
    pub from: Option<Timestamp>,
    /// Before this time (RFC 3339).
    pub to: Option<Timestamp>,
    /// The `nextBefore` of the previous page: entries older than it.
    pub before: Option<String>,
    /// 1 to 200; 50 by default.
    pub limit: Option<i64>,
}

/// One audit-trail entry with the actor's name, as an account admin reads it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    #[schema(value_type = Uuid)]
    pub id: uuid::Uuid,
    /// Who did it; absent for the system (jobs, sweeps) or a user since erased.
    #[schema(value_type = Option<Uuid>)]
    pub actor_user_id: Option<UserId>,
    pub actor_name: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub details: serde_json::Value,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    pub next_before: Option<String>,
}

/// The cursor: the last entry's time and id, so entries at the same millisecond page correctly.
fn cursor(created_at: i64, id: &str) -> String {
    format!("{created_at}_{id}")
}

/// `prefix%` for `ESCAPE '\'` (actions are case-sensitive).
fn prefix_pattern(prefix: &str) -> String {
    format!("{}%", crate::db::like_escape(prefix))
}

fn parse_cursor(text: &str) -> Result<(i64, String)> {
    let bad = || Error::invalid("before", "must be the nextBefore of a previous page");
    let (ms, id) = text.split_once('_').ok_or_else(bad)?;
    let ms = ms.parse::<i64>().map_err(|_| bad())?;
    let id = uuid::Uuid::parse_str(id).map_err(|_| bad())?;
    Ok((ms, id.to_string()))
}

impl Store {
    /// The account's audit trail, newest first, filtered.
    pub async fn audit_log(&self, account_id: AccountId, filter: &AuditFilter) -> Result<AuditPage> {
        let limit = filter.limit.unwrap_or(50);
        if !(1..=AUDIT_PAGE_MAX).contains(&limit) {
            return Err(Error::invalid("limit", "must be 1 to 200"));
        }
        if let (Some(from), Some(to)) = (filter.from, filter.to)
            && from.millis() >= to.millis()
        {
            return Err(Error::invalid("to", "must be after from"));
        }
        let (before_ms, before_id) = match filter.before.as_deref() {
            Some(c) => {
                let (ms, id) = parse_cursor(c)?;
                (Some(ms), Some(id))
            }
            None => (None, None),
        };
        let action = filter.action.as_deref().map(str::trim).filter(|a| !a.is_empty());
        if action.is_some_and(|a| a.len() > 100) {
            return Err(Error::invalid("action", "must be at most 100 characters"));
        }
        let (action_exact, action_prefix) = match action {
            Some(a) if a.ends_with('*') => (None, Some(prefix_pattern(a.trim_end_matches('*')))),
            Some(a) if a.ends_with('.') => (None, Some(prefix_pattern(a))),
            Some(a) => (Some(a.to_owned()), None),
            None => (None, None),
        };
        let rows = sqlx::query(
            "SELECT e.id, e.actor_user_id, u.display_name, e.action, e.target_type, e.target_id, e.details, e.created_at \
             FROM audit_events e LEFT JOIN users u ON u.id = e.actor_user_id AND u.account_id = e.account_id \
             WHERE e.account_id = $1 \
               AND ($2 IS NULL OR e.actor_user_id = $2) \
               AND ($3 IS NULL OR e.action = $3) \
               AND ($4 IS NULL OR e.action LIKE $4 ESCAPE '\\') \
               AND ($5 IS NULL OR e.created_at >= $5) \
               AND ($6 IS NULL OR e.created_at < $6) \
               AND ($7 IS NULL OR e.created_at < $7 OR (e.created_at = $7 AND e.id < $8)) \
             ORDER BY e.created_at DESC, e.id DESC LIMIT $9",
        )
        .bind(account_id.to_string())
        .bind(filter.user_id.map(|u| u.to_string()))
        .bind(action_exact)
        .bind(action_prefix)
        .bind(filter.from.map(|t| t.millis()))
        .bind(filter.to.map(|t| t.millis()))
        .bind(before_ms)
        .bind(before_id)
        .bind(limit + 1)
        .fetch_all(&self.pool)
        .await?;
        let mut entries = rows
            .iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.uuid("id")?,
                    actor_user_id: r.opt_uuid("actor_user_id")?,
                    actor_name: r.opt_text("display_name")?,
                    action: r.text("action")?,
                    target_type: r.opt_text("target_type")?,
                    target_id: r.opt_text("target_id")?,
                    details: r.json("details")?,
                    created_at: r.ts("created_at")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let next_before = if entries.len() as i64 > limit {
            entries.truncate(limit as usize);
            entries.last().map(|e| cursor(e.created_at.millis(), &e.id.to_string()))
        } else {
            None
        };
        Ok(AuditPage { entries, next_before })
    }
}

/// Reads are audited at most once per actor, action and target in this window: a feedback page
/// polling its session, or a player fetching a recording in ranges, is one read, not hundreds.
pub const READ_AUDIT_WINDOW_MS: i64 = 10 * 60 * 1000;

impl Store {
    /// Records that `actor` read `target` (a transcript, a recording), unless the same read is
    /// already recorded within [`READ_AUDIT_WINDOW_MS`]. One statement, so no transaction is held
    /// open; two racing first reads may both be recorded, which costs nothing.
    pub async fn audit_read(&self, audit: &crate::Audit) -> Result<()> {
        let (target_type, target_id) = audit.target.clone().map(|(t, id)| (Some(t), Some(id))).unwrap_or_default();
        let now = Timestamp::now().millis();
        sqlx::query(
            "INSERT INTO audit_events (id, account_id, actor_user_id, action, target_type, target_id, details, created_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8 \
             WHERE NOT EXISTS (SELECT 1 FROM audit_events \
                 WHERE account_id = $2 AND action = $4 AND target_id = $6 AND created_at >= $9 \
                   AND (actor_user_id = $3 OR ($3 IS NULL AND actor_user_id IS NULL)))",
        )
        .bind(crate::domain::new_id().to_string())
        .bind(audit.account_id.map(|id| id.to_string()))
        .bind(audit.actor_user_id.map(|id| id.to_string()))
        .bind(audit.action)
        .bind(target_type)
        .bind(target_id)
        .bind(audit.details.to_string())
        .bind(now)
        .bind(now - READ_AUDIT_WINDOW_MS)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
