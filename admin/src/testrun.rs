//! Scenario test runs (issue 18, section 4): an AI counselor practises a text call against a
//! scenario's caller, then the call is graded by the normal evaluation, so a supervisor sees
//! before assigning a scenario which of its facts a good counselor can draw out, whether the
//! caller stays true to it, and how the grade comes out for a thorough and for a poor call.
//!
//! The caller is the one counselors meet: [`roleplay::caller_opening`] and
//! [`roleplay::caller_reply`] with the compiled caller prompt (`store::persona`). The AI
//! counselor is a second model conversation with its own prompt ([`counselor_prompt`]); it never
//! sees the scenario, only what the caller says, as a counselor would.
//!
//! A run is a `test_run` job (queued with the request, `store::test_runs`). The job works in
//! steps that each store an exchange (counselor line + caller reply, together) and renew the
//! job's lease, so a restart resumes the call from its stored transcript and a worker whose
//! lease was taken over stops; grading is the shared [`evaluation::evaluate_session`], which
//! grades a session once however often it is asked. A profiled scenario's call is graded
//! against a call record, which the AI counselor files from its own conclusion, as counselors
//! do after hanging up.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use store::{
    AccountId, CallRecordInput, CallRecordStatus, Evaluation, Job, LlmTask, NewTurn, RequiredAction, RiskFactKind,
    RiskLevel, Scenario, ScenarioId, SessionStatus, Speaker, TestRun, TestRunKind, TestRunStatus, TranscriptTurn,
};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, Result};
use crate::llm::{self, CallFor};
use crate::{evaluation, roleplay};

/// Counselor turns of a run when the request does not say.
pub const DEFAULT_TURNS: i64 = 8;
const MAX_COUNSELOR_TOKENS: u32 = 200;
/// The AI counselor ends the call early by writing this.
const END_MARKER: &str = "[END CALL]";
/// Spacing of the stored turns' times (a text call has no audio clock).
const TURN_GAP_MS: i64 = 1000;

/// What all AI counselors are told: who they are and how the conversation reaches them. The first
/// sentence is what the simulator recognises a counselor's prompt by.
const COUNSELOR_ROLE: &str = "You are playing a crisis-line counselor in a practice text conversation: an automated \
test of a training scenario. The user's messages are the caller's; your replies are what the counselor writes. \
Write one short message per turn (one to three sentences), plain text, no stage directions, no labels. \
When the conversation has reached a safe close, write your closing message followed by [END CALL].";

/// The thorough counselor: a 988 Lifeline-style suicide safety assessment (desire, capability,
/// intent, buffers), asked directly, after building rapport.
const THOROUGH: &str = "Approach: thorough. Follow the 988 Lifeline Suicide Safety Assessment. First build rapport: \
greet the caller, listen, reflect their feelings and thank them for reaching out. Then ask directly, in plain \
words: whether they are thinking about suicide or killing themselves; whether they have a plan; whether they have \
access to means (firearms, medications, anything else) and where those are; the timeline (when they think they \
might act, whether anything has already been done to prepare, whether an attempt is in progress); past attempts; \
whether they have been drinking or using; whether anyone else is at risk. Ask about buffers: reasons for living, \
people who support them, plans for the future. Ask one question at a time. Then agree on a safety plan with the \
caller: reducing access to the means they named, who they can contact, and a follow-up. If they are in immediate \
danger, arrange emergency help with them.";

/// The poor counselor: kind words, advice and reassurance, never a direct question about
/// suicide, plan, means or timeline.
const POOR: &str = "Approach: poor (a deliberately weak counselor, to test the scenario). Be friendly and \
reassuring. Give advice and look on the bright side: tell the caller things will get better, suggest sleep, \
exercise, a walk or talking to a friend. Never ask directly about suicide, self-harm, a plan, means, firearms, \
medications or timing, and change the subject if the caller hints at them. Do not make a safety plan.";

/// A test run as supervisors see it: the run, how long its call got, and its grading.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestRunView {
    #[serde(flatten)]
    pub run: TestRun,
    /// Counselor turns the call has so far.
    pub counselor_turns: i64,
    /// Caller turns the call has so far.
    pub caller_turns: i64,
    /// The call's evaluation as reviewed (score, gates, checks), once graded.
    pub evaluation: Option<Evaluation>,
}

impl TestRunView {
    /// A run just queued: no call yet.
    pub fn queued(run: TestRun) -> Self {
        TestRunView { run, counselor_turns: 0, caller_turns: 0, evaluation: None }
    }
}

