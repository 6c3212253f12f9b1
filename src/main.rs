//! `proto-trainer`: one binary for the whole product. `serve` runs the admin service (and, once
//! it exists, the voice agent beside it); `migrate` and `seed --demo` prepare a database;
//! `openapi` prints the API document for code generation.

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
    /// Serve the admin API and web UI (configuration from the environment and .env).
    Serve,
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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    admin::telemetry::init_tracing();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve => {
            let config = admin::Config::from_env()?;
            let addr = std::net::SocketAddr::new(config.bind_addr, config.port);
            let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
            admin::run(config, listener, shutdown_signal()).await
        }
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
                "{} account `{}`. Demo users (send `{}: <id>` with DEMO_MODE=true):",
                if seeded.created { "Seeded" } else { "Already seeded:" },
                admin::seed::DEMO_ACCOUNT,
                admin::DEMO_USER_HEADER
            );
            for user in seeded.users {
                println!("  {:<11} {:<18} {}", user.role.as_str(), user.display_name, user.id);
            }
            Ok(())
        }
        Command::Openapi => {
            println!("{}", admin::openapi().to_pretty_json()?);
            Ok(())
        }
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
