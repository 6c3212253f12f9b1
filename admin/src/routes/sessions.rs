//! Practice sessions: lists (free practice, assigned, all), one session with its transcript and
//! review material, chat practice with the AI caller, evaluation, analysis and flag reports.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use store::{
    Analysis, Evaluation, FlagSeverity, FlagSource, NewFlag, ReportedFlagType, Session, SessionDetail, SessionFilter,
    SessionFlag, SessionListItem, TranscriptTurn, Usage,
};
use utoipa::ToSchema;

use crate::error::{ErrorBody, Result};
use crate::extract::{IdPath, Json, Query};
use crate::identity::Actor;
use crate::{AppState, evaluation, roleplay};
use store::{AssignmentId, ScenarioId, SessionId};

/// Sessions, newest first unless `sort` says otherwise. `type` = free_practice (default) |
/// assigned | all. Counselors see their own; supervisors see the account's and may filter by
/// `userId`. Each row names its scenario and counselor, with the reviewed score everyone sees
/// (none while held, for counselors) and, for supervisors, its flags and whether it needs review.
#[utoipa::path(get, path = "/api/sessions", tag = "sessions", params(SessionFilter),
    responses((status = 200, body = Vec<SessionListItem>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn list_sessions(
    State(state): State<AppState>,
    actor: Actor,
    Query(mut filter): Query<SessionFilter>,
) -> Result<Json<Vec<SessionListItem>>> {
    let supervisor = actor.role.is_supervisor();
    if !supervisor {
        filter.user_id = Some(actor.user_id);
        // Review state is the supervisors' business.
        filter.needs_review = None;
    }
    let listed = state.store.session_list_with_handles(actor.account_id, &filter).await?;
    // The score everyone reads is the reviewed one (overrides and every flag applied), read for
    // the whole page at once.
    let scored: Vec<&store::SessionRef> =
        listed.iter().filter(|(_, row)| row.overall_score.is_some() || row.held).map(|(handle, _)| handle).collect();
    let reviewed = evaluation::session_scores(&state, &scored).await?;
    let mut rows: Vec<SessionListItem> = listed.into_iter().map(|(_, row)| row).collect();
    for row in &mut rows {
        if let Some(&(score, band)) = reviewed.get(&row.session.id) {
            row.overall_score = score;
            row.score_band = band;
        }
        if !supervisor {
            if row.held {
                row.overall_score = None;
                row.score_band = None;
            }
            row.flags = 0;
            row.open_flags = 0;
            row.needs_review = false;
            row.reviewed = false;
        }
    }
    Ok(Json(rows))
}

/// Where the session's evaluation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EvaluationStatus {
    NotStarted,
    Running,
    Failed,
    Completed,
    /// Evaluated, but held for a supervisor's review (the transcript tried to steer the
    /// grader): the counselor sees "under review" without scores, partners wait.
    Pending,
}

impl EvaluationStatus {
    /// `of`, with an evaluation held for review answering `pending`.
    pub fn of_evaluation(evaluation: Option<&Evaluation>, running: bool, last_error: Option<&str>) -> Self {
        match evaluation {
            Some(e) if evaluation::is_held(e) => EvaluationStatus::Pending,
            e => Self::of(e.is_some(), running, last_error),
        }
    }

    /// The one derivation, for our API and the partner API: evaluated wins; else a live claim is
    /// running; else a recorded failure; else not started.
    pub fn of(evaluated: bool, running: bool, last_error: Option<&str>) -> Self {
        match (evaluated, running, last_error) {
            (true, _, _) => EvaluationStatus::Completed,
            (false, true, _) => EvaluationStatus::Running,
            (false, false, Some(_)) => EvaluationStatus::Failed,
            (false, false, None) => EvaluationStatus::NotStarted,
        }
    }
}

/// A session with its transcript (in spoken order) and evaluation; supervisors also get its
/// flags, analysis and LLM usage.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    #[serde(flatten)]
    pub detail: SessionDetail,
    /// The scenario practised; none for free practice with an improvised caller.
    pub scenario_title: Option<String>,
    pub evaluation_status: EvaluationStatus,
    /// Why the last evaluation attempt failed, if it did.
    pub evaluation_error: Option<String>,
    /// Why this session will not be graded, in words for the counselor (a voice call they never
    /// joined or never spoke in is not an attempt); none when it is or will be.
    pub not_graded_reason: Option<String>,
    pub flags: Vec<SessionFlag>,
    pub analysis: Option<Analysis>,
    pub usage: Option<Usage>,
    /// The counselor's call record (filed or skipped), if any.
    pub call_record: Option<store::CallRecord>,
    /// The session's scenario has a risk profile: the counselor files a call record after the
    /// call, and grading waits for it (or its skip).
    pub call_record_expected: bool,
}

