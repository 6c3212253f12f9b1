//! `lk-load`: N concurrent callers for the agent-media benchmark.
//!
//! Each caller joins its own room with a token that dispatches the agent (`RoomAgentDispatch`),
//! publishes a 440 Hz tone in real time (one 20 ms frame per 20 ms, from packets encoded once for
//! all callers) for the given duration, and
//! counts the echoed frames it gets back from the agent. It uses this crate's own participant, so
//! it needs no Python and stays cheap enough to run 50 callers beside the agent on 2 cores.
//! Prints one JSON line: sessions, frames sent and echoed, and how many sessions heard an echo.
//! With `--talk-ms T --quiet-ms Q` (the voice benchmark) each caller is a synthetic counselor
//! instead: T ms of tone (speech to the simulator's energy VAD), then Q ms of silence, repeated;
//! a session then counts as answered when it heard any audio back.

use std::process::ExitCode;
use std::time::Duration;

use agent::audio::{FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE};
use agent::participant::{Participant, ParticipantConfig};
use agent::session::{LOOPBACK, SessionEvent};
use livekit_api::access_token::{AccessToken, VideoGrants};
use livekit_protocol as proto;

struct Args {
    url: String,
    api_key: String,
    api_secret: String,
    sessions: usize,
    seconds: u64,
    agent_name: String,
    talk_ms: u64,
    quiet_ms: u64,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        url: String::new(),
        api_key: String::new(),
        api_secret: String::new(),
        sessions: 1,
        seconds: 30,
        agent_name: agent::worker::DEFAULT_AGENT_NAME.into(),
        talk_ms: 0,
        quiet_ms: 0,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let v = it.next().ok_or(format!("{flag} needs a value"))?.clone();
        match flag.as_str() {
            "--url" => a.url = v,
            "--api-key" => a.api_key = v,
            "--api-secret" => a.api_secret = v,
            "--sessions" => a.sessions = v.parse().map_err(|_| "bad --sessions")?,
            "--seconds" => a.seconds = v.parse().map_err(|_| "bad --seconds")?,
            "--agent-name" => a.agent_name = v,
            "--talk-ms" => a.talk_ms = v.parse().map_err(|_| "bad --talk-ms")?,
            "--quiet-ms" => a.quiet_ms = v.parse().map_err(|_| "bad --quiet-ms")?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.url.is_empty() || a.api_key.is_empty() || a.api_secret.is_empty() {
        return Err("usage: lk-load --url URL --api-key K --api-secret S [--sessions N] [--seconds T]".into());
    }
    Ok(a)
}

#[derive(Debug, Default, Clone, Copy)]
struct CallerStats {
    sent: u64,
    echoed: u64,
}

/// A token for `identity` in `room` that also dispatches the agent into the room.
fn caller_token(a: &Args, room: &str, identity: &str) -> Result<String, String> {
    AccessToken::with_api_key(&a.api_key, &a.api_secret)
        .with_identity(identity)
        .with_grants(VideoGrants { room_join: true, room: room.to_owned(), ..Default::default() })
        .with_room_config(proto::RoomConfiguration {
            agents: vec![proto::RoomAgentDispatch { agent_name: a.agent_name.clone(), ..Default::default() }],
            ..Default::default()
        })
        .to_jwt()
        .map_err(|e| e.to_string())
}

/// One cycle of what every caller sends, encoded once: a whole number of seconds of 440 Hz (so it
/// loops without a click) and of talk periods, the tone for `talk.0` ms of each `talk.0 + talk.1`
/// when talking.
/// Sharing it keeps the load client's own cost (an Opus encode per frame per caller) off the
/// machine the agent is measured on.
fn packets(talk: (u64, u64)) -> Vec<Vec<u8>> {
    // The talk pattern and the tone's whole second both repeat in the least common multiple.
    let gcd = |mut a: u64, mut b: u64| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    let period = (talk.0 + talk.1).max(FRAME_MS);
    let cycle_ms = if talk.0 > 0 { period / gcd(period, 1000) * 1000 } else { 1000 };
    let mut encoder = agent::audio::Encoder::new().expect("an Opus encoder");
    (0..cycle_ms / FRAME_MS)
        .map(|k| {
            let n = k as usize * FRAME_SAMPLES;
            let pcm: Vec<i16> = if talk.0 > 0 && (k * FRAME_MS) % (talk.0 + talk.1) >= talk.0 {
                vec![0; FRAME_SAMPLES]
            } else {
                (0..FRAME_SAMPLES)
                    .map(|i| {
                        let t = (n + i) as f64 / SAMPLE_RATE as f64;
                        (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16
                    })
                    .collect()
            };
            encoder.encode(&pcm).expect("a 20 ms frame encodes")
        })
        .collect()
}

async fn caller(
    url: String,
    token: String,
    seconds: u64,
    talk: (u64, u64),
    packets: std::sync::Arc<Vec<Vec<u8>>>,
) -> Result<CallerStats, String> {
    let mut participant = Participant::connect(ParticipantConfig {
        url,
        token,
        bind_ip: LOOPBACK,
        publish_audio: true,
        track_name: "caller".into(),
    })
    .await
    .map_err(|e| e.to_string())?;
    let commands = participant.commands();
    let mut stats = CallerStats::default();

    // Wait until the publisher PC is up, so frames are not dropped before negotiation.
    let ready = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(e) = participant.next_event().await {
            if matches!(e, SessionEvent::Connected(agent::session::PeerRole::Publisher)) {
                return true;
            }
        }
        false
    })
    .await;
    if !matches!(ready, Ok(true)) {
        return Err("publisher never connected".into());
    }

