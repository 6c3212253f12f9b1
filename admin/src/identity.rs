//! Who is calling. Until real authentication lands (the auth issue), the only identity source is
//! the demo header `x-user-id`, honoured only with `DEMO_MODE=true`; without it every
//! identity-requiring route answers 401. Handlers depend only on [`Actor`], so replacing the
//! source does not touch them.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use store::Role;
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;

pub const DEMO_USER_HEADER: &str = "x-user-id";

/// The authenticated user behind a request.
#[derive(Debug, Clone, Copy)]
pub struct Actor {
    pub user_id: Uuid,
    pub account_id: Uuid,
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
    pub fn sees_user(&self, user_id: Uuid) -> bool {
        self.role.is_supervisor() || self.user_id == user_id
    }
}

impl FromRequestParts<AppState> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if !state.config.demo_mode {
            return Err(ApiError::Unauthorized);
        }
        let Some(raw) = parts.headers.get(DEMO_USER_HEADER) else {
            return Err(ApiError::Unauthorized);
        };
        let id = raw
            .to_str()
            .ok()
            .and_then(|s| Uuid::parse_str(s.trim()).ok())
            .ok_or_else(|| ApiError::BadRequest(format!("{DEMO_USER_HEADER} must be a user id (UUID)")))?;
        match state.store.user_by_id(id).await? {
            Some(user) if user.active => Ok(Actor { user_id: user.id, account_id: user.account_id, role: user.role }),
            _ => Err(ApiError::Unauthorized),
        }
    }
}
