//! Where a call's turns go: the [`TurnStore`] seam between the call core and persistence, the
//! [`TurnWriter`] that owns one off the media loop, and the two stores behind [`connect`] — the
//! database directly when co-deployed with the admin service, or the admin service's
//! `/api/internal/*` with the per-session credential from the job metadata.
//!
//! The writer never blocks the caller: `push` only sends on a channel. Its task writes turns in
//! push order, in batches, and while the store is unreachable keeps them buffered and retries with
//! capped exponential backoff; writes are idempotent by segment id, so a batch whose answer was
//! lost is simply sent again. `finish` flushes within a bounded time, then reports the call's end.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use uuid::Uuid;

pub use crate::recording::RecordingInfo;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    Counselor,
    Caller,
}

/// One final turn as spoken. Times are milliseconds since the call started (the agent's clock);
/// a counselor turn is stamped at its speech start.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// What the call needs to start: from the store (co-deployed) or the internal API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSetup {
    pub session_id: Uuid,
    /// The caller persona prompt only (split brain).
    pub instructions: String,
    /// `REALTIME_VOICE` or the scenario's.
    pub voice: String,
    pub caller_speaks_first: bool,
    /// Band-limit the caller's voice (phone scenarios, opt-in).
    pub phone_line: bool,
    pub max_duration: Duration,
    pub silence_timeout: Duration,
    /// For a restarted agent re-seeding the conversation.
    pub prior_turns: Vec<SpokenTurn>,
    /// The account's per-session token cap: the call ends once its Realtime tokens reach it.
    pub token_cap: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    CounselorLeft,
    MaxDuration,
    Silence,
    EndedBySupervisor,
    AgentShutdown,
    Failed,
    /// The call's Realtime tokens reached the account's per-session token cap. Stored as the
    /// session limit (`max_duration`): the store's reasons are a CHECKed enum that the session
    /// timer's end already covers, and to the counselor both are "the session reached its limit".
    TokenCap,
}

impl EndReason {
    fn to_store(self) -> store::EndReason {
        match self {
            EndReason::CounselorLeft => store::EndReason::CounselorLeft,
            EndReason::MaxDuration | EndReason::TokenCap => store::EndReason::MaxDuration,
            EndReason::Silence => store::EndReason::Silence,
            EndReason::EndedBySupervisor => store::EndReason::EndedBySupervisor,
            EndReason::AgentShutdown => store::EndReason::AgentShutdown,
            EndReason::Failed => store::EndReason::Failed,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallEnd {
    pub reason: EndReason,
    /// Summed over responses (and sockets).
    pub usage: RealtimeUsage,
    /// Per caller turn.
    pub turn_metrics: Vec<TurnMetrics>,
    pub recording: Option<RecordingInfo>,
}

pub type RealtimeUsage = store::RealtimeUsage;
pub type TurnMetrics = store::TurnMetrics;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TurnStoreError {
    /// Worth retrying: the database or the admin service is unreachable or overloaded.
    #[error("turn store unavailable: {0}")]
    Unavailable(String),
    /// Retrying cannot help: the session is gone or ended, the credential is refused, the input
    /// is rejected.
    #[error("turn store refused: {0}")]
    Fatal(String),
}

impl TurnStoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, TurnStoreError::Unavailable(_))
    }
}

/// Where a call's turns go. Implementations: the store (co-deployed) and the internal HTTP API
/// with the per-session credential from the job metadata. Errors are retryable unless `Fatal`.
pub trait TurnStore: Send + Sync + 'static {
    fn setup(&self) -> BoxFuture<'_, Result<CallSetup, TurnStoreError>>;
    fn append<'a>(&'a self, turns: &'a [SpokenTurn]) -> BoxFuture<'a, Result<(), TurnStoreError>>;
    fn end(&self, end: CallEnd) -> BoxFuture<'_, Result<(), TurnStoreError>>;
    /// Polled between turns: has a supervisor ended this session?
    fn ended_elsewhere(&self) -> BoxFuture<'_, Result<bool, TurnStoreError>>;
}

