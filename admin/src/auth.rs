//! Authentication: passwords (argon2id), login sessions behind an HTTP-only cookie, CSRF tokens,
//! partner API keys, the internal service key, and rate limits.
//!
//! Secrets are random tokens that only their holder sees once; the database keeps argon2id
//! hashes of passwords and SHA-256 hashes of high-entropy tokens (a slow hash adds nothing to
//! 256 random bits, and API keys are checked on every partner request). Every comparison of a
//! presented secret with a stored one is constant-time.
//!
//! Sign-in is limited per client network (an IPv4 address, an IPv6 /64: one host holds a whole
//! /64), per (e-mail, network) pair, per e-mail from anywhere and per account (its users' failed
//! sign-ins), and argon2id runs on a fixed set of threads, so a flood of logins queues instead
//! of taking 19 MiB each at once. Wrong internal service keys are counted per network and logged.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use store::{Account, Audit, AuthSession, NewAuthSession, NewUser, Role, Store, Timestamp, User};
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::config::{Config, Limit};
use crate::error::{ApiError, Result};
use store::{AccountId, UserId};

/// The session cookie. With `Secure` the `__Host-` prefix also pins it to this host and path.
pub const COOKIE: &str = "pt_session";
pub const SECURE_COOKIE: &str = "__Host-pt_session";
/// Header carrying the CSRF token on state-changing cookie-authenticated requests.
pub const CSRF_HEADER: &str = "x-csrf-token";
pub const API_KEY_HEADER: &str = "x-api-key";
pub const INTERNAL_KEY_HEADER: &str = "x-internal-service-key";
/// A voice agent's credential for one session (`identity::CallAgent`).
pub const SESSION_CREDENTIAL_HEADER: &str = "x-session-credential";
/// Partner keys look like `ptk_<prefix>_<secret>`; the prefix finds the row, the whole key is
/// checked against its hash.
const API_KEY_TAG: &str = "ptk";

pub const MIN_PASSWORD_CHARS: usize = 12;
pub const MAX_PASSWORD_CHARS: usize = 256;

/// `n` random bytes from the OS, base64url without padding.
pub fn random_token(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of bytes, lower-case hex (an uploaded file's identity).
pub fn sha256_bytes_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256_hex(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn constant_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

fn argon2() -> Argon2<'static> {
    // OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// An argon2id computation for the hashing threads.
type HashJob = Box<dyn FnOnce() + Send>;

/// The argon2id computations allowed at once, process-wide: a fixed set of threads takes them
/// from one queue. Each computation holds 19 MiB; unbounded, 256 concurrent logins took
/// 4.5-7 GiB. Dedicated threads rather than a semaphore in front of the blocking pool: the
/// allocator keeps a freed 19 MiB block in the arena of the thread that used it, and the
/// blocking pool hands successive hashes to ever new threads (500 MiB after a flood, measured),
/// while N threads keep at most N blocks. Sized once ([`limit_password_hashing`]); until
/// then, one per CPU.
static HASHING: OnceLock<std::sync::mpsc::Sender<HashJob>> = OnceLock::new();

fn hashing_threads(n: usize) -> std::sync::mpsc::Sender<HashJob> {
    let (tx, rx) = std::sync::mpsc::channel::<HashJob>();
    let rx = Arc::new(std::sync::Mutex::new(rx));
    for i in 0..n.max(1) {
        let rx = rx.clone();
        let spawned = std::thread::Builder::new().name(format!("argon2-{i}")).spawn(move || {
            loop {
                // The lock is released before the job runs: one thread waits, the others work.
                let job = match rx.lock() {
                    Ok(queue) => queue.recv(),
                    Err(_) => return,
                };
                match job {
                    Ok(job) => job(),
                    Err(_) => return, // the process is ending
                }
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "starting a password-hashing thread");
        }
    }
    tx
}

fn hashing() -> &'static std::sync::mpsc::Sender<HashJob> {
    HASHING.get_or_init(|| hashing_threads(std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)))
}

/// Sets how many argon2id computations run at once (`PASSWORD_HASH_CONCURRENCY`). The first
/// call wins: the limit is the process's, whatever number of services it runs.
pub fn limit_password_hashing(concurrency: u32) {
    let n = usize::try_from(concurrency.max(1)).unwrap_or(1);
    let _ = HASHING.get_or_init(|| hashing_threads(n));
}

/// Runs an argon2id computation on the hashing threads, after those queued before it. A request
/// dropped meanwhile leaves its computation to finish: the threads, not the requests, bound
/// the memory.
async fn on_hashing_threads<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    hashing()
        .send(Box::new(move || {
            let _ = tx.send(work());
        }))
        .map_err(|_| ApiError::Internal(anyhow::anyhow!("the password-hashing threads are gone")))?;
    rx.await.map_err(|_| ApiError::Internal(anyhow::anyhow!("a password-hashing thread failed")))
}

/// Hashes a password with argon2id (PHC string). Runs on the hashing threads: it is meant to
/// be slow and takes 19 MiB.
pub async fn hash_password(password: String) -> Result<String> {
    on_hashing_threads(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("hashing a password: {e}")))
    })
    .await?
}

