//! One Realtime connection's protocol, sans IO: fed client events, rendered audio and the time,
//! it answers with server events (and the odd socket action) in [`Out`]. The shell in
//! `realtime/mod.rs` owns the socket, the clock and the speech renderer.
//!
//! A response is a small state machine: `Rendering` (the reply's speech is being made),
//! `Waiting` (a scripted latency before the first audio), `Streaming` (bursts of audio deltas,
//! faster than real time as OpenAI sends them, each preceded by the transcript words it covers).
//! Cancel, barge-in and deletion end it early with status `cancelled`; truncation then works
//! on what was generated, which is what the client received.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::session::{self, EventError, TurnDetection};
use super::vad::{SAMPLES_PER_MS, Vad, VadEvent, VadParams};
use super::voice::TtsMode;
use crate::chat::caller_line;
use crate::script::{Fault, RealtimeCall, SimState, TurnPlan};
use crate::server::{estimate_tokens, now_secs};

/// Audio per delta: 100 ms of 24 kHz PCM16.
const DELTA_BYTES: usize = 4_800;
/// Deltas per burst.
const BURST: usize = 5;
/// Time between bursts: 500 ms of audio every 125 ms, four times real time.
const BURST_INTERVAL: Duration = Duration::from_millis(125);
/// PCM16 bytes per millisecond.
const BYTES_PER_MS: u64 = 2 * SAMPLES_PER_MS;
/// What the simulated counselor said when no rule says otherwise, by utterance.
const COUNSELOR_LINES: &[&str] = &[
    "Hi, you've reached the crisis line. My name is Sam. What's going on for you tonight?",
    "That sounds really hard. Can you tell me more about what happened?",
    "I'm really glad you called. Are you safe right now?",
    "Thank you for telling me that. What would help you most right now?",
];

/// What the shell must do.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Out {
    /// Send this server event.
    Event(Value),
    /// Send this text frame as is (a malformed event).
    Raw(String),
    /// Close the TCP connection without a close frame.
    Drop,
    /// Send nothing more, ever; keep reading.
    Stall,
    /// Send a close frame and end.
    Close { code: u16, reason: String },
    /// Render `text` in `voice` and hand it back with [`Conn::audio_ready`].
    Render { response_id: String, voice: String, text: String },
}

#[derive(Debug, Clone)]
struct Item {
    id: String,
    role: String,
    content: Vec<Value>,
    status: &'static str,
    /// User audio: its length. Assistant audio: what was generated, or kept after a truncate.
    audio_ms: u64,
    /// Assistant audio: whether any was generated (an item without cannot be truncated).
    has_audio: bool,
    /// What the simulated model heard a user audio item say (its transcript, sent or not).
    heard: Option<String>,
}

impl Item {
    fn json(&self) -> Value {
        json!({"id": self.id, "type": "message", "object": "realtime.item", "status": self.status,
               "role": self.role, "content": self.content})
    }

    fn text(&self) -> String {
        if let Some(heard) = &self.heard {
            return heard.clone();
        }
        self.content
            .iter()
            .filter_map(|part| part["text"].as_str().or(part["transcript"].as_str()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn is_output_audio(&self) -> bool {
        self.role == "assistant" && self.content.first().is_some_and(|part| part["type"] == "output_audio")
    }
}

#[derive(Debug)]
enum Phase {
    Rendering,
    Waiting(Instant),
    Streaming(Instant),
}

#[derive(Debug)]
struct Active {
    id: String,
    item_id: String,
    text: String,
    text_only: bool,
    audio: Option<std::sync::Arc<Vec<u8>>>,
    sent_bytes: usize,
    sent_chars: usize,
    phase: Phase,
    fault: Option<Fault>,
    fault_fired: bool,
    latency: Option<Duration>,
    input_text_tokens: u64,
    input_audio_tokens: u64,
    voice: String,
    conversation: bool,
    metadata: Value,
}

#[derive(Debug)]
enum Timer {
    /// `text: None`: the transcription fails.
    Transcription {
        item_id: String,
        text: Option<String>,
    },
    Cap,
}

/// The connection's protocol state.
#[derive(Debug)]
pub(crate) struct Conn {
    state: SimState,
    model: String,
    session: Value,
    conversation_id: String,
    detection: Option<TurnDetection>,
    vad: Vad,
    odd_byte: Option<u8>,
    /// Samples appended since the session started (the input-audio clock).
    clock: u64,
    /// Where the uncommitted input buffer starts.
    buffer_start: u64,
    /// The item id announced by `speech_started`, and the speech's start.
    speech: Option<(String, u64)>,
    items: Vec<Item>,
    utterances: u32,
    /// A committed turn's plan, waiting for the `response.create` that answers it.
    pending: Option<TurnPlan>,
    active: Option<Active>,
    timers: Vec<(Instant, Timer)>,
    /// Transcriptions held back until the next `response.done` (`None`: it fails).
    late: Vec<(String, Option<String>)>,
    audio_produced: bool,
    cap: Option<Duration>,
    tts: TtsMode,
    out: Vec<Out>,
}

impl Conn {
    /// A new session; queues `session.created`. `cap`: the scripted session cap.
    pub(crate) fn new(state: SimState, model: &str, cap: Option<Duration>, now: Instant) -> Self {
        let session_id = id(&state, "sess");
        let expires_at = now_secs() + cap.map_or(3600, |cap| cap.as_secs().max(1));
        let session = session::default_session(&session_id, model, expires_at);
        let detection = session::turn_detection_of(&session);
        let tts = state.tts_mode();
        let mut conn = Self {
            conversation_id: id(&state, "conv"),
            state,
            model: model.to_owned(),
            vad: Vad::new(detection.map_or(VadParams::default(), |d| d.vad), 0),
            detection,
            session,
            odd_byte: None,
            clock: 0,
            buffer_start: 0,
            speech: None,
            items: Vec::new(),
            utterances: 0,
            pending: None,
            active: None,
            timers: Vec::new(),
            late: Vec::new(),
            audio_produced: false,
            cap,
            tts,
            out: Vec::new(),
        };
        if let Some(cap) = cap {
            conn.timers.push((now + cap, Timer::Cap));
        }
        let session = conn.session.clone();
        conn.emit("session.created", json!({"session": session}));
        conn
    }

    /// The session cap: OpenAI's `session_expired` error, then the close.
    fn expire_session(&mut self) {
        let cap = self.cap.unwrap_or_default();
        self.emit_error(
            None,
            EventError::new(
                "session_expired",
                None,
                format!("Your session hit the maximum duration of {} ms (simulated cap).", cap.as_millis()),
            ),
        );
        self.out.push(Out::Close { code: 1000, reason: "session expired".into() });
    }

    /// Takes what is to be done, in order.
    pub(crate) fn take_out(&mut self) -> Vec<Out> {
        std::mem::take(&mut self.out)
    }

    pub(crate) fn tts(&self) -> TtsMode {
        self.tts
    }

    /// When [`Conn::poll`] next has something to do.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let response = self.active.as_ref().and_then(|active| match active.phase {
            Phase::Rendering => None,
            Phase::Waiting(at) | Phase::Streaming(at) => Some(at),
        });
        self.timers.iter().map(|(at, _)| *at).chain(response).min()
    }