    let mut tick = tokio::time::interval(Duration::from_millis(FRAME_MS));
    // Real-time pacing without catch-up bursts: a late tick is simply late.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let frames = seconds * 1000 / FRAME_MS;
    let mut sent = 0u64;
    let end_grace = tokio::time::sleep(Duration::from_millis(seconds * 1000 + 1500));
    tokio::pin!(end_grace);
    loop {
        tokio::select! {
            _ = tick.tick(), if sent < frames => {
                let packet = packets[sent as usize % packets.len()].clone();
                if commands.send(agent::participant::Command::PublishOpus { packet, sent: None }).await.is_err() {
                    break;
                }
                sent += 1;
            }
            e = participant.next_event() => match e {
                Some(SessionEvent::Audio { pcm, .. }) => {
                    if talk.0 == 0 || pcm.iter().any(|&s| s.unsigned_abs() > 500) {
                        stats.echoed += 1;
                    }
                }
                Some(_) => {}
                None => break,
            },
            _ = &mut end_grace => break,
        }
    }
    stats.sent = sent;
    participant.leave().await.map_err(|e| e.to_string())?;
    Ok(stats)
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let run = std::process::id();
    let packets = std::sync::Arc::new(packets((args.talk_ms, args.quiet_ms)));
    let mut tasks = Vec::new();
    for i in 0..args.sessions {
        let room = format!("bench-{run}-{i}");
        let token = match caller_token(&args, &room, &format!("caller-{i}")) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("token: {e}");
                return ExitCode::FAILURE;
            }
        };
        tasks.push(tokio::spawn(caller(
            args.url.clone(),
            token,
            args.seconds,
            (args.talk_ms, args.quiet_ms),
            packets.clone(),
        )));
        // Stagger joins a little, as real calls would arrive.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (mut sent, mut echoed, mut with_echo, mut failed) = (0u64, 0u64, 0usize, 0usize);
    for t in tasks {
        match t.await {
            Ok(Ok(s)) => {
                sent += s.sent;
                echoed += s.echoed;
                // At least half the audio came back: the session really echoed.
                let answered = if args.talk_ms > 0 { s.echoed > 0 } else { s.echoed * 2 >= s.sent };
                if answered && s.sent > 0 {
                    with_echo += 1;
                }
            }
            Ok(Err(e)) => {
                eprintln!("caller failed: {e}");
                failed += 1;
            }
            Err(e) => {
                eprintln!("caller panicked: {e}");
                failed += 1;
            }
        }
    }
    println!(
        "{{\"sessions\": {}, \"seconds\": {}, \"frames_sent\": {sent}, \"frames_echoed\": {echoed}, \
         \"sessions_echoed\": {with_echo}, \"sessions_failed\": {failed}}}",
        args.sessions, args.seconds
    );
    if with_echo == args.sessions { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
