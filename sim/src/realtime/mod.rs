//! `GET /v1/realtime?model=...`: OpenAI's GA Realtime API over a WebSocket.
//!
//! The HTTP side (this file) checks the upgrade, applies connect-time rules (a `status` fault
//! refuses the upgrade; `session_cap` arms the cap) and hands the upgraded socket to a task that
//! runs [`conn::Conn`], the protocol state machine, against the socket, the clock and the speech
//! renderer. Authentication and recording of the upgrade request happen in `server::intake`
//! like every `/v1` request. Every event both ways is recorded per connection ([`record`]).
//!
//! Modules: `conn` (protocol), `session` (the session object and its validation), `vad`
//! (energy VAD), `voice` (espeak-ng or tone speech), `record` (recorded events).

pub(crate) mod conn;
pub mod record;
pub(crate) mod session;
pub(crate) mod vad;
pub mod voice;

use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use self::conn::{Conn, Out};
use self::record::{Direction, RealtimeEvent, strip_audio};
use crate::error::ApiError;
use crate::script::{Fault, RealtimeCall, SimState};
use crate::server::now_ms;

/// Tells upgraded sockets the server is shutting down (they outlive hyper's connection task).
#[derive(Debug, Clone)]
pub(crate) struct ShutdownSignal(pub watch::Receiver<()>);

/// The upgrade handler.
pub(crate) async fn connect(
    State(state): State<SimState>,
    shutdown: Option<Extension<ShutdownSignal>>,
    mut request: Request,
) -> Response {
    let query = axum::extract::Query::<std::collections::HashMap<String, String>>::try_from_uri(request.uri());
    let model = query.ok().and_then(|mut query| query.0.remove("model")).filter(|model| !model.is_empty());
    let Some(model) = model else {
        return ApiError::invalid(Some("model"), "Missing required parameter: 'model'.").into_response();
    };
    let headers = request.headers();
    let Some(key) = websocket_key(headers) else {
        let mut error = ApiError::invalid(None, "This endpoint expects a WebSocket upgrade (Upgrade: websocket).");
        error.status = StatusCode::UPGRADE_REQUIRED;
        return error.into_response();
    };
    let accept = derive_accept_key(key.as_bytes());
    let protocol = realtime_subprotocol(headers);
    let plan = state.plan_realtime(&RealtimeCall { model: &model, instructions: "", utterance: None });
    let cap = match plan.fault {
        Some(Fault::Status { status, retry_after_secs }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return ApiError::for_status(status, retry_after_secs).into_response();
        }
        Some(Fault::SessionCap { after_ms }) => Some(std::time::Duration::from_millis(after_ms)),
        _ => None,
    };
    state.note_model(&model);
    let on_upgrade = hyper::upgrade::on(&mut request);
    let shutdown = shutdown.map(|Extension(signal)| signal.0);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                // A small read buffer: tungstenite zero-fills all of it before each read, and
                // appends are small (the default is 128 KiB).
                let config = WebSocketConfig::default().read_buffer_size(16 * 1024);
                let socket = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
                run(socket, state, model, cap, shutdown).await;
            }
            Err(error) => tracing::debug!(%error, "realtime upgrade failed"),
        }
    });
    let mut response = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept);
    if let Some(protocol) = protocol {
        response = response.header(header::SEC_WEBSOCKET_PROTOCOL, protocol);
    }
    response.body(Body::empty()).unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn websocket_key(headers: &HeaderMap) -> Option<String> {
    let has = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|part| part.trim().eq_ignore_ascii_case(token)))
    };
    if !has(header::UPGRADE, "websocket") || !has(header::CONNECTION, "upgrade") {
        return None;
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION).and_then(|v| v.to_str().ok()) != Some("13") {
        return None;
    }
    headers.get(header::SEC_WEBSOCKET_KEY).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// Browsers cannot set headers on a WebSocket, so OpenAI also takes the key as a subprotocol
/// (`openai-insecure-api-key.<key>`) next to `realtime`, which the server echoes.
fn realtime_subprotocol(headers: &HeaderMap) -> Option<&'static str> {
    subprotocols(headers).any(|p| p == "realtime").then_some("realtime")
}

fn subprotocols(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
}

/// Whether the upgrade carries a key as a subprotocol (an alternative to the bearer header).
pub(crate) fn has_subprotocol_key(headers: &HeaderMap) -> bool {
    subprotocols(headers).any(|p| p.strip_prefix("openai-insecure-api-key.").is_some_and(|key| !key.trim().is_empty()))
}

