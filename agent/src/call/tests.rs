//! The call driven whole in simulated time: frames, turns in spoken order, barge-in, drops and
//! recycles, limits. The parts have their own tests in their modules.

use super::*;
use crate::realtime::TurnDetection;
use base64::Engine as _;
use serde_json::{Value, json};

fn setup() -> CallSetup {
    CallSetup {
        session_id: uuid::Uuid::nil(),
        instructions: "You are Sam, a caller.".into(),
        voice: "alloy".into(),
        caller_speaks_first: false,
        phone_line: false,
        max_duration: Duration::from_secs(3600),
        silence_timeout: Duration::from_secs(600),
        prior_turns: vec![],
        token_cap: None,
    }
}

fn rt_config() -> RealtimeConfig {
    RealtimeConfig {
        base_url: "http://127.0.0.1:1/v1".into(),
        api_key: "k".into(),
        model: "gpt-realtime".into(),
        transcription_model: "gpt-4o-mini-transcribe".into(),
        turn_detection: TurnDetection::ServerVad { threshold: 0.5, prefix_padding_ms: 300, silence_duration_ms: 500 },
        session_cap: Duration::from_secs(1500),
    }
}

/// A call driven in simulated time, with everything it output collected.
struct Harness {
    call: Call,
    now: Instant,
    out: Vec<CallOutput>,
    played_frames: u64,
    last_tick_caller: bool,
}

impl Harness {
    fn new(setup: CallSetup, config: CallConfig) -> Self {
        let now = Instant::now();
        let mut h = Harness {
            call: Call::new(now, setup, rt_config(), config),
            now,
            out: vec![],
            played_frames: 0,
            last_tick_caller: false,
        };
        h.drain();
        h
    }

    fn drain(&mut self) {
        while let Some(o) = self.call.poll_output() {
            if let CallOutput::Tick { caller, .. } = o {
                self.last_tick_caller = caller;
                if caller {
                    self.played_frames += 1;
                }
            }
            self.out.push(o);
        }
    }

    fn open(&mut self) {
        self.call.realtime_opened(self.now);
        self.drain();
    }

    fn event(&mut self, v: Value) {
        self.call.realtime_message(self.now, &v.to_string());
        self.drain();
    }

    /// Advances time to `until`, running every deadline on the way, feeding a counselor frame
    /// each 20 ms when `speaking`.
    fn run(&mut self, d: Duration, counselor: bool) {
        let until = self.now + d;
        loop {
            let next = self.call.poll_timeout();
            if next > until {
                break;
            }
            self.now = next.max(self.now);
            if counselor {
                self.call.counselor_audio(self.now, self.now, &[1000; FRAME_SAMPLES]);
            }
            self.call.handle_timeout(self.now);
            self.drain();
            if self.call.is_ended() {
                return;
            }
        }
        self.now = until;
    }

    fn sent(&self) -> Vec<Value> {
        self.out
            .iter()
            .filter_map(|o| match o {
                CallOutput::Realtime(t) => Some(serde_json::from_str(t).unwrap()),
                _ => None,
            })
            .collect()
    }

    fn sent_types(&self) -> Vec<String> {
        self.sent()
            .iter()
            .map(|v| v["type"].as_str().unwrap().to_owned())
            .filter(|t| t != "input_audio_buffer.append")
            .collect()
    }

    fn turns(&self) -> Vec<SpokenTurn> {
        self.out.iter().filter_map(|o| if let CallOutput::Turn(t) = o { Some(t.clone()) } else { None }).collect()
    }

    fn states(&self) -> Vec<AgentState> {
        self.out.iter().filter_map(|o| if let CallOutput::State(s) = o { Some(*s) } else { None }).collect()
    }

    fn caption_text(&self, speaker: Speaker) -> String {
        let mut segs = Vec::new();
        let mut text = String::new();
        for o in &self.out {
            match o {
                CallOutput::Caption(Caption::Open { segment_id, speaker: s }) if *s == speaker => {
                    segs.push(segment_id.clone())
                }
                CallOutput::Caption(Caption::Text { segment_id, delta }) if segs.contains(segment_id) => {
                    text.push_str(delta)
                }
                _ => {}
            }
        }
        text
    }

