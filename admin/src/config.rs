//! Typed configuration: defaults, then a `.env` file, then the environment. Variable names are
//! the prototype's where it had them (PRODUCT.md, "Configuration").

use std::fmt;
use std::net::{IpAddr, SocketAddr};

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

/// A database URL: usable as a `&str`, but `Debug` hides its password (`postgres://user:***@host`).
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        DatabaseUrl(url.into())
    }
}

impl std::ops::Deref for DatabaseUrl {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `scheme://user:password@host/...`: everything between `://` and the last `@` of the
        // authority may be a credential; the scheme, host and database name are worth seeing.
        let url = &self.0;
        match url.split_once("://") {
            Some((scheme, rest)) => {
                let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
                match rest[..authority_end].rfind('@') {
                    Some(at) => write!(f, "\"{scheme}://[redacted]@{}\"", &rest[at + 1..]),
                    None => write!(f, "{url:?}"),
                }
            }
            None => f.write_str("\"[redacted]\""),
        }
    }
}

/// The shortest `INTERNAL_SERVICE_KEY` accepted: a shared secret that a guesser could find is no
/// secret (32 random characters are well beyond guessing, throttled or not).
pub const MIN_INTERNAL_KEY_CHARS: usize = 32;

#[derive(Debug, Clone)]
pub struct Config {
    /// `BIND_ADDR` (default 127.0.0.1; a container sets 0.0.0.0).
    pub bind_addr: IpAddr,
    /// `PORT` (default 3003).
    pub port: u16,
    /// `DATABASE_URL` (default a SQLite file under ./data/). `Debug` hides its password.
    pub database_url: DatabaseUrl,
    /// `DEMO_MODE`: the demo user switcher for seeded demo users. Never in production.
    pub demo_mode: bool,
    /// `INTERNAL_SERVICE_KEY`: shared with voice agents that run apart from the admin service;
    /// at least [`MIN_INTERNAL_KEY_CHARS`] characters (a shorter one refuses to start).
    pub internal_service_key: Option<Secret>,
    /// `INTERNAL_ADDR` (e.g. `10.0.0.5:3004`): when set, `/api/internal/*` answers only on this
    /// address (a private network the agents share), and the public listener answers it 404.
    pub internal_addr: Option<SocketAddr>,
    /// `METRICS_ADDR` (e.g. `127.0.0.1:9465`): serve `/metrics` without a token on this address,
    /// for a scraper on a private network.
    pub metrics_addr: Option<SocketAddr>,
    /// `METRICS_TOKEN`: `/metrics` on the public listener answers only `Authorization: Bearer
    /// <token>` (without a token it answers 401 there: metrics name routes and volumes).
    pub metrics_token: Option<Secret>,
    /// `ONE_TIME_PASSWORD_HOURS` (default 72): a one-time password (new user, reset) that has
    /// not been replaced by then no longer signs in; an admin issues a new one.
    pub one_time_password_hours: u32,
    /// `PASSWORD_HASH_CONCURRENCY` (default: the number of CPUs): argon2id hashes computed at
    /// once, on as many threads. Each takes 19 MiB; the rest wait their turn, so a login flood
    /// costs time, not memory.
    pub password_hash_concurrency: u32,
    /// `OPENAI_BASE_URL` (default https://api.openai.com/v1) and `OPENAI_API_KEY`.
    pub openai_base_url: String,
    pub openai_api_key: Option<Secret>,
    pub chat_model: String,
    pub evaluator_model: String,
    pub analyzer_model: String,
    /// `EMBEDDING_MODEL` (default text-embedding-3-small): policy retrieval.
    pub embedding_model: String,
    /// `LLM_TIMEOUT_SECS` (default 90) per attempt, `LLM_MAX_RETRIES` (default 3) on 429, 5xx,
    /// timeouts and dropped connections.
    pub llm_timeout_secs: u32,
    pub llm_max_retries: u32,
    /// `TRANSCRIPT_MAX_CHARS` (default 30000): longer transcripts reach the LLM cut, with a marker.
    pub transcript_max_chars: u32,
    /// `EVALUATOR_SEES_PERSONA` (default false): give the evaluator the caller persona and the
    /// scenario description. Off in production: they hold facts the counselor may never have
    /// drawn out ("no plan, no past attempts"), which the evaluator must not grade with. The golden
    /// harness turns it on to measure the difference.
    pub evaluator_sees_persona: bool,
    /// `SMTP_URL` (e.g. `smtps://user:pass@mail.example.org`, `smtp://127.0.0.1:2525` for a local
    /// relay) and `MAIL_FROM`: flag notifications to supervisors. Without them flags are only logged.
    pub smtp_url: Option<Secret>,
    pub mail_from: String,
    /// `WEBHOOK_RETRY_BASE_MS` (default 10000): the first retry of a failed webhook delivery
    /// waits this long, each next one twice as long (8 attempts in all).
    pub webhook_retry_base_ms: u32,
    /// `WEBHOOK_TIMEOUT_MS` (default 10000): one delivery attempt, name lookup included.
    pub webhook_timeout_ms: u32,
    /// `SHUTDOWN_GRACE_MS` (default 30000): on shutdown, how long background work in flight
    /// (grading, analysis, e-mail, webhook batches, sweeps) may take to finish before it is
    /// abandoned to its lease (another replica or the next start picks it up).
    pub shutdown_grace_ms: u32,
    /// `WEBHOOK_ALLOW_PRIVATE` (default false): lets webhooks reach loopback, private and other
    /// non-public addresses, and plain `http://` to such literal addresses or `localhost`. For
    /// tests and local development only: it reopens the SSRF the checks close.
    pub webhook_allow_private: bool,
    pub realtime_model: String,
    pub realtime_voice: String,
    /// `LIVEKIT_URL`, `LIVEKIT_API_KEY`, `LIVEKIT_API_SECRET`.
    pub livekit_url: Option<String>,
    pub livekit_api_key: Option<String>,
    pub livekit_api_secret: Option<Secret>,
    /// `AGENT_NAME` (default proto-trainer): the agent dispatched into voice rooms.
    pub agent_name: String,
    /// `PUBLIC_URL`: where browsers reach the service (e.g. https://trainer.example.org). Its
    /// origin is accepted by the CSRF origin check besides the request's own host, and an
    /// `https` URL makes the session cookie `Secure`.
    pub public_url: Option<String>,
    /// `COOKIE_SECURE` (default: whether `PUBLIC_URL` is https).
    pub cookie_secure: bool,
    /// `SESSION_IDLE_MINUTES` (default 60) and `SESSION_MAX_HOURS` (default 12): a login session
    /// ends after this much inactivity, and in any case this long after login.
    pub session_idle_minutes: u32,
    pub session_max_hours: u32,
    /// `LIST_CACHE_MB` (default 32): memory for rendered list pages (`crate::list_cache`); 0
    /// turns the cache off.
    pub list_cache_mb: u32,
    /// `TRUSTED_PROXIES` (default 0): how many reverse proxies stand in front of the service.
    /// With N > 0 the client address is the N-th `X-Forwarded-For` entry from the right (each
    /// proxy appends the address it saw; entries further left are whatever the client sent, so
    /// they are never read). `TRUST_FORWARDED_FOR=true`, the older setting, means 1.
    pub trusted_proxies: u32,
    /// `RATE_LIMIT_<NAME>=<max>/<seconds>` for each limit.
    pub rate_limits: RateLimits,
    /// Voice calls: limits, recordings, the grading queue.
    pub voice: VoiceConfig,
    /// Text extraction from uploads, in a limited child process (`crate::sandbox`).
    pub extract: ExtractConfig,
}

