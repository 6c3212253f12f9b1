-- Scenario test runs (issue 18, section 4): an AI counselor practises a text call against a
-- scenario's caller before the scenario is assigned. The call is a session flagged `test_run`,
-- which every counselor-facing list, progress, the flag queue, flag e-mails and partner
-- events leave out; the run itself is a `test_run` job recorded with the request.
ALTER TABLE sessions ADD COLUMN test_run INTEGER NOT NULL DEFAULT 0 CHECK (test_run IN (0, 1));

CREATE TABLE test_runs (
    id             TEXT PRIMARY KEY NOT NULL,
    account_id     TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    scenario_id    TEXT NOT NULL REFERENCES scenarios (id) ON DELETE CASCADE,
    -- The practice call; deleting a scenario deletes its test runs and their sessions.
    session_id     TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    kind           TEXT NOT NULL CHECK (kind IN ('thorough', 'poor')),
    status         TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    max_turns      BIGINT NOT NULL CHECK (max_turns BETWEEN 1 AND 30),
    -- Started by "re-run all" (which refuses while one of its runs is unfinished).
    rerun          INTEGER NOT NULL DEFAULT 0 CHECK (rerun IN (0, 1)),
    requested_by   TEXT REFERENCES users (id) ON DELETE SET NULL,
    error          TEXT,
    created_at     BIGINT NOT NULL,
    started_at     BIGINT,
    finished_at    BIGINT,
    CHECK ((status IN ('done', 'failed')) = (finished_at IS NOT NULL))
);
CREATE UNIQUE INDEX test_runs_session_key ON test_runs (session_id);
CREATE INDEX test_runs_scenario_idx ON test_runs (scenario_id, created_at);
CREATE INDEX test_runs_unfinished_idx ON test_runs (account_id, status) WHERE status IN ('queued', 'running');

-- SQLite cannot alter a CHECK, so the job table is rebuilt (nothing references it).
CREATE TABLE jobs_new (
    id            TEXT PRIMARY KEY NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('evaluate_session', 'analyze_session', 'notify_flag', 'test_run')),
    account_id    TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    session_id    TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    subject       TEXT NOT NULL DEFAULT '',
    status        TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    attempts      BIGINT NOT NULL DEFAULT 0,
    run_after     BIGINT NOT NULL,
    locked_until  BIGINT,
    locked_by     TEXT,
    last_error    TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
INSERT INTO jobs_new (id, kind, account_id, session_id, subject, status, attempts, run_after, locked_until, locked_by,
                      last_error, created_at, updated_at)
    SELECT id, kind, account_id, session_id, subject, status, attempts, run_after, locked_until, locked_by, last_error,
           created_at, updated_at FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;
CREATE UNIQUE INDEX jobs_session_kind_key ON jobs (session_id, kind, subject);
CREATE INDEX jobs_due_idx ON jobs (status, run_after);
