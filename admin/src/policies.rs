//! Policy documents made ready to store: the text split into passages for retrieval and, with
//! an AI provider, each passage embedded (any failure fails the upload: 502, nothing stored);
//! without one the passages are stored without embeddings and the evaluator reads the text.

use futures::{StreamExt, TryStreamExt};
use store::{AccountId, LlmTask, NewPolicy, UserId};

use crate::documents::{self, DocKind};
use crate::error::{ApiError, Result};
use crate::llm::{CallFor, Llm};
use crate::upload::Upload;

/// Policy passages for retrieval: about 1200 characters, 200 carried over between neighbours.
const CHUNK_CHARS: usize = 1200;
const CHUNK_OVERLAP: usize = 200;
/// Passages per embeddings request, and requests in flight at once.
const EMBED_BATCH: usize = 64;
const EMBED_CONCURRENCY: usize = 4;

/// The policy to store for an uploaded document of `kind` whose text is `text`.
pub async fn prepare(
    llm: Option<&Llm>,
    account_id: AccountId,
    uploaded_by: UserId,
    file_name: String,
    kind: DocKind,
    upload: &Upload,
    text: String,
) -> Result<NewPolicy> {
    let passages: Vec<String> =
        documents::chunk(&text, CHUNK_CHARS, CHUNK_OVERLAP).into_iter().map(|c| c.text).collect();
    let (embeddings, embedding_model) = match llm {
        Some(llm) => (embed_passages(llm, account_id, &passages).await?, Some(llm.embedding_model.clone())),
        None => (vec![None; passages.len()], None),
    };
    Ok(NewPolicy {
        file_name,
        content_type: kind.mime().to_owned(),
        byte_size: upload.bytes.len() as i64,
        text,
        chunks: passages.into_iter().zip(embeddings).collect(),
        embedding_model,
        uploaded_by: Some(uploaded_by),
    })
}

/// Embeddings of every passage, in order: batches of [`EMBED_BATCH`], a few in flight. Any
/// failure fails the whole upload.
async fn embed_passages(llm: &Llm, account_id: AccountId, passages: &[String]) -> Result<Vec<Option<Vec<f32>>>> {
    let call = CallFor { account_id: Some(account_id), session_id: None, task: LlmTask::Embedding };
    let inputs: Vec<Vec<String>> = passages.chunks(EMBED_BATCH).map(<[String]>::to_vec).collect();
    let batches: Vec<Vec<Vec<f32>>> = futures::stream::iter(inputs)
        .map(|batch| llm.embed(call, batch))
        .buffered(EMBED_CONCURRENCY)
        .try_collect()
        .await?;
    let vectors: Vec<Vec<f32>> = batches.into_iter().flatten().collect();
    if vectors.len() != passages.len() {
        return Err(ApiError::BadGateway(format!(
            "the AI provider answered {} embeddings for {} passages",
            vectors.len(),
            passages.len()
        )));
    }
    Ok(vectors.into_iter().map(Some).collect())
}
