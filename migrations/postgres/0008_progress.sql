-- Progress over time: one row per rated criterion of each evaluation, so "each criterion's
-- rating over time" is a GROUP BY instead of JSON parsing in application code. Filled by a
-- trigger from evaluations.criteria (the evaluator's code stays unaware), backfilled here.
CREATE TABLE evaluation_criteria (
    evaluation_id  TEXT NOT NULL REFERENCES evaluations (id) ON DELETE CASCADE,
    session_id     TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    position       BIGINT NOT NULL,
    criterion_key  TEXT NOT NULL,
    name           TEXT NOT NULL,
    rating         BIGINT CHECK (rating BETWEEN 0 AND 4),
    PRIMARY KEY (evaluation_id, position)
);
CREATE INDEX evaluation_criteria_session_idx ON evaluation_criteria (session_id);

CREATE FUNCTION evaluation_criteria_fill() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO evaluation_criteria (evaluation_id, session_id, position, criterion_key, name, rating)
    SELECT NEW.id, NEW.session_id, j.ordinality - 1, j.value ->> 'key', j.value ->> 'name',
           (j.value ->> 'rating')::BIGINT
    FROM jsonb_array_elements(NEW.criteria::jsonb) WITH ORDINALITY AS j (value, ordinality);
    RETURN NEW;
END;
$$;

CREATE TRIGGER evaluation_criteria_fill AFTER INSERT ON evaluations
FOR EACH ROW EXECUTE FUNCTION evaluation_criteria_fill();

INSERT INTO evaluation_criteria (evaluation_id, session_id, position, criterion_key, name, rating)
SELECT e.id, e.session_id, j.ordinality - 1, j.value ->> 'key', j.value ->> 'name', (j.value ->> 'rating')::BIGINT
FROM evaluations AS e, jsonb_array_elements(e.criteria::jsonb) WITH ORDINALITY AS j (value, ordinality);

-- Progress lists a counselor's (or a cohort's) finished sessions in time order.
CREATE INDEX sessions_progress_idx ON sessions (account_id, user_id, ended_at);
