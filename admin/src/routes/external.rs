//! The external partner API (`/api/external/*`): the contract partner systems already use
//! (PRODUCT.md "Routes"), with snake_case bodies, authenticated by the account's API key. Every
//! call is scoped to the key's account; users are named by the partner's external id.

use axum::Json as AxumJson;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use store::{
    Assignment, AssignmentFilter, AssignmentStatus, Difficulty, NewAssignment, Scenario, ScenarioFilter, ScenarioInput,
    ScenarioListKind, ScenarioMode, Timestamp,
};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{IdPath, Json, Query};
use crate::identity::Partner;
use crate::routes::sessions::EvaluationStatus;
use store::{AssignmentId, FlagId, ScenarioId, SessionId};

/// Errors in the partner API's own spelling: field names and keys in snake_case.
#[derive(Debug)]
pub struct ExternalError(ApiError);

impl<E: Into<ApiError>> From<E> for ExternalError {
    fn from(err: E) -> Self {
        ExternalError(err.into())
    }
}

/// The error body of the partner API.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExternalErrorBody {
    pub error: String,
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<ExternalFieldError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExternalFieldError {
    pub field: String,
    pub message: String,
}

fn snake(field: &str) -> String {
    let mut out = String::with_capacity(field.len() + 4);
    for c in field.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

impl IntoResponse for ExternalError {
    fn into_response(self) -> Response {
        let (fields, existing_id) = match &self.0 {
            ApiError::Validation(fields) => (
                fields
                    .iter()
                    .map(|f| ExternalFieldError { field: snake(&f.field), message: f.message.clone() })
                    .collect(),
                None,
            ),
            ApiError::Conflict { existing_id, .. } => (Vec::new(), existing_id.clone()),
            _ => (Vec::new(), None),
        };
        if fields.is_empty() && existing_id.is_none() {
            return self.0.into_response();
        }
        let status = if existing_id.is_some() { StatusCode::CONFLICT } else { StatusCode::UNPROCESSABLE_ENTITY };
        let message = match &self.0 {
            ApiError::Validation(_) => {
                fields.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; ")
            }
            other => other.to_string(),
        };
        let error = if existing_id.is_some() { "conflict" } else { "validation_failed" }.to_owned();
        (status, AxumJson(ExternalErrorBody { error, message, fields, existing_id })).into_response()
    }
}

type Result<T> = std::result::Result<T, ExternalError>;

/// Partner writes are audited with the key that made them (they have no user), in the write's
/// transaction.
fn partner_audit(partner: &Partner, action: &'static str) -> store::Audit {
    store::Audit::new(Some(partner.account_id), None, action).details(serde_json::json!({ "apiKey": partner.key_id }))
}

/// A scenario as partners see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExternalScenario {
    #[schema(value_type = Uuid)]
    pub id: ScenarioId,
    pub title: String,
    pub prompt: String,
    pub description: String,
    pub mode: ScenarioMode,
    pub category: String,
    pub skills: Vec<String>,
    pub difficulty: Option<Difficulty>,
    /// Minutes.
    pub estimated_time: Option<i64>,
    pub is_one_time: bool,
    pub relevant_policy_sections: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<Scenario> for ExternalScenario {
    fn from(s: Scenario) -> Self {
        ExternalScenario {
            id: s.id,
            title: s.title,
            prompt: s.prompt,
            description: s.description,
            mode: s.mode,
            category: s.category,
            skills: s.skills,
            difficulty: s.difficulty,
            estimated_time: s.estimated_time,
            is_one_time: s.is_one_time,
            relevant_policy_sections: s.relevant_policy_sections,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// The body partners post to create a scenario (PRODUCT.md's example is valid as is).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "title": "Caller with financial stress", "prompt": "You are Sarah, 34, calling about...",
  "description": "Practice de-escalation", "mode": "phone", "category": "sales",
  "skills": ["de-escalation", "active-listening"], "difficulty": "intermediate",
  "estimated_time": 15, "is_one_time": true, "relevant_policy_sections": "Section 4.2..." }))]
pub struct ExternalScenarioInput {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub title: String,
    #[schema(min_length = 1, max_length = 50000, pattern = r"\S")]
    pub prompt: String,
    #[serde(default)]
    pub description: Option<String>,
    pub mode: ScenarioMode,
    pub category: String,
    #[serde(default)]
    pub skills: Vec<String>,
    #[serde(default)]
    pub difficulty: Option<Difficulty>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 600)]
    pub estimated_time: Option<i64>,
    /// Default false: listed and reusable. True: hidden from lists, for a single assignment.
    #[serde(default)]
    pub is_one_time: bool,
    #[serde(default)]
    pub relevant_policy_sections: Option<String>,
    #[serde(default)]
    pub evaluator_context: Option<String>,
}

