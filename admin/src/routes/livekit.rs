//! Voice practice: a LiveKit token for the counselor's room, with the voice agent dispatched; or,
//! to rejoin a live call after a reload or a dropped connection, a token for the same room (the
//! agent waits for the counselor for a grace period).

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use store::{NewSession, ScenarioMode, SessionKind};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, ErrorBody, Result};
use crate::extract::Json;
use crate::identity::Actor;
use store::{AssignmentId, SessionId};

/// How long the join token is valid; LiveKit refreshes tokens for a connected participant, so
/// this only bounds how long after issue the room may be joined.
const TOKEN_TTL: std::time::Duration = std::time::Duration::from_secs(15 * 60);
/// How long LiveKit keeps a call's room after its last participant left. Its default (20 s)
/// closed the room, and so ended the call, before the agent's rejoin grace
/// (`agent::roleplay::COUNSELOR_REJOIN_GRACE`, 60 s) was over: a closed tab or a long drop ended
/// the call about 40 s after the counselor went (LiveKit takes ~20 s to notice a lost
/// connection, then 20 s more). The grace, LiveKit's detection and a margin.
pub const ROOM_DEPARTURE_TIMEOUT_SECS: u32 = 100;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VoiceTokenRequest {
    /// The assignment to practise; absent for free practice.
    #[serde(default)]
    #[schema(value_type = Option<Uuid>)]
    pub assignment_id: Option<AssignmentId>,
    /// Rejoin this live voice session of yours (same room, same session) instead of starting a
    /// new one; 409 once it has ended.
    #[serde(default)]
    #[schema(value_type = Option<Uuid>)]
    pub rejoin_session_id: Option<SessionId>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VoiceToken {
    /// LiveKit access token (JWT) for this counselor and room.
    pub token: String,
    /// The LiveKit server to connect to.
    pub url: String,
    pub room_name: String,
    /// The voice session created for this call.
    #[schema(value_type = Uuid)]
    pub session_id: SessionId,
    /// The agent the token dispatches into the room.
    pub agent_name: String,
}

/// Starts a voice session (for an assignment, or free practice) and answers a token that joins
/// its room and dispatches the voice agent there (`RoomConfiguration.agents`). The dispatch
/// metadata carries the session and a credential for that session alone (stored hashed,
/// expiring with it), so the agent knows whose call it is and may write only to it. A counselor
/// has one live voice session: this ends the previous one. Rate-limited per user
/// (`RATE_LIMIT_VOICE_TOKEN`).
#[utoipa::path(post, path = "/api/livekit/token", tag = "sessions", request_body = VoiceTokenRequest,
    responses((status = 201, body = VoiceToken), (status = 200, body = VoiceToken, description = "a token to rejoin a live call"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn voice_token(
    State(state): State<AppState>,
    actor: Actor,
    Json(input): Json<VoiceTokenRequest>,
) -> Result<(StatusCode, Json<VoiceToken>)> {
    let config = &state.config;
    let (Some(url), Some(key), Some(secret)) =
        (&config.livekit_url, &config.livekit_api_key, &config.livekit_api_secret)
    else {
        return Err(ApiError::Unavailable(
            "voice practice is not configured: set LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET".into(),
        ));
    };
    crate::auth::rate_limit(
        &state.store,
        &format!("voice_token:{}", actor.user_id),
        config.rate_limits.voice_token,
        "voice sessions",
    )
    .await?;
    if let Some(id) = input.rejoin_session_id {
        let session = state.store.session(actor.account_id, id).await?;
        if session.user_id != actor.user_id || session.kind != SessionKind::Voice {
            return Err(ApiError::NotFound("session"));
        }
        let (store::SessionStatus::Active, Some(room_name)) = (session.status, session.room_name) else {
            return Err(ApiError::Conflict {
                message: "the call has ended; start a new one".into(),
                existing_id: None,
            });
        };
        let user = state.store.user(actor.account_id, actor.user_id).await?;
        // No dispatch: the agent is still in the room, waiting for the counselor to come back.
        let token = livekit_api::access_token::AccessToken::with_api_key(key, secret.expose())
            .with_identity(&user.id.to_string())
            .with_name(&user.display_name)
            .with_ttl(TOKEN_TTL)
            .with_grants(livekit_api::access_token::VideoGrants {
                room_join: true,
                room: room_name.clone(),
                can_publish: Some(true),
                can_subscribe: Some(true),
                can_publish_data: Some(true),
                ..Default::default()
            })
            .to_jwt()
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("signing the LiveKit token: {e}")))?;
        return Ok((
            StatusCode::OK,
            Json(VoiceToken {
                token,
                url: url.clone(),
                room_name,
                session_id: session.id,
                agent_name: config.agent_name.clone(),
            }),
        ));
    }
    if let Some(id) = input.assignment_id {
        let assignment = state.store.assignment(actor.account_id, id).await?;
        if assignment.counselor_id != actor.user_id {
            return Err(ApiError::NotFound("assignment"));
        }
        if assignment.scenario.mode != ScenarioMode::Phone {
            return Err(ApiError::validation("assignmentId", "the scenario is practised by chat, not by voice"));
        }
    }
    // A month's budget already spent refuses the call before anything is created.
    crate::llm::check_monthly_budget(&state.store, actor.account_id).await?;
    let user = state.store.user(actor.account_id, actor.user_id).await?;
    let room_name = format!("pt-{}", Uuid::now_v7());
    let new = NewSession {
        user_id: actor.user_id,
        assignment_id: input.assignment_id,
        scenario_id: None,
        kind: SessionKind::Voice,
        room_name: Some(room_name.clone()),
    };
    let mut credential = [0u8; store::credential::CREDENTIAL_BYTES];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut credential);
    let v = &config.voice;
    // Valid until the session ends (then shortened to a grace period); at the latest when a
    // call that began at the last moment to join would have reached its maximum length.
    let lifetime = v.join_timeout_ms + v.max_duration_ms + store::CREDENTIAL_GRACE_MS as u64;
    let expires = store::Timestamp::from_millis(store::Timestamp::now().millis() + lifetime as i64);
    let (session, replaced) = state
        .store
        .start_voice_session(
            actor.account_id,
            &new,
            Some((&crate::auth::sha256_hex(&store::credential::encode(&credential)), expires)),
        )
        .await?;
    if !replaced.is_empty() {
        tracing::info!(session_id = %session.id, ?replaced, "a new voice session ended the counselor's previous one");
    }
    let metadata = serde_json::json!({
        "sessionId": session.id,
        "accountId": session.account_id,
        "assignmentId": session.assignment_id,
        "scenarioId": session.scenario_id,
        // Sealed: the metadata rides in the counselor's token, which the browser can read.
        "credential": store::credential::seal(secret.expose(), session.id, &credential),
    })
    .to_string();
    let token = livekit_api::access_token::AccessToken::with_api_key(key, secret.expose())
        .with_identity(&user.id.to_string())
        .with_name(&user.display_name)
        .with_ttl(TOKEN_TTL)
        .with_grants(livekit_api::access_token::VideoGrants {
            room_join: true,
            room: room_name.clone(),
            can_publish: Some(true),
            can_subscribe: Some(true),
            can_publish_data: Some(true),
            ..Default::default()
        })
        .with_room_config(livekit_protocol::RoomConfiguration {
            agents: vec![livekit_protocol::RoomAgentDispatch {
                agent_name: config.agent_name.clone(),
                metadata,
                ..Default::default()
            }],
            // The room outlives a lost connection by the agent's rejoin grace (a reload, a
            // closed tab): the agent, not LiveKit, decides when the call is over.
            departure_timeout: ROOM_DEPARTURE_TIMEOUT_SECS,
            ..Default::default()
        })
        .to_jwt()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("signing the LiveKit token: {e}")))?;
    Ok((
        StatusCode::CREATED,
        Json(VoiceToken {
            token,
            url: url.clone(),
            room_name,
            session_id: session.id,
            agent_name: config.agent_name.clone(),
        }),
    ))
}