/// Checks a password against a stored hash; with no hash (unknown user, no password set) it
/// still spends the time of a real check, so answers do not reveal which e-mails exist.
pub async fn verify_password(password: String, hash: Option<String>) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    on_hashing_threads(move || {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| {
            DUMMY
                .get_or_init(|| {
                    let salt = SaltString::generate(&mut OsRng);
                    argon2().hash_password(b"no such user", &salt).map(|h| h.to_string()).unwrap_or_default()
                })
                .clone()
        });
        let Ok(parsed) = PasswordHash::new(&hash) else { return false };
        argon2().verify_password(password.as_bytes(), &parsed).is_ok() && known
    })
    .await
    .unwrap_or(false)
}

pub fn check_password_rules(field: &str, password: &str) -> Result<()> {
    let chars = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&chars) {
        return Err(ApiError::validation(
            field,
            format!("must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(())
}

/// A one-time password handed to a new user or after a reset; they must change it at first login.
pub fn one_time_password() -> String {
    random_token(15)
}

/// When a one-time password issued now stops signing in (`ONE_TIME_PASSWORD_HOURS`).
pub fn one_time_password_expiry(config: &Config) -> Timestamp {
    Timestamp::from_millis(Timestamp::now().millis() + i64::from(config.one_time_password_hours) * 3_600_000)
}

/// A fresh login: the cookie token (only the client keeps it) and the session's CSRF token.
/// `Debug` shows neither.
pub struct Login {
    pub token: String,
    pub csrf_token: String,
    pub user: User,
    pub must_change_password: bool,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("token", &"[redacted]")
            .field("csrf_token", &"[redacted]")
            .field("user", &self.user.id)
            .field("must_change_password", &self.must_change_password)
            .finish()
    }
}

/// Where a request came from, for rate limits and the session record.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

/// Password login. Rotates the session: any session the client presented is ended and a new
/// token issued. Failures are audited and answer one message whatever went wrong.
pub async fn login(
    state: &AppState,
    email: &str,
    password: String,
    client: &ClientInfo,
    previous_token: Option<&str>,
) -> Result<Login> {
    let limits = state.config.rate_limits;
    let ip = limit_login_from(state, client).await?;
    // Per (e-mail, client network) pair and per e-mail, counted before the lookup and keyed by a
    // hash of the address typed: a known and an unknown e-mail answer alike (429 or 401, never
    // telling them apart). The pair limit backs off, so someone guessing one user's password
    // from one place is slowed exponentially without locking that user out elsewhere; the
    // e-mail limit catches the same guess spread over many addresses, and has no backoff, so
    // a user someone else is guessing at is kept out for one window at most.
    let typed = sha256_hex(&email.trim().to_lowercase());
    let typed = &typed[..32];
    limit_with_backoff(
        &state.store,
        &format!("login:pair:{typed}:{}", network_of(client.ip)),
        limits.login_per_pair,
        "login attempts for this e-mail from this address",
    )
    .await?;
    rate_limit(&state.store, &format!("login:email:{typed}"), limits.login_per_email, "login attempts for this e-mail")
        .await?;
    let credentials = state.store.credentials(email).await?;
    // Failed sign-ins per account (credential stuffing across its users from many addresses):
    // checked before the password, counted after a failure. Only known e-mails have an
    // account, so under this limit a known e-mail answers 429 where an unknown one answers
    // 401; that is the price of the limit, and the per-address and per-e-mail limits keep
    // anyone from probing many e-mails with it.
    let account_bucket = credentials.as_ref().map(|c| format!("login:account:{}", c.user.account_id));
    if let Some(bucket) = &account_bucket {
        let limit = limits.login_per_account;
        let window_ms = i64::from(limit.window_secs) * 1000;
        let failures = state.store.rate_limit_hits(bucket, window_ms, Timestamp::now()).await?;
        if failures >= i64::from(limit.max) {
            tracing::warn!(bucket, failures, %ip, "sign-in refused: the account's failed sign-ins are over the limit");
            return Err(ApiError::TooManyRequests {
                what: "failed login attempts for this organisation",
                retry_after_secs: u64::from(limit.window_secs),
            });
        }
    }
    let hash = credentials.as_ref().and_then(|c| c.password_hash.clone());
    let password_ok = verify_password(password, hash).await;
    let now = Timestamp::now();
    let refusal = match &credentials {
        None => Some("unknown e-mail"),
        Some(_) if !password_ok => Some("wrong password"),
        Some(c) if !c.user.active => Some("user deactivated"),
        Some(c) if c.user.is_demo => Some("demo user"),
        Some(c) if c.must_change_password && c.password_expires_at.is_some_and(|t| now >= t) => {
            Some("one-time password expired")
        }
        Some(_) => None,
    };
    if let Some(reason) = refusal {
        if let Some(bucket) = &account_bucket {
            let window_ms = i64::from(limits.login_per_account.window_secs) * 1000;
            state.store.hit_rate_limit(bucket, window_ms, now).await?;
        }
        let (account, user) = credentials.as_ref().map(|c| (c.user.account_id, c.user.id)).unzip();
        let failed =
            Audit::new(account, user, "login.failed").details(serde_json::json!({ "reason": reason, "ip": ip }));
        state.store.audit(&failed).await?;
        tracing::info!(reason, %ip, "login refused");
        return Err(ApiError::Unauthorized);
    }
    let Some(credentials) = credentials else { return Err(ApiError::Unauthorized) };
    if let Some(old) = previous_token {
        state.store.delete_auth_session(&sha256_hex(old), None).await?;
    }
    let user = &credentials.user;
    let audit =
        Audit::new(Some(user.account_id), Some(user.id), "login.succeeded").details(serde_json::json!({ "ip": ip }));
    start_session(state, user, credentials.must_change_password, client, &audit).await
}

/// The rate-limit key of a client address: an IPv4 address as it is, an IPv6 address by its
/// /64 (one subscriber, one host even, holds a whole /64, so per address it could rotate
/// forever), an IPv4-mapped IPv6 address as the IPv4 address.
pub fn network_of(ip: Option<IpAddr>) -> String {
    match ip.map(|ip| ip.to_canonical()) {
        None => "unknown".into(),
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// Counts a sign-in attempt (password or demo switcher) against the client network's limit;
/// answers the address as logged.
pub async fn limit_login_from(state: &AppState, client: &ClientInfo) -> Result<String> {
    let ip = client.ip.map(|ip| ip.to_string()).unwrap_or_else(|| "unknown".into());
    let limit = state.config.rate_limits.login_per_ip;
    let bucket = format!("login:ip:{}", network_of(client.ip));
    limit_with_backoff(&state.store, &bucket, limit, "login attempts from this address").await?;
    Ok(ip)
}

/// The longest lockout, and how long a lockout is remembered for the next one to double it.
const DAY_MS: i64 = 86_400_000;

/// [`rate_limit`] with backoff, for sign-in: over the limit, `bucket` is locked out for one
/// window, and each further lockout within a day of the previous one doubles it (at most a day),
/// so a guesser's rate falls off exponentially while a person who mistyped a few times waits one
/// window. Attempts during a lockout are refused without being counted.
pub async fn limit_with_backoff(store: &Store, bucket: &str, limit: Limit, what: &'static str) -> Result<()> {
    let now = Timestamp::now().millis();
    let previous = store.lockout(bucket).await?;
    if let Some((until, _)) = previous
        && until.millis() > now
    {
        let retry_after_secs = u64::try_from(until.millis() - now).unwrap_or(0).div_ceil(1000).max(1);
        return Err(ApiError::TooManyRequests { what, retry_after_secs });
    }
    match rate_limit(store, bucket, limit, what).await {
        Err(ApiError::TooManyRequests { .. }) => {
            let strikes = previous.filter(|(until, _)| now - until.millis() < DAY_MS).map_or(1, |(_, s)| s + 1);
            let window_ms = i64::from(limit.window_secs) * 1000;
            let lockout_ms = window_ms.saturating_mul(1i64 << (strikes - 1).clamp(0, 20)).min(DAY_MS);
            store.lock_out(bucket, Timestamp::from_millis(now + lockout_ms), strikes).await?;
            tracing::info!(bucket, strikes, lockout_ms, "locked out");
            let retry_after_secs = u64::try_from(lockout_ms).unwrap_or(0).div_ceil(1000).max(1);
            Err(ApiError::TooManyRequests { what, retry_after_secs })
        }
        other => other,
    }
}

/// Opens a login session for a user already authenticated (by password or the demo switcher),
/// audited as `audit` says in the same transaction.
pub async fn start_session(
    state: &AppState,
    user: &User,
    must_change_password: bool,
    client: &ClientInfo,
    audit: &Audit,
) -> Result<Login> {
    let token = random_token(32);
    let csrf_token = random_token(32);
    let expires_at =
        Timestamp::from_millis(Timestamp::now().millis() + i64::from(state.config.session_max_hours) * 3_600_000);
    let ip = client.ip.map(|ip| ip.to_string());
    let user_agent = client.user_agent.as_deref().map(|ua| truncate(ua, 300));
    state
        .store
        .create_auth_session(
            &NewAuthSession {
                id: &sha256_hex(&token),
                user_id: user.id,
                account_id: user.account_id,
                csrf_token: &csrf_token,
                expires_at,
                ip: ip.as_deref(),
                user_agent,
            },
            audit,
        )
        .await?;
    Ok(Login { token, csrf_token, user: user.clone(), must_change_password })
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

/// The live session behind a cookie token: unknown, expired (absolute or idle) or belonging to
/// a deactivated user answers 401, and a dead row is removed.
pub async fn resolve_session(state: &AppState, token: &str) -> Result<AuthSession> {
    let id = sha256_hex(token);
    let Some(session) = state.store.auth_session(&id).await? else {
        return Err(ApiError::Unauthorized);
    };
    let now = Timestamp::now();
    let idle_ms = i64::from(state.config.session_idle_minutes) * 60_000;
    let demo_blocked = session.user.is_demo && !state.config.demo_mode;
    let one_time_expired = session.must_change_password && session.password_expires_at.is_some_and(|t| now >= t);
    if now >= session.expires_at
        || one_time_expired
        || now.millis() - session.last_seen_at.millis() > idle_ms
        || !session.user.active
        || demo_blocked
    {
        state.store.delete_auth_session(&id, None).await?;
        return Err(ApiError::Unauthorized);
    }
    state.store.touch_auth_session(&session, now).await?;
    Ok(session)
}

/// The account behind an `X-API-Key`, or 401 for a malformed, unknown or revoked key.
pub async fn resolve_api_key(store: &Store, presented: &str) -> Result<store::ApiKey> {
    let prefix = presented
        .strip_prefix(API_KEY_TAG)
        .and_then(|rest| rest.strip_prefix('_'))
        .and_then(|rest| rest.split_once('_'))
        .map(|(prefix, _)| prefix)
        .ok_or(ApiError::Unauthorized)?;
    let (key, hash) = store.api_key_by_prefix(prefix).await?.ok_or(ApiError::Unauthorized)?;
    if !constant_eq(&sha256_hex(presented), &hash) || key.revoked_at.is_some() {
        return Err(ApiError::Unauthorized);
    }
    store.touch_api_key(&key, Timestamp::now()).await?;
    Ok(key)
}

/// A new partner key: the stored record and the key itself, which is shown this once.
pub async fn create_api_key(
    store: &Store,
    account_id: AccountId,
    name: &str,
    created_by: Option<UserId>,
) -> Result<(store::ApiKey, String)> {
    // The prefix is random too: it is public (listed) but must not collide.
    let prefix: String = random_token(9).chars().filter(char::is_ascii_alphanumeric).take(10).collect();
    let key = format!("{API_KEY_TAG}_{prefix}_{}", random_token(32));
    let audit = Audit::new(Some(account_id), created_by, "api_key.created")
        .details(serde_json::json!({ "name": name.trim(), "prefix": prefix }));
    let record = store.create_api_key(account_id, name, &prefix, &sha256_hex(&key), created_by, &audit).await?;
    Ok((record, key))
}

/// Whether `presented` is the configured internal service key (none configured: nothing is).
pub fn internal_key_matches(config: &Config, presented: &str) -> bool {
    config.internal_service_key.as_ref().is_some_and(|key| constant_eq(key.expose(), presented))
}

/// Checks a presented internal service key, throttled per client network: a network with too
/// many wrong keys in the window is answered 429 for every key, the right one included (or the
/// answer would still tell a guess right from wrong), and each wrong key is logged (never the
/// key). Absent keys are plain 401s: nothing was guessed.
pub async fn check_internal_key(state: &AppState, client: &ClientInfo, presented: Option<&str>) -> Result<()> {
    let Some(presented) = presented.filter(|k| !k.is_empty()) else { return Err(ApiError::Unauthorized) };
    let limit = state.config.rate_limits.internal_key_failures;
    let window_ms = i64::from(limit.window_secs) * 1000;
    let bucket = format!("internal-key:{}", network_of(client.ip));
    let now = Timestamp::now();
    let failures = state.store.rate_limit_hits(&bucket, window_ms, now).await?;
    if failures >= i64::from(limit.max) {
        return Err(ApiError::TooManyRequests {
            what: "wrong internal service keys from this address",
            retry_after_secs: u64::from(limit.window_secs),
        });
    }
    if internal_key_matches(&state.config, presented) {
        return Ok(());
    }
    let (failures, _) = state.store.hit_rate_limit(&bucket, window_ms, now).await?;
    let ip = client.ip.map(|ip| ip.to_string()).unwrap_or_else(|| "unknown".into());
    tracing::warn!(%ip, failures, "wrong internal service key");
    Err(ApiError::Unauthorized)
}

/// Counts a hit against `limit` in `bucket`; over the limit answers 429 with the seconds until
/// the window ends.
pub async fn rate_limit(store: &Store, bucket: &str, limit: Limit, what: &'static str) -> Result<()> {
    let window_ms = i64::from(limit.window_secs) * 1000;
    let now = Timestamp::now();
    let (hits, started) = store.hit_rate_limit(bucket, window_ms, now).await?;
    if hits > i64::from(limit.max) {
        let remaining_ms = (started.millis() + window_ms - now.millis()).max(0);
        let retry_after_secs = u64::try_from(remaining_ms).unwrap_or(0).div_ceil(1000).max(1);
        tracing::info!(bucket, hits, "rate limited");
        return Err(ApiError::TooManyRequests { what, retry_after_secs });
    }
    Ok(())
}

/// What first-run provisioning made: the account, its first admin and, unless a password was
/// given, the admin's one-time password.
#[derive(Debug)]
pub struct Provisioned {
    pub account: Account,
    pub admin: User,
    pub one_time_password: Option<String>,
}

/// Creates an account with its first admin: an operator's act (`proto-trainer account create`),
/// never an account admin's, who would otherwise mint accounts and hold their admins'
/// passwords. With `password` the admin uses it; without, a one-time password is generated
/// that must be changed at first login, within `one_time_password_hours`.
pub async fn provision_account(
    store: &Store,
    name: &str,
    admin_email: &str,
    admin_name: &str,
    password: Option<String>,
    one_time_password_hours: u32,
) -> Result<Provisioned> {
    if let Some(p) = &password {
        check_password_rules("password", p)?;
    }
    let account = store.create_account(name).await?;
    let new_admin = NewUser {
        email: admin_email.to_owned(),
        display_name: admin_name.to_owned(),
        role: Role::Admin,
        external_id: None,
        is_demo: false,
    };
    let admin = match store.create_user(account.id, new_admin).await {
        Ok(user) => user,
        Err(e) => {
            // Leave no admin-less account behind.
            let _ = store.delete_account(account.id).await;
            return Err(e.into());
        }
    };
    let (password, one_time) = match password {
        Some(p) => (p, None),
        None => {
            let p = one_time_password();
            (p.clone(), Some(p))
        }
    };
    let hash = hash_password(password).await?;
    let one_time_until = one_time
        .as_ref()
        .map(|_| Timestamp::from_millis(Timestamp::now().millis() + i64::from(one_time_password_hours) * 3_600_000));
    let audit = Audit::new(Some(account.id), None, "account.created")
        .target("account", account.id)
        .details(serde_json::json!({ "name": account.name, "admin": admin.id }));
    store.set_password(account.id, admin.id, &hash, one_time_until, None, &audit).await?;
    Ok(Provisioned { account, admin, one_time_password: one_time })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_are_argon2id_and_verify() {
        let hash = hash_password("correct horse battery".into()).await.expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(verify_password("correct horse battery".into(), Some(hash.clone())).await);
        assert!(!verify_password("wrong horse battery".into(), Some(hash)).await);
        assert!(!verify_password("no such user".into(), None).await, "the dummy hash never admits anyone");
    }

    #[test]
    fn tokens_are_random_and_compare_in_constant_time() {
        let a = random_token(32);
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token(32));
        assert!(constant_eq(&a, &a.clone()));
        assert!(!constant_eq(&a, &random_token(32)));
        assert!(!constant_eq("abc", "abcd"));
        assert_eq!(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn password_rules() {
        assert!(check_password_rules("password", "short").is_err());
        assert!(check_password_rules("password", "twelve chars").is_ok());
        assert!(check_password_rules("password", &"x".repeat(257)).is_err());
    }
}
