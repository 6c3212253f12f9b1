-- Issue 18: the truth grader's answer kept with the evaluation for audit, like the rubric
-- grader's (`raw_output`, `model`): the model's answer exactly as received, the model that gave
-- it and the version of the prompt that asked (NULL: no follow-up call was made, or the
-- evaluation predates this).
ALTER TABLE evaluations ADD COLUMN truth_model TEXT;
ALTER TABLE evaluations ADD COLUMN truth_prompt_version BIGINT;
ALTER TABLE evaluations ADD COLUMN truth_raw_output TEXT;

-- The center's own risk levels, in order from least to most severe: each with the center's
-- label and the standard level it maps to (which drives the gates and the under/over
-- comparison). No rows: the four standard levels under their own names.
CREATE TABLE risk_levels (
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    position    BIGINT NOT NULL CHECK (position >= 0),
    label       TEXT NOT NULL CHECK (length(label) BETWEEN 1 AND 60),
    standard    TEXT NOT NULL CHECK (standard IN ('low', 'moderate', 'high', 'imminent')),
    PRIMARY KEY (account_id, position)
);
CREATE UNIQUE INDEX risk_levels_label_idx ON risk_levels (account_id, lower(label));
