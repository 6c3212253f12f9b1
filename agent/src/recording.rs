//! Server-side call recording (the backend helper owns the real Ogg/Opus writer).
//!
//! This is the bridge's minimal version of the interface in `tools/VOICE-INTERFACES.md`: the same
//! calls, writing raw interleaved stereo PCM (counselor left, caller right, 48 kHz s16le) through
//! a buffered writer, so the media loop's calls and the call end's [`RecordingInfo`] are real.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::audio::FRAME_SAMPLES;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingInfo {
    pub path: PathBuf,
    pub duration_ms: u64,
    pub bytes: u64,
}

/// Stereo recording, time-aligned by the call clock: one [`Recorder::tick`] per 20 ms.
pub struct Recorder {
    path: PathBuf,
    out: std::io::BufWriter<std::fs::File>,
    ticks: u64,
    bytes: u64,
    frame: Vec<u8>,
}

impl Recorder {
    pub fn create(path: &Path) -> std::io::Result<Recorder> {
        let file = std::fs::File::create(path)?;
        Ok(Recorder {
            path: path.to_owned(),
            out: std::io::BufWriter::with_capacity(64 * 1024, file),
            ticks: 0,
            bytes: 0,
            frame: vec![0; FRAME_SAMPLES * 4],
        })
    }

    /// Called once per 20 ms tick with whatever each side had in that tick (None = silence).
    pub fn tick(&mut self, counselor: Option<&[i16]>, caller: Option<&[i16]>) -> std::io::Result<()> {
        for i in 0..FRAME_SAMPLES {
            let l = counselor.and_then(|f| f.get(i).copied()).unwrap_or(0).to_le_bytes();
            let r = caller.and_then(|f| f.get(i).copied()).unwrap_or(0).to_le_bytes();
            self.frame[i * 4..i * 4 + 2].copy_from_slice(&l);
            self.frame[i * 4 + 2..i * 4 + 4].copy_from_slice(&r);
        }
        self.out.write_all(&self.frame)?;
        self.ticks += 1;
        self.bytes += self.frame.len() as u64;
        Ok(())
    }

    pub fn finish(mut self) -> std::io::Result<RecordingInfo> {
        self.out.flush()?;
        Ok(RecordingInfo { path: self.path, duration_ms: self.ticks * 20, bytes: self.bytes })
    }
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").field("path", &self.path).field("ticks", &self.ticks).finish()
    }
}
