//! The tokio shell of the agent worker: the `/agent` WebSocket, the clock, and one task per job.
//!
//! [`run`] registers, runs jobs with the given job function, and on `shutdown` drains: it stops
//! taking jobs, lets running ones finish, and returns once the last has ended. If the `/agent`
//! connection drops, running jobs carry on in their rooms while the worker reconnects and
//! registers again.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use livekit_api::access_token::{AccessToken, AccessTokenError, VideoGrants};
use livekit_protocol as proto;
use prost::Message as _;
use thiserror::Error;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, http::HeaderValue};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tracing::{debug, info, warn};

use crate::worker::{Worker, WorkerConfig, WorkerOutput};

#[derive(Debug, Error)]
pub enum WorkerError {
    #[error("token: {0}")]
    Token(#[from] AccessTokenError),
    #[error("websocket: {0}")]
    WebSocket(#[from] tungstenite::Error),
    #[error("bad server message: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("the server closed the worker connection")]
    Closed,
    #[error("bad url: {0}")]
    Url(String),
}

/// One assigned job, handed to the job function.
pub struct JobContext {
    pub job: proto::Job,
    /// Server URL to join (the assignment's, else the worker's).
    pub url: String,
    /// Join token from the assignment, already of participant kind agent.
    pub token: String,
    /// Resolves when the server terminates the job.
    pub stop: oneshot::Receiver<()>,
}

/// The worker's own token: the `agent` grant is what `/agent` checks.
pub fn worker_token(api_key: &str, api_secret: &str) -> Result<String, AccessTokenError> {
    AccessToken::with_api_key(api_key, api_secret)
        .with_identity("proto-trainer-worker")
        .with_grants(VideoGrants { agent: true, ..Default::default() })
        .to_jwt()
}

/// Runs the worker until `shutdown` resolves and every job has ended.
pub async fn run<F, Fut>(
    url: &str,
    token: &str,
    config: WorkerConfig,
    job_fn: F,
    shutdown: impl Future<Output = ()>,
) -> Result<(), WorkerError>
where
    F: Fn(JobContext) -> Fut,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let ws_url = agent_url(url)?;
    let agent_name = config.agent_name.clone();
    // The first connection must succeed: a worker that never registered has nothing to keep.
    let mut socket = Some(connect(&ws_url, token).await?);
    info!(url = %ws_url, %agent_name, "worker connected");
    let mut reconnect: Option<Reconnect> = None;
    let mut reconnect_attempts = 0u32;

    let mut worker = Worker::new(Instant::now(), config);
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(String, Result<(), String>)>();
    let mut stops: HashMap<String, oneshot::Sender<()>> = HashMap::new();
    tokio::pin!(shutdown);
    let mut draining = false;
    let max_calls = worker.max_jobs();
    let mut shown_load = None;

    loop {
        // The load gauge follows what the server is told (an autoscaler reads the same number).
        let load = worker.load();
        if shown_load != Some(load) {
            crate::metrics::worker_load(load, max_calls);
            shown_load = Some(load);
        }
        while let Some(output) = worker.poll_output() {
            match output {
                WorkerOutput::Send(message) => {
                    let Some(ws) = socket.as_mut() else {
                        // Disconnected: registration and status are sent afresh on reconnect.
                        debug!("worker message dropped while disconnected");
                        continue;
                    };
                    if let Err(e) = ws.send(tungstenite::Message::Binary(message.encode_to_vec().into())).await {
                        warn!(error = %e, "worker connection lost while sending; reconnecting");
                        socket = None;
                        reconnect = Some(Box::pin(reconnect_after(ws_url.clone(), token.to_owned(), 1)));
                        reconnect_attempts = 1;
                    }
                }
                WorkerOutput::StartJob { job, url: job_url, token } => {
                    let (stop_tx, stop_rx) = oneshot::channel();
                    let job_id = job.id.clone();
                    stops.insert(job_id.clone(), stop_tx);
                    let context = JobContext {
                        job: *job,
                        url: job_url.filter(|u| !u.is_empty()).unwrap_or_else(|| url.to_owned()),
                        token,
                        stop: stop_rx,
                    };
                    let fut = job_fn(context);
                    let done = done_tx.clone();
                    tokio::spawn(async move {
                        let result = fut.await;
                        let _ = done.send((job_id, result));
                    });
                }
                WorkerOutput::StopJob { job_id } => {
                    if let Some(stop) = stops.remove(&job_id) {
                        let _ = stop.send(());
                    }
                }
            }
        }
        if worker.is_drained() {
            info!("drained; worker exits");
            if let Some(mut ws) = socket.take() {
                let _ = ws.close(None).await;
            }
            return Ok(());
        }

        let deadline = tokio::time::Instant::from_std(worker.poll_timeout());
        tokio::select! {
            message = async { socket.as_mut().expect("guarded by is_some").next().await }, if socket.is_some() => {
                let lost = match message {
                    Some(Ok(tungstenite::Message::Binary(bytes))) => {
                        worker.handle_message(Instant::now(), proto::ServerMessage::decode(bytes)?);
                        None
                    }
                    Some(Ok(tungstenite::Message::Close(frame))) => Some(format!("closed by the server: {frame:?}")),
                    None => Some("connection ended".to_owned()),
                    // Pings are answered by tungstenite itself; text is only used by JSON clients.
                    Some(Ok(_)) => None,
                    Some(Err(e)) => Some(e.to_string()),
                };
                if let Some(why) = lost {
                    // Running jobs carry on in their rooms; only the control connection is gone.
                    warn!(%why, jobs = worker.job_count(), "worker connection lost; reconnecting");
                    socket = None;
                    reconnect_attempts = 1;
                    reconnect = Some(Box::pin(reconnect_after(ws_url.clone(), token.to_owned(), reconnect_attempts)));
                }
            }
            result = async { reconnect.as_mut().expect("guarded by is_some").await }, if reconnect.is_some() => {
                reconnect = None;
                match result {
                    Ok(ws) => {
                        info!(attempts = reconnect_attempts, "worker reconnected; registering again");
                        socket = Some(ws);
                        worker.reconnected(Instant::now());
                    }
                    Err(e) if reconnect_attempts < MAX_RECONNECT_ATTEMPTS => {
                        warn!(error = %e, attempt = reconnect_attempts, "worker reconnect failed");
                        reconnect_attempts += 1;
                        reconnect = Some(Box::pin(reconnect_after(ws_url.clone(), token.to_owned(), reconnect_attempts)));
                    }
                    Err(e) => return Err(e),
                }
            }
            Some((job_id, result)) = done_rx.recv() => {
                stops.remove(&job_id);
                if let Err(e) = &result {
                    warn!(%job_id, error = %e, "job failed");
                }
                worker.job_ended(Instant::now(), &job_id, result.err());
            }
            _ = &mut shutdown, if !draining => {
                draining = true;
                worker.drain(Instant::now());
            }
            _ = tokio::time::sleep_until(deadline) => worker.handle_timeout(Instant::now()),
        }
    }
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
/// A reconnect attempt in flight.
type Reconnect = Pin<Box<dyn Future<Output = Result<Ws, WorkerError>> + Send>>;

/// Reconnects tried (with a growing pause) before the worker gives up: about a minute.
const MAX_RECONNECT_ATTEMPTS: u32 = 12;

/// Opens the `/agent` WebSocket with the worker's bearer token.
async fn connect(ws_url: &url::Url, token: &str) -> Result<Ws, WorkerError> {
    let mut request = ws_url.as_str().into_client_request()?;
    let bearer = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| WorkerError::Url(e.to_string()))?;
    request.headers_mut().insert("Authorization", bearer);
    let (socket, _) = tokio_tungstenite::connect_async(request).await?;
    Ok(socket)
}

/// A reconnect attempt after a pause that grows with `attempt` (0.5 s steps, at most 5 s).
async fn reconnect_after(ws_url: url::Url, token: String, attempt: u32) -> Result<Ws, WorkerError> {
    tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt.min(10)))).await;
    connect(&ws_url, &token).await
}

/// `ws(s)://host/agent` from the server URL in any of the forms users give it.
fn agent_url(url: &str) -> Result<url::Url, WorkerError> {
    let mut u = url::Url::parse(url).map_err(|e| WorkerError::Url(e.to_string()))?;
    let scheme = match u.scheme() {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        other => return Err(WorkerError::Url(format!("unsupported scheme {other}"))),
    };
    u.set_scheme(scheme).map_err(|_| WorkerError::Url("cannot set scheme".into()))?;
    u.path_segments_mut().map_err(|_| WorkerError::Url("url cannot be a base".into()))?.pop_if_empty().push("agent");
    Ok(u)
}

// Hand-written: the inner codec, socket and task handles have no useful Debug, and a token must
// never be printed.
impl std::fmt::Debug for JobContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext").field("job_id", &self.job.id).field("url", &self.url).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_url_forms() {
        assert_eq!(agent_url("http://127.0.0.1:7880").unwrap().as_str(), "ws://127.0.0.1:7880/agent");
        assert_eq!(agent_url("wss://lk.example/").unwrap().as_str(), "wss://lk.example/agent");
        assert!(agent_url("ftp://x").is_err());
    }
}
