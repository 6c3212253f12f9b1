-- Authentication: server-side login sessions, forced password change, shared rate-limit windows.

ALTER TABLE users ADD COLUMN password_must_change INTEGER NOT NULL DEFAULT 0 CHECK (password_must_change IN (0, 1));

-- The cookie carries a random token; only its SHA-256 is stored, so a copy of the database does
-- not hand out live sessions.
CREATE TABLE auth_sessions (
    id            TEXT PRIMARY KEY NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    account_id    TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    csrf_token    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    ip            TEXT,
    user_agent    TEXT
);
CREATE INDEX auth_sessions_user_idx ON auth_sessions (user_id);
CREATE INDEX auth_sessions_expiry_idx ON auth_sessions (expires_at);

-- Fixed-window counters, in the database so that every admin replica counts the same hits.
CREATE TABLE rate_limits (
    bucket        TEXT PRIMARY KEY NOT NULL,
    window_start  BIGINT NOT NULL,
    hits          BIGINT NOT NULL
);

CREATE INDEX api_keys_account_idx ON api_keys (account_id, created_at);
