//! The OpenAI Realtime protocol (GA) as the call core speaks it: configuration, the client events
//! we send (JSON text), and the server events we act on.
//!
//! Server events are parsed as `serde_json::Value` first and only then matched by `type`, so an
//! event we do not know (or a field OpenAI adds) never breaks a call: it becomes
//! [`ServerEvent::Other`].

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::turns::{RealtimeUsage, Speaker, SpokenTurn};

/// How the model decides a counselor turn is over.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnDetection {
    ServerVad { threshold: f64, prefix_padding_ms: u32, silence_duration_ms: u32 },
    SemanticVad { eagerness: String },
}

/// Everything the Realtime client needs that is not per call.
#[derive(Clone)]
pub struct RealtimeConfig {
    /// `https://api.openai.com/v1` or the simulator's `http://127.0.0.1:PORT/v1`.
    pub base_url: String,
    pub api_key: String,
    pub model: String,
    pub transcription_model: String,
    pub turn_detection: TurnDetection,
    /// Recycle the socket (between turns) once it is this old; OpenAI closes sessions at its cap.
    pub session_cap: Duration,
}

impl RealtimeConfig {
    /// From `OPENAI_BASE_URL`, `OPENAI_API_KEY`, `REALTIME_MODEL`, `REALTIME_TRANSCRIPTION_MODEL`,
    /// `REALTIME_TURN_DETECTION` (`server_vad` | `semantic_vad`), `REALTIME_VAD_THRESHOLD`,
    /// `REALTIME_VAD_PREFIX_MS`, `REALTIME_VAD_SILENCE_MS`, `REALTIME_VAD_EAGERNESS`,
    /// `REALTIME_SESSION_CAP_SECS` (default 1500).
    pub fn from_env() -> Result<Self, String> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let api_key = var("OPENAI_API_KEY").ok_or("OPENAI_API_KEY is required")?;
        let num = |k: &str, d: f64| -> Result<f64, String> {
            var(k)
                .map(|v| v.parse::<f64>().map_err(|_| format!("{k}: not a number")))
                .transpose()
                .map(|v| v.unwrap_or(d))
        };
        let turn_detection = match var("REALTIME_TURN_DETECTION").as_deref() {
            None | Some("server_vad") => TurnDetection::ServerVad {
                threshold: num("REALTIME_VAD_THRESHOLD", 0.5)?,
                prefix_padding_ms: num("REALTIME_VAD_PREFIX_MS", 300.0)? as u32,
                silence_duration_ms: num("REALTIME_VAD_SILENCE_MS", 500.0)? as u32,
            },
            Some("semantic_vad") => {
                TurnDetection::SemanticVad { eagerness: var("REALTIME_VAD_EAGERNESS").unwrap_or_else(|| "auto".into()) }
            }
            Some(other) => return Err(format!("REALTIME_TURN_DETECTION: unknown {other}")),
        };
        Ok(RealtimeConfig {
            base_url: var("OPENAI_BASE_URL").unwrap_or_else(|| "https://api.openai.com/v1".into()),
            api_key,
            model: var("REALTIME_MODEL").unwrap_or_else(|| "gpt-realtime".into()),
            transcription_model: var("REALTIME_TRANSCRIPTION_MODEL").unwrap_or_else(|| "gpt-4o-mini-transcribe".into()),
            turn_detection,
            session_cap: Duration::from_secs_f64(num("REALTIME_SESSION_CAP_SECS", 1500.0)?),
        })
    }

    /// `ws(s)://.../realtime?model=...`.
    pub fn url(&self) -> Result<url::Url, String> {
        let base = self.base_url.trim_end_matches('/');
        let mut u = url::Url::parse(&format!("{base}/realtime")).map_err(|e| e.to_string())?;
        let scheme = match u.scheme() {
            "http" | "ws" => "ws",
            "https" | "wss" => "wss",
            other => return Err(format!("unsupported scheme {other}")),
        };
        u.set_scheme(scheme).map_err(|_| "cannot set scheme".to_string())?;
        u.query_pairs_mut().append_pair("model", &self.model);
        Ok(u)
    }
}

