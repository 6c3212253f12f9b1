-- Grading a trainer can trust: a score that can be absent (never a fallback 0), its band and
-- basis, the rubric version each evaluation was graded against, and supervisor calibration
-- (reviews and overrides stored beside the AI's answer, never over it).

-- SQLite cannot drop NOT NULL in place: rebuild evaluations (nothing references it).
CREATE TABLE evaluations_v7 (
    id                TEXT PRIMARY KEY NOT NULL,
    session_id        TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    -- NULL when the score cannot be computed (a safety criterion not assessed, nothing rated).
    overall_score     DOUBLE PRECISION CHECK (overall_score IS NULL OR overall_score BETWEEN 0 AND 100),
    score_band        TEXT CHECK (score_band IS NULL OR score_band IN ('needs_work', 'developing', 'proficient', 'strong')),
    -- JSON: what the score rests on (criteria not assessed / not applicable, the flags capping it).
    score_basis       TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(score_basis)),
    -- 1: evaluations stored before the rubric was versioned.
    rubric_version    BIGINT NOT NULL DEFAULT 1,
    criteria          TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(criteria)),
    strengths         TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(strengths)),
    areas_to_improve  TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(areas_to_improve)),
    model             TEXT NOT NULL,
    raw_output        TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    CHECK ((overall_score IS NULL) = (score_band IS NULL))
);
INSERT INTO evaluations_v7 (id, session_id, overall_score, score_band, rubric_version, criteria, strengths, areas_to_improve, model, raw_output, created_at)
SELECT id, session_id, overall_score,
       CASE WHEN overall_score < 50 THEN 'needs_work' WHEN overall_score < 70 THEN 'developing'
            WHEN overall_score < 85 THEN 'proficient' ELSE 'strong' END,
       1, criteria, strengths, areas_to_improve, model, raw_output, created_at
FROM evaluations;
DROP TABLE evaluations;
ALTER TABLE evaluations_v7 RENAME TO evaluations;
CREATE UNIQUE INDEX evaluations_session_key ON evaluations (session_id);

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
