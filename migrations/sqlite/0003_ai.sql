-- The AI pipeline: who is evaluating a session right now, what every LLM call cost, policy
-- passages for retrieval, post-session analyses.

-- Claimed by the one evaluator that calls the LLM; others wait for its result instead of paying
-- for a second evaluation. A stale claim (a crashed evaluator) may be taken over.
ALTER TABLE sessions ADD COLUMN evaluation_started_at BIGINT;
ALTER TABLE sessions ADD COLUMN evaluation_error TEXT;

CREATE TABLE llm_calls (
    id                 TEXT PRIMARY KEY NOT NULL,
    account_id         TEXT REFERENCES accounts (id) ON DELETE CASCADE,
    session_id         TEXT REFERENCES sessions (id) ON DELETE SET NULL,
    task               TEXT NOT NULL CHECK (task IN ('chat', 'evaluation', 'analysis', 'document_review', 'scenario_generation', 'embedding')),
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
CREATE INDEX llm_calls_session_idx ON llm_calls (session_id);
CREATE INDEX llm_calls_account_idx ON llm_calls (account_id, created_at);

CREATE TABLE policy_chunks (
    id            TEXT PRIMARY KEY NOT NULL,
    policy_id     TEXT NOT NULL REFERENCES account_policies (id) ON DELETE CASCADE,
    account_id    TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    chunk_index   BIGINT NOT NULL,
    text          TEXT NOT NULL,
    -- JSON array of floats; NULL when no embeddings provider was configured at upload.
    embedding     TEXT,
    embedding_model TEXT,
    created_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX policy_chunks_key ON policy_chunks (policy_id, chunk_index);
CREATE INDEX policy_chunks_account_idx ON policy_chunks (account_id);

CREATE TABLE session_analyses (
    id            TEXT PRIMARY KEY NOT NULL,
    session_id    TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    findings      BIGINT NOT NULL CHECK (findings >= 0),
    summary       TEXT NOT NULL,
    model         TEXT NOT NULL,
    raw_output    TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
-- Analysis is idempotent: one per session.
CREATE UNIQUE INDEX session_analyses_session_key ON session_analyses (session_id);

ALTER TABLE session_flags ADD COLUMN turns TEXT NOT NULL DEFAULT '[]';