/// How the writer paces itself; [`WriterOptions::default`] is what [`TurnWriter::spawn`] uses.
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    pub first_retry: Duration,
    pub max_retry: Duration,
    /// One store call longer than this counts as failed (and is retried).
    pub call_timeout: Duration,
    /// `finish` gives up flushing after this long, then still reports the end.
    pub flush_within: Duration,
    /// ... and gives up reporting the end this much later.
    pub end_within: Duration,
    pub max_batch: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            first_retry: Duration::from_millis(100),
            max_retry: Duration::from_secs(5),
            call_timeout: Duration::from_secs(10),
            flush_within: Duration::from_secs(20),
            end_within: Duration::from_secs(10),
            max_batch: 32,
        }
    }
}

enum Command {
    Turn(SpokenTurn),
    Finish(Box<CallEnd>, oneshot::Sender<Result<(), TurnStoreError>>),
}

/// Owns a TurnStore on its own task: `push` never blocks the media loop; turns are written in
/// order, buffered and retried with backoff while the store is unreachable; `finish` flushes
/// (bounded time), then calls `end`.
#[derive(Debug)]
pub struct TurnWriter {
    tx: mpsc::UnboundedSender<Command>,
}

impl TurnWriter {
    pub fn spawn(store: Arc<dyn TurnStore>) -> TurnWriter {
        Self::spawn_with(store, WriterOptions::default())
    }

    pub fn spawn_with(store: Arc<dyn TurnStore>, options: WriterOptions) -> TurnWriter {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(store, options, rx));
        TurnWriter { tx }
    }

    pub fn push(&self, turn: SpokenTurn) {
        // The task ends only after `finish`, which consumes the writer.
        let _ = self.tx.send(Command::Turn(turn));
    }

    /// Flushes the buffered turns (retrying for at most `flush_within`), then reports the end
    /// (for at most `end_within` more). An error says what could not be written.
    pub async fn finish(self, end: CallEnd) -> Result<(), TurnStoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Command::Finish(Box::new(end), reply))
            .map_err(|_| TurnStoreError::Fatal("the turn writer stopped".into()))?;
        answer.await.map_err(|_| TurnStoreError::Fatal("the turn writer stopped".into()))?
    }
}

/// Turns a writer holds unwritten at most. A call's turns come at speaking pace (one every few
/// seconds, the call's length capped), so this is an hour of a store that does not answer;
/// past it new turns are dropped (and logged), so the store queue has a bound.
pub const MAX_PENDING_TURNS: usize = 2_000;

struct Writer {
    store: Arc<dyn TurnStore>,
    options: WriterOptions,
    pending: VecDeque<SpokenTurn>,
    backoff: Duration,
}

impl Writer {
    fn hold(&mut self, turn: SpokenTurn) {
        if self.pending.len() >= MAX_PENDING_TURNS {
            tracing::error!(segment = %turn.segment_id, buffered = self.pending.len(), "turn dropped: the store has not taken the turns before it");
            return;
        }
        self.pending.push_back(turn);
    }

    /// One attempt at writing the oldest batch; on a retryable failure answers when to try again.
    async fn write_batch(&mut self) -> Option<Duration> {
        let n = self.pending.len().min(self.options.max_batch);
        let batch: Vec<SpokenTurn> = self.pending.iter().take(n).cloned().collect();
        let result = match tokio::time::timeout(self.options.call_timeout, self.store.append(&batch)).await {
            Ok(r) => r,
            Err(_) => Err(TurnStoreError::Unavailable("append timed out".into())),
        };
        match result {
            Ok(()) => {
                self.pending.drain(..n);
                self.backoff = self.options.first_retry;
                None
            }
            Err(e) if e.is_retryable() => {
                let wait = self.backoff;
                self.backoff = (self.backoff * 2).min(self.options.max_retry);
                tracing::warn!(error = %e, buffered = self.pending.len(), retry_in_ms = wait.as_millis() as u64, "turns not written yet");
                Some(wait)
            }
            Err(e) => {
                // Never writable (the session is gone or ended): keeping them would only block
                // the turns behind them.
                tracing::error!(error = %e, dropped = n, "turns refused by the store");
                self.pending.drain(..n);
                None
            }
        }
    }

