//! The agent as a service: a LiveKit worker that runs the role-play job (or the echo) in every
//! room it is dispatched to, with its settings from the environment. Both entry points use it:
//! `proto-trainer-agent worker` and the product binary (`proto-trainer serve` beside the admin
//! service with the store in-process, `proto-trainer agent` alone through the internal API).
//!
//! Shutdown is one future: when it resolves, the worker stops taking jobs, every running call
//! ends as `agentShutdown` (its end written to the store), and [`run`] returns once the last
//! has left its room.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::echo::{self, EchoOptions};
use crate::participant::{Participant, ParticipantConfig};
use crate::realtime::RealtimeConfig;
use crate::roleplay::{self, RoleplayOptions};
use crate::session::LOOPBACK;
use crate::turns::{TurnStore, TurnsConfig};
use crate::turns_file::FileTurnStore;
use crate::worker::WorkerConfig;
use crate::worker_shell::{self, JobContext, WorkerError};

#[derive(Debug, Error)]
pub enum ServiceError {
    #[error("configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Worker(#[from] WorkerError),
    #[error("token: {0}")]
    Token(#[from] livekit_api::access_token::AccessTokenError),
}

/// Where the LiveKit server is and the key pair that signs the worker's token.
#[derive(Clone)]
pub struct LiveKitAccess {
    pub url: String,
    pub api_key: String,
    pub api_secret: String,
}

impl std::fmt::Debug for LiveKitAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveKitAccess").field("url", &self.url).field("api_key", &self.api_key).finish_non_exhaustive()
    }
}

impl LiveKitAccess {
    /// `LIVEKIT_URL`, `LIVEKIT_API_KEY`, `LIVEKIT_API_SECRET`; `None` unless all three are set.
    pub fn from_env() -> Option<Self> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Some(LiveKitAccess {
            url: var("LIVEKIT_URL")?,
            api_key: var("LIVEKIT_API_KEY")?,
            api_secret: var("LIVEKIT_API_SECRET")?,
        })
    }
}

/// Where a role-play call's turns go.
#[derive(Debug, Clone)]
pub enum Turns {
    /// The file-backed store (`PROTO_TRAINER_TURNS_DIR`): tests and local runs, one folder per room.
    Dir(PathBuf),
    /// The store in-process, or the admin service's internal API (`turns::connect`).
    Connect(TurnsConfig),
}

impl Turns {
    /// From the environment: `PROTO_TRAINER_TURNS_DIR`, else the internal API at
    /// `PROTO_TRAINER_ADMIN_URL` (the credential comes sealed in each job's metadata).
    pub fn from_env(livekit_api_secret: &str) -> Result<Turns, String> {
        if let Some(dir) = std::env::var_os("PROTO_TRAINER_TURNS_DIR") {
            return Ok(Turns::Dir(dir.into()));
        }
        match std::env::var("PROTO_TRAINER_ADMIN_URL") {
            Ok(base_url) if !base_url.is_empty() => {
                Ok(Turns::Connect(TurnsConfig::Http { base_url, livekit_api_secret: livekit_api_secret.to_owned() }))
            }
            _ => Err("no turn store configured (PROTO_TRAINER_TURNS_DIR or PROTO_TRAINER_ADMIN_URL)".into()),
        }
    }

    /// The store of the call in `room`, dispatched with `metadata`.
    pub fn store_for(&self, room: &str, metadata: &str) -> Result<Arc<dyn TurnStore>, String> {
        match self {
            Turns::Dir(dir) => Ok(Arc::new(FileTurnStore::new(dir, room).map_err(|e| e.to_string())?)),
            Turns::Connect(config) => crate::turns::connect(metadata, config).map_err(|e| e.to_string()),
        }
    }
}

/// What the worker runs in each room (one value per worker, cloned per job: its size is moot).
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum Job {
    Roleplay { options: RoleplayOptions, turns: Turns },
    Echo(EchoOptions),
}

/// Role-play settings from the environment: `OPENAI_*` and `REALTIME_*`
/// ([`RealtimeConfig::from_env`]); recordings go to `recording_dir`.
pub fn roleplay_options(recording_dir: Option<PathBuf>) -> Result<RoleplayOptions, String> {
    let realtime = RealtimeConfig::from_env()?;
    let call = crate::call::CallConfig { session_cap: realtime.session_cap, ..Default::default() };
    Ok(RoleplayOptions { realtime, call, recording_dir })
}

/// The agent's participant settings: its media sockets bind `PROTO_TRAINER_AGENT_BIND_IP`
/// (default loopback, since its only ICE candidates are host candidates on that address).
pub fn participant_config(url: String, token: String) -> ParticipantConfig {
    static BIND_IP: std::sync::OnceLock<std::net::IpAddr> = std::sync::OnceLock::new();
    let bind_ip = *BIND_IP.get_or_init(|| {
        let value = std::env::var("PROTO_TRAINER_AGENT_BIND_IP").ok();
        bind_ip(value.as_deref()).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "PROTO_TRAINER_AGENT_BIND_IP unusable; media sockets on 127.0.0.1");
            LOOPBACK
        })
    });
    ParticipantConfig { url, token, bind_ip, publish_audio: true, track_name: "agent".into() }
}

