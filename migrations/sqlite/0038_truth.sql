-- Grading against a scenario's clinical truth (issue 18): the counselor's call record, the
-- truth assessment and suggestions stored with the evaluation, the caller's deviations from
-- the risk profile (counted per scenario), and the two risk-determination gates' flag types.

-- SQLite cannot change a CHECK in place: rebuild session_flags (nothing references it).
CREATE TABLE session_flags_v38 (
    id            TEXT PRIMARY KEY NOT NULL,
    account_id    TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    session_id    TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    flag_type     TEXT NOT NULL CHECK (flag_type IN ('suicide_not_asked', 'missed_plan_or_means', 'coercion_without_imminent_risk', 'missed_rescue', 'dismissive_language', 'medical_advice', 'policy_violation', 'caller_inconsistency', 'ai_caller_problem', 'other', 'firearms_not_asked', 'risk_to_others_not_assessed', 'false_threats_or_coercion', 'missed_third_party_rescue', 'imminent_risk_underestimated', 'high_risk_underestimated')),
    severity      TEXT NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    source        TEXT NOT NULL CHECK (source IN ('evaluation', 'analysis', 'user_feedback', 'derived')),
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
INSERT INTO session_flags_v38 (id, account_id, session_id, flag_type, severity, source, status, details, review_note,
    reviewed_by, reviewed_at, created_at, updated_at, turns)
SELECT id, account_id, session_id, flag_type, severity, source, status, details, review_note,
    reviewed_by, reviewed_at, created_at, updated_at, turns
FROM session_flags;
DROP TABLE session_flags;
ALTER TABLE session_flags_v38 RENAME TO session_flags;
CREATE INDEX session_flags_account_idx ON session_flags (account_id, status, created_at);
CREATE INDEX session_flags_session_idx ON session_flags (session_id);

-- What the counselor filed after hanging up, as on a real line, or that they skipped it
-- (then no level). Changeable until grading reads it.
CREATE TABLE call_records (
    session_id  TEXT PRIMARY KEY NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    status      TEXT NOT NULL CHECK (status IN ('filed', 'skipped')),
    risk_level  TEXT CHECK (risk_level IS NULL OR risk_level IN ('low', 'moderate', 'high', 'imminent')),
    -- JSON lists: fact kinds the counselor noted, actions taken or planned.
    fact_kinds  TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(fact_kinds)),
    actions     TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(actions)),
    notes       TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    CHECK ((status = 'filed') = (risk_level IS NOT NULL))
);
CREATE INDEX call_records_account_idx ON call_records (account_id);

-- JSON: the truth assessment (uncovered facts, determination, required actions, caller
-- fidelity) of a profiled scenario's evaluation; NULL when the scenario had no profile.
ALTER TABLE evaluations ADD COLUMN truth TEXT CHECK (truth IS NULL OR json_valid(truth));

-- What the counselor could have said at a turn, per failed check or missed fact. A supervisor
-- may edit (ai_text keeps the evaluator's) or remove one (removed_at set; kept for the audit).
CREATE TABLE evaluation_suggestions (
    id          TEXT PRIMARY KEY NOT NULL,
    session_id  TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    target      TEXT NOT NULL,
    turn        BIGINT NOT NULL CHECK (turn >= 1),
    text        TEXT NOT NULL,
    ai_text     TEXT NOT NULL,
    position    BIGINT NOT NULL,
    edited_by   TEXT REFERENCES users (id) ON DELETE SET NULL,
    removed_at  BIGINT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX evaluation_suggestions_target_key ON evaluation_suggestions (session_id, target);

-- Where the AI caller did not follow the scenario's risk profile: counted against the
-- scenario in the supervisor's view.
CREATE TABLE caller_deviations (
    id          TEXT PRIMARY KEY NOT NULL,
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    session_id  TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    scenario_id TEXT NOT NULL REFERENCES scenarios (id) ON DELETE CASCADE,
    fact_key    TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('withheld', 'denied', 'volunteered_gated')),
    turns       TEXT NOT NULL DEFAULT '[]',
    created_at  BIGINT NOT NULL
);
CREATE INDEX caller_deviations_scenario_idx ON caller_deviations (account_id, scenario_id);
CREATE INDEX caller_deviations_session_idx ON caller_deviations (session_id);
