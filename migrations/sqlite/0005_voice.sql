-- Voice role-play: per-scenario voice settings, the agent's per-session credential, the call's
-- end (reason, Realtime usage, per-turn metrics), recordings, and the durable job queue that
-- grades ended calls.

-- Who speaks first (a crisis line is answered by the counselor, so by default the counselor),
-- the Realtime voice (NULL: REALTIME_VOICE) and the telephone band-pass on the caller's voice.
ALTER TABLE scenarios ADD COLUMN caller_speaks_first INTEGER NOT NULL DEFAULT 0 CHECK (caller_speaks_first IN (0, 1));
ALTER TABLE scenarios ADD COLUMN voice TEXT;
ALTER TABLE scenarios ADD COLUMN phone_line INTEGER NOT NULL DEFAULT 0 CHECK (phone_line IN (0, 1));

-- joined_at: the agent's call began (the counselor is in the room); a voice session never
-- joined is closed as abandoned by the sweeper and is not a partner's attempt.
ALTER TABLE sessions ADD COLUMN joined_at BIGINT;
ALTER TABLE sessions ADD COLUMN end_reason TEXT CHECK (end_reason IS NULL OR end_reason IN ('counselor_left', 'max_duration', 'silence', 'ended_by_supervisor', 'agent_shutdown', 'failed', 'never_joined', 'replaced'));
-- The agent's credential for this one session: SHA-256 of a 256-bit token, valid until
-- credential_expires_at (shortened when the session ends).
ALTER TABLE sessions ADD COLUMN credential_hash TEXT;
ALTER TABLE sessions ADD COLUMN credential_expires_at BIGINT;
-- A counselor has at most one live voice call; a new one ends the old (the loser of two racing
-- requests fails here and retries).
UPDATE sessions SET status = 'abandoned', end_reason = 'replaced'
    WHERE kind = 'voice' AND status = 'active'
    AND id NOT IN (SELECT MAX(id) FROM sessions WHERE kind = 'voice' AND status = 'active' GROUP BY user_id);
CREATE UNIQUE INDEX sessions_live_voice_key ON sessions (user_id) WHERE kind = 'voice' AND status = 'active';

CREATE TABLE voice_usage (
    session_id           TEXT PRIMARY KEY NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    model                TEXT NOT NULL,
    input_text_tokens    BIGINT NOT NULL DEFAULT 0,
    input_audio_tokens   BIGINT NOT NULL DEFAULT 0,
    output_text_tokens   BIGINT NOT NULL DEFAULT 0,
    output_audio_tokens  BIGINT NOT NULL DEFAULT 0,
    cached_tokens        BIGINT NOT NULL DEFAULT 0,
    input_audio_ms       BIGINT NOT NULL DEFAULT 0,
    output_audio_ms      BIGINT NOT NULL DEFAULT 0,
    cost_usd             DOUBLE PRECISION,
    turn_metrics         TEXT NOT NULL DEFAULT '[]',
    created_at           BIGINT NOT NULL
);

CREATE UNIQUE INDEX recordings_session_key ON recordings (session_id);
CREATE INDEX recordings_created_idx ON recordings (created_at);

-- Background work recorded in the same transaction as its cause. A worker claims a row by
-- setting locked_until (a lease); a crashed worker's lease runs out and another takes the job.
CREATE TABLE jobs (
    id            TEXT PRIMARY KEY NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('evaluate_session')),
    account_id    TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    session_id    TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    attempts      BIGINT NOT NULL DEFAULT 0,
    run_after     BIGINT NOT NULL,
    locked_until  BIGINT,
    locked_by     TEXT,
    last_error    TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX jobs_session_kind_key ON jobs (session_id, kind);
CREATE INDEX jobs_due_idx ON jobs (status, run_after);
