//! Scenario test runs (supervisors): start one, list a scenario's runs with their grades, re-run
//! every profiled scenario of the account. The runs themselves are background jobs
//! (`crate::testrun`).

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use store::{NewTestRun, ScenarioId, TestRunKind};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ErrorBody, Result};
use crate::extract::{IdPath, Json};
use crate::identity::Actor;
use crate::testrun::{self, TestRunView};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestRunRequest {
    /// Which AI counselor practises: a thorough risk assessment or a poor call.
    pub kind: TestRunKind,
    /// The most counselor turns (1 to 30; default 8).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 30)]
    pub max_turns: Option<i64>,
}

/// Queues a test run of the scenario: an AI counselor's text call against its caller, then the
/// normal grading. Answers the queued run (202); the list shows it running, then graded.
#[utoipa::path(post, path = "/api/scenarios/{id}/test-runs", tag = "scenarios", params(("id" = uuid::Uuid, Path)),
    request_body = TestRunRequest,
    responses((status = 202, body = TestRunView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn start_test_run(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath<ScenarioId>,
    Json(input): Json<TestRunRequest>,
) -> Result<(StatusCode, Json<TestRunView>)> {
    actor.require_supervisor()?;
    let new = NewTestRun {
        kind: input.kind,
        max_turns: input.max_turns.unwrap_or(testrun::DEFAULT_TURNS),
        requested_by: actor.user_id,
    };
    let run = state.store.create_test_run(actor.account_id, id, &new).await?;
    Ok((StatusCode::ACCEPTED, Json(TestRunView::queued(run))))
}

/// A scenario's test runs, newest first (at most 50), each with its call's length and its
/// evaluation (as reviewed) once graded.
#[utoipa::path(get, path = "/api/scenarios/{id}/test-runs", tag = "scenarios", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Vec<TestRunView>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn list_test_runs(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath<ScenarioId>,
) -> Result<Json<Vec<TestRunView>>> {
    actor.require_supervisor()?;
    Ok(Json(testrun::scenario_runs(&state, actor.account_id, id).await?))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RerunQueued {
    /// Runs queued: both kinds for each profiled scenario.
    pub queued: usize,
}

/// Re-runs every profiled scenario of the account, a thorough and a poor run each (after a
/// model or rubric change). 409 while an earlier re-run has unfinished runs.
#[utoipa::path(post, path = "/api/scenarios/test-runs/rerun-all", tag = "scenarios",
    responses((status = 202, body = RerunQueued), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn rerun_all(State(state): State<AppState>, actor: Actor) -> Result<(StatusCode, Json<RerunQueued>)> {
    actor.require_supervisor()?;
    let queued = state.store.rerun_all_test_runs(actor.account_id, actor.user_id, testrun::DEFAULT_TURNS).await?;
    Ok((StatusCode::ACCEPTED, Json(RerunQueued { queued })))
}