    /// Does what is due at `now`.
    pub(crate) fn poll(&mut self, now: Instant) {
        let mut due = Vec::new();
        self.timers.retain_mut(|(at, timer)| {
            if *at <= now {
                due.push(std::mem::replace(timer, Timer::Cap));
                false
            } else {
                true
            }
        });
        for timer in due {
            match timer {
                Timer::Transcription { item_id, text } => self.transcribe(&item_id, text.as_deref()),
                Timer::Cap => {
                    self.expire_session();
                    return;
                }
            }
        }
        let Some(active) = &mut self.active else { return };
        if let Phase::Waiting(at) = active.phase
            && at <= now
        {
            active.phase = Phase::Streaming(now);
        }
        if let Phase::Streaming(at) = active.phase
            && at <= now
        {
            self.burst(now);
        }
    }

    /// A client text frame, parsed (`None`: not a JSON object).
    pub(crate) fn on_client(&mut self, event: Option<&Value>, now: Instant) {
        let Some(event) = event.filter(|event| event.is_object()) else {
            self.emit_error(
                None,
                EventError::new("invalid_json", None, "The server failed to parse the event: expected a JSON object."),
            );
            return;
        };
        let client_id = event["event_id"].as_str().map(str::to_owned);
        let result = match event.get("type").and_then(Value::as_str) {
            Some("session.update") => self.session_update(event),
            Some("input_audio_buffer.append") => self.append(event, now),
            Some("input_audio_buffer.commit") => self.commit_by_hand(now),
            Some("input_audio_buffer.clear") => self.clear(),
            Some("conversation.item.create") => self.item_create(event),
            Some("conversation.item.retrieve") => self.item_retrieve(event),
            Some("conversation.item.truncate") => self.truncate(event, now),
            Some("conversation.item.delete") => self.delete(event, now),
            Some("response.create") => self.response_create(event, now),
            Some("response.cancel") => self.response_cancel(event, now),
            Some(other) => Err(EventError::new(
                "invalid_value",
                Some("type"),
                format!(
                    "Invalid value: '{other}'. Supported values are: 'session.update', 'input_audio_buffer.append', \
                     'input_audio_buffer.commit', 'input_audio_buffer.clear', 'conversation.item.create', \
                     'conversation.item.retrieve', 'conversation.item.truncate', 'conversation.item.delete', \
                     'response.create', and 'response.cancel'."
                ),
            )),
            None => Err(EventError::missing("type")),
        };
        if let Err(error) = result {
            self.emit_error(client_id, error);
        }
    }

    /// A binary frame: OpenAI takes JSON text only.
    pub(crate) fn on_binary(&mut self) {
        self.emit_error(
            None,
            EventError::new("invalid_json", None, "Binary frames are not supported; send JSON text."),
        );
    }

    /// The speech for response `response_id` is ready.
    pub(crate) fn audio_ready(&mut self, response_id: &str, pcm: std::sync::Arc<Vec<u8>>, now: Instant) {
        let Some(active) = self.active.as_mut().filter(|active| active.id == response_id) else { return };
        if !matches!(active.phase, Phase::Rendering) {
            return;
        }
        active.audio = Some(pcm);
        active.phase = match active.latency {
            Some(latency) => Phase::Waiting(now + latency),
            None => Phase::Streaming(now),
        };
        self.poll(now);
    }