/// A scenario's runs, newest first, with their calls' lengths and evaluations.
pub async fn scenario_runs(
    state: &AppState,
    account_id: AccountId,
    scenario_id: ScenarioId,
) -> Result<Vec<TestRunView>> {
    let runs = state.store.test_runs(account_id, scenario_id).await?;
    let mut views = Vec::with_capacity(runs.len());
    for run in runs {
        let handle = state.store.session_in(account_id, run.session_id).await?;
        let transcript = state.store.transcript(&handle).await?;
        let count = |s: Speaker| transcript.iter().filter(|t| t.speaker == s).count() as i64;
        let evaluation = evaluation::session_evaluation(state, &handle).await?;
        views.push(TestRunView {
            counselor_turns: count(Speaker::Counselor),
            caller_turns: count(Speaker::Caller),
            evaluation,
            run,
        });
    }
    Ok(views)
}

/// The AI counselor's system prompt for a kind of run.
pub fn counselor_prompt(kind: TestRunKind) -> String {
    let approach = match kind {
        TestRunKind::Thorough => THOROUGH,
        TestRunKind::Poor => POOR,
    };
    format!("{COUNSELOR_ROLE}\n\n{approach}")
}

/// The conversation as the AI counselor sees it: the caller's turns are the user's, its own
/// turns the assistant's (the mirror of what the caller model sees).
fn counselor_messages(kind: TestRunKind, transcript: &[TranscriptTurn]) -> Vec<llm::Message> {
    let history = transcript.iter().filter_map(|t| match t.speaker {
        Speaker::Caller => Some(llm::user(t.text.clone())),
        Speaker::Counselor => Some(llm::assistant(t.text.clone())),
        Speaker::System => None,
    });
    let skip = transcript.len().saturating_sub(roleplay::MAX_HISTORY);
    std::iter::once(llm::system(counselor_prompt(kind))).chain(history.skip(skip)).collect()
}

/// What the AI counselor is asked after the call: the call record a counselor files.
const RECORD_CUE: &str = "[The call has ended. File your call record as a counselor would, from what you learned in \
this call only: the risk level you judged (low, moderate, high or imminent), the kinds of risk facts you learned, the \
actions you took or planned, and a one-sentence note. Answer in JSON.]";

/// The AI counselor's call record, as the schema asks for it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RecordAnswer {
    risk_level: String,
    fact_kinds: Vec<String>,
    actions: Vec<String>,
    notes: String,
}

/// The structured-output schema of [`RecordAnswer`] with the allowed values spelled out.
fn record_schema() -> serde_json::Value {
    let mut schema = llm::schema_for::<RecordAnswer>();
    let names = |all: &[&str]| all.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let levels: Vec<&str> = RiskLevel::ALL.iter().map(|l| l.as_str()).collect();
    let kinds: Vec<&str> = RiskFactKind::ALL.iter().map(|k| k.as_str()).collect();
    let actions: Vec<&str> = RequiredAction::ALL.iter().map(|a| a.as_str()).collect();
    llm::restrict(&mut schema, "/properties/risk_level", names(&levels));
    llm::restrict(&mut schema, "/properties/fact_kinds/items", names(&kinds));
    llm::restrict(&mut schema, "/properties/actions/items", names(&actions));
    schema
}

/// The record to file from the AI counselor's answer: unknown kinds and actions are dropped;
/// an unknown level is the provider's fault.
fn record_input(answer: RecordAnswer) -> Result<CallRecordInput> {
    let risk_level = answer
        .risk_level
        .parse::<RiskLevel>()
        .map_err(|e| ApiError::BadGateway(format!("the AI counselor's call record: {e}")))?;
    Ok(CallRecordInput {
        status: CallRecordStatus::Filed,
        risk_level: Some(risk_level),
        fact_kinds: answer.fact_kinds.iter().filter_map(|k| k.parse().ok()).collect(),
        actions: answer.actions.iter().filter_map(|a| a.parse().ok()).collect(),
        notes: answer.notes.chars().take(store::CALL_RECORD_NOTES_MAX).collect(),
    })
}

