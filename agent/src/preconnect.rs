//! Pre-connect audio: what the counselor said before the agent joined.
//!
//! `livekit-client` with `preConnectBuffer: true` records the microphone with `MediaRecorder`
//! (`audio/webm;codecs=opus`, 100 ms timeslices) and, once an agent is in the room, sends it as a
//! byte stream on topic [`PRE_CONNECT_TOPIC`] with attributes `trackId`, `sampleRate`, `channels`.
//! The mobile SDKs send raw PCM16 instead (their mime type is not WebM). Both become 24 kHz mono
//! PCM here, ready for `input_audio_buffer.append`.

use crate::audio::{Decoder, FRAME_SAMPLES};
use crate::resample::Converter;

pub const PRE_CONNECT_TOPIC: &str = "lk.agent.pre-connect-audio-buffer";
/// Attribute a client sets on itself while it records a pre-connect buffer.
pub const PRE_CONNECT_ATTRIBUTE: &str = "lk.agent.pre-connect-audio";
/// Largest buffer we accept (LiveKit's clients cap theirs at 10 MB).
pub const MAX_PRE_CONNECT_BYTES: usize = 10 << 20;

/// Decodes one received buffer to 24 kHz mono PCM16. `mime_type` picks the format (WebM/Opus or
/// raw PCM16 little-endian at `sample_rate` with `channels` interleaved).
pub fn decode(mime_type: &str, sample_rate: u32, channels: u16, bytes: &[u8]) -> Vec<i16> {
    let mono48 =
        if mime_type.contains("webm") || mime_type.contains("opus") || bytes.starts_with(&[0x1a, 0x45, 0xdf, 0xa3]) {
            let mut decoder = match Decoder::new() {
                Ok(d) => d,
                Err(_) => return Vec::new(),
            };
            let mut pcm = Vec::new();
            for frame in webm_frames(bytes) {
                if let Ok(samples) = decoder.decode(frame) {
                    pcm.extend_from_slice(&samples);
                }
            }
            pcm
        } else {
            let channels = usize::from(channels.max(1));
            let samples: Vec<i16> = bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
            let mono: Vec<i16> = samples
                .chunks_exact(channels)
                .map(|c| (c.iter().map(|&s| i32::from(s)).sum::<i32>() / channels as i32) as i16)
                .collect();
            match sample_rate {
                24_000 => return mono,
                48_000 => mono,
                rate => linear(&mono, rate, 48_000),
            }
        };
    // 48 kHz -> 24 kHz in 20 ms chunks; the last partial chunk is padded with silence.
    let mut down = Converter::down();
    let mut out = Vec::with_capacity(mono48.len() / 2 + FRAME_SAMPLES);
    let mut chunk = vec![0i16; FRAME_SAMPLES];
    let mut half = vec![0i16; FRAME_SAMPLES / 2];
    for piece in mono48.chunks(FRAME_SAMPLES) {
        chunk[..piece.len()].copy_from_slice(piece);
        chunk[piece.len()..].fill(0);
        down.process(&chunk, &mut half);
        out.extend_from_slice(&half);
    }
    out
}

/// Plain linear interpolation, for the odd rate a client may report (rare; quality is secondary).
fn linear(input: &[i16], from: u32, to: u32) -> Vec<i16> {
    if input.is_empty() || from == 0 {
        return Vec::new();
    }
    let n = (input.len() as u64 * u64::from(to) / u64::from(from)) as usize;
    (0..n)
        .map(|i| {
            let pos = i as f64 * f64::from(from) / f64::from(to);
            let k = pos as usize;
            let frac = pos - k as f64;
            let a = f64::from(input[k.min(input.len() - 1)]);
            let b = f64::from(input[(k + 1).min(input.len() - 1)]);
            (a + (b - a) * frac) as i16
        })
        .collect()
}

const SEGMENT: u32 = 0x1853_8067;
const CLUSTER: u32 = 0x1F43_B675;
const BLOCK_GROUP: u32 = 0xA0;
const BLOCK: u32 = 0xA1;
const SIMPLE_BLOCK: u32 = 0xA3;

