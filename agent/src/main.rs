//! `proto-trainer-agent`: command-line entry point.
//!
//! - `worker` registers on the server's `/agent` endpoint (agent name `proto-trainer` by default)
//!   and runs the echo job (`agent::echo`) in every room it is dispatched to; SIGTERM drains.
//! - `echo` joins one room directly with a token it signs itself (dev keys) and runs the echo.
//!
//! The echo is the test mode that proves the media and data paths against a real server.

use std::process::ExitCode;
use std::time::Duration;

use agent::echo::EchoOptions;
use agent::participant::{Participant, ParticipantConfig};
use agent::session::LOOPBACK;
use agent::worker::{DEFAULT_AGENT_NAME, WorkerConfig};
use agent::worker_shell::{self, JobContext};
use agent::{echo, token};
use tracing::{info, warn};

const USAGE: &str = "usage:
  proto-trainer-agent echo   --url URL --api-key KEY --api-secret SECRET --room ROOM \
[--identity ID] [--seconds N]
  proto-trainer-agent worker --url URL --api-key KEY --api-secret SECRET \
[--agent-name NAME] [--max-jobs N]
  --test-hooks: let room participants ask for simulated faults (topic lk-test.simulate)
echo joins ROOM directly; worker registers on /agent and runs the echo for every dispatched job.
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
    let token = worker_shell::worker_token(&args.api_key, &args.api_secret)?;
    let options = EchoOptions { test_hooks: args.test_hooks };
    let job = |ctx: JobContext| async move {
        let job_id = ctx.job.id.clone();
        let participant =
            Participant::connect(participant_config(ctx.url, ctx.token)).await.map_err(|e| e.to_string())?;
        println!("job {job_id}: joined as {} ({})", participant.identity, participant.sid);
        let stop = async {
            let _ = ctx.stop.await;
        };
        let stats = echo::run(participant, options, stop).await.map_err(|e| e.to_string())?;
        println!("job {job_id}: echo done: {stats:?}");
        Ok(())
    };
    worker_shell::run(&args.url, &token, config, job, shutdown_signal()).await?;
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
