//! The AI caller in chat practice. Split brain: the caller model sees only the scenario's
//! caller persona (or a generic free-practice persona) and the conversation — never the
//! grading guidance, the policies or the rubric, so it cannot coach the counselor. The prompt
//! itself is built in `store::persona`, shared with the voice agent.

use store::{
    LlmTask, NewSession, NewTurn, Scenario, ScenarioMode, Session, SessionKind, Speaker, Timestamp, TranscriptTurn,
    persona,
};

use crate::AppState;
use crate::error::{ApiError, Result};
use crate::identity::Actor;
use crate::llm::{self, CallFor};
use store::{AccountId, AssignmentId, ScenarioId, SessionId};

/// PRODUCT.md: chat keeps at most 100 messages of history per request.
pub const MAX_HISTORY: usize = 100;
const MAX_CALLER_TOKENS: u32 = 300;
pub const MAX_MESSAGE_CHARS: usize = 4000;

/// The chat caller's system prompt (shared with voice: `store::persona`).
fn caller_system_prompt(scenario: Option<&Scenario>) -> String {
    persona::caller_instructions(
        scenario.map(|s| s.prompt.as_str()),
        scenario.and_then(|s| s.risk_profile.as_ref()),
        persona::Medium::Chat,
    )
}

const OPENING_CUE: &str = "[The counselor has just accepted your chat. Write your first message to them.]";

/// The conversation as the caller model sees it: counselor turns are the user's, caller turns
/// its own, the newest `MAX_HISTORY` messages only.
fn caller_messages(
    scenario: Option<&Scenario>,
    transcript: &[TranscriptTurn],
    new_counselor_text: &str,
) -> Vec<llm::Message> {
    let mut history: Vec<llm::Message> = transcript
        .iter()
        .filter_map(|t| match t.speaker {
            Speaker::Counselor => Some(llm::user(t.text.clone())),
            Speaker::Caller => Some(llm::assistant(t.text.clone())),
            Speaker::System => None,
        })
        .collect();
    history.push(llm::user(new_counselor_text.to_owned()));
    let skip = history.len().saturating_sub(MAX_HISTORY);
    let mut messages = vec![llm::system(caller_system_prompt(scenario))];
    messages.extend(history.into_iter().skip(skip));
    messages
}

/// The caller's first message (the LLM's answer; nothing is stored). Shared by counselors' chat
/// practice and scenario test runs, so a test run hears the caller counselors will.
pub(crate) async fn caller_opening(
    state: &AppState,
    account_id: AccountId,
    scenario: Option<&Scenario>,
    session_id: Option<SessionId>,
) -> Result<String> {
    let llm = state.llm()?;
    let call = CallFor { account_id: Some(account_id), session_id, task: LlmTask::Chat };
    let messages = vec![llm::system(caller_system_prompt(scenario)), llm::user(OPENING_CUE)];
    Ok(llm.chat(call, &llm.chat_model, messages, MAX_CALLER_TOKENS).await?)
}

/// The caller's reply to the counselor's newest message (the LLM's answer; nothing is stored).
pub(crate) async fn caller_reply(
    state: &AppState,
    account_id: AccountId,
    session_id: SessionId,
    scenario: Option<&Scenario>,
    transcript: &[TranscriptTurn],
    text: &str,
) -> Result<String> {
    let llm = state.llm()?;
    let call = CallFor { account_id: Some(account_id), session_id: Some(session_id), task: LlmTask::Chat };
    let messages = caller_messages(scenario, transcript, text);
    Ok(llm.chat(call, &llm.chat_model, messages, MAX_CALLER_TOKENS).await?)
}

/// What a chat session starts from.
#[derive(Debug, Clone, Copy)]
pub struct ChatStart {
    pub assignment_id: Option<AssignmentId>,
    pub scenario_id: Option<ScenarioId>,
}

