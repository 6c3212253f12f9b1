//! What an account keeps and for how long, and erasing a person: per-account retention of
//! transcripts, evaluations and audit records (the housekeeping job purges what is older), and
//! the erasure of a user, who is pseudonymised (name, e-mail, sign-in gone; their practice stays
//! for the account's statistics under the pseudonym) and whose call recordings are deleted.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::accounts::{Audit, audit_tx};
use crate::db::{RowExt, Store, for_update, lock_account};
use crate::domain::Timestamp;
use crate::error::{Error, FieldError, Result};
use crate::ids::{AccountId, UserId};
use crate::users::User;

const DAY_MS: i64 = 86_400_000;

/// How long an account keeps each kind of record, in days; `None` keeps it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Retention {
    /// Transcripts (and documentation reviews) of sessions that ended longer ago; 1 to 3650.
    #[schema(minimum = 1, maximum = 3650)]
    pub transcript_days: Option<i64>,
    /// Evaluations (with their reviews, flags and analysis) of sessions that ended longer ago;
    /// 1 to 3650. Progress charts lose those points.
    #[schema(minimum = 1, maximum = 3650)]
    pub evaluation_days: Option<i64>,
    /// Audit records older than this; 30 to 3650.
    #[schema(minimum = 30, maximum = 3650)]
    pub audit_days: Option<i64>,
}

impl Retention {
    fn validate(&self) -> Result<()> {
        let mut errors = Vec::new();
        let mut check = |field: &str, value: Option<i64>, min: i64| {
            if value.is_some_and(|d| !(min..=3650).contains(&d)) {
                errors.push(FieldError::new(field, format!("must be {min} to 3650 days, or empty to keep forever")));
            }
        };
        check("transcriptDays", self.transcript_days, 1);
        check("evaluationDays", self.evaluation_days, 1);
        check("auditDays", self.audit_days, 30);
        if errors.is_empty() { Ok(()) } else { Err(Error::Invalid(errors)) }
    }
}

/// What one purge deleted, per account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Purged {
    pub transcript_turns: u64,
    pub evaluations: u64,
    pub audit_events: u64,
}

impl Purged {
    pub fn is_empty(&self) -> bool {
        *self == Purged::default()
    }
}

/// `%text%` for `ESCAPE '\'`, case kept.
fn contains_pattern(text: &str) -> String {
    format!("%{}%", crate::db::like_escape(text))
}