    // ---- events out ----

    fn emit(&mut self, kind: &str, fields: Value) {
        let mut event = json!({"type": kind, "event_id": id(&self.state, "event")});
        if let (Some(event), Value::Object(fields)) = (event.as_object_mut(), fields) {
            event.extend(fields);
        }
        self.out.push(Out::Event(event));
    }

    fn emit_error(&mut self, client_event_id: Option<String>, error: EventError) {
        self.emit(
            "error",
            json!({"error": {"type": "invalid_request_error", "code": error.code, "message": error.message,
                             "param": error.param, "event_id": client_event_id}}),
        );
    }

    // ---- session ----

    fn session_update(&mut self, event: &Value) -> Result<(), EventError> {
        let update = event.get("session").unwrap_or(&Value::Null);
        session::apply_update(&mut self.session, update, self.audio_produced)?;
        let detection = session::turn_detection_of(&self.session);
        if detection.map(|d| d.vad) != self.detection.map(|d| d.vad) {
            self.vad = Vad::new(detection.map_or(VadParams::default(), |d| d.vad), self.clock);
            self.speech = None;
        }
        self.detection = detection;
        let session = self.session.clone();
        self.emit("session.updated", json!({"session": session}));
        Ok(())
    }

    fn transcription_on(&self) -> bool {
        self.session["audio"]["input"]["transcription"].is_object()
    }

    fn instructions(&self) -> String {
        self.session["instructions"].as_str().unwrap_or_default().to_owned()
    }

    // ---- input audio ----

    fn append(&mut self, event: &Value, now: Instant) -> Result<(), EventError> {
        let audio = event.get("audio").and_then(Value::as_str).ok_or_else(|| EventError::missing("audio"))?;
        let mut bytes = BASE64.decode(audio).map_err(|_| {
            EventError::new("invalid_value", Some("audio"), "Invalid 'audio'. Expected base64-encoded audio bytes.")
        })?;
        if let Some(odd) = self.odd_byte.take() {
            bytes.insert(0, odd);
        }
        if bytes.len() % 2 == 1 {
            self.odd_byte = bytes.pop();
        }
        let samples: Vec<i16> = bytes.chunks_exact(2).map(|pair| i16::from_le_bytes([pair[0], pair[1]])).collect();
        self.clock += samples.len() as u64;
        if self.detection.is_none() {
            return Ok(());
        }
        let mut events = Vec::new();
        self.vad.push(&samples, &mut events);
        for vad_event in events {
            match vad_event {
                VadEvent::Started { audio_start_ms } => self.speech_started(audio_start_ms, now),
                VadEvent::Stopped { audio_end_ms } => self.speech_stopped(audio_end_ms, now),
            }
        }
        Ok(())
    }

    fn speech_started(&mut self, audio_start_ms: u64, now: Instant) {
        let item_id = id(&self.state, "item");
        self.emit("input_audio_buffer.speech_started", json!({"audio_start_ms": audio_start_ms, "item_id": item_id}));
        self.speech = Some((item_id, audio_start_ms));
        if self.detection.is_some_and(|d| d.interrupt_response) && self.active.is_some() {
            self.finish(now, "cancelled", Some("turn_detected"));
        }
    }

    fn speech_stopped(&mut self, audio_end_ms: u64, now: Instant) {
        let Some((item_id, start_ms)) = self.speech.take() else { return };
        self.emit("input_audio_buffer.speech_stopped", json!({"audio_end_ms": audio_end_ms, "item_id": item_id}));
        self.buffer_start = audio_end_ms * SAMPLES_PER_MS;
        let create = self.detection.is_some_and(|d| d.create_response);
        self.commit(item_id, audio_end_ms.saturating_sub(start_ms), create, now);
    }

    fn commit_by_hand(&mut self, now: Instant) -> Result<(), EventError> {
        let buffered_ms = self.clock.saturating_sub(self.buffer_start) / SAMPLES_PER_MS;
        if buffered_ms < 100 {
            return Err(EventError::new(
                "input_audio_buffer_commit_empty",
                None,
                format!(
                    "Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, but \
                     buffer only has {buffered_ms}.00ms of audio."
                ),
            ));
        }
        let item_id = self.speech.take().map_or_else(|| id(&self.state, "item"), |(item_id, _)| item_id);
        self.buffer_start = self.clock;
        self.vad.reset();
        self.commit(item_id, buffered_ms, false, now);
        Ok(())
    }

    fn clear(&mut self) -> Result<(), EventError> {
        self.buffer_start = self.clock;
        self.vad.reset();
        self.speech = None;
        self.emit("input_audio_buffer.cleared", json!({}));
        Ok(())
    }

