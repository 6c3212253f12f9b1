//! The Realtime simulator through a real WebSocket client (tokio-tungstenite), as the agent
//! will use it: `{base_url}/realtime?model=...` with a bearer key.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures::{SinkExt, StreamExt};
use openai_sim::{Direction, Fault, Rule, Simulator, TtsMode};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const WAIT: Duration = Duration::from_secs(10);

struct Client {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    seen: Vec<Value>,
}

async fn sim() -> Simulator {
    let sim = Simulator::start().await.expect("simulator starts");
    sim.state().set_tts_mode(TtsMode::Tone);
    sim
}

impl Client {
    async fn connect(sim: &Simulator) -> Self {
        let url = format!("{}/realtime?model=gpt-realtime", sim.base_url().replace("http://", "ws://"));
        let mut request = url.into_client_request().expect("request");
        request.headers_mut().insert("authorization", "Bearer sk-test".parse().expect("header"));
        let (socket, response) = tokio_tungstenite::connect_async(request).await.expect("upgrade");
        assert_eq!(response.status(), 101);
        let mut client = Self { socket, seen: Vec::new() };
        let created = client.next().await;
        assert_eq!(created["type"], "session.created");
        client
    }

    async fn send(&mut self, event: Value) {
        self.socket.send(Message::text(event.to_string())).await.expect("send");
    }

    /// The next server event (panics after [`WAIT`]).
    async fn next(&mut self) -> Value {
        loop {
            let Ok(message) = tokio::time::timeout(WAIT, self.socket.next()).await else {
                panic!("no event in time; seen: {:?}", self.types());
            };
            match message.expect("socket open").expect("no socket error") {
                Message::Text(text) => {
                    let event: Value = serde_json::from_str(text.as_str()).expect("server events are JSON");
                    self.seen.push(event.clone());
                    return event;
                }
                Message::Close(_) => panic!("socket closed"),
                _ => {}
            }
        }
    }

    /// Reads until an event of type `kind`, returning it; everything read is in `seen`.
    async fn until(&mut self, kind: &str) -> Value {
        loop {
            let event = self.next().await;
            assert_ne!(event["type"], "error", "unexpected error: {event}");
            if event["type"] == kind {
                return event;
            }
        }
    }

    async fn update(&mut self, session: Value) -> Value {
        self.send(json!({"type": "session.update", "session": session})).await;
        self.next().await
    }

    async fn append(&mut self, pcm: &[i16]) {
        for chunk in pcm.chunks(2400) {
            let bytes: Vec<u8> = chunk.iter().flat_map(|s| s.to_le_bytes()).collect();
            self.send(json!({"type": "input_audio_buffer.append", "audio": BASE64.encode(bytes)})).await;
        }
    }

    fn types(&self) -> Vec<&str> {
        self.seen.iter().filter_map(|e| e["type"].as_str()).collect()
    }
}

fn tone(ms: usize) -> Vec<i16> {
    (0..ms * 24).map(|i| ((i as f64 * 0.06).sin() * 9000.0) as i16).collect()
}

fn silence(ms: usize) -> Vec<i16> {
    vec![0; ms * 24]
}

fn ga_session() -> Value {
    json!({
        "type": "realtime",
        "output_modalities": ["audio"],
        "instructions": "You are Jordan, a caller who lost their job.",
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": {"model": "gpt-4o-mini-transcribe"},
                "turn_detection": {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                                   "silence_duration_ms": 200, "create_response": true, "interrupt_response": true}
            },
            "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin"}
        }
    })
}

/// Counselor speech: 1 s silence, 800 ms of tone, 1 s silence.
fn utterance() -> Vec<i16> {
    [silence(1000), tone(800), silence(1000)].concat()
}

