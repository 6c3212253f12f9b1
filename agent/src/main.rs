//! `proto-trainer-agent`: command-line entry point.
//!
//! - `worker` registers on the server's `/agent` endpoint (agent name `proto-trainer` by default)
//!   and runs the role-play job (`agent::roleplay`) in every room it is dispatched to
//!   (`--mode echo`: the echo job instead); SIGTERM ends running calls cleanly, then exits.
//! - `roleplay` / `echo` join one room directly with a token they sign themselves (dev keys).
//!
//! Role-play reads `OPENAI_BASE_URL`, `OPENAI_API_KEY` and the `REALTIME_*` settings
//! (`agent::realtime::RealtimeConfig::from_env`); turns go to the store named by
//! `PROTO_TRAINER_TURNS_DIR` (the file-backed store) until the store's connector lands.
//! The echo is the test mode that proves the media and data paths against a real server.

use std::process::ExitCode;
use std::time::Duration;

use std::sync::Arc;

use agent::call::CallConfig;
use agent::echo::EchoOptions;
use agent::participant::{Participant, ParticipantConfig};
use agent::realtime::RealtimeConfig;
use agent::roleplay::{self, RoleplayOptions};
use agent::session::LOOPBACK;
use agent::turns::TurnStore;
use agent::turns_file::FileTurnStore;
use agent::worker::{DEFAULT_AGENT_NAME, WorkerConfig};
use agent::worker_shell::{self, JobContext};
use agent::{echo, token};
use tracing::{info, warn};

const USAGE: &str = "usage:
  proto-trainer-agent echo   --url URL --api-key KEY --api-secret SECRET --room ROOM \
[--identity ID] [--seconds N]
  proto-trainer-agent roleplay --url URL --api-key KEY --api-secret SECRET --room ROOM \
[--identity ID] [--seconds N]
  proto-trainer-agent worker --url URL --api-key KEY --api-secret SECRET \
[--agent-name NAME] [--max-jobs N] [--mode roleplay|echo]
  --test-hooks: let room participants ask for simulated faults (topic lk-test.simulate)
echo/roleplay join ROOM directly; worker registers on /agent and runs the role-play (or echo)
for every dispatched job. Role-play: OPENAI_BASE_URL, OPENAI_API_KEY, REALTIME_MODEL,
REALTIME_VOICE, REALTIME_TURN_DETECTION, REALTIME_SESSION_CAP_SECS, PROTO_TRAINER_TURNS_DIR
or PROTO_TRAINER_ADMIN_URL, PROTO_TRAINER_RECORDING_DIR.
PROTO_TRAINER_AGENT_BIND_IP sets the address of the media sockets (default 127.0.0.1).";

struct EchoArgs {
    url: String,
    api_key: String,
    api_secret: String,
    room: String,
    identity: String,
    seconds: u64,
    agent_name: String,
    max_jobs: usize,
    test_hooks: bool,
    mode: String,
}