    /// The user's audio turn becomes an item; its transcription and (with `respond`) the
    /// response follow, as the turn's rule says.
    fn commit(&mut self, item_id: String, audio_ms: u64, respond: bool, now: Instant) {
        let previous = self.items.last().map(|item| item.id.clone());
        self.emit("input_audio_buffer.committed", json!({"item_id": item_id, "previous_item_id": previous}));
        self.utterances += 1;
        let instructions = self.instructions();
        let plan = self.state.plan_realtime(&RealtimeCall {
            model: &self.model,
            instructions: &instructions,
            utterance: Some(self.utterances),
        });
        let transcript = plan.transcript.clone().unwrap_or_else(|| {
            let index = (self.utterances as usize - 1) % COUNSELOR_LINES.len();
            COUNSELOR_LINES[index].to_owned()
        });
        let item = Item {
            id: item_id.clone(),
            role: "user".into(),
            content: vec![json!({"type": "input_audio", "transcript": null})],
            status: "completed",
            audio_ms,
            has_audio: false,
            heard: Some(transcript.clone()),
        };
        self.items.push(item.clone());
        self.emit("conversation.item.added", json!({"previous_item_id": previous, "item": item.json()}));
        self.emit("conversation.item.done", json!({"previous_item_id": previous, "item": item.json()}));
        if self.transcription_on() {
            let text = (!plan.transcript_fails).then(|| transcript.clone());
            if plan.transcript_after_response {
                self.late.push((item_id, text));
            } else if let Some(delay) = plan.transcript_delay {
                self.timers.push((now + delay, Timer::Transcription { item_id, text }));
            } else {
                self.transcribe(&item_id, text.as_deref());
            }
        }
        if respond && self.active.is_none() {
            self.start_response(plan, &Value::Null, now);
        } else {
            self.pending = Some(plan);
        }
    }

    fn transcribe(&mut self, item_id: &str, text: Option<&str>) {
        let Some(index) = self.items.iter().position(|item| item.id == item_id) else { return };
        let Some(text) = text else {
            self.emit(
                "conversation.item.input_audio_transcription.failed",
                json!({"item_id": item_id, "content_index": 0,
                       "error": {"type": "transcription_error", "code": "audio_unintelligible",
                                 "message": "The audio could not be transcribed (simulated).", "param": null}}),
            );
            return;
        };
        self.items[index].content[0]["transcript"] = Value::String(text.to_owned());
        let words: Vec<&str> = text.split_inclusive(' ').collect();
        for chunk in words.chunks(words.len().div_ceil(3).max(1)) {
            let delta = chunk.concat();
            self.emit(
                "conversation.item.input_audio_transcription.delta",
                json!({"item_id": item_id, "content_index": 0, "delta": delta}),
            );
        }
        let audio_tokens = self.items[index].audio_ms / 100;
        let text_tokens = estimate_tokens(text);
        self.emit(
            "conversation.item.input_audio_transcription.completed",
            json!({"item_id": item_id, "content_index": 0, "transcript": text,
                   "usage": {"type": "tokens", "input_tokens": audio_tokens, "output_tokens": text_tokens,
                             "total_tokens": audio_tokens + text_tokens,
                             "input_token_details": {"text_tokens": 0, "audio_tokens": audio_tokens}}}),
        );
    }

    // ---- conversation items ----

    fn item_create(&mut self, event: &Value) -> Result<(), EventError> {
        let item = event.get("item").ok_or_else(|| EventError::missing("item"))?;
        let fields = item
            .as_object()
            .ok_or_else(|| EventError::new("invalid_type", Some("item"), "'item' must be an object."))?;
        for key in fields.keys() {
            if !matches!(key.as_str(), "id" | "type" | "object" | "status" | "role" | "content") {
                return Err(EventError::new(
                    "unknown_parameter",
                    Some(&format!("item.{key}")),
                    format!("Unknown parameter: 'item.{key}'."),
                ));
            }
        }
        if item["type"] != "message" {
            return Err(EventError::new(
                "invalid_value",
                Some("item.type"),
                "Invalid value for 'item.type': the simulator supports 'message' items only.",
            ));
        }
        let role = match item["role"].as_str() {
            Some(role @ ("user" | "assistant" | "system")) => role,
            _ => {
                return Err(EventError::new(
                    "invalid_value",
                    Some("item.role"),
                    "Invalid value for 'item.role'. Supported values are: 'user', 'assistant', and 'system'.",
                ));
            }
        };
        let parts = item["content"].as_array().ok_or_else(|| EventError::missing("item.content"))?;
        let allowed: &[&str] = match role {
            "user" => &["input_text", "input_audio"],
            "system" => &["input_text"],
            _ => &["output_text", "output_audio"],
        };
        for (index, part) in parts.iter().enumerate() {
            let kind = part["type"].as_str().unwrap_or_default();
            if !allowed.contains(&kind) {
                let list = allowed.iter().map(|k| format!("'{k}'")).collect::<Vec<_>>().join(", ");
                return Err(EventError::new(
                    "invalid_value",
                    Some(&format!("item.content[{index}].type")),
                    format!("Invalid value: '{kind}'. Supported values for a {role} message are: {list}."),
                ));
            }
            let needs = if kind.ends_with("_text") {
                "text"
            } else if kind == "output_audio" {
                "transcript"
            } else {
                "audio"
            };
            if kind != "input_audio" && !part[needs].is_string() {
                return Err(EventError::missing(&format!("item.content[{index}].{needs}")));
            }
        }
        let item_id = match item["id"].as_str() {
            Some(given) if self.items.iter().any(|existing| existing.id == given) => {
                return Err(EventError::new(
                    "invalid_value",
                    Some("item.id"),
                    format!("Item with id '{given}' already exists."),
                ));
            }
            Some(given) => given.to_owned(),
            None => id(&self.state, "item"),
        };
        let position = match event.get("previous_item_id").and_then(Value::as_str) {
            None => self.items.len(),
            Some("root") => 0,
            Some(previous) => {
                self.items.iter().position(|existing| existing.id == previous).map(|at| at + 1).ok_or_else(|| {
                    EventError::new(
                        "invalid_value",
                        Some("previous_item_id"),
                        format!("Previous item with id '{previous}' not found."),
                    )
                })?
            }
        };
        let previous = position.checked_sub(1).map(|at| self.items[at].id.clone());
        let new = Item {
            id: item_id,
            role: role.to_owned(),
            content: parts.clone(),
            status: "completed",
            audio_ms: 0,
            has_audio: false,
            heard: None,
        };
        // A user message is a user turn like a committed utterance: a client that re-seeds a
        // conversation on a new socket keeps the rules' utterance numbers.
        if role == "user" {
            self.utterances += 1;
        }
        self.items.insert(position, new.clone());
        self.emit("conversation.item.added", json!({"previous_item_id": previous, "item": new.json()}));
        self.emit("conversation.item.done", json!({"previous_item_id": previous, "item": new.json()}));
        Ok(())
    }

