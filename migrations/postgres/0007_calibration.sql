-- Grading a trainer can trust: a score that can be absent (never a fallback 0), its band and
-- basis, the rubric version each evaluation was graded against, and supervisor calibration
-- (reviews and overrides stored beside the AI's answer, never over it).

ALTER TABLE evaluations ALTER COLUMN overall_score DROP NOT NULL;
ALTER TABLE evaluations ADD COLUMN score_band TEXT
    CHECK (score_band IS NULL OR score_band IN ('needs_work', 'developing', 'proficient', 'strong'));
ALTER TABLE evaluations ADD COLUMN score_basis TEXT NOT NULL DEFAULT '{}';
-- 1: evaluations stored before the rubric was versioned.
ALTER TABLE evaluations ADD COLUMN rubric_version BIGINT NOT NULL DEFAULT 1;
UPDATE evaluations SET score_band = CASE WHEN overall_score < 50 THEN 'needs_work' WHEN overall_score < 70 THEN 'developing'
    WHEN overall_score < 85 THEN 'proficient' ELSE 'strong' END;
ALTER TABLE evaluations ADD CONSTRAINT evaluations_score_band_present CHECK ((overall_score IS NULL) = (score_band IS NULL));

-- One supervisor review of an evaluation; a review with no overrides confirms the AI's answer.
CREATE TABLE evaluation_reviews (
    id             TEXT PRIMARY KEY NOT NULL,
    account_id     TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    evaluation_id  TEXT NOT NULL REFERENCES evaluations (id) ON DELETE CASCADE,
    session_id     TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    reviewer_id    TEXT REFERENCES users (id) ON DELETE SET NULL,
    note           TEXT NOT NULL DEFAULT '',
    created_at     BIGINT NOT NULL
);
CREATE INDEX evaluation_reviews_evaluation_idx ON evaluation_reviews (evaluation_id, created_at);
CREATE INDEX evaluation_reviews_account_idx ON evaluation_reviews (account_id, created_at);

-- What a supervisor changed, beside what the AI said. The latest override of a target wins;
-- earlier ones stay as history.
CREATE TABLE evaluation_overrides (
    id             TEXT PRIMARY KEY NOT NULL,
    review_id      TEXT NOT NULL REFERENCES evaluation_reviews (id) ON DELETE CASCADE,
    evaluation_id  TEXT NOT NULL REFERENCES evaluations (id) ON DELETE CASCADE,
    kind           TEXT NOT NULL CHECK (kind IN ('check', 'rating', 'flag')),
    -- `<criterion>.<check>`, `<criterion>`, or a flag type.
    target         TEXT NOT NULL,
    ai_value       TEXT,
    value          TEXT,
    reason         TEXT NOT NULL CHECK (length(trim(reason)) > 0),
    created_at     BIGINT NOT NULL
);
CREATE INDEX evaluation_overrides_evaluation_idx ON evaluation_overrides (evaluation_id, created_at);