    async fn finish(&mut self, end: CallEnd, rx: &mut mpsc::UnboundedReceiver<Command>) -> Result<(), TurnStoreError> {
        while let Ok(Command::Turn(t)) = rx.try_recv() {
            self.hold(t);
        }
        let flush_deadline = Instant::now() + self.options.flush_within;
        while !self.pending.is_empty() {
            match self.write_batch().await {
                None => {}
                Some(wait) if Instant::now() + wait < flush_deadline => tokio::time::sleep(wait).await,
                Some(_) => break,
            }
        }
        let unwritten = self.pending.len();
        let end_deadline = Instant::now() + self.options.end_within;
        let mut backoff = self.options.first_retry;
        let ended = loop {
            let result = match tokio::time::timeout(self.options.call_timeout, self.store.end(end.clone())).await {
                Ok(r) => r,
                Err(_) => Err(TurnStoreError::Unavailable("end timed out".into())),
            };
            match result {
                Err(e) if e.is_retryable() && Instant::now() + backoff < end_deadline => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.options.max_retry);
                }
                other => break other,
            }
        };
        match (ended, unwritten) {
            (Ok(()), 0) => Ok(()),
            (Ok(()), n) => Err(TurnStoreError::Unavailable(format!("{n} turns could not be written"))),
            (Err(e), 0) => Err(e),
            (Err(e), n) => Err(TurnStoreError::Unavailable(format!("{n} turns could not be written; {e}"))),
        }
    }
}

async fn run(store: Arc<dyn TurnStore>, options: WriterOptions, mut rx: mpsc::UnboundedReceiver<Command>) {
    let mut w = Writer { store, options, pending: VecDeque::new(), backoff: options.first_retry };
    let mut retry_at: Option<Instant> = None;
    loop {
        if !w.pending.is_empty() && retry_at.is_none_or(|at| Instant::now() >= at) {
            retry_at = w.write_batch().await.map(|wait| Instant::now() + wait);
            // Take what arrived meanwhile before writing again, so batches stay large.
            while let Ok(cmd) = rx.try_recv() {
                match cmd {
                    Command::Turn(t) => w.hold(t),
                    Command::Finish(end, reply) => {
                        let _ = reply.send(w.finish(*end, &mut rx).await);
                        return;
                    }
                }
            }
            continue;
        }
        let wait = async {
            match retry_at {
                Some(at) if !w.pending.is_empty() => tokio::time::sleep_until(at).await,
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(Command::Turn(t)) => w.hold(t),
                Some(Command::Finish(end, reply)) => {
                    let _ = reply.send(w.finish(*end, &mut rx).await);
                    return;
                }
                // Dropped without `finish`: one last try at what is buffered.
                None => {
                    if !w.pending.is_empty() {
                        w.write_batch().await;
                    }
                    return;
                }
            },
            () = wait => retry_at = None,
        }
    }
}

/// How [`connect`] reaches the store.
#[derive(Clone)]
pub enum TurnsConfig {
    /// Co-deployed with the admin service: the database directly, with the service's call
    /// defaults (`REALTIME_VOICE`, limits).
    Store(store::Store, store::CallDefaults),
    /// Apart from it: the admin service's internal API at `base_url` (e.g.
    /// `https://trainer.example.org`), with the per-session credential, which the metadata
    /// carries sealed with the LiveKit API secret (`store::credential`).
    Http { base_url: String, livekit_api_secret: String },
}

impl std::fmt::Debug for TurnsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TurnsConfig::Store(..) => f.write_str("TurnsConfig::Store"),
            TurnsConfig::Http { base_url, .. } => write!(f, "TurnsConfig::Http {{ base_url: {base_url:?} }}"),
        }
    }
}

/// The job metadata `POST /api/livekit/token` puts in the dispatch.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobMetadata {
    pub session_id: store::SessionId,
    pub account_id: store::AccountId,
    #[serde(default)]
    pub assignment_id: Option<store::AssignmentId>,
    #[serde(default)]
    pub scenario_id: Option<store::ScenarioId>,
    pub credential: String,
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A credential that never reaches `Debug` output or logs.
#[derive(Clone)]
pub struct SecretString(String);

