//! Voice calls: per-scenario voice settings, what the agent needs to start a call (its setup and
//! per-session credential), the call's end (Realtime usage with a cost estimate, per-turn
//! metrics, the recording) and the sweeper rules for sessions nobody joined or nobody ended.
//!
//! Ending a call queues its evaluation in the same transaction (`jobs`, see [`crate::jobs`]), so a
//! restart between hang-up and grading loses nothing.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use crate::db::{RowExt, Store};
use crate::domain::{EndReason, JobKind, SessionKind, SessionStatus, Speaker, Timestamp};
use crate::error::{Error, FieldError, Result};
use crate::ids::{AccountId, ScenarioId, SessionId, UserId};
use crate::persona::{Medium, caller_instructions};
use crate::scoped::SessionRef;
use crate::sessions::{NewSession, Session};

/// The voices the Realtime API offers.
pub const REALTIME_VOICES: &[&str] =
    &["alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"];

/// After a session ends its credential stays valid this long, so an agent whose `end` answer was
/// lost can retry it (ending is idempotent); nothing else is accepted for an ended session.
pub const CREDENTIAL_GRACE_MS: i64 = 10 * 60_000;

/// When a supervisor ends a call, grading waits this long for the agent's last turns and its
/// end report (which starts grading at once when it arrives).
pub const SUPERVISOR_END_GRACE_MS: i64 = 5_000;

/// How a voice call of a scenario starts and sounds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScenarioVoice {
    /// The caller speaks first; by default the counselor answers the line, as on a real crisis line.
    #[serde(default)]
    pub caller_speaks_first: bool,
    /// A Realtime voice (`alloy`, `ash`, `ballad`, `coral`, `echo`, `sage`, `shimmer`, `verse`,
    /// `marin`, `cedar`); absent: the service's `REALTIME_VOICE`.
    #[serde(default)]
    pub voice: Option<String>,
    /// Band-limit the caller's voice to telephone range (300-3400 Hz).
    #[serde(default)]
    pub phone_line: bool,
}

impl ScenarioVoice {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(ScenarioVoice {
            caller_speaks_first: row.flag("caller_speaks_first")?,
            voice: row.opt_text("voice")?,
            phone_line: row.flag("phone_line")?,
        })
    }

    pub(crate) fn problems(&self) -> Vec<FieldError> {
        match &self.voice {
            Some(v) if !REALTIME_VOICES.contains(&v.as_str()) => vec![FieldError::new(
                "voice.voice",
                format!("unknown voice `{v}`; allowed: {}", REALTIME_VOICES.join(", ")),
            )],
            _ => Vec::new(),
        }
    }
}

pub(crate) async fn set_scenario_voice(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    scenario_id: ScenarioId,
    voice: &ScenarioVoice,
) -> Result<()> {
    sqlx::query("UPDATE scenarios SET caller_speaks_first = $1, voice = $2, phone_line = $3 WHERE id = $4")
        .bind(voice.caller_speaks_first)
        .bind(voice.voice.as_deref())
        .bind(voice.phone_line)
        .bind(scenario_id.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The service-wide call settings a scenario does not override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallDefaults {
    /// `REALTIME_VOICE`.
    pub voice: String,
    pub max_duration_ms: u64,
    pub silence_timeout_ms: u64,
}

impl Default for CallDefaults {
    fn default() -> Self {
        CallDefaults { voice: "shimmer".into(), max_duration_ms: 30 * 60_000, silence_timeout_ms: 120_000 }
    }
}

/// What a voice call needs to start. `instructions` is the caller persona prompt only (split
/// brain: no grading guidance, policies or rubric reach the voice model).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VoiceSetup {
    #[schema(value_type = Uuid)]
    pub session_id: SessionId,
    pub instructions: String,
    pub voice: String,
    pub caller_speaks_first: bool,
    pub phone_line: bool,
    pub max_duration_ms: u64,
    pub silence_timeout_ms: u64,
    /// Turns already stored, in spoken order (a restarted agent re-seeds the conversation).
    pub prior_turns: Vec<PriorTurn>,
    /// The account's per-session token cap (`accounts.session_token_cap`): the agent ends the
    /// call once its Realtime tokens (input and output, text and audio) reach it. None: no cap.
    #[serde(default)]
    pub session_token_cap: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PriorTurn {
    pub segment_id: Option<String>,
    pub speaker: Speaker,
    pub text: String,
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
}

/// Tokens and audio of a call's Realtime responses, summed over responses and sockets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct RealtimeUsage {
    pub input_text_tokens: u64,
    pub input_audio_tokens: u64,
    pub output_text_tokens: u64,
    pub output_audio_tokens: u64,
    /// Input tokens served from the prompt cache (part of the input counts above).
    pub cached_tokens: u64,
    pub input_audio_ms: u64,
    pub output_audio_ms: u64,
    pub model: String,
}

impl RealtimeUsage {
    /// Every token billed: input and output, text and audio (cached input included), what the
    /// per-session token cap is held against.
    pub fn total_tokens(&self) -> u64 {
        self.input_text_tokens
            .saturating_add(self.input_audio_tokens)
            .saturating_add(self.output_text_tokens)
            .saturating_add(self.output_audio_tokens)
    }
}

/// Per caller turn: latencies in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct TurnMetrics {
    pub segment_id: String,
    /// End of counselor speech to the first caller audio frame out.
    pub response_latency_ms: Option<u32>,
    /// Realtime: response requested to first audio delta.
    pub realtime_first_audio_ms: Option<u32>,
    /// Barge-in: speech started to caller audio stopped.
    pub barge_in_stop_ms: Option<u32>,
    pub underruns: u32,
}

