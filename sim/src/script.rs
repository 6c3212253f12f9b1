//! Scripting and inspection: the rules a test installs and the requests the simulator saw.
//!
//! A [`Rule`] pairs a matcher (endpoint, substrings, model, schema name) with what to do on a
//! match (replies in sequence, a fault, extra latency) and how often (`times`). Rules are tried in
//! the order they were added; the first one that matches and has not expired decides, otherwise the
//! endpoint's default (deterministic) behaviour answers. [`SimState`] holds the rules and the
//! recorded requests behind a cheap-to-clone handle shared by the server, the Rust API and the
//! `/_sim/` control API, so all three see the same script.
//!
//! The types derive serde in camelCase, so the control API and `--rules` files accept exactly what
//! `serde_json::to_value(&rule)` produces.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::realtime::record::{Direction, RealtimeConnection, RealtimeEvent};
use crate::realtime::voice::TtsMode;

/// Which API a rule applies to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// Every `/v1` endpoint.
    #[default]
    Any,
    /// `POST /v1/chat/completions`.
    Chat,
    /// `POST /v1/embeddings`.
    Embeddings,
    /// `GET /v1/models` and `GET /v1/models/{id}`.
    Models,
    /// The Realtime WebSocket, `GET /v1/realtime`: matched per response (and, for `status` and
    /// `session_cap` faults, per connection). `any` rules never apply to it.
    Realtime,
}

/// One scripted chat reply: the assistant message's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// Content as given, e.g. `{"text": "I just feel so alone."}`.
    Text(String),
    /// A JSON value serialised (compactly) as the content, e.g. `{"json": {"score": 3}}`; the
    /// usual answer to a `json_schema` request. It is not checked against the request's schema,
    /// so a test can also script a model that breaks the schema.
    Json(Value),
}

impl Reply {
    /// The message content this reply stands for.
    pub fn content(&self) -> String {
        match self {
            Reply::Text(text) => text.clone(),
            Reply::Json(value) => value.to_string(),
        }
    }
}

/// A scripted failure, answered instead of (or, for `malformed_json`, in place of) the reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", rename_all_fields = "camelCase", deny_unknown_fields)]
pub enum Fault {
    /// An error status with OpenAI's error body: 429 as `rate_limit_exceeded` (with a
    /// `Retry-After` header when `retry_after_secs` is set), 5xx as `server_error`.
    Status {
        /// HTTP status, 400–599.
        status: u16,
        /// Seconds for the `Retry-After` header.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_secs: Option<u64>,
    },
    /// 200 with the real response body cut off halfway, so it does not parse.
    MalformedJson,
    /// Close the TCP connection without answering (the client sees an incomplete message).
    DropConnection,
    /// Never answer (until the client gives up or the simulator shuts down). On the Realtime
    /// socket the same as `stall`.
    Timeout,
    /// Realtime: stop sending mid-response (nothing more, ever) but keep the socket open and keep
    /// reading. Elsewhere the same as `timeout`.
    Stall,
    /// Realtime only, matched when a socket connects: after `after_ms` the server sends the error
    /// event OpenAI sends at its session cap (`session_expired`) and closes the socket. In a rule
    /// with an `utterance`, the cap strikes mid-way through that utterance's answer instead
    /// (`after_ms` unused), so a test can hit the cap mid-answer deterministically.
    SessionCap {
        /// Milliseconds from the upgrade to the cap.
        after_ms: u64,
    },
}

impl Fault {
    /// 429 with `Retry-After: secs`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Fault::Status { status: 429, retry_after_secs: Some(retry_after_secs) }
    }

    /// An error status without `Retry-After`.
    pub fn status(status: u16) -> Self {
        Fault::Status { status, retry_after_secs: None }
    }
}

