//! The account's data revision: a counter that moves forward, in the same transaction, with
//! every change to what the list routes show (database triggers, migration 0044). A list
//! rendered under revision N is current for as long as the account stays at N, which is what
//! lets the admin service keep rendered lists (`admin::list_cache`) and still answer every
//! request as the database stands, across any number of replicas.
//!
//! The auth lookup reads the revision in the same query (`AuthSession::revision`), so checking
//! a cached list costs no query of its own.

use crate::Store;
use crate::db::RowExt;
use crate::error::Result;
use crate::ids::AccountId;

/// The tables whose changes move the revision: every table a list route reads.
pub const REVISION_TRACKED: &[&str] = &[
    "account_categories",
    "assignments",
    "call_records",
    "caller_deviations",
    "document_reviews",
    "evaluation_criteria",
    "evaluation_overrides",
    "evaluation_reviews",
    "evaluation_suggestions",
    "evaluations",
    "recordings",
    "risk_levels",
    "scenarios",
    "session_analyses",
    "session_flags",
    "sessions",
    "test_runs",
    "transcript_turns",
    "users",
    "voice_usage",
];

/// The tables no list reads; several change on every request or job, and tracking them would
/// only throw rendered lists away. A new table must join one list or the other (a store test
/// checks the schema against both).
pub const REVISION_UNTRACKED: &[&str] = &[
    "_sqlx_migrations",
    "account_policies",
    "account_revisions",
    "accounts",
    "api_keys",
    "audit_events",
    "auth_sessions",
    "document_review_claims",
    "idempotency_keys",
    "jobs",
    "llm_calls",
    "policy_chunks",
    "rate_limits",
    "retention_settings",
    "webhook_deliveries",
    "webhooks",
];

impl Store {
    /// The account's current data revision (0 for an account that has none yet).
    pub async fn account_revision(&self, account_id: AccountId) -> Result<i64> {
        let row = sqlx::query("SELECT revision FROM account_revisions WHERE account_id = $1")
            .bind(account_id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(row) => row.int("revision")?,
            None => 0,
        })
    }

    /// Every table of the schema, with whether a revision trigger watches it: what the coverage
    /// test compares with [`REVISION_TRACKED`] and [`REVISION_UNTRACKED`].
    pub async fn revision_triggers(&self) -> Result<Vec<(String, bool)>> {
        let sql = match self.backend() {
            crate::Backend::Sqlite => {
                "SELECT t.name AS name, EXISTS (SELECT 1 FROM sqlite_master g WHERE g.type = 'trigger' \
                 AND g.tbl_name = t.name AND g.name LIKE '%\\_moves\\_revision\\_%' ESCAPE '\\') AS watched \
                 FROM sqlite_master t WHERE t.type = 'table' AND t.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY t.name"
            }
            crate::Backend::Postgres => {
                "SELECT c.relname::TEXT AS name, EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = c.oid \
                 AND g.tgname LIKE '%\\_moves\\_revision' ESCAPE '\\') AS watched \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind = 'r' AND n.nspname = current_schema() ORDER BY c.relname"
            }
        };
        let rows = sqlx::query(sql).fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok((r.text("name")?, r.flag("watched")?))).collect()
    }
}
