//! Accounts (organisations), their category list, and the audit trail.

use serde::Serialize;
use sqlx::any::AnyRow;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::{RowExt, Store};
use crate::domain::{DEFAULT_CATEGORIES, Timestamp, new_id};
use crate::error::{Error, Result, Violation, violation};
use crate::ids::{AccountId, UserId};

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    #[schema(value_type = Uuid)]
    pub id: AccountId,
    pub name: String,
    pub created_at: Timestamp,
}

impl Account {
    fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(Account { id: row.uuid("id")?, name: row.text("name")?, created_at: row.ts("created_at")? })
    }
}

/// Something worth a durable record: who did what to which thing.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub id: Uuid,
    #[schema(value_type = Option<Uuid>)]
    pub account_id: Option<AccountId>,
    #[schema(value_type = Option<Uuid>)]
    pub actor_user_id: Option<UserId>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub details: serde_json::Value,
    pub created_at: Timestamp,
}

/// Category names as typed ("Youth and LGBTQ+"): spaces collapsed, capitals kept, letters,
/// digits and the punctuation names use (`&`, `+`, `-`, `_`, `/`, `'`, `,`, parentheses; not `.`,
/// which the UI's label table reads as a key separator).
/// Uniqueness ignores case (the schema's `account_categories_lower_name_key`).
pub(crate) fn normalize_category(name: &str) -> Result<String, String> {
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.is_empty() || name.chars().count() > 64 {
        return Err("must be 1 to 64 characters".into());
    }
    if !name.chars().all(|c| c.is_alphanumeric() || " &+-_/',()".contains(c)) {
        return Err("may hold letters, digits, spaces and & + - _ / ' , ( ) only".into());
    }
    Ok(name)
}

/// A category name the account already has, in a 409 people can act on.
fn duplicate_category(name: &str) -> Error {
    Error::conflict(format!("a category named \"{name}\" exists already (names are compared ignoring capitals)"))
}

