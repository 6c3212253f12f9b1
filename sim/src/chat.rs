//! `POST /v1/chat/completions`: validation, the reply (scripted or default), and both response
//! shapes — one `chat.completion` object, or `chat.completion.chunk` server-sent events.
//!
//! Default replies are deterministic so tests and demos repeat: a `json_schema` request gets
//! [`schema::generate`]'s value (the `truth_assessment` one an answer read from its transcript,
//! `crate::truth`), `json_object` gets `{}`, and plain text gets one of a few lines
//! a crisis-line caller might say, chosen by a hash of the last user message (so an offline demo
//! conversation reads plausibly, and the same counselor line always gets the same answer).
//!
//! Validation copies the checks of OpenAI's that our code could trip over: required fields, ranges,
//! the word "json" for `json_object`, and the `strict` schema rules.

use std::convert::Infallible;

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::schema;
use crate::script::{Call, Endpoint, SimState};
use crate::server::{self, ConnectionKiller, JsonBody};

/// What `system_fingerprint` says; fixed so clients that log it see one backend.
const SYSTEM_FINGERPRINT: &str = "fp_sim0c0ffee";

/// What a caller says when the conversation has no user turn yet (the call just connected).
const OPENING_LINE: &str = "Hi... is this the crisis line? I wasn't sure if I should call.";

/// The default caller replies, one chosen per counselor message.
const CALLER_LINES: &[&str] = &[
    "I don't really know why I called. I just couldn't sleep again and everything feels heavy.",
    "It's been a really hard week. I lost my job on Monday and I haven't told anyone yet.",
    "Sorry, I'm not sure what to say. I've just been feeling really alone lately.",
    "My sister said I should call. We had a big fight and now she won't answer my texts.",
    "Sometimes I think everyone would be better off without me. I don't know if I mean it.",
    "I'm okay, I guess. It just helps to hear someone's voice right now.",
    "Can you stay on the line for a minute? My heart is racing and I can't calm down.",
    "I've been drinking a bit tonight. I know I shouldn't, it just makes the quiet easier.",
    "Nobody at school gets it. I'm so tired of pretending I'm fine all the time.",
    "Yeah... I think so. It's hard to explain, it's like I'm stuck and can't get out.",
    "Honestly, no. I haven't been eating much and I can't focus on anything.",
    "I don't want to go to the hospital. I just needed to talk to somebody who isn't family.",
];

