//! The call core against the Realtime simulator over a real WebSocket (no LiveKit): the session
//! shape is accepted, a spoken turn is transcribed and answered, the answer is paced out, and a
//! barge-in is truncated to what was played without the server refusing it.
//!
//! The driver below is what `roleplay` does minus the room: it feeds the counselor's audio (a
//! loud tone for speech, zeros for silence) one 20 ms frame per tick. The last test ends its call
//! through the co-deployed store, as `roleplay` does, to see the voice spend land in the budget.

use std::time::{Duration, Instant};

use agent::call::{Call, CallConfig, CallOutput};
use agent::realtime::{RealtimeConfig, TurnDetection};
use agent::roleplay::open_socket;
use agent::turns::{CallEnd, CallSetup, EndReason, Speaker, SpokenTurn, TurnsConfig};
use futures_util::{SinkExt, StreamExt};
use openai_sim::{Direction, Rule, Simulator};
use tokio_tungstenite::tungstenite::Message;

fn setup() -> CallSetup {
    CallSetup {
        session_id: uuid::Uuid::nil(),
        instructions: "You are a caller.".into(),
        voice: "alloy".into(),
        caller_speaks_first: false,
        phone_line: false,
        max_duration: Duration::from_secs(60),
        silence_timeout: Duration::from_secs(60),
        prior_turns: vec![],
        token_cap: None,
    }
}

fn config(base_url: String) -> RealtimeConfig {
    RealtimeConfig {
        base_url,
        api_key: "sk-test".into(),
        model: "gpt-realtime".into(),
        transcription_model: "gpt-4o-mini-transcribe".into(),
        turn_detection: TurnDetection::ServerVad { threshold: 0.5, prefix_padding_ms: 300, silence_duration_ms: 400 },
        session_cap: Duration::from_secs(1500),
    }
}

fn tone(k: u64) -> Vec<i16> {
    (0..960)
        .map(|i| ((((k * 960 + i) as f64) * 2.0 * std::f64::consts::PI * 300.0 / 48_000.0).sin() * 9000.0) as i16)
        .collect()
}

#[derive(Default)]
struct Seen {
    turns: Vec<SpokenTurn>,
    caller_frames: u64,
    ended: Option<EndReason>,
}

/// Runs the call for `total`, asking `speak(elapsed, seen)` each tick whether the counselor speaks.
async fn drive(call: &mut Call, total: Duration, mut speak: impl FnMut(Duration, &Seen) -> bool) -> Seen {
    let start = Instant::now();
    let mut seen = Seen::default();
    let mut ws: Option<agent::roleplay::Ws> = None;
    let mut frames = 0u64;
    loop {
        while let Some(out) = call.poll_output() {
            match out {
                CallOutput::Realtime(text) => {
                    if let Some(w) = ws.as_mut() {
                        w.send(Message::Text(text.into())).await.expect("send");
                    }
                }
                CallOutput::Connect { .. } => {
                    let url = BASE.with(|b| b.borrow().clone());
                    ws = Some(open_socket(config(url), Duration::ZERO).await.expect("connect"));
                    call.realtime_opened(Instant::now());
                }
                CallOutput::Tick { caller, .. } => {
                    if caller {
                        seen.caller_frames += 1;
                    }
                    let elapsed = start.elapsed();
                    let pcm = if speak(elapsed, &seen) { tone(frames) } else { vec![0; 960] };
                    frames += 1;
                    {
                        let now = Instant::now();
                        call.counselor_audio(now, now, &pcm);
                    }
                }
                CallOutput::Turn(t) => seen.turns.push(t),
                CallOutput::End(reason) => {
                    seen.ended = Some(reason);
                    return seen;
                }
                _ => {}
            }
        }
        if start.elapsed() >= total {
            return seen;
        }
        let deadline = tokio::time::Instant::from_std(call.poll_timeout());
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => call.handle_timeout(Instant::now()),
            m = async { ws.as_mut().expect("socket").next().await }, if ws.is_some() => match m {
                Some(Ok(Message::Text(t))) => call.realtime_message(Instant::now(), &t),
                Some(Ok(_)) => {}
                _ => { ws = None; call.realtime_closed(Instant::now()); }
            },
        }
    }
}