    fn item_retrieve(&mut self, event: &Value) -> Result<(), EventError> {
        let index = self.find_item(event)?;
        let item = self.items[index].json();
        self.emit("conversation.item.retrieved", json!({"item": item}));
        Ok(())
    }

    fn find_item(&self, event: &Value) -> Result<usize, EventError> {
        let item_id = event.get("item_id").and_then(Value::as_str).ok_or_else(|| EventError::missing("item_id"))?;
        self.items.iter().position(|item| item.id == item_id).ok_or_else(|| {
            EventError::new("invalid_value", Some("item_id"), format!("Item with item_id not found: {item_id}"))
        })
    }

    fn truncate(&mut self, event: &Value, now: Instant) -> Result<(), EventError> {
        let mut index = self.find_item(event)?;
        let content_index =
            event.get("content_index").and_then(Value::as_u64).ok_or_else(|| EventError::missing("content_index"))?;
        let audio_end_ms =
            event.get("audio_end_ms").and_then(Value::as_u64).ok_or_else(|| EventError::missing("audio_end_ms"))?;
        // OpenAI's answer for a text item and for an audio item before its first delta alike.
        if !self.items[index].is_output_audio() || !self.items[index].has_audio {
            return Err(EventError::new(
                "unsupported_content_type",
                None,
                "Only model output audio messages can be truncated",
            ));
        }
        if content_index != 0 {
            return Err(EventError::new(
                "invalid_value",
                Some("content_index"),
                "Invalid 'content_index': this item has one content part (0).",
            ));
        }
        let item_id = self.items[index].id.clone();
        if self.active.as_ref().is_some_and(|active| active.item_id == item_id) {
            self.finish(now, "cancelled", Some("client_cancelled"));
            index = self.items.iter().position(|item| item.id == item_id).unwrap_or(index);
        }
        let item = &mut self.items[index];
        if audio_end_ms > item.audio_ms {
            return Err(EventError::new(
                "invalid_value",
                Some("audio_end_ms"),
                format!("Audio content of {}ms is already shorter than {audio_end_ms}ms", item.audio_ms),
            ));
        }
        let transcript = item.content[0]["transcript"].as_str().unwrap_or_default().to_owned();
        item.content[0]["transcript"] = Value::String(cut_proportionally(&transcript, audio_end_ms, item.audio_ms));
        item.audio_ms = audio_end_ms;
        self.emit(
            "conversation.item.truncated",
            json!({"item_id": item_id, "content_index": content_index, "audio_end_ms": audio_end_ms}),
        );
        Ok(())
    }

    fn delete(&mut self, event: &Value, now: Instant) -> Result<(), EventError> {
        let index = self.find_item(event)?;
        let item_id = self.items[index].id.clone();
        if self.active.as_ref().is_some_and(|active| active.item_id == item_id) {
            self.finish(now, "cancelled", Some("client_cancelled"));
        }
        self.items.retain(|item| item.id != item_id);
        self.emit("conversation.item.deleted", json!({"item_id": item_id}));
        Ok(())
    }

    // ---- responses ----

