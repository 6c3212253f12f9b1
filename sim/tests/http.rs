//! The simulator as our production code sees it: real HTTP through reqwest against a started
//! [`Simulator`], plus the `openai-sim` binary and the `/_sim/` control API.

use std::time::{Duration, Instant};

use base64::Engine;
use openai_sim::{Fault, Rule, Simulator};
use reqwest::StatusCode;
use serde_json::{Value, json};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn post(sim: &Simulator, path: &str, body: &Value) -> reqwest::Result<reqwest::Response> {
    client().post(format!("{}{path}", sim.base_url())).bearer_auth("sk-test").json(body).send().await
}

fn chat_body(user: &str) -> Value {
    json!({
        "model": "gpt-4.1-mini",
        "messages": [
            {"role": "system", "content": "You are a caller in crisis."},
            {"role": "user", "content": [{"type": "text", "text": user}]}
        ],
        "temperature": 0.8,
        "max_completion_tokens": 300
    })
}

fn content(completion: &Value) -> &str {
    completion["choices"][0]["message"]["content"].as_str().unwrap_or_default()
}

fn assert_error_shape(body: &Value) {
    let error = &body["error"];
    assert!(error["message"].is_string(), "{body}");
    assert!(error["type"].is_string(), "{body}");
    assert!(error.get("param").is_some() && error.get("code").is_some(), "{body}");
}

#[tokio::test]
async fn plain_chat_has_openai_shape() -> TestResult {
    let sim = Simulator::start().await?;
    let response = post(&sim, "/chat/completions", &chat_body("Hi, this is the crisis line. What's going on?")).await?;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await?;
    assert!(body["id"].as_str().is_some_and(|id| id.starts_with("chatcmpl-")));
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "gpt-4.1-mini");
    assert!(body["created"].as_u64().is_some_and(|created| created > 1_700_000_000));
    assert!(body["system_fingerprint"].is_string());
    let choice = &body["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(choice["logprobs"], Value::Null);
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["refusal"], Value::Null);
    assert_eq!(content(&body), openai_sim::caller_line(Some("Hi, this is the crisis line. What's going on?")));
    let usage = &body["usage"];
    let (prompt, completion) = (usage["prompt_tokens"].as_u64(), usage["completion_tokens"].as_u64());
    assert!(prompt.is_some_and(|p| p > 10) && completion.is_some_and(|c| c > 5), "{usage}");
    assert_eq!(usage["total_tokens"].as_u64(), prompt.zip(completion).map(|(p, c)| p + c));

    // Deterministic: the same conversation gets the same reply.
    let again: Value = post(&sim, "/chat/completions", &chat_body("Hi, this is the crisis line. What's going on?"))
        .await?
        .json()
        .await?;
    assert_eq!(content(&again), content(&body));
    assert_ne!(again["id"], body["id"]);
    Ok(())
}

/// Parses an SSE body into its `data:` payloads.
fn sse_data(text: &str) -> Vec<&str> {
    text.split("\n\n").filter_map(|event| event.strip_prefix("data: ")).collect()
}

#[tokio::test]
async fn streaming_reassembles_to_the_non_streamed_content() -> TestResult {
    let sim = Simulator::start().await?;
    let plain: Value = post(&sim, "/chat/completions", &chat_body("Are you safe right now?")).await?.json().await?;

    let mut body = chat_body("Are you safe right now?");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let response = post(&sim, "/chat/completions", &body).await?;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(content_type.starts_with("text/event-stream"), "{content_type}");
    let text = response.text().await?;
    assert!(text.ends_with("data: [DONE]\n\n"));
    let data = sse_data(&text);
    assert_eq!(data.last(), Some(&"[DONE]"));
    let chunks: Vec<Value> =
        data[..data.len() - 1].iter().map(|chunk| serde_json::from_str(chunk)).collect::<Result<_, _>>()?;
    assert!(chunks.iter().all(|chunk| chunk["object"] == "chat.completion.chunk"));
    assert!(chunks.iter().all(|chunk| chunk["id"] == chunks[0]["id"]));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");

    let deltas: Vec<&str> = chunks
        .iter()
        .filter_map(|chunk| chunk["choices"].get(0)?["delta"]["content"].as_str())
        .filter(|piece| !piece.is_empty())
        .collect();
    assert!(deltas.len() > 3, "{deltas:?}");
    assert_eq!(deltas.concat(), content(&plain));

    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage_chunk = &chunks[chunks.len() - 1];
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"], plain["usage"]);
    Ok(())
}

