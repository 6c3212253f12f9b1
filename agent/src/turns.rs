//! Where a call's turns go: the types and the [`TurnStore`] seam of `tools/VOICE-INTERFACES.md`.
//!
//! The store side (co-deployed store, internal HTTP API) is the backend helper's; this file is the
//! bridge's minimal version of exactly that interface, so the call core can be built and tested
//! against it (an in-memory store in tests, a file-backed one in live tests). [`TurnWriter`] is
//! real: it owns the store on its own task so the media loop never waits on it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Speaker {
    Counselor,
    Caller,
}

/// One final turn as spoken. Times are milliseconds since the call started (the agent's clock);
/// a counselor turn is stamped at its speech start.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpokenTurn {
    /// Unique per session; writes are idempotent by it.
    pub segment_id: String,
    pub speaker: Speaker,
    pub text: String,
    pub started_ms: u64,
    pub ended_ms: u64,
    /// A caller turn truncated by a barge-in.
    pub cut: bool,
}

/// What the call needs to start.
#[derive(Debug, Clone)]
pub struct CallSetup {
    pub session_id: uuid::Uuid,
    /// The caller persona prompt only (split brain).
    pub instructions: String,
    pub voice: String,
    pub caller_speaks_first: bool,
    /// Band-limit the caller's voice (phone scenarios, opt-in).
    pub phone_line: bool,
    pub max_duration: Duration,
    pub silence_timeout: Duration,
    /// For a restarted agent re-seeding the conversation.
    pub prior_turns: Vec<SpokenTurn>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EndReason {
    CounselorLeft,
    MaxDuration,
    Silence,
    EndedBySupervisor,
    AgentShutdown,
    Failed,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallEnd {
    pub reason: EndReason,
    /// Summed over responses (and sockets).
    pub usage: RealtimeUsage,
    /// Per caller turn: latencies in ms.
    pub turn_metrics: Vec<TurnMetrics>,
    pub recording: Option<RecordingInfo>,
}

pub use crate::recording::RecordingInfo;

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RealtimeUsage {
    pub input_text_tokens: u64,
    pub input_audio_tokens: u64,
    pub output_text_tokens: u64,
    pub output_audio_tokens: u64,
    pub cached_tokens: u64,
    pub input_audio_ms: u64,
    pub output_audio_ms: u64,
    pub model: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnMetrics {
    pub segment_id: String,
    /// End of counselor speech (`speech_stopped`) -> first caller audio frame out.
    pub response_latency_ms: Option<u32>,
    /// `speech_stopped` (or our `response.create`) -> first audio delta from Realtime.
    pub realtime_first_audio_ms: Option<u32>,
    /// `speech_started` -> caller audio stopped.
    pub barge_in_stop_ms: Option<u32>,
    pub underruns: u32,
}

#[derive(Debug, Error)]
pub enum TurnStoreError {
    /// Worth retrying (store or admin unreachable, timeouts).
    #[error("turn store unavailable: {0}")]
    Unavailable(String),
    /// Not worth retrying (bad credential, session gone).
    #[error("turn store refused: {0}")]
    Fatal(String),
}

/// Where a call's turns go. Errors are retryable unless `Fatal`.
pub trait TurnStore: Send + Sync + 'static {
    fn setup(&self) -> BoxFuture<'_, Result<CallSetup, TurnStoreError>>;
    fn append<'a>(&'a self, turns: &'a [SpokenTurn]) -> BoxFuture<'a, Result<(), TurnStoreError>>;
    fn end(&self, end: CallEnd) -> BoxFuture<'_, Result<(), TurnStoreError>>;
    /// Polled between turns: has a supervisor ended this session?
    fn ended_elsewhere(&self) -> BoxFuture<'_, Result<bool, TurnStoreError>>;
}

enum WriterMessage {
    Turn(SpokenTurn),
    Finish(CallEnd, oneshot::Sender<Result<(), TurnStoreError>>),
    /// Internal: the retry pause passed.
    Retry,
}

/// How long `finish` keeps retrying buffered turns before it gives up on them and ends anyway.
const FINISH_FLUSH_BUDGET: Duration = Duration::from_secs(10);

/// Owns a TurnStore on its own task: `push` never blocks the media loop; turns are written in
/// order, buffered and retried with backoff while the store is unreachable; `finish` flushes
/// (bounded time), then calls `end`.
pub struct TurnWriter {
    tx: mpsc::UnboundedSender<WriterMessage>,
}

impl std::fmt::Debug for TurnWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnWriter").finish_non_exhaustive()
    }
}

