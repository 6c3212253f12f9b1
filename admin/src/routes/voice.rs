//! Around voice calls: ending a live session from outside the call (a supervisor, or the
//! counselor), the call's recording (with HTTP Range, for seeking in a player), recordings per
//! counselor, and the call's Realtime usage and per-turn metrics.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use store::{Recording, RecordingFilter, Session, VoiceUsage};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::AppState;
use crate::error::{ApiError, ErrorBody, Result};
use crate::extract::{IdPath, Json, Query};
use crate::identity::Actor;
use store::SessionId;

/// The session if the actor may see it: a counselor their own, a supervisor any in the account.
/// Ends a live session now. A voice call is completed: the agent hangs up between turns and
/// the evaluation is queued. Supervisors end any session in the account, counselors their own.
/// Ending an ended session changes nothing.
#[utoipa::path(operation_id = "end_live_session", post, path = "/api/sessions/{id}/end", tag = "sessions", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Session), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn end_session(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath<SessionId>,
) -> Result<Json<Session>> {
    actor.session(&state.store, id).await?;
    let session = state.store.end_session_elsewhere(actor.account_id, id).await?;
    Ok(Json(session))
}

/// Recordings, newest first: a counselor's own; a supervisor's whole account, or one
/// counselor's with `userId`.
#[utoipa::path(get, path = "/api/recordings", tag = "recordings", params(RecordingFilter),
    responses((status = 200, body = Vec<Recording>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list_recordings(
    State(state): State<AppState>,
    actor: Actor,
    Query(mut filter): Query<RecordingFilter>,
) -> Result<Json<Vec<Recording>>> {
    if !actor.role.is_supervisor() {
        filter.user_id = Some(actor.user_id);
    }
    Ok(Json(state.store.list_recordings(actor.account_id, &filter).await?))
}

/// One requested byte range, inclusive.
#[derive(Debug, PartialEq, Eq)]
enum Range {
    Whole,
    Part(u64, u64),
    Unsatisfiable,
}

/// Parses a `Range` header for a resource of `len` bytes: one `bytes=` range (`a-b`, `a-`,
/// `-n`). Several ranges, other units and nonsense are unsatisfiable here (416), which tells a
/// client exactly what it may ask.
fn parse_range(value: Option<&str>, len: u64) -> Range {
    let Some(value) = value else { return Range::Whole };
    let Some(spec) = value.trim().strip_prefix("bytes=") else { return Range::Unsatisfiable };
    if spec.contains(',') || len == 0 {
        return Range::Unsatisfiable;
    }
    let Some((a, b)) = spec.trim().split_once('-') else { return Range::Unsatisfiable };
    let (a, b) = (a.trim(), b.trim());
    let number = |s: &str| s.parse::<u64>().ok().filter(|_| s.bytes().all(|c| c.is_ascii_digit()));
    match (a.is_empty(), b.is_empty()) {
        (true, false) => match number(b) {
            Some(n) if n > 0 => Range::Part(len.saturating_sub(n), len - 1),
            _ => Range::Unsatisfiable,
        },
        (false, _) => {
            let Some(start) = number(a) else { return Range::Unsatisfiable };
            let end = if b.is_empty() { Some(len - 1) } else { number(b).map(|e| e.min(len - 1)) };
            match end {
                Some(end) if start <= end && start < len => Range::Part(start, end),
                _ => Range::Unsatisfiable,
            }
        }
        (true, true) => Range::Unsatisfiable,
    }
}

/// The session's recording (`audio/ogg`, stereo Opus: counselor left, caller right). Honours one
/// `Range: bytes=…` (206 with `Content-Range`; 416 when it cannot be satisfied). The counselor's
/// own, or any in a supervisor's account.
#[utoipa::path(get, path = "/api/sessions/{id}/recording", tag = "recordings", params(("id" = uuid::Uuid, Path),
        ("Range" = Option<String>, Header, description = "one byte range, e.g. bytes=0-1023")),
    responses((status = 200, content_type = "audio/ogg", body = Vec<u8>, headers(("Accept-Ranges" = String))),
        (status = 206, content_type = "audio/ogg", body = Vec<u8>, headers(("Content-Range" = String), ("Accept-Ranges" = String))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 416, body = ErrorBody)))]
pub async fn get_recording(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath<SessionId>,
    headers: HeaderMap,
) -> Result<Response> {
    let session = actor.session(&state.store, id).await?;
    let recording = state.store.recording(&session).await?;
    let path = state.config.voice.recordings_dir.join(&recording.file);
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(session_id = %id, "a recording row names a missing file");
            return Err(ApiError::NotFound("recording file"));
        }
        Err(e) => return Err(ApiError::Internal(e.into())),
    };
    let len = file.metadata().await.map_err(|e| ApiError::Internal(e.into()))?.len();
    let range = parse_range(headers.get(header::RANGE).and_then(|v| v.to_str().ok()), len);
    // A player fetches in ranges: the read is audited when it starts at the beginning (and at
    // most once per window, see `Store::audit_read`).
    if matches!(range, Range::Whole | Range::Part(0, _)) {
        state
            .store
            .audit_read(
                &store::Audit::new(Some(actor.account_id), Some(actor.user_id), "recording.read").target("session", id),
            )
            .await?;
    }
    let (status, start, end) = match range {
        Range::Whole => (StatusCode::OK, 0, len.saturating_sub(1)),
        Range::Part(a, b) => (StatusCode::PARTIAL_CONTENT, a, b),
        Range::Unsatisfiable => {
            let mut response =
                ApiError::RangeNotSatisfiable(format!("the recording has {len} bytes; ask for one range within them"))
                    .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(response);
        }
    };
    let count = if len == 0 { 0 } else { end - start + 1 };
    file.seek(std::io::SeekFrom::Start(start)).await.map_err(|e| ApiError::Internal(e.into()))?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file.take(count)));
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/ogg"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}"))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    Ok(response)
}

/// The voice call's Realtime usage (tokens, audio, estimated cost) and per-turn latencies.
/// Supervisors only.
#[utoipa::path(get, path = "/api/sessions/{id}/voice-usage", tag = "sessions", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = VoiceUsage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn voice_usage(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath<SessionId>,
) -> Result<Json<VoiceUsage>> {
    actor.require_supervisor()?;
    let session = actor.session(&state.store, id).await?;
    state.store.voice_usage(&session).await?.map(Json).ok_or(ApiError::NotFound("voice usage"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_like_rfc_9110() {
        assert_eq!(parse_range(None, 100), Range::Whole);
        assert_eq!(parse_range(Some("bytes=0-9"), 100), Range::Part(0, 9));
        assert_eq!(parse_range(Some("bytes=90-"), 100), Range::Part(90, 99));
        assert_eq!(parse_range(Some("bytes=-10"), 100), Range::Part(90, 99));
        assert_eq!(parse_range(Some("bytes=-500"), 100), Range::Part(0, 99));
        assert_eq!(parse_range(Some("bytes=50-500"), 100), Range::Part(50, 99));
        for bad in
            ["bytes=100-", "bytes=9-0", "bytes=0-1,5-6", "items=0-1", "bytes=-0", "bytes=a-b", "bytes=-", "bytes=+1-2"]
        {
            assert_eq!(parse_range(Some(bad), 100), Range::Unsatisfiable, "{bad}");
        }
    }
}