#[tokio::test]
async fn json_schema_replies_validate_and_strict_schemas_are_checked() -> TestResult {
    let sim = Simulator::start().await?;
    let schema = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["score", "risk", "items", "comment"],
        "properties": {
            "score": {"type": "integer", "minimum": 1, "maximum": 5},
            "risk": {"$ref": "#/$defs/risk"},
            "comment": {"type": ["string", "null"], "maxLength": 20},
            "items": {"type": "array", "minItems": 2, "items": {
                "type": "object", "additionalProperties": false, "required": ["label", "met"],
                "properties": {"label": {"type": "string", "enum": ["rapport", "safety"]}, "met": {"type": "boolean"}}
            }}
        },
        "$defs": {"risk": {"type": "string", "enum": ["low", "high"]}}
    });
    let mut body = chat_body("Grade this transcript.");
    body["response_format"] =
        json!({"type": "json_schema", "json_schema": {"name": "evaluation", "strict": true, "schema": schema}});
    let response: Value = post(&sim, "/chat/completions", &body).await?.json().await?;
    let value: Value = serde_json::from_str(content(&response))?;
    let validator = jsonschema::validator_for(&schema)?;
    assert!(validator.is_valid(&value), "{value}");
    assert_eq!(value["risk"], "low");

    // A schema OpenAI's strict mode refuses is refused here too.
    body["response_format"]["json_schema"]["schema"] =
        json!({"type": "object", "properties": {"a": {"type": "string"}}});
    let refused = post(&sim, "/chat/completions", &body).await?;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let error: Value = refused.json().await?;
    assert_error_shape(&error);
    assert_eq!(error["error"]["param"], "response_format");

    // json_object: needs the word JSON somewhere, answers an object.
    let mut object_body = chat_body("Summarise.");
    object_body["response_format"] = json!({"type": "json_object"});
    assert_eq!(post(&sim, "/chat/completions", &object_body).await?.status(), StatusCode::BAD_REQUEST);
    object_body["messages"][0]["content"] = json!("Answer in JSON.");
    let object: Value = post(&sim, "/chat/completions", &object_body).await?.json().await?;
    assert!(serde_json::from_str::<Value>(content(&object))?.is_object());
    Ok(())
}

#[tokio::test]
async fn embeddings_are_deterministic_and_similar_texts_are_close() -> TestResult {
    let sim = Simulator::start().await?;
    let texts =
        ["I feel so alone and I can't sleep", "I feel alone, I cannot sleep at all", "Invoice totals for March"];
    let request = json!({"model": "text-embedding-3-small", "input": texts});
    let body: Value = post(&sim, "/embeddings", &request).await?.json().await?;
    assert_eq!(body["object"], "list");
    assert_eq!(body["model"], "text-embedding-3-small");
    assert!(body["usage"]["prompt_tokens"].as_u64().is_some_and(|t| t > 0));
    let vectors: Vec<Vec<f32>> = (0..3)
        .map(|i| {
            assert_eq!(body["data"][i]["object"], "embedding");
            assert_eq!(body["data"][i]["index"], i);
            serde_json::from_value(body["data"][i]["embedding"].clone())
        })
        .collect::<Result<_, _>>()?;
    assert!(vectors.iter().all(|v| v.len() == openai_sim::DEFAULT_DIMENSIONS));
    let cosine = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    assert!(cosine(&vectors[0], &vectors[1]) > cosine(&vectors[0], &vectors[2]) + 0.3);

    let again: Value = post(&sim, "/embeddings", &request).await?.json().await?;
    assert_eq!(again["data"], body["data"]);

    // `dimensions` and base64 (little-endian f32) agree with the float form.
    let small = json!({"model": "text-embedding-3-small", "input": texts[0], "dimensions": 32});
    let floats: Value = post(&sim, "/embeddings", &small).await?.json().await?;
    let mut b64_request = small.clone();
    b64_request["encoding_format"] = json!("base64");
    let b64: Value = post(&sim, "/embeddings", &b64_request).await?.json().await?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64["data"][0]["embedding"].as_str().unwrap_or(""))?;
    let decoded: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let expected: Vec<f32> = serde_json::from_value(floats["data"][0]["embedding"].clone())?;
    assert_eq!(decoded, expected);
    assert_eq!(expected.len(), 32);

    let tokens = post(&sim, "/embeddings", &json!({"model": "text-embedding-3-small", "input": [[1, 2, 3]]})).await?;
    assert_eq!(tokens.status(), StatusCode::BAD_REQUEST);
    assert_error_shape(&tokens.json().await?);
    Ok(())
}