/// The recording the agent wrote, `<session id>.ogg` inside `RECORDINGS_DIR`. The report does
/// not name the file: a name it chose could point one session at another's recording (a
/// credential for session A naming `<B>.ogg`, which A's counselor would then download).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordingMeta {
    pub duration_ms: u64,
    pub bytes: u64,
}

/// The one name a session's recording has inside `RECORDINGS_DIR`, derived from the session id
/// alone (the agent writes it there, the service serves and purges it from there).
pub fn recording_file_name(session_id: SessionId) -> String {
    format!("{session_id}.ogg")
}

/// How a call ended, as the agent reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VoiceEnd {
    pub reason: EndReason,
    #[serde(default)]
    pub usage: Option<RealtimeUsage>,
    #[serde(default)]
    pub turn_metrics: Vec<TurnMetrics>,
    #[serde(default)]
    pub recording: Option<RecordingMeta>,
}

/// A call's stored usage and metrics.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VoiceUsage {
    #[schema(value_type = Uuid)]
    pub session_id: SessionId,
    pub usage: RealtimeUsage,
    /// Estimated from [`realtime_cost_usd`]'s price table; None for an unknown model.
    pub cost_usd: Option<f64>,
    pub turn_metrics: Vec<TurnMetrics>,
}

/// US dollars per million tokens: (text in, cached in, text out, audio in, audio out).
type Prices = (f64, f64, f64, f64, f64);

fn realtime_prices(model: &str) -> Option<Prices> {
    // Longest prefix first: "gpt-realtime-mini" before "gpt-realtime".
    const TABLE: &[(&str, Prices)] = &[
        ("gpt-realtime-mini", (0.60, 0.06, 2.40, 10.0, 20.0)),
        ("gpt-realtime", (4.0, 0.40, 16.0, 32.0, 64.0)),
        ("gpt-4o-mini-realtime", (0.60, 0.30, 2.40, 10.0, 20.0)),
        ("gpt-4o-realtime", (5.0, 2.50, 20.0, 40.0, 80.0)),
    ];
    TABLE.iter().find(|(prefix, _)| model.starts_with(prefix)).map(|(_, p)| *p)
}

/// The cost of a call's Realtime usage in US dollars, from a price table of the known models.
/// Cached tokens are billed at the cached rate and taken off the audio input first (audio is
/// most of a call's cached prefix).
pub fn realtime_cost_usd(usage: &RealtimeUsage) -> Option<f64> {
    let (text_in, cached, text_out, audio_in, audio_out) = realtime_prices(&usage.model)?;
    let cached_tokens = usage.cached_tokens.min(usage.input_text_tokens + usage.input_audio_tokens);
    let cached_audio = cached_tokens.min(usage.input_audio_tokens);
    let cached_text = cached_tokens - cached_audio;
    let m = |tokens: u64, price: f64| tokens as f64 * price / 1_000_000.0;
    let cost = m(usage.input_text_tokens - cached_text, text_in)
        + m(usage.input_audio_tokens - cached_audio, audio_in)
        + m(cached_tokens, cached)
        + m(usage.output_text_tokens, text_out)
        + m(usage.output_audio_tokens, audio_out);
    Some((cost * 1_000_000.0).round() / 1_000_000.0)
}

