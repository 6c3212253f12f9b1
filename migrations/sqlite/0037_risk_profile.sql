-- A scenario's optional risk profile (its clinical truth: the caller's facts with their
-- disclosure rules, the expected risk level, the required actions), as JSON carrying its own
-- schema version; NULL for scenarios written as free text only, which keep working as before.
-- Read by the caller prompt's compiler and by grading; never shown to counselors before feedback.
ALTER TABLE scenarios ADD COLUMN risk_profile TEXT;
