//! The caller's voice: reply text rendered to 24 kHz PCM16 mono, the Realtime output format.
//!
//! With `espeak-ng` on `PATH` it is real speech (so a transcriber, a human in the offline demo
//! or a recording sounds like a conversation); otherwise, or with `OPENAI_SIM_TTS=tone`, a tone
//! per word whose length follows the text (still speech-like for VAD and barge-in tests, and
//! cheap). espeak-ng writes 22.05 kHz WAV; it is resampled here (linear interpolation, plenty for
//! a synthetic voice). Renders are cached process-wide by (mode, voice, text) and shared between
//! concurrent requests, so a hundred simulated calls saying the same line run espeak-ng once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

/// Output sample rate.
pub(crate) const RATE: u32 = 24_000;

/// How replies are voiced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TtsMode {
    /// espeak-ng when it is on `PATH` (checked once), else tones. `OPENAI_SIM_TTS=tone|espeak`
    /// overrides.
    #[default]
    Auto,
    /// Always espeak-ng (tones if it fails to run).
    Espeak,
    /// Always tones.
    Tone,
}

type Pcm = Arc<Vec<u8>>;
/// Keyed by (espeak voice or "" for tones, text): OpenAI voices sharing an espeak voice share renders.
type Cache = Mutex<HashMap<(&'static str, String), Arc<OnceCell<Pcm>>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Cache::default)
}

fn espeak_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        std::process::Command::new("espeak-ng")
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    })
}

fn use_espeak(mode: TtsMode) -> bool {
    let mode = match std::env::var("OPENAI_SIM_TTS").ok().as_deref() {
        Some("tone") => TtsMode::Tone,
        Some("espeak") => TtsMode::Espeak,
        _ => mode,
    };
    match mode {
        TtsMode::Tone => false,
        TtsMode::Espeak => true,
        TtsMode::Auto => espeak_available(),
    }
}

/// `text` in `voice`, as PCM16LE 24 kHz mono bytes.
pub(crate) async fn render(mode: TtsMode, voice: &str, text: &str) -> Pcm {
    let variant = if use_espeak(mode) { espeak_voice(voice) } else { "" };
    let cell = {
        let mut cache = cache().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.entry((variant, text.to_owned())).or_default().clone()
    };
    cell.get_or_init(|| async {
        let samples = if !variant.is_empty() {
            match espeak_pcm(variant, text).await {
                Ok(samples) => samples,
                Err(error) => {
                    tracing::warn!(%error, "espeak-ng failed; using a tone");
                    tone_pcm(text)
                }
            }
        } else {
            tone_pcm(text)
        };
        Arc::new(samples.iter().flat_map(|s| s.to_le_bytes()).collect())
    })
    .await
    .clone()
}

/// espeak-ng voices standing in for OpenAI's, so two voices sound different.
fn espeak_voice(voice: &str) -> &'static str {
    match voice {
        "alloy" | "marin" | "shimmer" | "coral" => "en-us+f3",
        "sage" | "ballad" => "en-us+f4",
        "echo" | "cedar" => "en-us+m3",
        _ => "en-us+m1",
    }
}

/// Renders the simulator's default caller lines ahead of time (the binary does this at
/// start-up), so the first calls of a demo or benchmark do not wait for espeak-ng.
pub async fn prerender(mode: TtsMode, voice: &str) {
    let lines = crate::chat::default_caller_lines();
    for line in lines {
        render(mode, voice, line).await;
    }
}

async fn espeak_pcm(variant: &str, text: &str) -> std::io::Result<Vec<i16>> {
    use tokio::io::AsyncWriteExt;
    // A hundred calls with distinct replies must not fork a hundred espeak-ng at once on a
    // two-core machine: two at a time keeps the rest of the simulator responsive.
    static RENDERERS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
    let _permit = RENDERERS.acquire().await.map_err(std::io::Error::other)?;
    let mut child = tokio::process::Command::new("espeak-ng")
        .args(["--stdout", "--stdin", "-s", "165", "-v", variant])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(text.as_bytes()).await?;
        stdin.write_all(b"\n").await?;
    }
    let output = child.wait_with_output().await?;
    if !output.status.success() {
        return Err(std::io::Error::other(format!("espeak-ng exited with {}", output.status)));
    }
    let (rate, samples) = parse_wav(&output.stdout).ok_or_else(|| std::io::Error::other("espeak-ng wrote no WAV"))?;
    Ok(resample(&samples, rate, RATE))
}

