//! The few SDP and ICE-candidate details LiveKit's signalling needs beyond what str0m exposes.
//!
//! - The SFU names each subscribed track in its offer's `a=msid:<stream> <track>` line, where the
//!   stream id is `PA_xxx|TR_xxx` (participant sid and track sid). str0m reports remote media by
//!   `mid` only, so we read the offer's text to map mid -> (participant sid, track sid).
//! - Trickled candidates travel as the JSON of a browser `RTCIceCandidateInit`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Who published a track we receive, as named by the SFU's `msid` stream id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackOrigin {
    pub participant_sid: String,
    pub track_sid: String,
}

/// Maps each media section's `mid` to the origin named in its `a=msid` line.
///
/// Sections without an `msid`, or whose stream id is not LiveKit's `PA_|TR_` form, are left out:
/// the caller treats them as unknown rather than guessing.
pub fn track_origins(sdp: &str) -> HashMap<String, TrackOrigin> {
    let mut out = HashMap::new();
    // m-sections are delimited by `m=` lines; attributes before the first belong to the session.
    for section in sdp.split("\nm=").skip(1) {
        let mut mid = None;
        let mut origin = None;
        for line in section.lines().map(str::trim_end) {
            if let Some(v) = line.strip_prefix("a=mid:") {
                mid = Some(v.to_owned());
            } else if let Some(v) = line.strip_prefix("a=msid:") {
                let stream = v.split_whitespace().next().unwrap_or_default();
                if let Some((p, t)) = stream.split_once('|') {
                    origin = Some(TrackOrigin { participant_sid: p.to_owned(), track_sid: t.to_owned() });
                }
            }
        }
        if let (Some(mid), Some(origin)) = (mid, origin) {
            out.insert(mid, origin);
        }
    }
    out
}

/// The first `a=mid:` of an SDP, which trickled candidates are tagged with (BUNDLE puts every
/// section on one transport, so the first section stands for all).
pub fn first_mid(sdp: &str) -> Option<String> {
    sdp.lines().find_map(|l| l.trim_end().strip_prefix("a=mid:").map(str::to_owned))
}

/// A browser-style `RTCIceCandidateInit`, the payload of LiveKit's `TrickleRequest.candidateInit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CandidateInit {
    pub candidate: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_m_line_index: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_fragment: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        a=group:BUNDLE 0 1\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n\
        a=msid:PA_abc|TR_def TR_def\r\na=sendonly\r\n\
        m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:1\r\n";

    #[test]
    fn maps_mid_to_livekit_track_origin() {
        let m = track_origins(OFFER);
        assert_eq!(m.len(), 1);
        assert_eq!(m["0"], TrackOrigin { participant_sid: "PA_abc".into(), track_sid: "TR_def".into() });
        assert_eq!(first_mid(OFFER).as_deref(), Some("0"));
    }

    #[test]
    fn candidate_init_uses_browser_field_names() {
        let json = r#"{"candidate":"candidate:1 1 udp 2130706431 127.0.0.1 7882 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"abc"}"#;
        let c: CandidateInit = serde_json::from_str(json).unwrap();
        assert_eq!(c.sdp_m_line_index, Some(0));
        assert_eq!(serde_json::to_string(&c).unwrap(), json);
        // LiveKit sometimes omits the optional fields.
        let bare: CandidateInit = serde_json::from_str(r#"{"candidate":"x"}"#).unwrap();
        assert_eq!(bare.sdp_mid, None);
    }
}