/// A scripted behaviour: matcher + response + fault + expiry. Build with [`Rule::chat`],
/// [`Rule::embeddings`], [`Rule::models`] or [`Rule::any`] and the chained setters.
///
/// Matching: every condition that is set must hold. `contains` and `lastUserContains` are
/// case-insensitive substrings; `model` and `schemaName` are exact.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    /// The endpoint the rule applies to (default: any).
    #[serde(default)]
    pub endpoint: Endpoint,
    /// Substring of all message contents joined (chat) or of all inputs joined (embeddings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<String>,
    /// Substring of the last `user` message (chat only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_user_contains: Option<String>,
    /// The request's `model`, exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `response_format.json_schema.name`, exactly (chat only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_name: Option<String>,
    /// Chat replies used in sequence, one per matching request; the last one repeats. Empty: the
    /// default reply. JSON accepts `reply` (one) or `replies` (a list).
    #[serde(default, alias = "reply", deserialize_with = "one_or_many", skip_serializing_if = "Vec::is_empty")]
    pub replies: Vec<Reply>,
    /// A failure to answer with instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<Fault>,
    /// Delay before answering (or before the fault).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// The rule applies this many times, then expires. Unset: forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
    /// Realtime: match only the Nth user turn on a socket — an audio turn committed, or a user
    /// message item created (a re-seeded conversation) — 1-based; 0 is a response before any
    /// user turn, e.g. the caller speaking first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utterance: Option<u32>,
    /// Realtime: the input transcription of the user's utterance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript: Option<String>,
    /// Realtime: wait this long after the commit before sending the transcription (the response
    /// does not wait for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript_delay_ms: Option<u64>,
    /// Realtime: send the transcription only after the turn's `response.done` (an ordering test).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub transcript_after_response: bool,
    /// Realtime: the transcription fails (`...input_audio_transcription.failed`) instead.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub transcript_fails: bool,
}

fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Reply>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(Reply),
        Many(Vec<Reply>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(reply) => vec![reply],
        OneOrMany::Many(replies) => replies,
    })
}

impl Rule {
    /// A rule for any endpoint.
    pub fn any() -> Self {
        Self::default()
    }

    /// A rule for chat completions.
    pub fn chat() -> Self {
        Self { endpoint: Endpoint::Chat, ..Self::default() }
    }

    /// A rule for embeddings.
    pub fn embeddings() -> Self {
        Self { endpoint: Endpoint::Embeddings, ..Self::default() }
    }

    /// A rule for the models endpoints.
    pub fn models() -> Self {
        Self { endpoint: Endpoint::Models, ..Self::default() }
    }

    /// A rule for the Realtime WebSocket; see the setters [`Rule::utterance`],
    /// [`Rule::transcript`], [`Rule::reply_text`] (the caller's spoken reply), [`Rule::fault`],
    /// [`Rule::latency_ms`] (before the first audio delta).
    pub fn realtime() -> Self {
        Self { endpoint: Endpoint::Realtime, ..Self::default() }
    }

    /// Realtime: match only the Nth user audio turn on a socket (1-based; 0 = before any).
    pub fn utterance(mut self, n: u32) -> Self {
        self.utterance = Some(n);
        self
    }

    /// Realtime: the user's utterance is transcribed as `text`.
    pub fn transcript(mut self, text: impl Into<String>) -> Self {
        self.transcript = Some(text.into());
        self
    }

    /// Realtime: the transcription arrives this long after the commit.
    pub fn transcript_delay_ms(mut self, ms: u64) -> Self {
        self.transcript_delay_ms = Some(ms);
        self
    }

    /// Realtime: the transcription arrives after the turn's `response.done`.
    pub fn transcript_after_response(mut self) -> Self {
        self.transcript_after_response = true;
        self
    }

    /// Realtime: the transcription fails (at the time it would have arrived).
    pub fn transcript_fails(mut self) -> Self {
        self.transcript_fails = true;
        self
    }