#[utoipa::path(get, path = "/api/sessions/{id}", tag = "sessions", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = SessionView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_session(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath<SessionId>,
) -> Result<Json<SessionView>> {
    let session = actor.session(&state.store, id).await?;
    let mut detail = state.store.session_detail(&session).await?;
    // Reading a transcript is audited (polling is one read: see `Store::audit_read`).
    state
        .store
        .audit_read(
            &store::Audit::new(Some(actor.account_id), Some(actor.user_id), "session.transcript_read")
                .target("session", id),
        )
        .await?;
    let supervisor = actor.role.is_supervisor();
    // Everyone sees the supervisor-reviewed version, marked as reviewed; while it is held for
    // review, the counselor sees only that it is under review.
    detail.evaluation = evaluation::session_evaluation(&state, &session).await?;
    let (running, error) = state.store.evaluation_state(&session).await?;
    let evaluation_status = EvaluationStatus::of_evaluation(detail.evaluation.as_ref(), running, error.as_deref());
    if !supervisor {
        detail.evaluation = detail.evaluation.map(evaluation::under_review);
    }
    let (flags, analysis, usage) = if supervisor {
        (
            state.store.session_flags(&session).await?,
            state.store.analysis(&session).await?,
            Some(state.store.session_usage(&session).await?),
        )
    } else {
        (Vec::new(), None, None)
    };
    let not_graded_reason = not_graded_reason(&detail);
    let scenario_title = match detail.session.scenario_id {
        Some(scenario) => match state.store.scenario(actor.account_id, scenario).await {
            Ok(s) => Some(s.title),
            Err(store::Error::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    let call_record = state.store.call_record(id).await?;
    let call_record_expected = match detail.session.scenario_id {
        Some(scenario) => match state.store.scenario(actor.account_id, scenario).await {
            Ok(s) => s.risk_profile.is_some(),
            Err(store::Error::NotFound(_)) => false,
            Err(e) => return Err(e.into()),
        },
        None => false,
    };
    Ok(Json(SessionView {
        detail,
        scenario_title,
        evaluation_status,
        evaluation_error: error,
        not_graded_reason,
        flags,
        analysis,
        usage,
        call_record,
        call_record_expected,
    }))
}

/// An ended voice call without an evaluation that will never get one: never joined, or the
/// counselor never spoke (the store ends those as abandoned, not graded).
fn not_graded_reason(detail: &SessionDetail) -> Option<String> {
    let s = &detail.session;
    if s.kind != store::SessionKind::Voice || s.status != store::SessionStatus::Abandoned || detail.evaluation.is_some()
    {
        return None;
    }
    let spoke = detail.transcript.iter().any(|t| t.speaker == store::Speaker::Counselor);
    Some(match (s.joined_at, spoke) {
        (None, _) => "You did not join this call, so it is not an attempt and is not graded.".to_owned(),
        (Some(_), false) => {
            "You did not speak during this call, so it is not an attempt and is not graded. Start a new call when you are ready."
                .to_owned()
        }
        (Some(_), true) => "This call was ended before it could be graded; it is not an attempt.".to_owned(),
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewChatSession {
    /// Practise this assignment (starting it, if pending).
    #[serde(default)]
    #[schema(value_type = Option<Uuid>)]
    pub assignment_id: Option<AssignmentId>,
    /// Free practice on this reusable scenario; with neither, free practice with an improvised caller.
    #[serde(default)]
    #[schema(value_type = Option<Uuid>)]
    pub scenario_id: Option<ScenarioId>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatStarted {
    pub session: Session,
    /// The caller's first message.
    pub opening: TranscriptTurn,
    /// An attempt in progress was resumed (200) rather than started (201): the transcript may
    /// hold more than the opening.
    pub resumed: bool,
}

/// Starts a chat practice session and answers the AI caller's opening message. Starting an
/// assignment moves it to in progress. If the AI provider fails, nothing is stored (502/503).
/// Idempotent per attempt: with a chat attempt in progress for the assignment (or, in free
/// practice, one on the same scenario the counselor has not written in yet) it answers that one
/// with 200 and `resumed`, so a double click or Start again is one attempt.
#[utoipa::path(post, path = "/api/sessions", tag = "sessions", request_body = NewChatSession,
    responses((status = 201, body = ChatStarted), (status = 200, body = ChatStarted, description = "an attempt in progress, resumed"), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn create_chat_session(
    State(state): State<AppState>,
    actor: Actor,
    Json(input): Json<NewChatSession>,
) -> Result<(StatusCode, Json<ChatStarted>)> {
    crate::auth::rate_limit(
        &state.store,
        &format!("chat:user:{}", actor.user_id),
        state.config.rate_limits.chat_message,
        "chat messages",
    )
    .await?;
    let start = roleplay::ChatStart { assignment_id: input.assignment_id, scenario_id: input.scenario_id };
    let (session, opening, resumed) = roleplay::start_chat(&state, &actor, start).await?;
    let status = if resumed { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(ChatStarted { session, opening, resumed })))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CounselorMessage {
    /// What the counselor writes (1 to 4000 characters).
    #[schema(min_length = 1, max_length = 4000, pattern = r"\S")]
    pub content: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatExchange {
    pub counselor: TranscriptTurn,
    /// The AI caller's reply.
    pub caller: TranscriptTurn,
}

/// The counselor's message in, the AI caller's reply out (both stored, in spoken order).
#[utoipa::path(post, path = "/api/sessions/{id}/message", tag = "sessions", params(("id" = Uuid, Path)),
    request_body = CounselorMessage,
    responses((status = 200, body = ChatExchange), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn post_message(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath<SessionId>,
    Json(input): Json<CounselorMessage>,
) -> Result<Json<ChatExchange>> {
    crate::auth::rate_limit(
        &state.store,
        &format!("chat:user:{}", actor.user_id),
        state.config.rate_limits.chat_message,
        "chat messages",
    )
    .await?;
    let (counselor, caller) = roleplay::counselor_message(&state, &actor, id, &input.content).await?;
    Ok(Json(ChatExchange { counselor, caller }))
}

/// Evaluates the session against the rubric (once: a repeated or concurrent request answers the
/// same evaluation), completes its assignment, then starts the post-session analysis in the
/// background. The counselor evaluates their own session; supervisors any of the account. A
/// scenario with a risk profile waits for the counselor's call record (409 until it is filed or
/// skipped, or 10 minutes passed).
#[utoipa::path(post, path = "/api/sessions/{id}/evaluate", tag = "sessions", params(("id" = Uuid, Path)),
    responses((status = 200, body = Evaluation), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn evaluate(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath<SessionId>,
) -> Result<Json<Evaluation>> {
    let session = actor.session(&state.store, id).await?;
    if state.store.ai_evaluation_raw(&session).await?.is_none() {
        crate::auth::rate_limit(
            &state.store,
            &format!("evaluate:user:{}", actor.user_id),
            state.config.rate_limits.evaluate,
            "evaluations",
        )
        .await?;
    }
    let evaluated = evaluation::evaluate_session(&state, &session).await?.evaluation;
    let reviewed = crate::calibration::reviewed(&state, &session, evaluated).await?;
    // A held evaluation is under review for the counselor: no score until a supervisor releases it.
    Ok(Json(if actor.role.is_supervisor() { reviewed } else { evaluation::under_review(reviewed) }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReleaseInput {
    /// Why it may be released (audited; at most 4000 characters).
    #[serde(default)]
    pub note: Option<String>,
}

/// Releases an evaluation held for review (supervisors): the counselor and partners see it from
/// now on, as reviewed (override what needs it with a calibration review first), and the
/// webhook events it held back fire. 409 when it is not held.
#[utoipa::path(post, path = "/api/sessions/{id}/evaluation/release", tag = "sessions", params(("id" = Uuid, Path)),
    request_body = ReleaseInput,
    responses((status = 200, body = Evaluation), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn release_evaluation(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath<SessionId>,
    Json(input): Json<ReleaseInput>,
) -> Result<Json<Evaluation>> {
    let note = input.note.unwrap_or_default();
    Ok(Json(evaluation::release_held(&state, &actor, id, &note).await?))
}

/// Post-session analysis on demand (supervisors; idempotent: the stored analysis is answered
/// again; at most 5 requests per session per hour).
#[utoipa::path(post, path = "/api/sessions/{id}/analyze", tag = "sessions", params(("id" = Uuid, Path)),
    responses((status = 200, body = Analysis), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "The session has no transcript to analyse"),
        (status = 429, body = ErrorBody), (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn analyze(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath<SessionId>,
) -> Result<Json<Analysis>> {
    actor.require_supervisor()?;
    let session = actor.session(&state.store, id).await?;
    crate::auth::rate_limit(
        &state.store,
        &format!("analyze:session:{id}"),
        state.config.rate_limits.analyze,
        "analyses of this session",
    )
    .await?;
    Ok(Json(evaluation::analyze_session(&state, &session).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FlagReport {
    /// What went wrong with the AI caller (or the session).
    #[schema(min_length = 1, max_length = 5000, pattern = r"\S")]
    pub details: String,
    /// Default `ai_caller_problem`. Only these types: the safety flags judge the counselor and
    /// come from grading or a supervisor.
    #[serde(default)]
    pub flag_type: Option<ReportedFlagType>,
}

/// A counselor reports a problem (usually with the AI caller) for a supervisor to review.
#[utoipa::path(post, path = "/api/sessions/{id}/flag", tag = "sessions", params(("id" = Uuid, Path)),
    request_body = FlagReport,
    responses((status = 201, body = SessionFlag), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub async fn report_flag(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath<SessionId>,
    Json(input): Json<FlagReport>,
) -> Result<(StatusCode, Json<SessionFlag>)> {
    actor.session(&state.store, id).await?;
    crate::auth::rate_limit(
        &state.store,
        &format!("flag:user:{}", actor.user_id),
        state.config.rate_limits.flag,
        "flag reports",
    )
    .await?;
    let new = NewFlag {
        flag_type: input.flag_type.unwrap_or(ReportedFlagType::AiCallerProblem).into(),
        severity: FlagSeverity::Medium,
        source: FlagSource::UserFeedback,
        details: input.details.trim().to_owned(),
        turns: Vec::new(),
    };
    let flag = state.store.insert_flag(actor.account_id, id, &new).await?;
    crate::flags_raised(&state, std::slice::from_ref(&flag));
    Ok((StatusCode::CREATED, Json(flag)))
}