    /// A reply of `ms` of audio in one burst, with its transcript.
    fn reply(&mut self, id: &str, text: &str, ms: usize, done: bool) {
        self.event(json!({"type": "response.created", "response": {"id": id}}));
        self.event(
            json!({"type": "response.output_item.added", "response_id": id, "item": {"id": format!("item-{id}")}}),
        );
        self.event(json!({"type": "response.output_audio_transcript.delta", "response_id": id, "item_id": format!("item-{id}"), "delta": text}));
        let pcm: Vec<u8> =
            (0..ms * 24).flat_map(|i| (((i as f64 * 0.1).sin() * 5000.0) as i16).to_le_bytes()).collect();
        for chunk in pcm.chunks(4800) {
            let b64 = base64::engine::general_purpose::STANDARD.encode(chunk);
            self.event(json!({"type": "response.output_audio.delta", "response_id": id, "item_id": format!("item-{id}"), "delta": b64}));
        }
        if done {
            self.event(json!({"type": "response.output_audio.done", "response_id": id}));
            self.event(json!({"type": "response.output_audio_transcript.done", "response_id": id, "item_id": format!("item-{id}"), "transcript": text}));
            self.event(json!({"type": "response.done", "response": {"id": id, "status": "completed", "usage": {"input_token_details": {"audio_tokens": 10}, "output_token_details": {"audio_tokens": 20}}}}));
        }
    }
}

#[test]
fn an_answer_starts_when_its_audio_arrives_and_the_clock_keeps_one_tick_per_frame() {
    let mut h = Harness::new(setup(), CallConfig::default());
    let start = h.now;
    h.open();
    for round in 0..5 {
        // Mid-way between two ticks.
        h.run(Duration::from_millis(1007), false);
        let played = h.played_frames;
        h.reply(&format!("r{round}"), "Okay.", 400, true);
        h.run(Duration::ZERO, false);
        assert_eq!(h.played_frames, played + 1, "the first frame goes out with the first delta");
    }
    h.run(Duration::from_secs(10), false);
    let ticks = h.out.iter().filter(|o| matches!(o, CallOutput::Tick { .. })).count() as u128;
    let frames = h.now.duration_since(start).as_millis() / 20;
    // Each early start is paid back in the silence after it: one recorded frame per 20 ms.
    assert!(ticks.abs_diff(frames) <= 1, "{ticks} ticks in {frames} frames of time");
}