    /// Match only when the joined message contents (or inputs) contain `needle`, ignoring case.
    pub fn contains(mut self, needle: impl Into<String>) -> Self {
        self.contains = Some(needle.into());
        self
    }

    /// Match only when the last user message contains `needle`, ignoring case.
    pub fn last_user_contains(mut self, needle: impl Into<String>) -> Self {
        self.last_user_contains = Some(needle.into());
        self
    }

    /// Match only requests for this model.
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Match only `json_schema` requests whose schema has this name.
    pub fn schema_name(mut self, name: impl Into<String>) -> Self {
        self.schema_name = Some(name.into());
        self
    }

    /// Append a text reply; several calls make a sequence.
    pub fn reply_text(mut self, text: impl Into<String>) -> Self {
        self.replies.push(Reply::Text(text.into()));
        self
    }

    /// Append a JSON reply (serialised as the content); several calls make a sequence.
    pub fn reply_json(mut self, value: Value) -> Self {
        self.replies.push(Reply::Json(value));
        self
    }

    /// Answer with this fault instead.
    pub fn fault(mut self, fault: Fault) -> Self {
        self.fault = Some(fault);
        self
    }

    /// Wait this long before answering.
    pub fn latency_ms(mut self, ms: u64) -> Self {
        self.latency_ms = Some(ms);
        self
    }

    /// Expire after `n` matches.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    /// Checks what serde cannot: a status fault must be an error status. Used for rules that
    /// arrive as JSON (control API, `--rules`), where a typo should be a clear 400, not a
    /// confusing answer later.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(Fault::Status { status, .. }) = self.fault
            && !(400..=599).contains(&status)
        {
            return Err(format!("fault status must be 400-599, got {status}"));
        }
        if self.endpoint == Endpoint::Realtime {
            if self.last_user_contains.is_some() || self.schema_name.is_some() {
                return Err(
                    "realtime rules match on model, contains (the session instructions) and utterance only".into()
                );
            }
        } else if self.utterance.is_some()
            || self.transcript.is_some()
            || self.transcript_delay_ms.is_some()
            || self.transcript_after_response
            || self.transcript_fails
            || matches!(self.fault, Some(Fault::SessionCap { .. }))
        {
            return Err("utterance, transcript*, and session_cap need \"endpoint\": \"realtime\"".into());
        }
        Ok(())
    }

    /// Whether this realtime rule is decided when a socket connects (rather than per response):
    /// a `session_cap` with an `utterance` strikes mid-way through that utterance's answer instead.
    fn at_connect(&self) -> bool {
        match self.fault {
            Some(Fault::Status { .. }) => true,
            Some(Fault::SessionCap { .. }) => self.utterance.is_none(),
            _ => false,
        }
    }

    fn matches_realtime(&self, call: &RealtimeCall<'_>) -> bool {
        self.endpoint == Endpoint::Realtime
            && self.at_connect() == call.utterance.is_none()
            && self.model.as_deref().is_none_or(|model| call.model == model)
            && self.contains.as_deref().is_none_or(|needle| contains_ignoring_case(call.instructions, needle))
            && self.utterance.is_none_or(|n| call.utterance == Some(n))
    }

    fn matches(&self, call: &Call<'_>) -> bool {
        (self.endpoint == Endpoint::Any || self.endpoint == call.endpoint)
            && self.model.as_deref().is_none_or(|model| call.model == Some(model))
            && self.schema_name.as_deref().is_none_or(|name| call.schema_name == Some(name))
            && self.contains.as_deref().is_none_or(|needle| contains_ignoring_case(call.text, needle))
            && self
                .last_user_contains
                .as_deref()
                .is_none_or(|needle| call.last_user.is_some_and(|text| contains_ignoring_case(text, needle)))
    }
}

