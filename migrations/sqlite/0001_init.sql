-- Proto Trainer schema, SQLite flavour. Keep in step with ../postgres/0001_init.sql: the shared
-- store test suite runs against both. Timestamps are Unix epoch milliseconds (BIGINT) on both
-- backends so one set of queries serves both; ids are UUIDv7 text. SQLite booleans are INTEGER 0/1: sqlx's Any driver cannot read
-- SQLite's BOOLEAN affinity.

CREATE TABLE accounts (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL CHECK (length(trim(name)) > 0),
    created_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX accounts_name_key ON accounts (lower(name));

-- The one list of scenario categories per account (PRODUCT.md): validation reads it, the API
-- serves it, scenarios reference it.
CREATE TABLE account_categories (
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    position    BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (account_id, name)
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,
    account_id    TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    email         TEXT NOT NULL CHECK (email = lower(email) AND email LIKE '%_@_%'),
    display_name  TEXT NOT NULL CHECK (length(trim(display_name)) > 0),
    role          TEXT NOT NULL CHECK (role IN ('counselor', 'supervisor', 'admin')),
    external_id   TEXT,
    active        INTEGER NOT NULL DEFAULT TRUE CHECK (active IN (0, 1)),
    is_demo       INTEGER NOT NULL DEFAULT FALSE CHECK (is_demo IN (0, 1)),
    password_hash TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE UNIQUE INDEX users_external_id_key ON users (account_id, external_id) WHERE external_id IS NOT NULL;
CREATE INDEX users_account_role_idx ON users (account_id, role);

CREATE TABLE scenarios (
    id                        TEXT PRIMARY KEY NOT NULL,
    account_id                TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    title                     TEXT NOT NULL CHECK (length(trim(title)) > 0),
    prompt                    TEXT NOT NULL CHECK (length(trim(prompt)) > 0),
    description               TEXT NOT NULL DEFAULT '',
    mode                      TEXT NOT NULL CHECK (mode IN ('phone', 'chat')),
    category                  TEXT NOT NULL,
    skills                    TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(skills)),
    difficulty                TEXT CHECK (difficulty IN ('beginner', 'intermediate', 'advanced')),
    estimated_time_minutes    BIGINT CHECK (estimated_time_minutes BETWEEN 1 AND 600),
    relevant_policy_sections  TEXT NOT NULL DEFAULT '',
    evaluator_context         TEXT NOT NULL DEFAULT '' CHECK (length(evaluator_context) <= 50000),
    is_one_time               INTEGER NOT NULL DEFAULT FALSE CHECK (is_one_time IN (0, 1)),
    created_by                TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at                BIGINT NOT NULL,
    updated_at                BIGINT NOT NULL,
    FOREIGN KEY (account_id, category) REFERENCES account_categories (account_id, name)
        ON UPDATE CASCADE ON DELETE RESTRICT
);
-- Reusable scenarios have unique titles per account (case-insensitive); one-time scenarios are
-- private to their single assignment and may repeat a title.
CREATE UNIQUE INDEX scenarios_title_key ON scenarios (account_id, lower(title)) WHERE is_one_time = FALSE;
-- Lists walk this index newest-first and stop at the page size instead of sorting every row.
CREATE INDEX scenarios_account_idx ON scenarios (account_id, created_at, id);

CREATE TABLE assignments (
    id            TEXT PRIMARY KEY NOT NULL,
    account_id    TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    scenario_id   TEXT NOT NULL REFERENCES scenarios (id) ON DELETE RESTRICT,
    counselor_id  TEXT NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    assigned_by   TEXT REFERENCES users (id) ON DELETE SET NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'in_progress', 'completed')),
    due_at        BIGINT,
    notes         TEXT NOT NULL DEFAULT '',
    started_at    BIGINT,
    completed_at  BIGINT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    CHECK ((status = 'completed') = (completed_at IS NOT NULL))
);
-- One active (not completed) assignment per counselor and scenario; more practice after completion.
CREATE UNIQUE INDEX assignments_active_key ON assignments (counselor_id, scenario_id) WHERE status <> 'completed';
CREATE INDEX assignments_account_idx ON assignments (account_id, created_at, id);
CREATE INDEX assignments_scenario_idx ON assignments (scenario_id);

CREATE TABLE sessions (
    id              TEXT PRIMARY KEY NOT NULL,
    account_id      TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    assignment_id   TEXT REFERENCES assignments (id) ON DELETE RESTRICT,
    scenario_id     TEXT REFERENCES scenarios (id) ON DELETE RESTRICT,
    attempt_number  BIGINT,
    kind            TEXT NOT NULL CHECK (kind IN ('chat', 'voice')),
    status          TEXT NOT NULL CHECK (status IN ('active', 'completed', 'abandoned')),
    room_name       TEXT,
    started_at      BIGINT NOT NULL,
    ended_at        BIGINT,
    created_at      BIGINT NOT NULL,
    CHECK ((assignment_id IS NULL) = (attempt_number IS NULL))
);
CREATE UNIQUE INDEX sessions_attempt_key ON sessions (assignment_id, attempt_number) WHERE assignment_id IS NOT NULL;
CREATE UNIQUE INDEX sessions_room_key ON sessions (room_name) WHERE room_name IS NOT NULL;
CREATE INDEX sessions_account_idx ON sessions (account_id, created_at, id);
CREATE INDEX sessions_assignment_idx ON sessions (assignment_id);
CREATE INDEX sessions_user_idx ON sessions (user_id, created_at);