type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Runs one connection until either side ends it.
async fn run(
    mut socket: Socket,
    state: SimState,
    model: String,
    cap: Option<std::time::Duration>,
    shutdown: Option<watch::Receiver<()>>,
) {
    let connection = state.open_realtime(&model);
    let mut conn = Conn::new(state.clone(), &model, cap, Instant::now());
    let (rendered_tx, mut rendered) = mpsc::unbounded_channel::<(String, Arc<Vec<u8>>)>();
    let mut shutdown = shutdown;
    let mut stalled = false;
    let reason = 'connection: loop {
        for out in conn.take_out() {
            if stalled {
                break;
            }
            match out {
                Out::Event(event) => {
                    let (recorded, audio_bytes) = strip_audio(&event);
                    let text = event.to_string();
                    state.record_realtime(connection, recorded_event(Direction::Server, recorded, audio_bytes));
                    if socket.send(Message::Text(Utf8Bytes::from(text))).await.is_err() {
                        break 'connection "error";
                    }
                }
                Out::Raw(text) => {
                    let event = RealtimeEvent {
                        direction: Direction::Server,
                        at_ms: now_ms(),
                        kind: "<unparseable>".into(),
                        event: Value::String(text.clone()),
                        audio_bytes: None,
                        appends: None,
                    };
                    state.record_realtime(connection, event);
                    if socket.send(Message::Text(Utf8Bytes::from(text))).await.is_err() {
                        break 'connection "error";
                    }
                }
                // Dropping the socket closes TCP with no close frame.
                Out::Drop => break 'connection "dropped",
                Out::Stall => stalled = true,
                Out::Close { code, reason } => {
                    let frame = CloseFrame { code: CloseCode::from(code), reason: Utf8Bytes::from(reason) };
                    let _ = socket.close(Some(frame)).await;
                    break 'connection "session_cap";
                }
                Out::Render { response_id, voice, text } => {
                    let (tx, mode) = (rendered_tx.clone(), conn.tts());
                    tokio::spawn(async move {
                        let pcm = voice::render(mode, &voice, &text).await;
                        let _ = tx.send((response_id, pcm));
                    });
                }
            }
        }
        let deadline = if stalled { None } else { conn.next_deadline() };
        tokio::select! {
            message = socket.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    let parsed: Option<Value> = serde_json::from_str(text.as_str()).ok();
                    let event = match &parsed {
                        Some(event @ Value::Object(_)) => {
                            let (recorded, audio_bytes) = strip_audio(event);
                            recorded_event(Direction::Client, recorded, audio_bytes)
                        }
                        _ => RealtimeEvent {
                            direction: Direction::Client,
                            at_ms: now_ms(),
                            kind: "<unparseable>".into(),
                            event: Value::String(text.as_str().to_owned()),
                            audio_bytes: None,
                            appends: None,
                        },
                    };
                    state.record_realtime(connection, event);
                    if !stalled {
                        conn.on_client(parsed.as_ref(), Instant::now());
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    if !stalled {
                        conn.on_binary();
                    }
                }
                Some(Ok(Message::Close(_))) | None => break 'connection "client_closed",
                Some(Ok(_)) => {}
                Some(Err(error)) => {
                    tracing::debug!(%error, "realtime socket read failed");
                    break 'connection "client_dropped";
                }
            },
            Some((response_id, pcm)) = rendered.recv() => {
                if !stalled {
                    conn.audio_ready(&response_id, pcm, Instant::now());
                }
            }
            () = sleep_until(deadline) => conn.poll(Instant::now()),
            () = stopping(&mut shutdown) => {
                let frame = CloseFrame { code: CloseCode::Away, reason: Utf8Bytes::from_static("server shutting down") };
                let _ = socket.close(Some(frame)).await;
                break 'connection "shutdown";
            }
        }
    };
    state.close_realtime(connection, reason);
    tracing::info!(%model, reason, "realtime connection ended");
}

/// Completes when the server shuts down (never without a signal).
async fn stopping(signal: &mut Option<watch::Receiver<()>>) {
    match signal {
        // A dropped sender means the server is gone too.
        Some(signal) => {
            let _ = signal.changed().await;
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

fn recorded_event(direction: Direction, event: Value, audio_bytes: Option<u64>) -> RealtimeEvent {
    RealtimeEvent {
        direction,
        at_ms: now_ms(),
        kind: event["type"].as_str().unwrap_or("<untyped>").to_owned(),
        event,
        audio_bytes,
        appends: None,
    }
}
