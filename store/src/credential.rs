//! Sealing a call's per-session credential into the agent dispatch metadata.
//!
//! The dispatch metadata travels inside the counselor's LiveKit access token, which the browser
//! holds and can read. So the credential is sealed: XORed with a pad derived from the LiveKit API
//! secret (which the agent has and the browser has not) and the session id, so each pad is used
//! once. The admin service seals when it mints; a remote agent opens it with [`open`].

use crate::ids::SessionId;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The credential's length in bytes (256 bits).
pub const CREDENTIAL_BYTES: usize = 32;

fn mac(secret: &str, label: &[u8], session_id: SessionId) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(label);
    mac.update(session_id.as_uuid().as_bytes());
    mac
}

fn pad(secret: &str, session_id: SessionId) -> [u8; CREDENTIAL_BYTES] {
    mac(secret, b"proto-trainer session credential pad v1\0", session_id).finalize().into_bytes().into()
}

/// Says whether the sealed bytes came from this secret (a wrong secret must fail loudly, not
/// yield a credential the service refuses later).
fn tag(secret: &str, session_id: SessionId, sealed: &[u8]) -> Hmac<Sha256> {
    let mut m = mac(secret, b"proto-trainer session credential tag v1\0", session_id);
    m.update(sealed);
    m
}

const TAG_BYTES: usize = 16;

/// The credential as presented in `X-Session-Credential` (and hashed for storage).
pub fn encode(credential: &[u8; CREDENTIAL_BYTES]) -> String {
    format!("ptc_{}", URL_SAFE_NO_PAD.encode(credential))
}

/// The sealed form for the job metadata.
pub fn seal(secret: &str, session_id: SessionId, credential: &[u8; CREDENTIAL_BYTES]) -> String {
    let pad = pad(secret, session_id);
    let mut sealed: Vec<u8> = credential.iter().zip(pad).map(|(c, p)| c ^ p).collect();
    let t = tag(secret, session_id, &sealed).finalize().into_bytes();
    sealed.extend_from_slice(&t[..TAG_BYTES]);
    format!("v1.{}", URL_SAFE_NO_PAD.encode(sealed))
}

/// The credential (as [`encode`] writes it) from its sealed form; None when it is not one.
pub fn open(secret: &str, session_id: SessionId, sealed: &str) -> Option<String> {
    let all = URL_SAFE_NO_PAD.decode(sealed.strip_prefix("v1.")?).ok()?;
    if all.len() != CREDENTIAL_BYTES + TAG_BYTES {
        return None;
    }
    let (bytes, t) = all.split_at(CREDENTIAL_BYTES);
    tag(secret, session_id, bytes).verify_truncated_left(t).ok()?;
    let pad = pad(secret, session_id);
    let mut credential = [0u8; CREDENTIAL_BYTES];
    for (i, b) in credential.iter_mut().enumerate() {
        *b = bytes[i] ^ pad[i];
    }
    Some(encode(&credential))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_only_with_the_secret_and_session() {
        let credential = [7u8; CREDENTIAL_BYTES];
        let session = SessionId::new();
        let sealed = seal("secret", session, &credential);
        assert!(!sealed.contains(&URL_SAFE_NO_PAD.encode(credential)));
        assert_eq!(open("secret", session, &sealed), Some(encode(&credential)));
        assert_eq!(open("other", session, &sealed), None);
        assert_eq!(open("secret", SessionId::new(), &sealed), None);
        assert_eq!(open("secret", session, "garbage"), None);
    }
}