/// Where and within which limits uploaded documents are parsed.
#[derive(Debug, Clone)]
pub struct ExtractConfig {
    /// `EXTRACT_BIN`: the program run as `<program> extract` to parse one upload (default: this
    /// very binary, `proto-trainer extract`). Tests in-process point it at `proto-trainer-extract`.
    pub program: Option<std::path::PathBuf>,
    /// `EXTRACT_MEMORY_MB` (default 1024): the child's address-space limit (`RLIMIT_AS`).
    pub memory_mb: u32,
    /// `EXTRACT_CPU_SECS` (default 20): the child's CPU-time limit (`RLIMIT_CPU`).
    pub cpu_secs: u32,
    /// `EXTRACT_TIMEOUT_SECS` (default 30): wall-clock time before the service kills the child
    /// (a child blocked, not computing, never meets the CPU limit).
    pub timeout_secs: u32,
    /// `EXTRACT_CONCURRENCY` (default 2): extractions at once per process; more wait their turn.
    pub concurrency: u32,
    /// The turns, made on first use from `concurrency` and shared by every clone of the config.
    pub(crate) slots: std::sync::Arc<std::sync::OnceLock<tokio::sync::Semaphore>>,
}

/// Voice call settings.
#[derive(Debug, Clone)]
pub struct VoiceConfig {
    /// `VOICE_MAX_MINUTES` (default 30): a call ends at this length.
    pub max_duration_ms: u64,
    /// `VOICE_SILENCE_SECS` (default 120): a call ends after this long with nobody speaking.
    pub silence_timeout_ms: u64,
    /// `VOICE_JOIN_TIMEOUT_SECS` (default 120): a voice session whose room the counselor has not
    /// joined by then is closed as abandoned.
    pub join_timeout_ms: u64,
    /// `RECORDINGS_DIR` (default data/recordings): where agents write call recordings and the
    /// service reads them (shared storage when the agent runs apart).
    pub recordings_dir: std::path::PathBuf,
    /// `RECORDINGS_RETENTION_DAYS` (default 90): older recordings are deleted.
    pub recordings_retention_days: u32,
    /// `RETENTION_PURGE_SECS` (default 3600, at least 1): how often each account's retention of
    /// transcripts, evaluations and audit records is applied (the first run at start).
    pub retention_purge_secs: u32,
    /// `JOB_POLL_MS` (default 2000): how often a worker looks for queued jobs another replica
    /// queued (this replica's own wake it at once).
    pub job_poll_ms: u32,
}

