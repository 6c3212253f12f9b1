//! Users: counselors (learners), supervisors and account admins, each of one account.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use utoipa::{IntoParams, ToSchema};

use crate::db::{RowExt, Store, like_pattern};
use crate::domain::{Role, Timestamp};
use crate::error::{Error, FieldError, Result, Violation, violation};
use crate::ids::{AccountId, UserId};

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[schema(value_type = Uuid)]
    pub id: UserId,
    #[schema(value_type = Uuid)]
    pub account_id: AccountId,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    /// The id a partner system knows this user by.
    pub external_id: Option<String>,
    pub active: bool,
    /// Seeded demo users exist only for demos (DEMO_MODE).
    pub is_demo: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

const USER_COLUMNS: &str =
    "id, account_id, email, display_name, role, external_id, active, is_demo, created_at, updated_at";

impl User {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(User {
            id: row.uuid("id")?,
            account_id: row.uuid("account_id")?,
            email: row.text("email")?,
            display_name: row.text("display_name")?,
            role: row.parsed("role")?,
            external_id: row.opt_text("external_id")?,
            active: row.flag("active")?,
            is_demo: row.flag("is_demo")?,
            created_at: row.ts("created_at")?,
            updated_at: row.ts("updated_at")?,
        })
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewUser {
    #[schema(max_length = 254, pattern = r"^\s*[^@\s]+@[^@\s.][^@\s]*\.[^@\s]*\s*$")]
    pub email: String,
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub display_name: String,
    pub role: Role,
    #[serde(default)]
    pub external_id: Option<String>,
    /// Marks a seeded demo user; not settable through the API.
    #[serde(skip)]
    pub is_demo: bool,
}

impl NewUser {
    fn validate(mut self) -> Result<Self> {
        let mut errors = Vec::new();
        self.email = self.email.trim().to_lowercase();
        let valid_email = self
            .email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.') && !domain.starts_with('.'));
        if !valid_email || self.email.len() > 254 || self.email.contains(char::is_whitespace) {
            errors.push(FieldError::new("email", "must be an e-mail address"));
        }
        self.display_name = self.display_name.trim().to_owned();
        if self.display_name.is_empty() || self.display_name.chars().count() > 200 {
            errors.push(FieldError::new("displayName", "must be 1 to 200 characters"));
        }
        self.external_id = self.external_id.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        if self.external_id.as_ref().is_some_and(|s| s.len() > 200) {
            errors.push(FieldError::new("externalId", "must be at most 200 characters"));
        }
        if errors.is_empty() { Ok(self) } else { Err(Error::Invalid(errors)) }
    }
}

/// Query for the user list and the counselor type-ahead.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct UserFilter {
    pub role: Option<Role>,
    /// Case-insensitive substring of the name or e-mail.
    pub q: Option<String>,
    /// Include deactivated users (default false).
    #[serde(default)]
    pub include_inactive: bool,
    pub limit: Option<i64>,
}

impl Store {
    pub async fn create_user(&self, account_id: AccountId, input: NewUser) -> Result<User> {
        let mut tx = self.write_tx().await?;
        let id = insert_user_tx(&mut tx, account_id, input).await?;
        tx.commit().await?;
        self.user(account_id, id).await
    }

    /// Creates a user who signs in with a password (`one_time_until`: a one-time one, which
    /// signs in until then and must be changed at first sign-in), audited as `audit` says: the
    /// user, the password and the record exist together or not at all.
    pub async fn create_user_with_password(
        &self,
        account_id: AccountId,
        input: NewUser,
        password_hash: &str,
        one_time_until: Option<Timestamp>,
        audit: &crate::Audit,
    ) -> Result<User> {
        let mut tx = self.write_tx().await?;
        let id = insert_user_tx(&mut tx, account_id, input).await?;
        sqlx::query(
            "UPDATE users SET password_hash = $1, password_must_change = $2, password_expires_at = $3 WHERE id = $4",
        )
        .bind(password_hash)
        .bind(one_time_until.is_some())
        .bind(one_time_until.map(Timestamp::millis))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        crate::accounts::audit_tx(&mut tx, &audit.clone().target("user", id)).await?;
        tx.commit().await?;
        self.user(account_id, id).await
    }

