-- Indexes for progress (issue 19, section 5). Evaluation rows are large (criteria, gate table,
-- raw output: tens of KB), and progress reads only a few small columns of each: from this
-- covering index SQLite answers the join on `session_id = ? AND held = FALSE` without reading
-- the row (nor its overflow pages, which hold the columns after the big ones).
CREATE INDEX evaluations_progress_idx ON evaluations (session_id, held, overall_score, id);
-- Only the evaluations graded against a risk profile: progress reads their truth assessment,
-- and no other evaluation's row.
CREATE INDEX evaluations_truth_idx ON evaluations (session_id, held) WHERE truth IS NOT NULL;