/// Reads an EBML variable-length integer; `keep_marker` for element ids. Returns (value, length,
/// all value bits set = "unknown size").
fn vint(bytes: &[u8], keep_marker: bool) -> Option<(u64, usize, bool)> {
    let first = *bytes.first()?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 || bytes.len() < len {
        return None;
    }
    let mut value = if keep_marker { u64::from(first) } else { u64::from(first) & ((1u64 << (8 - len)) - 1) };
    for b in &bytes[1..len] {
        value = (value << 8) | u64::from(*b);
    }
    let unknown = !keep_marker && value == (1u64 << (7 * len)) - 1;
    Some((value, len, unknown))
}

/// The Opus frames of a WebM (Matroska) stream as `MediaRecorder` writes it: segment and clusters
/// of unknown size, one audio track, unlaced blocks. Anything else is skipped.
pub fn webm_frames(bytes: &[u8]) -> Vec<&[u8]> {
    let mut frames = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let Some((id, id_len, _)) = vint(&bytes[pos..], true) else { break };
        let Some((size, size_len, unknown)) = vint(&bytes[pos + id_len..], false) else { break };
        let body = pos + id_len + size_len;
        let id = id as u32;
        if matches!(id, SEGMENT | CLUSTER | BLOCK_GROUP) {
            // Descend: a master element's children follow its header directly.
            pos = body;
            continue;
        }
        if unknown {
            break;
        }
        let end = body.saturating_add(size as usize).min(bytes.len());
        if matches!(id, SIMPLE_BLOCK | BLOCK) && end > body {
            let block = &bytes[body..end];
            if let Some((_, track_len, _)) = vint(block, false) {
                let header = track_len + 3;
                let lacing = block.get(track_len + 2).map(|f| f & 0x06).unwrap_or(0);
                if lacing == 0 && block.len() > header {
                    frames.push(&block[header..]);
                }
            }
        }
        pos = end;
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::Encoder;

    fn element(id: &[u8], body: &[u8]) -> Vec<u8> {
        let mut out = id.to_vec();
        // An 8-byte size, as some muxers write.
        out.push(0x01);
        out.extend_from_slice(&(body.len() as u64).to_be_bytes()[1..]);
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn webm_with_unknown_sized_segment_and_cluster() {
        let mut enc = Encoder::new().unwrap();
        let tone: Vec<i16> = (0..FRAME_SAMPLES).map(|i| ((i as f64 * 0.06).sin() * 8000.0) as i16).collect();
        let mut webm = element(&[0x1a, 0x45, 0xdf, 0xa3], &[0x42, 0x86, 0x81, 0x01]);
        webm.extend_from_slice(&[0x18, 0x53, 0x80, 0x67, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        webm.extend(element(&[0x16, 0x54, 0xae, 0x6b], &[0xae, 0x80])); // Tracks, skipped
        webm.extend_from_slice(&[0x1f, 0x43, 0xb6, 0x75, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        webm.extend(element(&[0xe7], &[0x00])); // cluster timecode
        for k in 0..5u8 {
            let mut block = vec![0x81, 0x00, k * 20, 0x80];
            block.extend(enc.encode(&tone).unwrap());
            webm.extend(element(&[0xa3], &block));
        }
        assert_eq!(webm_frames(&webm).len(), 5);
        let pcm = decode("audio/webm;codecs=opus", 48_000, 1, &webm);
        assert_eq!(pcm.len(), 5 * FRAME_SAMPLES / 2);
    }

    #[test]
    fn raw_pcm_at_24k_stereo_and_48k() {
        let stereo: Vec<u8> = [100i16, 300].iter().cycle().take(960).flat_map(|s| s.to_le_bytes()).collect();
        let pcm = decode("audio/pcm", 24_000, 2, &stereo);
        assert_eq!(pcm.len(), 480);
        assert!(pcm.iter().all(|&s| s == 200));
        let mono48: Vec<u8> = std::iter::repeat_n(0i16, 1920).flat_map(|s| s.to_le_bytes()).collect();
        assert_eq!(decode("", 48_000, 1, &mono48).len(), 960);
        assert!(webm_frames(&[0xff, 0x00]).is_empty());
    }
}
