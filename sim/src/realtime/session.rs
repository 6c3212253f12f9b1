//! The GA Realtime session object: its defaults, `session.update` validation, and merging.
//!
//! The session is kept as the JSON OpenAI echoes in `session.created` / `session.updated`, so
//! a client sees back exactly what it set. Validation follows the GA shape (`type: realtime`,
//! `output_modalities`, `audio.input` / `audio.output`); beta-era fields (`modalities`, `voice`,
//! `input_audio_format`, `turn_detection` at the top level, ...) are unknown parameters, as they
//! are for OpenAI, so a client still speaking the beta protocol fails loudly here instead of in
//! production. Errors name the field (`param`), like OpenAI's.

use serde_json::{Map, Value, json};

use super::vad::VadParams;

/// A rejected client event: what goes into the `error` event.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EventError {
    pub code: &'static str,
    pub message: String,
    pub param: Option<String>,
}

impl EventError {
    pub(crate) fn new(code: &'static str, param: Option<&str>, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), param: param.map(str::to_owned) }
    }

    fn unknown(param: &str) -> Self {
        Self::new("unknown_parameter", Some(param), format!("Unknown parameter: '{param}'."))
    }

    fn invalid_type(param: &str, expected: &str, got: &Value) -> Self {
        let got = match got {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
            Value::Number(_) => "a decimal",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        };
        Self::new(
            "invalid_type",
            Some(param),
            format!("Invalid type for '{param}': expected {expected}, but got {got} instead."),
        )
    }

    fn invalid_value(param: &str, got: &Value, supported: &[&str]) -> Self {
        let list = supported.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", ");
        Self::new(
            "invalid_value",
            Some(param),
            format!("Invalid value: {got}. Supported values are: {list}.").replace('"', "'"),
        )
    }

    pub(crate) fn missing(param: &str) -> Self {
        Self::new("missing_required_parameter", Some(param), format!("Missing required parameter: '{param}'."))
    }
}

/// OpenAI's built-in voices.
pub(crate) const VOICES: &[&str] =
    &["alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"];

/// The session `session.created` announces.
pub(crate) fn default_session(id: &str, model: &str, expires_at: u64) -> Value {
    json!({
        "type": "realtime",
        "object": "realtime.session",
        "id": id,
        "model": model,
        "output_modalities": ["audio"],
        "instructions": "Your knowledge cutoff is 2023-10. You are a helpful, witty, and friendly AI.",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": null,
        "truncation": "auto",
        "prompt": null,
        "expires_at": expires_at,
        "include": null,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": null,
                "noise_reduction": null,
                "turn_detection": server_vad_defaults(),
            },
            "output": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "voice": "alloy",
                "speed": 1.0,
            }
        }
    })
}

fn server_vad_defaults() -> Value {
    json!({"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 200,
           "idle_timeout_ms": null, "create_response": true, "interrupt_response": true})
}

fn semantic_vad_defaults() -> Value {
    json!({"type": "semantic_vad", "eagerness": "auto", "create_response": true, "interrupt_response": true})
}