impl Store {
    pub async fn retention(&self, account_id: AccountId) -> Result<Retention> {
        let row = sqlx::query(
            "SELECT transcript_days, evaluation_days, audit_days FROM retention_settings WHERE account_id = $1",
        )
        .bind(account_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => Retention {
                transcript_days: r.opt_int("transcript_days")?,
                evaluation_days: r.opt_int("evaluation_days")?,
                audit_days: r.opt_int("audit_days")?,
            },
            None => Retention::default(),
        })
    }

    /// Sets the account's retention (422 for values out of range), audited.
    pub async fn set_retention(&self, account_id: AccountId, retention: &Retention, audit: Audit) -> Result<Retention> {
        retention.validate()?;
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO retention_settings (account_id, transcript_days, evaluation_days, audit_days, updated_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (account_id) DO UPDATE SET transcript_days = $2, evaluation_days = $3, audit_days = $4, updated_at = $5",
        )
        .bind(account_id.to_string())
        .bind(retention.transcript_days)
        .bind(retention.evaluation_days)
        .bind(retention.audit_days)
        .bind(Timestamp::now().millis())
        .execute(&mut *tx)
        .await?;
        audit_tx(&mut tx, &audit.details(serde_json::to_value(retention).unwrap_or_default())).await?;
        tx.commit().await?;
        Ok(*retention)
    }

    /// Purges, for every account with a retention setting, what is older than it at `now`:
    /// transcripts and documentation reviews, evaluations (their reviews, overrides, criteria
    /// rows, flags and analyses with them) of sessions that ended before the cut, and audit
    /// records. Live sessions are never touched. Each account's purge is one transaction with an
    /// audit record of its counts.
    pub async fn purge_expired(&self, now: Timestamp) -> Result<Vec<(AccountId, Purged)>> {
        let rows =
            sqlx::query("SELECT account_id, transcript_days, evaluation_days, audit_days FROM retention_settings")
                .fetch_all(&self.pool)
                .await?;
        let mut done = Vec::new();
        for r in rows {
            let account_id: AccountId = r.uuid("account_id")?;
            let cut = |days: Option<i64>| days.map(|d| now.millis() - d * DAY_MS);
            let (transcripts, evaluations, audits) =
                (cut(r.opt_int("transcript_days")?), cut(r.opt_int("evaluation_days")?), cut(r.opt_int("audit_days")?));
            let mut tx = self.write_tx().await?;
            let mut purged = Purged::default();
            // Sessions that ended before a cut (an abandoned one counts from its start).
            let ended_before = "SELECT id FROM sessions WHERE account_id = $1 AND status <> 'active' \
                                AND COALESCE(ended_at, started_at) < $2";
            if let Some(before) = transcripts {
                purged.transcript_turns =
                    sqlx::query(&format!("DELETE FROM transcript_turns WHERE session_id IN ({ended_before})"))
                        .bind(account_id.to_string())
                        .bind(before)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                sqlx::query(&format!("DELETE FROM document_reviews WHERE session_id IN ({ended_before})"))
                    .bind(account_id.to_string())
                    .bind(before)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(before) = evaluations {
                for table in ["session_flags", "session_analyses"] {
                    sqlx::query(&format!("DELETE FROM {table} WHERE session_id IN ({ended_before})"))
                        .bind(account_id.to_string())
                        .bind(before)
                        .execute(&mut *tx)
                        .await?;
                }
                purged.evaluations =
                    sqlx::query(&format!("DELETE FROM evaluations WHERE session_id IN ({ended_before})"))
                        .bind(account_id.to_string())
                        .bind(before)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
            }
            if let Some(before) = audits {
                purged.audit_events = sqlx::query("DELETE FROM audit_events WHERE account_id = $1 AND created_at < $2")
                    .bind(account_id.to_string())
                    .bind(before)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            if !purged.is_empty() {
                let audit = Audit::new(Some(account_id), None, "retention.purged").details(serde_json::json!({
                    "transcriptTurns": purged.transcript_turns,
                    "evaluations": purged.evaluations,
                    "auditEvents": purged.audit_events,
                }));
                audit_tx(&mut tx, &audit).await?;
            }
            tx.commit().await?;
            if !purged.is_empty() {
                done.push((account_id, purged));
            }
        }
        Ok(done)
    }

    /// Erases a user of the account: name and e-mail replaced by a pseudonym, password, external
    /// id and sign-in sessions gone, deactivated; audit details that name their e-mail redacted;
    /// their recordings' rows deleted. Answers the pseudonymised user and the recording files for
    /// the caller to delete. 409 for a user already erased or the account's last active admin.
    pub async fn erase_user(
        &self,
        account_id: AccountId,
        user_id: UserId,
        audit: Audit,
    ) -> Result<(User, Vec<String>)> {
        let mut tx = self.write_tx().await?;
        // The last-admin rule counts across the account: serialise on it, as role changes do.
        lock_account(&mut tx, account_id).await?;
        let sql = format!(
            "SELECT email, role, active, erased_at FROM users WHERE id = $1 AND account_id = $2{}",
            for_update(&tx)
        );
        let row = sqlx::query(&sql)
            .bind(user_id.to_string())
            .bind(account_id.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(Error::NotFound("user"))?;
        if row.opt_int("erased_at")?.is_some() {
            return Err(Error::conflict("this user is already erased"));
        }
        let email = row.text("email")?;
        if row.text("role")? == "admin" && row.flag("active")? {
            let others: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM users WHERE account_id = $1 AND role = 'admin' AND active AND id <> $2",
            )
            .bind(account_id.to_string())
            .bind(user_id.to_string())
            .fetch_one(&mut *tx)
            .await?;
            if others == 0 {
                return Err(Error::conflict("the account's last active admin cannot be erased"));
            }
        }
        let short = &user_id.to_string()[..8];
        let now = Timestamp::now().millis();
        sqlx::query(
            "UPDATE users SET display_name = $1, email = $2, password_hash = NULL, external_id = NULL, \
             active = FALSE, erased_at = $3, updated_at = $3 WHERE id = $4",
        )
        .bind(format!("Erased user {short}"))
        .bind(format!("erased-{}@erased.invalid", user_id.to_string().to_lowercase()))
        .bind(now)
        .bind(user_id.to_string())
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM auth_sessions WHERE user_id = $1").bind(user_id.to_string()).execute(&mut *tx).await?;
        // The file name is the server's, derived from the session id, never a stored one.
        let files: Vec<String> = sqlx::query(
            "SELECT r.session_id FROM recordings r JOIN sessions s ON s.id = r.session_id \
             WHERE s.user_id = $1 AND r.account_id = $2",
        )
        .bind(user_id.to_string())
        .bind(account_id.to_string())
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.uuid("session_id").map(crate::voice::recording_file_name))
        .collect::<Result<_>>()?;
        sqlx::query(
            "DELETE FROM recordings WHERE account_id = $1 AND session_id IN (SELECT id FROM sessions WHERE user_id = $2)",
        )
        .bind(account_id.to_string())
        .bind(user_id.to_string())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE audit_events SET details = '{\"redacted\":\"user erased\"}' \
             WHERE account_id = $1 AND details LIKE $2 ESCAPE '\\'",
        )
        .bind(account_id.to_string())
        .bind(contains_pattern(&email))
        .execute(&mut *tx)
        .await?;
        audit_tx(
            &mut tx,
            &audit.target("user", user_id).details(serde_json::json!({ "recordingsDeleted": files.len() })),
        )
        .await?;
        tx.commit().await?;
        let user = self.user(account_id, user_id).await?;
        Ok((user, files))
    }
}
