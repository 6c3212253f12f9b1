-- Realtime voice usage counts toward the account's LLM budget (issue 22): a call's end records
-- one `llm_calls` row of task 'voice' (its tokens and estimated cost) beside `voice_usage`.

-- SQLite cannot change a CHECK in place: rebuild llm_calls (nothing references it).
CREATE TABLE llm_calls_v36 (
    id                 TEXT PRIMARY KEY NOT NULL,
    account_id         TEXT REFERENCES accounts (id) ON DELETE CASCADE,
    session_id         TEXT REFERENCES sessions (id) ON DELETE SET NULL,
    task               TEXT NOT NULL CHECK (task IN ('chat', 'evaluation', 'analysis', 'document_review', 'scenario_generation', 'embedding', 'voice')),
    model              TEXT NOT NULL,
    prompt_tokens      BIGINT NOT NULL DEFAULT 0,
    completion_tokens  BIGINT NOT NULL DEFAULT 0,
    cost_usd           DOUBLE PRECISION NOT NULL DEFAULT 0,
    latency_ms         BIGINT NOT NULL,
    attempts           BIGINT NOT NULL,
    outcome            TEXT NOT NULL CHECK (outcome IN ('ok', 'error')),
    error              TEXT,
    created_at         BIGINT NOT NULL
);
INSERT INTO llm_calls_v36 (id, account_id, session_id, task, model, prompt_tokens, completion_tokens, cost_usd,
    latency_ms, attempts, outcome, error, created_at)
SELECT id, account_id, session_id, task, model, prompt_tokens, completion_tokens, cost_usd,
    latency_ms, attempts, outcome, error, created_at
FROM llm_calls;
DROP TABLE llm_calls;
ALTER TABLE llm_calls_v36 RENAME TO llm_calls;
CREATE INDEX llm_calls_session_idx ON llm_calls (session_id);
CREATE INDEX llm_calls_account_idx ON llm_calls (account_id, created_at);