/// Rules from JSON — one rule object or an array of them — each checked with [`Rule::validate`].
/// The format of `POST /_sim/rules` bodies and `--rules` files.
pub fn rules_from_json(value: Value) -> Result<Vec<Rule>, String> {
    let values = match value {
        Value::Array(values) => values,
        value => vec![value],
    };
    values
        .into_iter()
        .enumerate()
        .map(|(index, value)| {
            // One at a time, so a mistake is reported with serde's message and the rule's index.
            let rule: Rule = serde_json::from_value(value).map_err(|error| format!("rule {index}: {error}"))?;
            rule.validate().map_err(|reason| format!("rule {index}: {reason}"))?;
            Ok(rule)
        })
        .collect()
}

fn contains_ignoring_case(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

/// A rule and how often it has matched, as `GET /_sim/rules` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleStatus {
    /// The rule as added.
    pub rule: Rule,
    /// How many requests it has answered.
    pub used: u32,
    /// Whether `times` is used up.
    pub expired: bool,
}

/// One request the simulator received under `/v1`, in arrival order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedRequest {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Path without the query, e.g. `/v1/chat/completions`.
    pub path: String,
    /// Header names (lowercase) to values; `authorization` is recorded as `[redacted]`.
    pub headers: BTreeMap<String, String>,
    /// The JSON body; `null` when empty or not JSON.
    pub body: Value,
    /// Arrival time, Unix milliseconds.
    pub received_at_ms: u64,
}

/// What a request looks like to the matcher.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call<'a> {
    pub endpoint: Endpoint,
    pub model: Option<&'a str>,
    pub text: &'a str,
    pub last_user: Option<&'a str>,
    pub schema_name: Option<&'a str>,
}

/// What the matching rule (if any) asks for.
#[derive(Debug, Clone, Default)]
pub(crate) struct Plan {
    pub reply: Option<Reply>,
    pub fault: Option<Fault>,
    pub latency: Option<Duration>,
}

impl Plan {
    pub fn malformed(&self) -> bool {
        self.fault == Some(Fault::MalformedJson)
    }
}

/// What a Realtime connection or turn looks like to the matcher. `utterance` is `None` at
/// connect time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RealtimeCall<'a> {
    pub model: &'a str,
    pub instructions: &'a str,
    pub utterance: Option<u32>,
}

/// What the matching realtime rule (if any) asks of one turn.
#[derive(Debug, Clone, Default)]
pub(crate) struct TurnPlan {
    pub reply: Option<String>,
    pub transcript: Option<String>,
    pub transcript_delay: Option<Duration>,
    pub transcript_after_response: bool,
    pub transcript_fails: bool,
    pub fault: Option<Fault>,
    pub latency: Option<Duration>,
}

#[derive(Debug)]
struct Slot {
    rule: Rule,
    used: u32,
}

impl Slot {
    fn expired(&self) -> bool {
        self.rule.times.is_some_and(|times| self.used >= times)
    }
}

#[derive(Debug, Default)]
struct Inner {
    rules: Mutex<Vec<Slot>>,
    requests: Mutex<Vec<RecordedRequest>>,
    models_seen: Mutex<BTreeSet<String>>,
    realtime: Mutex<Vec<RealtimeConnection>>,
    tts: Mutex<TtsMode>,
    ids: AtomicU64,
}

/// The simulator's shared state: rules, recorded requests, models seen. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct SimState {
    inner: Arc<Inner>,
}