#[tokio::test]
async fn models_list_known_and_seen_models() -> TestResult {
    let sim = Simulator::start().await?;
    post(&sim, "/chat/completions", &json!({"model": "my-fine-tune", "messages": [{"role": "user", "content": "x"}]}))
        .await?;
    let list: Value = client().get(format!("{}/models", sim.base_url())).bearer_auth("k").send().await?.json().await?;
    assert_eq!(list["object"], "list");
    let ids: Vec<&str> = list["data"].as_array().into_iter().flatten().filter_map(|m| m["id"].as_str()).collect();
    for id in ["gpt-4.1", "gpt-4o-realtime-preview", "text-embedding-3-small", "my-fine-tune"] {
        assert!(ids.contains(&id), "{ids:?}");
    }
    let one: Value =
        client().get(format!("{}/models/gpt-4.1", sim.base_url())).bearer_auth("k").send().await?.json().await?;
    assert_eq!(one["object"], "model");
    assert_eq!(one["id"], "gpt-4.1");
    let missing = client().get(format!("{}/models/nope", sim.base_url())).bearer_auth("k").send().await?;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(missing.json::<Value>().await?["error"]["code"], "model_not_found");
    Ok(())
}

#[tokio::test]
async fn rules_match_run_in_sequence_and_expire() -> TestResult {
    let sim = Simulator::start().await?;
    sim.add_rule(Rule::chat().last_user_contains("hello").reply_text("first").reply_text("second").times(2));
    sim.add_rule(Rule::chat().schema_name("evaluation").reply_json(json!({"score": 4})));
    sim.add_rule(Rule::chat().model("gpt-4o").contains("SYSTEM PROMPT").reply_text("model-specific"));

    let hello = chat_body("Hello there");
    let replies: Vec<String> = {
        let mut replies = Vec::new();
        for _ in 0..3 {
            let body: Value = post(&sim, "/chat/completions", &hello).await?.json().await?;
            replies.push(content(&body).to_owned());
        }
        replies
    };
    assert_eq!(replies[..2], ["first", "second"]);
    assert_eq!(replies[2], openai_sim::caller_line(Some("Hello there")), "expired rule falls back to the default");

    let mut graded = chat_body("grade");
    graded["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "evaluation", "schema": {}}});
    let body: Value = post(&sim, "/chat/completions", &graded).await?.json().await?;
    assert_eq!(content(&body), r#"{"score":4}"#);

    let mut other_model = chat_body("x");
    other_model["messages"][0]["content"] = json!("system prompt here");
    let body: Value = post(&sim, "/chat/completions", &other_model).await?.json().await?;
    assert_ne!(content(&body), "model-specific");
    other_model["model"] = json!("gpt-4o");
    let body: Value = post(&sim, "/chat/completions", &other_model).await?.json().await?;
    assert_eq!(content(&body), "model-specific");

    let rules = sim.state().rules();
    assert!(rules[0].expired);
    assert_eq!((rules[0].used, rules[1].used, rules[2].used), (2, 1, 1));
    Ok(())
}

#[tokio::test]
async fn status_faults_look_like_openai_errors() -> TestResult {
    let sim = Simulator::start().await?;
    sim.add_rule(Rule::any().fault(Fault::rate_limited(2)).times(1));
    sim.add_rule(Rule::chat().fault(Fault::status(500)).times(1));
    sim.add_rule(Rule::embeddings().fault(Fault::status(503)).times(1));

    let limited = post(&sim, "/chat/completions", &chat_body("x")).await?;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("2"));
    let body: Value = limited.json().await?;
    assert_error_shape(&body);
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");

    let failed = post(&sim, "/chat/completions", &chat_body("x")).await?;
    assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(failed.json::<Value>().await?["error"]["type"], "server_error");

    let overloaded = post(&sim, "/embeddings", &json!({"model": "text-embedding-3-small", "input": "x"})).await?;
    assert_eq!(overloaded.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_error_shape(&overloaded.json().await?);

    // All three expired: back to normal.
    assert_eq!(post(&sim, "/chat/completions", &chat_body("x")).await?.status(), StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn malformed_json_fault_does_not_parse() -> TestResult {
    let sim = Simulator::start().await?;
    sim.add_rule(Rule::chat().fault(Fault::MalformedJson).times(2));
    let response = post(&sim, "/chat/completions", &chat_body("x")).await?;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.json::<Value>().await.is_err());

    let mut streaming = chat_body("x");
    streaming["stream"] = json!(true);
    let text = post(&sim, "/chat/completions", &streaming).await?.text().await?;
    assert!(!text.contains("[DONE]"));
    assert!(sse_data(&text).iter().any(|data| serde_json::from_str::<Value>(data).is_err()));
    Ok(())
}

#[tokio::test]
async fn dropped_connections_and_timeouts_are_request_errors() -> TestResult {
    let sim = Simulator::start().await?;
    sim.add_rule(Rule::chat().fault(Fault::DropConnection).times(1));
    let dropped = post(&sim, "/chat/completions", &chat_body("x")).await;
    let Err(error) = dropped else { panic!("expected a connection error, got {dropped:?}") };
    assert!(error.is_request() && !error.is_timeout(), "{error:?}");

    sim.add_rule(Rule::chat().fault(Fault::Timeout).times(1));
    let hung = client()
        .post(format!("{}/chat/completions", sim.base_url()))
        .bearer_auth("k")
        .timeout(Duration::from_millis(300))
        .json(&chat_body("x"))
        .send()
        .await;
    assert!(hung.as_ref().is_err_and(reqwest::Error::is_timeout), "{hung:?}");

    // The server is still fine afterwards.
    assert_eq!(post(&sim, "/chat/completions", &chat_body("x")).await?.status(), StatusCode::OK);
    sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn latency_delays_the_answer() -> TestResult {
    let sim = Simulator::start().await?;
    sim.add_rule(Rule::chat().latency_ms(250).times(1));
    let started = Instant::now();
    let response = post(&sim, "/chat/completions", &chat_body("x")).await?;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(250));
    let started = Instant::now();
    post(&sim, "/chat/completions", &chat_body("x")).await?;
    assert!(started.elapsed() < Duration::from_millis(250));
    Ok(())
}

#[tokio::test]
async fn requests_are_recorded_without_secrets() -> TestResult {
    let sim = Simulator::start().await?;
    post(&sim, "/chat/completions", &chat_body("record me")).await?;
    post(&sim, "/embeddings", &json!({"model": "text-embedding-3-small", "input": "e"})).await?;
    let requests = sim.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!((requests[0].method.as_str(), requests[0].path.as_str()), ("POST", "/v1/chat/completions"));
    assert_eq!(requests[0].headers.get("authorization").map(String::as_str), Some("[redacted]"));
    assert!(!format!("{requests:?}").contains("sk-test"));
    assert_eq!(sim.chat_requests()[0]["messages"][1]["content"][0]["text"], "record me");
    assert_eq!(sim.embedding_requests()[0]["input"], "e");
    sim.clear_requests();
    assert!(sim.requests().is_empty());
    Ok(())
}

#[tokio::test]
async fn protocol_errors_use_openai_shape() -> TestResult {
    let sim = Simulator::start().await?;
    let url = format!("{}/chat/completions", sim.base_url());

    let unauthorized = client().post(&url).json(&chat_body("x")).send().await?;
    assert_eq!(unauthorized.status(), StatusCode::UNAUTHORIZED);
    assert_error_shape(&unauthorized.json().await?);
    let empty_token = client().post(&url).header("authorization", "Bearer ").json(&chat_body("x")).send().await?;
    assert_eq!(empty_token.status(), StatusCode::UNAUTHORIZED);

    let malformed = client()
        .post(&url)
        .bearer_auth("k")
        .header("content-type", "application/json")
        .body("{\"model\": ")
        .send()
        .await?;
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert_error_shape(&malformed.json().await?);

    let missing = post(&sim, "/chat/completions", &json!({"model": "gpt-4.1"})).await?;
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    assert_eq!(missing.json::<Value>().await?["error"]["param"], "messages");

    for response in [
        client().get(format!("{}/nope", sim.base_url())).bearer_auth("k").send().await?,
        client().get(&url).bearer_auth("k").send().await?,
    ] {
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let body: Value = response.json().await?;
        assert_error_shape(&body);
        assert!(body["error"]["message"].as_str().is_some_and(|m| m.starts_with("Invalid URL")), "{body}");
    }
    Ok(())
}

#[tokio::test]
async fn control_api_scripts_and_inspects_over_http() -> TestResult {
    let sim = Simulator::start().await?;
    let control = sim.control_url();
    let http = client();
    assert_eq!(http.get(format!("{control}/health")).send().await?.text().await?, "ok");

    let rules = json!([
        {"endpoint": "chat", "lastUserContains": "plan", "reply": {"text": "scripted"}, "times": 1},
        {"endpoint": "embeddings", "fault": {"kind": "status", "status": 429, "retryAfterSecs": 1}}
    ]);
    let added = http.post(format!("{control}/rules")).json(&rules).send().await?;
    assert_eq!(added.status(), StatusCode::CREATED);
    assert_eq!(added.json::<Value>().await?["added"], 2);

    let body: Value = post(&sim, "/chat/completions", &chat_body("Let's make a plan")).await?.json().await?;
    assert_eq!(content(&body), "scripted");
    let limited = post(&sim, "/embeddings", &json!({"model": "m", "input": "x"})).await?;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);

    let listed: Value = http.get(format!("{control}/rules")).send().await?.json().await?;
    assert_eq!(listed[0]["used"], 1);
    assert_eq!(listed[0]["expired"], true);
    assert_eq!(listed[1]["rule"]["fault"]["status"], 429);

    let recorded: Value =
        http.get(format!("{control}/requests?path=/v1/chat/completions")).send().await?.json().await?;
    assert_eq!(recorded.as_array().map(Vec::len), Some(1));
    assert_eq!(recorded[0]["body"]["model"], "gpt-4.1-mini");

    let bad =
        http.post(format!("{control}/rules")).json(&json!({"fault": {"kind": "status", "status": 200}})).send().await?;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let typo = http.post(format!("{control}/rules")).json(&json!({"endpiont": "chat"})).send().await?;
    assert_eq!(typo.status(), StatusCode::BAD_REQUEST);

    assert_eq!(http.delete(format!("{control}/rules")).send().await?.status(), StatusCode::NO_CONTENT);
    assert_eq!(post(&sim, "/embeddings", &json!({"model": "m", "input": "x"})).await?.status(), StatusCode::OK);
    assert_eq!(http.delete(format!("{control}/requests")).send().await?.status(), StatusCode::NO_CONTENT);
    assert!(sim.requests().is_empty());
    http.post(format!("{control}/rules")).json(&rules[0]).send().await?;
    assert_eq!(http.post(format!("{control}/reset")).send().await?.status(), StatusCode::NO_CONTENT);
    assert!(sim.state().rules().is_empty());
    Ok(())
}

#[tokio::test]
async fn embedded_router_degrades_dropped_connections_to_a_broken_body() -> TestResult {
    let state = openai_sim::SimState::new();
    state.add_rule(Rule::any().fault(Fault::DropConnection));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, openai_sim::router(state)).await });
    let result = async {
        client()
            .post(format!("http://{addr}/v1/chat/completions"))
            .bearer_auth("k")
            .json(&chat_body("x"))
            .send()
            .await?
            .bytes()
            .await
    }
    .await;
    assert!(result.is_err(), "{result:?}");
    Ok(())
}

#[tokio::test]
async fn binary_serves_with_rules_from_a_file() -> TestResult {
    use tokio::io::AsyncBufReadExt;
    let dir = std::env::temp_dir().join(format!("openai-sim-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let rules = dir.join("rules.json");
    std::fs::write(&rules, json!([{"endpoint": "chat", "reply": {"text": "from file"}}]).to_string())?;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_openai-sim"))
        .args(["--bind", "127.0.0.1:0", "--rules"])
        .arg(&rules)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let base_url = tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await??.ok_or("no base URL")?;
    assert!(base_url.starts_with("http://127.0.0.1:") && base_url.ends_with("/v1"), "{base_url}");
    let body: Value = client()
        .post(format!("{base_url}/chat/completions"))
        .bearer_auth("k")
        .json(&chat_body("x"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(content(&body), "from file");
    child.kill().await?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
