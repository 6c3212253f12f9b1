//! `POST /v1/embeddings`: deterministic vectors where similar texts are close.
//!
//! [`embed`] is feature hashing: lowercase word unigrams and character trigrams of each word
//! (padded with spaces, so prefixes and suffixes count) are hashed into `dimensions` buckets with a
//! hashed sign, then the vector is L2-normalised. Texts sharing words and word pieces get a high
//! cosine similarity; unrelated texts land near zero because the signs cancel. That is enough for
//! tests of retrieval and similarity code; it knows no synonyms.

use axum::Extension;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::script::{Call, Endpoint, SimState};
use crate::server::{self, ConnectionKiller, JsonBody};

/// Length of the vectors when the request does not set `dimensions`.
pub const DEFAULT_DIMENSIONS: usize = 256;
/// The largest `dimensions` OpenAI's models accept (text-embedding-3-large).
const MAX_DIMENSIONS: usize = 3072;
/// Words weigh more than trigrams, so a shared word counts more than a shared spelling.
const WORD_WEIGHT: f32 = 1.0;
const TRIGRAM_WEIGHT: f32 = 0.5;

#[derive(Debug, Deserialize)]
struct EmbeddingRequest {
    model: String,
    input: Value,
    dimensions: Option<u64>,
    encoding_format: Option<String>,
}

/// The handler.
pub(crate) async fn create(
    State(state): State<SimState>,
    killer: Option<Extension<ConnectionKiller>>,
    JsonBody(body): JsonBody,
) -> Response {
    let (request, inputs, dimensions, base64) = match validate(body) {
        Ok(parsed) => parsed,
        Err(error) => return error.into_response(),
    };
    state.note_model(&request.model);
    let joined = inputs.join("\n");
    let plan = state.plan(&Call {
        endpoint: Endpoint::Embeddings,
        model: Some(&request.model),
        text: &joined,
        last_user: None,
        schema_name: None,
    });
    if let Some(response) = server::stage(&plan, killer.as_deref()).await {
        return response;
    }
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let vector = embed(text, dimensions);
            let embedding = if base64 { json!(encode_base64(&vector)) } else { json!(vector) };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let tokens: u64 = inputs.iter().map(|text| server::estimate_tokens(text)).sum();
    let response = json!({
        "object": "list",
        "data": data,
        "model": request.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens}
    });
    server::json_response(&response, plan.malformed())
}

type Parsed = (EmbeddingRequest, Vec<String>, usize, bool);

fn validate(body: Value) -> Result<Parsed, ApiError> {
    if body.get("model").is_none_or(Value::is_null) {
        return Err(ApiError::invalid(None, "you must provide a model parameter"));
    }
    if body.get("input").is_none_or(Value::is_null) {
        return Err(ApiError::invalid(Some("input"), "Missing required parameter: 'input'."));
    }
    let request: EmbeddingRequest = server::parse(body)?;
    let invalid_input = || ApiError::invalid(Some("input"), "'$.input' is invalid. Please check the API reference.");
    let inputs = match &request.input {
        Value::String(text) => vec![text.clone()],
        Value::Array(items) if !items.is_empty() => {
            if items.iter().any(|item| item.is_number() || item.is_array()) {
                // Token arrays are valid for OpenAI, but our code never sends them; saying so beats
                // embedding numbers as if they were text.
                return Err(ApiError::invalid(
                    Some("input"),
                    "Token-array input is not supported by the OpenAI simulator; send strings.",
                ));
            }
            items
                .iter()
                .map(|item| item.as_str().map(str::to_owned).ok_or_else(invalid_input))
                .collect::<Result<_, _>>()?
        }
        _ => return Err(invalid_input()),
    };
    if inputs.iter().any(String::is_empty) {
        return Err(invalid_input());
    }
    let dimensions = match request.dimensions {
        None => DEFAULT_DIMENSIONS,
        Some(n) => usize::try_from(n).ok().filter(|n| (1..=MAX_DIMENSIONS).contains(n)).ok_or_else(|| {
            ApiError::invalid(
                Some("dimensions"),
                format!("Invalid 'dimensions': expected a value between 1 and {MAX_DIMENSIONS}, but got {n} instead."),
            )
        })?,
    };
    let base64 = match request.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                Some("encoding_format"),
                format!("Invalid 'encoding_format': expected 'float' or 'base64', got '{other}'."),
            ));
        }
    };
    Ok((request, inputs, dimensions, base64))
}

/// The simulator's embedding of `text`: `dimensions` floats, unit length (see the module docs).
pub fn embed(text: &str, dimensions: usize) -> Vec<f32> {
    let dimensions = dimensions.max(1);
    let mut vector = vec![0.0_f32; dimensions];
    let mut add = |feature: &str, weight: f32| {
        let hash = server::fnv1a(feature.as_bytes());
        let index = usize::try_from(hash % dimensions as u64).unwrap_or(0);
        // The sign comes from bits the index does not use, so collisions cancel out on average.
        let sign = if hash >> 63 == 0 { 1.0 } else { -1.0 };
        vector[index] += sign * weight;
    };
    let lowered = text.to_lowercase();
    let words: Vec<&str> = lowered.split(|c: char| !c.is_alphanumeric()).filter(|word| !word.is_empty()).collect();
    for word in &words {
        add(&format!("w:{word}"), WORD_WEIGHT);
        let padded: Vec<char> = format!(" {word} ").chars().collect();
        for trigram in padded.windows(3) {
            add(&format!("c:{}", trigram.iter().collect::<String>()), TRIGRAM_WEIGHT);
        }
    }
    if words.is_empty() {
        // Punctuation or emoji only: still a stable, distinct, unit vector.
        add(&format!("t:{lowered}"), 1.0);
    }
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|x| *x /= norm);
    }
    vector
}

/// OpenAI's `encoding_format: "base64"`: the little-endian f32 bytes, base64-encoded.
fn encode_base64(vector: &[f32]) -> String {
    let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn similar_texts_are_closer_than_unrelated_ones() {
        let base = embed("I feel so alone tonight and I can't sleep", DEFAULT_DIMENSIONS);
        let similar = embed("I feel really alone tonight, I cannot sleep", DEFAULT_DIMENSIONS);
        let unrelated = embed("Quarterly revenue grew in the European market", DEFAULT_DIMENSIONS);
        let (near, far) = (cosine(&base, &similar), cosine(&base, &unrelated));
        assert!(near > 0.6, "similar: {near}");
        assert!(far.abs() < 0.25, "unrelated: {far}");
    }

    #[test]
    fn vectors_are_unit_length_and_deterministic() {
        for text in ["hello", "!!!", "Ünïcödé wörds"] {
            let vector = embed(text, 64);
            assert_eq!(vector.len(), 64);
            assert!((cosine(&vector, &vector) - 1.0).abs() < 1e-5);
            assert_eq!(vector, embed(text, 64));
        }
    }

    #[test]
    fn base64_is_little_endian_f32() -> Result<(), base64::DecodeError> {
        let vector = [1.0_f32, -0.5];
        let bytes = base64::engine::general_purpose::STANDARD.decode(encode_base64(&vector))?;
        assert_eq!(bytes, [1.0_f32.to_le_bytes(), (-0.5_f32).to_le_bytes()].concat());
        Ok(())
    }
}