#[test]
fn a_turn_each_way_in_spoken_order() {
    let mut h = Harness::new(setup(), CallConfig::default());
    assert_eq!(h.states(), [AgentState::Initializing]);
    assert!(matches!(h.out[1], CallOutput::Connect { after } if after == Duration::ZERO));
    h.open();
    assert_eq!(h.sent_types(), ["session.update"]);
    // The counselor speaks for 1 s: audio goes out in 20 ms appends of 24 kHz PCM.
    h.event(json!({"type": "input_audio_buffer.speech_started", "item_id": "c1"}));
    h.run(Duration::from_secs(1), true);
    let appends: Vec<Value> = h.sent().into_iter().filter(|v| v["type"] == "input_audio_buffer.append").collect();
    assert_eq!(appends.len(), 50);
    let bytes = base64::engine::general_purpose::STANDARD.decode(appends[0]["audio"].as_str().unwrap()).unwrap();
    assert_eq!(bytes.len(), 20 * 24 * 2);
    h.event(json!({"type": "input_audio_buffer.speech_stopped", "item_id": "c1"}));
    assert_eq!(*h.states().last().unwrap(), AgentState::Thinking);
    h.reply("r1", "I just feel so alone tonight.", 2000, true);
    // Caption not ahead of the audio: after 0.5 s of a 2 s reply, at most about a quarter.
    h.run(Duration::from_millis(500), false);
    let partial = h.caption_text(Speaker::Caller);
    assert!(partial.len() < "I just feel so alone tonight.".len() / 2, "caption ran ahead: {partial:?}");
    assert_eq!(*h.states().last().unwrap(), AgentState::Speaking);
    h.run(Duration::from_millis(1700), false);
    assert_eq!(h.caption_text(Speaker::Caller), "I just feel so alone tonight.");
    assert_eq!(*h.states().last().unwrap(), AgentState::Listening);
    // The caller's turn is final, but waits for the counselor's transcript that came later.
    assert!(h.turns().is_empty());
    h.event(json!({"type": "conversation.item.input_audio_transcription.completed", "item_id": "c1", "transcript": "How are you doing?"}));
    let turns = h.turns();
    assert_eq!(turns.len(), 2);
    assert_eq!((turns[0].speaker, turns[0].text.as_str()), (Speaker::Counselor, "How are you doing?"));
    assert_eq!(
        (turns[1].speaker, turns[1].text.as_str(), turns[1].cut),
        (Speaker::Caller, "I just feel so alone tonight.", false)
    );
    assert!(turns[0].started_ms < turns[1].started_ms);
    assert_eq!(h.caption_text(Speaker::Counselor), "How are you doing?");
    // 2 s of audio is 100 frames (plus the resampler's tail frame).
    assert!((100..=102).contains(&h.played_frames), "{}", h.played_frames);
    assert_eq!(h.call.stats().underruns, 0);
    h.call.counselor_left(h.now);
    h.drain();
    assert!(matches!(h.out.last(), Some(CallOutput::End(EndReason::CounselorLeft))));
    let (usage, metrics, stats) = h.call.summary();
    assert_eq!((usage.input_audio_tokens, usage.output_audio_tokens), (10, 20));
    assert_eq!(usage.output_audio_ms, 2000);
    assert_eq!(metrics.len(), 1);
    // speech_stopped -> first frame: the next 20 ms deadline at most.
    assert!(metrics[0].response_latency_ms.unwrap() <= 20);
    // Each frame goes out as it arrives.
    assert_eq!(stats.mic_to_append_ms.iter().max(), Some(&0));
}

#[test]
fn barge_in_stops_within_a_frame_and_truncates_to_what_was_played() {
    let mut h = Harness::new(setup(), CallConfig::default());
    h.open();
    h.event(json!({"type": "input_audio_buffer.speech_started", "item_id": "c1"}));
    h.event(json!({"type": "input_audio_buffer.speech_stopped", "item_id": "c1"}));
    h.event(json!({"type": "conversation.item.input_audio_transcription.completed", "item_id": "c1", "transcript": "Hello"}));
    // 3 s generated, still generating; the counselor cuts in after 1 s of it.
    h.reply("r1", "one two three four five six seven eight nine ten eleven twelve", 3000, false);
    h.run(Duration::from_millis(1000), false);
    let before = h.played_frames;
    assert!(before >= 49, "{before}");
    h.now += Duration::from_millis(7);
    h.event(json!({"type": "input_audio_buffer.speech_started", "item_id": "c2"}));
    h.run(Duration::from_millis(20), false);
    assert!(!h.last_tick_caller, "caller audio must stop at the next frame");
    assert_eq!(h.played_frames, before);
    let sent = h.sent();
    let cancel = sent.iter().position(|v| v["type"] == "response.cancel").expect("cancel");
    let truncate = sent.iter().position(|v| v["type"] == "conversation.item.truncate").expect("truncate");
    assert!(cancel < truncate);
    let played_ms = before * 20;
    assert_eq!(sent[truncate]["audio_end_ms"].as_u64().unwrap(), played_ms);
    assert_eq!(sent[truncate]["item_id"], "item-r1");
    // Late deltas of the cancelled reply are ignored.
    h.reply("r1", "more", 500, true);
    h.run(Duration::from_millis(200), false);
    assert_eq!(h.played_frames, before);
    let turns = h.turns();
    let caller = turns.iter().find(|t| t.speaker == Speaker::Caller).expect("cut caller turn");
    assert!(caller.cut);
    assert!(!caller.text.is_empty() && caller.text.len() < 40, "{:?}", caller.text);
    assert_eq!(h.caption_text(Speaker::Caller).trim(), caller.text);
    assert!(h.call.stats().barge_in_stop_ms[0] <= 20);
}

