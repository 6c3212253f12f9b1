//! A file-backed [`TurnStore`] for live tests, benchmarks and local runs without the store:
//! each call gets a directory `<base>/<room>/` with `turns.jsonl` (one turn per line, appended
//! as turns become final, idempotent by segment id) and `end.json` at the end. A file named
//! `ended-elsewhere` in it plays the supervisor ending the session. The call setup is read from
//! `<base>/setup.json` when present (camelCase, every field optional).

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use crate::turns::{BoxFuture, CallEnd, CallSetup, SpokenTurn, TurnStore, TurnStoreError};

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct SetupFile {
    instructions: Option<String>,
    voice: Option<String>,
    caller_speaks_first: bool,
    phone_line: bool,
    max_duration_secs: Option<u64>,
    silence_timeout_secs: Option<u64>,
}

#[derive(Debug)]
pub struct FileTurnStore {
    base: PathBuf,
    dir: PathBuf,
    written: Mutex<HashSet<String>>,
}

impl FileTurnStore {
    /// The store of the call in `room` under `base`.
    pub fn new(base: impl Into<PathBuf>, room: &str) -> std::io::Result<Self> {
        let base = base.into();
        let safe: String =
            room.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
        let dir = base.join(safe);
        std::fs::create_dir_all(&dir)?;
        Ok(FileTurnStore { base, dir, written: Mutex::new(HashSet::new()) })
    }

    fn io(e: std::io::Error) -> TurnStoreError {
        TurnStoreError::Unavailable(e.to_string())
    }
}

impl TurnStore for FileTurnStore {
    fn setup(&self) -> BoxFuture<'_, Result<CallSetup, TurnStoreError>> {
        Box::pin(async move {
            let file: SetupFile = match std::fs::read(self.base.join("setup.json")) {
                Ok(bytes) => {
                    serde_json::from_slice(&bytes).map_err(|e| TurnStoreError::Fatal(format!("setup.json: {e}")))?
                }
                Err(_) => SetupFile::default(),
            };
            Ok(CallSetup {
                session_id: uuid::Uuid::now_v7(),
                instructions: file
                    .instructions
                    .unwrap_or_else(|| "You are a person calling a crisis line. Speak briefly and naturally.".into()),
                voice: file.voice.unwrap_or_else(|| "alloy".into()),
                caller_speaks_first: file.caller_speaks_first,
                phone_line: file.phone_line,
                max_duration: Duration::from_secs(file.max_duration_secs.unwrap_or(1800)),
                silence_timeout: Duration::from_secs(file.silence_timeout_secs.unwrap_or(120)),
                prior_turns: Vec::new(),
                token_cap: None,
            })
        })
    }

    fn append<'a>(&'a self, turns: &'a [SpokenTurn]) -> BoxFuture<'a, Result<(), TurnStoreError>> {
        Box::pin(async move {
            let mut written = self.written.lock().expect("lock");
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join("turns.jsonl"))
                .map_err(Self::io)?;
            for turn in turns {
                if written.contains(&turn.segment_id) {
                    continue;
                }
                let line = serde_json::json!({
                    "segmentId": turn.segment_id,
                    "speaker": turn.speaker,
                    "text": turn.text,
                    "startedMs": turn.started_ms,
                    "endedMs": turn.ended_ms,
                    "cut": turn.cut,
                });
                writeln!(file, "{line}").map_err(Self::io)?;
                written.insert(turn.segment_id.clone());
            }
            Ok(())
        })
    }

    fn end(&self, end: CallEnd) -> BoxFuture<'_, Result<(), TurnStoreError>> {
        Box::pin(async move {
            let reason = format!("{:?}", end.reason);
            let reason = reason[..1].to_lowercase() + &reason[1..];
            let json = serde_json::json!({
                "reason": reason,
                "usage": end.usage,
                "turnMetrics": end.turn_metrics,
                "recording": end.recording.as_ref().map(|r| serde_json::json!({
                    "path": r.path, "durationMs": r.duration_ms, "bytes": r.bytes,
                })),
            });
            let json = serde_json::to_vec_pretty(&json).map_err(|e| TurnStoreError::Fatal(e.to_string()))?;
            std::fs::write(self.dir.join("end.json"), json).map_err(Self::io)
        })
    }

    fn ended_elsewhere(&self) -> BoxFuture<'_, Result<bool, TurnStoreError>> {
        Box::pin(async move { Ok(self.dir.join("ended-elsewhere").exists()) })
    }
}
