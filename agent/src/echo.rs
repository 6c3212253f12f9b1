//! The echo job: the agent's test mode, which proves the media and data paths end to end.
//!
//! It publishes back every audio frame it hears, sets `lk.agent.state` to `listening`, and
//! answers each user data packet and each text stream with an `lk.transcription` text stream
//! `heard: <payload or text>`.
//! It ends when it is stopped, removed from the room, or the last other participant left.

use std::collections::HashSet;
use std::future::Future;
use std::time::{SystemTime, UNIX_EPOCH};

use livekit_protocol as proto;
use tracing::{debug, info};

use crate::audio::FRAME_SAMPLES;
use crate::datastream::{self, TRANSCRIPTION_TOPIC, TextStream, TextStreamReceiver};
use crate::participant::{Command, Participant, ParticipantError};
use crate::session::SessionEvent;

/// Attribute the browser components read the agent's state from.
pub const AGENT_STATE_ATTRIBUTE: &str = "lk.agent.state";
/// Topic of test-only data packets asking the echo to have the server simulate a fault on its
/// session (payload: `node_failure` or `migration`). Honoured only with [`EchoOptions::test_hooks`].
pub const SIMULATE_TOPIC: &str = "lk-test.simulate";

#[derive(Debug, Default, Clone, Copy)]
pub struct EchoOptions {
    /// Honour [`SIMULATE_TOPIC`] packets (tests of resume and rejoin).
    pub test_hooks: bool,
}

/// Counters reported when the job ends.
#[derive(Debug, Default, Clone, Copy)]
pub struct EchoStats {
    pub frames_received: u64,
    pub frames_echoed: u64,
    pub data_packets: u64,
    pub text_streams: u64,
    pub rejoins: u64,
}

/// Runs the echo until `stop` resolves or the room is done with us, then leaves.
pub async fn run(
    mut participant: Participant,
    options: EchoOptions,
    stop: impl Future<Output = ()>,
) -> Result<EchoStats, ParticipantError> {
    tokio::pin!(stop);
    let mut stats = EchoStats::default();
    // Remote participants other than agents; when the last one leaves, the job is over.
    let mut others: HashSet<String> = participant
        .others
        .iter()
        .filter(|p| p.kind != proto::participant_info::Kind::Agent as i32)
        .map(|p| p.sid.clone())
        .collect();
    let mut seen_anyone = !others.is_empty();
    let mut own_track_sid = String::new();
    let mut segment = 0u64;
    let mut texts = TextStreamReceiver::default();

    let listening = || Command::SetAttributes([(AGENT_STATE_ATTRIBUTE.to_owned(), "listening".to_owned())].into());
    participant.send(listening()).await?;

    // Opus frames may be longer than 20 ms (the sender's choice); re-cut into 20 ms frames.
    let mut pending: Vec<i16> = Vec::new();
    loop {
        let event = tokio::select! {
            e = participant.next_event() => e,
            _ = &mut stop => break,
        };
        let Some(event) = event else { break };
        match event {
            SessionEvent::Audio { pcm, .. } => {
                stats.frames_received += 1;
                pending.extend_from_slice(&pcm);
                while pending.len() >= FRAME_SAMPLES {
                    let frame: Vec<i16> = pending.drain(..FRAME_SAMPLES).collect();
                    participant.publish_audio(frame).await?;
                    stats.frames_echoed += 1;
                }
            }
            SessionEvent::TrackPublished { track_sid, .. } => own_track_sid = track_sid,
            SessionEvent::Rejoined { sid, .. } => {
                // A new participant now: new sid, and attributes start empty again.
                stats.rejoins += 1;
                participant.sid = sid;
                participant.send(listening()).await?;
            }
            SessionEvent::Data(packet) => {
                // Text streams (e.g. typed chat) are answered like data packets.
                if let Some(received) = texts.handle(&packet) {
                    stats.text_streams += 1;
                    info!(from = %received.sender_identity, topic = %received.topic, "text stream");
                    segment += 1;
                    reply(&participant, segment, &own_track_sid, &received.text).await?;
                    continue;
                }
                let Some(proto::data_packet::Value::User(user)) = packet.value else {
                    continue;
                };
                if user.topic.as_deref() == Some(SIMULATE_TOPIC) {
                    if options.test_hooks {
                        simulate(&participant, &user.payload).await?;
                    }
                    continue;
                }
                stats.data_packets += 1;
                segment += 1;
                info!(from = %packet.participant_identity, "data packet");
                reply(&participant, segment, &own_track_sid, &String::from_utf8_lossy(&user.payload)).await?;
            }
            SessionEvent::Participants(updates) => {
                for p in updates {
                    if p.kind == proto::participant_info::Kind::Agent as i32 || p.sid == participant.sid {
                        continue;
                    }
                    if p.state == proto::participant_info::State::Disconnected as i32 {
                        others.remove(&p.sid);
                    } else {
                        seen_anyone = true;
                        others.insert(p.sid);
                    }
                }
                if seen_anyone && others.is_empty() {
                    info!("everyone else left; ending the echo");
                    break;
                }
            }
            SessionEvent::Left(_) => break,
            other => debug!(event = ?other, "session event"),
        }
    }
    info!(?stats, "echo finished");
    participant.leave().await?;
    Ok(stats)
}

/// Answers `heard` with a final caption segment `heard: <text>` on `lk.transcription`.
async fn reply(
    participant: &Participant,
    segment: u64,
    own_track_sid: &str,
    heard: &str,
) -> Result<(), ParticipantError> {
    let text = format!("heard: {heard}");
    let stream_id = format!("{}-echo-{segment}", participant.sid);
    let packets = datastream::text_stream_packets(&TextStream {
        stream_id: &stream_id,
        topic: TRANSCRIPTION_TOPIC,
        text: &text,
        attributes: datastream::transcription_attributes(&format!("SG_{segment}"), own_track_sid),
        timestamp_ms: unix_millis(),
    });
    for mut packet in packets {
        packet.participant_identity = participant.identity.clone();
        participant.send(Command::SendData { packet: Box::new(packet), reliable: true }).await?;
    }
    Ok(())
}

/// Asks the server to break our session the way `payload` names.
async fn simulate(participant: &Participant, payload: &[u8]) -> Result<(), ParticipantError> {
    use proto::simulate_scenario::Scenario;
    let scenario = match payload {
        b"node_failure" => Scenario::NodeFailure(true),
        b"migration" => Scenario::Migration(true),
        other => {
            info!(payload = %String::from_utf8_lossy(other), "unknown simulate request ignored");
            return Ok(());
        }
    };
    info!(?scenario, "simulating a fault on our session");
    participant.send(Command::Simulate(proto::SimulateScenario { scenario: Some(scenario) })).await
}

fn unix_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}
