-- Scenario test runs (issue 18, section 4): an AI counselor practises a text call against a
-- scenario's caller before the scenario is assigned. The call is a session flagged `test_run`,
-- which every counselor-facing list, progress, the flag queue, flag e-mails and partner
-- events leave out; the run itself is a `test_run` job recorded with the request.
ALTER TABLE sessions ADD COLUMN test_run BOOLEAN NOT NULL DEFAULT FALSE;

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
    rerun          BOOLEAN NOT NULL DEFAULT FALSE,
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

ALTER TABLE jobs DROP CONSTRAINT jobs_kind_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_kind_check CHECK (kind IN ('evaluate_session', 'analyze_session', 'notify_flag', 'test_run'));
