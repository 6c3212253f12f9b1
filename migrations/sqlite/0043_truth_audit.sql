-- Issue 18: the truth grader's answer kept with the evaluation for audit, like the rubric
-- grader's (`raw_output`, `model`): the model's answer exactly as received, the model that gave
-- it and the version of the prompt that asked (NULL: no follow-up call was made, or the
-- evaluation predates this).
ALTER TABLE evaluations ADD COLUMN truth_model TEXT;
ALTER TABLE evaluations ADD COLUMN truth_prompt_version BIGINT;
ALTER TABLE evaluations ADD COLUMN truth_raw_output TEXT;