    fn response_create(&mut self, event: &Value, now: Instant) -> Result<(), EventError> {
        if let Some(active) = &self.active {
            return Err(EventError::new(
                "conversation_already_has_active_response",
                None,
                format!(
                    "Conversation already has an active response in progress: {}. Wait until the response is \
                     finished before creating a new one.",
                    active.id
                ),
            ));
        }
        let params = event.get("response").unwrap_or(&Value::Null);
        if let Some(fields) = params.as_object() {
            for (key, value) in fields {
                let ok = match key.as_str() {
                    "instructions" => value.is_string(),
                    "output_modalities" => matches!(value.as_array().map(Vec::as_slice),
                        Some([Value::String(m)]) if m == "audio" || m == "text"),
                    "conversation" => matches!(value.as_str(), Some("auto" | "none")),
                    "metadata" | "input" | "audio" | "tools" | "tool_choice" | "max_output_tokens" | "prompt" => true,
                    _ => {
                        return Err(EventError::new(
                            "unknown_parameter",
                            Some(&format!("response.{key}")),
                            format!("Unknown parameter: 'response.{key}'."),
                        ));
                    }
                };
                if !ok {
                    return Err(EventError::new(
                        "invalid_value",
                        Some(&format!("response.{key}")),
                        format!("Invalid value for 'response.{key}'."),
                    ));
                }
            }
        } else if !params.is_null() {
            return Err(EventError::new("invalid_type", Some("response"), "'response' must be an object."));
        }
        let plan = match self.pending.take() {
            Some(plan) => plan,
            None => {
                let instructions = self.instructions();
                self.state.plan_realtime(&RealtimeCall {
                    model: &self.model,
                    instructions: &instructions,
                    utterance: Some(self.utterances),
                })
            }
        };
        self.start_response(plan, params, now);
        Ok(())
    }

    fn response_cancel(&mut self, event: &Value, now: Instant) -> Result<(), EventError> {
        let wanted = event.get("response_id").and_then(Value::as_str);
        match &self.active {
            Some(active) if wanted.is_none_or(|wanted| wanted == active.id) => {
                self.finish(now, "cancelled", Some("client_cancelled"));
                Ok(())
            }
            _ => Err(EventError::new(
                "response_cancel_not_active",
                None,
                "Cancellation failed: no active response found",
            )),
        }
    }

    fn start_response(&mut self, plan: TurnPlan, params: &Value, now: Instant) {
        let last_user = self.items.iter().rev().find(|item| item.role == "user").map(Item::text);
        let text = plan.reply.clone().unwrap_or_else(|| {
            // A scenario with a risk profile: the caller follows its disclosure rules.
            let texts: Vec<(bool, String)> = self
                .items
                .iter()
                .filter(|item| item.role == "user" || item.role == "assistant")
                .map(|item| (item.role == "user", item.text()))
                .collect();
            let turns: Vec<(bool, &str)> = texts.iter().map(|(user, t)| (*user, t.as_str())).collect();
            crate::caller::profiled_reply(&self.instructions(), &turns)
                .unwrap_or_else(|| caller_line(last_user.as_deref()).to_owned())
        });
        // A response that follows the assistant's own message carries on from where that one was
        // cut off (as a model does with its interrupted words), rather than starting again.
        let text = match self.items.last() {
            Some(last) if last.role == "assistant" => continuation(&last.text(), &text),
            _ => text,
        };
        let modalities = params.get("output_modalities").unwrap_or(&self.session["output_modalities"]).clone();
        let text_only = modalities == json!(["text"]);
        let voice = self.session["audio"]["output"]["voice"].as_str().unwrap_or("alloy").to_owned();
        let conversation = params.get("conversation").and_then(Value::as_str) != Some("none");
        let instructions =
            params.get("instructions").and_then(Value::as_str).map_or_else(|| self.instructions(), str::to_owned);
        let context: String = self.items.iter().map(Item::text).collect::<Vec<_>>().join("\n");
        let input_audio_tokens = self
            .items
            .iter()
            .map(|item| if item.role == "user" { item.audio_ms / 100 } else { item.audio_ms / 50 })
            .sum();
        let active = Active {
            id: id(&self.state, "resp"),
            item_id: id(&self.state, "item"),
            text,
            text_only,
            audio: None,
            sent_bytes: 0,
            sent_chars: 0,
            phase: Phase::Rendering,
            fault: plan.fault.clone(),
            fault_fired: false,
            latency: plan.latency,
            input_text_tokens: estimate_tokens(&instructions) + estimate_tokens(&context),
            input_audio_tokens,
            voice: voice.clone(),
            conversation,
            metadata: params.get("metadata").cloned().unwrap_or(Value::Null),
        };
        let response = self.response_json(&active, "in_progress", Value::Null, Vec::new(), Value::Null);
        self.emit("response.created", json!({"response": response}));
        // OpenAI follows every response.created with this; clients must take events they ignore.
        self.emit(
            "rate_limits.updated",
            json!({"rate_limits": [
                {"name": "requests", "limit": 10_000, "remaining": 9_999, "reset_seconds": 0.006},
                {"name": "tokens", "limit": 2_000_000, "remaining": 1_995_000, "reset_seconds": 0.15}
            ]}),
        );
        let part_type = if text_only { "output_text" } else { "output_audio" };
        let item = Item {
            id: active.item_id.clone(),
            role: "assistant".into(),
            content: Vec::new(),
            status: "in_progress",
            audio_ms: 0,
            has_audio: false,
            heard: None,
        };
        let previous = self.items.last().map(|item| item.id.clone());
        if conversation {
            self.emit("conversation.item.added", json!({"previous_item_id": previous, "item": item.json()}));
        }
        self.emit(
            "response.output_item.added",
            json!({"response_id": active.id, "output_index": 0, "item": item.json()}),
        );
        let part =
            if text_only { json!({"type": "text", "text": ""}) } else { json!({"type": "audio", "transcript": ""}) };
        self.emit(
            "response.content_part.added",
            json!({"response_id": active.id, "item_id": active.item_id, "output_index": 0, "content_index": 0, "part": part}),
        );
        let mut item = item;
        item.content = vec![if text_only {
            json!({"type": part_type, "text": ""})
        } else {
            json!({"type": part_type, "transcript": ""})
        }];
        if conversation {
            self.items.push(item);
        }
        if text_only {
            let mut active = active;
            active.phase = match active.latency {
                Some(latency) => Phase::Waiting(now + latency),
                None => Phase::Streaming(now),
            };
            self.active = Some(active);
            self.poll(now);
        } else {
            self.out.push(Out::Render { response_id: active.id.clone(), voice, text: active.text.clone() });
            self.active = Some(active);
        }
    }

