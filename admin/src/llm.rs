//! Every LLM call goes through here: any OpenAI-compatible endpoint (`OPENAI_BASE_URL`), a model
//! per task, a timeout per attempt, retries with backoff on 429 (honouring `Retry-After`), 5xx,
//! timeouts, dropped connections and unparseable answers, structured outputs whose JSON schema
//! is derived from Rust types, and every call's token usage and estimated cost recorded.
//!
//! The wire types are async-openai's (the OpenAI API as Rust types); the transport is our own
//! reqwest client, because retry policy — what is retried, how long `Retry-After` is honoured,
//! what surfaces as which error — is product behaviour we test against the simulator's fault
//! modes, and async-openai's built-in client retries only rate limits and hides the headers.

use std::time::{Duration, Instant};

use async_openai::types::{
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestUserMessage, CreateChatCompletionRequest, CreateChatCompletionResponse,
    CreateEmbeddingRequest, CreateEmbeddingResponse, EmbeddingInput, ResponseFormat, ResponseFormatJsonSchema,
};
use serde_json::Value;
use store::{LlmCall, LlmTask, Store};

use crate::config::{Config, Secret};
use crate::error::ApiError;
use store::{AccountId, SessionId};

pub type Message = ChatCompletionRequestMessage;

pub fn system(text: impl Into<String>) -> Message {
    ChatCompletionRequestMessage::System(ChatCompletionRequestSystemMessage::from(text.into()))
}

pub fn user(text: impl Into<String>) -> Message {
    ChatCompletionRequestMessage::User(ChatCompletionRequestUserMessage::from(text.into()))
}

pub fn assistant(text: impl Into<String>) -> Message {
    ChatCompletionRequestMessage::Assistant(ChatCompletionRequestAssistantMessage::from(text.into()))
}

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("no AI provider is configured (set OPENAI_API_KEY, and OPENAI_BASE_URL for a compatible server)")]
    NotConfigured,
    #[error("the AI provider is rate limiting requests; try again later")]
    RateLimited { retry_after_secs: Option<u64> },
    #[error("the AI provider failed: {0}")]
    Upstream(String),
    #[error("the AI provider did not answer in time")]
    Timeout,
    #[error("the AI provider's answer could not be used: {0}")]
    Malformed(String),
    #[error("the AI provider refused the request: {0}")]
    Rejected(String),
    /// Refused before calling: the account's monthly budget or the session's token cap is
    /// reached (the message says which and who can change it).
    #[error("{message}")]
    OverBudget { message: String, retry_after_secs: Option<u64> },
    /// The spend could not be checked (the database); nothing was sent.
    #[error("checking the AI budget: {0}")]
    Store(#[from] store::Error),
}

impl From<LlmError> for ApiError {
    fn from(err: LlmError) -> Self {
        match err {
            LlmError::NotConfigured | LlmError::RateLimited { .. } => ApiError::Unavailable(err.to_string()),
            LlmError::OverBudget { message, retry_after_secs } => {
                ApiError::BudgetExceeded { message, retry_after_secs }
            }
            LlmError::Store(e) => e.into(),
            other => ApiError::BadGateway(other.to_string()),
        }
    }
}

/// Whom a call is for, for the usage record.
#[derive(Debug, Clone, Copy)]
pub struct CallFor {
    pub account_id: Option<AccountId>,
    pub session_id: Option<SessionId>,
    pub task: LlmTask,
}

/// A structured answer: the parsed JSON and the text exactly as the model sent it (for audit).
#[derive(Debug, Clone)]
pub struct JsonAnswer {
    pub value: Value,
    pub raw: String,
    pub model: String,
}

/// The configured provider.
#[derive(Debug, Clone)]
pub struct Llm {
    http: reqwest::Client,
    base_url: String,
    api_key: Secret,
    max_retries: u32,
    store: Store,
    pub chat_model: String,
    pub evaluator_model: String,
    pub analyzer_model: String,
    pub embedding_model: String,
}