#[test]
fn captions_survive_audio_outgrowing_the_text_and_a_shorter_final_transcript() {
    let mut h = Harness::new(setup(), CallConfig::default());
    h.open();
    h.reply("r1", "I think so. I am at home and I am not going to do anything tonight.", 400, false);
    h.run(Duration::from_millis(300), false);
    // Much more audio arrives: the played share of it falls below what was captioned.
    h.reply("r1", "", 3000, false);
    h.run(Duration::from_millis(100), false);
    h.event(json!({"type": "response.output_audio_transcript.done", "response_id": "r1", "item_id": "item-r1", "transcript": "I think so."}));
    h.event(json!({"type": "response.done", "response": {"id": "r1", "status": "completed"}}));
    h.run(Duration::from_secs(4), false);
    assert_eq!(h.turns().len(), 1);
}

#[test]
fn a_counselor_gone_quiet_is_fed_silence() {
    let mut h = Harness::new(setup(), CallConfig::default());
    h.open();
    h.run(Duration::from_millis(200), true);
    let before = h.sent().iter().filter(|v| v["type"] == "input_audio_buffer.append").count();
    // No packets for a second (DTX): the appends go on, about one per 20 ms.
    h.run(Duration::from_secs(1), false);
    let after = h.sent().iter().filter(|v| v["type"] == "input_audio_buffer.append").count();
    assert!((44..=51).contains(&(after - before)), "{before} -> {after}");
}

#[test]
fn barge_in_before_any_audio_deletes_the_item() {
    let mut h = Harness::new(setup(), CallConfig::default());
    h.open();
    h.event(json!({"type": "response.created", "response": {"id": "r1"}}));
    h.event(json!({"type": "response.output_item.added", "response_id": "r1", "item": {"id": "a1"}}));
    h.event(json!({"type": "input_audio_buffer.speech_started", "item_id": "c1"}));
    let types = h.sent_types();
    assert!(types.contains(&"conversation.item.delete".to_string()), "{types:?}");
    assert!(!types.contains(&"conversation.item.truncate".to_string()));
    assert!(h.turns().is_empty());
}

#[test]
fn the_frame_clock_neither_bursts_nor_drifts_over_thirty_minutes() {
    let mut s = setup();
    s.silence_timeout = Duration::from_secs(7200);
    let mut h = Harness::new(s, CallConfig::default());
    h.open();
    let start = h.now;
    let mut ticks = 0u64;
    let mut last: Option<Instant> = None;
    let mut min_gap = Duration::from_secs(1);
    // The shell wakes up to 7 ms late, pseudo-randomly.
    let mut seed = 12345u64;
    while h.now < start + Duration::from_secs(1800) {
        let deadline = h.call.poll_timeout();
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        h.now = deadline + Duration::from_micros((seed >> 33) % 7000);
        h.call.handle_timeout(h.now);
        while let Some(o) = h.call.poll_output() {
            if let CallOutput::Tick { .. } = o {
                ticks += 1;
                if let Some(l) = last {
                    min_gap = min_gap.min(h.now - l);
                }
                last = Some(h.now);
            }
        }
    }
    assert_eq!(ticks, 90_000);
    // Lateness never accumulates into a burst: consecutive ticks stay well apart.
    assert!(min_gap >= Duration::from_millis(13), "{min_gap:?}");
}

