//! `proto-trainer doctor`: checks an installation the way its operator would, one finding per
//! part — the configuration, the database (reachable, migrations current), the OpenAI endpoint
//! (reachable, key accepted, the configured models listed), LiveKit (reachable, key and secret
//! accepted), the recordings directory (writable, free space) and the clock (against the `Date`
//! of the servers' answers) — each problem said in plain words with how to fix it. The binary
//! exits non-zero when any finding failed.

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::Config;

/// How one part fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Works, but deserves attention (little disk left, a setting for development).
    Warn,
    Fail,
    /// Not configured, so not checked (voice without LiveKit), or not checkable from here.
    Skipped,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Skipped => "skip",
        }
    }
}

/// One part's verdict: what was seen and, for a problem, what to do.
#[derive(Debug, Clone)]
pub struct Finding {
    pub part: &'static str,
    pub status: Status,
    pub detail: String,
    pub fix: Option<String>,
}

impl Finding {
    fn ok(part: &'static str, detail: impl Into<String>) -> Self {
        Finding { part, status: Status::Ok, detail: detail.into(), fix: None }
    }
    fn fail(part: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Finding { part, status: Status::Fail, detail: detail.into(), fix: Some(fix.into()) }
    }
    fn warn(part: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Finding { part, status: Status::Warn, detail: detail.into(), fix: Some(fix.into()) }
    }
    fn skipped(part: &'static str, detail: impl Into<String>) -> Self {
        Finding { part, status: Status::Skipped, detail: detail.into(), fix: None }
    }
}

/// Every finding, in the order checked.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn failed(&self) -> bool {
        self.findings.iter().any(|f| f.status == Status::Fail)
    }

    pub fn find(&self, part: &str) -> Option<&Finding> {
        self.findings.iter().find(|f| f.part == part)
    }

    /// The report for a terminal: one line per part, a `fix:` line under each problem.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            out.push_str(&format!("{:<5} {:<12} {}\n", f.status.label(), f.part, f.detail));
            if let Some(fix) = &f.fix {
                out.push_str(&format!("{:<18} fix: {fix}\n", ""));
            }
        }
        let problems = self.findings.iter().filter(|f| f.status == Status::Fail).count();
        out.push_str(&match problems {
            0 => "No problems found.\n".to_owned(),
            1 => "1 problem found.\n".to_owned(),
            n => format!("{n} problems found.\n"),
        });
        out
    }
}

/// Free space under which recordings are a failure (a one-hour call is ~30 MB) and a warning.
const DISK_FAIL_BYTES: u64 = 1 << 30;
const DISK_WARN_BYTES: u64 = 10 << 30;
/// Clock difference past which signed tokens (LiveKit's, the session cookies' expiry) misbehave.
const CLOCK_SKEW_FAIL: Duration = Duration::from_secs(30);
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads `.env` (if present) and the environment, as the service does, and checks.
pub async fn run_from_env() -> Report {
    let _ = dotenvy::dotenv();
    run(|name| std::env::var(name).ok()).await
}

/// One GET of `url` within 5 s: `Ok` on a 2xx answer (container health checks).
pub async fn probe(url: &str) -> Result<(), String> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().map_err(|e| e.to_string())?;
    match client.get(url).send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("{url} answered {}", r.status())),
        Err(e) => Err(format!("{url}: {}", plain_error(&e))),
    }
}

/// Checks the installation that these variables describe.
pub async fn run(lookup: impl Fn(&str) -> Option<String>) -> Report {
    let mut report = Report::default();
    let config = match Config::from_lookup(&lookup) {
        Ok(config) => config,
        Err(e) => {
            report.findings.push(Finding::fail(
                "config",
                e.to_string(),
                format!("correct {} in the environment file (e.g. /etc/proto-trainer/proto-trainer.env)", e.name),
            ));
            return report;
        }
    };
    report.findings.push(config_finding(&config));
    report.findings.push(database(&config).await);
    report.findings.push(recordings(&config.voice.recordings_dir));
    let http = reqwest::Client::builder().timeout(HTTP_TIMEOUT).build().unwrap_or_default();
    let mut dates = Vec::new();
    report.findings.push(openai(&config, &http, &mut dates).await);
    report.findings.extend(livekit(&config, &http, &mut dates).await);
    report.findings.push(clock(&dates));
    report
}