impl Store {
    /// Creates an account with the default category list, in one transaction.
    pub async fn create_account(&self, name: &str) -> Result<Account> {
        let name = name.trim();
        if name.is_empty() {
            return Err(Error::invalid("name", "must not be empty"));
        }
        let account = Account { id: AccountId::new(), name: name.to_owned(), created_at: Timestamp::now() };
        let mut tx = self.write_tx().await?;
        sqlx::query("INSERT INTO accounts (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(account.id.to_string())
            .bind(&account.name)
            .bind(account.created_at.millis())
            .execute(&mut *tx)
            .await
            .map_err(|e| match violation(&e) {
                Some(Violation::Unique(_)) => Error::conflict(format!("an account named `{name}` exists")),
                _ => e.into(),
            })?;
        for (position, category) in DEFAULT_CATEGORIES.iter().enumerate() {
            sqlx::query(
                "INSERT INTO account_categories (account_id, name, position, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(account.id.to_string())
            .bind(*category)
            .bind(position as i64)
            .bind(account.created_at.millis())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(account)
    }

    /// Removes an account and, by cascade, all it holds: for undoing a half-done provisioning.
    pub async fn delete_account(&self, id: AccountId) -> Result<()> {
        sqlx::query("DELETE FROM accounts WHERE id = $1").bind(id.to_string()).execute(&self.pool).await?;
        Ok(())
    }

    pub async fn account(&self, id: AccountId) -> Result<Account> {
        let row = sqlx::query("SELECT id, name, created_at FROM accounts WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(Error::NotFound("account"))?;
        Account::from_row(&row)
    }

    pub async fn find_account_by_name(&self, name: &str) -> Result<Option<Account>> {
        let row = sqlx::query("SELECT id, name, created_at FROM accounts WHERE lower(name) = lower($1)")
            .bind(name.trim())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Account::from_row).transpose()
    }

    pub async fn list_accounts(&self) -> Result<Vec<Account>> {
        let rows = sqlx::query("SELECT id, name, created_at FROM accounts ORDER BY name").fetch_all(&self.pool).await?;
        rows.iter().map(Account::from_row).collect()
    }

    /// The account's category list, in display order.
    pub async fn categories(&self, account_id: AccountId) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT name FROM account_categories WHERE account_id = $1 ORDER BY position, name")
            .bind(account_id.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| r.text("name")).collect()
    }

    /// Adds a category to the account's list; answers the name as stored.
    pub async fn add_category(&self, account_id: AccountId, name: &str) -> Result<String> {
        let name = normalize_category(name).map_err(|m| Error::invalid("name", m))?;
        let mut tx = self.write_tx().await?;
        crate::db::lock_account(&mut tx, account_id).await?;
        let next: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(position), -1) + 1 FROM account_categories WHERE account_id = $1")
                .bind(account_id.to_string())
                .fetch_one(&mut *tx)
                .await?;
        sqlx::query("INSERT INTO account_categories (account_id, name, position, created_at) VALUES ($1, $2, $3, $4)")
            .bind(account_id.to_string())
            .bind(&name)
            .bind(next)
            .bind(Timestamp::now().millis())
            .execute(&mut *tx)
            .await
            .map_err(|e| match violation(&e) {
                Some(Violation::Unique(_)) => duplicate_category(&name),
                Some(Violation::ForeignKey) => Error::NotFound("account"),
                _ => e.into(),
            })?;
        tx.commit().await?;
        Ok(name)
    }

    /// Renames a category (found ignoring case) in place: its scenarios follow through the
    /// foreign key's `ON UPDATE CASCADE`, its position is kept. A change of capitals only
    /// ("youth" -> "Youth") is a rename too. Answers the new name as stored.
    pub async fn rename_category(
        &self,
        account_id: AccountId,
        current: &str,
        name: &str,
        audit: &Audit,
    ) -> Result<String> {
        let name = normalize_category(name).map_err(|m| Error::invalid("name", m))?;
        let mut tx = self.write_tx().await?;
        crate::db::lock_account(&mut tx, account_id).await?;
        let stored = stored_category(&mut tx, account_id, current).await?;
        if stored != name {
            sqlx::query("UPDATE account_categories SET name = $1 WHERE account_id = $2 AND name = $3")
                .bind(&name)
                .bind(account_id.to_string())
                .bind(&stored)
                .execute(&mut *tx)
                .await
                .map_err(|e| match violation(&e) {
                    Some(Violation::Unique(_)) => duplicate_category(&name),
                    _ => e.into(),
                })?;
            let audit =
                audit.clone().target("category", &name).details(serde_json::json!({ "from": stored, "to": name }));
            audit_tx(&mut tx, &audit).await?;
        }
        tx.commit().await?;
        Ok(name)
    }

    /// Deletes a category no scenario uses. One in use is refused with a 409 that says how many
    /// scenarios use it and what to do: a supervisor decides where those scenarios go (move them,
    /// or rename the category), nothing is moved behind their back. The last category stays, so
    /// scenarios can still be written.
    pub async fn delete_category(&self, account_id: AccountId, name: &str, audit: &Audit) -> Result<()> {
        let mut tx = self.write_tx().await?;
        crate::db::lock_account(&mut tx, account_id).await?;
        let stored = stored_category(&mut tx, account_id, name).await?;
        let used: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM scenarios WHERE account_id = $1 AND category = $2")
            .bind(account_id.to_string())
            .bind(&stored)
            .fetch_one(&mut *tx)
            .await?;
        if used > 0 {
            let scenarios = if used == 1 { "1 scenario uses".to_owned() } else { format!("{used} scenarios use") };
            return Err(Error::conflict(format!(
                "{scenarios} \"{stored}\": move them to another category first (edit each scenario), or rename the category instead"
            )));
        }
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM account_categories WHERE account_id = $1")
            .bind(account_id.to_string())
            .fetch_one(&mut *tx)
            .await?;
        if total <= 1 {
            return Err(Error::conflict(
                "the account needs at least one category: add another before deleting this one",
            ));
        }
        sqlx::query("DELETE FROM account_categories WHERE account_id = $1 AND name = $2")
            .bind(account_id.to_string())
            .bind(&stored)
            .execute(&mut *tx)
            .await
            .map_err(|e| match violation(&e) {
                // A scenario written since the count (not possible under the account lock, but
                // the schema's RESTRICT says the same thing).
                Some(Violation::ForeignKey) => Error::conflict(format!("scenarios use \"{stored}\": move them first")),
                _ => e.into(),
            })?;
        audit_tx(&mut tx, &audit.clone().target("category", &stored)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Appends to the audit trail an event that is not part of a change (a failed sign-in);
    /// changes write theirs in their own transaction ([`audit_tx`]).
    pub async fn audit(&self, audit: &Audit) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        audit_tx(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn audit_events(&self, account_id: AccountId, limit: i64) -> Result<Vec<AuditEvent>> {
        let rows = sqlx::query(
            "SELECT id, account_id, actor_user_id, action, target_type, target_id, details, created_at \
             FROM audit_events WHERE account_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(account_id.to_string())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEvent {
                    id: r.uuid("id")?,
                    account_id: r.opt_uuid("account_id")?,
                    actor_user_id: r.opt_uuid("actor_user_id")?,
                    action: r.text("action")?,
                    target_type: r.opt_text("target_type")?,
                    target_id: r.opt_text("target_id")?,
                    details: r.json("details")?,
                    created_at: r.ts("created_at")?,
                })
            })
            .collect()
    }
}

/// An audit-trail record, written in the transaction of the change it reports so that a change
/// and its record exist together or not at all. Details are free-form JSON and must never hold
/// secrets.
///
/// The writes that must be audited (erasure, retention, an evaluation's release, role and
/// activity changes, API keys, scenario deletion, flag resolution, ...) take an `Audit` as a
/// required argument and write it in their own transaction. Its fields are private and it has
/// no `Default`: the only way to make one is [`Audit::new`], which names the account, who acted
/// (`None`: the system itself) and what was done.
#[derive(Debug, Clone)]
pub struct Audit {
    pub(crate) account_id: Option<AccountId>,
    pub(crate) actor_user_id: Option<UserId>,
    pub(crate) action: &'static str,
    pub(crate) target: Option<(&'static str, String)>,
    pub(crate) details: serde_json::Value,
}

impl Audit {
    pub fn new(account_id: Option<AccountId>, actor_user_id: Option<UserId>, action: &'static str) -> Audit {
        Audit { account_id, actor_user_id, action, target: None, details: serde_json::json!({}) }
    }

