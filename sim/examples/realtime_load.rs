//! Load on the Realtime simulator: N concurrent sockets, each appending 20 ms of 24 kHz PCM at
//! real-time pace (2 s of speech, then silence) for a few turns, reading every event. Prints
//! the process's CPU (simulator and these clients together) and peak RSS per N, so a voice
//! benchmark knows what the simulator costs on its machine.
//!
//! `cargo run --release -p proto-trainer-openai-sim --example realtime_load -- 1 10 50 100`

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures::{SinkExt, StreamExt};
use openai_sim::{Simulator, TtsMode};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const TURNS: usize = 3;

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum());
    ticks / 100.0
}

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

async fn call(url: String) -> usize {
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert("authorization", "Bearer sk-load".parse().expect("header"));
    let (socket, _) = tokio_tungstenite::connect_async(request).await.expect("connect");
    let (mut tx, mut rx) = socket.split();
    let reader = tokio::spawn(async move {
        let mut done = 0;
        while let Some(Ok(message)) = rx.next().await {
            if let Message::Text(text) = message
                && text.as_str().contains("\"response.done\"")
            {
                done += 1;
                if done == TURNS {
                    break;
                }
            }
        }
        done
    });
    let session = json!({"type": "session.update", "session": {"type": "realtime",
        "audio": {"input": {"transcription": {"model": "whisper-1"}}}}});
    tx.send(Message::text(session.to_string())).await.expect("send");
    let speech: Vec<u8> =
        (0..480).map(|i| (((i as f64) * 0.06).sin() * 9000.0) as i16).flat_map(i16::to_le_bytes).collect();
    let silence = vec![0u8; 960];
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for frame in 0..TURNS * 250 {
        tick.tick().await;
        let chunk = if frame % 250 < 100 { &speech } else { &silence };
        let event = json!({"type": "input_audio_buffer.append", "audio": BASE64.encode(chunk)});
        if tx.send(Message::text(event.to_string())).await.is_err() {
            break;
        }
    }
    reader.await.unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let counts: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let counts = if counts.is_empty() { vec![1, 10, 50, 100] } else { counts };
    let sim = Simulator::start().await.expect("simulator");
    sim.state().set_tts_mode(TtsMode::Tone);
    let url = format!("{}/realtime?model=gpt-realtime", sim.base_url().replace("http://", "ws://"));
    println!("calls  wall_s  cpu_%  cpu_%_per_call  turns_done  peak_rss_mb");
    for n in counts {
        sim.reset();
        let (cpu, wall) = (cpu_seconds(), Instant::now());
        let calls: Vec<_> = (0..n).map(|_| tokio::spawn(call(url.clone()))).collect();
        let mut turns = 0;
        for call in calls {
            turns += call.await.unwrap_or(0);
        }
        let wall = wall.elapsed().as_secs_f64();
        let cpu = 100.0 * (cpu_seconds() - cpu) / wall;
        println!("{n:5}  {wall:6.1}  {cpu:5.1}  {:14.2}  {turns:10}  {:11.1}", cpu / n as f64, rss_mb());
    }
}