/// Starts a chat session (assignment, scenario or free practice) with the caller's first
/// message. The LLM is asked first: if it fails, nothing is written and the assignment does not
/// start.
/// Answers the session, the caller's opening turn and whether an attempt in progress was
/// resumed rather than started.
pub async fn start_chat(state: &AppState, actor: &Actor, start: ChatStart) -> Result<(Session, TranscriptTurn, bool)> {
    let scenario = match (start.assignment_id, start.scenario_id) {
        (Some(_), Some(_)) => {
            return Err(ApiError::validation("scenarioId", "give an assignment or a scenario, not both"));
        }
        (Some(id), None) => {
            let assignment = state.store.assignment(actor.account_id, id).await?;
            if assignment.counselor_id != actor.user_id {
                return Err(ApiError::NotFound("assignment"));
            }
            if assignment.status == store::AssignmentStatus::Completed {
                return Err(ApiError::Conflict {
                    message: "the assignment is completed; ask for a new one to practise again".into(),
                    existing_id: None,
                });
            }
            Some(state.store.scenario(actor.account_id, assignment.scenario_id).await?)
        }
        (None, Some(id)) => {
            let scenario = state.store.scenario(actor.account_id, id).await?;
            // Free practice on a one-time scenario would expose the person it was written for.
            if scenario.is_one_time {
                return Err(ApiError::NotFound("scenario"));
            }
            Some(scenario)
        }
        (None, None) => None,
    };
    if let Some(s) = &scenario
        && s.mode != ScenarioMode::Chat
        && start.assignment_id.is_some()
    {
        return Err(ApiError::validation("assignmentId", "the scenario is practised by voice, not by chat"));
    }
    let new = NewSession {
        user_id: actor.user_id,
        assignment_id: start.assignment_id,
        scenario_id: if start.assignment_id.is_some() { None } else { start.scenario_id },
        kind: SessionKind::Chat,
        room_name: None,
    };
    // A repeated start (double click, second tab, Start on an assignment in progress) resumes
    // the attempt in progress instead of opening another one.
    if let Some(session) = state.store.resumable_chat(actor.account_id, &new).await? {
        let opening = first_turn(state, actor, session.id).await?;
        return Ok((session, opening, true));
    }
    let opening = caller_opening(state, actor.account_id, scenario.as_ref(), None).await?;
    let turn = NewTurn {
        speaker: Speaker::Caller,
        text: opening.trim().to_owned(),
        started_ms: 0,
        ended_ms: Some(0),
        segment_id: None,
    };
    // Decided again under the counselor's lock: of two racing starts, the second resumes.
    let (session, resumed) = state.store.start_chat_session(actor.account_id, &new, &turn).await?;
    let opening = first_turn(state, actor, session.id).await?;
    Ok((session, opening, resumed))
}

async fn first_turn(state: &AppState, actor: &Actor, session_id: SessionId) -> Result<TranscriptTurn> {
    let handle = actor.session(&state.store, session_id).await?;
    let transcript = state.store.transcript(&handle).await?;
    transcript.into_iter().next().ok_or(ApiError::NotFound("turn"))
}

/// One counselor message in, the caller's reply out. The reply is generated first and both
/// turns are stored together, so a failed LLM call leaves the conversation as it was.
pub async fn counselor_message(
    state: &AppState,
    actor: &Actor,
    session_id: SessionId,
    text: &str,
) -> Result<(TranscriptTurn, TranscriptTurn)> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > MAX_MESSAGE_CHARS {
        return Err(ApiError::validation("content", format!("must be 1 to {MAX_MESSAGE_CHARS} characters")));
    }
    let session = state.store.session_in(actor.account_id, session_id).await?;
    if session.user_id != actor.user_id {
        return Err(ApiError::NotFound("session"));
    }
    if session.kind != SessionKind::Chat {
        return Err(ApiError::validation("sessionId", "voice sessions are practised in their LiveKit room"));
    }
    if session.status != store::SessionStatus::Active {
        return Err(ApiError::Conflict { message: "the session has ended".into(), existing_id: None });
    }
    let scenario = match session.scenario_id {
        Some(id) => Some(state.store.scenario(actor.account_id, id).await?),
        None => None,
    };
    let transcript = state.store.transcript(&session).await?;
    let reply = caller_reply(state, actor.account_id, session_id, scenario.as_ref(), &transcript, text).await?;
    let now = Timestamp::now().millis() - session.started_at.millis();
    let last = transcript.iter().map(|t| t.ended_ms.unwrap_or(t.started_ms)).max().unwrap_or(0);
    // Spoken order, even if the clock moved backwards.
    let at = now.max(last + 1);
    let turns = [
        NewTurn {
            speaker: Speaker::Counselor,
            text: text.to_owned(),
            started_ms: at,
            ended_ms: Some(at),
            segment_id: None,
        },
        NewTurn {
            speaker: Speaker::Caller,
            text: reply.trim().to_owned(),
            started_ms: at + 1,
            ended_ms: Some(at + 1),
            segment_id: None,
        },
    ];
    state.store.append_turns(actor.account_id, session_id, &turns).await?;
    let transcript = state.store.transcript(&session).await?;
    let n = transcript.len();
    if n < 2 {
        return Err(ApiError::NotFound("turn"));
    }
    Ok((transcript[n - 2].clone(), transcript[n - 1].clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_is_capped_and_roles_map() {
        let turn = |i: usize| TranscriptTurn {
            id: uuid::Uuid::now_v7(),
            speaker: if i.is_multiple_of(2) { Speaker::Caller } else { Speaker::Counselor },
            text: format!("t{i}"),
            started_ms: i as i64,
            ended_ms: None,
        };
        let transcript: Vec<_> = (0..150).map(turn).collect();
        let messages = caller_messages(None, &transcript, "latest");
        assert_eq!(messages.len(), 1 + MAX_HISTORY);
        let last = serde_json::to_value(messages.last()).expect("json");
        assert_eq!((last["role"].as_str(), last["content"].as_str()), (Some("user"), Some("latest")));
        let first = serde_json::to_value(&messages[0]).expect("json");
        assert_eq!(first["role"], "system");
    }
}