thread_local! {
    static BASE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

#[tokio::test(flavor = "current_thread")]
async fn a_turn_is_transcribed_answered_and_stored_in_order() {
    let sim = Simulator::start().await.unwrap();
    sim.add_rule(
        Rule::realtime().utterance(1).transcript("Hello, this is the crisis line.").reply_text("I can't sleep."),
    );
    BASE.with(|b| *b.borrow_mut() = sim.base_url());
    let mut call = Call::new(Instant::now(), setup(), config(sim.base_url()), CallConfig::default());
    let seen = drive(&mut call, Duration::from_secs(7), |t, _| {
        t > Duration::from_millis(300) && t < Duration::from_millis(1500)
    })
    .await;
    let turns: Vec<(Speaker, &str)> = seen.turns.iter().map(|t| (t.speaker, t.text.as_str())).collect();
    assert_eq!(turns, [(Speaker::Counselor, "Hello, this is the crisis line."), (Speaker::Caller, "I can't sleep.")]);
    assert!(seen.caller_frames > 10, "caller frames {}", seen.caller_frames);
    let conns = sim.realtime_connections();
    assert_eq!(conns.len(), 1);
    let errors: Vec<_> =
        conns[0].events.iter().filter(|e| e.direction == Direction::Server && e.kind == "error").collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert!(conns[0].events.iter().any(|e| e.kind == "session.updated"));
    let (usage, metrics, stats) = call.summary();
    assert!(usage.output_audio_ms > 0);
    assert_eq!(metrics.len(), 1);
    assert_eq!(stats.underruns, 0);
    sim.shutdown().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_barge_in_is_truncated_to_what_was_played() {
    let sim = Simulator::start().await.unwrap();
    sim.add_rule(Rule::realtime().utterance(1).transcript("Hi.").reply_text(
        "Well, it started a few weeks ago when I lost my job, and since then I have not been able to sleep at all, not even for an hour.",
    ));
    BASE.with(|b| *b.borrow_mut() = sim.base_url());
    let mut call = Call::new(Instant::now(), setup(), config(sim.base_url()), CallConfig::default());
    let mut barge_at: Option<Duration> = None;
    let seen = drive(&mut call, Duration::from_secs(7), |t, seen| {
        if t > Duration::from_millis(300) && t < Duration::from_millis(1300) {
            return true;
        }
        // Half a second of the caller heard, then the counselor talks over it for a second.
        if barge_at.is_none() && seen.caller_frames >= 25 {
            barge_at = Some(t);
        }
        barge_at.is_some_and(|b| t >= b && t < b + Duration::from_secs(1))
    })
    .await;
    assert!(barge_at.is_some(), "the caller never spoke");
    let caller = seen.turns.iter().find(|t| t.speaker == Speaker::Caller).expect("caller turn");
    assert!(caller.cut, "{caller:?}");
    let conns = sim.realtime_connections();
    let truncate = conns[0]
        .events
        .iter()
        .find(|e| e.direction == Direction::Client && e.kind == "conversation.item.truncate")
        .expect("a truncate");
    let ms = truncate.event["audio_end_ms"].as_u64().unwrap();
    assert!((400..3000).contains(&ms), "truncated at {ms} ms");
    let errors: Vec<_> =
        conns[0].events.iter().filter(|e| e.direction == Direction::Server && e.kind == "error").collect();
    assert!(errors.iter().all(|e| e.event["error"]["code"] == "response_cancel_not_active"), "{errors:?}");
    sim.shutdown().await;
}

/// Realtime usage is spend: the simulator reports `usage` in `response.done` as OpenAI does, the
/// call sums it, and once it reaches the account's per-session token cap the call ends after
/// the answer in progress was heard (as the session limit). Its end, stored like `roleplay`
/// stores it, records the spend under the account and the counselor.
#[tokio::test(flavor = "current_thread")]
async fn a_call_records_its_spend_and_the_token_cap_ends_it() {
    let db = store::testing::sqlite().await;
    let s = &db.store;
    let account = s.create_account("Center").await.expect("account");
    let counselor = s
        .create_user(
            account.id,
            store::NewUser {
                email: "casey@example.org".into(),
                display_name: "Casey".into(),
                role: store::Role::Counselor,
                external_id: None,
                is_demo: false,
            },
        )
        .await
        .expect("counselor");
    // Far below a long call: the first answers reach it.
    let budget = store::AccountBudget { monthly_budget_usd: None, session_token_cap: Some(1_000) };
    s.set_account_budget(account.id, &budget, &store::Audit::new(Some(account.id), None, "account.budget_set"))
        .await
        .expect("budget");
    let new = store::NewSession {
        user_id: counselor.id,
        assignment_id: None,
        scenario_id: None,
        kind: store::SessionKind::Voice,
        room_name: Some("pt-spend".into()),
    };
    let session = s.start_voice_session(account.id, &new, None).await.expect("session").0;
    let metadata = serde_json::json!({"sessionId": session.id, "accountId": account.id, "credential": ""}).to_string();
    let defaults = store::CallDefaults { voice: "alloy".into(), max_duration_ms: 60_000, silence_timeout_ms: 60_000 };
    let turns = agent::turns::connect(&metadata, &TurnsConfig::Store(s.clone(), defaults)).expect("turns");
    let setup = turns.setup().await.expect("setup");
    assert_eq!(setup.token_cap, Some(1_000));

    let sim = Simulator::start().await.unwrap();
    sim.add_rule(
        Rule::realtime()
            .transcript("Crisis line, I'm listening. Tell me what's going on tonight, take your time.")
            .reply_text("I haven't slept in days."),
    );
    BASE.with(|b| *b.borrow_mut() = sim.base_url());
    let mut call = Call::new(Instant::now(), setup, config(sim.base_url()), CallConfig::default());
    // The counselor speaks for a second every five seconds, the caller answers briefly.
    let seen = drive(&mut call, Duration::from_secs(60), |t, _| {
        let phase = t.as_millis() % 5000;
        (300..1300).contains(&phase)
    })
    .await;
    let (usage, turn_metrics, _) = call.summary();
    assert_eq!(seen.ended, Some(EndReason::TokenCap), "tokens {} of 1000", usage.total_tokens());
    assert!(usage.total_tokens() >= 1_000, "{usage:?}");
    assert!(usage.input_audio_tokens > 0 && usage.output_audio_tokens > 0, "{usage:?}");
    // Ended after an answer was heard whole, not in the middle of one.
    let last = seen.turns.last().expect("turns");
    assert!(last.speaker == Speaker::Caller && !last.cut, "{last:?}");

    let end = CallEnd { reason: EndReason::TokenCap, usage: usage.clone(), turn_metrics, recording: None };
    turns.end(end).await.expect("end stored");
    let ended = s.session(account.id, session.id).await.expect("session");
    assert_eq!(ended.end_reason, Some(store::EndReason::MaxDuration));
    let cost = store::realtime_cost_usd(&usage).expect("priced");
    let spent = s.spend_check(account.id, None).await.expect("spend").spent_usd;
    assert!(cost > 0.0 && (spent - cost).abs() < 1e-9, "spent {spent}, cost {cost}");
    let now = store::Timestamp::now();
    let report =
        s.spend_report(account.id, store::Timestamp::from_millis(now.millis() - 3_600_000), now).await.expect("report");
    let mine = report.by_counselor.iter().find(|r| r.user_id == Some(counselor.id)).expect("the counselor's row");
    assert_eq!(mine.calls, 1);
    assert_eq!(mine.prompt_tokens + mine.completion_tokens, usage.total_tokens() as i64);
    sim.shutdown().await;
}