// Hand-written: the API key must never be printed.
impl std::fmt::Debug for RealtimeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealtimeConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("transcription_model", &self.transcription_model)
            .field("turn_detection", &self.turn_detection)
            .field("session_cap", &self.session_cap)
            .finish_non_exhaustive()
    }
}

/// `session.update` in the GA shape: audio in and out as PCM16 at 24 kHz, the counselor's own
/// transcription on, turn detection as configured (creating and interrupting responses).
pub fn session_update(config: &RealtimeConfig, instructions: &str, voice: &str) -> String {
    let turn_detection = match &config.turn_detection {
        TurnDetection::ServerVad { threshold, prefix_padding_ms, silence_duration_ms } => json!({
            "type": "server_vad", "threshold": threshold, "prefix_padding_ms": prefix_padding_ms,
            "silence_duration_ms": silence_duration_ms, "create_response": true, "interrupt_response": true,
        }),
        TurnDetection::SemanticVad { eagerness } => json!({
            "type": "semantic_vad", "eagerness": eagerness, "create_response": true, "interrupt_response": true,
        }),
    };
    json!({
        "type": "session.update",
        "session": {
            "type": "realtime",
            "model": config.model,
            "output_modalities": ["audio"],
            "instructions": instructions,
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": {"model": config.transcription_model},
                    "turn_detection": turn_detection,
                },
                "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": voice},
            },
        },
    })
    .to_string()
}