    /// Who acted (`None`: the system).
    pub fn actor(&self) -> Option<UserId> {
        self.actor_user_id
    }

    /// What was done, e.g. `user.erased`.
    pub fn action(&self) -> &'static str {
        self.action
    }

    /// The same actor in the same account doing `action`: for a write that records several
    /// changes (a role change and a deactivation) under their own names.
    pub(crate) fn as_action(&self, action: &'static str) -> Audit {
        Audit::new(self.account_id, self.actor_user_id, action)
    }

    pub fn target(mut self, kind: &'static str, id: impl ToString) -> Audit {
        self.target = Some((kind, id.to_string()));
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Audit {
        self.details = details;
        self
    }
}

/// Writes `audit` inside a caller's transaction.
pub(crate) async fn audit_tx(tx: &mut sqlx::Transaction<'static, sqlx::Any>, audit: &Audit) -> Result<()> {
    let (target_type, target_id) = audit.target.clone().map(|(t, id)| (Some(t), Some(id))).unwrap_or_default();
    sqlx::query(
        "INSERT INTO audit_events (id, account_id, actor_user_id, action, target_type, target_id, details, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(new_id().to_string())
    .bind(audit.account_id.map(|id| id.to_string()))
    .bind(audit.actor_user_id.map(|id| id.to_string()))
    .bind(audit.action)
    .bind(target_type)
    .bind(target_id)
    .bind(audit.details.to_string())
    .bind(Timestamp::now().millis())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The stored spelling of a category named ignoring case; 404 when the account has none.
async fn stored_category(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    account_id: AccountId,
    name: &str,
) -> Result<String> {
    // A name no category can hold (too long, control characters, a NUL PostgreSQL would refuse
    // as text) is simply not there; it never reaches the query.
    if name.chars().any(char::is_control) {
        return Err(Error::NotFound("category"));
    }
    let name = normalize_category(name).map_err(|_| Error::NotFound("category"))?;
    sqlx::query_scalar("SELECT name FROM account_categories WHERE account_id = $1 AND lower(name) = lower($2)")
        .bind(account_id.to_string())
        .bind(name)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(Error::NotFound("category"))
}