/// Ends a session inside a transaction: `status` and `reason`, the credential shortened to the
/// grace period, and (for a completed voice call) its evaluation queued to run at `grade_at`.
/// Answers whether this call ended it (false: it had ended already).
pub(crate) async fn close_session_tx(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    session: &Session,
    status: SessionStatus,
    reason: EndReason,
    grade_at: Option<i64>,
) -> Result<bool> {
    let now = Timestamp::now().millis();
    let grace = now + CREDENTIAL_GRACE_MS;
    let done = sqlx::query(
        "UPDATE sessions SET status = $1, end_reason = $2, ended_at = $3, \
         credential_expires_at = CASE WHEN credential_expires_at > $4 THEN $4 ELSE credential_expires_at END \
         WHERE id = $5 AND status = 'active'",
    )
    .bind(status.as_str())
    .bind(reason.as_str())
    .bind(now)
    .bind(grace)
    .bind(session.id.to_string())
    .execute(&mut **tx)
    .await?;
    let ended = done.rows_affected() == 1;
    if let Some(at) = grade_at
        && status == SessionStatus::Completed
        && session.kind == SessionKind::Voice
        && ended
    {
        crate::jobs::enqueue_tx(tx, JobKind::EvaluateSession, session.account_id, session.id, None, at).await?;
    }
    Ok(ended)
}

impl Store {
    /// Starts a voice session for a counselor, ending their previous live one (a counselor has at
    /// most one: a partial unique index holds it). Everything happens in one transaction on one
    /// pooled connection: the counselor's user row locked (PostgreSQL; SQLite's `BEGIN
    /// IMMEDIATE` already serialises writers), the live call ended, the new session inserted
    /// with the agent's credential (stored hashed with its expiry). Holding one connection while
    /// waiting for a second one is what exhausted the pool under concurrent requests (each held
    /// the lock's connection and waited for another to end the previous call); and at most
    /// [`crate::db::VOICE_STARTS`] starts of this process hold a connection at all, so a burst
    /// of them queues here and leaves the pool to other requests.
    pub async fn start_voice_session(
        &self,
        account_id: AccountId,
        new: &NewSession,
        credential: Option<(&str, Timestamp)>,
    ) -> Result<(Session, Vec<SessionId>)> {
        let turn = self.voice_starts.acquire().await.map_err(|_| Error::Database(sqlx::Error::PoolClosed))?;
        let mut tx = self.write_tx().await?;
        // NO KEY UPDATE, so the session insert's foreign-key check (KEY SHARE) on the same row is
        // not blocked by it.
        let lock = format!("SELECT 1 FROM users WHERE id = $1 AND account_id = $2{}", crate::db::for_update(&tx));
        sqlx::query(&lock).bind(new.user_id.to_string()).bind(account_id.to_string()).fetch_optional(&mut *tx).await?;
        let replaced = end_live_voice_sessions_tx(&mut tx, account_id, new.user_id).await?;
        let id = crate::sessions::insert_session_tx(&mut tx, account_id, new).await?;
        if let Some((hash, expires_at)) = credential {
            sqlx::query("UPDATE sessions SET credential_hash = $1, credential_expires_at = $2 WHERE id = $3")
                .bind(hash)
                .bind(expires_at.millis())
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        drop(turn);
        if !replaced.is_empty() {
            self.jobs_wake.notify_waiters();
        }
        Ok((self.session(account_id, id).await?, replaced))
    }

    /// The session a per-session credential opens, if the hash matches and it has not expired.
    pub async fn session_for_credential(
        &self,
        session_id: SessionId,
        credential_hash: &str,
    ) -> Result<Option<SessionRef>> {
        let row = sqlx::query(
            "SELECT id, account_id FROM sessions WHERE id = $1 AND credential_hash = $2 AND credential_expires_at > $3",
        )
        .bind(session_id.to_string())
        .bind(credential_hash)
        .bind(Timestamp::now().millis())
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => Ok(Some(self.session_in(r.uuid("account_id")?, session_id).await?)),
            None => Ok(None),
        }
    }