    fn response_json(&self, active: &Active, status: &str, details: Value, output: Vec<Value>, usage: Value) -> Value {
        let modalities = if active.text_only { json!(["text"]) } else { json!(["audio"]) };
        json!({
            "object": "realtime.response",
            "id": active.id,
            "status": status,
            "status_details": details,
            "output": output,
            "conversation_id": if active.conversation { Value::String(self.conversation_id.clone()) } else { Value::Null },
            "output_modalities": modalities,
            "max_output_tokens": self.session["max_output_tokens"].clone(),
            "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": active.voice}},
            "usage": usage,
            "metadata": active.metadata,
        })
    }

    /// Sends one burst of deltas (or, text-only, the whole text), finishing when all is sent.
    fn burst(&mut self, now: Instant) {
        let Some(active) = &mut self.active else { return };
        let (response_id, item_id) = (active.id.clone(), active.item_id.clone());
        let mut events = Vec::new();
        let mut fault = None;
        if active.text_only {
            let words: Vec<&str> = active.text.split_inclusive(' ').collect();
            for chunk in words.chunks(4) {
                events.push(("response.output_text.delta", json!({"delta": chunk.concat()})));
            }
            active.sent_chars = active.text.len();
        } else {
            let Some(audio) = active.audio.clone() else { return };
            for _ in 0..BURST {
                if active.sent_bytes >= audio.len() {
                    break;
                }
                let end = (active.sent_bytes + DELTA_BYTES).min(audio.len());
                let chars = word_boundary(&active.text, active.text.len() * end / audio.len().max(1));
                if chars > active.sent_chars {
                    let delta = active.text[active.sent_chars..chars].to_owned();
                    events.push(("response.output_audio_transcript.delta", json!({"delta": delta})));
                    active.sent_chars = chars;
                }
                let delta = BASE64.encode(&audio[active.sent_bytes..end]);
                events.push(("response.output_audio.delta", json!({"delta": delta})));
                active.sent_bytes = end;
                // Mid-response: after half the audio or the first burst, whichever comes first.
                let fault_point = (audio.len() / 2).min(BURST * DELTA_BYTES);
                if !active.fault_fired && active.fault.is_some() && active.sent_bytes >= fault_point {
                    active.fault_fired = true;
                    fault = active.fault.clone();
                    break;
                }
            }
        }
        let (sent_bytes, sent_chars) = (active.sent_bytes, active.sent_chars);
        let finished = active.text_only || active.audio.as_ref().is_some_and(|audio| active.sent_bytes >= audio.len());
        active.phase = Phase::Streaming(now + BURST_INTERVAL);
        let text = active.text[..sent_chars].to_owned();
        let text_only = active.text_only;
        if let Some(item) = self.items.iter_mut().find(|item| item.id == item_id) {
            item.audio_ms = sent_bytes as u64 / BYTES_PER_MS;
            item.has_audio = sent_bytes > 0;
            item.content[0][if text_only { "text" } else { "transcript" }] = Value::String(text);
        }
        for (kind, mut fields) in events {
            fields["response_id"] = json!(response_id);
            fields["item_id"] = json!(item_id);
            fields["output_index"] = json!(0);
            fields["content_index"] = json!(0);
            self.emit(kind, fields);
        }
        match fault {
            Some(Fault::DropConnection) => {
                self.out.push(Out::Drop);
                return;
            }
            Some(Fault::SessionCap { .. }) => {
                self.expire_session();
                return;
            }
            Some(Fault::Stall | Fault::Timeout) => {
                self.out.push(Out::Stall);
                return;
            }
            Some(Fault::MalformedJson) => {
                let mut text = json!({"type": "response.output_audio.delta", "response_id": response_id,
                                      "item_id": item_id, "delta": "AAAA"})
                .to_string();
                crate::server::cut_in_half(&mut text);
                self.out.push(Out::Raw(text));
            }
            _ => {}
        }
        if finished {
            self.finish(now, "completed", None);
        }
    }

    /// Ends the active response with `status`, closing its part, item and response.
    fn finish(&mut self, _now: Instant, status: &str, reason: Option<&str>) {
        let Some(active) = self.active.take() else { return };
        let text = active.text[..active.sent_chars].to_owned();
        let sent_ms = active.sent_bytes as u64 / BYTES_PER_MS;
        if active.sent_bytes > 0 {
            self.audio_produced = true;
        }
        let item_status = if status == "completed" { "completed" } else { "incomplete" };
        let content = if active.text_only {
            json!({"type": "output_text", "text": text})
        } else {
            json!({"type": "output_audio", "transcript": text})
        };
        let mut item = Item {
            id: active.item_id.clone(),
            role: "assistant".into(),
            content: vec![content],
            status: item_status,
            audio_ms: sent_ms,
            has_audio: sent_ms > 0,
            heard: None,
        };
        if let Some(existing) = self.items.iter_mut().find(|existing| existing.id == active.item_id) {
            existing.status = item_status;
            item = existing.clone();
        }
        let ids = json!({"response_id": active.id, "item_id": active.item_id, "output_index": 0, "content_index": 0});
        let with = |extra: Value| {
            let mut fields = ids.clone();
            if let (Some(fields), Value::Object(extra)) = (fields.as_object_mut(), extra) {
                fields.extend(extra);
            }
            fields
        };
        if active.text_only {
            self.emit("response.output_text.done", with(json!({"text": text})));
            self.emit("response.content_part.done", with(json!({"part": {"type": "text", "text": text}})));
        } else {
            self.emit("response.output_audio.done", with(json!({})));
            self.emit("response.output_audio_transcript.done", with(json!({"transcript": text})));
            self.emit("response.content_part.done", with(json!({"part": {"type": "audio", "transcript": text}})));
        }
        self.emit(
            "response.output_item.done",
            json!({"response_id": active.id, "output_index": 0, "item": item.json()}),
        );
        if active.conversation {
            let position = self.items.iter().position(|existing| existing.id == active.item_id);
            let previous = position.and_then(|at| at.checked_sub(1)).map(|at| self.items[at].id.clone());
            self.emit("conversation.item.done", json!({"previous_item_id": previous, "item": item.json()}));
        }
        let output_text_tokens = estimate_tokens(&text);
        let output_audio_tokens = sent_ms / 50;
        let input_tokens = active.input_text_tokens + active.input_audio_tokens;
        let output_tokens = output_text_tokens + output_audio_tokens;
        let usage = json!({
            "total_tokens": input_tokens + output_tokens,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "input_token_details": {
                "text_tokens": active.input_text_tokens, "audio_tokens": active.input_audio_tokens,
                "image_tokens": 0, "cached_tokens": 0,
                "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0}
            },
            "output_token_details": {"text_tokens": output_text_tokens, "audio_tokens": output_audio_tokens},
        });
        let details = reason.map_or(Value::Null, |reason| json!({"type": status, "reason": reason}));
        let response = self.response_json(&active, status, details, vec![item.json()], usage);
        self.emit("response.done", json!({"response": response}));
        for (item_id, text) in std::mem::take(&mut self.late) {
            self.transcribe(&item_id, text.as_deref());
        }
    }
}

