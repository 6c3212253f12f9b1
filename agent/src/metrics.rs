//! The agent's Prometheus metrics: per-turn latencies and per-call counters, recorded through
//! the `metrics` facade so that whichever recorder the process installed exports them. In the
//! combined `proto-trainer serve` that is the admin service's recorder (one `/metrics` for
//! both); an agent running alone installs its own with [`install`] and serves it with [`serve`].
//!
//! Samples come from a call's [`CallStats`] when the call ends (the call core keeps them per
//! turn, sans-IO), so nothing here touches the per-frame path.

use std::net::SocketAddr;
use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::call::CallStats;

/// End of counselor speech -> first caller audio frame out.
pub const RESPONSE_LATENCY: &str = "agent_response_latency_seconds";
/// Realtime: end of counselor speech (`speech_stopped`) -> the reply's first audio delta.
pub const REALTIME_FIRST_AUDIO: &str = "agent_realtime_first_audio_seconds";
/// Barge-in: `speech_started` -> caller audio stopped.
pub const BARGE_IN_STOP: &str = "agent_barge_in_stop_seconds";
/// Added inside the agent: oldest mic sample of a batch -> its `input_audio_buffer.append` sent.
pub const MIC_TO_APPEND: &str = "agent_mic_to_append_seconds";
/// Added inside the agent: a reply's first audio delta -> its first frame made by the call core.
pub const DELTA_TO_FRAME: &str = "agent_delta_to_frame_seconds";
/// Added inside the agent: a reply's first audio delta -> its first RTP packet sent to the socket
/// (the core's part plus the hop to the room loop).
pub const DELTA_TO_RTP: &str = "agent_delta_to_rtp_seconds";

/// Histogram buckets, seconds (the admin service's, so both recorders agree).
const BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The load this worker reports to LiveKit's dispatch: calls held plus calls promised (an
/// availability "yes" whose assignment has not come yet) over `AGENT_MAX_JOBS`, 0..=1, and that
/// maximum. At 1 the worker reports FULL and is offered no new call, so `agent_load` is what an
/// autoscaler should hold below 1 (the Helm chart's HPA targets its average).
pub const LOAD: &str = "agent_load";
/// `AGENT_MAX_JOBS`: the calls one worker takes before it reports full.
pub const MAX_CALLS: &str = "agent_calls_max";

/// The worker's load as last reported to the server (set by the worker shell on every change).
pub fn worker_load(load: f32, max_calls: usize) {
    metrics::gauge!(LOAD).set(f64::from(load));
    metrics::gauge!(MAX_CALLS).set(max_calls as f64);
}

/// A call started.
pub fn call_started() {
    metrics::counter!("agent_calls_started_total").increment(1);
    metrics::gauge!("agent_calls_active").increment(1.0);
}

/// A call ended: its latency samples and counters.
pub fn call_ended(stats: &CallStats) {
    metrics::counter!("agent_calls_ended_total").increment(1);
    metrics::gauge!("agent_calls_active").decrement(1.0);
    let series: [(&'static str, &[u32]); 6] = [
        (RESPONSE_LATENCY, &stats.response_latency_ms),
        (REALTIME_FIRST_AUDIO, &stats.realtime_first_audio_ms),
        (BARGE_IN_STOP, &stats.barge_in_stop_ms),
        (MIC_TO_APPEND, &stats.mic_to_append_ms),
        (DELTA_TO_FRAME, &stats.delta_to_frame_ms),
        (DELTA_TO_RTP, &stats.delta_to_rtp_ms),
    ];
    for (name, samples) in series {
        let h = metrics::histogram!(name);
        for &ms in samples {
            h.record(f64::from(ms) / 1000.0);
        }
    }
    metrics::counter!("agent_caller_frames_played_total").increment(stats.frames_played);
    metrics::counter!("agent_playout_underruns_total").increment(u64::from(stats.underruns));
    metrics::counter!("agent_realtime_reconnects_total").increment(u64::from(stats.reconnects));
    metrics::counter!("agent_realtime_recycles_total").increment(u64::from(stats.recycles));
    metrics::counter!("agent_barge_ins_total").increment(u64::from(stats.barge_ins));
}

/// Installs a Prometheus recorder for an agent running alone (the first call wins; a recorder
/// someone else installed first keeps recording, and ours then renders empty).
pub fn install() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder =
            PrometheusBuilder::new().set_buckets(&BUCKETS).expect("static buckets are valid").build_recorder();
        let handle = recorder.handle();
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Serves `GET /metrics` (anything else: 404) on `listener` until the task is dropped. A
/// deliberately tiny HTTP/1.1 responder: one request per connection, no keep-alive.
pub async fn serve(listener: TcpListener, handle: &'static PrometheusHandle) {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "agent metrics listening");
    }
    loop {
        let (mut socket, peer): (_, SocketAddr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                warn!(error = %e, "metrics accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        tokio::spawn(async move {
            let mut request = [0u8; 1024];
            let mut len = 0;
            // Read until the end of the request line (a scraper's request fits in one packet).
            while len < request.len() {
                match tokio::time::timeout(std::time::Duration::from_secs(5), socket.read(&mut request[len..])).await {
                    Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                    Ok(Ok(n)) => len += n,
                }
                if request[..len].windows(2).any(|w| w == b"\r\n") {
                    break;
                }
            }
            let line = String::from_utf8_lossy(&request[..len]);
            let target = line.split_whitespace().nth(1).unwrap_or("");
            let ok = line.starts_with("GET ") && (target == "/metrics" || target.starts_with("/metrics?"));
            let (status, body) = if ok { ("200 OK", handle.render()) } else { ("404 Not Found", "not found\n".into()) };
            let head = format!(
                "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            if socket.write_all(head.as_bytes()).await.is_ok() {
                let _ = socket.write_all(body.as_bytes()).await;
            }
            let _ = socket.shutdown().await;
            tracing::debug!(%peer, ok, "metrics scraped");
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_scrape_shows_a_calls_latencies_and_counters() {
        let handle = install();
        let stats = CallStats {
            frames_played: 50,
            underruns: 1,
            reconnects: 2,
            response_latency_ms: vec![420, 380],
            realtime_first_audio_ms: vec![300],
            barge_in_stop_ms: vec![15],
            mic_to_append_ms: vec![3, 4, 5],
            delta_to_frame_ms: vec![7],
            delta_to_rtp_ms: vec![8, 9],
            ..Default::default()
        };
        call_started();
        call_ended(&stats);
        worker_load(0.25, 4);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener, handle));
        let scrape = |path: &'static str| async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes()).await.unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        let body = scrape("/metrics").await;
        assert!(body.starts_with("HTTP/1.1 200"), "{body}");
        for line in [
            "agent_response_latency_seconds_count 2",
            "agent_realtime_first_audio_seconds_count 1",
            "agent_barge_in_stop_seconds_count 1",
            "agent_mic_to_append_seconds_count 3",
            "agent_delta_to_frame_seconds_count 1",
            "agent_delta_to_rtp_seconds_count 2",
            "agent_playout_underruns_total 1",
            "agent_realtime_reconnects_total 2",
            "agent_calls_ended_total 1",
            "agent_load 0.25",
            "agent_calls_max 4",
        ] {
            assert!(body.lines().any(|l| l == line), "missing `{line}` in\n{body}");
        }
        assert!(body.contains("agent_response_latency_seconds_bucket{le=\"0.5\"} 2"), "{body}");
        assert!(scrape("/other").await.starts_with("HTTP/1.1 404"));
        server.abort();
    }
}