/// Reusable scenarios of the key's account (one-time scenarios are not listed).
#[utoipa::path(get, path = "/api/external/scenarios", tag = "external", operation_id = "external_list_scenarios",
    security(("api_key" = [])),
    responses((status = 200, body = Vec<ExternalScenario>), (status = 401, body = ExternalErrorBody)))]
pub async fn list_scenarios(
    State(state): State<AppState>,
    partner: Partner,
) -> Result<AxumJson<Vec<ExternalScenario>>> {
    let filter = ScenarioFilter { kind: ScenarioListKind::Reusable, ..Default::default() };
    let scenarios = state.store.list_scenarios(partner.account_id, &filter).await?;
    Ok(AxumJson(scenarios.into_iter().map(ExternalScenario::from).collect()))
}

/// Creates a scenario, reusable or (with `is_one_time: true`) one-time.
#[utoipa::path(post, path = "/api/external/scenarios", tag = "external", operation_id = "external_create_scenario", request_body = ExternalScenarioInput,
    security(("api_key" = [])),
    responses((status = 201, body = ExternalScenario), (status = 401, body = ExternalErrorBody),
        (status = 409, body = ExternalErrorBody), (status = 422, body = ExternalErrorBody)))]
pub async fn create_scenario(
    State(state): State<AppState>,
    partner: Partner,
    Json(input): Json<ExternalScenarioInput>,
) -> Result<(StatusCode, AxumJson<ExternalScenario>)> {
    let input = ScenarioInput {
        title: input.title,
        prompt: input.prompt,
        description: input.description,
        mode: input.mode,
        category: input.category,
        skills: input.skills,
        difficulty: input.difficulty,
        estimated_time: input.estimated_time,
        relevant_policy_sections: input.relevant_policy_sections,
        evaluator_context: input.evaluator_context,
        is_one_time: Some(input.is_one_time),
        assign_to: None,
        voice: None,
        risk_profile: None,
    };
    let audit = partner_audit(&partner, "external.scenario.created");
    let (scenario, _) = state.store.create_scenario_audited(partner.account_id, None, &input, Some(&audit)).await?;
    Ok((StatusCode::CREATED, AxumJson(scenario.into())))
}

/// An assignment as partners see it: the counselor by their external id.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExternalAssignment {
    #[schema(value_type = Uuid)]
    pub id: AssignmentId,
    #[schema(value_type = Uuid)]
    pub scenario_id: ScenarioId,
    pub scenario_title: String,
    /// The partner's id for the counselor.
    pub user_id: Option<String>,
    pub status: AssignmentStatus,
    pub due_date: Option<Timestamp>,
    pub notes: String,
    pub attempts: i64,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub completed_at: Option<Timestamp>,
}

fn external_assignment(a: Assignment, user_id: Option<String>) -> ExternalAssignment {
    ExternalAssignment {
        id: a.id,
        scenario_id: a.scenario_id,
        scenario_title: a.scenario.title,
        user_id,
        status: a.status,
        due_date: a.due_at,
        notes: a.notes,
        attempts: a.attempts,
        created_at: a.created_at,
        started_at: a.started_at,
        completed_at: a.completed_at,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExternalAssignmentQuery {
    /// The partner's id for the counselor.
    pub user_id: String,
}

/// A counselor's assignments, by the partner's id for them (none known: an empty list).
#[utoipa::path(get, path = "/api/external/assignments", tag = "external", operation_id = "external_list_assignments", params(ExternalAssignmentQuery),
    security(("api_key" = [])),
    responses((status = 200, body = Vec<ExternalAssignment>), (status = 400, body = ExternalErrorBody),
        (status = 401, body = ExternalErrorBody)))]
pub async fn list_assignments(
    State(state): State<AppState>,
    partner: Partner,
    Query(query): Query<ExternalAssignmentQuery>,
) -> Result<AxumJson<Vec<ExternalAssignment>>> {
    let Some(user) = state.store.user_by_external_id(partner.account_id, query.user_id.trim()).await? else {
        return Ok(AxumJson(Vec::new()));
    };
    let filter = AssignmentFilter { counselor_id: Some(user.id), limit: Some(500), ..Default::default() };
    let list = state.store.list_assignments(partner.account_id, &filter).await?;
    Ok(AxumJson(list.into_iter().map(|a| external_assignment(a, user.external_id.clone())).collect()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "user_id": "ptg-user-42", "scenario_id": "0193f0c2-7a4e-7cc1-9c1e-2f0d6c1a9b10",
  "due_date": "2026-12-31", "notes": "Focus on risk assessment" }))]