enum Attempt<T> {
    Done(T),
    Retry { error: LlmError, wait: Option<Duration> },
    Fail(LlmError),
}

impl Llm {
    /// The provider from configuration; `None` without `OPENAI_API_KEY` (AI routes then answer 503).
    pub fn from_config(config: &Config, store: Store) -> anyhow::Result<Option<Llm>> {
        let Some(api_key) = config.openai_api_key.clone() else { return Ok(None) };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(u64::from(config.llm_timeout_secs)))
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(Some(Llm {
            http,
            base_url: config.openai_base_url.trim_end_matches('/').to_owned(),
            api_key,
            max_retries: config.llm_max_retries,
            store,
            chat_model: config.chat_model.clone(),
            evaluator_model: config.evaluator_model.clone(),
            analyzer_model: config.analyzer_model.clone(),
            embedding_model: config.embedding_model.clone(),
        }))
    }

    /// A plain chat completion: the assistant's text.
    pub async fn chat(
        &self,
        call: CallFor,
        model: &str,
        messages: Vec<Message>,
        max_tokens: u32,
    ) -> Result<String, LlmError> {
        let request = CreateChatCompletionRequest {
            model: model.to_owned(),
            messages,
            max_completion_tokens: Some(max_tokens),
            temperature: Some(0.8),
            ..Default::default()
        };
        let (text, _) = self.complete(call, request, |text| Ok(text.to_owned())).await?;
        if text.trim().is_empty() {
            return Err(LlmError::Malformed("empty answer".into()));
        }
        Ok(text)
    }

    /// A structured completion: the answer must be JSON valid against `schema` (named `name`).
    /// An answer that is not JSON counts as a failed attempt and is retried.
    pub async fn json(
        &self,
        call: CallFor,
        model: &str,
        messages: Vec<Message>,
        name: &str,
        schema: Value,
    ) -> Result<JsonAnswer, LlmError> {
        let request = CreateChatCompletionRequest {
            model: model.to_owned(),
            messages,
            temperature: Some(0.0),
            response_format: Some(ResponseFormat::JsonSchema {
                json_schema: ResponseFormatJsonSchema {
                    description: None,
                    name: name.to_owned(),
                    schema: Some(schema),
                    strict: Some(true),
                },
            }),
            ..Default::default()
        };
        let (value, raw) = self
            .complete(call, request, |text| {
                serde_json::from_str::<Value>(text).map_err(|e| LlmError::Malformed(format!("not JSON: {e}")))
            })
            .await?;
        Ok(JsonAnswer { value, raw, model: model.to_owned() })
    }

    /// Embeddings of `inputs`, in order.
    pub async fn embed(&self, call: CallFor, inputs: Vec<String>) -> Result<Vec<Vec<f32>>, LlmError> {
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        let expected = inputs.len();
        let request = CreateEmbeddingRequest {
            model: self.embedding_model.clone(),
            input: EmbeddingInput::StringArray(inputs),
            encoding_format: None,
            user: None,
            dimensions: None,
        };
        self.check_spend(call).await?;
        let model = self.embedding_model.clone();
        let started = Instant::now();
        let result = self
            .with_retries(|| async {
                let response = match self.post("/embeddings", &request).await {
                    Attempt::Done(body) => body,
                    Attempt::Retry { error, wait } => return Attempt::Retry { error, wait },
                    Attempt::Fail(e) => return Attempt::Fail(e),
                };
                match serde_json::from_str::<CreateEmbeddingResponse>(&response) {
                    Ok(parsed) if parsed.data.len() == expected => Attempt::Done(parsed),
                    Ok(parsed) => Attempt::Fail(LlmError::Malformed(format!(
                        "{} embeddings for {expected} inputs",
                        parsed.data.len()
                    ))),
                    Err(e) => {
                        Attempt::Retry { error: LlmError::Malformed(format!("embeddings response: {e}")), wait: None }
                    }
                }
            })
            .await;
        let (outcome, attempts) = result;
        let usage = outcome.as_ref().ok().map(|r| (i64::from(r.usage.prompt_tokens), 0));
        self.record(call, &model, usage, started, attempts, outcome.as_ref().err()).await;
        let mut data = outcome?.data;
        data.sort_by_key(|e| e.index);
        Ok(data.into_iter().map(|e| e.embedding).collect())
    }

    async fn complete<T>(
        &self,
        call: CallFor,
        request: CreateChatCompletionRequest,
        parse: impl Fn(&str) -> Result<T, LlmError>,
    ) -> Result<(T, String), LlmError> {
        self.check_spend(call).await?;
        let started = Instant::now();
        let (outcome, attempts) = self
            .with_retries(|| async {
                let body = match self.post("/chat/completions", &request).await {
                    Attempt::Done(body) => body,
                    Attempt::Retry { error, wait } => return Attempt::Retry { error, wait },
                    Attempt::Fail(e) => return Attempt::Fail(e),
                };
                let response = match serde_json::from_str::<CreateChatCompletionResponse>(&body) {
                    Ok(r) => r,
                    Err(e) => {
                        return Attempt::Retry {
                            error: LlmError::Malformed(format!("chat response: {e}")),
                            wait: None,
                        };
                    }
                };
                let Some(choice) = response.choices.first() else {
                    return Attempt::Retry { error: LlmError::Malformed("no choices".into()), wait: None };
                };
                if let Some(refusal) = &choice.message.refusal {
                    return Attempt::Fail(LlmError::Rejected(format!("the model refused: {refusal}")));
                }
                let text = choice.message.content.clone().unwrap_or_default();
                match parse(&text) {
                    Ok(value) => Attempt::Done((value, text, response.usage.clone())),
                    Err(error) => Attempt::Retry { error, wait: None },
                }
            })
            .await;
        let usage = match &outcome {
            Ok((_, _, Some(u))) => Some((i64::from(u.prompt_tokens), i64::from(u.completion_tokens))),
            _ => None,
        };
        self.record(call, &request.model, usage, started, attempts, outcome.as_ref().err()).await;
        outcome.map(|(value, text, _)| (value, text))
    }

    /// The spending ceiling, checked before every call made for an account: its monthly budget
    /// (all tasks) and, for a chat session's caller, the session's token cap. One indexed query
    /// ([`Store::spend_check`]), so it is cheap; the usage of a call is recorded after it
    /// answers, so concurrent calls of one account that all pass the check may overshoot the
    /// ceiling by at most one call each.
    async fn check_spend(&self, call: CallFor) -> Result<(), LlmError> {
        let Some(account_id) = call.account_id else { return Ok(()) };
        let session = call.session_id.filter(|_| call.task == LlmTask::Chat);
        let check = self.store.spend_check(account_id, session).await?;
        if let Some(refusal) = over_ceiling(&check, store::Timestamp::now()) {
            metrics::counter!("llm_calls_refused_total", "task" => call.task.as_str()).increment(1);
            return Err(refusal);
        }
        Ok(())
    }

    /// Runs `attempt` until it succeeds, fails for good, or the retries are spent; answers the
    /// outcome and how many attempts it took.
    async fn with_retries<T, F, Fut>(&self, attempt: F) -> (Result<T, LlmError>, i64)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Attempt<T>>,
    {
        let mut tries = 0i64;
        loop {
            tries += 1;
            match attempt().await {
                Attempt::Done(value) => return (Ok(value), tries),
                Attempt::Fail(error) => return (Err(error), tries),
                Attempt::Retry { error, wait } => {
                    if tries > i64::from(self.max_retries) {
                        return (Err(error), tries);
                    }
                    // Exponential backoff from 250 ms with jitter; Retry-After wins when given,
                    // capped so a request never hangs for minutes.
                    let backoff = Duration::from_millis(250 * (1u64 << (tries - 1).min(5)));
                    let jitter = Duration::from_millis(u64::from(rand::random::<u8>()));
                    let wait = wait.unwrap_or(backoff + jitter).min(Duration::from_secs(20));
                    tracing::warn!(error = %error, attempt = tries, wait_ms = wait.as_millis() as u64, "LLM call failed; retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// One HTTP attempt: the body of a 2xx answer, or how to go on.
    async fn post<B: serde::Serialize>(&self, path: &str, body: &B) -> Attempt<String> {
        let response = self
            .http
            .post(format!("{}{path}", self.base_url))
            .bearer_auth(self.api_key.expose())
            .json(body)
            .send()
            .await;
        let response = match response {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return Attempt::Retry { error: LlmError::Timeout, wait: None },
            Err(e) => return Attempt::Retry { error: LlmError::Upstream(describe(&e)), wait: None },
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let text = match response.text().await {
            Ok(t) => t,
            Err(e) if e.is_timeout() => return Attempt::Retry { error: LlmError::Timeout, wait: None },
            Err(e) => return Attempt::Retry { error: LlmError::Upstream(describe(&e)), wait: None },
        };
        if status.is_success() {
            return Attempt::Done(text);
        }
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("HTTP {status}"));
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            Attempt::Retry {
                error: LlmError::RateLimited { retry_after_secs: retry_after },
                wait: retry_after.map(Duration::from_secs),
            }
        } else if status.is_server_error() {
            Attempt::Retry { error: LlmError::Upstream(format!("HTTP {status}: {message}")), wait: None }
        } else {
            Attempt::Fail(LlmError::Rejected(format!("HTTP {status}: {message}")))
        }
    }

    async fn record(
        &self,
        call: CallFor,
        model: &str,
        usage: Option<(i64, i64)>,
        started: Instant,
        attempts: i64,
        error: Option<&LlmError>,
    ) {
        let (prompt_tokens, completion_tokens) = usage.unwrap_or((0, 0));
        let record = LlmCall {
            account_id: call.account_id,
            session_id: call.session_id,
            task: call.task,
            model: model.to_owned(),
            prompt_tokens,
            completion_tokens,
            cost_usd: estimated_cost(model, prompt_tokens, completion_tokens),
            latency_ms: started.elapsed().as_millis() as i64,
            attempts,
            error: error.map(ToString::to_string),
        };
        metrics::counter!("llm_calls_total", "task" => call.task.as_str(), "outcome" => if error.is_some() { "error" } else { "ok" })
            .increment(1);
        metrics::histogram!("llm_call_duration_seconds", "task" => call.task.as_str())
            .record(started.elapsed().as_secs_f64());
        if let Err(e) = self.store.record_llm_call(&record).await {
            tracing::warn!(error = %e, "recording LLM usage");
        }
    }
}

/// Why a call must not be made, if the spend reached a limit.
/// The account's monthly budget alone, for work that is not one LLM request: a voice call (its
/// Realtime usage is recorded when it ends) is refused with the same 429 `budget_exceeded` as a
/// chat message once the month's budget is spent.
pub async fn check_monthly_budget(store: &Store, account_id: AccountId) -> Result<(), LlmError> {
    let check = store.spend_check(account_id, None).await?;
    if let Some(refusal) = over_ceiling(&check, store::Timestamp::now()) {
        metrics::counter!("llm_calls_refused_total", "task" => LlmTask::Voice.as_str()).increment(1);
        return Err(refusal);
    }
    Ok(())
}

fn over_ceiling(check: &store::SpendCheck, now: store::Timestamp) -> Option<LlmError> {
    if let Some(budget) = check.budget.monthly_budget_usd
        && check.spent_usd >= budget
    {
        let next = store::month_start(store::Timestamp::from_millis(check.month_start.millis() + 32 * 86_400_000));
        let wait = ((next.millis() - now.millis()).max(0) / 1000) as u64;
        let resets = next.to_string();
        return Some(LlmError::OverBudget {
            message: format!(
                "the account's monthly AI budget of ${budget:.2} is reached (${:.2} spent this month); \
                 an account admin can raise it, or it resets on {}",
                check.spent_usd,
                resets.get(..10).unwrap_or(&resets)
            ),
            retry_after_secs: Some(wait),
        });
    }
    if let Some(cap) = check.budget.session_token_cap
        && check.session_chat_tokens >= cap
    {
        return Some(LlmError::OverBudget {
            message: format!(
                "this chat session reached its AI token cap ({} of {cap} tokens); end it and start a new session, \
                 or ask an account admin to raise the cap",
                check.session_chat_tokens
            ),
            retry_after_secs: None,
        });
    }
    None
}

/// A transport error without the request URL's query or credentials.
fn describe(err: &reqwest::Error) -> String {
    let kind = if err.is_connect() {
        "cannot connect"
    } else if err.is_body() || err.is_decode() {
        "the connection dropped mid-answer"
    } else {
        "request failed"
    };
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(err);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() { kind.to_owned() } else { format!("{kind}: {detail}") }
}

/// Estimated cost in US dollars from list prices per million tokens (input, output). Unknown
/// models cost 0 rather than a guess.
pub fn estimated_cost(model: &str, prompt_tokens: i64, completion_tokens: i64) -> f64 {
    const PRICES: &[(&str, f64, f64)] = &[
        ("gpt-4o-mini", 0.15, 0.60),
        ("gpt-4o", 2.50, 10.00),
        ("gpt-4.1-nano", 0.10, 0.40),
        ("gpt-4.1-mini", 0.40, 1.60),
        ("gpt-4.1", 2.00, 8.00),
        ("gpt-5-mini", 0.25, 2.00),
        ("gpt-5", 1.25, 10.00),
        ("text-embedding-3-small", 0.02, 0.0),
        ("text-embedding-3-large", 0.13, 0.0),
    ];
    PRICES
        .iter()
        .find(|(prefix, _, _)| model.starts_with(prefix))
        .map(|(_, input, output)| (prompt_tokens as f64 * input + completion_tokens as f64 * output) / 1_000_000.0)
        .unwrap_or(0.0)
}

/// Untrusted text inside a `<data>` block of a prompt cannot close the block or open another.
pub fn fence(text: &str) -> String {
    text.replace("</", "<\\/").replace("<data", "<\\data")
}

/// Spells out the allowed values of the schema property at `pointer` (a JSON pointer such as
/// `/$defs/FlagAnswer/properties/severity` or `/properties/mode`).
pub fn restrict(schema: &mut Value, pointer: &str, values: Vec<String>) {
    if let Some(p) = schema.pointer_mut(pointer) {
        p["enum"] = Value::from(values);
    }
}

/// The JSON schema of `T` in the subset OpenAI's strict structured outputs accept: every object
/// closed (`additionalProperties: false`) with all properties required (optional ones are
/// nullable instead), no `format`/`$schema` keywords.
pub fn schema_for<T: schemars::JsonSchema>() -> Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(T)).unwrap_or(Value::Null);
    strictify(&mut schema);
    if let Some(obj) = schema.as_object_mut() {
        obj.remove("$schema");
        obj.remove("title");
    }
    schema
}

fn strictify(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("format");
            if map.get("type").and_then(Value::as_str) == Some("object")
                && let Some(Value::Object(props)) = map.get("properties")
            {
                let keys: Vec<Value> = props.keys().cloned().map(Value::String).collect();
                map.insert("required".into(), Value::Array(keys));
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            for v in map.values_mut() {
                strictify(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strictify),
        _ => {}
    }
}

/// How raw model output appears in logs: its SHA-256 prefix and length, never the text (it can
/// quote a transcript or a complaint's personal details). The full answer stays in the database
/// where one is kept (`raw_output`), to be looked up by the hash.
pub fn log_form(raw: &str) -> String {
    let digest = crate::auth::sha256_hex(raw);
    format!("sha256:{} ({} chars)", &digest[..16], raw.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_output_is_logged_as_a_hash_never_as_text() {
        let raw = r#"{"summary":"Jane Doe, 12 Elm St, said she has pills"}"#;
        let logged = log_form(raw);
        assert!(!logged.contains("Jane") && !logged.contains("Elm") && !logged.contains("pills"), "{logged}");
        assert!(logged.starts_with("sha256:") && logged.ends_with(&format!("({} chars)", raw.chars().count())));
        assert_eq!(logged, log_form(raw), "the same answer logs the same way, to be found by its hash");
    }

    #[derive(serde::Deserialize, schemars::JsonSchema)]
    #[allow(dead_code)]
    struct Sample {
        name: String,
        rating: Option<u8>,
        items: Vec<Inner>,
    }

    #[derive(serde::Deserialize, schemars::JsonSchema)]
    #[allow(dead_code)]
    struct Inner {
        turns: Vec<u32>,
    }

    #[test]
    fn schemas_are_strict() {
        let schema = schema_for::<Sample>();
        assert_eq!(schema["additionalProperties"], false);
        let mut required: Vec<&str> =
            schema["required"].as_array().expect("required").iter().filter_map(Value::as_str).collect();
        required.sort_unstable();
        assert_eq!(required, ["items", "name", "rating"]);
        let text = schema.to_string();
        assert!(!text.contains("\"format\"") && !text.contains("$schema"), "{text}");
        let inner = &schema["$defs"]["Inner"];
        assert_eq!(inner["additionalProperties"], false);
    }

    #[test]
    fn the_ceiling_refuses_at_the_budget_and_at_the_cap() {
        let now = store::Timestamp::parse("2026-03-17T12:00:00Z").expect("time");
        let check = |budget: Option<f64>, cap: Option<i64>, spent: f64, tokens: i64| store::SpendCheck {
            budget: store::AccountBudget { monthly_budget_usd: budget, session_token_cap: cap },
            spent_usd: spent,
            month_start: store::month_start(now),
            session_chat_tokens: tokens,
        };
        assert!(over_ceiling(&check(None, None, 1e9, 1 << 40), now).is_none(), "no limits");
        assert!(over_ceiling(&check(Some(10.0), Some(5_000), 9.99, 4_999), now).is_none(), "under both");
        let Some(LlmError::OverBudget { message, retry_after_secs }) =
            over_ceiling(&check(Some(10.0), None, 10.0, 0), now)
        else {
            panic!("at the budget")
        };
        assert!(message.contains("monthly AI budget of $10.00") && message.contains("2026-04-01"), "{message}");
        // Until 1 April 00:00 UTC: 14 days and 12 hours.
        assert_eq!(retry_after_secs, Some(14 * 86_400 + 12 * 3_600));
        let Some(LlmError::OverBudget { message, retry_after_secs }) =
            over_ceiling(&check(None, Some(5_000), 0.0, 5_000), now)
        else {
            panic!("at the cap")
        };
        assert!(message.contains("5000 of 5000 tokens"), "{message}");
        assert_eq!(retry_after_secs, None);
        // A budget of 0 stops every call.
        assert!(over_ceiling(&check(Some(0.0), None, 0.0, 0), now).is_some());
    }

    #[test]
    fn costs_from_list_prices() {
        assert!((estimated_cost("gpt-4o-2024-08-06", 1_000_000, 100_000) - 3.5).abs() < 1e-9);
        assert!((estimated_cost("gpt-4o-mini", 1_000_000, 0) - 0.15).abs() < 1e-9);
        assert_eq!(estimated_cost("local-llama", 1000, 1000), 0.0);
    }
}
