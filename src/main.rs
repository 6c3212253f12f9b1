//! `proto-trainer`: one binary for the whole product. `serve` runs the admin service and, when
//! LiveKit is configured, the voice agent as its supervised child process (`agent --supervised`,
//! see `supervisor`: restarted when it dies, drained on shutdown; its calls' turns go straight to
//! the shared database, and the admin service's durable queue grades each ended call); `admin`
//! and `agent` run one of them alone (the agent then writes through the internal API with each
//! call's own credential); `migrate` and `seed --demo` prepare a database; `openapi` prints the
//! API document for code generation.

mod supervisor;

use agent::service::{Job, LiveKitAccess, Turns};
use agent::turns::TurnsConfig;
use agent::worker::WorkerConfig;
use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "proto-trainer", version, about = "Crisis-line counselor training with AI callers")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the admin API and web UI, and the voice agent beside it when LiveKit is configured
    /// (LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET). Configuration from the environment.
    Serve,
    /// Serve the admin API and web UI alone (voice calls need an agent running elsewhere).
    Admin,
    /// Run the voice agent alone: it registers with LiveKit and writes each call through the
    /// admin service's internal API at PROTO_TRAINER_ADMIN_URL; its Prometheus metrics are on
    /// AGENT_METRICS_ADDR (default 127.0.0.1:9464).
    Agent {
        /// Run as `serve`'s child: turns straight to the database (DATABASE_URL, migrated by the
        /// parent), standard input is the parent's socket. Not for people.
        #[arg(long, hide = true)]
        supervised: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Load data into the database.
    Seed {
        /// The demo account, its users, scenarios and assignments (for demos only).
        #[arg(long)]
        demo: bool,
    },
    /// Print the OpenAPI document (JSON).
    Openapi,
    /// Check this installation (configuration, database, OpenAI, LiveKit, recordings disk,
    /// clock) and say what is wrong and how to fix it. Exits non-zero on any problem.
    Doctor {
        /// Only ask this URL (e.g. http://127.0.0.1:3003/readyz) and exit 0 when it answers 2xx:
        /// a container health check without curl in the image.
        #[arg(long, value_name = "URL")]
        probe: Option<String>,
    },
    /// Copy the SQLite database to FILE while the service runs (PostgreSQL: prints the pg_dump line).
    Backup {
        /// The new backup file (must not exist).
        file: std::path::PathBuf,
    },
    /// Replace the SQLite database with a backup; refuses while the service runs.
    Restore {
        /// The backup file `proto-trainer backup` wrote.
        file: std::path::PathBuf,
        /// Replace a database that holds data (the old file is kept beside it, renamed).
        #[arg(long)]
        force: bool,
    },
    /// Manage accounts (first run: create the organisation and its first admin).
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// The document extraction child the service runs per upload (`admin::sandbox`): one request
    /// on stdin, the text on stdout, under memory and CPU limits. Not for people.
    #[command(hide = true)]
    Extract,
}