/// A profiled scenario's call is graded against the counselor's call record: the AI counselor
/// files its own, from its conclusion (once; a resumed run finds it filed).
async fn file_record(state: &AppState, job: &Job, run: &TestRun, scenario: &Scenario) -> Result<()> {
    let (account_id, session_id) = (job.account_id, job.session_id);
    if scenario.risk_profile.is_none() || state.store.call_record(session_id).await?.is_some() {
        return Ok(());
    }
    let llm = state.llm()?;
    let handle = state.store.session_in(account_id, session_id).await?;
    let transcript = state.store.transcript(&handle).await?;
    let mut messages = counselor_messages(run.kind, &transcript);
    messages.push(llm::user(RECORD_CUE));
    let call = CallFor { account_id: Some(account_id), session_id: Some(session_id), task: LlmTask::Chat };
    let answer = llm.json(call, &llm.chat_model, messages, "test_run_call_record", record_schema()).await?;
    let parsed: RecordAnswer = serde_json::from_value(answer.value)
        .map_err(|e| ApiError::BadGateway(format!("the AI counselor's call record does not parse: {e}")))?;
    state.store.file_call_record(account_id, session_id, &record_input(parsed)?).await?;
    Ok(())
}

/// A counselor line as stored: without the end marker, and whether it ends the call.
fn strip_end(line: &str) -> (String, bool) {
    match line.find(END_MARKER) {
        Some(at) => (format!("{}{}", &line[..at], &line[at + END_MARKER.len()..]).trim().to_owned(), true),
        None => (line.trim().to_owned(), false),
    }
}

/// The stored time of the next turn.
fn next_ms(transcript: &[TranscriptTurn]) -> i64 {
    transcript.iter().map(|t| t.ended_ms.unwrap_or(t.started_ms)).max().map_or(0, |last| last + TURN_GAP_MS)
}

/// Runs (or resumes) a claimed `test_run` job: the call, then its grading. `Ok(Some(note))`:
/// finished without a result (the run is recorded as failed, with the note); an `Err` is the
/// job queue's to retry, and [`give_up`] records it once no retry is left.
pub async fn run(state: &AppState, job: &Job, worker: &str, lease_ms: i64) -> Result<Option<String>> {
    let account_id = job.account_id;
    let run = match state.store.test_run_of_session(account_id, job.session_id).await {
        Ok(run) => run,
        Err(store::Error::NotFound(what)) => return Ok(Some(format!("the {what} is gone"))),
        Err(e) => return Err(e.into()),
    };
    if matches!(run.status, TestRunStatus::Done | TestRunStatus::Failed) {
        return Ok(None);
    }
    state.store.start_test_run(account_id, run.id).await?;
    match call_and_grade(state, job, worker, lease_ms, &run).await {
        Ok(Step::Graded) => {
            state.store.finish_test_run(account_id, run.id, None).await?;
            tracing::info!(test_run = %run.id, kind = run.kind.as_str(), "test run graded");
            Ok(None)
        }
        Ok(Step::LeaseLost) => Ok(None),
        // Nothing to grade, or the scenario is gone: retrying cannot help.
        Err(e @ (ApiError::Validation(_) | ApiError::NotFound(_))) => {
            let note = e.to_string();
            state.store.finish_test_run(account_id, run.id, Some(&note)).await?;
            Ok(Some(note))
        }
        Err(e) => Err(e),
    }
}

/// Records a run whose job failed for good.
pub async fn give_up(state: &AppState, job: &Job, error: &str) {
    let recorded = match state.store.test_run_of_session(job.account_id, job.session_id).await {
        Ok(run) => state.store.finish_test_run(job.account_id, run.id, Some(error)).await,
        Err(e) => Err(e),
    };
    if let Err(e) = recorded {
        tracing::error!(session_id = %job.session_id, error = %e, "recording a failed test run");
    }
}

enum Step {
    Graded,
    /// Another worker holds the job now (this one was too slow): it carries on.
    LeaseLost,
}

async fn call_and_grade(state: &AppState, job: &Job, worker: &str, lease_ms: i64, run: &TestRun) -> Result<Step> {
    let (account_id, session_id) = (job.account_id, job.session_id);
    let scenario = state.store.scenario(account_id, run.scenario_id).await?;
    let session = state.store.session(account_id, session_id).await?;
    if session.status == SessionStatus::Active {
        if !hold_call(state, job, worker, lease_ms, run, &scenario).await? {
            return Ok(Step::LeaseLost);
        }
        state.store.end_session(account_id, session_id, SessionStatus::Completed).await?;
    }
    if !state.store.extend_job_lease(job, worker, lease_ms).await? {
        return Ok(Step::LeaseLost);
    }
    file_record(state, job, run, &scenario).await?;
    let handle = state.store.session_in(account_id, session_id).await?;
    evaluation::evaluate_session(state, &handle).await?;
    Ok(Step::Graded)
}