/// Validates `update` (the `session` of a `session.update`) and merges it into `current`.
/// `audio_produced`: the model has already spoken, so the voice is fixed (OpenAI's rule).
pub(crate) fn apply_update(current: &mut Value, update: &Value, audio_produced: bool) -> Result<(), EventError> {
    let Some(update) = update.as_object() else {
        return Err(match update {
            Value::Null => EventError::missing("session"),
            other => EventError::invalid_type("session", "an object", other),
        });
    };
    match update.get("type") {
        None => return Err(EventError::missing("session.type")),
        Some(Value::String(kind)) if kind == "realtime" => {}
        Some(other) => return Err(EventError::invalid_value("session.type", other, &["realtime", "transcription"])),
    }
    let mut next = current.clone();
    for (key, value) in update {
        let param = format!("session.{key}");
        match key.as_str() {
            "type" => {}
            "model" => next["model"] = Value::String(string(&param, value)?.to_owned()),
            "instructions" => next["instructions"] = Value::String(string(&param, value)?.to_owned()),
            "output_modalities" => {
                let modes = value.as_array().ok_or_else(|| EventError::invalid_type(&param, "an array", value))?;
                let valid = matches!(modes.as_slice(), [Value::String(m)] if m == "audio" || m == "text");
                if !valid {
                    return Err(EventError::invalid_value(&param, value, &["['audio']", "['text']"]));
                }
                next["output_modalities"] = value.clone();
            }
            "audio" => merge_audio(&mut next["audio"], value, audio_produced)?,
            "max_output_tokens" => {
                let ok = value.as_str() == Some("inf") || value.as_u64().is_some_and(|n| (1..=4096).contains(&n));
                if !ok {
                    return Err(EventError::invalid_value(&param, value, &["an integer 1-4096", "inf"]));
                }
                next[key] = value.clone();
            }
            "tools" => {
                if !value.is_array() {
                    return Err(EventError::invalid_type(&param, "an array", value));
                }
                next[key] = value.clone();
            }
            "tool_choice" | "tracing" | "truncation" | "prompt" | "include" => next[key] = value.clone(),
            _ => return Err(EventError::unknown(&param)),
        }
    }
    *current = next;
    Ok(())
}

fn merge_audio(current: &mut Value, update: &Value, audio_produced: bool) -> Result<(), EventError> {
    let update = object("session.audio", update)?;
    for (key, value) in update {
        let param = format!("session.audio.{key}");
        match key.as_str() {
            "input" => {
                for (key, value) in object(&param, value)? {
                    let param = format!("{param}.{key}");
                    let checked = match key.as_str() {
                        "format" => format(&param, value)?,
                        "transcription" => transcription(&param, value)?,
                        "noise_reduction" => noise_reduction(&param, value)?,
                        "turn_detection" => turn_detection(&param, value)?,
                        _ => return Err(EventError::unknown(&param)),
                    };
                    current["input"][key] = checked;
                }
            }
            "output" => {
                for (key, value) in object(&param, value)? {
                    let param = format!("{param}.{key}");
                    let checked = match key.as_str() {
                        "format" => format(&param, value)?,
                        "voice" => {
                            let voice = string(&param, value)?;
                            if !VOICES.contains(&voice) {
                                return Err(EventError::invalid_value(&param, value, VOICES));
                            }
                            if audio_produced && current["output"]["voice"].as_str() != Some(voice) {
                                return Err(EventError::new(
                                    "cannot_update_voice",
                                    Some(&param),
                                    "Cannot update a conversation's voice if assistant audio is present.",
                                ));
                            }
                            value.clone()
                        }
                        "speed" => {
                            let speed =
                                value.as_f64().ok_or_else(|| EventError::invalid_type(&param, "a number", value))?;
                            if !(0.25..=1.5).contains(&speed) {
                                return Err(EventError::invalid_value(&param, value, &["0.25 to 1.5"]));
                            }
                            value.clone()
                        }
                        _ => return Err(EventError::unknown(&param)),
                    };
                    current["output"][key] = checked;
                }
            }
            _ => return Err(EventError::unknown(&param)),
        }
    }
    Ok(())
}

fn object<'a>(param: &str, value: &'a Value) -> Result<&'a Map<String, Value>, EventError> {
    value.as_object().ok_or_else(|| EventError::invalid_type(param, "an object", value))
}

fn string<'a>(param: &str, value: &'a Value) -> Result<&'a str, EventError> {
    value.as_str().ok_or_else(|| EventError::invalid_type(param, "a string", value))
}

fn boolean(param: &str, value: &Value) -> Result<(), EventError> {
    if value.is_boolean() { Ok(()) } else { Err(EventError::invalid_type(param, "a boolean", value)) }
}

