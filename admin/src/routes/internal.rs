//! The internal API for voice agents that do not share the database with the admin service
//! (co-deployed agents write to the store directly). Authenticated by `INTERNAL_SERVICE_KEY`;
//! without it configured, every internal route answers 401.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use store::{NewSession, NewTurn, Session, SessionKind, SessionStatus};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ErrorBody, Result};
use crate::extract::{IdPath, Json};
use crate::identity::Internal;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InternalNewSession {
    pub account_id: Uuid,
    /// The counselor in the call.
    pub user_id: Uuid,
    #[serde(default)]
    pub assignment_id: Option<Uuid>,
    /// For free practice with a chosen scenario.
    #[serde(default)]
    pub scenario_id: Option<Uuid>,
    #[serde(default)]
    pub room_name: Option<String>,
}

/// Creates a voice session for a call the agent is in (an assignment attempt moves the
/// assignment to in progress, as for a counselor starting it).
#[utoipa::path(post, path = "/api/internal/sessions", tag = "internal", request_body = InternalNewSession,
    responses((status = 201, body = Session), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn create_session(
    State(state): State<AppState>,
    _caller: Internal,
    Json(input): Json<InternalNewSession>,
) -> Result<(StatusCode, Json<Session>)> {
    state.store.user(input.account_id, input.user_id).await?;
    let new = NewSession {
        user_id: input.user_id,
        assignment_id: input.assignment_id,
        scenario_id: input.scenario_id,
        kind: SessionKind::Voice,
        room_name: input.room_name,
    };
    Ok((StatusCode::CREATED, Json(state.store.create_session(input.account_id, &new).await?)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TranscriptBatch {
    /// Turns as they were spoken; a turn re-sent with the same `segmentId` is stored once.
    pub turns: Vec<NewTurn>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TranscriptAppended {
    /// Turns stored by this request (re-sent segments are not counted).
    pub appended: usize,
}

/// Appends transcript turns to a session, as they happen (not only at the end of the call).
#[utoipa::path(post, path = "/api/internal/sessions/{id}/transcript", tag = "internal", params(("id" = Uuid, Path)),
    request_body = TranscriptBatch,
    responses((status = 200, body = TranscriptAppended), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The session has ended: its transcript is final"),
        (status = 422, body = ErrorBody)))]
pub async fn append_transcript(
    State(state): State<AppState>,
    _caller: Internal,
    IdPath(id): IdPath,
    Json(batch): Json<TranscriptBatch>,
) -> Result<Json<TranscriptAppended>> {
    let session = state.store.session_by_id(id).await?;
    let appended = state.store.append_turns(session.account_id, id, &batch.turns).await?;
    Ok(Json(TranscriptAppended { appended }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndSession {
    /// `completed` or `abandoned`.
    pub status: SessionStatus,
}

/// Marks the call over; ending an ended session changes nothing.
#[utoipa::path(post, path = "/api/internal/sessions/{id}/end", tag = "internal", params(("id" = Uuid, Path)),
    request_body = EndSession,
    responses((status = 200, body = Session), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn end_session(
    State(state): State<AppState>,
    _caller: Internal,
    IdPath(id): IdPath,
    Json(input): Json<EndSession>,
) -> Result<Json<Session>> {
    let session = state.store.session_by_id(id).await?;
    Ok(Json(state.store.end_session(session.account_id, id, input.status).await?))
}
