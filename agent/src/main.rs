//! `proto-trainer-agent`: command-line entry point.
//!
//! - `worker` registers on the server's `/agent` endpoint (agent name `proto-trainer` by default)
//!   and runs the role-play job (`agent::roleplay`) in every room it is dispatched to
//!   (`--mode echo`: the echo job instead); SIGTERM ends running calls cleanly, then exits.
//! - `roleplay` / `echo` join one room directly with a token they sign themselves (dev keys).
//!
//! Role-play reads `OPENAI_BASE_URL`, `OPENAI_API_KEY` and the `REALTIME_*` settings
//! (`agent::realtime::RealtimeConfig::from_env`); turns go to the store named by
//! `PROTO_TRAINER_TURNS_DIR` (the file-backed store) or the admin service's internal API at
//! `PROTO_TRAINER_ADMIN_URL`; `AGENT_METRICS_ADDR` serves the agent's Prometheus metrics. The
//! worker itself is `agent::service`, which the product binary (`proto-trainer`) runs too.
//! The echo is the test mode that proves the media and data paths against a real server.

use std::process::ExitCode;
use std::time::Duration;

use agent::echo::EchoOptions;
use agent::participant::Participant;
use agent::roleplay;
use agent::service::{self, Job, LiveKitAccess, Turns};
use agent::worker::{DEFAULT_AGENT_NAME, WorkerConfig};
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
or PROTO_TRAINER_ADMIN_URL, PROTO_TRAINER_RECORDING_DIR, AGENT_METRICS_ADDR.
PROTO_TRAINER_AGENT_BIND_IP sets the address (or a host name resolving to it) of the media
sockets (default 127.0.0.1).";

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
    let participant = Participant::connect(service::participant_config(args.url, token)).await?;
    println!("joined as {} ({})", participant.identity, participant.sid);
    let options = EchoOptions { test_hooks: args.test_hooks };
    let stats = echo::run(participant, options, tokio::time::sleep(Duration::from_secs(args.seconds))).await?;
    println!("echo done: {stats:?}");
    Ok(())
}

async fn worker(args: EchoArgs, config: WorkerConfig) -> Result<(), Box<dyn std::error::Error>> {
    let job = if args.mode == "roleplay" {
        let recording_dir = std::env::var_os("PROTO_TRAINER_RECORDING_DIR").map(std::path::PathBuf::from);
        Job::Roleplay { options: service::roleplay_options(recording_dir)?, turns: Turns::from_env(&args.api_secret)? }
    } else {
        Job::Echo(EchoOptions { test_hooks: args.test_hooks })
    };
    let _metrics = serve_metrics().await?;
    let livekit = LiveKitAccess { url: args.url, api_key: args.api_key, api_secret: args.api_secret };
    // SIGTERM reaches running calls too: each ends its session cleanly before the worker exits.
    service::run(livekit, config, job, shutdown_signal()).await?;
    Ok(())
}

/// `AGENT_METRICS_ADDR` (e.g. 127.0.0.1:9464): serve the agent's Prometheus metrics there.
async fn serve_metrics() -> Result<Option<AbortOnDrop>, Box<dyn std::error::Error>> {
    let Some(addr) = std::env::var("AGENT_METRICS_ADDR").ok().filter(|a| !a.is_empty()) else { return Ok(None) };
    let listener = tokio::net::TcpListener::bind(&addr).await.map_err(|e| format!("AGENT_METRICS_ADDR {addr}: {e}"))?;
    Ok(Some(AbortOnDrop(tokio::spawn(agent::metrics::serve(listener, agent::metrics::install())))))
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn roleplay_direct(args: EchoArgs) -> Result<(), Box<dyn std::error::Error>> {
    let recording_dir = std::env::var_os("PROTO_TRAINER_RECORDING_DIR").map(std::path::PathBuf::from);
    let options = service::roleplay_options(recording_dir)?;
    let store = Turns::from_env(&args.api_secret)?.store_for(&args.room, "")?;
    let token = token::room_token(&args.api_key, &args.api_secret, &args.room, &args.identity)?;
    let participant = Participant::connect(service::participant_config(args.url, token)).await?;
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
