//! A protocol-faithful OpenAI API simulator for tests and the offline demo.
//!
//! Production code talks to it unchanged through an OpenAI-compatible client whose base URL is
//! [`Simulator::base_url`]. It answers Chat Completions (plain, streaming, `json_object`,
//! `json_schema`), Embeddings and Models in OpenAI's shapes, and the GA Realtime API on the
//! `/v1/realtime` WebSocket (VAD on appended audio, scripted transcriptions, spoken replies),
//! deterministically by default. It can be scripted with [`Rule`]s — replies, sequences, faults,
//! latency — through this Rust API or the `/_sim/` HTTP control API. Every `/v1` request and every
//! Realtime event both ways is recorded for assertions.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use openai_sim::{Direction, Fault, Rule, Simulator};
//! let sim = Simulator::start().await?;
//! sim.add_rule(Rule::chat().last_user_contains("hello").reply_text("hi").times(1));
//! sim.add_rule(Rule::any().fault(Fault::rate_limited(1)).times(2));
//! sim.add_rule(Rule::realtime().utterance(1).transcript("Hi, crisis line.").reply_text("I can't sleep."));
//! // ... point the code under test at sim.base_url() (Realtime: {base_url}/realtime?model=...) ...
//! assert!(sim.chat_requests().len() <= 3);
//! let truncates = sim.realtime_connections().iter().map(|c| c.events_of(Direction::Client, "conversation.item.truncate").len()).sum::<usize>();
//! # let _ = truncates;
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Modules: `server` (router, accept loop, recording, auth, faults), `chat`, `counselor` (the
//! AI counselor of scenario test runs), `embeddings`,
//! `schema` (structured-output generation), `script` (rules and recorded requests), `control`
//! (`/_sim/`), `error` (OpenAI's error body), `realtime` (the WebSocket: protocol state machine,
//! session validation, VAD, voice, recorded events).

mod caller;
mod chat;
mod control;
mod counselor;
mod embeddings;
mod error;
mod realtime;
mod schema;
mod script;
mod server;
mod truth;

use std::net::SocketAddr;

use serde_json::Value;
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use caller::profiled_reply;
pub use chat::caller_line;
pub use embeddings::{DEFAULT_DIMENSIONS, embed};
pub use error::ApiError;
pub use realtime::record::{Direction, RealtimeConnection, RealtimeEvent};
pub use realtime::voice::{TtsMode, prerender};
pub use schema::{check_strict, generate as generate_from_schema};
pub use script::{Endpoint, Fault, RecordedRequest, Reply, Rule, RuleStatus, SimState, rules_from_json};
pub use server::{router, serve};

/// A running simulator on a loopback port, owned by a test. Dropping it stops the server too
/// (without waiting); [`Simulator::shutdown`] waits.
#[derive(Debug)]
pub struct Simulator {
    state: SimState,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Simulator {
    /// Binds `127.0.0.1:0` and serves a fresh simulator in a background task.
    pub async fn start() -> std::io::Result<Self> {
        Self::bind("127.0.0.1:0", SimState::new()).await
    }

    /// Binds `addr` and serves `state` in a background task.
    pub async fn bind(addr: impl ToSocketAddrs, state: SimState) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, state.clone(), async {
            // A dropped sender also means stop.
            let _ = stopped.await;
        }));
        Ok(Self { state, addr, stop: Some(stop), task: Some(task) })
    }

    /// The socket address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The OpenAI base URL, `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The root for the control API, `http://127.0.0.1:PORT/_sim`.
    pub fn control_url(&self) -> String {
        format!("http://{}/_sim", self.addr)
    }

    /// The shared state (the same rules and records the server uses).
    pub fn state(&self) -> &SimState {
        &self.state
    }

    /// Appends a rule; see [`Rule`].
    pub fn add_rule(&self, rule: Rule) {
        self.state.add_rule(rule);
    }

    /// Removes every rule.
    pub fn clear_rules(&self) {
        self.state.clear_rules();
    }

    /// Every recorded `/v1` request, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests()
    }

    /// Bodies of the recorded chat-completion requests, oldest first.
    pub fn chat_requests(&self) -> Vec<Value> {
        self.state.chat_requests()
    }

    /// Bodies of the recorded embeddings requests, oldest first.
    pub fn embedding_requests(&self) -> Vec<Value> {
        self.state.embedding_requests()
    }

    /// The Realtime WebSocket URL, `ws://127.0.0.1:PORT/v1/realtime` (add `?model=...`).
    pub fn realtime_url(&self) -> String {
        format!("ws://{}/v1/realtime", self.addr)
    }

    /// Every Realtime connection so far with its recorded events both ways, oldest first.
    pub fn realtime_connections(&self) -> Vec<RealtimeConnection> {
        self.state.realtime_connections()
    }

    /// Every client event the Realtime sockets received (all connections, in order; audio
    /// emptied, see [`RealtimeEvent`]).
    pub fn realtime_client_events(&self) -> Vec<Value> {
        self.state.realtime_events(Direction::Client)
    }

    /// Every server event the Realtime sockets sent (all connections, in order).
    pub fn realtime_server_events(&self) -> Vec<Value> {
        self.state.realtime_events(Direction::Server)
    }

    /// Forgets the recorded Realtime connections.
    pub fn clear_realtime(&self) {
        self.state.clear_realtime();
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.state.clear_requests();
    }

    /// Clears rules, recorded requests and models seen.
    pub fn reset(&self) {
        self.state.reset();
    }

    /// Stops accepting, lets in-flight requests finish (up to a second) and waits for the server.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take()
            && let Ok(Err(error)) = task.await
        {
            tracing::warn!(%error, "openai-sim server ended with an error");
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