impl TurnWriter {
    pub fn spawn(store: Arc<dyn TurnStore>) -> TurnWriter {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(store, rx));
        TurnWriter { tx }
    }

    pub fn push(&self, turn: SpokenTurn) {
        let _ = self.tx.send(WriterMessage::Turn(turn));
    }

    pub async fn finish(self, end: CallEnd) -> Result<(), TurnStoreError> {
        let (done_tx, done_rx) = oneshot::channel();
        self.tx
            .send(WriterMessage::Finish(end, done_tx))
            .map_err(|_| TurnStoreError::Fatal("turn writer stopped".into()))?;
        done_rx.await.map_err(|_| TurnStoreError::Fatal("turn writer stopped".into()))?
    }
}

async fn write_loop(store: Arc<dyn TurnStore>, mut rx: mpsc::UnboundedReceiver<WriterMessage>) {
    let mut pending: Vec<SpokenTurn> = Vec::new();
    let mut backoff = Duration::from_millis(200);
    loop {
        let message = if pending.is_empty() {
            rx.recv().await
        } else {
            // Keep taking turns while we wait to retry, so order and batching hold.
            match tokio::time::timeout(backoff, rx.recv()).await {
                Ok(m) => m,
                Err(_) => Some(WriterMessage::Retry),
            }
        };
        let mut finish = None;
        match message {
            None => return,
            Some(WriterMessage::Turn(turn)) => pending.push(turn),
            Some(WriterMessage::Finish(end, done)) => finish = Some((end, done)),
            Some(WriterMessage::Retry) => {}
        }
        while finish.is_none() {
            match rx.try_recv() {
                Ok(WriterMessage::Turn(t)) => pending.push(t),
                Ok(WriterMessage::Finish(end, done)) => finish = Some((end, done)),
                Ok(WriterMessage::Retry) | Err(_) => break,
            }
        }
        if let Some((end, done)) = finish {
            let _ = done.send(flush_and_end(store.as_ref(), &mut pending, end).await);
            return;
        }
        if pending.is_empty() {
            continue;
        }
        match store.append(&pending).await {
            Ok(()) => {
                pending.clear();
                backoff = Duration::from_millis(200);
            }
            Err(TurnStoreError::Fatal(e)) => {
                warn!(error = %e, lost = pending.len(), "turns refused by the store");
                pending.clear();
            }
            Err(e) => {
                warn!(error = %e, buffered = pending.len(), "turn store unavailable; will retry");
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Writes what is still buffered (within [`FINISH_FLUSH_BUDGET`]), then ends the session.
async fn flush_and_end(
    store: &dyn TurnStore,
    pending: &mut Vec<SpokenTurn>,
    end: CallEnd,
) -> Result<(), TurnStoreError> {
    let deadline = tokio::time::Instant::now() + FINISH_FLUSH_BUDGET;
    while !pending.is_empty() && tokio::time::Instant::now() < deadline {
        match store.append(pending).await {
            Ok(()) => pending.clear(),
            Err(TurnStoreError::Fatal(e)) => {
                warn!(error = %e, lost = pending.len(), "turns refused by the store");
                pending.clear();
            }
            Err(e) => {
                warn!(error = %e, "turn store unavailable at finish; retrying");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
    let mut result = store.end(end.clone()).await;
    while matches!(result, Err(TurnStoreError::Unavailable(_))) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        result = store.end(end.clone()).await;
    }
    result
}

/// An in-memory store for tests: records turns (idempotent by segment id) and the end.
#[derive(Debug, Default)]
pub struct MemoryTurnStore {
    pub setup: std::sync::Mutex<Option<CallSetup>>,
    pub turns: std::sync::Mutex<Vec<SpokenTurn>>,
    pub ended: std::sync::Mutex<Option<CallEnd>>,
    pub ended_elsewhere: std::sync::atomic::AtomicBool,
}

impl TurnStore for MemoryTurnStore {
    fn setup(&self) -> BoxFuture<'_, Result<CallSetup, TurnStoreError>> {
        Box::pin(async move {
            self.setup.lock().expect("lock").clone().ok_or_else(|| TurnStoreError::Fatal("no setup".into()))
        })
    }
    fn append<'a>(&'a self, turns: &'a [SpokenTurn]) -> BoxFuture<'a, Result<(), TurnStoreError>> {
        Box::pin(async move {
            let mut stored = self.turns.lock().expect("lock");
            for t in turns {
                if !stored.iter().any(|s| s.segment_id == t.segment_id) {
                    stored.push(t.clone());
                }
            }
            Ok(())
        })
    }
    fn end(&self, end: CallEnd) -> BoxFuture<'_, Result<(), TurnStoreError>> {
        Box::pin(async move {
            *self.ended.lock().expect("lock") = Some(end);
            Ok(())
        })
    }
    fn ended_elsewhere(&self) -> BoxFuture<'_, Result<bool, TurnStoreError>> {
        Box::pin(async move { Ok(self.ended_elsewhere.load(std::sync::atomic::Ordering::Relaxed)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(id: &str) -> SpokenTurn {
        SpokenTurn {
            segment_id: id.into(),
            speaker: Speaker::Caller,
            text: id.into(),
            started_ms: 0,
            ended_ms: 1,
            cut: false,
        }
    }

    /// Fails the first `fail` appends, then stores.
    struct Flaky {
        inner: MemoryTurnStore,
        fail: std::sync::atomic::AtomicU32,
    }
    impl TurnStore for Flaky {
        fn setup(&self) -> BoxFuture<'_, Result<CallSetup, TurnStoreError>> {
            self.inner.setup()
        }
        fn append<'a>(&'a self, turns: &'a [SpokenTurn]) -> BoxFuture<'a, Result<(), TurnStoreError>> {
            if self.fail.load(std::sync::atomic::Ordering::SeqCst) > 0 {
                self.fail.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                return Box::pin(async { Err(TurnStoreError::Unavailable("down".into())) });
            }
            self.inner.append(turns)
        }
        fn end(&self, end: CallEnd) -> BoxFuture<'_, Result<(), TurnStoreError>> {
            self.inner.end(end)
        }
        fn ended_elsewhere(&self) -> BoxFuture<'_, Result<bool, TurnStoreError>> {
            self.inner.ended_elsewhere()
        }
    }

    #[tokio::test]
    async fn writer_retries_in_order_and_finishes() {
        let store = Arc::new(Flaky { inner: MemoryTurnStore::default(), fail: 2.into() });
        let writer = TurnWriter::spawn(store.clone());
        writer.push(turn("a"));
        writer.push(turn("b"));
        tokio::time::sleep(Duration::from_millis(50)).await;
        writer.push(turn("c"));
        let end = CallEnd {
            reason: EndReason::CounselorLeft,
            usage: RealtimeUsage::default(),
            turn_metrics: vec![],
            recording: None,
        };
        writer.finish(end).await.unwrap();
        let ids: Vec<String> = store.inner.turns.lock().unwrap().iter().map(|t| t.segment_id.clone()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(store.inner.ended.lock().unwrap().as_ref().unwrap().reason, EndReason::CounselorLeft);
    }
}
