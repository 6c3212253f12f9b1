-- Flags a supervisor raises in a calibration review are stored as flags (`supervisor` source),
-- so the queue, the session's panel, e-mail and `flag.raised` webhooks see them like any other.

ALTER TABLE session_flags DROP CONSTRAINT session_flags_source_check;
ALTER TABLE session_flags ADD CONSTRAINT session_flags_source_check CHECK (source IN ('evaluation', 'analysis', 'user_feedback', 'derived', 'supervisor'));