impl VoiceConfig {
    /// The store's call defaults (what a scenario does not set).
    pub fn call_defaults(&self, realtime_voice: &str) -> store::CallDefaults {
        store::CallDefaults {
            voice: realtime_voice.to_owned(),
            max_duration_ms: self.max_duration_ms,
            silence_timeout_ms: self.silence_timeout_ms,
        }
    }
}

/// At most `max` hits per `window_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: u32,
    pub window_secs: u32,
}

impl Limit {
    pub const fn new(max: u32, window_secs: u32) -> Self {
        Limit { max, window_secs }
    }

    fn parse(text: &str) -> Option<Self> {
        let (max, window) = text.split_once('/')?;
        let limit = Limit { max: max.trim().parse().ok()?, window_secs: window.trim().parse().ok()? };
        (limit.max > 0 && limit.window_secs > 0).then_some(limit)
    }
}

/// Limits on abuse-prone and LLM-backed routes. Keys: login per client network (an IPv4
/// address, an IPv6 /64), per (e-mail typed, network) pair, per e-mail typed and per account
/// (failed sign-ins of all its users); wrong internal service keys per client network; per user
/// for chat messages, evaluation, flags and uploads, per session for analysis (as PRODUCT.md: 5
/// per session per hour).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub login_per_ip: Limit,
    pub login_per_pair: Limit,
    pub login_per_email: Limit,
    pub login_per_account: Limit,
    pub internal_key_failures: Limit,
    pub chat_message: Limit,
    pub evaluate: Limit,
    pub analyze: Limit,
    pub flag: Limit,
    pub upload: Limit,
    pub voice_token: Limit,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            login_per_ip: Limit::new(20, 900),
            login_per_pair: Limit::new(10, 900),
            // From any address: a distributed guess at one user's password. Higher than the pair
            // limit and without backoff, so a user someone else is guessing at waits a window
            // at most.
            login_per_email: Limit::new(30, 900),
            // Failed sign-ins across an account's users (credential stuffing from many
            // addresses); a center's whole staff mistyping at shift change stays far below.
            login_per_account: Limit::new(100, 900),
            internal_key_failures: Limit::new(10, 60),
            chat_message: Limit::new(30, 60),
            evaluate: Limit::new(20, 3600),
            analyze: Limit::new(5, 3600),
            flag: Limit::new(20, 3600),
            upload: Limit::new(30, 3600),
            voice_token: Limit::new(30, 3600),
        }
    }
}

impl RateLimits {
    /// Limits so high that tests unrelated to rate limiting never meet them.
    pub fn unlimited() -> Self {
        let l = Limit::new(u32::MAX, 1);
        RateLimits {
            login_per_ip: l,
            login_per_pair: l,
            login_per_email: l,
            login_per_account: l,
            internal_key_failures: l,
            chat_message: l,
            evaluate: l,
            analyze: l,
            flag: l,
            upload: l,
            voice_token: l,
        }
    }
}