/// Parses the flags of both subcommands (`--room` is only used by `echo`).
fn parse_echo(args: &[String]) -> Result<EchoArgs, String> {
    let mut out = EchoArgs {
        url: String::new(),
        api_key: String::new(),
        api_secret: String::new(),
        room: String::new(),
        identity: "echo-agent".into(),
        seconds: 60,
        agent_name: DEFAULT_AGENT_NAME.into(),
        max_jobs: 10,
        test_hooks: false,
        mode: "roleplay".into(),
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--test-hooks" {
            out.test_hooks = true;
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?.clone();
        match flag.as_str() {
            "--url" => out.url = value,
            "--api-key" => out.api_key = value,
            "--api-secret" => out.api_secret = value,
            "--room" => out.room = value,
            "--identity" => out.identity = value,
            "--seconds" => out.seconds = value.parse().map_err(|_| "bad --seconds")?,
            "--agent-name" => out.agent_name = value,
            "--max-jobs" => out.max_jobs = value.parse().map_err(|_| "bad --max-jobs")?,
            "--mode" if value == "roleplay" || value == "echo" => out.mode = value,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if out.url.is_empty() || out.api_key.is_empty() || out.api_secret.is_empty() {
        return Err("--url, --api-key and --api-secret are required".into());
    }
    Ok(out)
}

async fn echo(args: EchoArgs) -> Result<(), Box<dyn std::error::Error>> {
    let token = token::room_token(&args.api_key, &args.api_secret, &args.room, &args.identity)?;
    let participant = Participant::connect(participant_config(args.url, token)).await?;
    println!("joined as {} ({})", participant.identity, participant.sid);
    let options = EchoOptions { test_hooks: args.test_hooks };
    let stats = echo::run(participant, options, tokio::time::sleep(Duration::from_secs(args.seconds))).await?;
    println!("echo done: {stats:?}");
    Ok(())
}

async fn worker(args: EchoArgs, config: WorkerConfig) -> Result<(), Box<dyn std::error::Error>> {
    let token = worker_token(&args)?;
    let echo_options = EchoOptions { test_hooks: args.test_hooks };
    let roleplay_options = if args.mode == "roleplay" { Some(roleplay_options()?) } else { None };
    // SIGTERM reaches running calls too: each ends its session cleanly before the worker exits.
    let (term_tx, term_rx) = tokio::sync::watch::channel(false);
    let api_secret = args.api_secret.clone();
    let job = move |ctx: JobContext| {
        let roleplay_options = roleplay_options.clone();
        let api_secret = api_secret.clone();
        let mut term = term_rx.clone();
        async move {
            let job_id = ctx.job.id.clone();
            let room = ctx.job.room.as_ref().map(|r| r.name.clone()).unwrap_or_else(|| job_id.clone());
            let metadata = ctx.job.metadata.clone();
            let participant =
                Participant::connect(participant_config(ctx.url, ctx.token)).await.map_err(|e| e.to_string())?;
            println!("job {job_id}: joined as {} ({})", participant.identity, participant.sid);
            let stop = async move {
                tokio::select! {
                    _ = ctx.stop => {}
                    _ = term.wait_for(|t| *t) => {}
                }
            };
            match roleplay_options {
                Some(options) => {
                    let store = turn_store(&room, &metadata, &api_secret).map_err(|e| e.to_string())?;
                    let end = roleplay::run(participant, store, options, stop).await.map_err(|e| e.to_string())?;
                    println!("job {job_id}: call ended: {:?}", end.reason);
                }
                None => {
                    let stats = echo::run(participant, echo_options, stop).await.map_err(|e| e.to_string())?;
                    println!("job {job_id}: echo done: {stats:?}");
                }
            }
            Ok(())
        }
    };
    let shutdown = async move {
        shutdown_signal().await;
        let _ = term_tx.send(true);
    };
    worker_shell::run(&args.url, &token, config, job, shutdown).await?;
    Ok(())
}

fn worker_token(args: &EchoArgs) -> Result<String, Box<dyn std::error::Error>> {
    Ok(worker_shell::worker_token(&args.api_key, &args.api_secret)?)
}

/// Role-play settings from the environment.
fn roleplay_options() -> Result<RoleplayOptions, String> {
    let realtime = RealtimeConfig::from_env()?;
    let call = CallConfig { session_cap: realtime.session_cap, ..Default::default() };
    let recording_dir = std::env::var_os("PROTO_TRAINER_RECORDING_DIR").map(std::path::PathBuf::from);
    Ok(RoleplayOptions { realtime, call, recording_dir })
}

/// The turn store of the call in `room`: the file-backed one (`PROTO_TRAINER_TURNS_DIR`, tests
/// and local runs) or the admin service's internal API (`PROTO_TRAINER_ADMIN_URL`) with the
/// per-session credential in the job metadata.
fn turn_store(room: &str, metadata: &str, livekit_api_secret: &str) -> Result<Arc<dyn TurnStore>, String> {
    if let Some(dir) = std::env::var_os("PROTO_TRAINER_TURNS_DIR") {
        return Ok(Arc::new(FileTurnStore::new(dir, room).map_err(|e| e.to_string())?));
    }
    match std::env::var("PROTO_TRAINER_ADMIN_URL") {
        Ok(base_url) if !base_url.is_empty() => {
            let config =
                agent::turns::TurnsConfig::Http { base_url, livekit_api_secret: livekit_api_secret.to_owned() };
            agent::turns::connect(metadata, &config).map_err(|e| e.to_string())
        }
        _ => Err("no turn store configured (PROTO_TRAINER_TURNS_DIR or PROTO_TRAINER_ADMIN_URL)".into()),
    }
}

async fn roleplay_direct(args: EchoArgs) -> Result<(), Box<dyn std::error::Error>> {
    let options = roleplay_options()?;
    let store = turn_store(&args.room, "", &args.api_secret)?;
    let token = token::room_token(&args.api_key, &args.api_secret, &args.room, &args.identity)?;
    let participant = Participant::connect(participant_config(args.url, token)).await?;
    println!("joined as {} ({})", participant.identity, participant.sid);
    let stop = async move {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(args.seconds)) => {}
            _ = shutdown_signal() => {}
        }
    };
    let end = roleplay::run(participant, store, options, stop).await?;
    println!("call ended: {:?}", end.reason);
    Ok(())
}

fn participant_config(url: String, token: String) -> ParticipantConfig {
    // The agent's only ICE candidates are host candidates on this address (no STUN/TURN yet), so
    // it must be reachable from the SFU: loopback when they share a host.
    let bind_ip = std::env::var("PROTO_TRAINER_AGENT_BIND_IP").ok().and_then(|ip| ip.parse().ok()).unwrap_or(LOOPBACK);
    ParticipantConfig { url, token, bind_ip, publish_audio: true, track_name: "agent".into() }
}

/// SIGTERM or Ctrl-C: the worker then drains (running jobs finish, no new ones).
async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "no SIGTERM handler; Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    info!("shutdown requested");
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,str0m=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("echo") => match parse_echo(&args[1..]) {
            Ok(a) if a.room.is_empty() => {
                eprintln!("echo needs --room\n{USAGE}");
                return ExitCode::from(2);
            }
            Ok(a) => echo(a).await,
            Err(e) => {
                eprintln!("{e}\n{USAGE}");
                return ExitCode::from(2);
            }
        },
        Some("roleplay") => match parse_echo(&args[1..]) {
            Ok(a) if a.room.is_empty() => {
                eprintln!("roleplay needs --room\n{USAGE}");
                return ExitCode::from(2);
            }
            Ok(a) => roleplay_direct(a).await,
            Err(e) => {
                eprintln!("{e}\n{USAGE}");
                return ExitCode::from(2);
            }
        },
        Some("worker") => match parse_echo(&args[1..]) {
            Ok(a) => {
                let config =
                    WorkerConfig { agent_name: a.agent_name.clone(), max_jobs: a.max_jobs, ..Default::default() };
                worker(a, config).await
            }
            Err(e) => {
                eprintln!("{e}\n{USAGE}");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