/// The call's store, from the dispatch metadata.
pub fn connect(metadata: &str, config: &TurnsConfig) -> Result<Arc<dyn TurnStore>, TurnStoreError> {
    let meta: JobMetadata = serde_json::from_str(metadata)
        .map_err(|e| TurnStoreError::Fatal(format!("the job metadata is not a voice session's: {e}")))?;
    Ok(match config {
        TurnsConfig::Store(store, defaults) => Arc::new(StoreTurns {
            store: store.clone(),
            defaults: defaults.clone(),
            account_id: meta.account_id,
            session_id: meta.session_id,
        }),
        TurnsConfig::Http { base_url, livekit_api_secret } => {
            let credential = store::credential::open(livekit_api_secret, meta.session_id, &meta.credential)
                .ok_or_else(|| {
                    TurnStoreError::Fatal("the job's credential does not open with this LiveKit secret".into())
                })?;
            Arc::new(HttpTurns::new(base_url, meta.session_id, credential)?)
        }
    })
}

fn to_new_turn(t: &SpokenTurn) -> store::NewTurn {
    store::NewTurn {
        speaker: match t.speaker {
            Speaker::Counselor => store::Speaker::Counselor,
            Speaker::Caller => store::Speaker::Caller,
        },
        text: t.text.clone(),
        started_ms: t.started_ms.min(i64::MAX as u64) as i64,
        ended_ms: Some(t.ended_ms.max(t.started_ms).min(i64::MAX as u64) as i64),
        segment_id: Some(t.segment_id.clone()),
    }
}

fn from_setup(s: store::VoiceSetup) -> CallSetup {
    let prior_turns = s
        .prior_turns
        .into_iter()
        .filter_map(|t| {
            let speaker = match t.speaker {
                store::Speaker::Counselor => Speaker::Counselor,
                store::Speaker::Caller => Speaker::Caller,
                store::Speaker::System => return None,
            };
            let started_ms = t.started_ms.max(0) as u64;
            Some(SpokenTurn {
                segment_id: t.segment_id.unwrap_or_default(),
                speaker,
                text: t.text,
                started_ms,
                ended_ms: t.ended_ms.map_or(started_ms, |e| e.max(0) as u64),
                cut: false,
            })
        })
        .collect();
    CallSetup {
        session_id: s.session_id.into(),
        instructions: s.instructions,
        voice: s.voice,
        caller_speaks_first: s.caller_speaks_first,
        phone_line: s.phone_line,
        max_duration: Duration::from_millis(s.max_duration_ms),
        silence_timeout: Duration::from_millis(s.silence_timeout_ms),
        prior_turns,
        token_cap: s.session_token_cap,
    }
}

fn to_voice_end(end: CallEnd) -> store::VoiceEnd {
    store::VoiceEnd {
        reason: end.reason.to_store(),
        usage: Some(end.usage),
        turn_metrics: end.turn_metrics,
        recording: end.recording.map(|r| store::RecordingMeta { duration_ms: r.duration_ms, bytes: r.bytes }),
    }
}

fn store_error(e: store::Error) -> TurnStoreError {
    match e {
        store::Error::Database(_) => TurnStoreError::Unavailable(e.to_string()),
        other => TurnStoreError::Fatal(other.to_string()),
    }
}

/// Co-deployed: the database directly.
#[derive(Debug)]
struct StoreTurns {
    store: store::Store,
    defaults: store::CallDefaults,
    account_id: store::AccountId,
    session_id: store::SessionId,
}

impl StoreTurns {
    /// The call's session, looked up in the account the dispatch named (never across accounts).
    async fn session(&self) -> Result<store::SessionRef, TurnStoreError> {
        self.store.session_in(self.account_id, self.session_id).await.map_err(store_error)
    }
}

impl TurnStore for StoreTurns {
    fn setup(&self) -> BoxFuture<'_, Result<CallSetup, TurnStoreError>> {
        Box::pin(async move {
            let session = self.session().await?;
            let setup = self.store.voice_setup(&session, &self.defaults).await.map_err(store_error)?;
            Ok(from_setup(setup))
        })
    }

    fn append<'a>(&'a self, turns: &'a [SpokenTurn]) -> BoxFuture<'a, Result<(), TurnStoreError>> {
        Box::pin(async move {
            let turns: Vec<_> = turns.iter().map(to_new_turn).collect();
            self.store.append_turns(self.account_id, self.session_id, &turns).await.map_err(store_error)?;
            Ok(())
        })
    }

    fn end(&self, end: CallEnd) -> BoxFuture<'_, Result<(), TurnStoreError>> {
        Box::pin(async move {
            let session = self.session().await?;
            self.store.end_voice_session(&session, &to_voice_end(end)).await.map_err(store_error)?;
            Ok(())
        })
    }

    fn ended_elsewhere(&self) -> BoxFuture<'_, Result<bool, TurnStoreError>> {
        Box::pin(async move {
            let session = self.session().await?;
            self.store.session_ended(&session).await.map_err(store_error)
        })
    }
}