pub struct ExternalNewAssignment {
    /// The partner's id for the counselor.
    pub user_id: String,
    #[schema(value_type = Uuid)]
    pub scenario_id: ScenarioId,
    /// RFC 3339, or YYYY-MM-DD meaning the end of that day (UTC).
    #[serde(default)]
    pub due_date: Option<Timestamp>,
    #[serde(default)]
    pub notes: Option<String>,
}

/// Assigns a scenario to a counselor. An active assignment of the same scenario to the same
/// counselor answers 409 with its `existing_id`.
#[utoipa::path(post, path = "/api/external/assignments", tag = "external", request_body = ExternalNewAssignment,
    security(("api_key" = [])),
    responses((status = 201, body = ExternalAssignment), (status = 401, body = ExternalErrorBody),
        (status = 404, body = ExternalErrorBody), (status = 409, body = ExternalErrorBody),
        (status = 422, body = ExternalErrorBody)))]
pub async fn create_assignment(
    State(state): State<AppState>,
    partner: Partner,
    Json(input): Json<ExternalNewAssignment>,
) -> Result<(StatusCode, AxumJson<ExternalAssignment>)> {
    let user = state
        .store
        .user_by_external_id(partner.account_id, input.user_id.trim())
        .await?
        .filter(|u| u.active)
        .ok_or_else(|| ApiError::validation("user_id", "no active user of the account has this external id"))?;
    // Another account's scenario is "not found", as its id in a path would be.
    state.store.scenario(partner.account_id, input.scenario_id).await?;
    let new = NewAssignment {
        scenario_id: input.scenario_id,
        counselor_id: user.id,
        due_at: input.due_date,
        notes: input.notes,
    };
    let audit = partner_audit(&partner, "external.assignment.created");
    let assignment = state.store.create_assignment_audited(partner.account_id, None, &new, Some(&audit)).await?;
    Ok((StatusCode::CREATED, AxumJson(external_assignment(assignment, user.external_id))))
}

