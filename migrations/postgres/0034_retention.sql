-- Data retention per account (days; NULL keeps forever) and user erasure.
-- Transcripts (and the counselor's documentation reviewed against them), evaluations (with their
-- reviews, flags and analysis) and audit records older than an account's setting are purged by
-- the housekeeping job; recordings keep their own RECORDINGS_RETENTION_DAYS. The audit trail is
-- kept at least 30 days, so a purge can never erase the record of a recent change.
CREATE TABLE retention_settings (
    account_id       TEXT PRIMARY KEY NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    transcript_days  BIGINT CHECK (transcript_days IS NULL OR transcript_days BETWEEN 1 AND 3650),
    evaluation_days  BIGINT CHECK (evaluation_days IS NULL OR evaluation_days BETWEEN 1 AND 3650),
    audit_days       BIGINT CHECK (audit_days IS NULL OR audit_days BETWEEN 30 AND 3650),
    updated_at       BIGINT NOT NULL
);

-- When a user was erased (pseudonymised): their name and e-mail are replaced, sign-in is gone.
ALTER TABLE users ADD COLUMN erased_at BIGINT;