    /// The call's setup, for the agent that has just joined the counselor in the room: marks the
    /// session joined (so it is no longer swept as abandoned) and builds the caller's
    /// instructions from the scenario persona alone.
    pub async fn voice_setup(&self, session: &SessionRef, defaults: &CallDefaults) -> Result<VoiceSetup> {
        // Read again: the handle's row may be older than the call's last change.
        let session = self.session(session.account_id(), session.id()).await?;
        let session_id = session.id;
        if session.kind != SessionKind::Voice {
            return Err(Error::invalid("sessionId", "not a voice session"));
        }
        if session.status != SessionStatus::Active {
            return Err(Error::conflict("the session has ended"));
        }
        sqlx::query("UPDATE sessions SET joined_at = COALESCE(joined_at, $1) WHERE id = $2")
            .bind(Timestamp::now().millis())
            .bind(session_id.to_string())
            .execute(&self.pool)
            .await?;
        let (persona, voice, profile) = match session.scenario_id {
            Some(id) => {
                let scenario = self.scenario(session.account_id, id).await?;
                (Some(scenario.prompt), scenario.voice, scenario.risk_profile)
            }
            None => (None, ScenarioVoice::default(), None),
        };
        let rows = sqlx::query(
            "SELECT segment_id, speaker, text, started_ms, ended_ms FROM transcript_turns WHERE session_id = $1 \
             ORDER BY started_ms, created_at, id",
        )
        .bind(session_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        let prior_turns = rows
            .iter()
            .map(|r| {
                Ok(PriorTurn {
                    segment_id: r.opt_text("segment_id")?,
                    speaker: r.parsed("speaker")?,
                    text: r.text("text")?,
                    started_ms: r.int("started_ms")?,
                    ended_ms: r.opt_int("ended_ms")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let budget = self.account_budget(session.account_id).await?;
        Ok(VoiceSetup {
            session_id,
            instructions: caller_instructions(persona.as_deref(), profile.as_ref(), Medium::Voice),
            voice: voice.voice.unwrap_or_else(|| defaults.voice.clone()),
            caller_speaks_first: voice.caller_speaks_first,
            phone_line: voice.phone_line,
            max_duration_ms: defaults.max_duration_ms,
            silence_timeout_ms: defaults.silence_timeout_ms,
            prior_turns,
            session_token_cap: budget.session_token_cap.map(|c| c.max(0) as u64),
        })
    }

    /// The agent's end of a call, in one transaction: the session completed with its reason
    /// (unless it had ended already, e.g. by a supervisor), the usage with its cost estimate and
    /// the per-turn metrics, the recording row, and the evaluation queued to run now. Repeating
    /// it changes nothing.
    pub async fn end_voice_session(&self, session: &SessionRef, end: &VoiceEnd) -> Result<Session> {
        let (account_id, session_id) = (session.account_id(), session.id());
        let session = self.session(account_id, session_id).await?;
        if session.kind != SessionKind::Voice {
            return Err(Error::invalid("sessionId", "not a voice session"));
        }
        let now = Timestamp::now().millis();
        let mut tx = self.write_tx().await?;
        // A call in which the counselor never spoke is not an attempt: abandoned, not graded
        // (its feedback page says so), and not counted against the assignment.
        let spoke: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM transcript_turns WHERE session_id = $1 AND speaker = 'counselor'")
                .bind(session_id.to_string())
                .fetch_one(&mut *tx)
                .await?;
        let status = if spoke > 0 { SessionStatus::Completed } else { SessionStatus::Abandoned };
        close_session_tx(&mut tx, &session, status, end.reason, Some(now)).await?;
        // A supervisor's end queued grading after a grace period; the agent's report is what it
        // waited for, so start now.
        sqlx::query("UPDATE jobs SET run_after = $1 WHERE session_id = $2 AND status = 'pending' AND run_after > $1")
            .bind(now)
            .bind(session_id.to_string())
            .execute(&mut *tx)
            .await?;
        let usage = end.usage.clone().unwrap_or_default();
        let cost_usd = realtime_cost_usd(&usage);
        let recorded = sqlx::query(
            "INSERT INTO voice_usage (session_id, model, input_text_tokens, input_audio_tokens, output_text_tokens, \
             output_audio_tokens, cached_tokens, input_audio_ms, output_audio_ms, cost_usd, turn_metrics, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (session_id) DO NOTHING",
        )
        .bind(session_id.to_string())
        .bind(&usage.model)
        .bind(usage.input_text_tokens as i64)
        .bind(usage.input_audio_tokens as i64)
        .bind(usage.output_text_tokens as i64)
        .bind(usage.output_audio_tokens as i64)
        .bind(usage.cached_tokens as i64)
        .bind(usage.input_audio_ms as i64)
        .bind(usage.output_audio_ms as i64)
        .bind(cost_usd)
        .bind(serde_json::to_string(&end.turn_metrics).map_err(|e| Error::Corrupt(e.to_string()))?)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        // The call's spend counts toward the account's budget like any LLM call; with its usage
        // row only, so a repeated end records it once.
        if recorded == 1 {
            crate::ai::record_voice_spend_tx(&mut tx, &session, &usage, cost_usd, now).await?;
        }
        if let Some(rec) = &end.recording {
            sqlx::query(
                "INSERT INTO recordings (id, account_id, session_id, content_type, byte_size, duration_ms, storage_path, created_at) \
                 VALUES ($1, $2, $3, 'audio/ogg', $4, $5, $6, $7) ON CONFLICT (session_id) DO NOTHING",
            )
            .bind(crate::domain::new_id().to_string())
            .bind(session.account_id.to_string())
            .bind(session_id.to_string())
            .bind(rec.bytes as i64)
            .bind(rec.duration_ms as i64)
            .bind(recording_file_name(session_id))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.jobs_wake.notify_waiters();
        self.session(account_id, session_id).await
    }

    /// A supervisor (or the counselor) ends a live session. A voice call is completed and graded
    /// after [`SUPERVISOR_END_GRACE_MS`] (sooner when the agent reports its end); the agent sees
    /// it between turns and hangs up. Ending an ended session changes nothing.
    pub async fn end_session_elsewhere(&self, account_id: AccountId, session_id: SessionId) -> Result<Session> {
        let session = self.session(account_id, session_id).await?;
        let mut tx = self.write_tx().await?;
        let grade_at = Timestamp::now().millis() + SUPERVISOR_END_GRACE_MS;
        close_session_tx(&mut tx, &session, SessionStatus::Completed, EndReason::EndedBySupervisor, Some(grade_at))
            .await?;
        tx.commit().await?;
        self.jobs_wake.notify_waiters();
        self.session(account_id, session_id).await
    }

    /// Whether the session is no longer active (ended by a supervisor, replaced, swept).
    pub async fn session_ended(&self, session: &SessionRef) -> Result<bool> {
        Ok(self.session(session.account_id(), session.id()).await?.status != SessionStatus::Active)
    }

    pub async fn voice_usage(&self, session: &SessionRef) -> Result<Option<VoiceUsage>> {
        let session_id = session.id();
        let row = sqlx::query("SELECT * FROM voice_usage WHERE session_id = $1")
            .bind(session_id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        let Some(r) = row else { return Ok(None) };
        let n = |c: &str| r.int(c).map(|v| v.max(0) as u64);
        Ok(Some(VoiceUsage {
            session_id,
            usage: RealtimeUsage {
                input_text_tokens: n("input_text_tokens")?,
                input_audio_tokens: n("input_audio_tokens")?,
                output_text_tokens: n("output_text_tokens")?,
                output_audio_tokens: n("output_audio_tokens")?,
                cached_tokens: n("cached_tokens")?,
                input_audio_ms: n("input_audio_ms")?,
                output_audio_ms: n("output_audio_ms")?,
                model: r.text("model")?,
            },
            cost_usd: r.try_get_f64_opt("cost_usd")?,
            turn_metrics: r.json("turn_metrics")?,
        }))
    }

    /// Closes voice sessions whose room the counselor never joined within `join_timeout_ms` as
    /// abandoned (`never_joined`), and completes (and grades) joined ones still active after
    /// `max_live_ms`, whose agent must have died. Answers how many of each.
    pub async fn sweep_voice_sessions(&self, join_timeout_ms: i64, max_live_ms: i64) -> Result<(u64, u64)> {
        let now = Timestamp::now().millis();
        let unjoined = sqlx::query(
            "UPDATE sessions SET status = 'abandoned', end_reason = 'never_joined', ended_at = $1, \
             credential_expires_at = $1 \
             WHERE kind = 'voice' AND status = 'active' AND joined_at IS NULL AND created_at < $2",
        )
        .bind(now)
        .bind(now - join_timeout_ms)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let stale = sqlx::query(&format!(
            "SELECT {} FROM sessions WHERE kind = 'voice' AND status = 'active' AND joined_at IS NOT NULL AND joined_at < $1",
            crate::sessions::SESSION_COLUMNS
        ))
        .bind(now - max_live_ms)
        .fetch_all(&self.pool)
        .await?;
        let mut failed = 0;
        for row in &stale {
            let session = Session::from_row(row)?;
            let mut tx = self.write_tx().await?;
            if close_session_tx(&mut tx, &session, SessionStatus::Completed, EndReason::Failed, Some(now)).await? {
                failed += 1;
            }
            tx.commit().await?;
        }
        if failed > 0 {
            self.jobs_wake.notify_waiters();
        }
        Ok((unjoined, failed))
    }
}

/// Ends a counselor's live voice sessions, in the caller's transaction, because they started
/// another: completed (and graded) when the counselor spoke, else abandoned.
async fn end_live_voice_sessions_tx(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    account_id: AccountId,
    user_id: UserId,
) -> Result<Vec<SessionId>> {
    let rows = sqlx::query(&format!(
        "SELECT {} FROM sessions WHERE account_id = $1 AND user_id = $2 AND kind = 'voice' AND status = 'active'",
        crate::sessions::SESSION_COLUMNS
    ))
    .bind(account_id.to_string())
    .bind(user_id.to_string())
    .fetch_all(&mut **tx)
    .await?;
    let now = Timestamp::now().millis();
    let mut ended = Vec::new();
    for row in &rows {
        let session = Session::from_row(row)?;
        let spoke = sqlx::query("SELECT 1 FROM transcript_turns WHERE session_id = $1 AND speaker = 'counselor'")
            .bind(session.id.to_string())
            .fetch_optional(&mut **tx)
            .await?
            .is_some();
        let status = if spoke { SessionStatus::Completed } else { SessionStatus::Abandoned };
        if close_session_tx(tx, &session, status, EndReason::Replaced, Some(now)).await? {
            ended.push(session.id);
        }
    }
    Ok(ended)
}

trait FloatOpt {
    fn try_get_f64_opt(&self, col: &str) -> Result<Option<f64>>;
}

impl FloatOpt for AnyRow {
    fn try_get_f64_opt(&self, col: &str) -> Result<Option<f64>> {
        use sqlx::Row;
        self.try_get::<Option<f64>, _>(col).map_err(|e| Error::Corrupt(format!("column {col}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_uses_the_price_table_and_cached_rate() {
        let usage = RealtimeUsage {
            input_text_tokens: 1_000,
            input_audio_tokens: 10_000,
            output_text_tokens: 500,
            output_audio_tokens: 5_000,
            cached_tokens: 4_000,
            model: "gpt-realtime-2025-08-28".into(),
            ..Default::default()
        };
        // 1000*4 + 6000*32 + 4000*0.4 + 500*16 + 5000*64 per million.
        let want = (4_000.0 + 192_000.0 + 1_600.0 + 8_000.0 + 320_000.0) / 1_000_000.0;
        assert!((realtime_cost_usd(&usage).expect("known") - want).abs() < 1e-9);
        let mini = RealtimeUsage { model: "gpt-realtime-mini".into(), ..usage.clone() };
        assert!(realtime_cost_usd(&mini).expect("known") < realtime_cost_usd(&usage).expect("known"));
        assert_eq!(realtime_cost_usd(&RealtimeUsage { model: "other".into(), ..usage }), None);
    }

    #[test]
    fn a_recording_is_named_by_its_session_alone() {
        let id = SessionId::from_uuid(uuid::Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001));
        assert_eq!(recording_file_name(id), "01930000-0000-7000-8000-000000000001.ogg");
        // An old agent's report naming a file is refused, not obeyed.
        let report = r#"{"reason":"counselorLeft","recording":{"file":"../b.ogg","durationMs":1,"bytes":1}}"#;
        assert!(serde_json::from_str::<VoiceEnd>(report).is_err());
    }
}