/// An address, or a host name resolved once (in a container the agent names its own service,
/// e.g. `proto-trainer` in compose, whose address the LiveKit container can reach); none is
/// loopback.
fn bind_ip(value: Option<&str>) -> Result<std::net::IpAddr, String> {
    use std::net::ToSocketAddrs;
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else { return Ok(LOOPBACK) };
    if let Ok(ip) = value.parse() {
        return Ok(ip);
    }
    let addrs: Vec<_> = (value, 0).to_socket_addrs().map_err(|e| format!("{value}: {e}"))?.map(|a| a.ip()).collect();
    // IPv4 first: LiveKit's candidates and a compose network are IPv4 unless set up otherwise.
    addrs.iter().find(|ip| ip.is_ipv4()).or(addrs.first()).copied().ok_or_else(|| format!("{value}: no address"))
}

/// Registers the worker and runs `job` for every dispatch until `shutdown` resolves and every
/// call has ended. If LiveKit cannot be reached (at start, or after the worker's reconnects give
/// up) it tries again every second, so a service started before its LiveKit server still
/// takes calls once the server is up.
pub async fn run(
    livekit: LiveKitAccess,
    config: WorkerConfig,
    job: Job,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServiceError> {
    run_draining(livekit, config, job, std::future::pending(), shutdown).await
}

/// [`run`], and when `drain` resolves the worker takes no new job but lets its running calls go
/// on to their natural end, then returns (`proto-trainer serve`'s agent child whose parent died:
/// its calls outlive the admin service, a new agent takes the new ones). `shutdown` still ends
/// them at once.
pub async fn run_draining(
    livekit: LiveKitAccess,
    config: WorkerConfig,
    job: Job,
    drain: impl Future<Output = ()>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServiceError> {
    let token = worker_shell::worker_token(&livekit.api_key, &livekit.api_secret)?;
    let (term_tx, term_rx) = watch::channel(false);
    let (drain_tx, drain_seen) = watch::channel(false);
    let job_fn = move |ctx: JobContext| {
        let job = job.clone();
        let mut term = term_rx.clone();
        async move {
            let job_id = ctx.job.id.clone();
            let room = ctx.job.room.as_ref().map(|r| r.name.clone()).unwrap_or_else(|| job_id.clone());
            let metadata = ctx.job.metadata.clone();
            let stop = async move {
                tokio::select! {
                    _ = ctx.stop => {}
                    _ = term.wait_for(|t| *t) => {}
                }
            };
            match job {
                Job::Roleplay { options, turns } => {
                    // The store first: a dispatch this worker cannot serve is refused before joining.
                    let store = turns.store_for(&room, &metadata)?;
                    let participant = join(&job_id, ctx.url, ctx.token).await?;
                    let end = roleplay::run(participant, store, options, stop).await.map_err(|e| e.to_string())?;
                    info!(%job_id, reason = ?end.reason, "call ended");
                }
                Job::Echo(options) => {
                    let participant = join(&job_id, ctx.url, ctx.token).await?;
                    let stats = echo::run(participant, options, stop).await.map_err(|e| e.to_string())?;
                    info!(%job_id, ?stats, "echo done");
                }
            }
            Ok(())
        }
    };
    let term_seen = term_tx.subscribe();
    let signal = async move {
        shutdown.await;
        let _ = term_tx.send(true);
    };
    tokio::pin!(signal);
    let mut signalled = false;
    let drain = async move {
        drain.await;
        let _ = drain_tx.send(true);
    };
    tokio::pin!(drain);
    let mut drained = false;
    let stopping = || *term_seen.borrow() || *drain_seen.borrow();
    loop {
        let mut term_worker = term_seen.clone();
        let mut drain_worker = drain_seen.clone();
        let worker = worker_shell::run(&livekit.url, &token, config.clone(), &job_fn, async move {
            tokio::select! {
                _ = term_worker.wait_for(|t| *t) => {}
                _ = drain_worker.wait_for(|d| *d) => {}
            }
        });
        tokio::pin!(worker);
        let result = loop {
            tokio::select! {
                result = &mut worker => break result,
                () = &mut signal, if !signalled => signalled = true,
                () = &mut drain, if !drained => drained = true,
            }
        };
        match result {
            Ok(()) => return Ok(()),
            Err(e) if stopping() => return Err(e.into()),
            Err(e) => warn!(error = %e, url = %livekit.url, "voice agent cannot reach LiveKit; retrying in 1 s"),
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = &mut signal, if !signalled => signalled = true,
            () = &mut drain, if !drained => drained = true,
        }
        if stopping() {
            return Ok(());
        }
    }
}

async fn join(job_id: &str, url: String, token: String) -> Result<Participant, String> {
    let participant = Participant::connect(participant_config(url, token)).await.map_err(|e| e.to_string())?;
    info!(%job_id, identity = %participant.identity, sid = %participant.sid, "job joined its room");
    Ok(participant)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bind_address_is_an_ip_or_a_name_resolved_to_one() {
        assert_eq!(bind_ip(None), Ok(LOOPBACK));
        assert_eq!(bind_ip(Some(" ")), Ok(LOOPBACK));
        assert_eq!(bind_ip(Some("10.1.2.3")), Ok("10.1.2.3".parse().unwrap()));
        assert_eq!(bind_ip(Some("localhost")), Ok(LOOPBACK));
        assert!(bind_ip(Some("no-such-host.invalid")).is_err());
    }
}
