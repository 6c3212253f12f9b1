//! The internal API for voice agents that do not share the database with the admin service
//! (co-deployed agents write to the store directly). Creating a session takes
//! `INTERNAL_SERVICE_KEY`; a call's own routes (`/api/internal/sessions/{id}/*`) also take that
//! session's credential from the dispatch metadata (`X-Session-Credential`), which opens no other
//! session. Without a key configured and without a credential, every internal route answers 401.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use store::{NewSession, NewTurn, Session, SessionKind, SessionStatus, VoiceEnd, VoiceSetup};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ErrorBody, Result};
use crate::extract::{IdPath, Json};
use crate::identity::{CallAgent, Internal};
use store::{AccountId, AssignmentId, ScenarioId, SessionId, UserId};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InternalNewSession {
    #[schema(value_type = Uuid)]
    pub account_id: AccountId,
    /// The counselor in the call.
    #[schema(value_type = Uuid)]
    pub user_id: UserId,
    #[serde(default)]
    #[schema(value_type = Option<Uuid>)]
    pub assignment_id: Option<AssignmentId>,
    /// For free practice with a chosen scenario.
    #[serde(default)]
    #[schema(value_type = Option<Uuid>)]
    pub scenario_id: Option<ScenarioId>,
    #[serde(default)]
    pub room_name: Option<String>,
}

/// Creates a voice session for a call the agent is in (an assignment attempt moves the
/// assignment to in progress, as for a counselor starting it; the counselor's previous live
/// voice session ends).
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
    // One live voice session per counselor, as for a counselor starting one.
    let (session, _) = state.store.start_voice_session(input.account_id, &new, None).await?;
    Ok((StatusCode::CREATED, Json(session)))
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
    security(("internal_key" = []), ("session_credential" = [])),
    responses((status = 200, body = TranscriptAppended), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The session has ended: its transcript is final"),
        (status = 422, body = ErrorBody)))]
pub async fn append_transcript(
    State(state): State<AppState>,
    caller: CallAgent,
    IdPath(id): IdPath<SessionId>,
    Json(batch): Json<TranscriptBatch>,
) -> Result<Json<TranscriptAppended>> {
    let session = caller.session;
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
    security(("internal_key" = []), ("session_credential" = [])),
    responses((status = 200, body = Session), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn end_session(
    State(state): State<AppState>,
    caller: CallAgent,
    IdPath(id): IdPath<SessionId>,
    Json(input): Json<EndSession>,
) -> Result<Json<Session>> {
    Ok(Json(state.store.end_session(caller.session.account_id, id, input.status).await?))
}

/// What the agent needs to start the call: the caller persona prompt only (split brain), the
/// voice, who speaks first, the phone-line effect, the limits and any turns already stored (a
/// restarted agent re-seeds the conversation). Asking marks the session joined.
#[utoipa::path(get, path = "/api/internal/sessions/{id}/setup", tag = "internal", params(("id" = Uuid, Path)),
    security(("internal_key" = []), ("session_credential" = [])),
    responses((status = 200, body = VoiceSetup), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn call_setup(
    State(state): State<AppState>,
    caller: CallAgent,
    IdPath(id): IdPath<SessionId>,
) -> Result<Json<VoiceSetup>> {
    let defaults = state.config.voice.call_defaults(&state.config.realtime_voice);
    debug_assert_eq!(caller.session.id, id);
    Ok(Json(state.store.voice_setup(&caller.session, &defaults).await?))
}

/// The call is over: the session completed with the reason, the Realtime usage (with a cost
/// estimate), per-turn metrics and the recording stored (its file is the session's own,
/// `<session id>.ogg`: the report cannot name one), and the evaluation queued, all in one
/// transaction. Repeating it changes nothing.
#[utoipa::path(post, path = "/api/internal/sessions/{id}/call-end", tag = "internal", params(("id" = Uuid, Path)),
    request_body = VoiceEnd, security(("internal_key" = []), ("session_credential" = [])),
    responses((status = 200, body = Session), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn call_end(
    State(state): State<AppState>,
    caller: CallAgent,
    IdPath(_id): IdPath<SessionId>,
    Json(end): Json<VoiceEnd>,
) -> Result<Json<Session>> {
    let session = state.store.end_voice_session(&caller.session, &end).await?;
    Ok(Json(session))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallStatus {
    pub status: SessionStatus,
    /// The session ended without the agent (a supervisor, a newer session of the counselor, the
    /// sweeper): hang up.
    pub ended: bool,
}

/// Polled by the agent between turns: has the session ended elsewhere?
#[utoipa::path(get, path = "/api/internal/sessions/{id}/status", tag = "internal", params(("id" = Uuid, Path)),
    security(("internal_key" = []), ("session_credential" = [])),
    responses((status = 200, body = CallStatus), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn call_status(caller: CallAgent, IdPath(_id): IdPath<SessionId>) -> Result<Json<CallStatus>> {
    let status = caller.session.status;
    Ok(Json(CallStatus { status, ended: status != SessionStatus::Active }))
}