/// A panicking test thread must not wedge every later request, so poisoned locks are entered anyway:
/// each critical section leaves the data consistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SimState {
    /// Empty state: no rules, nothing recorded.
    pub fn new() -> Self {
        Self::default()
    }

    /// Append a rule (tried after those already added).
    pub fn add_rule(&self, rule: Rule) {
        lock(&self.inner.rules).push(Slot { rule, used: 0 });
    }

    /// Append several rules in order.
    pub fn add_rules(&self, rules: impl IntoIterator<Item = Rule>) {
        lock(&self.inner.rules).extend(rules.into_iter().map(|rule| Slot { rule, used: 0 }));
    }

    /// Remove every rule.
    pub fn clear_rules(&self) {
        lock(&self.inner.rules).clear();
    }

    /// The rules with their use counts, in matching order.
    pub fn rules(&self) -> Vec<RuleStatus> {
        lock(&self.inner.rules)
            .iter()
            .map(|slot| RuleStatus { rule: slot.rule.clone(), used: slot.used, expired: slot.expired() })
            .collect()
    }

    /// Every recorded request, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.inner.requests).clone()
    }

    /// The bodies of recorded `POST /v1/chat/completions` requests, oldest first.
    pub fn chat_requests(&self) -> Vec<Value> {
        self.bodies("/v1/chat/completions")
    }

    /// The bodies of recorded `POST /v1/embeddings` requests, oldest first.
    pub fn embedding_requests(&self) -> Vec<Value> {
        self.bodies("/v1/embeddings")
    }

    fn bodies(&self, path: &str) -> Vec<Value> {
        lock(&self.inner.requests)
            .iter()
            .filter(|request| request.method == "POST" && request.path == path)
            .map(|request| request.body.clone())
            .collect()
    }

    /// Forget the recorded requests.
    pub fn clear_requests(&self) {
        lock(&self.inner.requests).clear();
    }

    /// Forget rules, recorded requests, recorded Realtime events and models seen.
    pub fn reset(&self) {
        self.clear_rules();
        self.clear_requests();
        self.clear_realtime();
        lock(&self.inner.models_seen).clear();
    }

    /// Every Realtime connection with its events, oldest first (open ones too).
    pub fn realtime_connections(&self) -> Vec<RealtimeConnection> {
        lock(&self.inner.realtime).clone()
    }

    /// The events of every Realtime connection in one direction, oldest connection first.
    pub fn realtime_events(&self, direction: Direction) -> Vec<Value> {
        lock(&self.inner.realtime)
            .iter()
            .flat_map(|connection| connection.events.iter())
            .filter(|event| event.direction == direction)
            .map(|event| event.event.clone())
            .collect()
    }

    /// Forget the recorded Realtime connections (open sockets keep recording into fresh records).
    pub fn clear_realtime(&self) {
        lock(&self.inner.realtime).clear();
    }

    /// How Realtime replies are voiced (default: espeak-ng when on `PATH`, else tones).
    pub fn set_tts_mode(&self, mode: TtsMode) {
        *lock(&self.inner.tts) = mode;
    }

    pub(crate) fn tts_mode(&self) -> TtsMode {
        *lock(&self.inner.tts)
    }

    pub(crate) fn open_realtime(&self, model: &str) -> u64 {
        let id = self.next_id();
        lock(&self.inner.realtime).push(RealtimeConnection {
            id,
            model: model.to_owned(),
            opened_at_ms: crate::server::now_ms(),
            closed_at_ms: None,
            close_reason: None,
            events: Vec::new(),
        });
        id
    }

    fn with_realtime(&self, id: u64, model_if_missing: &str, f: impl FnOnce(&mut RealtimeConnection)) {
        let mut connections = lock(&self.inner.realtime);
        if let Some(connection) = connections.iter_mut().rev().find(|connection| connection.id == id) {
            f(connection);
            return;
        }
        // Cleared while open: start a fresh record under the same id.
        let mut connection = RealtimeConnection {
            id,
            model: model_if_missing.to_owned(),
            opened_at_ms: crate::server::now_ms(),
            closed_at_ms: None,
            close_reason: None,
            events: Vec::new(),
        };
        f(&mut connection);
        connections.push(connection);
    }

    pub(crate) fn record_realtime(&self, id: u64, event: RealtimeEvent) {
        self.with_realtime(id, "", |connection| connection.push(event));
    }

    pub(crate) fn close_realtime(&self, id: u64, reason: &str) {
        self.with_realtime(id, "", |connection| {
            connection.closed_at_ms = Some(crate::server::now_ms());
            connection.close_reason = Some(reason.to_owned());
        });
    }

    pub(crate) fn record(&self, request: RecordedRequest) {
        lock(&self.inner.requests).push(request);
    }

    /// Finds the first live rule matching `call`, counts the use and says what to do.
    pub(crate) fn plan(&self, call: &Call<'_>) -> Plan {
        let mut rules = lock(&self.inner.rules);
        let Some(slot) = rules.iter_mut().find(|slot| !slot.expired() && slot.rule.matches(call)) else {
            return Plan::default();
        };
        let index = usize::try_from(slot.used).unwrap_or(usize::MAX);
        let reply = slot.rule.replies.get(index).or(slot.rule.replies.last()).cloned();
        slot.used = slot.used.saturating_add(1);
        Plan { reply, fault: slot.rule.fault.clone(), latency: slot.rule.latency_ms.map(Duration::from_millis) }
    }

    /// Plans a Realtime turn (`call.utterance` set) or connection (`None`): the first live
    /// realtime rule of the matching kind decides.
    pub(crate) fn plan_realtime(&self, call: &RealtimeCall<'_>) -> TurnPlan {
        let mut rules = lock(&self.inner.rules);
        let Some(slot) = rules.iter_mut().find(|slot| !slot.expired() && slot.rule.matches_realtime(call)) else {
            return TurnPlan::default();
        };
        let index = usize::try_from(slot.used).unwrap_or(usize::MAX);
        let reply = slot.rule.replies.get(index).or(slot.rule.replies.last()).map(Reply::content);
        slot.used = slot.used.saturating_add(1);
        let rule = &slot.rule;
        TurnPlan {
            reply,
            transcript: rule.transcript.clone(),
            transcript_delay: rule.transcript_delay_ms.map(Duration::from_millis),
            transcript_after_response: rule.transcript_after_response,
            transcript_fails: rule.transcript_fails,
            fault: rule.fault.clone(),
            latency: rule.latency_ms.map(Duration::from_millis),
        }
    }

    pub(crate) fn note_model(&self, model: &str) {
        let mut seen = lock(&self.inner.models_seen);
        if !seen.contains(model) {
            seen.insert(model.to_owned());
        }
    }

    pub(crate) fn models_seen(&self) -> Vec<String> {
        lock(&self.inner.models_seen).iter().cloned().collect()
    }

    /// A fresh number for response ids.
    pub(crate) fn next_id(&self) -> u64 {
        self.inner.ids.fetch_add(1, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chat_call<'a>(text: &'a str, last_user: &'a str) -> Call<'a> {
        Call { endpoint: Endpoint::Chat, model: Some("gpt-4.1"), text, last_user: Some(last_user), schema_name: None }
    }

    #[test]
    fn first_live_matching_rule_wins_and_expires_after_times() {
        let state = SimState::new();
        state.add_rule(Rule::chat().last_user_contains("HELLO").reply_text("first").times(1));
        state.add_rule(Rule::chat().reply_text("fallback"));
        let call = chat_call("system\nhello there", "hello there");
        assert_eq!(state.plan(&call).reply, Some(Reply::Text("first".into())));
        assert_eq!(state.plan(&call).reply, Some(Reply::Text("fallback".into())));
        let rules = state.rules();
        assert!(rules[0].expired);
        assert_eq!(rules[1].used, 1);
    }

    #[test]
    fn replies_run_in_sequence_and_the_last_repeats() {
        let state = SimState::new();
        state.add_rule(Rule::chat().reply_text("a").reply_json(json!({"b": 1})));
        let call = chat_call("x", "x");
        let contents: Vec<_> = (0..3).filter_map(|_| state.plan(&call).reply.map(|r| r.content())).collect();
        assert_eq!(contents, ["a", r#"{"b":1}"#, r#"{"b":1}"#]);
    }

    #[test]
    fn conditions_must_all_hold() {
        let state = SimState::new();
        state.add_rule(Rule::embeddings().reply_text("no"));
        state.add_rule(Rule::chat().model("gpt-4o").reply_text("no"));
        state.add_rule(Rule::chat().schema_name("evaluation").reply_text("no"));
        state.add_rule(Rule::chat().contains("absent").reply_text("no"));
        assert!(state.plan(&chat_call("present", "present")).reply.is_none());
    }

    #[test]
    fn rules_round_trip_through_json_and_accept_reply_or_replies() -> Result<(), serde_json::Error> {
        let rule = Rule::any().contains("x").fault(Fault::rate_limited(2)).latency_ms(5).times(3);
        let value = serde_json::to_value(&rule)?;
        assert_eq!(
            value,
            json!({"endpoint": "any", "contains": "x", "fault": {"kind": "status", "status": 429, "retryAfterSecs": 2},
                   "latencyMs": 5, "times": 3})
        );
        assert_eq!(serde_json::from_value::<Rule>(value)?, rule);
        let one: Rule = serde_json::from_value(json!({"endpoint": "chat", "reply": {"text": "hi"}}))?;
        assert_eq!(one, Rule::chat().reply_text("hi"));
        let many: Rule = serde_json::from_value(json!({"replies": [{"text": "a"}, {"json": {"k": 1}}]}))?;
        assert_eq!(many.replies.len(), 2);
        assert!(serde_json::from_value::<Rule>(json!({"endpiont": "chat"})).is_err());
        assert!(serde_json::from_value::<Rule>(json!({"fault": {"kind": "drop_connection"}}))?.validate().is_ok());
        assert!(Rule::any().fault(Fault::status(200)).validate().is_err());
        Ok(())
    }

    #[test]
    fn realtime_rules_parse_from_json_and_keep_to_their_endpoint() -> Result<(), String> {
        let rules = rules_from_json(json!([
            {"endpoint": "realtime", "utterance": 2, "transcript": "Are you safe?", "reply": {"text": "Yes."},
             "transcriptDelayMs": 100, "transcriptAfterResponse": true, "latencyMs": 300},
            {"endpoint": "realtime", "fault": {"kind": "session_cap", "afterMs": 3000}, "times": 1},
            {"endpoint": "realtime", "fault": {"kind": "stall"}}
        ]))?;
        assert_eq!(
            rules[0],
            Rule::realtime()
                .utterance(2)
                .transcript("Are you safe?")
                .reply_text("Yes.")
                .transcript_delay_ms(100)
                .transcript_after_response()
                .latency_ms(300)
        );
        assert_eq!(rules[1].fault, Some(Fault::SessionCap { after_ms: 3000 }));
        assert!(rules_from_json(json!({"endpoint": "chat", "utterance": 1})).is_err());
        assert!(rules_from_json(json!({"fault": {"kind": "session_cap", "afterMs": 1}})).is_err());
        assert!(rules_from_json(json!({"endpoint": "realtime", "lastUserContains": "x"})).is_err());

        let state = SimState::new();
        state.add_rules(rules);
        state.add_rule(Rule::chat().reply_text("chat"));
        let turn = |utterance| RealtimeCall { model: "gpt-realtime", instructions: "", utterance: Some(utterance) };
        assert_eq!(state.plan_realtime(&turn(2)).transcript.as_deref(), Some("Are you safe?"));
        assert_eq!(state.plan_realtime(&turn(1)).fault, Some(Fault::Stall), "connect-time rules skip turns");
        let connect = RealtimeCall { model: "gpt-realtime", instructions: "", utterance: None };
        assert_eq!(state.plan_realtime(&connect).fault, Some(Fault::SessionCap { after_ms: 3000 }));
        assert_eq!(state.plan_realtime(&connect).fault, None, "used up");
        Ok(())
    }
}