/// One practice attempt of an assignment.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExternalAttempt {
    pub attempt: i64,
    #[schema(value_type = Uuid)]
    pub session_id: SessionId,
    /// `chat` or `voice`.
    pub kind: store::SessionKind,
    pub status: store::SessionStatus,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExternalCriterion {
    pub key: String,
    pub name: String,
    /// 1-4, or null when the criterion did not apply.
    pub rating: Option<u8>,
    pub comment: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExternalFlag {
    #[schema(value_type = Uuid)]
    pub id: FlagId,
    pub flag_type: store::FlagType,
    pub severity: store::FlagSeverity,
    pub source: store::FlagSource,
    pub status: store::FlagStatus,
    pub details: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExternalEvaluation {
    pub id: Uuid,
    /// The attempt it grades.
    pub attempt: i64,
    #[schema(value_type = Uuid)]
    pub session_id: SessionId,
    /// 0-100; null when it could not be computed (see `score_band`).
    pub overall_score: Option<f64>,
    /// needs_work | developing | proficient | strong; null exactly when the score is.
    pub score_band: Option<store::ScoreBand>,
    pub criteria: Vec<ExternalCriterion>,
    pub strengths: Vec<String>,
    pub improvements: Vec<String>,
    pub flags: Vec<ExternalFlag>,
    pub created_at: Timestamp,
    /// Whether a supervisor reviewed it: then the scores, ratings and flags are the reviewed
    /// ones (the supervisor's overrides applied, the score recomputed).
    pub supervisor_reviewed: bool,
}

/// An assignment's result for the partner.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExternalResult {
    #[schema(value_type = Uuid)]
    pub assignment_id: AssignmentId,
    pub status: AssignmentStatus,
    pub attempts: i64,
    pub latest_attempt: ExternalAttempt,
    /// The latest attempt's evaluation: `running` while it is being made, `pending` while it
    /// is held for a supervisor's review.
    pub evaluation_status: EvaluationStatus,
    /// Why the latest evaluation attempt failed, when it did.
    pub evaluation_error: Option<String>,
    /// The most recent evaluation of any attempt as the supervisors reviewed it (null before
    /// the first; one held for review is not shown until it is released).
    pub evaluation: Option<ExternalEvaluation>,
}

/// The assignment's attempts, newest first; 404 for another account's assignment.
async fn attempts(
    state: &AppState,
    partner: &Partner,
    assignment_id: AssignmentId,
) -> Result<(Assignment, Vec<store::Session>)> {
    let assignment = state.store.assignment(partner.account_id, assignment_id).await?;
    let filter = store::SessionFilter {
        list_type: store::SessionListType::All,
        assignment_id: Some(assignment_id),
        limit: Some(500),
        ..Default::default()
    };
    let mut sessions = state.store.list_sessions(partner.account_id, &filter).await?;
    // A voice session whose room the counselor never joined is not an attempt (it is swept as
    // abandoned); it never hides the real latest attempt.
    sessions.retain(|s| s.kind != store::SessionKind::Voice || s.joined_at.is_some());
    sessions.sort_by_key(|s| std::cmp::Reverse(s.attempt_number.unwrap_or(0)));
    Ok((assignment, sessions))
}

async fn result_of(state: &AppState, partner: &Partner, assignment_id: AssignmentId) -> Result<ExternalResult> {
    let (_, sessions) = attempts(state, partner, assignment_id).await?;
    let Some(latest) = sessions.first() else {
        return Err(ApiError::NotFound("attempt (the assignment has not been practised yet)").into());
    };
    let (running, error) = state.store.evaluation_state(latest.id).await?;
    let mut evaluation = None;
    let mut latest_held = false;
    for session in &sessions {
        if let Some(e) = crate::evaluation::session_evaluation(state, session.id).await? {
            if crate::evaluation::is_held(&e) {
                latest_held |= session.id == latest.id;
                continue;
            }
            // The flags in force: a supervisor's review may have set some aside.
            let in_force = e.review.as_ref().map(|r| r.flags.clone());
            let mut flags = state.store.session_flags(session.id).await?;
            if let Some(in_force) = &in_force {
                flags.retain(|f| f.source != store::FlagSource::Evaluation || in_force.contains(&f.flag_type));
            }
            evaluation = Some(ExternalEvaluation {
                id: e.id,
                attempt: session.attempt_number.unwrap_or(0),
                session_id: session.id,
                overall_score: e.overall_score,
                score_band: e.score_band,
                criteria: e
                    .criteria
                    .into_iter()
                    .map(|c| ExternalCriterion { key: c.key, name: c.name, rating: c.rating, comment: c.comment })
                    .collect(),
                strengths: e.strengths,
                improvements: e.areas_to_improve,
                flags: flags
                    .into_iter()
                    .map(|f| ExternalFlag {
                        id: f.id,
                        flag_type: f.flag_type,
                        severity: f.severity,
                        source: f.source,
                        status: f.status,
                        details: f.details,
                    })
                    .collect(),
                created_at: e.created_at,
                supervisor_reviewed: e.review.is_some(),
            });
            break;
        }
    }
    let latest_done = evaluation.as_ref().is_some_and(|e| e.session_id == latest.id);
    let evaluation_status = if latest_held {
        EvaluationStatus::Pending
    } else {
        EvaluationStatus::of(latest_done, running, error.as_deref())
    };
    // Read after the evaluation: an evaluation and its assignment's completion commit together,
    // so having seen the one we see the other.
    let assignment = state.store.assignment(partner.account_id, assignment_id).await?;
    let latest = state.store.session(partner.account_id, latest.id).await?;
    let latest = &latest;
    Ok(ExternalResult {
        assignment_id,
        status: assignment.status,
        attempts: sessions.len() as i64,
        latest_attempt: ExternalAttempt {
            attempt: latest.attempt_number.unwrap_or(0),
            session_id: latest.id,
            kind: latest.kind,
            status: latest.status,
            started_at: latest.started_at,
            ended_at: latest.ended_at,
        },
        evaluation_status,
        evaluation_error: if latest_done || latest_held { None } else { error },
        evaluation,
    })
}

/// The assignment's status, attempts and latest evaluation (scores per criterion, overall,
/// strengths, improvements, flags). 404 before the first attempt; `evaluation_status: running`
/// while an evaluation is being made.
#[utoipa::path(get, path = "/api/external/assignments/{id}/result", tag = "external", params(("id" = Uuid, Path)),
    security(("api_key" = [])),
    responses((status = 200, body = ExternalResult), (status = 401, body = ExternalErrorBody),
        (status = 404, body = ExternalErrorBody)))]