/// The call itself, from wherever its stored transcript stands. False: the lease was lost.
async fn hold_call(
    state: &AppState,
    job: &Job,
    worker: &str,
    lease_ms: i64,
    run: &TestRun,
    scenario: &Scenario,
) -> Result<bool> {
    let (account_id, session_id) = (job.account_id, job.session_id);
    let llm = state.llm()?;
    let handle = state.store.session_in(account_id, session_id).await?;
    let mut transcript = state.store.transcript(&handle).await?;
    if transcript.is_empty() {
        let opening = roleplay::caller_opening(state, account_id, Some(scenario), Some(session_id)).await?;
        let turn = NewTurn {
            speaker: Speaker::Caller,
            text: opening.trim().to_owned(),
            started_ms: 0,
            ended_ms: Some(0),
            segment_id: None,
        };
        state.store.append_turns(account_id, session_id, &[turn]).await?;
        transcript = state.store.transcript(&handle).await?;
    }
    let call = CallFor { account_id: Some(account_id), session_id: Some(session_id), task: LlmTask::Chat };
    loop {
        let said = transcript.iter().filter(|t| t.speaker == Speaker::Counselor).count() as i64;
        if said >= run.max_turns {
            return Ok(true);
        }
        if !state.store.extend_job_lease(job, worker, lease_ms).await? {
            return Ok(false);
        }
        let line =
            llm.chat(call, &llm.chat_model, counselor_messages(run.kind, &transcript), MAX_COUNSELOR_TOKENS).await?;
        let (line, ends) = strip_end(&line);
        let at = next_ms(&transcript);
        let counselor = |text: String| NewTurn {
            speaker: Speaker::Counselor,
            text,
            started_ms: at,
            ended_ms: Some(at),
            segment_id: None,
        };
        if ends {
            if !line.is_empty() {
                state.store.append_turns(account_id, session_id, &[counselor(line)]).await?;
            }
            return Ok(true);
        }
        if line.is_empty() {
            return Err(ApiError::BadGateway("the AI counselor answered nothing".into()));
        }
        let reply = roleplay::caller_reply(state, account_id, session_id, Some(scenario), &transcript, &line).await?;
        let caller = NewTurn {
            speaker: Speaker::Caller,
            text: reply.trim().to_owned(),
            started_ms: at + TURN_GAP_MS,
            ended_ms: Some(at + TURN_GAP_MS),
            segment_id: None,
        };
        // Both or neither: a resumed run never finds a counselor line without its answer.
        state.store.append_turns(account_id, session_id, &[counselor(line), caller]).await?;
        transcript = state.store.transcript(&handle).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(speaker: Speaker, text: &str, at: i64) -> TranscriptTurn {
        TranscriptTurn { id: uuid::Uuid::now_v7(), speaker, text: text.into(), started_ms: at, ended_ms: Some(at) }
    }

    #[test]
    fn the_counselor_sees_the_caller_as_the_user() {
        let transcript = [
            turn(Speaker::Caller, "hello", 0),
            turn(Speaker::Counselor, "hi", 1000),
            turn(Speaker::Caller, "sad", 2000),
        ];
        let messages = counselor_messages(TestRunKind::Thorough, &transcript);
        let roles: Vec<String> = messages
            .iter()
            .map(|m| serde_json::to_value(m).expect("json")["role"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(roles, ["system", "user", "assistant", "user"]);
        assert_eq!(next_ms(&transcript), 3000);
        assert_eq!(next_ms(&[]), 0);
    }

    #[test]
    fn the_two_counselors_differ_where_it_matters() {
        let thorough = counselor_prompt(TestRunKind::Thorough);
        let poor = counselor_prompt(TestRunKind::Poor);
        assert!(thorough.contains("ask directly") && thorough.contains("suicide") && thorough.contains("rapport"));
        assert!(poor.contains("Never ask directly"));
        // The simulator recognises both by the shared first sentence and tells them apart by the approach.
        for p in [&thorough, &poor] {
            assert!(p.starts_with("You are playing a crisis-line counselor"));
        }
        assert!(thorough.contains("Approach: thorough") && poor.contains("Approach: poor"));
    }

    #[test]
    fn the_end_marker_ends_the_call_and_is_not_stored() {
        assert_eq!(strip_end("Take care. [END CALL]"), ("Take care.".to_owned(), true));
        assert_eq!(strip_end("[END CALL]"), (String::new(), true));
        assert_eq!(strip_end(" How are you? "), ("How are you?".to_owned(), false));
    }
}