fn flag(name: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.to_lowercase().as_str() {
        "0" | "false" | "no" | "off" => Ok(false),
        "1" | "true" | "yes" | "on" => Ok(true),
        other => Err(ConfigError { name, problem: format!("`{other}` is not true or false") }),
    }
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
        let demo_mode = match var("DEMO_MODE") {
            None => false,
            Some(v) => flag("DEMO_MODE", &v)?,
        };
        let number = |name: &'static str, default: u32| -> Result<u32, ConfigError> {
            match var(name) {
                None => Ok(default),
                Some(v) => v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| ConfigError { name, problem: format!("`{v}` is not a positive whole number") }),
            }
        };
        let public_url = var("PUBLIC_URL").map(|u| u.trim_end_matches('/').to_owned());
        if let Some(url) = &public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError { name: "PUBLIC_URL", problem: "must start with http:// or https://".into() });
        }
        let mut rate_limits = RateLimits::default();
        for (name, slot) in [
            ("RATE_LIMIT_LOGIN_PER_IP", &mut rate_limits.login_per_ip),
            ("RATE_LIMIT_LOGIN_PER_PAIR", &mut rate_limits.login_per_pair),
            ("RATE_LIMIT_LOGIN_PER_EMAIL", &mut rate_limits.login_per_email),
            ("RATE_LIMIT_LOGIN_PER_ACCOUNT", &mut rate_limits.login_per_account),
            ("RATE_LIMIT_INTERNAL_KEY_FAILURES", &mut rate_limits.internal_key_failures),
            ("RATE_LIMIT_CHAT_MESSAGE", &mut rate_limits.chat_message),
            ("RATE_LIMIT_EVALUATE", &mut rate_limits.evaluate),
            ("RATE_LIMIT_ANALYZE", &mut rate_limits.analyze),
            ("RATE_LIMIT_FLAG", &mut rate_limits.flag),
            ("RATE_LIMIT_UPLOAD", &mut rate_limits.upload),
            ("RATE_LIMIT_VOICE_TOKEN", &mut rate_limits.voice_token),
        ] {
            if let Some(v) = var(name) {
                *slot = Limit::parse(&v).ok_or_else(|| ConfigError {
                    name,
                    problem: format!("`{v}` is not <max>/<seconds>, e.g. 5/3600"),
                })?;
            }
        }
        let database_url = parse("DATABASE_URL", "sqlite://data/proto-trainer.db?mode=rwc")?;
        store::Backend::from_url(&database_url).map_err(|_| ConfigError {
            name: "DATABASE_URL",
            problem: "must start with sqlite: or postgres:".into(),
        })?;
        let internal_service_key = var("INTERNAL_SERVICE_KEY").map(Secret);
        if let Some(key) = &internal_service_key
            && key.expose().chars().count() < MIN_INTERNAL_KEY_CHARS
        {
            return Err(ConfigError {
                name: "INTERNAL_SERVICE_KEY",
                problem: format!(
                    "must be at least {MIN_INTERNAL_KEY_CHARS} characters (e.g. `openssl rand -base64 33`)"
                ),
            });
        }
        let address = |name: &'static str| -> Result<Option<SocketAddr>, ConfigError> {
            var(name)
                .map(|v| v.parse().map_err(|_| ConfigError { name, problem: format!("`{v}` is not <ip>:<port>") }))
                .transpose()
        };
        let trusted_proxies = match (var("TRUSTED_PROXIES"), var("TRUST_FORWARDED_FOR")) {
            (Some(v), _) => v.parse::<u32>().map_err(|_| ConfigError {
                name: "TRUSTED_PROXIES",
                problem: format!("`{v}` is not a whole number"),
            })?,
            (None, Some(v)) => u32::from(flag("TRUST_FORWARDED_FOR", &v)?),
            (None, None) => 0,
        };
        Ok(Config {
            bind_addr,
            port,
            database_url: DatabaseUrl(database_url),
            demo_mode,
            internal_service_key,
            internal_addr: address("INTERNAL_ADDR")?,
            metrics_addr: address("METRICS_ADDR")?,
            metrics_token: var("METRICS_TOKEN").map(Secret),
            one_time_password_hours: number("ONE_TIME_PASSWORD_HOURS", 72)?,
            password_hash_concurrency: number(
                "PASSWORD_HASH_CONCURRENCY",
                std::thread::available_parallelism().map_or(2, |n| u32::try_from(n.get()).unwrap_or(2)),
            )?,
            openai_base_url: parse("OPENAI_BASE_URL", "https://api.openai.com/v1")?,
            openai_api_key: var("OPENAI_API_KEY").map(Secret),
            chat_model: parse("CHAT_MODEL", "gpt-4o")?,
            evaluator_model: parse("EVALUATOR_MODEL", "gpt-4o")?,
            analyzer_model: parse("ANALYZER_MODEL", "gpt-4.1-mini")?,
            embedding_model: parse("EMBEDDING_MODEL", "text-embedding-3-small")?,
            llm_timeout_secs: number("LLM_TIMEOUT_SECS", 90)?,
            llm_max_retries: match var("LLM_MAX_RETRIES") {
                None => 3,
                Some(v) => v.parse().map_err(|_| ConfigError {
                    name: "LLM_MAX_RETRIES",
                    problem: format!("`{v}` is not a whole number"),
                })?,
            },
            transcript_max_chars: number("TRANSCRIPT_MAX_CHARS", 30_000)?,
            evaluator_sees_persona: match var("EVALUATOR_SEES_PERSONA") {
                None => false,
                Some(v) => flag("EVALUATOR_SEES_PERSONA", &v)?,
            },
            smtp_url: var("SMTP_URL").map(Secret),
            mail_from: parse("MAIL_FROM", "Proto Trainer <noreply@localhost>")?,
            webhook_retry_base_ms: number("WEBHOOK_RETRY_BASE_MS", 10_000)?,
            webhook_timeout_ms: number("WEBHOOK_TIMEOUT_MS", 10_000)?,
            shutdown_grace_ms: number("SHUTDOWN_GRACE_MS", 30_000)?,
            webhook_allow_private: match var("WEBHOOK_ALLOW_PRIVATE") {
                None => false,
                Some(v) => flag("WEBHOOK_ALLOW_PRIVATE", &v)?,
            },
            realtime_model: parse("REALTIME_MODEL", "gpt-realtime")?,
            realtime_voice: parse("REALTIME_VOICE", "shimmer")?,
            livekit_url: var("LIVEKIT_URL"),
            livekit_api_key: var("LIVEKIT_API_KEY"),
            livekit_api_secret: var("LIVEKIT_API_SECRET").map(Secret),
            agent_name: parse("AGENT_NAME", "proto-trainer")?,
            cookie_secure: match var("COOKIE_SECURE") {
                None => public_url.as_deref().is_some_and(|u| u.starts_with("https://")),
                Some(v) => flag("COOKIE_SECURE", &v)?,
            },
            trusted_proxies,
            list_cache_mb: number("LIST_CACHE_MB", 32)?,
            public_url,
            session_idle_minutes: number("SESSION_IDLE_MINUTES", 60)?,
            session_max_hours: number("SESSION_MAX_HOURS", 12)?,
            rate_limits,
            voice: VoiceConfig {
                max_duration_ms: u64::from(number("VOICE_MAX_MINUTES", 30)?) * 60_000,
                silence_timeout_ms: u64::from(number("VOICE_SILENCE_SECS", 120)?) * 1000,
                join_timeout_ms: u64::from(number("VOICE_JOIN_TIMEOUT_SECS", 120)?) * 1000,
                recordings_dir: parse("RECORDINGS_DIR", "data/recordings")?.into(),
                recordings_retention_days: number("RECORDINGS_RETENTION_DAYS", 90)?,
                retention_purge_secs: number("RETENTION_PURGE_SECS", 3600)?.max(1),
                job_poll_ms: number("JOB_POLL_MS", 2000)?,
            },
            extract: ExtractConfig {
                program: var("EXTRACT_BIN").map(Into::into),
                memory_mb: number("EXTRACT_MEMORY_MB", 1024)?,
                cpu_secs: number("EXTRACT_CPU_SECS", 20)?,
                timeout_secs: number("EXTRACT_TIMEOUT_SECS", 30)?,
                concurrency: number("EXTRACT_CONCURRENCY", 2)?,
                slots: Default::default(),
            },
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
        let err = Config::from_lookup(|name| (name == "RATE_LIMIT_ANALYZE").then(|| "5 per hour".into())).err();
        assert_eq!(err.map(|e| e.name), Some("RATE_LIMIT_ANALYZE"));
    }

    #[test]
    fn https_public_url_makes_cookies_secure_and_limits_parse() {
        let config = Config::from_lookup(|name| match name {
            "PUBLIC_URL" => Some("https://trainer.example.org/".into()),
            "RATE_LIMIT_ANALYZE" => Some("3/60".into()),
            _ => None,
        })
        .expect("valid");
        assert!(config.cookie_secure);
        assert_eq!(config.public_url.as_deref(), Some("https://trainer.example.org"));
        assert_eq!(config.rate_limits.analyze, Limit::new(3, 60));
        assert_eq!(config.rate_limits.login_per_ip, RateLimits::default().login_per_ip);
        assert!(!Config::for_database("sqlite::memory:").cookie_secure);
    }
}
