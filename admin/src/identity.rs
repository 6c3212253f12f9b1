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
        let token = session_token(&parts.headers).ok_or(ApiError::Unauthorized)?;
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
        Ok(Partner { account_id: key.account_id, key_id: key.id })
    }
}

/// A voice agent (or another internal service) holding `INTERNAL_SERVICE_KEY`.
#[derive(Debug, Clone, Copy)]
pub struct Internal;

impl FromRequestParts<AppState> for Internal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let presented = parts.headers.get(INTERNAL_KEY_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
        if auth::internal_key_matches(&state.config, presented) { Ok(Internal) } else { Err(ApiError::Unauthorized) }
    }
}

/// A voice agent acting on one session: it presents that session's credential
/// (`X-Session-Credential`, minted by `POST /api/livekit/token`, stored hashed, expiring with the
/// session) or the account-wide internal service key. The session is the one in the path, so a
/// credential never opens another session.
#[derive(Debug, Clone)]
pub struct CallAgent {
    pub session: store::Session,
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
        let key = parts.headers.get(INTERNAL_KEY_HEADER).and_then(|v| v.to_str().ok());
        let credential = parts.headers.get(auth::SESSION_CREDENTIAL_HEADER).and_then(|v| v.to_str().ok());
        let Some(session_id) = session_id else {
            // A malformed id: the handler's path extractor names it (400) once the caller is known.
            return match (key, credential) {
                (Some(k), _) if auth::internal_key_matches(&state.config, k) => {
                    Err(ApiError::BadRequest("id: not a UUID".into()))
                }
                _ => Err(ApiError::Unauthorized),
            };
        };
        if let Some(k) = key {
            if !auth::internal_key_matches(&state.config, k) {
                return Err(ApiError::Unauthorized);
            }
            return Ok(CallAgent { session: state.store.session_by_id(session_id).await? });
        }
        let credential = credential.ok_or(ApiError::Unauthorized)?;
        match state.store.session_for_credential(session_id, &auth::sha256_hex(credential.trim())).await? {
            Some(session) => Ok(CallAgent { session }),
            None => Err(ApiError::Unauthorized),
        }
    }
}

/// The client's address and user agent. The address is the peer's, or with
/// `TRUST_FORWARDED_FOR` the first hop of `X-Forwarded-For` (set only behind a proxy that
/// overwrites it, or clients could pick their own rate-limit bucket).
impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let forwarded = state
            .config
            .trust_forwarded_for
            .then(|| {
                parts.headers.get("x-forwarded-for")?.to_str().ok()?.split(',').next()?.trim().parse::<IpAddr>().ok()
            })
            .flatten();
        let user_agent = parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned);
        Ok(ClientInfo { ip: forwarded.or(peer), user_agent })
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The session token from the `Cookie` header (either cookie name).
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE || *name == SECURE_COOKIE)
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
        assert_eq!(session_token(&headers).as_deref(), Some("abc123"));
        headers.insert(header::COOKIE, "pt_session=".parse().expect("header"));
        assert_eq!(session_token(&headers), None);
    }
}
