-- Indexes for the list routes (issue 19, section 5). The session list asks, per row, whether the
-- session's evaluation was reviewed and whether it still needs review (`evaluation_reviews` by
-- `session_id`), which without this index scanned every review of every account per row.
CREATE INDEX evaluation_reviews_session_idx ON evaluation_reviews (session_id);