#[tokio::test]
async fn session_update_accepts_the_ga_shape_and_rejects_a_bad_one_naming_the_field() {
    let sim = sim().await;
    let mut client = Client::connect(&sim).await;
    let updated = client.update(ga_session()).await;
    assert_eq!(updated["type"], "session.updated");
    assert_eq!(updated["session"]["type"], "realtime");
    assert_eq!(updated["session"]["instructions"], "You are Jordan, a caller who lost their job.");
    assert_eq!(updated["session"]["audio"]["output"]["voice"], "marin");
    assert_eq!(updated["session"]["audio"]["input"]["transcription"]["model"], "gpt-4o-mini-transcribe");

    client
        .send(json!({"type": "session.update", "event_id": "evt_1",
                     "session": {"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}}}))
        .await;
    let error = client.next().await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert_eq!(error["error"]["param"], "session.audio.input.format.rate");
    assert_eq!(error["error"]["event_id"], "evt_1");

    // The beta shape is refused, as by OpenAI's GA endpoint.
    let error = client.update(json!({"type": "realtime", "modalities": ["audio", "text"]})).await;
    assert_eq!(error["error"]["param"], "session.modalities");
    let error = client.update(json!({"instructions": "no type"})).await;
    assert_eq!(error["error"]["param"], "session.type");
}

#[tokio::test]
async fn a_missing_key_is_refused_before_the_upgrade() {
    let sim = sim().await;
    let url = format!("{}/realtime?model=gpt-realtime", sim.base_url().replace("http://", "ws://"));
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("expected 401, got {:?}", other.map(|(_, response)| response.status())),
    }
}

#[tokio::test]
async fn a_spoken_turn_gives_vad_transcription_and_a_voiced_response_in_order() {
    let sim = sim().await;
    sim.add_rule(
        Rule::realtime()
            .utterance(1)
            .transcript("Hello, how are you doing tonight?")
            .reply_text("Not great, honestly."),
    );
    let mut client = Client::connect(&sim).await;
    client.update(ga_session()).await;
    client.append(&utterance()).await;
    let done = client.until("response.done").await;

    let started = client.seen.iter().find(|e| e["type"] == "input_audio_buffer.speech_started").expect("started");
    assert_eq!(started["audio_start_ms"], 700, "speech onset 1000 ms minus 300 ms prefix padding");
    let stopped = client.seen.iter().find(|e| e["type"] == "input_audio_buffer.speech_stopped").expect("stopped");
    assert_eq!(stopped["audio_end_ms"], 2000, "speech end 1800 ms plus 200 ms silence");
    let item_id = started["item_id"].clone();
    let committed = client.seen.iter().find(|e| e["type"] == "input_audio_buffer.committed").expect("committed");
    assert_eq!(committed["item_id"], item_id);
    assert_eq!(committed["previous_item_id"], Value::Null);
    let transcript = client
        .seen
        .iter()
        .find(|e| e["type"] == "conversation.item.input_audio_transcription.completed")
        .expect("transcribed");
    assert_eq!(transcript["item_id"], item_id);
    assert_eq!(transcript["transcript"], "Hello, how are you doing tonight?");

    let order: Vec<&str> =
        client.types().into_iter().filter(|t| !t.ends_with(".delta") && !t.starts_with("session.")).collect();
    assert_eq!(
        order,
        [
            "input_audio_buffer.speech_started",
            "input_audio_buffer.speech_stopped",
            "input_audio_buffer.committed",
            "conversation.item.added",
            "conversation.item.done",
            "conversation.item.input_audio_transcription.completed",
            "response.created",
            "rate_limits.updated",
            "conversation.item.added",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_audio.done",
            "response.output_audio_transcript.done",
            "response.content_part.done",
            "response.output_item.done",
            "conversation.item.done",
            "response.done",
        ]
    );
    let deltas: Vec<&Value> = client.seen.iter().filter(|e| e["type"] == "response.output_audio.delta").collect();
    assert!(deltas.len() > 3);
    let audio: usize =
        deltas.iter().map(|d| BASE64.decode(d["delta"].as_str().expect("b64")).expect("base64").len()).sum();
    assert!(audio > 24_000, "at least half a second of 24 kHz PCM16, got {audio} bytes");
    let words: String = client
        .seen
        .iter()
        .filter(|e| e["type"] == "response.output_audio_transcript.delta")
        .filter_map(|e| e["delta"].as_str())
        .collect();
    assert_eq!(words, "Not great, honestly.");
    assert_eq!(done["response"]["status"], "completed");
    assert_eq!(done["response"]["output"][0]["content"][0]["transcript"], "Not great, honestly.");
    let usage = &done["response"]["usage"];
    assert!(usage["output_token_details"]["audio_tokens"].as_u64() > Some(0));
    assert!(usage["input_tokens"].as_u64() > Some(0));
    assert_eq!(
        usage["total_tokens"].as_u64(),
        Some(usage["input_tokens"].as_u64().unwrap_or(0) + usage["output_tokens"].as_u64().unwrap_or(0))
    );

    let connections = sim.realtime_connections();
    assert_eq!(connections.len(), 1);
    let appends: Vec<_> = connections[0].events.iter().filter(|e| e.kind == "input_audio_buffer.append").collect();
    assert!(appends.len() < 28, "consecutive appends fold into one record");
    let bytes: u64 = appends.iter().filter_map(|e| e.audio_bytes).sum();
    let count: u32 = appends.iter().map(|e| e.appends.unwrap_or(1)).sum();
    assert_eq!((bytes, count), (2800 * 48, 28), "every appended byte is counted");
    assert!(connections[0].types(Direction::Server).contains(&"response.done"));
}

impl Client {
    /// Everything that arrives within `ms` (no error check).
    async fn quiet_for(&mut self, ms: u64) -> Vec<Value> {
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
        while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, self.socket.next()).await {
            if let Message::Text(text) = message {
                got.push(serde_json::from_str(text.as_str()).expect("JSON"));
            }
        }
        got
    }

    /// The assistant item and the milliseconds of audio received for the response `done` closed.
    fn audio_ms_of(&self, response_id: &Value) -> u64 {
        let bytes: usize = self
            .seen
            .iter()
            .filter(|e| e["type"] == "response.output_audio.delta" && &e["response_id"] == response_id)
            .map(|e| BASE64.decode(e["delta"].as_str().unwrap_or_default()).map_or(0, |b| b.len()))
            .sum();
        bytes as u64 / 48
    }
}

fn speak_first() -> Value {
    json!({"type": "response.create"})
}

#[tokio::test]
async fn the_caller_can_speak_first_and_a_cancel_stops_the_response() {
    let sim = sim().await;
    sim.add_rule(Rule::realtime().utterance(0).reply_text("Hi. I don't know why I'm calling.").times(1));
    sim.add_rule(Rule::realtime().reply_text("word ".repeat(60)).latency_ms(1500));
    let mut client = Client::connect(&sim).await;
    client.update(ga_session()).await;
    client.send(speak_first()).await;
    let done = client.until("response.done").await;
    assert_eq!(done["response"]["output"][0]["content"][0]["transcript"], "Hi. I don't know why I'm calling.");

    client.send(speak_first()).await;
    let created = client.until("response.created").await;
    client.send(speak_first()).await;
    let busy = loop {
        let event = client.next().await;
        if event["type"] == "error" {
            break event;
        }
    };
    assert_eq!(busy["error"]["code"], "conversation_already_has_active_response");
    client.send(json!({"type": "response.cancel"})).await;
    let done = client.until("response.done").await;
    assert_eq!(done["response"]["id"], created["response"]["id"]);
    assert_eq!(done["response"]["status"], "cancelled");
    assert_eq!(done["response"]["status_details"]["reason"], "client_cancelled");
    assert_eq!(client.audio_ms_of(&created["response"]["id"]), 0, "cancelled during the latency: no audio sent");
    client.send(json!({"type": "response.cancel", "event_id": "evt_c"})).await;
    let error = client.next().await;
    assert_eq!(error["error"]["code"], "response_cancel_not_active");
    assert_eq!(error["error"]["event_id"], "evt_c");
}

#[tokio::test]
async fn truncate_cuts_the_transcript_and_refuses_more_audio_than_was_generated() {
    let sim = sim().await;
    let reply = "I lost my job on Monday and I have not told anyone about it yet.";
    sim.add_rule(Rule::realtime().reply_text(reply));
    let mut client = Client::connect(&sim).await;
    client.update(ga_session()).await;
    client.send(speak_first()).await;
    let done = client.until("response.done").await;
    let item_id = done["response"]["output"][0]["id"].clone();
    let generated = client.audio_ms_of(&done["response"]["id"]);
    assert!(generated > 2000, "{generated} ms");

    client
        .send(json!({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0,
                     "audio_end_ms": generated + 500}))
        .await;
    let error = client.next().await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["param"], "audio_end_ms");

    let half = generated / 2;
    client
        .send(
            json!({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": half}),
        )
        .await;
    let truncated = client.next().await;
    assert_eq!(
        truncated,
        json!({"type": "conversation.item.truncated", "event_id": truncated["event_id"],
                                 "item_id": item_id, "content_index": 0, "audio_end_ms": half})
    );
    client.send(json!({"type": "conversation.item.retrieve", "item_id": item_id})).await;
    let retrieved = client.next().await;
    let kept = retrieved["item"]["content"][0]["transcript"].as_str().expect("transcript").to_owned();
    assert!(!kept.is_empty() && kept.len() < reply.len() * 2 / 3, "{kept:?}");
    assert!(reply.starts_with(&kept));

    // Truncating again beyond the new end is refused too; a missing item is named.
    client
        .send(json!({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": half + 1}))
        .await;
    assert_eq!(client.next().await["error"]["param"], "audio_end_ms");
    client
        .send(json!({"type": "conversation.item.truncate", "item_id": "item_nope", "content_index": 0, "audio_end_ms": 0}))
        .await;
    assert_eq!(client.next().await["error"]["param"], "item_id");
}

#[tokio::test]
async fn items_can_be_created_to_reseed_a_conversation_and_deleted() {
    let sim = sim().await;
    let mut client = Client::connect(&sim).await;
    client.update(ga_session()).await;
    let user = json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello there"}]});
    client.send(json!({"type": "conversation.item.create", "item": user})).await;
    let added = client.next().await;
    assert_eq!(added["type"], "conversation.item.added");
    assert_eq!(added["previous_item_id"], Value::Null);
    assert_eq!(client.next().await["type"], "conversation.item.done");
    let first = added["item"]["id"].clone();
    let assistant = json!({"id": "item_seed2", "type": "message", "role": "assistant",
                           "content": [{"type": "output_text", "text": "I can't sleep."}]});
    client.send(json!({"type": "conversation.item.create", "item": assistant})).await;
    let added = client.next().await;
    assert_eq!(added["previous_item_id"], first);
    assert_eq!(added["item"]["id"], "item_seed2");
    client.next().await;

    // The beta content type is refused, naming the field.
    let beta = json!({"type": "message", "role": "assistant", "content": [{"type": "text", "text": "x"}]});
    client.send(json!({"type": "conversation.item.create", "item": beta})).await;
    assert_eq!(client.next().await["error"]["param"], "item.content[0].type");

    client.send(json!({"type": "conversation.item.delete", "item_id": "item_seed2"})).await;
    let deleted = client.next().await;
    assert_eq!(deleted["type"], "conversation.item.deleted");
    assert_eq!(deleted["item_id"], "item_seed2");
    client.send(json!({"type": "conversation.item.delete", "item_id": "item_seed2"})).await;
    assert_eq!(client.next().await["error"]["param"], "item_id");

    // Unscripted, the reply is the chat simulator's line for the last user text.
    client.send(speak_first()).await;
    let done = client.until("response.done").await;
    assert_eq!(done["response"]["output"][0]["content"][0]["transcript"], openai_sim::caller_line(Some("Hello there")));
}

#[tokio::test]
async fn unknown_and_malformed_client_events_answer_errors() {
    let sim = sim().await;
    let mut client = Client::connect(&sim).await;
    client.send(json!({"type": "response.audio.delta", "event_id": "e1"})).await;
    let error = client.next().await;
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert_eq!(error["error"]["param"], "type");
    assert_eq!(error["error"]["event_id"], "e1");
    client.socket.send(Message::text("not json")).await.expect("send");
    assert_eq!(client.next().await["type"], "error");
    client.send(json!({"type": "input_audio_buffer.append", "audio": "%%%"})).await;
    assert_eq!(client.next().await["error"]["param"], "audio");
    client.send(json!({"type": "input_audio_buffer.commit"})).await;
    assert_eq!(client.next().await["error"]["code"], "input_audio_buffer_commit_empty");
    // The socket survives all of it.
    client.update(ga_session()).await;
    assert_eq!(client.seen.last().map(|e| e["type"].clone()), Some(json!("session.updated")));
}

#[tokio::test]
async fn transcription_can_be_late_or_delayed_and_is_off_unless_configured() {
    let sim = sim().await;
    sim.add_rule(Rule::realtime().utterance(1).transcript("first").transcript_after_response());
    sim.add_rule(Rule::realtime().utterance(2).transcript("second").transcript_delay_ms(300).latency_ms(50));
    let mut client = Client::connect(&sim).await;
    client.update(ga_session()).await;
    client.append(&utterance()).await;
    client.until("response.done").await;
    let late = client.until("conversation.item.input_audio_transcription.completed").await;
    assert_eq!(late["transcript"], "first");

    client.append(&utterance()).await;
    let committed = std::time::Instant::now();
    let delayed = client.until("conversation.item.input_audio_transcription.completed").await;
    assert_eq!(delayed["transcript"], "second");
    assert!(committed.elapsed() >= Duration::from_millis(250), "{:?}", committed.elapsed());
    let at = client.seen.len() - 1;
    let created_at = client.seen.iter().rposition(|e| e["type"] == "response.created").expect("created");
    assert!(created_at < at, "the response did not wait for the delayed transcription");

    // A failed transcription says so, and the turn still gets its response.
    sim.add_rule(Rule::realtime().utterance(3).transcript_fails());
    client.append(&utterance()).await;
    let failed = client.until("conversation.item.input_audio_transcription.failed").await;
    assert_eq!(failed["error"]["type"], "transcription_error");
    client.until("response.done").await;

    // Without audio.input.transcription, none is sent.
    let mut quiet = Client::connect(&sim).await;
    let mut session = ga_session();
    session["audio"]["input"]["transcription"] = Value::Null;
    quiet.update(session).await;
    quiet.append(&utterance()).await;
    quiet.until("response.done").await;
    assert!(!quiet.types().iter().any(|t| t.contains("transcription")));
}

#[tokio::test]
async fn speech_during_a_response_interrupts_it() {
    let sim = sim().await;
    sim.add_rule(Rule::realtime().utterance(1).latency_ms(3000));
    let mut client = Client::connect(&sim).await;
    client.update(ga_session()).await;
    client.append(&utterance()).await;
    let created = client.until("response.created").await;
    client.append(&tone(400)).await;
    client.until("input_audio_buffer.speech_started").await;
    let done = client.until("response.done").await;
    assert_eq!(done["response"]["id"], created["response"]["id"]);
    assert_eq!(done["response"]["status"], "cancelled");
    assert_eq!(done["response"]["status_details"]["reason"], "turn_detected");
}

#[tokio::test]
async fn without_turn_detection_the_client_commits_and_asks_for_the_response() {
    let sim = sim().await;
    sim.add_rule(Rule::realtime().utterance(1).transcript("manual").reply_text("Okay."));
    let mut client = Client::connect(&sim).await;
    let mut session = ga_session();
    session["audio"]["input"]["turn_detection"] = Value::Null;
    client.update(session).await;
    client.append(&tone(500)).await;
    assert!(client.quiet_for(200).await.is_empty(), "no VAD events");
    client.send(json!({"type": "input_audio_buffer.commit"})).await;
    assert_eq!(client.next().await["type"], "input_audio_buffer.committed");
    client.until("conversation.item.input_audio_transcription.completed").await;
    assert!(client.quiet_for(200).await.is_empty(), "no automatic response");
    client.send(speak_first()).await;
    let done = client.until("response.done").await;
    assert_eq!(done["response"]["output"][0]["content"][0]["transcript"], "Okay.");
}

#[tokio::test]
async fn fault_drop_closes_the_socket_mid_response() {
    let sim = sim().await;
    sim.add_rule(Rule::realtime().reply_text("word ".repeat(40)).fault(Fault::DropConnection));
    let mut client = Client::connect(&sim).await;
    client.send(speak_first()).await;
    let mut deltas = 0;
    loop {
        match tokio::time::timeout(WAIT, client.socket.next()).await.expect("in time") {
            Some(Ok(Message::Text(text))) => {
                let event: Value = serde_json::from_str(text.as_str()).expect("JSON");
                assert_ne!(event["type"], "response.done", "the response never finishes");
                deltas += usize::from(event["type"] == "response.output_audio.delta");
            }
            Some(Ok(Message::Close(_))) => panic!("dropped sockets send no close frame"),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break,
        }
    }
    assert!(deltas >= 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(sim.realtime_connections()[0].close_reason.as_deref(), Some("dropped"));
}

#[tokio::test]
async fn fault_stall_keeps_the_socket_open_but_sends_nothing() {
    let sim = sim().await;
    sim.add_rule(Rule::realtime().reply_text("word ".repeat(40)).fault(Fault::Stall));
    let mut client = Client::connect(&sim).await;
    client.send(speak_first()).await;
    client.until("response.output_audio.delta").await;
    let rest = client.quiet_for(800).await;
    assert!(rest.iter().all(|e| e["type"] != "response.done"));
    client.send(json!({"type": "response.cancel"})).await;
    let after = client.quiet_for(400).await;
    assert!(after.is_empty(), "stalled: not even errors, got {after:?}");
    let connection = &sim.realtime_connections()[0];
    assert!(connection.closed_at_ms.is_none(), "still open");
    assert_eq!(connection.events_of(Direction::Client, "response.cancel").len(), 1, "still reading");
}

#[tokio::test]
async fn fault_latency_delays_the_first_audio() {
    let sim = sim().await;
    sim.add_rule(Rule::realtime().reply_text("Okay.").latency_ms(600));
    let mut client = Client::connect(&sim).await;
    client.send(speak_first()).await;
    client.until("response.created").await;
    let started = std::time::Instant::now();
    client.until("response.output_audio.delta").await;
    assert!(started.elapsed() >= Duration::from_millis(550), "{:?}", started.elapsed());
}

#[tokio::test]
async fn fault_session_cap_sends_the_expiry_error_then_closes() {
    let sim = sim().await;
    sim.add_rule(Rule::realtime().fault(Fault::SessionCap { after_ms: 500 }).times(1));
    let started = std::time::Instant::now();
    let mut client = Client::connect(&sim).await;
    let error = client.next().await;
    assert!(started.elapsed() >= Duration::from_millis(450));
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["code"], "session_expired");
    match tokio::time::timeout(WAIT, client.socket.next()).await.expect("in time") {
        Some(Ok(Message::Close(_))) | None => {}
        other => panic!("expected the socket to close, got {other:?}"),
    }
    // The cap rule was used once: the next socket is not capped.
    let mut next = Client::connect(&sim).await;
    assert!(next.quiet_for(700).await.is_empty());
}

/// A client re-seeding a conversation after a drop: seeded user messages count as utterances,
/// and a response after the assistant's own cut-off message carries on from it; a `session_cap`
/// rule for an utterance expires the session mid-way through that answer.
#[tokio::test]
async fn a_reseeded_conversation_keeps_utterance_numbers_and_a_cut_reply_carries_on() {
    let sim = sim().await;
    sim.add_rule(Rule::realtime().utterance(2).reply_text("Work has been falling apart lately."));
    let mut client = Client::connect(&sim).await;
    client.update(ga_session()).await;
    for (role, kind, text) in
        [("user", "input_text", "Hello."), ("assistant", "output_text", "Hi."), ("user", "input_text", "Tell me more.")]
            .into_iter()
            .chain([("assistant", "output_text", "Work has")])
    {
        let item = json!({"type": "message", "role": role, "content": [{"type": kind, "text": text}]});
        client.send(json!({"type": "conversation.item.create", "item": item})).await;
        client.until("conversation.item.done").await;
    }
    client.send(speak_first()).await;
    let done = client.until("response.done").await;
    assert_eq!(done["response"]["output"][0]["content"][0]["transcript"], "been falling apart lately.");

    sim.add_rule(Rule::realtime().utterance(1).reply_text("word ".repeat(40)).fault(Fault::SessionCap { after_ms: 0 }));
    let mut capped = Client::connect(&sim).await;
    capped.update(ga_session()).await;
    let item = json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]});
    capped.send(json!({"type": "conversation.item.create", "item": item})).await;
    capped.send(speak_first()).await;
    let error = loop {
        let event = capped.next().await;
        if event["type"] == "error" {
            break event;
        }
    };
    assert_eq!(error["error"]["code"], "session_expired");
    assert!(capped.seen.iter().any(|e| e["type"] == "response.output_audio.delta"), "mid-answer");
    assert!(capped.seen.iter().all(|e| e["type"] != "response.done"));
    match tokio::time::timeout(WAIT, capped.socket.next()).await.expect("in time") {
        Some(Ok(Message::Close(_))) | None => {}
        other => panic!("expected the socket to close, got {other:?}"),
    }
}

#[tokio::test]
async fn fault_status_refuses_the_upgrade() {
    let sim = sim().await;
    sim.add_rule(Rule::realtime().fault(Fault::status(503)).times(1));
    let url = format!("{}/realtime?model=gpt-realtime", sim.base_url().replace("http://", "ws://"));
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert("authorization", "Bearer sk-test".parse().expect("header"));
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 503),
        other => panic!("expected 503, got {:?}", other.map(|(_, response)| response.status())),
    }
    Client::connect(&sim).await;
}

#[tokio::test]
async fn recorded_events_are_served_over_the_control_api_and_reset() {
    let sim = sim().await;
    let mut client = Client::connect(&sim).await;
    client.update(ga_session()).await;
    let url = format!("{}/realtime/events?type=session.updated", sim.control_url());
    let connections: Value = reqwest::get(&url).await.expect("get").json().await.expect("json");
    assert_eq!(connections[0]["model"], "gpt-realtime");
    let events = connections[0]["events"].as_array().expect("events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["direction"], "server");
    assert_eq!(events[0]["event"]["session"]["audio"]["output"]["voice"], "marin");
    let client_events: Value = reqwest::get(format!("{}/realtime/events?direction=client", sim.control_url()))
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(client_events[0]["events"][0]["type"], "session.update");
    let status =
        reqwest::Client::new().post(format!("{}/reset", sim.control_url())).send().await.expect("reset").status();
    assert_eq!(status, 204);
    assert!(sim.realtime_connections().is_empty());
    // Rules for realtime come over the control API too.
    let added = reqwest::Client::new()
        .post(format!("{}/rules", sim.control_url()))
        .json(&json!({"endpoint": "realtime", "utterance": 0, "reply": {"text": "From JSON."}}))
        .send()
        .await
        .expect("rules");
    assert_eq!(added.status(), 201);
    client.send(speak_first()).await;
    let done = client.until("response.done").await;
    assert_eq!(done["response"]["output"][0]["content"][0]["transcript"], "From JSON.");
}

#[tokio::test]
async fn espeak_renders_real_speech_when_installed() {
    let installed = std::process::Command::new("espeak-ng").arg("--version").output().is_ok();
    if !installed {
        eprintln!("espeak-ng not on PATH: the tone fallback is covered by the other tests");
        return;
    }
    let sim = Simulator::start().await.expect("simulator");
    sim.state().set_tts_mode(TtsMode::Espeak);
    sim.add_rule(Rule::realtime().reply_text("I haven't been sleeping at all this week."));
    let mut client = Client::connect(&sim).await;
    client.send(speak_first()).await;
    let done = client.until("response.done").await;
    let ms = client.audio_ms_of(&done["response"]["id"]);
    assert!((1200..6000).contains(&ms), "a sentence of speech lasts seconds, got {ms} ms");
    // Speech, not a constant tone: the level varies a lot across 20 ms windows.
    let pcm: Vec<i16> = client
        .seen
        .iter()
        .filter(|e| e["type"] == "response.output_audio.delta")
        .flat_map(|e| BASE64.decode(e["delta"].as_str().unwrap_or_default()).unwrap_or_default())
        .collect::<Vec<u8>>()
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let levels: Vec<f64> = pcm
        .chunks(480)
        .map(|w| (w.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / w.len() as f64).sqrt())
        .collect();
    let loud = levels.iter().filter(|&&l| l > 1000.0).count();
    assert!(loud > 10 && loud < levels.len(), "{loud} of {} windows loud", levels.len());
}

#[tokio::test]
async fn browsers_authenticate_with_the_subprotocol_and_get_realtime_echoed() {
    let sim = sim().await;
    let url = format!("{}/realtime?model=gpt-realtime", sim.base_url().replace("http://", "ws://"));
    let mut request = url.into_client_request().expect("request");
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "realtime, openai-insecure-api-key.sk-test".parse().expect("header"));
    let (_socket, response) = tokio_tungstenite::connect_async(request).await.expect("upgrade");
    assert_eq!(response.headers().get("sec-websocket-protocol").map(|v| v.as_bytes()), Some(&b"realtime"[..]));
    let recorded = &sim.requests()[0].headers["sec-websocket-protocol"];
    assert_eq!(recorded, "realtime, openai-insecure-api-key.[redacted]", "the key is not recorded");
}

#[tokio::test]
async fn fault_malformed_json_sends_one_broken_frame_and_goes_on() {
    let sim = sim().await;
    sim.add_rule(Rule::realtime().reply_text("word ".repeat(12)).fault(Fault::MalformedJson));
    let mut client = Client::connect(&sim).await;
    client.send(speak_first()).await;
    let mut broken = 0;
    loop {
        match tokio::time::timeout(WAIT, client.socket.next()).await.expect("in time") {
            Some(Ok(Message::Text(text))) => match serde_json::from_str::<Value>(text.as_str()) {
                Ok(event) if event["type"] == "response.done" => break,
                Ok(_) => {}
                Err(_) => broken += 1,
            },
            other => panic!("socket ended: {other:?}"),
        }
    }
    assert_eq!(broken, 1);
}

#[tokio::test]
async fn a_text_only_session_answers_with_text_events() {
    let sim = sim().await;
    sim.add_rule(Rule::realtime().reply_text("Just text."));
    let mut client = Client::connect(&sim).await;
    client.update(json!({"type": "realtime", "output_modalities": ["text"]})).await;
    client.send(speak_first()).await;
    let done = client.until("response.done").await;
    assert_eq!(done["response"]["output"][0]["content"][0], json!({"type": "output_text", "text": "Just text."}));
    assert!(client.types().contains(&"response.output_text.delta"));
    assert!(!client.types().contains(&"response.output_audio.delta"));
}

#[tokio::test]
async fn barge_in_before_any_audio_deletes_the_item_without_error_and_truncate_is_refused() {
    let sim = sim().await;
    sim.add_rule(Rule::realtime().reply_text("You there?").latency_ms(2000));
    let mut client = Client::connect(&sim).await;
    client.send(speak_first()).await;
    let added = client.until("response.output_item.added").await;
    let item_id = added["item"]["id"].clone();
    // A truncate at 0 before the first delta is refused the way OpenAI refuses it...
    client
        .send(json!({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": 0}))
        .await;
    let error = loop {
        let event = client.next().await;
        if event["type"] == "error" {
            break event;
        }
    };
    assert_eq!(error["error"]["code"], "unsupported_content_type");
    // ...so the client deletes it, which also ends the response.
    client.send(json!({"type": "conversation.item.delete", "item_id": item_id})).await;
    let done = client.next().await;
    assert_eq!(done["type"], "response.output_audio.done");
    let done = client.until("response.done").await;
    assert_eq!(done["response"]["status"], "cancelled");
    assert_eq!(
        client.next().await,
        json!({"type": "conversation.item.deleted", "event_id": client.seen.last().map(|e| e["event_id"].clone()), "item_id": item_id})
    );
}

#[tokio::test]
async fn vad_hears_a_noise_burst_but_not_quiet_hiss() {
    let sim = sim().await;
    let mut client = Client::connect(&sim).await;
    client.update(ga_session()).await;
    let mut seed = 12345u32;
    let mut noise = |amplitude: f64, ms: usize| -> Vec<i16> {
        (0..ms * 24)
            .map(|_| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                ((f64::from(seed >> 16) / 32768.0 - 1.0) * amplitude) as i16
            })
            .collect()
    };
    let hiss = noise(150.0, 1500);
    client.append(&hiss).await;
    assert!(client.quiet_for(300).await.is_empty(), "-47 dBFS hiss is silence at threshold 0.5");
    let burst = [noise(8000.0, 600), silence(600)].concat();
    client.append(&burst).await;
    let started = client.until("input_audio_buffer.speech_started").await;
    assert_eq!(started["audio_start_ms"], 1200, "onset at 1500 ms minus 300 ms padding");
    let stopped = client.until("input_audio_buffer.speech_stopped").await;
    assert_eq!(stopped["audio_end_ms"], 2300, "burst ends at 2100 ms, plus 200 ms of silence");
}

#[tokio::test]
async fn shutting_the_simulator_down_closes_open_sockets_with_going_away() {
    let sim = sim().await;
    let mut client = Client::connect(&sim).await;
    sim.shutdown().await;
    match tokio::time::timeout(WAIT, client.socket.next()).await.expect("in time") {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1001),
        other => panic!("expected a going-away close frame, got {other:?}"),
    }
}
