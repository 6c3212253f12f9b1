//! The Realtime simulator through a real WebSocket client (tokio-tungstenite), as the agent
//! will use it: `{base_url}/realtime?model=...` with a bearer key.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures::{SinkExt, StreamExt};
use openai_sim::{Direction, Rule, Simulator, TtsMode};
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
            let message = tokio::time::timeout(WAIT, self.socket.next()).await.expect("an event in time");
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
