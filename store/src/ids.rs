//! Typed ids for the main aggregates, so a swapped argument is a compile error rather than a
//! query that silently matches nothing: `set_password(account_id, user_id, ..)` takes
//! `(AccountId, UserId)`, and passing them the other way round does not build.
//!
//! Each id is a newtype over a UUID that changes nothing outside the type system: it serialises
//! as the bare UUID string (`serde(transparent)`), it is stored as the same hyphenated lower-case
//! text the store always bound (`Display`), it parses with the same rules (`FromStr`), and its
//! OpenAPI schema is `string` / `uuid`. Fields of schema-deriving structs say
//! `#[schema(value_type = Uuid)]` so the generated document keeps the inline UUID it always had
//! rather than growing a component per id.
//!
//! ```
//! use store::{AccountId, UserId};
//! fn set_password(_account: AccountId, _user: UserId) {}
//! let (account_id, user_id) = (AccountId::new(), UserId::new());
//! set_password(account_id, user_id);
//! ```
//!
//! ```compile_fail
//! use store::{AccountId, UserId};
//! fn set_password(_account: AccountId, _user: UserId) {}
//! let (account_id, user_id) = (AccountId::new(), UserId::new());
//! set_password(user_id, account_id); // mismatched types
//! ```

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

macro_rules! typed_id {
    ($($(#[$meta:meta])* $name:ident;)*) => {$(
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new time-ordered id (UUIDv7), like [`crate::new_id`].
            #[allow(clippy::new_without_default)]
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::from_str(s).map(Self)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
                // What utoipa writes for a bare `Uuid` field.
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    )*};
}

typed_id! {
    /// An organisation (tenant); every other aggregate belongs to one.
    AccountId;
    /// A user of an account: counselor, supervisor or admin.
    UserId;
    ScenarioId;
    /// A practice session (voice or chat), also the key of its transcript, evaluation and recording.
    SessionId;
    AssignmentId;
    /// A safety flag raised on a session.
    FlagId;
    WebhookId;
    ApiKeyId;
    RecordingId;
    /// A scenario test run (an AI counselor's practice call against the scenario).
    TestRunId;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_keep_the_uuid_wire_and_storage_forms() {
        let raw = Uuid::now_v7();
        let id = SessionId::from(raw);
        assert_eq!(id.to_string(), raw.to_string());
        assert_eq!(format!("{id:?}"), format!("{raw:?}"));
        assert_eq!(serde_json::to_string(&id).unwrap(), serde_json::to_string(&raw).unwrap());
        assert_eq!(serde_json::from_str::<SessionId>(&format!("\"{raw}\"")).unwrap(), id);
        assert_eq!(raw.to_string().parse::<SessionId>().unwrap(), id);
        assert!("not-a-uuid".parse::<SessionId>().is_err());
        let uuid_err = serde_json::from_str::<Uuid>("\"nope\"").unwrap_err().to_string();
        assert_eq!(serde_json::from_str::<SessionId>("\"nope\"").unwrap_err().to_string(), uuid_err);
        assert_eq!(
            serde_json::to_value(<SessionId as utoipa::PartialSchema>::schema()).unwrap(),
            serde_json::json!({"type": "string", "format": "uuid"})
        );
    }

    /// `set_password` takes the account first, then the user; with bare UUIDs the swapped call
    /// compiled and matched no row. (The swapped call failing to build is the `compile_fail`
    /// doctest in the module docs.)
    #[test]
    fn set_password_takes_account_then_user() {
        fn first_two<A, B, F, Fut>(_: F) -> (&'static str, &'static str)
        where
            F: Fn(
                &'static crate::Store,
                A,
                B,
                &'static str,
                Option<crate::Timestamp>,
                Option<&'static str>,
                &'static crate::Audit,
            ) -> Fut,
        {
            (std::any::type_name::<A>(), std::any::type_name::<B>())
        }
        let (a, b) = first_two(crate::Store::set_password);
        assert_eq!(a, std::any::type_name::<AccountId>());
        assert_eq!(b, std::any::type_name::<UserId>());
    }
}