/// The header that carries the per-session credential on `/api/internal/*`.
pub const SESSION_CREDENTIAL_HEADER: &str = "x-session-credential";

/// Apart from the admin service: its internal API.
#[derive(Debug)]
struct HttpTurns {
    client: reqwest::Client,
    session_url: String,
    credential: SecretString,
}

#[derive(Serialize)]
struct TranscriptBatch {
    turns: Vec<store::NewTurn>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EndBody {
    #[serde(flatten)]
    end: store::VoiceEnd,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CallStatus {
    ended: bool,
}

impl HttpTurns {
    fn new(base_url: &str, session_id: store::SessionId, credential: String) -> Result<Self, TurnStoreError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| TurnStoreError::Fatal(format!("http client: {e}")))?;
        let base = base_url.trim_end_matches('/');
        Ok(HttpTurns {
            client,
            session_url: format!("{base}/api/internal/sessions/{session_id}"),
            credential: SecretString(credential),
        })
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, TurnStoreError> {
        let response = request
            .header(SESSION_CREDENTIAL_HEADER, &self.credential.0)
            .send()
            .await
            .map_err(|e| TurnStoreError::Unavailable(e.without_url().to_string()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        let message = format!("{status}: {}", body.chars().take(300).collect::<String>());
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            Err(TurnStoreError::Unavailable(message))
        } else {
            Err(TurnStoreError::Fatal(message))
        }
    }
}

impl TurnStore for HttpTurns {
    fn setup(&self) -> BoxFuture<'_, Result<CallSetup, TurnStoreError>> {
        Box::pin(async move {
            let response = self.send(self.client.get(format!("{}/setup", self.session_url))).await?;
            let setup: store::VoiceSetup =
                response.json().await.map_err(|e| TurnStoreError::Unavailable(e.without_url().to_string()))?;
            Ok(from_setup(setup))
        })
    }

    fn append<'a>(&'a self, turns: &'a [SpokenTurn]) -> BoxFuture<'a, Result<(), TurnStoreError>> {
        Box::pin(async move {
            let body = TranscriptBatch { turns: turns.iter().map(to_new_turn).collect() };
            self.send(self.client.post(format!("{}/transcript", self.session_url)).json(&body)).await?;
            Ok(())
        })
    }

    fn end(&self, end: CallEnd) -> BoxFuture<'_, Result<(), TurnStoreError>> {
        Box::pin(async move {
            let body = EndBody { end: to_voice_end(end) };
            self.send(self.client.post(format!("{}/call-end", self.session_url)).json(&body)).await?;
            Ok(())
        })
    }

    fn ended_elsewhere(&self) -> BoxFuture<'_, Result<bool, TurnStoreError>> {
        Box::pin(async move {
            let response = self.send(self.client.get(format!("{}/status", self.session_url))).await?;
            let status: CallStatus =
                response.json().await.map_err(|e| TurnStoreError::Unavailable(e.without_url().to_string()))?;
            Ok(status.ended)
        })
    }
}

/// An in-memory [`TurnStore`] for tests (here and in the call core's): dedups by segment id,
/// and can be told to fail like an unreachable store.
pub mod memory {
    use std::collections::HashSet;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use super::*;

    #[derive(Debug, Default)]
    pub struct MemoryTurns {
        pub setup: Mutex<Option<CallSetup>>,
        turns: Mutex<Vec<SpokenTurn>>,
        seen: Mutex<HashSet<String>>,
        ends: Mutex<Vec<CallEnd>>,
        /// While set, every call fails as unavailable.
        pub down: AtomicBool,
        /// Fail this many appends *after* storing them (the answer was lost).
        pub lose_answers: AtomicUsize,
        pub ended_elsewhere: AtomicBool,
        pub append_calls: AtomicUsize,
    }

