-- Work that followed a change on a detached task now goes through the job queue, recorded in the
-- change's transaction: the post-evaluation analysis (`analyze_session`) and each flag's e-mail
-- (`notify_flag`, one per flag, so `subject` holds the flag id; '' for per-session jobs).
-- SQLite cannot alter a CHECK, so the table is rebuilt; nothing references it.
CREATE TABLE jobs_new (
    id            TEXT PRIMARY KEY NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('evaluate_session', 'analyze_session', 'notify_flag')),
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
    SELECT id, kind, account_id, session_id, '', status, attempts, run_after, locked_until, locked_by, last_error,
           created_at, updated_at FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;
CREATE UNIQUE INDEX jobs_session_kind_key ON jobs (session_id, kind, subject);
CREATE INDEX jobs_due_idx ON jobs (status, run_after);
