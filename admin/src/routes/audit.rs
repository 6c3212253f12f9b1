//! The account's audit trail, for its account admins: who changed what, who signed in, who read
//! which transcript or recording. Read-only; every entry was written by the change it records.

use axum::extract::State;
use store::{AuditFilter, AuditPage};

use crate::AppState;
use crate::error::{ErrorBody, Result};
use crate::extract::{Json, Query};
use crate::identity::Actor;

/// The account's audit trail, newest first, filtered by actor, action (exact, or a prefix ending
/// in `.` or `*`) and time, in pages of up to 200 (`before` = the previous page's `nextBefore`).
/// Account admins only.
#[utoipa::path(get, path = "/api/audit-events", tag = "audit", params(AuditFilter),
    responses((status = 200, body = AuditPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_audit_events(
    State(state): State<AppState>,
    actor: Actor,
    Query(filter): Query<AuditFilter>,
) -> Result<Json<AuditPage>> {
    actor.require_admin()?;
    Ok(Json(state.store.audit_log(actor.account_id, &filter).await?))
}