pub async fn assignment_result(
    State(state): State<AppState>,
    partner: Partner,
    IdPath(id): IdPath<AssignmentId>,
) -> Result<AxumJson<ExternalResult>> {
    Ok(AxumJson(result_of(&state, &partner, id).await?))
}

/// Evaluates the latest attempt. Idempotent: with an evaluation it answers 200 and the result;
/// otherwise the evaluation runs in the background and this answers 202 with `Location`, the
/// result URL to poll.
#[utoipa::path(post, path = "/api/external/assignments/{id}/evaluate", tag = "external", params(("id" = Uuid, Path)),
    security(("api_key" = [])),
    responses((status = 200, body = ExternalResult), (status = 202, body = ExternalResult, headers(("Location" = String))),
        (status = 401, body = ExternalErrorBody), (status = 404, body = ExternalErrorBody),
        (status = 422, body = ExternalErrorBody), (status = 503, body = ExternalErrorBody)))]
pub async fn evaluate_assignment(
    State(state): State<AppState>,
    partner: Partner,
    IdPath(id): IdPath<AssignmentId>,
) -> Result<Response> {
    let current = result_of(&state, &partner, id).await?;
    // Evaluated (held for review or not): nothing to start.
    if matches!(current.evaluation_status, EvaluationStatus::Completed | EvaluationStatus::Pending) {
        return Ok(AxumJson(current).into_response());
    }
    if state.llm.is_none() {
        return Err(ApiError::from(crate::llm::LlmError::NotConfigured).into());
    }
    let session = current.latest_attempt.session_id;
    if current.evaluation_status != EvaluationStatus::Running {
        let transcript = state.store.transcript(session).await?;
        if !transcript.iter().any(|t| t.speaker == store::Speaker::Counselor) {
            return Err(ApiError::validation("attempt", "the latest attempt has no counselor turns to evaluate").into());
        }
        // Durable: the job queue grades it (a restart in between only delays the grade).
        state.store.queue_evaluation(partner.account_id, session).await?;
    }
    let mut result = current;
    result.evaluation_status = EvaluationStatus::Running;
    result.evaluation_error = None;
    let mut response = (StatusCode::ACCEPTED, AxumJson(result)).into_response();
    if let Ok(location) = format!("/api/external/assignments/{id}/result").parse() {
        response.headers_mut().insert(axum::http::header::LOCATION, location);
    }
    Ok(response)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TranscriptQuery {
    /// The attempt (1 = first); default the latest.
    pub attempt: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExternalTurn {
    /// 1-based, in spoken order.
    pub index: usize,
    pub speaker: store::Speaker,
    pub text: String,
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExternalTranscript {
    #[schema(value_type = Uuid)]
    pub assignment_id: AssignmentId,
    pub attempt: i64,
    #[schema(value_type = Uuid)]
    pub session_id: SessionId,
    pub turns: Vec<ExternalTurn>,
}

/// The transcript of one attempt (default the latest); 404 for an attempt that does not exist.
#[utoipa::path(get, path = "/api/external/assignments/{id}/transcript", tag = "external",
    params(("id" = Uuid, Path), TranscriptQuery), security(("api_key" = [])),
    responses((status = 200, body = ExternalTranscript), (status = 400, body = ExternalErrorBody),
        (status = 401, body = ExternalErrorBody), (status = 404, body = ExternalErrorBody)))]
pub async fn assignment_transcript(
    State(state): State<AppState>,
    partner: Partner,
    IdPath(id): IdPath<AssignmentId>,
    Query(query): Query<TranscriptQuery>,
) -> Result<AxumJson<ExternalTranscript>> {
    let (_, sessions) = attempts(&state, &partner, id).await?;
    let session = match query.attempt {
        None => sessions.first(),
        Some(n) => sessions.iter().find(|s| s.attempt_number == Some(n)),
    }
    .ok_or(ApiError::NotFound("attempt"))?;
    state
        .store
        .audit_read(
            &store::Audit::new(Some(partner.account_id), None, "session.transcript_read")
                .target("session", session.id)
                .details(serde_json::json!({ "apiKeyId": partner.key_id })),
        )
        .await?;
    let turns = state.store.transcript(session.id).await?;
    Ok(AxumJson(ExternalTranscript {
        assignment_id: id,
        attempt: session.attempt_number.unwrap_or(0),
        session_id: session.id,
        turns: turns
            .into_iter()
            .enumerate()
            .map(|(i, t)| ExternalTurn {
                index: i + 1,
                speaker: t.speaker,
                text: t.text,
                started_ms: t.started_ms,
                ended_ms: t.ended_ms,
            })
            .collect(),
    }))
}
