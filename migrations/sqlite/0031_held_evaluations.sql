-- An evaluation whose transcript tried to steer its grader is held for a supervisor's review:
-- the counselor sees "under review", partners "pending", and the events it would have fired
-- wait in `deferred_events` until a supervisor releases it (enqueued in the release's
-- transaction). The manipulation signals and the "yes" answers turned into not_assessed for
-- want of a counselor turn stay on the evaluation for the reviewer.
ALTER TABLE evaluations ADD COLUMN held INTEGER NOT NULL DEFAULT 0 CHECK (held IN (0, 1));
ALTER TABLE evaluations ADD COLUMN hold_reason TEXT;
-- JSON: [{"turn", "speaker", "kind", "excerpt"}].
ALTER TABLE evaluations ADD COLUMN manipulation_signals TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(manipulation_signals));
-- JSON: [{"target", "citedTurns", "reason"}].
ALTER TABLE evaluations ADD COLUMN downgraded_checks TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(downgraded_checks));
-- JSON: [{"event", "payload"}], the webhook events not fired while held.
ALTER TABLE evaluations ADD COLUMN deferred_events TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(deferred_events));
ALTER TABLE evaluations ADD COLUMN released_at BIGINT;
ALTER TABLE evaluations ADD COLUMN released_by TEXT REFERENCES users (id) ON DELETE SET NULL;
-- The supervisors' queue of held evaluations.
CREATE INDEX evaluations_held_idx ON evaluations (held) WHERE held = 1;
