//! Call recordings: the stereo Ogg/Opus file a voice agent wrote (counselor left, caller right),
//! described by a row; the file lives in `RECORDINGS_DIR` under its session's name
//! ([`recording_file_name`], never a name a report or an old row chose). Rows go with their
//! session (foreign key cascade); files past the retention period are purged.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use utoipa::{IntoParams, ToSchema};

use crate::db::{RowExt, Store, page};
use crate::domain::Timestamp;
use crate::error::{Error, Result};
use crate::ids::{AccountId, RecordingId, SessionId, UserId};
use crate::scoped::SessionRef;
use crate::voice::recording_file_name;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Recording {
    #[schema(value_type = Uuid)]
    pub id: RecordingId,
    #[schema(value_type = Uuid)]
    pub session_id: SessionId,
    /// The counselor of the call.
    #[schema(value_type = Uuid)]
    pub user_id: UserId,
    pub content_type: String,
    pub byte_size: i64,
    pub duration_ms: Option<i64>,
    pub created_at: Timestamp,
    /// The file's name inside `RECORDINGS_DIR`, from the session id (not exposed).
    #[serde(skip)]
    pub file: String,
}

const COLUMNS: &str =
    "r.id, r.session_id, s.user_id, r.content_type, r.byte_size, r.duration_ms, r.created_at, r.storage_path";

impl Recording {
    fn from_row(r: &AnyRow) -> Result<Self> {
        let session_id: SessionId = r.uuid("session_id")?;
        Ok(Recording {
            id: r.uuid("id")?,
            session_id,
            user_id: r.uuid("user_id")?,
            content_type: r.text("content_type")?,
            byte_size: r.int("byte_size")?,
            duration_ms: r.opt_int("duration_ms")?,
            created_at: r.ts("created_at")?,
            // Not `storage_path`: a row an older version stored may name another session's file.
            file: recording_file_name(session_id),
        })
    }
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct RecordingFilter {
    /// One counselor's recordings (counselors always see only their own).
    #[param(value_type = Option<Uuid>)]
    pub user_id: Option<UserId>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

impl Store {
    /// A session's recording.
    pub async fn recording(&self, session: &SessionRef) -> Result<Recording> {
        let (account_id, session_id) = (session.account_id(), session.id());
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM recordings r JOIN sessions s ON s.id = r.session_id \
             WHERE r.session_id = $1 AND r.account_id = $2"
        ))
        .bind(session_id.to_string())
        .bind(account_id.to_string())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(Error::NotFound("recording"))?;
        Recording::from_row(&row)
    }

    /// Recordings of the account, newest first, optionally one counselor's.
    pub async fn list_recordings(&self, account_id: AccountId, filter: &RecordingFilter) -> Result<Vec<Recording>> {
        let (limit, offset) = page(filter.limit, filter.offset);
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM recordings r JOIN sessions s ON s.id = r.session_id \
             WHERE r.account_id = $1 AND ($2 IS NULL OR s.user_id = $2) \
             ORDER BY r.created_at DESC, r.id DESC LIMIT $3 OFFSET $4"
        ))
        .bind(account_id.to_string())
        .bind(filter.user_id.map(|u| u.to_string()))
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Recording::from_row).collect()
    }

    /// Deletes the rows of recordings made before `before` and answers their file names, for the
    /// caller to delete the files (a file left behind by a crash is found by the next purge of
    /// orphans: see [`Store::recording_files`]).
    pub async fn purge_recordings(&self, before: Timestamp) -> Result<Vec<String>> {
        let mut tx = self.write_tx().await?;
        let rows = sqlx::query("SELECT session_id FROM recordings WHERE created_at < $1")
            .bind(before.millis())
            .fetch_all(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM recordings WHERE created_at < $1").bind(before.millis()).execute(&mut *tx).await?;
        tx.commit().await?;
        rows.iter().map(|r| r.uuid::<SessionId>("session_id").map(recording_file_name)).collect()
    }

    /// Which of `files` a recording row still names (the rest are orphans: their session was
    /// deleted, or the purge crashed before deleting the file).
    pub async fn recording_files(&self, files: &[String]) -> Result<Vec<String>> {
        let mut known = Vec::new();
        for f in files {
            // A file is its session's recording by name; any other name is no recording's.
            let Some(session_id) = f.strip_suffix(".ogg").and_then(|id| id.parse::<SessionId>().ok()) else {
                continue;
            };
            if recording_file_name(session_id) != *f {
                continue;
            }
            let row = sqlx::query("SELECT 1 FROM recordings WHERE session_id = $1")
                .bind(session_id.to_string())
                .fetch_optional(&self.pool)
                .await?;
            if row.is_some() {
                known.push(f.clone());
            }
        }
        Ok(known)
    }
}