#[test]
fn session_cap_recycles_between_turns_and_reseeds() {
    let config = CallConfig { session_cap: Duration::from_secs(2), ..Default::default() };
    let mut h = Harness::new(setup(), config);
    h.open();
    h.event(json!({"type": "input_audio_buffer.speech_started", "item_id": "c1"}));
    h.event(json!({"type": "input_audio_buffer.speech_stopped", "item_id": "c1"}));
    h.event(json!({"type": "conversation.item.input_audio_transcription.completed", "item_id": "c1", "transcript": "Hi there"}));
    h.reply("r1", "Hello, I need help.", 3000, true);
    // The cap passes mid-reply: no recycle until the reply has been heard.
    h.run(Duration::from_millis(2500), false);
    assert_eq!(h.out.iter().filter(|o| matches!(o, CallOutput::Connect { .. })).count(), 1);
    h.run(Duration::from_millis(1000), false);
    assert_eq!(h.out.iter().filter(|o| matches!(o, CallOutput::Connect { .. })).count(), 2);
    // Counselor audio while the new socket opens is held, then follows the seed.
    h.run(Duration::from_millis(100), true);
    let n = h.out.len();
    h.open();
    let after: Vec<Value> = h.out[n..]
        .iter()
        .filter_map(|o| if let CallOutput::Realtime(t) = o { Some(serde_json::from_str(t).unwrap()) } else { None })
        .collect();
    let types: Vec<&str> = after.iter().map(|v| v["type"].as_str().unwrap()).collect();
    assert_eq!(&types[..3], ["session.update", "conversation.item.create", "conversation.item.create"]);
    assert_eq!(after[1]["item"]["role"], "user");
    assert_eq!(after[1]["item"]["content"][0]["text"], "Hi there");
    assert_eq!(after[2]["item"]["role"], "assistant");
    assert_eq!(after[2]["item"]["content"][0]["type"], "output_text");
    assert!(types[3..].iter().all(|t| *t == "input_audio_buffer.append") && types.len() > 3);
    assert!(!types.contains(&"response.create"));
    assert_eq!(h.call.stats().recycles, 1);
}

#[test]
fn a_dropped_socket_plays_out_what_arrived_and_reconnects_with_backoff() {
    let mut h = Harness::new(setup(), CallConfig::default());
    h.open();
    h.event(json!({"type": "input_audio_buffer.speech_started", "item_id": "c1"}));
    h.event(json!({"type": "input_audio_buffer.speech_stopped", "item_id": "c1"}));
    h.event(
        json!({"type": "conversation.item.input_audio_transcription.completed", "item_id": "c1", "transcript": "Hi"}),
    );
    h.reply("r1", "alpha beta gamma delta", 1000, false);
    h.run(Duration::from_millis(200), false);
    h.call.realtime_closed(h.now);
    h.drain();
    assert!(matches!(h.out.last(), Some(CallOutput::Connect { after }) if *after > Duration::ZERO));
    // The second attempt fails too: a longer pause.
    h.call.realtime_closed(h.now);
    h.drain();
    let pauses: Vec<Duration> =
        h.out.iter().filter_map(|o| if let CallOutput::Connect { after } = o { Some(*after) } else { None }).collect();
    assert!(pauses[2] > pauses[1], "{pauses:?}");
    h.run(Duration::from_millis(1200), false);
    assert!(h.played_frames >= 50);
    let turns = h.turns();
    assert_eq!(turns.len(), 2, "{turns:?}");
    h.open();
    let seeds = h.sent().into_iter().filter(|v| v["type"] == "conversation.item.create").count();
    assert_eq!(seeds, 2);
    assert_eq!(h.call.stats().reconnects, 1);
}

fn sent_since(h: &Harness, n: usize) -> Vec<Value> {
    h.out[n..]
        .iter()
        .filter_map(|o| if let CallOutput::Realtime(t) = o { Some(serde_json::from_str(t).unwrap()) } else { None })
        .filter(|v: &Value| v["type"] != "input_audio_buffer.append")
        .collect()
}

fn assert_spoken_once_in_order(turns: &[SpokenTurn]) {
    let mut ids: Vec<&str> = turns.iter().map(|t| t.segment_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), turns.len(), "a turn stored twice: {turns:?}");
    assert!(turns.windows(2).all(|w| w[0].started_ms <= w[1].started_ms), "out of order: {turns:?}");
}

