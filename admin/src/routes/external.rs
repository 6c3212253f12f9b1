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
use crate::extract::{Json, Query};
use crate::identity::Partner;

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

/// Partner writes are audited with the key that made them (they have no user).
async fn partner_audit(state: &AppState, partner: &Partner, action: &str, target: (&str, Uuid)) -> Result<()> {
    state
        .store
        .audit(
            Some(partner.account_id),
            None,
            action,
            Some((target.0, target.1.to_string())),
            serde_json::json!({ "apiKey": partner.key_id }),
        )
        .await?;
    Ok(())
}

/// A scenario as partners see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExternalScenario {
    pub id: Uuid,
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
    pub title: String,
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
#[utoipa::path(get, path = "/api/external/scenarios", tag = "external",
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
#[utoipa::path(post, path = "/api/external/scenarios", tag = "external", request_body = ExternalScenarioInput,
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
    };
    let (scenario, _) = state.store.create_scenario(partner.account_id, None, &input).await?;
    partner_audit(&state, &partner, "external.scenario.created", ("scenario", scenario.id)).await?;
    Ok((StatusCode::CREATED, AxumJson(scenario.into())))
}

/// An assignment as partners see it: the counselor by their external id.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExternalAssignment {
    pub id: Uuid,
    pub scenario_id: Uuid,
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
#[utoipa::path(get, path = "/api/external/assignments", tag = "external", params(ExternalAssignmentQuery),
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
    pub scenario_id: Uuid,
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
    let new = NewAssignment {
        scenario_id: input.scenario_id,
        counselor_id: user.id,
        due_at: input.due_date,
        notes: input.notes,
    };
    let assignment = state.store.create_assignment(partner.account_id, None, &new).await?;
    partner_audit(&state, &partner, "external.assignment.created", ("assignment", assignment.id)).await?;
    Ok((StatusCode::CREATED, AxumJson(external_assignment(assignment, user.external_id))))
}
