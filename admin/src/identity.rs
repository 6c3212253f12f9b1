//! Who is calling, as axum extractors. A handler names the kind of caller it serves and cannot
//! forget a check:
//!
//! - [`Actor`]: a user with a login session (cookie). State-changing requests must also carry the
//!   session's CSRF token and, when the browser sends one, a same-site `Origin`/`Referer`.
//! - [`Partner`]: a partner system with an account's API key (`X-API-Key`), for `/api/external/*`.
//! - [`Internal`]: a voice agent with the internal service key, for `/api/internal/*`.
//! - [`CallAgent`]: a voice agent in one call: the per-session credential minted at dispatch
//!   (or the internal service key), for that session's `/api/internal/sessions/{id}/*` only.
//!
//! Each answers 401 when its credential is absent or wrong; one kind of credential never stands
//! in for another.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use store::Role;

use crate::AppState;
use crate::auth::{self, API_KEY_HEADER, COOKIE, CSRF_HEADER, ClientInfo, INTERNAL_KEY_HEADER, SECURE_COOKIE};
use crate::error::ApiError;
use store::{AccountId, ApiKeyId, SessionId, UserId};

/// A signed-in user.
#[derive(Debug, Clone, Copy)]
pub struct Actor {
    pub user_id: UserId,
    pub account_id: AccountId,
    pub role: Role,
}

impl Actor {
    /// Supervisors and account admins manage scenarios, assignments and counselors.
    pub fn require_supervisor(&self) -> Result<(), ApiError> {
        if self.role.is_supervisor() { Ok(()) } else { Err(ApiError::Forbidden("supervisors only")) }
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.role == Role::Admin { Ok(()) } else { Err(ApiError::Forbidden("account admins only")) }
    }

    /// Counselors act on their own records only; for them, another user's record is "not found".
    pub fn sees_user(&self, user_id: UserId) -> bool {
        self.role.is_supervisor() || self.user_id == user_id
    }

    /// The owner check every route of a counselor's records makes: `what` is "not found" unless
    /// this caller sees its owner's records.
    pub fn require_sees(&self, owner: UserId, what: &'static str) -> Result<(), ApiError> {
        if self.sees_user(owner) { Ok(()) } else { Err(ApiError::NotFound(what)) }
    }

    /// The session `id` as this caller may see it — a counselor their own, supervisors and
    /// admins the account's — as the handle every read of its data takes; 404 otherwise.
    pub async fn session(&self, store: &store::Store, id: SessionId) -> Result<store::SessionRef, ApiError> {
        Ok(store.session_for_reader(self.account_id, self.user_id, self.role, id).await?)
    }
}

/// Routes a user who must change a one-time password may still use.
const PASSWORD_CHANGE_ROUTES: [&str; 3] = ["/api/me", "/api/auth/password", "/api/auth/logout"];

/// The signed-in user's session, for the routes that manage the session itself.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub actor: Actor,
    pub session: store::AuthSession,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // Resolved already by a layer in front (`list_cache`); only server code sets extensions.
        if let Some(signed_in) = parts.extensions.get::<SignedIn>().cloned() {
            return Ok(signed_in);
        }
        let token = session_token(&parts.headers, state.config.cookie_secure).ok_or(ApiError::Unauthorized)?;
        let session = auth::resolve_session(state, &token).await?;
        if !is_safe(&parts.method) {
            check_origin(&parts.headers, state)?;
            let presented = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
            if !auth::constant_eq(presented, &session.csrf_token) {
                return Err(ApiError::Forbidden("missing or wrong CSRF token (send the x-csrf-token header)"));
            }
        }
        if session.must_change_password && !PASSWORD_CHANGE_ROUTES.contains(&parts.uri.path()) {
            return Err(ApiError::Forbidden("change your one-time password first (POST /api/auth/password)"));
        }
        let user = &session.user;
        let actor = Actor { user_id: user.id, account_id: user.account_id, role: user.role };
        crate::telemetry::record_caller(actor.account_id, Some(actor.user_id));
        Ok(SignedIn { actor, session })
    }
}

impl FromRequestParts<AppState> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(SignedIn::from_request_parts(parts, state).await?.actor)
    }
}

/// A partner system, by the account's API key.
#[derive(Debug, Clone, Copy)]
pub struct Partner {
    pub account_id: AccountId,
    pub key_id: ApiKeyId,
}

impl FromRequestParts<AppState> for Partner {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let presented =
            parts.headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok()).ok_or(ApiError::Unauthorized)?;
        let key = auth::resolve_api_key(&state.store, presented.trim()).await?;
        crate::telemetry::record_caller(key.account_id, None);
        Ok(Partner { account_id: key.account_id, key_id: key.id })
    }
}

/// A voice agent (or another internal service) holding `INTERNAL_SERVICE_KEY`.
#[derive(Debug, Clone, Copy)]
pub struct Internal;

impl FromRequestParts<AppState> for Internal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let client = ClientInfo::from_request_parts(parts, state).await?;
        let presented = parts.headers.get(INTERNAL_KEY_HEADER).and_then(|v| v.to_str().ok());
        auth::check_internal_key(state, &client, presented).await?;
        Ok(Internal)
    }
}

/// A voice agent acting on one session: it presents that session's credential
/// (`X-Session-Credential`, minted by `POST /api/livekit/token`, stored hashed, expiring with the
/// session) or the account-wide internal service key. The session is the one in the path, so a
/// credential never opens another session.
#[derive(Debug, Clone)]
pub struct CallAgent {
    /// The call's session: the credential's, or any under the internal key (which acts for
    /// every account: `Store::session_for_system`).
    pub session: store::SessionRef,
}