fn config_finding(config: &Config) -> Finding {
    if config.demo_mode {
        return Finding::warn(
            "config",
            "DEMO_MODE is on: anyone can sign in as the seeded demo users",
            "remove DEMO_MODE from the environment file outside demonstrations",
        );
    }
    if config.public_url.is_none() && !config.bind_addr.is_loopback() {
        return Finding::warn(
            "config",
            format!("the service listens on {} but PUBLIC_URL is not set", config.bind_addr),
            "set PUBLIC_URL to the address people type (https://...) so cookies are Secure and the origin check knows it",
        );
    }
    Finding::ok("config", format!("read; listening on {}:{}", config.bind_addr, config.port))
}

async fn database(config: &Config) -> Finding {
    let url: &str = &config.database_url;
    let backend = store::Backend::from_url(url).unwrap_or(store::Backend::Sqlite);
    let name = match backend {
        store::Backend::Sqlite => {
            let Some(path) = store::sqlite_path(url) else {
                return Finding::fail(
                    "database",
                    "DATABASE_URL names an in-memory SQLite database: everything is lost at exit",
                    "set DATABASE_URL=sqlite:///var/lib/proto-trainer/proto-trainer.db?mode=rwc",
                );
            };
            if !path.is_file() {
                return Finding::fail(
                    "database",
                    format!("no database at {}", path.display()),
                    "run `proto-trainer migrate` as the service's user to create it, or correct DATABASE_URL",
                );
            }
            format!("SQLite {}", path.display())
        }
        store::Backend::Postgres => format!("PostgreSQL {:?}", config.database_url),
    };
    let connected = tokio::time::timeout(Duration::from_secs(15), store::Store::connect(url)).await;
    let store = match connected {
        Ok(Ok(store)) => store,
        Ok(Err(e)) => {
            return Finding::fail(
                "database",
                format!("cannot open {name}: {e}"),
                "check DATABASE_URL (host, port, user, password, database name) and that the server runs",
            );
        }
        Err(_) => {
            return Finding::fail(
                "database",
                format!("{name} did not answer within 15 s"),
                "check that the database server runs and that a firewall lets this machine reach it",
            );
        }
    };
    let state = store.migration_state().await;
    store.close().await;
    match state {
        Err(e) => Finding::fail(
            "database",
            format!("{name} answered, but its schema could not be read: {e}"),
            "check that DATABASE_URL's user may read the database",
        ),
        Ok(state) if !state.unknown.is_empty() => Finding::fail(
            "database",
            format!("{name} was migrated by a newer release (migrations {:?} are unknown here)", state.unknown),
            "run the newer release's binary; migrations only go forward",
        ),
        Ok(state) if !state.current() => Finding::fail(
            "database",
            format!("{name}: {} migration(s) not applied ({:?})", state.pending.len(), state.pending),
            "run `proto-trainer migrate` (the service also applies them when it starts)",
        ),
        Ok(state) => Finding::ok(
            "database",
            format!("{name}: reachable, schema current ({} migrations, latest {})", state.applied, state.latest),
        ),
    }
}

fn recordings(dir: &Path) -> Finding {
    if let Err(e) = std::fs::create_dir_all(dir) {
        return Finding::fail(
            "recordings",
            format!("cannot create {}: {e}", dir.display()),
            "set RECORDINGS_DIR to a directory the service's user owns (e.g. /var/lib/proto-trainer/recordings)",
        );
    }
    let probe = dir.join(format!(".doctor-{}", std::process::id()));
    if let Err(e) = std::fs::write(&probe, b"probe") {
        return Finding::fail(
            "recordings",
            format!("cannot write in {}: {e}", dir.display()),
            format!("give the service's user write access: chown -R proto-trainer: {}", dir.display()),
        );
    }
    let _ = std::fs::remove_file(&probe);
    let free = match nix::sys::statvfs::statvfs(dir) {
        Ok(s) => s.blocks_available() * s.fragment_size(),
        Err(e) => {
            return Finding::warn(
                "recordings",
                format!("{} is writable; free space unknown: {e}", dir.display()),
                "check the disk with `df -h`",
            );
        }
    };
    let gib = free as f64 / f64::from(1u32 << 30);
    if free < DISK_FAIL_BYTES {
        Finding::fail(
            "recordings",
            format!("{} has only {gib:.2} GiB free: new call recordings will fail", dir.display()),
            "free disk space, move RECORDINGS_DIR to a larger disk, or lower RECORDINGS_RETENTION_DAYS",
        )
    } else if free < DISK_WARN_BYTES {
        Finding::warn(
            "recordings",
            format!("{} is writable, {gib:.1} GiB free (about {:.0} hours of calls)", dir.display(), gib * 34.0),
            "plan more disk or a shorter RECORDINGS_RETENTION_DAYS",
        )
    } else {
        Finding::ok("recordings", format!("{} is writable, {gib:.1} GiB free", dir.display()))
    }
}