/// The smallest word boundary at or after `at` (a char boundary; the text's end at most).
fn word_boundary(text: &str, mut at: usize) -> usize {
    if at >= text.len() {
        return text.len();
    }
    while !text.is_char_boundary(at) {
        at += 1;
    }
    text[at..].find(' ').map_or(text.len(), |offset| at + offset + 1)
}

/// The words of `text` that fit in `kept_ms` of `total_ms` of audio, spoken evenly.
fn cut_proportionally(text: &str, kept_ms: u64, total_ms: u64) -> String {
    if kept_ms >= total_ms {
        return text.to_owned();
    }
    let chars = (text.len() as u64 * kept_ms / total_ms.max(1)) as usize;
    let mut cut = chars.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let kept = &text[..cut];
    // A word half spoken was not heard as a word.
    let kept = if text[cut..].starts_with(' ') || cut == text.len() {
        kept
    } else {
        kept.rsplit_once(' ').map_or("", |(head, _)| head)
    };
    kept.trim_end().to_owned()
}

/// An OpenAI-looking id, e.g. `item_0f3a...`.
fn id(state: &SimState, prefix: &str) -> String {
    let n = state.next_id();
    let hashed = crate::server::fnv1a(&n.to_le_bytes());
    format!("{prefix}_{:016x}{:04x}", hashed, n & 0xffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_keep_whole_words_in_proportion() {
        let text = "one two three four";
        assert_eq!(cut_proportionally(text, 1000, 1000), text);
        assert_eq!(cut_proportionally(text, 500, 1000), "one two");
        assert_eq!(cut_proportionally(text, 100, 1000), "");
        assert_eq!(word_boundary(text, 1), 4);
        assert_eq!(word_boundary(text, 99), text.len());
    }
}

/// `reply` without the part `said` already covered (compared word by word), or all of it when
/// `said` is not where it starts.
fn continuation(said: &str, reply: &str) -> String {
    let said: Vec<&str> = said.split_whitespace().collect();
    let words: Vec<&str> = reply.split_whitespace().collect();
    if said.is_empty() || said.len() >= words.len() || words[..said.len()] != said[..] {
        return reply.to_owned();
    }
    words[said.len()..].join(" ")
}

#[cfg(test)]
mod continuation_tests {
    #[test]
    fn a_reply_carries_on_after_its_cut_start() {
        let reply = "Work has been falling apart.";
        assert_eq!(super::continuation("Work has", reply), "been falling apart.");
        assert_eq!(super::continuation("Something else", reply), reply);
        assert_eq!(super::continuation("", reply), reply);
        assert_eq!(super::continuation(reply, reply), reply);
    }
}