/// `input_audio_buffer.append` of PCM16 little-endian samples, base64 into `out` (reused).
pub fn append_audio(samples: &[i16], bytes: &mut Vec<u8>, out: &mut String) {
    bytes.clear();
    for s in samples {
        bytes.extend_from_slice(&s.to_le_bytes());
    }
    out.clear();
    out.push_str(r#"{"type":"input_audio_buffer.append","audio":""#);
    base64::engine::general_purpose::STANDARD.encode_string(bytes, out);
    out.push_str(r#""}"#);
}

pub fn response_create() -> String {
    json!({"type": "response.create"}).to_string()
}

pub fn response_cancel() -> String {
    json!({"type": "response.cancel"}).to_string()
}

pub fn truncate(item_id: &str, audio_end_ms: u64) -> String {
    json!({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": audio_end_ms})
        .to_string()
}

pub fn delete(item_id: &str) -> String {
    json!({"type": "conversation.item.delete", "item_id": item_id}).to_string()
}

/// Re-seeds one stored turn into a fresh conversation (text only: the model needs the words, not
/// the audio, and nothing is played).
pub fn seed_item(turn: &SpokenTurn) -> String {
    let (role, kind) = match turn.speaker {
        Speaker::Counselor => ("user", "input_text"),
        Speaker::Caller => ("assistant", "output_text"),
    };
    json!({
        "type": "conversation.item.create",
        "item": {"type": "message", "role": role, "content": [{"type": kind, "text": turn.text}]},
    })
    .to_string()
}

/// The server events the call acts on; everything else is `Other`.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    SessionCreated,
    SessionUpdated,
    SpeechStarted {
        item_id: String,
    },
    SpeechStopped {
        item_id: String,
    },
    /// The counselor's words for the turn `item_id`, so far (`delta`) or final (`completed`).
    InputTranscriptDelta {
        item_id: String,
        delta: String,
    },
    InputTranscriptCompleted {
        item_id: String,
        transcript: String,
    },
    InputTranscriptFailed {
        item_id: String,
    },
    ResponseCreated {
        response_id: String,
    },
    /// The caller's reply item exists (`response.output_item.added`), before any audio.
    ReplyItem {
        response_id: String,
        item_id: String,
    },
    /// PCM16 24 kHz samples of the caller's reply.
    AudioDelta {
        response_id: String,
        item_id: String,
        pcm: Vec<i16>,
    },
    AudioDone {
        response_id: String,
    },
    TranscriptDelta {
        response_id: String,
        item_id: String,
        delta: String,
    },
    TranscriptDone {
        response_id: String,
        item_id: String,
        transcript: String,
    },
    ResponseDone {
        response_id: String,
        status: String,
        usage: RealtimeUsage,
    },
    Error {
        code: String,
        message: String,
    },
    Other(String),
}

fn s(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn u(v: &Value, path: &[&str]) -> u64 {
    let mut cur = v;
    for k in path {
        match cur.get(k) {
            Some(next) => cur = next,
            None => return 0,
        }
    }
    cur.as_u64().unwrap_or(0)
}

/// Parses one server message. `None` for text that is not a JSON object with a `type`.
pub fn parse(text: &str) -> Option<ServerEvent> {
    let v: Value = serde_json::from_str(text).ok()?;
    let kind = v.get("type")?.as_str()?.to_owned();
    let response_id = || {
        v.get("response_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| s(v.get("response").unwrap_or(&Value::Null), "id"))
    };
    Some(match kind.as_str() {
        "session.created" => ServerEvent::SessionCreated,
        "session.updated" => ServerEvent::SessionUpdated,
        "input_audio_buffer.speech_started" => ServerEvent::SpeechStarted { item_id: s(&v, "item_id") },
        "input_audio_buffer.speech_stopped" => ServerEvent::SpeechStopped { item_id: s(&v, "item_id") },
        "conversation.item.input_audio_transcription.delta" => {
            ServerEvent::InputTranscriptDelta { item_id: s(&v, "item_id"), delta: s(&v, "delta") }
        }
        "conversation.item.input_audio_transcription.completed" => {
            ServerEvent::InputTranscriptCompleted { item_id: s(&v, "item_id"), transcript: s(&v, "transcript") }
        }
        "conversation.item.input_audio_transcription.failed" => {
            ServerEvent::InputTranscriptFailed { item_id: s(&v, "item_id") }
        }
        "response.created" => ServerEvent::ResponseCreated { response_id: response_id() },
        "response.output_item.added" => ServerEvent::ReplyItem {
            response_id: response_id(),
            item_id: s(v.get("item").unwrap_or(&Value::Null), "id"),
        },
        "response.output_audio.delta" => {
            let bytes = base64::engine::general_purpose::STANDARD.decode(s(&v, "delta")).unwrap_or_default();
            let pcm = bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
            ServerEvent::AudioDelta { response_id: response_id(), item_id: s(&v, "item_id"), pcm }
        }
        "response.output_audio.done" => ServerEvent::AudioDone { response_id: response_id() },
        "response.output_audio_transcript.delta" => ServerEvent::TranscriptDelta {
            response_id: response_id(),
            item_id: s(&v, "item_id"),
            delta: s(&v, "delta"),
        },
        "response.output_audio_transcript.done" => ServerEvent::TranscriptDone {
            response_id: response_id(),
            item_id: s(&v, "item_id"),
            transcript: s(&v, "transcript"),
        },
        "response.done" => {
            let r = v.get("response").cloned().unwrap_or(Value::Null);
            let usage = r.get("usage").cloned().unwrap_or(Value::Null);
            ServerEvent::ResponseDone {
                response_id: s(&r, "id"),
                status: s(&r, "status"),
                usage: RealtimeUsage {
                    input_text_tokens: u(&usage, &["input_token_details", "text_tokens"]),
                    input_audio_tokens: u(&usage, &["input_token_details", "audio_tokens"]),
                    cached_tokens: u(&usage, &["input_token_details", "cached_tokens"]),
                    output_text_tokens: u(&usage, &["output_token_details", "text_tokens"]),
                    output_audio_tokens: u(&usage, &["output_token_details", "audio_tokens"]),
                    ..Default::default()
                },
            }
        }
        "error" => {
            let e = v.get("error").cloned().unwrap_or(Value::Null);
            ServerEvent::Error { code: s(&e, "code"), message: s(&e, "message") }
        }
        _ => ServerEvent::Other(kind),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RealtimeConfig {
        RealtimeConfig {
            base_url: "http://127.0.0.1:9/v1/".into(),
            api_key: "sk-secret".into(),
            model: "gpt-realtime".into(),
            transcription_model: "gpt-4o-mini-transcribe".into(),
            turn_detection: TurnDetection::SemanticVad { eagerness: "low".into() },
            session_cap: Duration::from_secs(60),
        }
    }

    #[test]
    fn url_and_session_shape() {
        let c = config();
        assert_eq!(c.url().unwrap().as_str(), "ws://127.0.0.1:9/v1/realtime?model=gpt-realtime");
        assert!(!format!("{c:?}").contains("sk-secret"));
        let v: Value = serde_json::from_str(&session_update(&c, "You are Sam.", "alloy")).unwrap();
        assert_eq!(v["session"]["type"], "realtime");
        assert_eq!(v["session"]["audio"]["input"]["format"]["rate"], 24000);
        assert_eq!(v["session"]["audio"]["input"]["transcription"]["model"], "gpt-4o-mini-transcribe");
        assert_eq!(v["session"]["audio"]["input"]["turn_detection"]["type"], "semantic_vad");
        assert_eq!(v["session"]["audio"]["output"]["voice"], "alloy");
        assert_eq!(v["session"]["instructions"], "You are Sam.");
    }

    #[test]
    fn append_is_base64_pcm16le() {
        let (mut bytes, mut out) = (Vec::new(), String::new());
        append_audio(&[1, -2], &mut bytes, &mut out);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["type"], "input_audio_buffer.append");
        assert_eq!(
            base64::engine::general_purpose::STANDARD.decode(v["audio"].as_str().unwrap()).unwrap(),
            [1, 0, 0xfe, 0xff]
        );
    }

    #[test]
    fn unknown_and_odd_events_do_not_break() {
        assert_eq!(
            parse(r#"{"type":"rate_limits.updated","rate_limits":[]}"#),
            Some(ServerEvent::Other("rate_limits.updated".into()))
        );
        assert_eq!(parse("not json"), None);
        assert_eq!(parse(r#"{"no_type":1}"#), None);
        // Missing fields become empty values, not failures.
        assert_eq!(
            parse(r#"{"type":"input_audio_buffer.speech_started"}"#),
            Some(ServerEvent::SpeechStarted { item_id: String::new() })
        );
    }

    #[test]
    fn audio_delta_and_usage() {
        let audio = base64::engine::general_purpose::STANDARD.encode([1u8, 0, 0xff, 0x7f]);
        let e = parse(&format!(
            r#"{{"type":"response.output_audio.delta","response_id":"r1","item_id":"i1","delta":"{audio}"}}"#
        ));
        assert_eq!(
            e,
            Some(ServerEvent::AudioDelta { response_id: "r1".into(), item_id: "i1".into(), pcm: vec![1, 32767] })
        );
        let done = parse(
            r#"{"type":"response.done","response":{"id":"r1","status":"completed","usage":{"input_token_details":{"text_tokens":5,"audio_tokens":7,"cached_tokens":2},"output_token_details":{"text_tokens":3,"audio_tokens":11}}}}"#,
        );
        let Some(ServerEvent::ResponseDone { usage, status, .. }) = done else { panic!("done") };
        assert_eq!(status, "completed");
        assert_eq!((usage.input_text_tokens, usage.input_audio_tokens, usage.cached_tokens), (5, 7, 2));
        assert_eq!((usage.output_text_tokens, usage.output_audio_tokens), (3, 11));
    }
}
