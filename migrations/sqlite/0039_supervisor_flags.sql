-- Flags a supervisor raises in a calibration review are stored as flags (`supervisor` source),
-- so the queue, the session's panel, e-mail and `flag.raised` webhooks see them like any other.

-- SQLite cannot change a CHECK in place: rebuild session_flags (nothing references it).
CREATE TABLE session_flags_v39 (
    id            TEXT PRIMARY KEY NOT NULL,
    account_id    TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    session_id    TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    flag_type     TEXT NOT NULL CHECK (flag_type IN ('suicide_not_asked', 'missed_plan_or_means', 'coercion_without_imminent_risk', 'missed_rescue', 'dismissive_language', 'medical_advice', 'policy_violation', 'caller_inconsistency', 'ai_caller_problem', 'other', 'firearms_not_asked', 'risk_to_others_not_assessed', 'false_threats_or_coercion', 'missed_third_party_rescue', 'imminent_risk_underestimated', 'high_risk_underestimated')),
    severity      TEXT NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    source        TEXT NOT NULL CHECK (source IN ('evaluation', 'analysis', 'user_feedback', 'derived', 'supervisor')),
    status        TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'reviewed', 'dismissed')),
    details       TEXT NOT NULL,
    review_note   TEXT,
    reviewed_by   TEXT REFERENCES users (id) ON DELETE SET NULL,
    reviewed_at   BIGINT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    turns         TEXT NOT NULL DEFAULT '[]',
    CHECK ((status = 'open') = (reviewed_at IS NULL))
);
INSERT INTO session_flags_v39 (id, account_id, session_id, flag_type, severity, source, status, details, review_note,
    reviewed_by, reviewed_at, created_at, updated_at, turns)
SELECT id, account_id, session_id, flag_type, severity, source, status, details, review_note,
    reviewed_by, reviewed_at, created_at, updated_at, turns
FROM session_flags;
DROP TABLE session_flags;
ALTER TABLE session_flags_v39 RENAME TO session_flags;
CREATE INDEX session_flags_account_idx ON session_flags (account_id, status, created_at);
CREATE INDEX session_flags_session_idx ON session_flags (session_id);
