//! The store's one error type. Callers (HTTP, CLI, agent) map it once at their own boundary.

use serde::Serialize;
use utoipa::ToSchema;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A problem with one field of an input, reported back to the client as-is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldError {
    /// The field's name as the client spelled it (camelCase, or the CSV column).
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request contradicts stored state: a duplicate, a dependent row, a forbidden transition.
    #[error("{message}")]
    Conflict { message: String, existing_id: Option<String> },
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value could not be read back (a bug or a hand-edited database).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl Error {
    pub fn conflict(message: impl Into<String>) -> Self {
        Error::Conflict { message: message.into(), existing_id: None }
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Error::Invalid(vec![FieldError::new(field, message)])
    }
}

/// Which kind of constraint a database error reports, if any.
pub(crate) enum Violation {
    Unique(String),
    ForeignKey,
    Check,
}

/// Classifies a database error; the string names the violated constraint (PostgreSQL) or
/// carries the message that names its columns (SQLite), for the caller to tell uniques apart.
pub(crate) fn violation(err: &sqlx::Error) -> Option<Violation> {
    let sqlx::Error::Database(db) = err else { return None };
    if db.is_unique_violation() {
        let what = db.constraint().map(str::to_owned).unwrap_or_else(|| db.message().to_owned());
        Some(Violation::Unique(what))
    } else if db.is_foreign_key_violation() || db.message().contains("FOREIGN KEY constraint failed") {
        // SQLite reports `ON DELETE RESTRICT` through SQLITE_CONSTRAINT_TRIGGER, which sqlx does
        // not classify as a foreign-key violation; its message is the same, though.
        Some(Violation::ForeignKey)
    } else if db.is_check_violation() {
        Some(Violation::Check)
    } else {
        None
    }
}