#[test]
fn a_drop_mid_reply_reseeds_then_asks_for_the_rest_of_the_answer_once_the_cut_part_was_heard() {
    let mut h = Harness::new(setup(), CallConfig::default());
    h.open();
    h.event(json!({"type": "input_audio_buffer.speech_started", "item_id": "c1"}));
    h.run(Duration::from_millis(400), true);
    h.event(json!({"type": "input_audio_buffer.speech_stopped", "item_id": "c1"}));
    h.event(json!({"type": "conversation.item.input_audio_transcription.completed", "item_id": "c1", "transcript": "Tell me more."}));
    // 600 ms of the answer arrived, then the socket dropped mid-generation.
    h.reply("r1", "Work has been falling apart", 600, false);
    h.run(Duration::from_millis(200), false);
    h.call.realtime_closed(h.now);
    h.drain();
    let Some(CallOutput::Connect { after }) = h.out.last().cloned() else { panic!("no reconnect") };
    h.run(after, false);
    // The new socket opens while the cut answer still plays: the conversation so far is seeded,
    // and no new answer is asked for yet (it would talk over the rest of the cut one).
    let n = h.out.len();
    h.open();
    let sent = sent_since(&h, n);
    let types: Vec<&str> = sent.iter().map(|v| v["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["session.update", "conversation.item.create"]);
    assert_eq!(sent[1]["item"]["content"][0]["text"], "Tell me more.");
    // Once it has been heard: it is a cut turn, seeded, and then the answer is asked for.
    let n = h.out.len();
    h.run(Duration::from_millis(500), false);
    let sent = sent_since(&h, n);
    let types: Vec<&str> = sent.iter().map(|v| v["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["conversation.item.create", "response.create"]);
    assert_eq!(sent[0]["item"]["role"], "assistant");
    assert_eq!(sent[0]["item"]["content"][0]["text"], "Work has been falling apart");
    assert_eq!(*h.states().last().unwrap(), AgentState::Thinking);
    // The model carries on; its answer is heard and stored after the cut part.
    h.reply("r2", "and my sister stopped talking to me.", 1000, true);
    h.run(Duration::from_millis(1200), false);
    let turns = h.turns();
    let said: Vec<(Speaker, &str, bool)> = turns.iter().map(|t| (t.speaker, t.text.as_str(), t.cut)).collect();
    assert_eq!(
        said,
        [
            (Speaker::Counselor, "Tell me more.", false),
            (Speaker::Caller, "Work has been falling apart", true),
            (Speaker::Caller, "and my sister stopped talking to me.", false),
        ]
    );
    assert_spoken_once_in_order(&turns);
    // Asked once: a later turn is answered by the server's own turn detection.
    h.event(json!({"type": "input_audio_buffer.speech_started", "item_id": "c2"}));
    h.event(json!({"type": "input_audio_buffer.speech_stopped", "item_id": "c2"}));
    h.run(Duration::from_millis(200), false);
    assert_eq!(h.sent_types().iter().filter(|t| *t == "response.create").count(), 1);
    assert_eq!(h.call.stats().reconnects, 1);
}

#[test]
fn a_drop_before_the_answer_arrived_asks_the_new_socket_for_it() {
    let mut h = Harness::new(setup(), CallConfig::default());
    h.open();
    h.event(json!({"type": "input_audio_buffer.speech_started", "item_id": "c1"}));
    h.event(json!({"type": "input_audio_buffer.speech_stopped", "item_id": "c1"}));
    h.event(json!({"type": "conversation.item.input_audio_transcription.completed", "item_id": "c1", "transcript": "Hello?"}));
    h.event(json!({"type": "response.created", "response": {"id": "r1"}}));
    h.call.realtime_closed(h.now);
    h.drain();
    h.run(Duration::from_millis(300), false);
    let n = h.out.len();
    h.open();
    let types: Vec<String> = sent_since(&h, n).iter().map(|v| v["type"].as_str().unwrap().to_owned()).collect();
    assert_eq!(types, ["session.update", "conversation.item.create", "response.create"]);
    h.reply("r2", "Hi. I need to talk.", 800, true);
    h.run(Duration::from_secs(1), false);
    let turns = h.turns();
    assert_eq!(turns.iter().map(|t| t.text.as_str()).collect::<Vec<_>>(), ["Hello?", "Hi. I need to talk."]);
    assert!(!turns[1].cut);
    assert_spoken_once_in_order(&turns);

    // A drop between turns owes nothing.
    let mut h = Harness::new(setup(), CallConfig::default());
    h.open();
    h.reply("r1", "Hello.", 300, true);
    h.run(Duration::from_millis(500), false);
    h.call.realtime_closed(h.now);
    h.drain();
    h.run(Duration::from_millis(300), false);
    h.open();
    assert!(!h.sent_types().contains(&"response.create".to_string()));
}

/// The counselor audio a burst of outputs appended, in samples.
fn appended_in(out: &[CallOutput]) -> usize {
    out.iter()
        .filter_map(|o| if let CallOutput::Realtime(t) = o { serde_json::from_str::<Value>(t).ok() } else { None })
        .filter(|v| v["type"] == "input_audio_buffer.append")
        .map(|v| base64::engine::general_purpose::STANDARD.decode(v["audio"].as_str().unwrap()).unwrap().len() / 2)
        .sum()
}

/// A call where the counselor speaks 1 s after 400 ms and the socket drops before any
/// transcript came; answers the samples spoken.
fn speech_then_drop() -> (Harness, usize) {
    let mut h = Harness::new(setup(), CallConfig::default());
    h.open();
    h.run(Duration::from_millis(400), false);
    let before = h.call.input.appended();
    h.event(json!({"type": "input_audio_buffer.speech_started", "item_id": "c1"}));
    h.run(Duration::from_millis(1000), true);
    let spoken = (h.call.input.appended() - before) as usize;
    h.call.realtime_closed(h.now);
    h.drain();
    (h, spoken)
}

#[test]
fn counselor_speech_the_dropped_socket_did_not_transcribe_is_appended_again_as_the_same_turn() {
    let (mut h, spoken) = speech_then_drop();
    // They go on speaking while it reconnects.
    h.run(Duration::from_millis(300), true);
    let n = h.out.len();
    h.open();
    let replayed = appended_in(&h.out[n..]);
    assert!(replayed >= spoken + 300 * 24 - 960, "{replayed} samples, spoken {spoken}");
    // No answer is asked for: the new socket's turn detection answers the replayed speech.
    assert!(!h.sent_types().contains(&"response.create".to_string()));
    h.event(json!({"type": "input_audio_buffer.speech_started", "item_id": "n1"}));
    h.event(json!({"type": "input_audio_buffer.speech_stopped", "item_id": "n1"}));
    h.event(json!({"type": "conversation.item.input_audio_transcription.completed", "item_id": "n1", "transcript": "I am here with you."}));
    h.reply("r1", "Thank you.", 600, true);
    h.run(Duration::from_millis(800), false);
    let turns = h.turns();
    assert_eq!(turns.iter().map(|t| t.text.as_str()).collect::<Vec<_>>(), ["I am here with you.", "Thank you."]);
    // Stamped when it was first spoken, not when the new socket heard it again.
    assert!(turns[0].started_ms <= 400, "{}", turns[0].started_ms);
    assert_spoken_once_in_order(&turns);
}

#[test]
fn a_second_drop_before_the_new_socket_heard_the_replay_replays_it_once_more() {
    let (mut h, spoken) = speech_then_drop();
    let n = h.out.len();
    h.open();
    let first_replay = appended_in(&h.out[n..]);
    assert!(first_replay >= spoken, "{first_replay} < {spoken}");
    // The new socket drops too, 200 ms later, before its VAD found the replayed speech.
    h.run(Duration::from_millis(200), false);
    h.call.realtime_closed(h.now);
    h.drain();
    let n = h.out.len();
    h.open();
    let second_replay = appended_in(&h.out[n..]);
    // The speech again, once: from where it landed on the second socket, not from the first
    // socket's position (which would send it twice) and not nothing (which would lose it).
    assert!(second_replay >= spoken, "replayed {second_replay} < spoken {spoken}");
    assert!(second_replay < spoken + first_replay / 2 + 200 * 24, "replayed {second_replay}: spoken twice?");
    h.event(json!({"type": "input_audio_buffer.speech_started", "item_id": "n1"}));
    h.event(json!({"type": "input_audio_buffer.speech_stopped", "item_id": "n1"}));
    h.event(json!({"type": "conversation.item.input_audio_transcription.completed", "item_id": "n1", "transcript": "Are you safe right now?"}));
    h.reply("r1", "I think so.", 600, true);
    h.run(Duration::from_millis(800), false);
    let turns = h.turns();
    assert_eq!(turns.iter().map(|t| t.text.as_str()).collect::<Vec<_>>(), ["Are you safe right now?", "I think so."]);
    assert!(turns[0].started_ms <= 400, "stamped when first spoken: {}", turns[0].started_ms);
    assert_spoken_once_in_order(&turns);
}

#[test]
fn preconnect_audio_goes_first_and_the_wait_is_bounded() {
    let mut h = Harness::new(setup(), CallConfig::default());
    h.call.expect_preconnect(h.now);
    h.open();
    h.run(Duration::from_millis(100), true);
    assert!(h.sent().iter().all(|v| v["type"] != "input_audio_buffer.append"));
    h.call.preconnect_audio(h.now, &[7; 2400]);
    h.drain();
    let appends: Vec<Value> = h.sent().into_iter().filter(|v| v["type"] == "input_audio_buffer.append").collect();
    let first = base64::engine::general_purpose::STANDARD.decode(appends[0]["audio"].as_str().unwrap()).unwrap();
    assert_eq!(&first[..4], &[7, 0, 7, 0]);
    assert!(appends.len() >= 2, "live audio follows");

    let mut late = Harness::new(setup(), CallConfig::default());
    late.call.expect_preconnect(late.now);
    late.open();
    late.run(Duration::from_millis(3100), true);
    assert!(late.sent().iter().any(|v| v["type"] == "input_audio_buffer.append"));
}

#[test]
fn caller_speaks_first_and_limits_end_the_call() {
    let mut s = setup();
    s.caller_speaks_first = true;
    s.silence_timeout = Duration::from_secs(5);
    let mut h = Harness::new(s, CallConfig::default());
    h.open();
    assert_eq!(h.sent_types(), ["session.update", "response.create"]);
    h.run(Duration::from_secs(6), false);
    assert!(matches!(h.out.last(), Some(CallOutput::End(EndReason::Silence))));

    let mut s = setup();
    s.max_duration = Duration::from_secs(2);
    let mut h = Harness::new(s, CallConfig::default());
    h.open();
    h.run(Duration::from_secs(3), true);
    assert!(matches!(h.out.last(), Some(CallOutput::End(EndReason::MaxDuration))));
}

#[test]
fn supervisor_end_is_polled_between_turns() {
    let mut h = Harness::new(setup(), CallConfig::default());
    h.open();
    h.run(Duration::from_secs(4), false);
    assert!(h.out.iter().any(|o| matches!(o, CallOutput::PollEndedElsewhere)));
    h.call.ended_elsewhere(h.now, true);
    h.drain();
    assert!(matches!(h.out.last(), Some(CallOutput::End(EndReason::EndedBySupervisor))));
}

#[test]
fn shutdown_keeps_what_was_heard() {
    let mut h = Harness::new(setup(), CallConfig::default());
    h.open();
    h.reply("r1", "one two three four five six seven eight", 2000, true);
    h.run(Duration::from_millis(1000), false);
    h.call.shutdown(h.now);
    h.drain();
    let turns = h.turns();
    assert_eq!(turns.len(), 1);
    assert!(turns[0].cut);
    assert!(matches!(h.out.last(), Some(CallOutput::End(EndReason::AgentShutdown))));
}

#[test]
fn the_token_cap_ends_the_call_once_the_answer_that_crossed_it_was_heard() {
    let mut s = setup();
    // Each scripted reply reports 30 tokens: the second crosses the cap.
    s.token_cap = Some(50);
    let mut h = Harness::new(s, CallConfig::default());
    h.open();
    h.reply("r1", "Hello?", 400, true);
    h.run(Duration::from_secs(1), false);
    assert!(!h.call.is_ended());
    h.reply("r2", "I can't sleep.", 1000, true);
    h.run(Duration::from_millis(500), false);
    assert!(!h.call.is_ended(), "the answer is still being heard");
    h.run(Duration::from_secs(1), false);
    assert!(matches!(h.out.last(), Some(CallOutput::End(EndReason::TokenCap))), "{:?}", h.out.last());
    let turns = h.turns();
    let last = turns.last().expect("turns");
    assert_eq!((last.text.as_str(), last.cut), ("I can't sleep.", false));
    assert_eq!(h.call.summary().0.total_tokens(), 60);
}