#[derive(Debug, Subcommand)]
enum AccountCommand {
    /// Create an account and its first admin. Prints a one-time password that must be changed at
    /// first sign-in, unless `--password-stdin` reads the admin's password from standard input.
    Create {
        /// The organisation's name.
        #[arg(long)]
        name: String,
        /// The first admin's e-mail (their sign-in name).
        #[arg(long)]
        admin_email: String,
        /// The first admin's display name (default: the e-mail).
        #[arg(long)]
        admin_name: Option<String>,
        /// Read the admin's password from standard input instead of generating a one-time one.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    admin::telemetry::init_tracing();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve => serve(true).await,
        Command::Admin => serve(false).await,
        Command::Agent { supervised: false } => agent_alone().await,
        Command::Agent { supervised: true } => agent_supervised().await,
        Command::Extract => admin::sandbox::child_main(),
        Command::Migrate => {
            let config = admin::Config::from_env()?;
            let store = store::Store::connect(&config.database_url).await?;
            store.migrate().await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Seed { demo } => {
            anyhow::ensure!(demo, "say what to seed: --demo");
            let config = admin::Config::from_env()?;
            let store = store::Store::connect(&config.database_url).await?;
            store.migrate().await?;
            let seeded = admin::seed::demo(&store).await?;
            println!(
                "{} account `{}`. Demo users (sign in through the switcher when DEMO_MODE=true):",
                if seeded.created { "Seeded" } else { "Already seeded:" },
                admin::seed::DEMO_ACCOUNT,
            );
            for user in seeded.users {
                println!("  {:<11} {:<18} {}", user.role.as_str(), user.display_name, user.id);
            }
            Ok(())
        }
        Command::Account { command: AccountCommand::Create { name, admin_email, admin_name, password_stdin } } => {
            let config = admin::Config::from_env()?;
            let store = store::Store::connect(&config.database_url).await?;
            store.migrate().await?;
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line).context("reading the password from stdin")?;
                Some(line.trim_end_matches(['\r', '\n']).to_owned())
            } else {
                None
            };
            let admin_name = admin_name.unwrap_or_else(|| admin_email.clone());
            let hours = config.one_time_password_hours;
            let made = admin::auth::provision_account(&store, &name, &admin_email, &admin_name, password, hours)
                .await
                .map_err(|e| anyhow::anyhow!("{e}: {}", describe(&e)))?;
            println!("Created account `{}` ({})", made.account.name, made.account.id);
            println!("Admin: {} ({})", made.admin.email, made.admin.id);
            if let Some(once) = made.one_time_password {
                println!(
                    "One-time password (shown once; it must be changed at first sign-in, within {hours} hours): {once}"
                );
            }
            store.close().await;
            Ok(())
        }
        Command::Openapi => {
            println!("{}", admin::openapi().to_pretty_json()?);
            Ok(())
        }
        Command::Doctor { probe: Some(url) } => {
            if let Err(problem) = admin::doctor::probe(&url).await {
                eprintln!("{problem}");
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Doctor { probe: None } => {
            let report = admin::doctor::run_from_env().await;
            print!("{}", report.render());
            if report.failed() {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Backup { file } => {
            let config = admin::Config::from_env()?;
            println!("{}", admin::backup::backup(&config.database_url, &file).await?);
            Ok(())
        }
        Command::Restore { file, force } => {
            let config = admin::Config::from_env()?;
            let service = std::net::SocketAddr::new(config.bind_addr, config.port);
            let request = admin::backup::Restore {
                database_url: config.database_url.to_string(),
                source: file,
                force,
                service: Some(service),
            };
            println!("{}", admin::backup::restore(&request).await?);
            Ok(())
        }
    }
}

/// The admin service, with the voice agent as its supervised child process when `with_agent`
/// and LiveKit and the Realtime provider are configured.
async fn serve(with_agent: bool) -> anyhow::Result<()> {
    let config = admin::Config::from_env()?;
    let addr = std::net::SocketAddr::new(config.bind_addr, config.port);
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
    if !with_agent || co_deployed_agent(&config).is_none() {
        return admin::run(config, listener, shutdown_signal()).await;
    }
    // Migrated before the child starts: it connects to the same database and never migrates.
    let store = store::Store::connect(&config.database_url).await?;
    store.migrate().await?;
    let spec = supervisor::ChildSpec::agent(AGENT_DRAIN)?;
    tracing::info!("voice agent starting as a child process beside the admin service");

    // One signal stops both, the agent first: SIGTERM to the child, whose calls end
    // (`agentShutdown`) and are written to the database while the admin service still runs;
    // then the service drains and closes.
    let (term_tx, term_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = term_tx.send(true);
    });
    let waker = store.clone();
    let agent = tokio::spawn(supervisor::supervise(spec, move || waker.wake_jobs(), term_rx.clone()));
    let mut admin_term = term_rx;
    let agent_done = async move {
        let _ = admin_term.wait_for(|t| *t).await;
        if let Err(e) = agent.await {
            tracing::error!(error = %e, "voice agent supervisor failed");
        }
    };
    admin::run_with_store(config, store, listener, agent_done).await
}

/// How long a shutdown waits for running calls to end and be written before the service stops.
const AGENT_DRAIN: std::time::Duration = std::time::Duration::from_secs(30);

/// The agent's LiveKit access and call settings, or `None` (logged) when voice is not
/// configured.
fn co_deployed_agent(config: &admin::Config) -> Option<(LiveKitAccess, agent::roleplay::RoleplayOptions)> {
    let (Some(url), Some(api_key), Some(secret)) =
        (&config.livekit_url, &config.livekit_api_key, &config.livekit_api_secret)
    else {
        tracing::info!(
            "voice agent off (LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET not all set): admin alone"
        );
        return None;
    };
    match agent::service::roleplay_options(Some(config.voice.recordings_dir.clone())) {
        Ok(options) => Some((
            LiveKitAccess { url: url.clone(), api_key: api_key.clone(), api_secret: secret.expose().to_owned() },
            options,
        )),
        Err(e) => {
            tracing::warn!(error = %e, "voice agent off (no Realtime provider): admin alone");
            None
        }
    }
}

/// `serve`'s agent child: the service's configuration, turns straight to its database (so they
/// are stored while the admin service is down), a wake-up to the parent for every job it queues,
/// metrics on its own `AGENT_METRICS_ADDR`. When the parent goes away it takes no new call and
/// exits once its running calls have ended; SIGTERM ends them at once (`agentShutdown`).
async fn agent_supervised() -> anyhow::Result<()> {
    let lifeline = std::sync::Arc::new(supervisor::Lifeline::from_stdin()?);
    let config = admin::Config::from_env()?;
    let (livekit, options) = co_deployed_agent(&config).context("`serve` started its agent without voice settings")?;
    let store = store::Store::connect(&config.database_url).await?;
    let defaults = config.voice.call_defaults(&config.realtime_voice);
    let job = Job::Roleplay { options, turns: Turns::Connect(TurnsConfig::Store(store.clone(), defaults)) };
    let worker = WorkerConfig { agent_name: config.agent_name.clone(), max_jobs: max_jobs()?, ..Default::default() };
    let metrics = tokio::spawn(supervised_metrics());
    let wake = tokio::spawn({
        let (store, lifeline) = (store.clone(), lifeline.clone());
        async move {
            loop {
                let queued = store.job_queued();
                tokio::pin!(queued);
                // Registered before the wait, so a job queued meanwhile is not missed.
                queued.as_mut().enable();
                queued.await;
                lifeline.wake().await;
            }
        }
    });
    let parent_gone = async move {
        lifeline.parent_gone().await;
        tracing::warn!("the admin service (this agent's parent) is gone: no new calls here; the running ones go on");
    };
    tracing::info!(url = %livekit.url, agent_name = %worker.agent_name, pid = std::process::id(), "voice agent process starting");
    let result = agent::service::run_draining(livekit, worker, job, parent_gone, shutdown_signal()).await;
    wake.abort();
    metrics.abort();
    store.close().await;
    tracing::info!("voice agent process exits");
    result.map_err(Into::into)
}

/// The child's metrics on `AGENT_METRICS_ADDR` (default 127.0.0.1:9464; empty: off). The
/// address may still be held by an agent whose parent died and who is finishing its calls, so a
/// refused bind is retried rather than stopping the agent.
async fn supervised_metrics() {
    let addr = std::env::var("AGENT_METRICS_ADDR").unwrap_or_else(|_| "127.0.0.1:9464".into());
    if addr.is_empty() {
        return;
    }
    let handle = agent::metrics::install();
    let mut warned = false;
    loop {
        match tokio::net::TcpListener::bind(&addr).await {
            Ok(listener) => return agent::metrics::serve(listener, handle).await,
            Err(e) if !warned => {
                tracing::warn!(error = %e, %addr, "agent metrics address taken; retrying every 5 s");
                warned = true;
            }
            Err(_) => {}
        }
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    }
}

/// `AGENT_MAX_JOBS` (default 10): calls one agent process runs at once.
fn max_jobs() -> anyhow::Result<usize> {
    match std::env::var("AGENT_MAX_JOBS") {
        Ok(v) if !v.is_empty() => v.parse().with_context(|| format!("AGENT_MAX_JOBS: not a number: {v}")),
        _ => Ok(10),
    }
}

/// `AGENT_DRAIN_SECS` (default 0: calls end at the signal): how long `proto-trainer agent` lets
/// its running calls go on after SIGTERM while taking no new one. Keep it under the orchestrator's
/// grace period (the Helm chart: 45 of terminationGracePeriodSeconds 60).
fn drain_grace() -> anyhow::Result<std::time::Duration> {
    match std::env::var("AGENT_DRAIN_SECS") {
        Ok(v) if !v.is_empty() => Ok(std::time::Duration::from_secs(
            v.parse().with_context(|| format!("AGENT_DRAIN_SECS: not a number of seconds: {v}"))?,
        )),
        _ => Ok(std::time::Duration::ZERO),
    }
}

/// The voice agent alone, through the admin service's internal API.
async fn agent_alone() -> anyhow::Result<()> {
    let livekit = LiveKitAccess::from_env()
        .context("the voice agent needs LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET")?;
    let base_url = std::env::var("PROTO_TRAINER_ADMIN_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .context("the voice agent alone needs PROTO_TRAINER_ADMIN_URL (the admin service's address)")?;
    let recordings = std::env::var_os("RECORDINGS_DIR").map_or_else(|| "data/recordings".into(), Into::into);
    let options = agent::service::roleplay_options(Some(recordings)).map_err(anyhow::Error::msg)?;
    let turns = Turns::Connect(TurnsConfig::Http { base_url, livekit_api_secret: livekit.api_secret.clone() });
    let agent_name =
        std::env::var("AGENT_NAME").ok().filter(|n| !n.is_empty()).unwrap_or_else(|| "proto-trainer".into());
    let worker = WorkerConfig { agent_name, max_jobs: max_jobs()?, ..Default::default() };
    let metrics_addr = std::env::var("AGENT_METRICS_ADDR").unwrap_or_else(|_| "127.0.0.1:9464".into());
    let metrics = if metrics_addr.is_empty() {
        None
    } else {
        let listener = tokio::net::TcpListener::bind(&metrics_addr)
            .await
            .with_context(|| format!("binding AGENT_METRICS_ADDR {metrics_addr}"))?;
        Some(tokio::spawn(agent::metrics::serve(listener, agent::metrics::install())))
    };
    let grace = drain_grace()?;
    tracing::info!(url = %livekit.url, agent_name = %worker.agent_name, drain_secs = grace.as_secs(), "voice agent starting alone");
    // A rolling update or a scale-in: the first signal makes the worker report full (LiveKit
    // sends its new calls to the others) while its calls go on for up to AGENT_DRAIN_SECS; then,
    // or at a second signal, the calls still running end as `agentShutdown`, their turns written.
    let (drain_tx, mut drain_rx) = tokio::sync::watch::channel(false);
    let drain = async move {
        let _ = drain_rx.wait_for(|d| *d).await;
    };
    let shutdown = async move {
        shutdown_signal().await;
        if !grace.is_zero() {
            let _ = drain_tx.send(true);
            tracing::info!(secs = grace.as_secs(), "draining: no new calls; running calls may go on this long");
            tokio::select! {
                () = tokio::time::sleep(grace) => tracing::info!("drain time over: ending the calls still running"),
                () = shutdown_signal() => {}
            }
        }
    };
    let result = agent::service::run_draining(livekit, worker, Job::Roleplay { options, turns }, drain, shutdown).await;
    if let Some(m) = metrics {
        m.abort();
    }
    result.map_err(Into::into)
}

/// The detail behind an API error, for a terminal (validation fields, conflicts).
fn describe(err: &admin::ApiError) -> String {
    match err {
        admin::ApiError::Validation(fields) => {
            fields.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; ")
        }
        other => other.to_string(),
    }
}

/// Resolves on Ctrl-C or SIGTERM, so in-flight requests drain before exit.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: draining in-flight requests");
}