-- Turns are ordered by when they were spoken (started_ms from the session start), not by when
-- their transcription arrived. segment_id lets an agent re-send a turn without duplicating it.
CREATE TABLE transcript_turns (
    id          TEXT PRIMARY KEY NOT NULL,
    session_id  TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    speaker     TEXT NOT NULL CHECK (speaker IN ('counselor', 'caller', 'system')),
    text        TEXT NOT NULL,
    started_ms  BIGINT NOT NULL CHECK (started_ms >= 0),
    ended_ms    BIGINT CHECK (ended_ms IS NULL OR ended_ms >= started_ms),
    segment_id  TEXT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX transcript_turns_order_idx ON transcript_turns (session_id, started_ms, created_at);
CREATE UNIQUE INDEX transcript_turns_segment_key ON transcript_turns (session_id, segment_id) WHERE segment_id IS NOT NULL;

CREATE TABLE evaluations (
    id                TEXT PRIMARY KEY NOT NULL,
    session_id        TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    overall_score     DOUBLE PRECISION NOT NULL CHECK (overall_score BETWEEN 0 AND 100),
    criteria          TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(criteria)),
    strengths         TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(strengths)),
    areas_to_improve  TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(areas_to_improve)),
    model             TEXT NOT NULL,
    raw_output        TEXT NOT NULL,
    created_at        BIGINT NOT NULL
);
-- At most one evaluation per session, even when two requests race.
CREATE UNIQUE INDEX evaluations_session_key ON evaluations (session_id);

CREATE TABLE session_flags (
    id            TEXT PRIMARY KEY NOT NULL,
    account_id    TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    session_id    TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    flag_type     TEXT NOT NULL CHECK (flag_type IN ('suicide_not_asked', 'missed_plan_or_means', 'coercion_without_imminent_risk', 'missed_rescue', 'dismissive_language', 'medical_advice', 'policy_violation', 'caller_inconsistency', 'ai_caller_problem', 'other')),
    severity      TEXT NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    source        TEXT NOT NULL CHECK (source IN ('evaluation', 'analysis', 'user_feedback')),
    status        TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'reviewed', 'dismissed')),
    details       TEXT NOT NULL,
    review_note   TEXT,
    reviewed_by   TEXT REFERENCES users (id) ON DELETE SET NULL,
    reviewed_at   BIGINT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    CHECK ((status = 'open') = (reviewed_at IS NULL))
);
CREATE INDEX session_flags_account_idx ON session_flags (account_id, status, created_at);
CREATE INDEX session_flags_session_idx ON session_flags (session_id);

CREATE TABLE recordings (
    id            TEXT PRIMARY KEY NOT NULL,
    account_id    TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    session_id    TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    content_type  TEXT NOT NULL,
    byte_size     BIGINT NOT NULL CHECK (byte_size >= 0),
    duration_ms   BIGINT CHECK (duration_ms IS NULL OR duration_ms >= 0),
    storage_path  TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX recordings_session_idx ON recordings (session_id);

CREATE TABLE document_reviews (
    id                  TEXT PRIMARY KEY NOT NULL,
    account_id          TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    session_id          TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    user_id             TEXT NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    file_name           TEXT NOT NULL,
    extracted_text      TEXT NOT NULL,
    completeness_score  BIGINT NOT NULL CHECK (completeness_score BETWEEN 0 AND 100),
    accuracy_score      BIGINT NOT NULL CHECK (accuracy_score BETWEEN 0 AND 100),
    consistency_score   BIGINT NOT NULL CHECK (consistency_score BETWEEN 0 AND 100),
    gaps                TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(gaps)),
    model               TEXT NOT NULL,
    raw_output          TEXT NOT NULL,
    created_at          BIGINT NOT NULL
);
CREATE INDEX document_reviews_session_idx ON document_reviews (session_id);

CREATE TABLE account_policies (
    id            TEXT PRIMARY KEY NOT NULL,
    account_id    TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    file_name     TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    byte_size     BIGINT NOT NULL CHECK (byte_size >= 0),
    text          TEXT NOT NULL,
    uploaded_by   TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX account_policies_account_idx ON account_policies (account_id);

-- Partner API keys: only a hash is stored; the prefix identifies a key in lists and logs.
CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY NOT NULL,
    account_id    TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name          TEXT NOT NULL CHECK (length(trim(name)) > 0),
    prefix        TEXT NOT NULL,
    key_hash      TEXT NOT NULL,
    created_by    TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    revoked_at    BIGINT
);
CREATE UNIQUE INDEX api_keys_prefix_key ON api_keys (prefix);

CREATE TABLE audit_events (
    id             TEXT PRIMARY KEY NOT NULL,
    account_id     TEXT REFERENCES accounts (id) ON DELETE CASCADE,
    actor_user_id  TEXT REFERENCES users (id) ON DELETE SET NULL,
    action         TEXT NOT NULL,
    target_type    TEXT,
    target_id      TEXT,
    details        TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(details)),
    created_at     BIGINT NOT NULL
);
CREATE INDEX audit_events_account_idx ON audit_events (account_id, created_at);
