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
    /// Manage accounts (first run: create the organisation and its first admin).
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
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
            let made = admin::auth::provision_account(&store, &name, &admin_email, &admin_name, password, None)
                .await
                .map_err(|e| anyhow::anyhow!("{e}: {}", describe(&e)))?;
            println!("Created account `{}` ({})", made.account.name, made.account.id);
            println!("Admin: {} ({})", made.admin.email, made.admin.id);
            if let Some(once) = made.one_time_password {
                println!("One-time password (shown once; it must be changed at first sign-in): {once}");
            }
            store.close().await;
            Ok(())
        }
        Command::Openapi => {
            println!("{}", admin::openapi().to_pretty_json()?);
            Ok(())
        }
    }
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
