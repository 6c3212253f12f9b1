//! Opus encoding and decoding at LiveKit's audio format: 48 kHz mono, 20 ms frames.
//!
//! Everything that enters or leaves a room as audio goes through here, so the rest of the crate
//! deals only in PCM frames of [`FRAME_SAMPLES`] signed 16-bit samples.

use thiserror::Error;

/// Sample rate of every PCM frame the crate accepts or delivers.
pub const SAMPLE_RATE: u32 = 48_000;
/// Samples in one 20 ms mono frame at [`SAMPLE_RATE`].
pub const FRAME_SAMPLES: usize = 960;
/// Frame duration in milliseconds.
pub const FRAME_MS: u64 = 20;

/// Largest Opus packet we produce; 1275 bytes is Opus' own per-frame ceiling.
const MAX_PACKET: usize = 1275;
/// Largest frame a peer may send us (120 ms at 48 kHz is the Opus maximum).
const MAX_DECODED: usize = 5760;

#[derive(Debug, Error)]
pub enum AudioError {
    #[error("a PCM frame must have {FRAME_SAMPLES} samples, got {0}")]
    FrameSize(usize),
    #[error("opus: {0}")]
    Opus(#[from] opus::Error),
}

/// The encoder complexity for speech (Opus' scale is 0-10; libopus defaults to 10).
///
/// `cargo run --release -p proto-trainer-agent --example codec_cost` on our 2-core box, per 20 ms
/// frame at [`SPEECH_BITRATE`]: about 190 us at 10, 150 us at 5, 115 us at 3, 70 us at 1. WebRTC
/// itself uses 5 on constrained devices; the agent encodes every caller frame of every call.
pub const SPEECH_COMPLEXITY: i32 = 5;
/// Mono speech at 32 kb/s is what LiveKit's own speech presets send; libopus' automatic choice
/// at 48 kHz is about 50 kb/s.
pub const SPEECH_BITRATE: i32 = 32_000;

/// Encodes 20 ms mono frames to Opus packets.
pub struct Encoder {
    inner: opus::Encoder,
    /// Reused output buffer: zeroing a fresh one per frame showed in profiles.
    scratch: Vec<u8>,
}

impl Encoder {
    pub fn new() -> Result<Self, AudioError> {
        // VOIP tuning: the agent carries speech, and it enables Opus' speech-oriented tools.
        let mut inner = opus::Encoder::new(SAMPLE_RATE, opus::Channels::Mono, opus::Application::Voip)?;
        inner.set_complexity(SPEECH_COMPLEXITY)?;
        inner.set_bitrate(opus::Bitrate::Bits(SPEECH_BITRATE))?;
        Ok(Self { inner, scratch: vec![0; MAX_PACKET] })
    }

    /// Encodes exactly one frame of [`FRAME_SAMPLES`] samples.
    pub fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>, AudioError> {
        if pcm.len() != FRAME_SAMPLES {
            return Err(AudioError::FrameSize(pcm.len()));
        }
        let n = self.inner.encode(pcm, &mut self.scratch)?;
        Ok(self.scratch[..n].to_vec())
    }
}

/// Decodes a remote track's Opus packets to mono PCM.
///
/// A remote sender may use stereo Opus; a mono decoder downmixes, which is what we want.
pub struct Decoder {
    inner: opus::Decoder,
    /// Reused room for the longest packet (11.5 KB): zeroing a fresh one per packet showed in
    /// profiles.
    scratch: Vec<i16>,
}

impl Decoder {
    pub fn new() -> Result<Self, AudioError> {
        let inner = opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono)?;
        Ok(Self { inner, scratch: vec![0; MAX_DECODED] })
    }

    /// Decodes one packet; the result has as many samples as the packet's duration.
    pub fn decode(&mut self, packet: &[u8]) -> Result<Vec<i16>, AudioError> {
        let n = self.inner.decode(packet, &mut self.scratch, false)?;
        Ok(self.scratch[..n].to_vec())
    }
}

// Hand-written: the inner codec, socket and task handles have no useful Debug, and a token must
// never be printed.
impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder").finish_non_exhaustive()
    }
}

// Hand-written: the inner codec, socket and task handles have no useful Debug, and a token must
// never be printed.
impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f64, start: usize) -> Vec<i16> {
        (0..FRAME_SAMPLES)
            .map(|i| {
                let t = (start + i) as f64 / SAMPLE_RATE as f64;
                (8000.0 * (2.0 * std::f64::consts::PI * freq * t).sin()) as i16
            })
            .collect()
    }

    #[test]
    fn round_trip_keeps_a_tone_audible() {
        let mut enc = Encoder::new().unwrap();
        let mut dec = Decoder::new().unwrap();
        let mut energy = 0f64;
        // A few frames so the codec's look-ahead has settled.
        for k in 0..10 {
            let packet = enc.encode(&tone(440.0, k * FRAME_SAMPLES)).unwrap();
            assert!(!packet.is_empty() && packet.len() <= MAX_PACKET);
            let pcm = dec.decode(&packet).unwrap();
            assert_eq!(pcm.len(), FRAME_SAMPLES);
            if k >= 5 {
                energy += pcm.iter().map(|&s| (s as f64).powi(2)).sum::<f64>();
            }
        }
        let rms = (energy / (5 * FRAME_SAMPLES) as f64).sqrt();
        // The input's RMS is 8000 / sqrt(2) ~ 5657; Opus keeps it within a broad margin.
        assert!(rms > 3000.0 && rms < 8000.0, "rms {rms}");
    }

    #[test]
    fn rejects_wrong_frame_size() {
        let mut enc = Encoder::new().unwrap();
        assert!(matches!(enc.encode(&[0; 10]), Err(AudioError::FrameSize(10))));
    }
}
