//! What the account keeps and erasing a person, for account admins: the retention of
//! transcripts, evaluations and audit records (the housekeeping job purges past it), and the
//! erasure of a user (pseudonymised, recordings deleted).

use axum::extract::State;
use store::{Audit, Retention, User, UserId};

use crate::AppState;
use crate::error::{ApiError, ErrorBody, Result};
use crate::extract::{IdPath, Json};
use crate::identity::Actor;

/// How long the account keeps transcripts, evaluations and audit records (days; null: forever).
#[utoipa::path(get, path = "/api/retention", tag = "privacy",
    responses((status = 200, body = Retention), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn get_retention(State(state): State<AppState>, actor: Actor) -> Result<Json<Retention>> {
    actor.require_admin()?;
    Ok(Json(state.store.retention(actor.account_id).await?))
}

/// Sets the account's retention. Transcripts and evaluations: 1 to 3650 days after the session
/// ended; audit records: 30 to 3650 days; null keeps them. The next hourly purge applies it.
#[utoipa::path(put, path = "/api/retention", tag = "privacy", request_body = Retention,
    responses((status = 200, body = Retention), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_retention(
    State(state): State<AppState>,
    actor: Actor,
    Json(retention): Json<Retention>,
) -> Result<Json<Retention>> {
    actor.require_admin()?;
    let audit = Audit::new(Some(actor.account_id), Some(actor.user_id), "retention.changed");
    Ok(Json(state.store.set_retention(actor.account_id, &retention, audit).await?))
}

/// Erases a user: their name and e-mail become a pseudonym, their password and sign-in sessions
/// go, they are deactivated, audit details naming their e-mail are redacted and their call
/// recordings are deleted. Their practice sessions and evaluations stay, under the pseudonym, in
/// the account's statistics. Not undoable. 409 for yourself, a user already erased, or the last
/// active admin.
#[utoipa::path(post, path = "/api/users/{id}/erase", tag = "privacy", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = User), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn erase_user(State(state): State<AppState>, actor: Actor, IdPath(id): IdPath<UserId>) -> Result<Json<User>> {
    actor.require_admin()?;
    if id == actor.user_id {
        return Err(ApiError::Conflict {
            message: "you cannot erase yourself; ask another admin".into(),
            existing_id: None,
        });
    }
    let audit = Audit::new(Some(actor.account_id), Some(actor.user_id), "user.erased");
    let (user, files) = state.store.erase_user(actor.account_id, id, audit).await?;
    let dir = &state.config.voice.recordings_dir;
    for f in &files {
        match tokio::fs::remove_file(dir.join(f)).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            // The row is gone; the orphan sweep deletes the file within a day.
            Err(e) => tracing::warn!(error = %e, "deleting an erased user's recording"),
        }
    }
    Ok(Json(user))
}
