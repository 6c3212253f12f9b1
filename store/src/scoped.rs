//! Tenancy by type: every read of a session's data (transcript, evaluation, flags, analysis,
//! reviews, documentation reviews, LLM and voice usage, recording) takes a [`SessionRef`], and
//! a `SessionRef` can only be made here, by a lookup that already decided the caller may see the
//! session: the account's ([`Store::session_in`]), a reader's — a counselor's own sessions, the
//! account's for supervisors and admins ([`Store::session_for_reader`]) —, the call credential's
//! (`Store::session_for_credential`), or, for the few internal paths that act across accounts,
//! the explicitly named [`Store::session_for_system`] (its uses are listed in ARCHITECTURE.md).
//! A route that forgets the tenancy check does not compile: it has no handle to pass.

use std::ops::Deref;

use crate::db::Store;
use crate::domain::Role;
use crate::error::{Error, Result};
use crate::ids::{AccountId, SessionId, UserId};
use crate::sessions::{SESSION_COLUMNS, Session, SessionFilter};

/// A session the holder was allowed to reach. The field is private and there is no public
/// constructor: only the lookups of this module make one. It derefs to the [`Session`] row as
/// read at lookup (its status may have moved on since; the reads that depend on it read again).
#[derive(Debug, Clone)]
pub struct SessionRef {
    session: Session,
}

impl SessionRef {
    /// Crate-internal: for store code that has just read or written the row under its own
    /// account check (e.g. the voice start) and hands it out.
    pub(crate) fn new(session: Session) -> Self {
        SessionRef { session }
    }

    pub fn id(&self) -> SessionId {
        self.session.id
    }

    pub fn account_id(&self) -> AccountId {
        self.session.account_id
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    pub fn into_session(self) -> Session {
        self.session
    }
}

impl Deref for SessionRef {
    type Target = Session;

    fn deref(&self) -> &Session {
        &self.session
    }
}

impl Store {
    /// The account's session `id`; another account's is "not found", like a missing one.
    pub async fn session_in(&self, account_id: AccountId, id: SessionId) -> Result<SessionRef> {
        let row = sqlx::query(&format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1 AND account_id = $2"))
            .bind(id.to_string())
            .bind(account_id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(Error::NotFound("session"))?;
        Ok(SessionRef::new(Session::from_row(&row)?))
    }

    /// The account's sessions matching `filter` (see [`Store::list_sessions`]), as handles.
    pub async fn sessions_in(&self, account_id: AccountId, filter: &SessionFilter) -> Result<Vec<SessionRef>> {
        Ok(self.list_sessions(account_id, filter).await?.into_iter().map(SessionRef::new).collect())
    }

    /// The session `id` as `reader` (of `account_id`, with `role`) may see it: supervisors and
    /// admins any of the account's, a counselor only their own. Anything else is "not found",
    /// so ids do not leak.
    pub async fn session_for_reader(
        &self,
        account_id: AccountId,
        reader: UserId,
        role: Role,
        id: SessionId,
    ) -> Result<SessionRef> {
        let session = self.session_in(account_id, id).await?;
        if role.is_supervisor() || session.user_id == reader { Ok(session) } else { Err(Error::NotFound("session")) }
    }

    /// The session `id` whatever its account, for the system's own work only: the job workers
    /// (grading, analysis, flag e-mail), a co-deployed voice agent and the internal API under the
    /// internal service key, which act for every account. Listed in ARCHITECTURE.md; anything
    /// acting for a person or a partner uses [`Store::session_in`] or
    /// [`Store::session_for_reader`].
    pub async fn session_for_system(&self, id: SessionId) -> Result<SessionRef> {
        let row = sqlx::query(&format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(Error::NotFound("session"))?;
        Ok(SessionRef::new(Session::from_row(&row)?))
    }
}
