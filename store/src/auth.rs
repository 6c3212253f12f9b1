//! Credentials and what authentication needs to remember: password hashes, login sessions, API
//! keys and rate-limit windows.
//!
//! The store only keeps opaque strings. Hashing (argon2id for passwords, SHA-256 for
//! high-entropy tokens) and the decision of who may do what belong to the admin service; the
//! store guarantees the invariants that must hold under concurrency: one session row per token,
//! sessions gone when a password changes or a user is deactivated, at least one active admin per
//! account, rate-limit counts shared by every replica.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use crate::accounts::{Audit, audit_tx};
use crate::db::{RowExt, Store};
use crate::domain::{Role, Timestamp};
use crate::error::{Error, FieldError, Result};
use crate::ids::{AccountId, ApiKeyId, UserId};
use crate::users::User;

/// What login needs about a user: the user and their stored password hash.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: User,
    pub password_hash: Option<String>,
    pub must_change_password: bool,
    /// A one-time password's end: after it the password no longer signs in.
    pub password_expires_at: Option<Timestamp>,
}

/// A login session as stored: the row behind a cookie. Its `Debug` leaves the CSRF token out.
#[derive(Clone)]
pub struct AuthSession {
    /// SHA-256 (hex) of the cookie token.
    pub id: String,
    pub user: User,
    pub must_change_password: bool,
    /// A one-time password's end: a session opened with it ends then too.
    pub password_expires_at: Option<Timestamp>,
    pub csrf_token: String,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub expires_at: Timestamp,
    /// The account's data revision as this lookup read it ([`Store::account_revision`]): one
    /// query answers both who is calling and whether a list rendered earlier is still current.
    pub revision: i64,
}

/// The query behind [`Store::auth_session`], for the sessions `condition` selects.
pub(crate) fn auth_session_sql(condition: &str) -> String {
    format!(
        "SELECT {USER_COLUMNS_U}, s.id AS session_id, s.csrf_token, s.created_at AS s_created, \
         s.last_seen_at, s.expires_at, COALESCE(r.revision, 0) AS revision \
         FROM auth_sessions s JOIN users u ON u.id = s.user_id \
         LEFT JOIN account_revisions r ON r.account_id = s.account_id WHERE {condition}"
    )
}

impl std::fmt::Debug for AuthSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSession")
            .field("id", &self.id)
            .field("user", &self.user)
            .field("must_change_password", &self.must_change_password)
            .field("password_expires_at", &self.password_expires_at)
            .field("csrf_token", &"[redacted]")
            .field("created_at", &self.created_at)
            .field("last_seen_at", &self.last_seen_at)
            .field("expires_at", &self.expires_at)
            .field("revision", &self.revision)
            .finish()
    }
}