    /// One user of the account (a user of another account is "not found").
    pub async fn user(&self, account_id: AccountId, id: UserId) -> Result<User> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1 AND account_id = $2"))
            .bind(id.to_string())
            .bind(account_id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(Error::NotFound("user"))?;
        User::from_row(&row)
    }

    /// A user by id regardless of account: for resolving who is calling.
    pub async fn user_by_id(&self, id: UserId) -> Result<Option<User>> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(User::from_row).transpose()
    }

    /// For tests only (not in the production binary).
    #[cfg(feature = "testing")]
    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1"))
            .bind(email.trim().to_lowercase())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(User::from_row).transpose()
    }

    pub async fn user_by_external_id(&self, account_id: AccountId, external_id: &str) -> Result<Option<User>> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE account_id = $1 AND external_id = $2"))
            .bind(account_id.to_string())
            .bind(external_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(User::from_row).transpose()
    }

    /// Users of the account, by name; with `q`, a type-ahead over name and e-mail.
    pub async fn list_users(&self, account_id: AccountId, filter: &UserFilter) -> Result<Vec<User>> {
        let limit = filter.limit.unwrap_or(200).clamp(1, 1000);
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE account_id = $1 \
             AND ($2 IS NULL OR role = $2) \
             AND ($3 IS NULL OR lower(display_name) LIKE $3 ESCAPE '\\' OR email LIKE $3 ESCAPE '\\') \
             AND (active OR $4) \
             ORDER BY lower(display_name), id LIMIT $5"
        ))
        .bind(account_id.to_string())
        .bind(filter.role.map(Role::as_str))
        .bind(filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()).map(like_pattern))
        .bind(filter.include_inactive)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(User::from_row).collect()
    }

    /// The seeded demo users the demo switcher offers, supervisors first.
    pub async fn demo_users(&self) -> Result<Vec<User>> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE is_demo AND active ORDER BY role DESC, lower(display_name), id LIMIT 100"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(User::from_row).collect()
    }

    /// For tests: skips the last-admin rule [`Store::update_user`] keeps.
    #[cfg(feature = "testing")]
    /// For tests only (not in the production binary).
    #[cfg(feature = "testing")]
    pub async fn set_user_active(&self, account_id: AccountId, id: UserId, active: bool) -> Result<User> {
        let done = sqlx::query("UPDATE users SET active = $1, updated_at = $2 WHERE id = $3 AND account_id = $4")
            .bind(active)
            .bind(Timestamp::now().millis())
            .bind(id.to_string())
            .bind(account_id.to_string())
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound("user"));
        }
        self.user(account_id, id).await
    }
}

/// Inserts a user (without a password) inside a caller's transaction.
async fn insert_user_tx(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    account_id: AccountId,
    input: NewUser,
) -> Result<UserId> {
    let input = input.validate()?;
    let now = Timestamp::now();
    let id = UserId::new();
    sqlx::query(
        "INSERT INTO users (id, account_id, email, display_name, role, external_id, active, is_demo, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, TRUE, $7, $8, $8)",
    )
    .bind(id.to_string())
    .bind(account_id.to_string())
    .bind(&input.email)
    .bind(&input.display_name)
    .bind(input.role.as_str())
    .bind(input.external_id.as_deref())
    .bind(input.is_demo)
    .bind(now.millis())
    .execute(&mut **tx)
    .await
    .map_err(|e| match violation(&e) {
        // E-mail is unique across accounts (it signs in); the answer neither echoes the
        // address nor says whether another account's user holds it.
        Some(Violation::Unique(what)) if what.contains("email") => {
            Error::conflict("this e-mail address cannot be used for a new user; choose another")
        }
        Some(Violation::Unique(_)) => Error::conflict("a user with this externalId exists in the account"),
        Some(Violation::ForeignKey) => Error::NotFound("account"),
        _ => e.into(),
    })?;
    Ok(id)
}
