//! What a Realtime socket carried, for assertions: every client event received and every server
//! event sent, per connection, in order.
//!
//! Audio payloads are not kept (a call appends megabytes): the base64 field is emptied and its
//! decoded length recorded as `audioBytes`. Consecutive `input_audio_buffer.append` events are
//! folded into one record (`appends` counts them) so a long call stays small; everything else is
//! one record per event.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who sent an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Client to simulator.
    Client,
    /// Simulator to client.
    Server,
}

/// One recorded event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RealtimeEvent {
    /// Who sent it.
    pub direction: Direction,
    /// When, Unix milliseconds.
    pub at_ms: u64,
    /// The event's `type` (`"<unparseable>"` for a frame that was not a JSON object).
    #[serde(rename = "type")]
    pub kind: String,
    /// The event as sent, audio emptied (a string for an unparseable frame).
    pub event: Value,
    /// Decoded length of the audio it carried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_bytes: Option<u64>,
    /// For folded `input_audio_buffer.append` records: how many appends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appends: Option<u32>,
}

/// One socket's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RealtimeConnection {
    /// Unique within the simulator, in connection order.
    pub id: u64,
    /// The `model` query parameter.
    pub model: String,
    /// When the upgrade happened, Unix milliseconds.
    pub opened_at_ms: u64,
    /// When the socket ended, if it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at_ms: Option<u64>,
    /// How it ended: `client_closed`, `client_dropped`, `dropped` (fault), `session_cap`,
    /// `shutdown`, `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_reason: Option<String>,
    /// Events both ways, oldest first.
    pub events: Vec<RealtimeEvent>,
}

impl RealtimeConnection {
    /// Events of this type in this direction, as recorded.
    pub fn events_of(&self, direction: Direction, kind: &str) -> Vec<&Value> {
        self.events.iter().filter(|e| e.direction == direction && e.kind == kind).map(|e| &e.event).collect()
    }

    /// The types of the events in one direction, in order (a quick way to assert an order).
    pub fn types(&self, direction: Direction) -> Vec<&str> {
        self.events.iter().filter(|e| e.direction == direction).map(|e| e.kind.as_str()).collect()
    }

    pub(crate) fn push(&mut self, event: RealtimeEvent) {
        if event.kind == "input_audio_buffer.append"
            && let Some(last) = self.events.last_mut()
            && last.kind == event.kind
            && last.direction == event.direction
        {
            last.audio_bytes = Some(last.audio_bytes.unwrap_or(0) + event.audio_bytes.unwrap_or(0));
            last.appends = Some(last.appends.unwrap_or(1) + 1);
            return;
        }
        self.events.push(event);
    }
}

/// Length of the bytes a base64 string decodes to (without decoding it).
pub(crate) fn decoded_len(base64: &str) -> u64 {
    let padding = base64.bytes().rev().take_while(|&b| b == b'=').count();
    ((base64.len() / 4 * 3).saturating_sub(padding)) as u64
}

/// The recorded copy of an event: audio fields emptied (without copying them), their length returned.
pub(crate) fn strip_audio(event: &Value) -> (Value, Option<u64>) {
    let field = match event["type"].as_str() {
        Some("input_audio_buffer.append") => "audio",
        Some("response.output_audio.delta") => "delta",
        _ => return (event.clone(), None),
    };
    let Some(fields) = event.as_object() else { return (event.clone(), None) };
    let mut bytes = None;
    let copy = fields
        .iter()
        .map(|(key, value)| {
            if key == field {
                bytes = value.as_str().map(decoded_len);
                (key.clone(), Value::String(String::new()))
            } else {
                (key.clone(), value.clone())
            }
        })
        .collect();
    (Value::Object(copy), bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn audio_is_emptied_and_measured() {
        let (copy, bytes) = strip_audio(&json!({"type": "input_audio_buffer.append", "audio": "AAECAw=="}));
        assert_eq!(copy, json!({"type": "input_audio_buffer.append", "audio": ""}));
        assert_eq!(bytes, Some(4));
        let (copy, bytes) = strip_audio(&json!({"type": "response.cancel"}));
        assert_eq!((copy, bytes), (json!({"type": "response.cancel"}), None));
    }
}
