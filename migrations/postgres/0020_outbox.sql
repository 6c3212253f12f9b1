-- Work that followed a change on a detached task now goes through the job queue, recorded in the
-- change's transaction: the post-evaluation analysis (`analyze_session`) and each flag's e-mail
-- (`notify_flag`, one per flag, so `subject` holds the flag id; '' for per-session jobs).
ALTER TABLE jobs DROP CONSTRAINT jobs_kind_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_kind_check CHECK (kind IN ('evaluate_session', 'analyze_session', 'notify_flag'));
ALTER TABLE jobs ADD COLUMN subject TEXT NOT NULL DEFAULT '';
DROP INDEX jobs_session_kind_key;
CREATE UNIQUE INDEX jobs_session_kind_key ON jobs (session_id, kind, subject);
