//! Access tokens, for the dev/test modes that join a room without a dispatching server.
//!
//! In production the agent joins with the token in its `JobAssignment`; these are only for
//! tests and the echo mode, signed with the server's dev key pair.

use livekit_api::access_token::{AccessToken, AccessTokenError, VideoGrants};

/// A token to join `room` as `identity`, allowed to publish, subscribe, send data and update
/// its own attributes (needed for `lk.agent.state`).
pub fn room_token(api_key: &str, api_secret: &str, room: &str, identity: &str) -> Result<String, AccessTokenError> {
    AccessToken::with_api_key(api_key, api_secret)
        .with_identity(identity)
        .with_name(identity)
        .with_grants(VideoGrants {
            room_join: true,
            room: room.to_owned(),
            can_publish: Some(true),
            can_subscribe: Some(true),
            can_publish_data: Some(true),
            can_update_own_metadata: Some(true),
            ..Default::default()
        })
        .to_jwt()
}