/// PCM at 24 kHz only: the simulator's VAD and voice speak nothing else (OpenAI also takes
/// G.711, which our clients never send).
fn format(param: &str, value: &Value) -> Result<Value, EventError> {
    let format = object(param, value)?;
    for key in format.keys() {
        if key != "type" && key != "rate" {
            return Err(EventError::unknown(&format!("{param}.{key}")));
        }
    }
    let kind = format.get("type").ok_or_else(|| EventError::missing(&format!("{param}.type")))?;
    if kind.as_str() != Some("audio/pcm") {
        return Err(EventError::invalid_value(&format!("{param}.type"), kind, &["audio/pcm"]));
    }
    match format.get("rate") {
        None => {}
        Some(rate) if rate.as_u64() == Some(24_000) => {}
        Some(rate) => return Err(EventError::invalid_value(&format!("{param}.rate"), rate, &["24000"])),
    }
    Ok(json!({"type": "audio/pcm", "rate": 24000}))
}

fn transcription(param: &str, value: &Value) -> Result<Value, EventError> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    for (key, field) in object(param, value)? {
        let param = format!("{param}.{key}");
        match key.as_str() {
            "model" => {
                if string(&param, field)?.trim().is_empty() {
                    return Err(EventError::invalid_value(
                        &param,
                        field,
                        &["whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe"],
                    ));
                }
            }
            "language" | "prompt" => {
                string(&param, field)?;
            }
            _ => return Err(EventError::unknown(&param)),
        }
    }
    Ok(value.clone())
}

fn noise_reduction(param: &str, value: &Value) -> Result<Value, EventError> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    for (key, field) in object(param, value)? {
        let param = format!("{param}.{key}");
        if key != "type" {
            return Err(EventError::unknown(&param));
        }
        if !matches!(field.as_str(), Some("near_field" | "far_field")) {
            return Err(EventError::invalid_value(&param, field, &["near_field", "far_field"]));
        }
    }
    Ok(value.clone())
}

fn turn_detection(param: &str, value: &Value) -> Result<Value, EventError> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    let fields = object(param, value)?;
    let kind = fields.get("type").ok_or_else(|| EventError::missing(&format!("{param}.type")))?;
    let (mut out, allowed): (Value, &[&str]) = match kind.as_str() {
        Some("server_vad") => (
            server_vad_defaults(),
            &[
                "threshold",
                "prefix_padding_ms",
                "silence_duration_ms",
                "idle_timeout_ms",
                "create_response",
                "interrupt_response",
            ],
        ),
        Some("semantic_vad") => (semantic_vad_defaults(), &["eagerness", "create_response", "interrupt_response"]),
        _ => return Err(EventError::invalid_value(&format!("{param}.type"), kind, &["server_vad", "semantic_vad"])),
    };
    for (key, field) in fields {
        if key == "type" {
            continue;
        }
        let param = format!("{param}.{key}");
        if !allowed.contains(&key.as_str()) {
            return Err(EventError::unknown(&param));
        }
        match key.as_str() {
            "threshold" => {
                let threshold = field.as_f64().ok_or_else(|| EventError::invalid_type(&param, "a number", field))?;
                if !(0.0..=1.0).contains(&threshold) {
                    return Err(EventError::new(
                        if threshold < 0.0 { "decimal_below_min_value" } else { "decimal_above_max_value" },
                        Some(&param),
                        format!("Invalid '{param}': expected a value between 0 and 1, but got {threshold} instead."),
                    ));
                }
            }
            "prefix_padding_ms" | "silence_duration_ms" if field.as_u64().is_none() => {
                return Err(EventError::invalid_type(&param, "a non-negative integer", field));
            }
            "idle_timeout_ms" if !field.is_null() && field.as_u64().is_none() => {
                return Err(EventError::invalid_type(&param, "an integer", field));
            }
            "create_response" | "interrupt_response" => boolean(&param, field)?,
            "eagerness" if !matches!(field.as_str(), Some("low" | "medium" | "high" | "auto")) => {
                return Err(EventError::invalid_value(&param, field, &["low", "medium", "high", "auto"]));
            }
            _ => {}
        }
        out[key] = field.clone();
    }
    Ok(out)
}