#[derive(Debug, Deserialize)]
struct ChatRequest {
    model: String,
    messages: Vec<Message>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    response_format: Option<ResponseFormat>,
    n: Option<u32>,
    temperature: Option<f64>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct Message {
    role: Role,
    content: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Role {
    System,
    Developer,
    User,
    Assistant,
    Tool,
    Function,
}

#[derive(Debug, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema { json_schema: JsonSchemaFormat },
}

#[derive(Debug, Deserialize)]
struct JsonSchemaFormat {
    name: String,
    schema: Option<Value>,
    strict: Option<bool>,
}

/// The handler.
pub(crate) async fn completions(
    State(state): State<SimState>,
    killer: Option<Extension<ConnectionKiller>>,
    JsonBody(body): JsonBody,
) -> Response {
    let request = match validate(body) {
        Ok(request) => request,
        Err(error) => return error.into_response(),
    };
    state.note_model(&request.model);
    let texts: Vec<String> = request.messages.iter().map(|message| text_of(message.content.as_ref())).collect();
    let all_text = texts.join("\n");
    let last_user = request.messages.iter().rposition(|message| message.role == Role::User).map(|i| texts[i].as_str());
    let schema_format = match &request.response_format {
        Some(ResponseFormat::JsonSchema { json_schema }) => Some(json_schema),
        _ => None,
    };
    let plan = state.plan(&Call {
        endpoint: Endpoint::Chat,
        model: Some(&request.model),
        text: &all_text,
        last_user,
        schema_name: schema_format.map(|format| format.name.as_str()),
    });
    if let Some(response) = server::stage(&plan, killer.as_deref()).await {
        return response;
    }

    let content = match (&plan.reply, &request.response_format) {
        (Some(reply), _) => reply.content(),
        // Grading against a scenario's truth: answered from the transcript, not the schema.
        // A scenario test run's AI counselor files its call record.
        (None, Some(ResponseFormat::JsonSchema { json_schema }))
            if json_schema.name == "test_run_call_record"
                && let Some(record) = counselor_record(&request.messages, &texts) =>
        {
            record.to_string()
        }
        (None, Some(ResponseFormat::JsonSchema { json_schema })) if json_schema.name == "truth_assessment" => {
            crate::truth::answer(&all_text).to_string()
        }
        (None, Some(ResponseFormat::JsonSchema { json_schema })) => {
            json_schema.schema.as_ref().map_or_else(|| "{}".to_owned(), |schema| schema::generate(schema).to_string())
        }
        (None, Some(ResponseFormat::JsonObject)) => "{}".to_owned(),
        (None, _) => {
            // A scenario with a risk profile: the caller follows its disclosure rules.
            let system = request.messages.iter().position(|m| matches!(m.role, Role::System | Role::Developer));
            let turns: Vec<(bool, &str)> = request
                .messages
                .iter()
                .zip(&texts)
                .filter(|(m, _)| matches!(m.role, Role::User | Role::Assistant))
                .map(|(m, t)| (m.role == Role::User, t.as_str()))
                .collect();
            counselor_line(&request.messages, &texts)
                .map(str::to_owned)
                .or_else(|| system.and_then(|i| crate::caller::profiled_reply(&texts[i], &turns)))
                .unwrap_or_else(|| caller_line(last_user).to_owned())
        }
    };
    let prompt_tokens = 3 + texts.iter().map(|text| 4 + server::estimate_tokens(text)).sum::<u64>();
    let choices = request.n.unwrap_or(1);
    let reply = Reply {
        id: server::response_id("chatcmpl", state.next_id()),
        created: server::now_secs(),
        model: request.model,
        completion_tokens: server::estimate_tokens(&content) * u64::from(choices),
        content,
        choices,
        prompt_tokens,
    };
    if request.stream == Some(true) {
        let include_usage = request.stream_options.is_some_and(|options| options.include_usage);
        reply.stream(include_usage, plan.malformed())
    } else {
        server::json_response(&reply.completion(), plan.malformed())
    }
}

/// Parses and checks the request the way OpenAI does, with its messages and `param`s.
fn validate(body: Value) -> Result<ChatRequest, ApiError> {
    if !body.is_object() {
        return Err(ApiError::invalid(None, "Invalid request body: expected a JSON object."));
    }
    if body.get("model").is_none_or(Value::is_null) {
        return Err(ApiError::invalid(None, "you must provide a model parameter"));
    }
    if body.get("messages").is_none_or(Value::is_null) {
        return Err(ApiError::invalid(Some("messages"), "Missing required parameter: 'messages'."));
    }
    let request: ChatRequest = server::parse(body)?;
    if request.messages.is_empty() {
        return Err(ApiError::invalid(
            Some("messages"),
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
        ));
    }
    if let Some(temperature) = request.temperature.filter(|t| !(0.0..=2.0).contains(t)) {
        return Err(ApiError::invalid(
            Some("temperature"),
            format!("Invalid 'temperature': expected a value between 0 and 2, but got {temperature} instead."),
        ));
    }
    if let Some(n) = request.n.filter(|n| !(1..=128).contains(n)) {
        return Err(ApiError::invalid(
            Some("n"),
            format!("Invalid 'n': expected a value between 1 and 128, but got {n} instead."),
        ));
    }
    for (param, value) in [("max_tokens", request.max_tokens), ("max_completion_tokens", request.max_completion_tokens)]
    {
        if value == Some(0) {
            return Err(ApiError::invalid(
                Some(param),
                format!("Invalid '{param}': integer below minimum value. Expected a value >= 1, but got 0 instead."),
            ));
        }
    }
    match &request.response_format {
        Some(ResponseFormat::JsonObject) => {
            let mentions_json =
                request.messages.iter().any(|m| text_of(m.content.as_ref()).to_lowercase().contains("json"));
            if !mentions_json {
                return Err(ApiError::invalid(
                    Some("messages"),
                    "'messages' must contain the word 'json' in some form, to use 'response_format' of type \
                     'json_object'.",
                ));
            }
        }
        Some(ResponseFormat::JsonSchema { json_schema }) => {
            let name_ok = (1..=64).contains(&json_schema.name.len())
                && json_schema.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !name_ok {
                return Err(ApiError::invalid(
                    Some("response_format.json_schema.name"),
                    format!(
                        "Invalid 'response_format.json_schema.name': string does not match pattern. Expected a \
                         string that matches the pattern '^[a-zA-Z0-9_-]+$' of at most 64 characters, got '{}'.",
                        json_schema.name
                    ),
                ));
            }
            if json_schema.strict == Some(true) {
                let schema = json_schema.schema.as_ref().unwrap_or(&Value::Null);
                schema::check_strict(schema).map_err(|reason| {
                    ApiError::invalid(
                        Some("response_format"),
                        format!("Invalid schema for response_format '{}': {reason}", json_schema.name),
                    )
                })?;
            }
        }
        Some(ResponseFormat::Text) | None => {}
    }
    Ok(request)
}

/// A message's text: a string, or the `text` parts of an array (images and audio are skipped).
fn text_of(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => {
            parts.iter().filter_map(|part| part.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("\n")
        }
        _ => String::new(),
    }
}

/// A counselor's line when the system prompt casts the model as the counselor (a scenario test
/// run's AI counselor, `counselor.rs`).
fn counselor_line(messages: &[Message], texts: &[String]) -> Option<&'static str> {
    let system = messages.iter().position(|m| matches!(m.role, Role::System | Role::Developer))?;
    let said = messages.iter().filter(|m| m.role == Role::Assistant).count();
    crate::counselor::line(&texts[system], said)
}