async fn openai(config: &Config, http: &reqwest::Client, dates: &mut Vec<(&'static str, SystemTime)>) -> Finding {
    let base = config.openai_base_url.trim_end_matches('/');
    let official = base.starts_with("https://api.openai.com");
    if config.openai_api_key.is_none() && official {
        return Finding::fail(
            "openai",
            "OPENAI_API_KEY is not set: practice chats, grading and voice calls cannot run",
            "set OPENAI_API_KEY in the environment file (a project key from platform.openai.com)",
        );
    }
    let mut request = http.get(format!("{base}/models"));
    if let Some(key) = &config.openai_api_key {
        request = request.bearer_auth(key.expose());
    }
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            return Finding::fail(
                "openai",
                format!("cannot reach {base}: {}", plain_error(&e)),
                "check OPENAI_BASE_URL, the machine's DNS and that the firewall or proxy lets HTTPS out",
            );
        }
    };
    if let Some(date) = date_of(&response) {
        dates.push(("openai", date));
    }
    let status = response.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Finding::fail(
            "openai",
            format!("{base} refused the key ({status})"),
            "check OPENAI_API_KEY: copy it again from the provider's dashboard (no quotes, no spaces)",
        );
    }
    if !status.is_success() {
        return Finding::fail(
            "openai",
            format!("{base}/models answered {status}"),
            "check OPENAI_BASE_URL points at an OpenAI-compatible API (ending in /v1)",
        );
    }
    let listed: Vec<String> = match response.json::<serde_json::Value>().await {
        Ok(body) => body["data"]
            .as_array()
            .map(|models| models.iter().filter_map(|m| m["id"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default(),
        Err(e) => {
            return Finding::fail("openai", format!("{base}/models answered no JSON: {e}"), "check OPENAI_BASE_URL");
        }
    };
    let mut wanted = vec![
        ("CHAT_MODEL", &config.chat_model),
        ("EVALUATOR_MODEL", &config.evaluator_model),
        ("ANALYZER_MODEL", &config.analyzer_model),
        ("EMBEDDING_MODEL", &config.embedding_model),
    ];
    if config.livekit_url.is_some() {
        wanted.push(("REALTIME_MODEL", &config.realtime_model));
    }
    let missing: Vec<String> = wanted
        .iter()
        .filter(|(_, model)| !listed.iter().any(|id| id == *model))
        .map(|(name, model)| format!("{name}={model}"))
        .collect();
    if missing.is_empty() {
        Finding::ok("openai", format!("{base}: key accepted, {} configured models listed", wanted.len()))
    } else {
        Finding::fail(
            "openai",
            format!("{base}: key accepted, but these models are not available to it: {}", missing.join(", ")),
            "enable them for the key's project, or set those variables to models the endpoint lists",
        )
    }
}

async fn livekit(config: &Config, http: &reqwest::Client, dates: &mut Vec<(&'static str, SystemTime)>) -> Vec<Finding> {
    let (url, key, secret) = match (&config.livekit_url, &config.livekit_api_key, &config.livekit_api_secret) {
        (None, None, None) => {
            return vec![Finding::skipped(
                "livekit",
                "voice is off (LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET not set); text practice works",
            )];
        }
        (Some(url), Some(key), Some(secret)) => (url, key, secret),
        _ => {
            return vec![Finding::fail(
                "livekit",
                "only some of LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET are set",
                "set all three (voice) or none (text only)",
            )];
        }
    };
    let http_url = match url.split_once("://") {
        Some(("wss", rest)) => format!("https://{rest}"),
        Some(("ws", rest)) => format!("http://{rest}"),
        Some(("https" | "http", _)) => url.clone(),
        _ => {
            return vec![Finding::fail(
                "livekit",
                format!("LIVEKIT_URL `{url}` is not a ws://, wss://, http:// or https:// address"),
                "set LIVEKIT_URL to e.g. wss://your-project.livekit.cloud or ws://127.0.0.1:7880",
            )];
        }
    };
    let token = livekit_api::access_token::AccessToken::with_api_key(key, secret.expose())
        .with_ttl(Duration::from_secs(60))
        .with_grants(livekit_api::access_token::VideoGrants { room_list: true, ..Default::default() })
        .to_jwt();
    let token = match token {
        Ok(t) => t,
        Err(e) => {
            return vec![Finding::fail("livekit", format!("cannot sign a token: {e}"), "check LIVEKIT_API_SECRET")];
        }
    };
    // RoomService.ListRooms over Twirp: the cheapest call that proves the key and secret.
    let endpoint = format!("{}/twirp/livekit.RoomService/ListRooms", http_url.trim_end_matches('/'));
    let response = http.post(&endpoint).bearer_auth(token).json(&serde_json::json!({})).send().await;
    let response = match response {
        Ok(r) => r,
        Err(e) => {
            return vec![Finding::fail(
                "livekit",
                format!("cannot reach {http_url}: {}", plain_error(&e)),
                "check LIVEKIT_URL and that livekit-server runs (systemctl status livekit-server) or the Cloud project exists",
            )];
        }
    };
    if let Some(date) = date_of(&response) {
        dates.push(("livekit", date));
    }
    let status = response.status();
    let first = if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        Finding::fail(
            "livekit",
            format!("{url} refused the API key and secret ({status})"),
            "LIVEKIT_API_KEY and LIVEKIT_API_SECRET must be a pair from livekit.yaml's `keys:` (or the Cloud project's settings)",
        )
    } else if !status.is_success() {
        Finding::fail("livekit", format!("{endpoint} answered {status}"), "check that LIVEKIT_URL is a LiveKit server")
    } else {
        let rooms = response.json::<serde_json::Value>().await.ok().and_then(|b| b["rooms"].as_array().map(Vec::len));
        Finding::ok("livekit", format!("{url}: reachable, key accepted, {} room(s) open", rooms.unwrap_or(0)))
    };
    vec![
        first,
        // LiveKit's server API lists rooms, not agent workers: registration shows in our logs.
        Finding::skipped(
            "agent",
            format!(
                "LiveKit's API does not list agent workers; the agent `{}` logs `registered` when it joins (journalctl -u proto-trainer)",
                config.agent_name
            ),
        ),
    ]
}

fn clock(dates: &[(&'static str, SystemTime)]) -> Finding {
    let Some((source, remote)) = dates.first() else {
        return Finding::skipped("clock", "no server answered with a Date to compare with");
    };
    let now = SystemTime::now();
    let (skew, behind) = match now.duration_since(*remote) {
        Ok(ahead) => (ahead, false),
        Err(e) => (e.duration(), true),
    };
    // A Date header has whole seconds: up to a second of difference is rounding.
    if skew > CLOCK_SKEW_FAIL {
        Finding::fail(
            "clock",
            format!(
                "this machine's clock is {}s {} {source}'s",
                skew.as_secs(),
                if behind { "behind" } else { "ahead of" }
            ),
            "turn on time synchronisation: `timedatectl set-ntp true` (systemd-timesyncd or chrony)",
        )
    } else {
        Finding::ok("clock", format!("within {}s of {source}'s", skew.as_secs().max(1)))
    }
}

fn date_of(response: &reqwest::Response) -> Option<SystemTime> {
    let value = response.headers().get(reqwest::header::DATE)?.to_str().ok()?;
    httpdate::parse_http_date(value).ok()
}

/// A connection error in words (reqwest's Display hides the cause: refused, DNS, TLS).
fn plain_error(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    if e.is_timeout() { format!("no answer within {}s ({text})", HTTP_TIMEOUT.as_secs()) } else { text }
}