impl AuthSession {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(AuthSession {
            id: r.text("session_id")?,
            user: User::from_row(r)?,
            must_change_password: r.flag("password_must_change")?,
            password_expires_at: r.opt_ts("password_expires_at")?,
            csrf_token: r.text("csrf_token")?,
            created_at: r.ts("s_created")?,
            last_seen_at: r.ts("last_seen_at")?,
            expires_at: r.ts("expires_at")?,
            revision: r.int("revision")?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct NewAuthSession<'a> {
    pub id: &'a str,
    pub user_id: UserId,
    pub account_id: AccountId,
    pub csrf_token: &'a str,
    pub expires_at: Timestamp,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

/// A partner API key as listed: never the key itself.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    #[schema(value_type = Uuid)]
    pub id: ApiKeyId,
    #[schema(value_type = Uuid)]
    pub account_id: AccountId,
    pub name: String,
    /// The key's public first part, to tell keys apart (the key starts with it).
    pub prefix: String,
    #[schema(value_type = Option<Uuid>)]
    pub created_by: Option<UserId>,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

const API_KEY_COLUMNS: &str = "id, account_id, name, prefix, created_by, created_at, last_used_at, revoked_at";

impl ApiKey {
    fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(ApiKey {
            id: row.uuid("id")?,
            account_id: row.uuid("account_id")?,
            name: row.text("name")?,
            prefix: row.text("prefix")?,
            created_by: row.opt_uuid("created_by")?,
            created_at: row.ts("created_at")?,
            last_used_at: row.opt_ts("last_used_at")?,
            revoked_at: row.opt_ts("revoked_at")?,
        })
    }
}

/// Changes an account admin makes to a user; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserPatch {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub display_name: Option<String>,
    pub role: Option<Role>,
    pub active: Option<bool>,
    /// The id a partner system knows this user by; an empty string clears it.
    pub external_id: Option<String>,
}

/// How often `last_seen_at`/`last_used_at` are written: a busy client does not turn every read
/// into a write.
const TOUCH_EVERY_MS: i64 = 60_000;

const USER_COLUMNS_U: &str = "u.id, u.account_id, u.email, u.display_name, u.role, u.external_id, u.active, \
     u.is_demo, u.created_at, u.updated_at, u.password_hash, u.password_must_change, \
     u.password_expires_at";

impl Store {
    /// The user with this e-mail and their password hash, for login.
    pub async fn credentials(&self, email: &str) -> Result<Option<Credentials>> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS_U} FROM users u WHERE u.email = $1"))
            .bind(email.trim().to_lowercase())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(Credentials {
                user: User::from_row(&r)?,
                password_hash: r.opt_text("password_hash")?,
                must_change_password: r.flag("password_must_change")?,
                password_expires_at: r.opt_ts("password_expires_at")?,
            })
        })
        .transpose()
    }

    /// Sets a user's password hash and ends every login session of theirs except `keep` (the
    /// caller's own, when a user changes their own password), with its audit record.
    /// `one_time_until`: a one-time password, which must be changed at first sign-in and signs
    /// in only until then (`None`: a password the user chose).
    pub async fn set_password(
        &self,
        account_id: AccountId,
        user_id: UserId,
        password_hash: &str,
        one_time_until: Option<Timestamp>,
        keep: Option<&str>,
        audit: &Audit,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE users SET password_hash = $1, password_must_change = $2, updated_at = $3, \
             password_expires_at = $6 WHERE id = $4 AND account_id = $5",
        )
        .bind(password_hash)
        .bind(one_time_until.is_some())
        .bind(Timestamp::now().millis())
        .bind(user_id.to_string())
        .bind(account_id.to_string())
        .bind(one_time_until.map(Timestamp::millis))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound("user"));
        }
        sqlx::query("DELETE FROM auth_sessions WHERE user_id = $1 AND id <> $2")
            .bind(user_id.to_string())
            .bind(keep.unwrap_or(""))
            .execute(&mut *tx)
            .await?;
        audit_tx(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Changes a user's name, role, active flag or external id. Deactivation ends their
    /// sessions; an account never loses its last active admin (409). A role change and an
    /// (de)activation are audited in the same transaction, as done by `audit`'s actor, each
    /// under its own action (`user.role_changed`, `user.deactivated`, `user.reactivated`; the
    /// caller's action, `user.updated`, names the request).
    pub async fn update_user(
        &self,
        account_id: AccountId,
        id: UserId,
        patch: &UserPatch,
        audit: &Audit,
    ) -> Result<User> {
        let mut errors = Vec::new();
        let display_name = patch.display_name.as_deref().map(str::trim);
        if display_name.is_some_and(|n| n.is_empty() || n.chars().count() > 200) {
            errors.push(FieldError::new("displayName", "must be 1 to 200 characters"));
        }
        let external_id = patch.external_id.as_deref().map(str::trim);
        if external_id.is_some_and(|e| e.len() > 200) {
            errors.push(FieldError::new("externalId", "must be at most 200 characters"));
        }
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        let mut tx = self.write_tx().await?;
        // Every role or activity change of the account waits here, so two demotions cannot each
        // count the other as the remaining admin.
        crate::db::lock_account(&mut tx, account_id).await?;
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS_U} FROM users u WHERE u.id = $1 AND u.account_id = $2"))
            .bind(id.to_string())
            .bind(account_id.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(Error::NotFound("user"))?;
        let current = User::from_row(&row)?;
        let role = patch.role.unwrap_or(current.role);
        let active = patch.active.unwrap_or(current.active);
        if current.role == Role::Admin && current.active && (role != Role::Admin || !active) {
            let others: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM users WHERE account_id = $1 AND role = 'admin' AND active AND id <> $2",
            )
            .bind(account_id.to_string())
            .bind(id.to_string())
            .fetch_one(&mut *tx)
            .await?;
            if others == 0 {
                return Err(Error::conflict("the account's last active admin cannot be demoted or deactivated"));
            }
        }
        let external_id = match external_id {
            None => current.external_id.clone(),
            Some("") => None,
            Some(e) => Some(e.to_owned()),
        };
        sqlx::query(
            "UPDATE users SET display_name = $1, role = $2, active = $3, external_id = $4, updated_at = $5 \
             WHERE id = $6 AND account_id = $7",
        )
        .bind(display_name.unwrap_or(&current.display_name))
        .bind(role.as_str())
        .bind(active)
        .bind(external_id.as_deref())
        .bind(Timestamp::now().millis())
        .bind(id.to_string())
        .bind(account_id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(|e| match crate::error::violation(&e) {
            Some(crate::error::Violation::Unique(_)) => {
                Error::conflict("a user with this externalId exists in the account")
            }
            _ => e.into(),
        })?;
        if !active || role != current.role {
            // A changed role must take effect now, not when an old session expires.
            sqlx::query("DELETE FROM auth_sessions WHERE user_id = $1").bind(id.to_string()).execute(&mut *tx).await?;
        }
        if role != current.role {
            let changed = audit
                .as_action("user.role_changed")
                .target("user", id)
                .details(serde_json::json!({ "from": current.role, "to": role }));
            audit_tx(&mut tx, &changed).await?;
        }
        if active != current.active {
            let action = if active { "user.reactivated" } else { "user.deactivated" };
            audit_tx(&mut tx, &audit.as_action(action).target("user", id)).await?;
        }
        tx.commit().await?;
        self.user(account_id, id).await
    }

    /// Starts a login session, with its audit record (`login.succeeded`, `login.demo`).
    pub async fn create_auth_session(&self, new: &NewAuthSession<'_>, audit: &Audit) -> Result<()> {
        let now = Timestamp::now().millis();
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO auth_sessions (id, user_id, account_id, csrf_token, created_at, last_seen_at, expires_at, ip, user_agent) \
             VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8)",
        )
        .bind(new.id)
        .bind(new.user_id.to_string())
        .bind(new.account_id.to_string())
        .bind(new.csrf_token)
        .bind(now)
        .bind(new.expires_at.millis())
        .bind(new.ip)
        .bind(new.user_agent)
        .execute(&mut *tx)
        .await?;
        audit_tx(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The session behind a token hash with its user, whatever its age: the caller decides
    /// about expiry (and deletes the row when it has run out). Lookups made at the same moment
    /// share one query ([`crate::sign_ins`]); each still reads the database as of after it
    /// was asked.
    pub async fn auth_session(&self, id: &str) -> Result<Option<AuthSession>> {
        if let Some(found) = self.sign_ins.lookup(&self.pool, id).await {
            return Ok(found);
        }
        let row = sqlx::query(&auth_session_sql("s.id = $1")).bind(id).fetch_optional(&self.pool).await?;
        row.map(|r| AuthSession::from_row(&r)).transpose()
    }

    /// Records activity on a session, at most once a minute.
    pub async fn touch_auth_session(&self, session: &AuthSession, now: Timestamp) -> Result<()> {
        if now.millis() - session.last_seen_at.millis() < TOUCH_EVERY_MS {
            return Ok(());
        }
        sqlx::query("UPDATE auth_sessions SET last_seen_at = $1 WHERE id = $2")
            .bind(now.millis())
            .bind(&session.id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends a login session; `audit` (a logout) is written with it.
    pub async fn delete_auth_session(&self, id: &str, audit: Option<&Audit>) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM auth_sessions WHERE id = $1").bind(id).execute(&mut *tx).await?;
        if let Some(audit) = audit {
            audit_tx(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes sessions past their absolute expiry or idle longer than `idle_ms`.
    pub async fn purge_auth_sessions(&self, now: Timestamp, idle_ms: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM auth_sessions WHERE expires_at <= $1 OR last_seen_at <= $2")
            .bind(now.millis())
            .bind(now.millis() - idle_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn create_api_key(
        &self,
        account_id: AccountId,
        name: &str,
        prefix: &str,
        key_hash: &str,
        created_by: Option<UserId>,
        audit: &Audit,
    ) -> Result<ApiKey> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(Error::Invalid(vec![FieldError::new("name", "must be 1 to 100 characters")]));
        }
        let id = ApiKeyId::new();
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO api_keys (id, account_id, name, prefix, key_hash, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id.to_string())
        .bind(account_id.to_string())
        .bind(name)
        .bind(prefix)
        .bind(key_hash)
        .bind(created_by.map(|u| u.to_string()))
        .bind(Timestamp::now().millis())
        .execute(&mut *tx)
        .await?;
        audit_tx(&mut tx, &audit.clone().target("api_key", id)).await?;
        tx.commit().await?;
        self.api_key(account_id, id).await
    }

    pub async fn api_key(&self, account_id: AccountId, id: ApiKeyId) -> Result<ApiKey> {
        let row = sqlx::query(&format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = $1 AND account_id = $2"))
            .bind(id.to_string())
            .bind(account_id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(Error::NotFound("API key"))?;
        ApiKey::from_row(&row)
    }

    /// The account's keys, newest first, revoked ones included (they show when they were revoked).
    pub async fn list_api_keys(&self, account_id: AccountId) -> Result<Vec<ApiKey>> {
        let rows = sqlx::query(&format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE account_id = $1 ORDER BY created_at DESC, id DESC"
        ))
        .bind(account_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ApiKey::from_row).collect()
    }

    /// Revokes a key; revoking a revoked key changes nothing and is not an error.
    pub async fn revoke_api_key(&self, account_id: AccountId, id: ApiKeyId, audit: &Audit) -> Result<ApiKey> {
        let mut tx = self.write_tx().await?;
        let done =
            sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND account_id = $3 AND revoked_at IS NULL")
                .bind(Timestamp::now().millis())
                .bind(id.to_string())
                .bind(account_id.to_string())
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 1 {
            audit_tx(&mut tx, &audit.clone().target("api_key", id)).await?;
        }
        tx.commit().await?;
        self.api_key(account_id, id).await
    }

    /// The key with this prefix and its stored hash, for authenticating `X-API-Key`.
    pub async fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<(ApiKey, String)>> {
        let row = sqlx::query(&format!("SELECT {API_KEY_COLUMNS}, key_hash FROM api_keys WHERE prefix = $1"))
            .bind(prefix)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((ApiKey::from_row(&r)?, r.text("key_hash")?))).transpose()
    }

    /// Records a key's use, at most once a minute.
    pub async fn touch_api_key(&self, key: &ApiKey, now: Timestamp) -> Result<()> {
        if key.last_used_at.is_some_and(|t| now.millis() - t.millis() < TOUCH_EVERY_MS) {
            return Ok(());
        }
        sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
            .bind(now.millis())
            .bind(key.id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A lockout recorded for `bucket` by [`Store::lock_out`]: until when, and how many lockouts
    /// in a row led to it (their count outlives the lockout by a day, so a client that starts
    /// again right after one is locked out for twice as long).
    pub async fn lockout(&self, bucket: &str) -> Result<Option<(Timestamp, i64)>> {
        let row = sqlx::query("SELECT window_start, hits FROM rate_limits WHERE bucket = $1")
            .bind(format!("lockout:{bucket}"))
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((r.ts("window_start")?, r.int("hits")?))).transpose()
    }

    /// Records that `bucket` is locked out until `until`, the `strikes`-th time in a row. Kept in
    /// `rate_limits` (the window start is the end of the lockout), so every replica sees it and
    /// the usual purge forgets it a day after it ends.
    pub async fn lock_out(&self, bucket: &str, until: Timestamp, strikes: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO rate_limits (bucket, window_start, hits) VALUES ($1, $2, $3) \
             ON CONFLICT (bucket) DO UPDATE SET window_start = $2, hits = $3",
        )
        .bind(format!("lockout:{bucket}"))
        .bind(until.millis())
        .bind(strikes)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Counts a hit in `bucket`'s fixed window of `window_ms` and returns (hits in the window
    /// including this one, when the window started). One statement, so concurrent hits from any
    /// replica are all counted.
    pub async fn hit_rate_limit(&self, bucket: &str, window_ms: i64, now: Timestamp) -> Result<(i64, Timestamp)> {
        let now = now.millis();
        let row = sqlx::query(
            "INSERT INTO rate_limits (bucket, window_start, hits) VALUES ($1, $2, 1) \
             ON CONFLICT (bucket) DO UPDATE SET \
               hits = CASE WHEN rate_limits.window_start <= $3 THEN 1 ELSE rate_limits.hits + 1 END, \
               window_start = CASE WHEN rate_limits.window_start <= $3 THEN $2 ELSE rate_limits.window_start END \
             RETURNING hits, window_start",
        )
        .bind(bucket)
        .bind(now)
        .bind(now - window_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok((row.int("hits")?, row.ts("window_start")?))
    }

    /// The hits counted in `bucket`'s current window of `window_ms` (0 once it has ended), without
    /// counting one: for limits that count only failures, checked before the attempt.
    pub async fn rate_limit_hits(&self, bucket: &str, window_ms: i64, now: Timestamp) -> Result<i64> {
        let hits: Option<i64> =
            sqlx::query_scalar("SELECT hits FROM rate_limits WHERE bucket = $1 AND window_start > $2")
                .bind(bucket)
                .bind(now.millis() - window_ms)
                .fetch_optional(&self.pool)
                .await?;
        Ok(hits.unwrap_or(0))
    }

    /// Forgets windows that ended before `before`.
    pub async fn purge_rate_limits(&self, before: Timestamp) -> Result<u64> {
        let done = sqlx::query("DELETE FROM rate_limits WHERE window_start < $1")
            .bind(before.millis())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
