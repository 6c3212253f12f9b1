//! Document uploads and the LLM work on them: account policies, scenario evaluator context
//! files, counselor documentation review, text extraction and scenario generation.
//!
//! Every upload arrives as a multipart form with a `file` field, or as the file itself in the
//! body with its own Content-Type (`application/pdf`, `text/plain`, `text/markdown`, the DOCX
//! type or `application/octet-stream`; a `Content-Disposition: ...; filename="x.pdf"` header
//! names it). At most [`crate::MAX_UPLOAD_BYTES`] (413 beyond). What a file is comes from its
//! bytes ([`documents::sniff`]); a name or Content-Type that contradicts them, or a kind the
//! route does not take, answers 415 naming the kinds it takes; a damaged, empty or hostile
//! document 422. Files are parsed only in the extraction child process (`crate::sandbox`), so a
//! file that crashes a parser or exhausts its limits is one 422, never the service's end.
//! Uploads count against the per-user `RATE_LIMIT_UPLOAD` (429), as does scenario generation.
//!
//! Who may do what:
//! - policies (`/api/policies`): supervisors and account admins, who maintain the account's
//!   training material; counselors never see them (they are grading material);
//! - evaluator context, text extraction and scenario generation: supervisors and account admins,
//!   like every other scenario route;
//! - documentation review: only the counselor who practised the session uploads (supervisors get
//!   403, other counselors 404), after the session has its evaluation (409 before); the owner
//!   and supervisors list the reviews.
//!
//! The LLM work lives beside `evaluation.rs`: scenario drafting in `drafting.rs`, documentation
//! review in `docreview.rs`; the upload extractor in `upload.rs`. Without a provider these routes
//! answer 503, on a provider failure 502.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use store::{DocumentReview, Policy, Scenario, ScenarioId, SessionId};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::with_upload_limit;

use crate::AppState;
use crate::documents::{self, DocKind};
use crate::drafting::{GeneratedScenario, MAX_COMPLAINT_CHARS};
use crate::error::{ApiError, ErrorBody, Result};
use crate::extract::{IdPath, Json};
use crate::identity::Actor;
use crate::upload::UploadedFile;
use crate::{docreview, drafting, policies};

/// Adds this module's routes.
pub fn register(router: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    router
        .routes(with_upload_limit(routes!(list_policies, upload_policy)))
        .routes(routes!(delete_policy))
        .routes(with_upload_limit(routes!(upload_evaluator_context)))
        .routes(with_upload_limit(routes!(extract_text)))
        .routes(routes!(generate_scenario))
        .routes(with_upload_limit(routes!(upload_document_review)))
        .routes(routes!(list_document_reviews))
}

/// PRODUCT.md: pasted or uploaded evaluator context holds at most 50,000 characters (the same
/// limit `ScenarioInput::validate` applies to `evaluatorContext`).
use store::MAX_EVALUATOR_CONTEXT_CHARS;
/// Text answered by extract-text (as long as the longest complaint a scenario is drafted from).
const MAX_EXTRACT_CHARS: usize = crate::drafting::MAX_COMPLAINT_CHARS;

const POLICY_KINDS: &[DocKind] = &[DocKind::Pdf, DocKind::Docx, DocKind::Txt, DocKind::Md];
const CONTEXT_KINDS: &[DocKind] = &[DocKind::Pdf, DocKind::Docx, DocKind::Txt, DocKind::Md];
const EXTRACT_KINDS: &[DocKind] = &[DocKind::Pdf, DocKind::Txt];
const DOCUMENTATION_KINDS: &[DocKind] = &[DocKind::Pdf];