/// The turn-detection settings the connection acts on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TurnDetection {
    pub vad: VadParams,
    pub create_response: bool,
    pub interrupt_response: bool,
}

/// Reads `audio.input.turn_detection` (already validated); `None` when it is off. Semantic VAD
/// is energy VAD with a silence that follows `eagerness`.
pub(crate) fn turn_detection_of(session: &Value) -> Option<TurnDetection> {
    let td = &session["audio"]["input"]["turn_detection"];
    let kind = td["type"].as_str()?;
    let vad = if kind == "semantic_vad" {
        let silence = match td["eagerness"].as_str() {
            Some("high") => 400,
            Some("low") => 1200,
            _ => 800,
        };
        VadParams { threshold: 0.5, prefix_padding_ms: 300, silence_duration_ms: silence }
    } else {
        VadParams {
            threshold: td["threshold"].as_f64().unwrap_or(0.5),
            prefix_padding_ms: td["prefix_padding_ms"].as_u64().unwrap_or(300),
            silence_duration_ms: td["silence_duration_ms"].as_u64().unwrap_or(200),
        }
    };
    Some(TurnDetection {
        vad,
        create_response: td["create_response"].as_bool().unwrap_or(true),
        interrupt_response: td["interrupt_response"].as_bool().unwrap_or(true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> Value {
        default_session("sess_1", "gpt-realtime", 0)
    }

    #[test]
    fn a_ga_update_merges_and_fills_turn_detection_defaults() {
        let mut session = fresh();
        let update = json!({
            "type": "realtime", "instructions": "You are a caller.", "output_modalities": ["audio"],
            "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}, "transcription": {"model": "whisper-1"},
                                "turn_detection": {"type": "semantic_vad", "eagerness": "high"}},
                      "output": {"voice": "marin"}}
        });
        assert_eq!(apply_update(&mut session, &update, false), Ok(()));
        assert_eq!(session["instructions"], "You are a caller.");
        assert_eq!(session["audio"]["input"]["turn_detection"]["create_response"], true);
        assert_eq!(session["audio"]["output"]["voice"], "marin");
        assert_eq!(session["audio"]["output"]["format"]["rate"], 24000);
        let td = turn_detection_of(&session).expect("on");
        assert_eq!(td.vad.silence_duration_ms, 400);
    }

    #[test]
    fn bad_updates_name_the_field() {
        let cases = [
            (json!({"instructions": "x"}), "session.type"),
            (json!({"type": "realtime", "modalities": ["audio"]}), "session.modalities"),
            (json!({"type": "realtime", "output_modalities": ["audio", "text"]}), "session.output_modalities"),
            (
                json!({"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}}),
                "session.audio.input.format.rate",
            ),
            (
                json!({"type": "realtime", "audio": {"input": {"turn_detection": {"type": "vad"}}}}),
                "session.audio.input.turn_detection.type",
            ),
            (
                json!({"type": "realtime", "audio": {"input": {"turn_detection": {"type": "semantic_vad", "threshold": 0.5}}}}),
                "session.audio.input.turn_detection.threshold",
            ),
            (
                json!({"type": "realtime", "audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 2}}}}),
                "session.audio.input.turn_detection.threshold",
            ),
            (json!({"type": "realtime", "audio": {"output": {"voice": "nobody"}}}), "session.audio.output.voice"),
            (json!({"type": "realtime", "instructions": 5}), "session.instructions"),
        ];
        for (update, param) in cases {
            let mut session = fresh();
            let error = apply_update(&mut session, &update, false).expect_err(param);
            assert_eq!(error.param.as_deref(), Some(param), "{update}");
            assert_eq!(session, fresh(), "a rejected update changes nothing");
        }
        let mut session = fresh();
        let voice = json!({"type": "realtime", "audio": {"output": {"voice": "echo"}}});
        assert_eq!(apply_update(&mut session, &voice, true).map_err(|e| e.code), Err("cannot_update_voice"));
    }
}