impl FromRequestParts<AppState> for CallAgent {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let session_id = parts
            .uri
            .path()
            .strip_prefix("/api/internal/sessions/")
            .and_then(|rest| rest.split('/').next())
            .and_then(|id| id.parse::<SessionId>().ok());
        let client = ClientInfo::from_request_parts(parts, state).await?;
        let key = parts.headers.get(INTERNAL_KEY_HEADER).and_then(|v| v.to_str().ok());
        let credential = parts.headers.get(auth::SESSION_CREDENTIAL_HEADER).and_then(|v| v.to_str().ok());
        let Some(session_id) = session_id else {
            // A malformed id: the handler's path extractor names it (400) once the caller is known.
            if key.is_some() {
                auth::check_internal_key(state, &client, key).await?;
                return Err(ApiError::BadRequest("id: not a UUID".into()));
            }
            return Err(ApiError::Unauthorized);
        };
        if key.is_some() {
            auth::check_internal_key(state, &client, key).await?;
            return Ok(CallAgent { session: state.store.session_for_system(session_id).await? });
        }
        let credential = credential.ok_or(ApiError::Unauthorized)?;
        match state.store.session_for_credential(session_id, &auth::sha256_hex(credential.trim())).await? {
            Some(session) => Ok(CallAgent { session }),
            None => Err(ApiError::Unauthorized),
        }
    }
}

/// The client's address and user agent. The address is the peer's or, behind
/// `TRUSTED_PROXIES` = N proxies, the one the outermost proxy saw: see [`forwarded_client`].
impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let forwarded = forwarded_client(&parts.headers, state.config.trusted_proxies);
        let user_agent = parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned);
        Ok(ClientInfo { ip: forwarded.or(peer), user_agent })
    }
}

/// The client address behind `proxies` trusted reverse proxies: the `proxies`-th entry of
/// `X-Forwarded-For` counted from the right. Each proxy appends the address it received the
/// request from, so the rightmost `proxies` entries were written by our proxies and the one
/// the outermost proxy wrote is the client; anything left of it came from the client itself
/// and is never read (reading the first entry let a client pick a fresh rate-limit bucket per
/// request). With no proxy, or fewer entries than proxies, or a malformed entry: `None` (the
/// peer address is used).
fn forwarded_client(headers: &HeaderMap, proxies: u32) -> Option<IpAddr> {
    let proxies = usize::try_from(proxies).ok().filter(|n| *n > 0)?;
    // Several header lines form one list, in order.
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let entry = entries.len().checked_sub(proxies).map(|i| entries[i])?;
    // `[v6]:port` and `v4:port` from proxies that append the port.
    entry.parse::<IpAddr>().ok().or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The session token from the `Cookie` header, under the one name this deployment sets: with
/// secure cookies only `__Host-pt_session`, which a browser accepts only from this host over
/// HTTPS, so a plain `pt_session` planted by a sibling subdomain or over plain HTTP is never
/// read (it used to be, and whichever came first won).
pub fn session_token(headers: &HeaderMap, secure: bool) -> Option<String> {
    let wanted = if secure { SECURE_COOKIE } else { COOKIE };
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == wanted)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// A browser names the page a request came from in `Origin` (or at least `Referer`); a
/// state-changing request from another site is refused. Requests with neither come from
/// non-browser clients, which the CSRF token alone covers.
pub fn check_origin(headers: &HeaderMap, state: &AppState) -> Result<(), ApiError> {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let referer = headers.get(header::REFERER).and_then(|v| v.to_str().ok());
    let claimed = match (origin, referer) {
        (Some(o), _) => o.to_owned(),
        (None, Some(r)) => origin_of(r).ok_or(ApiError::Forbidden("cross-site request refused"))?,
        (None, None) => return Ok(()),
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let same_host = !host.is_empty() && (claimed == format!("http://{host}") || claimed == format!("https://{host}"));
    let public = state.config.public_url.as_deref().and_then(origin_of).is_some_and(|p| p == claimed);
    if same_host || public { Ok(()) } else { Err(ApiError::Forbidden("cross-site request refused")) }
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    (!host.is_empty()).then(|| format!("{scheme}://{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_of_urls() {
        assert_eq!(origin_of("https://a.example:8443/x/y?z").as_deref(), Some("https://a.example:8443"));
        assert_eq!(origin_of("http://localhost:3003").as_deref(), Some("http://localhost:3003"));
        assert_eq!(origin_of("nonsense"), None);
    }

    #[test]
    fn cookie_token_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "theme=dark; pt_session=abc123; other=1".parse().expect("header"));
        assert_eq!(session_token(&headers, false).as_deref(), Some("abc123"));
        assert_eq!(session_token(&headers, true), None, "secure cookies: the plain name is not read");
        headers.insert(header::COOKIE, "pt_session=planted; __Host-pt_session=real".parse().expect("header"));
        assert_eq!(session_token(&headers, true).as_deref(), Some("real"));
        headers.insert(header::COOKIE, "pt_session=".parse().expect("header"));
        assert_eq!(session_token(&headers, false), None);
    }

    #[test]
    fn forwarded_for_is_read_from_the_right() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.0.0.2".parse().expect("header"));
        assert_eq!(forwarded_client(&headers, 0), None, "no proxy: the header is the client's own");
        assert_eq!(forwarded_client(&headers, 1), "10.0.0.2".parse().ok());
        assert_eq!(forwarded_client(&headers, 2), "203.0.113.9".parse().ok());
        assert_eq!(forwarded_client(&headers, 4), None, "fewer entries than proxies");
        headers.append("x-forwarded-for", "[2001:db8::1]:443".parse().expect("header"));
        assert_eq!(forwarded_client(&headers, 1), "2001:db8::1".parse().ok(), "header lines join; ports dropped");
    }
}