/// The AI counselor's call record, from the caller's (user) messages.
fn counselor_record(messages: &[Message], texts: &[String]) -> Option<Value> {
    let system = messages.iter().position(|m| matches!(m.role, Role::System | Role::Developer))?;
    let heard: Vec<&str> =
        messages.iter().zip(texts).filter(|(m, _)| m.role == Role::User).map(|(_, t)| t.as_str()).collect();
    // The request's own cue (a bracketed stage direction) is not the caller speaking.
    let heard: Vec<&str> = heard.into_iter().filter(|t| !t.trim_start().starts_with('[')).collect();
    crate::counselor::call_record(&texts[system], &heard)
}

/// The default caller line for the counselor's last message.
/// The opening line and every default caller reply (what the voice pre-renders).
pub(crate) fn default_caller_lines() -> impl Iterator<Item = &'static str> {
    std::iter::once(OPENING_LINE).chain(CALLER_LINES.iter().copied())
}

pub fn caller_line(last_user: Option<&str>) -> &'static str {
    let Some(text) = last_user.map(str::trim).filter(|text| !text.is_empty()) else {
        return OPENING_LINE;
    };
    let hash = server::fnv1a(text.to_lowercase().as_bytes());
    let index = usize::try_from(hash % CALLER_LINES.len() as u64).unwrap_or(0);
    CALLER_LINES[index]
}

/// Everything both response shapes are built from.
#[derive(Debug)]
struct Reply {
    id: String,
    created: u64,
    model: String,
    content: String,
    choices: u32,
    prompt_tokens: u64,
    completion_tokens: u64,
}

impl Reply {
    fn usage(&self) -> Value {
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0
            }
        })
    }

    fn completion(&self) -> Value {
        let choices: Vec<Value> = (0..self.choices)
            .map(|index| {
                json!({
                    "index": index,
                    "message": {"role": "assistant", "content": self.content, "refusal": null, "annotations": []},
                    "logprobs": null,
                    "finish_reason": "stop"
                })
            })
            .collect();
        json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": choices,
            "usage": self.usage(),
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT
        })
    }

    fn chunk(&self, choices: Value, include_usage: bool) -> Value {
        let mut chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": choices
        });
        if include_usage {
            // With `include_usage`, OpenAI puts `"usage": null` on every chunk but the last.
            chunk["usage"] = Value::Null;
        }
        chunk
    }

    /// The SSE events: per choice a role delta, content deltas of about a token each and a
    /// `finish_reason`; then the usage chunk if asked for; then `[DONE]`. `malformed` cuts the
    /// second event in half and ends the stream there.
    fn stream(&self, include_usage: bool, malformed: bool) -> Response {
        let mut events = Vec::new();
        for index in 0..self.choices {
            let choice = |delta: Value, finish: Value| json!([{"index": index, "delta": delta, "logprobs": null, "finish_reason": finish}]);
            events.push(self.chunk(
                choice(json!({"role": "assistant", "content": "", "refusal": null}), Value::Null),
                include_usage,
            ));
            for piece in pieces(&self.content) {
                events.push(self.chunk(choice(json!({"content": piece}), Value::Null), include_usage));
            }
            events.push(self.chunk(choice(json!({}), json!("stop")), include_usage));
        }
        if include_usage {
            let mut last = self.chunk(json!([]), false);
            last["usage"] = self.usage();
            events.push(last);
        }
        let mut frames: Vec<String> = events.iter().map(|event| format!("data: {event}\n\n")).collect();
        if malformed {
            frames.truncate(2);
            if let Some(frame) = frames.last_mut() {
                server::cut_in_half(frame);
            }
        } else {
            frames.push("data: [DONE]\n\n".to_owned());
        }
        let body = Body::from_stream(futures::stream::iter(frames.into_iter().map(Ok::<_, Infallible>)));
        ([(header::CONTENT_TYPE, "text/event-stream; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], body)
            .into_response()
    }
}

/// Splits content into token-sized deltas: at whitespace, and long words every 8 characters.
fn pieces(content: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    for word in content.split_inclusive(char::is_whitespace) {
        let chars: Vec<char> = word.chars().collect();
        pieces.extend(chars.chunks(8).map(|chunk| chunk.iter().collect::<String>()));
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_reassemble_to_the_content() {
        for content in ["", "I just feel so alone tonight.", r#"{"score":3,"summary":"Sample summary"}"#, "ééé ü"] {
            assert_eq!(pieces(content).concat(), content);
        }
        assert!(pieces("one two three").len() >= 3);
    }

    #[test]
    fn caller_lines_are_deterministic_and_vary() {
        assert_eq!(
            caller_line(Some("How are you feeling tonight?")),
            caller_line(Some("how are you feeling tonight? "))
        );
        assert_eq!(caller_line(None), OPENING_LINE);
        let distinct: std::collections::BTreeSet<_> =
            ["hello", "what happened?", "are you safe right now?", "tell me more", "who is with you?"]
                .into_iter()
                .map(|line| caller_line(Some(line)))
                .collect();
        assert!(distinct.len() >= 3, "{distinct:?}");
    }

    #[test]
    fn content_parts_are_joined() {
        let parts = json!([{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "b"}]);
        assert_eq!(text_of(Some(&parts)), "a\nb");
        assert_eq!(text_of(None), "");
    }
}