    impl MemoryTurns {
        pub fn turns(&self) -> Vec<SpokenTurn> {
            self.turns.lock().map(|t| t.clone()).unwrap_or_default()
        }
        pub fn ends(&self) -> Vec<CallEnd> {
            self.ends.lock().map(|e| e.clone()).unwrap_or_default()
        }
        fn check(&self) -> Result<(), TurnStoreError> {
            if self.down.load(Ordering::SeqCst) { Err(TurnStoreError::Unavailable("down".into())) } else { Ok(()) }
        }
    }

    impl TurnStore for MemoryTurns {
        fn setup(&self) -> BoxFuture<'_, Result<CallSetup, TurnStoreError>> {
            Box::pin(async move {
                self.check()?;
                self.setup.lock().ok().and_then(|s| s.clone()).ok_or_else(|| TurnStoreError::Fatal("no setup".into()))
            })
        }
        fn append<'a>(&'a self, turns: &'a [SpokenTurn]) -> BoxFuture<'a, Result<(), TurnStoreError>> {
            Box::pin(async move {
                self.append_calls.fetch_add(1, Ordering::SeqCst);
                self.check()?;
                if let (Ok(mut seen), Ok(mut stored)) = (self.seen.lock(), self.turns.lock()) {
                    for t in turns {
                        if seen.insert(t.segment_id.clone()) {
                            stored.push(t.clone());
                        }
                    }
                }
                if self.lose_answers.load(Ordering::SeqCst) > 0 {
                    self.lose_answers.fetch_sub(1, Ordering::SeqCst);
                    return Err(TurnStoreError::Unavailable("answer lost".into()));
                }
                Ok(())
            })
        }
        fn end(&self, end: CallEnd) -> BoxFuture<'_, Result<(), TurnStoreError>> {
            Box::pin(async move {
                self.check()?;
                if let Ok(mut ends) = self.ends.lock() {
                    ends.push(end);
                }
                Ok(())
            })
        }
        fn ended_elsewhere(&self) -> BoxFuture<'_, Result<bool, TurnStoreError>> {
            Box::pin(async move {
                self.check()?;
                Ok(self.ended_elsewhere.load(Ordering::SeqCst))
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::memory::MemoryTurns;
    use super::*;

    fn turn(i: u64, speaker: Speaker) -> SpokenTurn {
        SpokenTurn {
            segment_id: format!("seg-{i}"),
            speaker,
            text: format!("turn {i}"),
            started_ms: i * 1000,
            ended_ms: i * 1000 + 500,
            cut: false,
        }
    }

    fn end() -> CallEnd {
        CallEnd {
            reason: EndReason::CounselorLeft,
            usage: RealtimeUsage::default(),
            turn_metrics: Vec::new(),
            recording: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn writes_in_push_order_and_ends_after_the_last_turn() {
        let store = Arc::new(MemoryTurns::default());
        let writer = TurnWriter::spawn(store.clone());
        for i in 0..50 {
            writer.push(turn(i, if i % 2 == 0 { Speaker::Counselor } else { Speaker::Caller }));
        }
        writer.finish(end()).await.expect("finished");
        let ids: Vec<_> = store.turns().iter().map(|t| t.segment_id.clone()).collect();
        assert_eq!(ids, (0..50).map(|i| format!("seg-{i}")).collect::<Vec<_>>());
        assert_eq!(store.ends().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_delays_turns_but_loses_none() {
        let store = Arc::new(MemoryTurns::default());
        let writer = TurnWriter::spawn(store.clone());
        writer.push(turn(0, Speaker::Caller));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(store.turns().len(), 1);
        store.down.store(true, Ordering::SeqCst);
        for i in 1..6 {
            writer.push(turn(i, Speaker::Counselor));
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        assert_eq!(store.turns().len(), 1, "nothing written while down");
        let tries = store.append_calls.load(Ordering::SeqCst);
        // Ten seconds of outage with backoff capped at 5 s: a handful of tries, not a busy loop.
        assert!((3..15).contains(&tries), "{tries} tries");
        store.down.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert_eq!(store.turns().len(), 6, "written once the store is back, before finish");
        writer.finish(end()).await.expect("finished");
        let ids: Vec<_> = store.turns().iter().map(|t| t.segment_id.clone()).collect();
        assert_eq!(ids, (0..6).map(|i| format!("seg-{i}")).collect::<Vec<_>>());
    }

    #[tokio::test(start_paused = true)]
    async fn the_store_queue_is_bounded_while_the_store_is_down() {
        let store = Arc::new(MemoryTurns::default());
        store.down.store(true, Ordering::SeqCst);
        let writer = TurnWriter::spawn(store.clone());
        for i in 0..(MAX_PENDING_TURNS as u64 + 500) {
            writer.push(turn(i, Speaker::Counselor));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        store.down.store(false, Ordering::SeqCst);
        writer.finish(end()).await.expect("finished");
        let ids: Vec<_> = store.turns().iter().map(|t| t.segment_id.clone()).collect();
        // The oldest are kept, in order; the ones past the bound were dropped.
        assert_eq!(ids, (0..MAX_PENDING_TURNS).map(|i| format!("seg-{i}")).collect::<Vec<_>>());
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_answer_is_retried_without_duplicating() {
        let store = Arc::new(MemoryTurns::default());
        store.lose_answers.store(2, Ordering::SeqCst);
        let writer = TurnWriter::spawn(store.clone());
        writer.push(turn(0, Speaker::Caller));
        writer.push(turn(1, Speaker::Counselor));
        writer.push(turn(0, Speaker::Caller)); // the call core re-sent a segment
        writer.finish(end()).await.expect("finished");
        assert_eq!(store.turns().len(), 2);
        assert!(store.append_calls.load(Ordering::SeqCst) >= 3);
    }

    #[tokio::test(start_paused = true)]
    async fn finish_is_bounded_when_the_store_stays_down() {
        let store = Arc::new(MemoryTurns::default());
        store.down.store(true, Ordering::SeqCst);
        let options = WriterOptions::default();
        let writer = TurnWriter::spawn_with(store.clone(), options);
        writer.push(turn(0, Speaker::Caller));
        let started = Instant::now();
        let result = writer.finish(end()).await;
        assert!(matches!(result, Err(TurnStoreError::Unavailable(ref m)) if m.contains("1 turns")), "{result:?}");
        let took = started.elapsed();
        assert!(took <= options.flush_within + options.end_within + options.call_timeout, "{took:?}");
        assert!(store.ends().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn finish_flushes_turns_pushed_just_before_it() {
        let store = Arc::new(MemoryTurns::default());
        store.down.store(true, Ordering::SeqCst);
        let writer = TurnWriter::spawn(store.clone());
        writer.push(turn(0, Speaker::Counselor));
        writer.push(turn(1, Speaker::Caller));
        let up = store.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            up.down.store(false, Ordering::SeqCst);
        });
        writer.finish(end()).await.expect("flushed once the store came back");
        assert_eq!(store.turns().len(), 2);
        assert_eq!(store.ends().len(), 1);
    }

    #[test]
    fn metadata_names_the_session_and_the_credential_stays_out_of_debug() {
        let session: store::SessionId = "0193a9b0-0000-7000-8000-000000000001".parse().expect("uuid");
        let sealed = store::credential::seal("lk-secret", session, &[9; 32]);
        let meta = format!(
            r#"{{"sessionId":"{session}","accountId":"0193a9b0-0000-7000-8000-000000000002","assignmentId":null,"scenarioId":null,"credential":"{sealed}"}}"#
        );
        let http = |secret: &str| TurnsConfig::Http {
            base_url: "http://127.0.0.1:1".into(),
            livekit_api_secret: secret.into(),
        };
        assert!(connect(&meta, &http("lk-secret")).is_ok());
        assert!(matches!(connect(&meta, &http("wrong")), Err(TurnStoreError::Fatal(_))));
        assert!(!format!("{:?}", http("lk-secret")).contains("lk-secret"));
        let turns =
            HttpTurns::new("http://127.0.0.1:1/", store::SessionId::from_uuid(Uuid::nil()), "ptc_secret".into())
                .expect("client");
        assert!(!format!("{turns:?}").contains("ptc_secret"));
        assert!(turns.session_url.ends_with("/api/internal/sessions/00000000-0000-0000-0000-000000000000"));
        assert!(matches!(connect("{}", &http("lk-secret")), Err(TurnStoreError::Fatal(_))));
    }
}