/// Mono PCM16 samples and rate from a WAV file; data sizes are ignored (espeak-ng streams with a
/// placeholder size), the data runs to the end.
fn parse_wav(bytes: &[u8]) -> Option<(u32, Vec<i16>)> {
    if bytes.get(..4)? != b"RIFF" || bytes.get(8..12)? != b"WAVE" {
        return None;
    }
    let mut at = 12;
    let mut rate = None;
    let mut channels = 1usize;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let size = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().ok()?) as usize;
        let body = at + 8;
        if id == b"fmt " {
            let fmt = bytes.get(body..body + 16)?;
            channels = usize::from(u16::from_le_bytes([fmt[2], fmt[3]])).max(1);
            rate = Some(u32::from_le_bytes([fmt[4], fmt[5], fmt[6], fmt[7]]));
            if u16::from_le_bytes([fmt[14], fmt[15]]) != 16 {
                return None;
            }
        } else if id == b"data" {
            let data = &bytes[body..];
            let samples =
                data.chunks_exact(2 * channels).map(|frame| i16::from_le_bytes([frame[0], frame[1]])).collect();
            return Some((rate?, samples));
        }
        at = body + size + (size & 1);
    }
    None
}

/// Linear-interpolation resampling.
pub(crate) fn resample(samples: &[i16], from: u32, to: u32) -> Vec<i16> {
    if from == to || samples.is_empty() {
        return samples.to_vec();
    }
    let out_len = (samples.len() as u64 * u64::from(to) / u64::from(from)) as usize;
    let step = f64::from(from) / f64::from(to);
    (0..out_len)
        .map(|i| {
            let position = i as f64 * step;
            let index = position as usize;
            let fraction = position - index as f64;
            let a = f64::from(samples[index.min(samples.len() - 1)]);
            let b = f64::from(samples[(index + 1).min(samples.len() - 1)]);
            (a + (b - a) * fraction).round() as i16
        })
        .collect()
}

/// A tone per word (pitch varying by word, 10 ms fades), pauses between words and longer ones
/// after punctuation: about the length espeak-ng would take.
pub(crate) fn tone_pcm(text: &str) -> Vec<i16> {
    let per_ms = (RATE / 1000) as usize;
    let mut out = Vec::new();
    for (index, word) in text.split_whitespace().enumerate() {
        let letters = word.chars().filter(|c| c.is_alphanumeric()).count().max(1);
        let samples = (60 + 55 * letters) * per_ms;
        let hz = 170.0 + 25.0 * (index % 4) as f64;
        let fade = 10 * per_ms;
        for i in 0..samples {
            let envelope = (i.min(samples - i) as f64 / fade as f64).min(1.0);
            let phase = i as f64 * hz * std::f64::consts::TAU / f64::from(RATE);
            out.push((phase.sin() * 9000.0 * envelope) as i16);
        }
        let pause = if word.ends_with(['.', '?', '!', ',', ';']) { 250 } else { 80 };
        out.resize(out.len() + pause * per_ms, 0);
    }
    if out.is_empty() {
        out.resize(200 * per_ms, 0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tones_follow_the_text_length() {
        let short = tone_pcm("Hi.");
        let long = tone_pcm("I have been feeling really alone lately and I do not know why.");
        assert!(long.len() > 4 * short.len());
        assert!(long.iter().any(|&s| s > 8000));
    }

    #[test]
    fn resampling_keeps_duration() {
        let input = vec![1000i16; 22_050];
        let output = resample(&input, 22_050, 24_000);
        assert_eq!(output.len(), 24_000);
        assert!(output.iter().all(|&s| s == 1000));
    }

    #[test]
    fn wav_parsing_tolerates_streaming_sizes() {
        let mut wav = b"RIFF\xff\xff\xff\x7fWAVEfmt ".to_vec();
        wav.extend_from_slice(&16u32.to_le_bytes());
        wav.extend_from_slice(&[1, 0, 1, 0]);
        wav.extend_from_slice(&22_050u32.to_le_bytes());
        wav.extend_from_slice(&44_100u32.to_le_bytes());
        wav.extend_from_slice(&[2, 0, 16, 0]);
        wav.extend_from_slice(b"data\xff\xff\xff\x7f");
        wav.extend_from_slice(&[1, 0, 2, 0, 3]);
        assert_eq!(parse_wav(&wav), Some((22_050, vec![1, 2])));
    }
}
