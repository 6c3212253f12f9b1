//! `openai-sim`: serves the OpenAI simulator on a socket, e.g. for the offline demo or a harness
//! in another process (which scripts it through `/_sim/`).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use openai_sim::{SimState, TtsMode, prerender, rules_from_json, serve};

/// Protocol-faithful OpenAI API simulator (Chat Completions, Embeddings, Models, Realtime).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, env = "OPENAI_SIM_BIND", default_value = "127.0.0.1:8089")]
    bind: SocketAddr,
    /// JSON file with one rule or an array of rules to install at start (see sim/README.md).
    #[arg(long, env = "OPENAI_SIM_RULES")]
    rules: Option<PathBuf>,
    /// How Realtime replies are voiced: auto (espeak-ng when on PATH, else tones), espeak, tone.
    #[arg(long, env = "OPENAI_SIM_TTS", default_value = "auto")]
    tts: String,
    /// Realtime voice whose default caller lines are rendered at start-up (in the background).
    #[arg(long, env = "REALTIME_VOICE", default_value = "alloy")]
    prerender_voice: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    let state = SimState::new();
    let tts = match args.tts.as_str() {
        "auto" => TtsMode::Auto,
        "espeak" => TtsMode::Espeak,
        "tone" => TtsMode::Tone,
        other => anyhow::bail!("--tts must be auto, espeak or tone, not {other}"),
    };
    state.set_tts_mode(tts);
    let voice = args.prerender_voice.clone();
    tokio::spawn(async move { prerender(tts, &voice).await });
    if let Some(path) = &args.rules {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let value = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let rules = rules_from_json(value).map_err(anyhow::Error::msg).with_context(|| path.display().to_string())?;
        tracing::info!(count = rules.len(), "rules installed");
        state.add_rules(rules);
    }

    let listener = tokio::net::TcpListener::bind(args.bind).await.with_context(|| format!("binding {}", args.bind))?;
    let addr = listener.local_addr()?;
    // On stdout, alone on its line, so a harness can read the URL of a `:0` bind.
    println!("http://{addr}/v1");
    tracing::info!(base_url = %format!("http://{addr}/v1"), "openai-sim listening");
    serve(listener, state, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
