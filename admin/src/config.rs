//! Typed configuration: defaults, then a `.env` file, then the environment. Variable names are
//! the prototype's where it had them (PRODUCT.md, "Configuration").

use std::fmt;
use std::net::IpAddr;

/// A secret value: usable, but never printed by `Debug` or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// `BIND_ADDR` (default 127.0.0.1; a container sets 0.0.0.0).
    pub bind_addr: IpAddr,
    /// `PORT` (default 3003).
    pub port: u16,
    /// `DATABASE_URL` (default a SQLite file under ./data/).
    pub database_url: String,
    /// `DEMO_MODE`: demo-only conveniences (identity header, seeded demo users). Never in production.
    pub demo_mode: bool,
    /// `INTERNAL_SERVICE_KEY`: shared with voice agents that run apart from the admin service.
    pub internal_service_key: Option<Secret>,
    /// `OPENAI_BASE_URL` (default https://api.openai.com/v1) and `OPENAI_API_KEY`.
    pub openai_base_url: String,
    pub openai_api_key: Option<Secret>,
    pub chat_model: String,
    pub evaluator_model: String,
    pub analyzer_model: String,
    pub realtime_model: String,
    pub realtime_voice: String,
    /// `LIVEKIT_URL`, `LIVEKIT_API_KEY`, `LIVEKIT_API_SECRET`.
    pub livekit_url: Option<String>,
    pub livekit_api_key: Option<String>,
    pub livekit_api_secret: Option<Secret>,
    /// `AGENT_NAME` (default proto-trainer): the agent dispatched into voice rooms.
    pub agent_name: String,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration variable {name}: {problem}")]
pub struct ConfigError {
    pub name: &'static str,
    pub problem: String,
}

impl Config {
    /// Reads `.env` (if present) and the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let _ = dotenvy::dotenv();
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds the config from any variable source, so tests need not touch the process env.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let parse = |name: &'static str, default: &str| -> Result<String, ConfigError> {
            Ok(var(name).unwrap_or_else(|| default.to_owned()))
        };
        let port = parse("PORT", "3003")?.parse().map_err(|e| ConfigError { name: "PORT", problem: format!("{e}") })?;
        let bind_addr = parse("BIND_ADDR", "127.0.0.1")?
            .parse()
            .map_err(|e| ConfigError { name: "BIND_ADDR", problem: format!("{e}") })?;
        let demo_mode = match var("DEMO_MODE").as_deref().map(str::to_lowercase).as_deref() {
            None | Some("0" | "false" | "no" | "off") => false,
            Some("1" | "true" | "yes" | "on") => true,
            Some(other) => {
                return Err(ConfigError { name: "DEMO_MODE", problem: format!("`{other}` is not true or false") });
            }
        };
        let database_url = parse("DATABASE_URL", "sqlite://data/proto-trainer.db?mode=rwc")?;
        store::Backend::from_url(&database_url).map_err(|_| ConfigError {
            name: "DATABASE_URL",
            problem: "must start with sqlite: or postgres:".into(),
        })?;
        Ok(Config {
            bind_addr,
            port,
            database_url,
            demo_mode,
            internal_service_key: var("INTERNAL_SERVICE_KEY").map(Secret),
            openai_base_url: parse("OPENAI_BASE_URL", "https://api.openai.com/v1")?,
            openai_api_key: var("OPENAI_API_KEY").map(Secret),
            chat_model: parse("CHAT_MODEL", "gpt-4o")?,
            evaluator_model: parse("EVALUATOR_MODEL", "gpt-4o")?,
            analyzer_model: parse("ANALYZER_MODEL", "gpt-4.1-mini")?,
            realtime_model: parse("REALTIME_MODEL", "gpt-realtime")?,
            realtime_voice: parse("REALTIME_VOICE", "shimmer")?,
            livekit_url: var("LIVEKIT_URL"),
            livekit_api_key: var("LIVEKIT_API_KEY"),
            livekit_api_secret: var("LIVEKIT_API_SECRET").map(Secret),
            agent_name: parse("AGENT_NAME", "proto-trainer")?,
        })
    }

    /// Defaults for a database URL; what tests and benchmarks start from.
    pub fn for_database(database_url: &str) -> Self {
        let url = database_url.to_owned();
        Self::from_lookup(|name| (name == "DATABASE_URL").then(|| url.clone())).expect("defaults are valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_secrets_stay_hidden() {
        let config = Config::from_lookup(|name| match name {
            "OPENAI_API_KEY" => Some("not-a-real-key-123".into()),
            "DEMO_MODE" => Some("true".into()),
            _ => None,
        })
        .expect("valid");
        assert_eq!(config.port, 3003);
        assert!(config.demo_mode);
        assert!(config.database_url.starts_with("sqlite://data/"));
        assert!(!format!("{config:?}").contains("not-a-real-key-123"));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = Config::from_lookup(|name| (name == "PORT").then(|| "http".into())).err();
        assert_eq!(err.map(|e| e.name), Some("PORT"));
        let err = Config::from_lookup(|name| (name == "DEMO_MODE").then(|| "maybe".into())).err();
        assert_eq!(err.map(|e| e.name), Some("DEMO_MODE"));
    }
}