/// The multipart form every upload route takes (or the file as the raw body).
#[derive(ToSchema)]
#[allow(dead_code)] // documents the request; the handlers read the body themselves
pub struct FileUpload {
    /// The document.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

// ---------------------------------------------------------------------------------------------
// Policies

/// The account's policy documents, oldest first (supervisors and account admins).
#[utoipa::path(get, path = "/api/policies", tag = "policies",
    responses((status = 200, body = Vec<Policy>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_policies(State(state): State<AppState>, actor: Actor) -> Result<Json<Vec<Policy>>> {
    actor.require_supervisor()?;
    Ok(Json(state.store.list_policies(actor.account_id).await?))
}

/// Uploads a policy document (PDF, DOCX, TXT or MD, at most 10 MB) that evaluations grade
/// against. Its text is split into passages; with an AI provider the passages are embedded for
/// retrieval (if that fails: 502 and nothing is stored), without one they are stored without
/// embeddings and the evaluator reads the text instead.
#[utoipa::path(post, path = "/api/policies", tag = "policies",
    request_body(description = "A multipart form with a `file` field, or the file as the body",
        content((FileUpload = "multipart/form-data"), (String = "application/pdf"), (String = "text/plain"),
            (String = "text/markdown"), (String = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"))),
    responses((status = 201, body = Policy), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn upload_policy(
    State(state): State<AppState>,
    actor: Actor,
    file: UploadedFile,
) -> Result<(StatusCode, Json<Policy>)> {
    actor.require_supervisor()?;
    upload_rate_limit(&state, &actor).await?;
    let upload = file.read().await?;
    let (kind, text) = upload.document(&state.config.extract, POLICY_KINDS).await?;
    let file_name = upload.stored_name("policy", kind);
    let new =
        policies::prepare(state.llm.as_ref(), actor.account_id, actor.user_id, file_name, kind, &upload, text).await?;
    let embedded = new.chunks.iter().filter(|(_, e)| e.is_some()).count();
    let audit = store::Audit::new(Some(actor.account_id), Some(actor.user_id), "policy.uploaded")
        .details(json!({ "fileName": new.file_name, "chunks": new.chunks.len(), "embeddedChunks": embedded }));
    let policy = state.store.insert_policy(actor.account_id, &new, &audit).await?;
    Ok((StatusCode::CREATED, Json(policy)))
}

/// Deletes a policy document and its passages.
#[utoipa::path(delete, path = "/api/policies/{id}", tag = "policies", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn delete_policy(State(state): State<AppState>, actor: Actor, IdPath(id): IdPath) -> Result<StatusCode> {
    actor.require_supervisor()?;
    let policy = state.store.policy(actor.account_id, id).await?;
    let audit = store::Audit::new(Some(actor.account_id), Some(actor.user_id), "policy.deleted")
        .details(json!({ "fileName": policy.file_name }));
    state.store.delete_policy(actor.account_id, id, &audit).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// Scenarios: evaluator context, text extraction, generation

/// Replaces a scenario's evaluator context (grading guidance) with the text of an uploaded PDF,
/// DOCX, TXT or MD file. The text must fit the 50,000-character limit (422 otherwise; it is never
/// cut silently). Pasted text goes through `PUT /api/scenarios/{id}` (`evaluatorContext`).
#[utoipa::path(post, path = "/api/scenarios/{id}/evaluator-context", tag = "scenarios", params(("id" = Uuid, Path)),
    request_body(description = "A multipart form with a `file` field, or the file as the body",
        content((FileUpload = "multipart/form-data"), (String = "application/pdf"), (String = "text/plain"),
            (String = "text/markdown"), (String = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"))),
    responses((status = 200, body = Scenario), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub async fn upload_evaluator_context(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath<ScenarioId>,
    file: UploadedFile,
) -> Result<Json<Scenario>> {
    actor.require_supervisor()?;
    state.store.scenario(actor.account_id, id).await?;
    upload_rate_limit(&state, &actor).await?;
    let upload = file.read().await?;
    let (kind, text) = upload.document(&state.config.extract, CONTEXT_KINDS).await?;
    let characters = text.chars().count();
    if characters > MAX_EVALUATOR_CONTEXT_CHARS {
        return Err(ApiError::validation(
            "file",
            format!(
                "the document's text has {characters} characters; evaluator context holds at most \
                 {MAX_EVALUATOR_CONTEXT_CHARS}. Upload a shorter document or paste the relevant part"
            ),
        ));
    }
    let audit = store::Audit::new(Some(actor.account_id), Some(actor.user_id), "scenario.evaluator_context_uploaded")
        .details(json!({ "fileName": upload.stored_name("evaluator-context", kind), "characters": characters }));
    state.store.set_evaluator_context(actor.account_id, id, &text, &audit).await?;
    Ok(Json(state.store.scenario(actor.account_id, id).await?))
}

/// The kinds extract-text reads.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExtractedKind {
    Pdf,
    Txt,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExtractedText {
    /// The document's text, normalised; cut at 50,000 characters with a visible marker.
    pub text: String,
    pub kind: ExtractedKind,
    /// Characters of the document's whole text (more than `text` holds when `truncated`).
    pub characters: usize,
    pub truncated: bool,
}

/// The text of an uploaded PDF or TXT file (e.g. a complaint to draft a scenario from), cut at
/// 50,000 characters with a marker. Nothing is stored.
#[utoipa::path(post, path = "/api/scenarios/extract-text", tag = "scenarios",
    request_body(description = "A multipart form with a `file` field, or the file as the body",
        content((FileUpload = "multipart/form-data"), (String = "application/pdf"), (String = "text/plain"))),
    responses((status = 200, body = ExtractedText), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn extract_text(
    State(state): State<AppState>,
    actor: Actor,
    file: UploadedFile,
) -> Result<Json<ExtractedText>> {
    actor.require_supervisor()?;
    upload_rate_limit(&state, &actor).await?;
    let upload = file.read().await?;
    let (kind, text) = upload.document(&state.config.extract, EXTRACT_KINDS).await?;
    let characters = text.chars().count();
    let (text, truncated) = documents::truncate_with_marker(&text, MAX_EXTRACT_CHARS);
    let kind = if kind == DocKind::Pdf { ExtractedKind::Pdf } else { ExtractedKind::Txt };
    Ok(Json(ExtractedText { text, kind, characters, truncated }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenerateScenarioRequest {
    /// The complaint (or incident description) to base the scenario on: 1 to 50,000 characters.
    #[schema(min_length = 1, max_length = 50000, pattern = r"\S")]
    pub complaint_text: String,
}

/// Drafts a complete scenario from a complaint text with the LLM (supervisors). Nothing is
/// stored: the supervisor edits the draft and saves it with `POST /api/scenarios`.
#[utoipa::path(post, path = "/api/scenarios/generate", tag = "scenarios", request_body = GenerateScenarioRequest,
    responses((status = 200, body = GeneratedScenario), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn generate_scenario(
    State(state): State<AppState>,
    actor: Actor,
    Json(input): Json<GenerateScenarioRequest>,
) -> Result<Json<GeneratedScenario>> {
    actor.require_supervisor()?;
    let complaint = input.complaint_text.trim();
    let characters = complaint.chars().count();
    if complaint.is_empty() || characters > MAX_COMPLAINT_CHARS {
        return Err(ApiError::validation(
            "complaintText",
            format!("must be 1 to {MAX_COMPLAINT_CHARS} characters (got {characters})"),
        ));
    }
    let llm = state.llm()?;
    upload_rate_limit(&state, &actor).await?;
    Ok(Json(drafting::draft_scenario(&state, llm, actor.account_id, complaint).await?))
}

/// The counselor who practised the session uploads the documentation they wrote for the call
/// (a PDF), after the session's feedback; the LLM scores it against the transcript (0-100
/// completeness, accuracy, consistency) and lists its gaps. Before the evaluation: 409. The same
/// file again for the session (a double click) is reviewed once: 200 with the first review.
#[utoipa::path(post, path = "/api/sessions/{id}/document-review", tag = "sessions", params(("id" = Uuid, Path)),
    request_body(description = "A multipart form with a `file` field, or the PDF as the body",
        content((FileUpload = "multipart/form-data"), (String = "application/pdf"))),
    responses((status = 201, body = DocumentReview), (status = 200, description = "The same file was uploaded for this session before: its review", body = DocumentReview),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn upload_document_review(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath<SessionId>,
    file: UploadedFile,
) -> Result<(StatusCode, Json<DocumentReview>)> {
    let session = actor.session(&state.store, id).await?;
    if session.user_id != actor.user_id {
        return Err(ApiError::Forbidden("only the counselor who practised the session uploads its documentation"));
    }
    if state.store.ai_evaluation_raw(&session).await?.is_none() {
        return Err(ApiError::Conflict {
            message: "documentation is reviewed after the session's feedback: evaluate the session first".into(),
            existing_id: None,
        });
    }
    let llm = state.llm()?;
    upload_rate_limit(&state, &actor).await?;
    let upload = file.read().await?;
    // One review per session and file: a repeat of the same bytes (a double click, a retried
    // request) answers the first upload's review with 200, waiting for it if it is under way.
    let sha = crate::auth::sha256_bytes_hex(&upload.bytes);
    let started = std::time::Instant::now();
    loop {
        match state.store.claim_document_review(&session, &sha).await? {
            store::ReviewClaim::Claimed => break,
            store::ReviewClaim::Done(review) => return Ok((StatusCode::OK, Json(review))),
            store::ReviewClaim::InProgress if started.elapsed() < REPEAT_WAIT => {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            store::ReviewClaim::InProgress => {
                return Err(ApiError::Conflict {
                    message: "this file is still being reviewed; its review appears in the list when it is done".into(),
                    existing_id: None,
                });
            }
        }
    }
    let reviewed = async {
        let (kind, text) = upload.document(&state.config.extract, DOCUMENTATION_KINDS).await?;
        let file_name = upload.stored_name("documentation", kind);
        docreview::review_documentation(&state, llm, actor, &session, file_name, text, Some(sha.clone())).await
    }
    .await;
    match reviewed {
        Ok(review) => Ok((StatusCode::CREATED, Json(review))),
        Err(e) => {
            // Failed: the same file may be sent again at once.
            if let Err(release) = state.store.release_document_review(&session, &sha).await {
                tracing::error!(error = %release, "releasing a documentation review claim");
            }
            Err(e)
        }
    }
}

/// How long a repeated documentation upload waits for the first one's review before answering
/// 409 (the review is one model call; the client has disabled its button meanwhile).
const REPEAT_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// A session's documentation reviews, oldest first (its counselor and supervisors).
#[utoipa::path(get, path = "/api/sessions/{id}/document-reviews", tag = "sessions", params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<DocumentReview>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_document_reviews(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath<SessionId>,
) -> Result<Json<Vec<DocumentReview>>> {
    let session = actor.session(&state.store, id).await?;
    Ok(Json(state.store.document_reviews(&session).await?))
}

// ---------------------------------------------------------------------------------------------
// Helpers

async fn upload_rate_limit(state: &AppState, actor: &Actor) -> Result<()> {
    crate::auth::rate_limit(
        &state.store,
        &format!("upload:user:{}", actor.user_id),
        state.config.rate_limits.upload,
        "uploads",
    )
    .await
}
