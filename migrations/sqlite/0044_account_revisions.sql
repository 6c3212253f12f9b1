-- The account's data revision (issue 19, section 5): a counter every change to what the list
-- routes show moves forward, in the same transaction as the change, so a rendered list cached
-- under one revision is known to be current while the revision stands (`admin::list_cache`).
-- Every replica reads it from here, so a change made through one replica invalidates every
-- replica's copy. Triggers, not application code, move it: no write path can forget.
--
-- Tracked: every table a list reads. Not tracked, because no list reads them and they change
-- often: jobs, audit_events, auth_sessions, api_keys, idempotency_keys, llm_calls, rate_limits,
-- webhooks, webhook_deliveries, account_policies, policy_chunks, retention_settings,
-- document_review_claims, accounts. `store/tests` checks every table is in one list or the other.

CREATE TABLE account_revisions (
    account_id  TEXT PRIMARY KEY NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    revision    INTEGER NOT NULL DEFAULT 0
);
INSERT INTO account_revisions (account_id) SELECT id FROM accounts;
CREATE TRIGGER accounts_revision_row AFTER INSERT ON accounts
BEGIN
    INSERT INTO account_revisions (account_id) VALUES (NEW.id);
END;

CREATE TRIGGER account_categories_moves_revision_insert AFTER INSERT ON account_categories
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = NEW.account_id;
END;

CREATE TRIGGER account_categories_moves_revision_update AFTER UPDATE ON account_categories
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = NEW.account_id;
END;

CREATE TRIGGER account_categories_moves_revision_delete AFTER DELETE ON account_categories
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = OLD.account_id;
END;

CREATE TRIGGER assignments_moves_revision_insert AFTER INSERT ON assignments
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = NEW.account_id;
END;

CREATE TRIGGER assignments_moves_revision_update AFTER UPDATE ON assignments
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = NEW.account_id;
END;

CREATE TRIGGER assignments_moves_revision_delete AFTER DELETE ON assignments
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = OLD.account_id;
END;

CREATE TRIGGER call_records_moves_revision_insert AFTER INSERT ON call_records
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = NEW.account_id;
END;

CREATE TRIGGER call_records_moves_revision_update AFTER UPDATE ON call_records
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = NEW.account_id;
END;

CREATE TRIGGER call_records_moves_revision_delete AFTER DELETE ON call_records
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = OLD.account_id;
END;

CREATE TRIGGER caller_deviations_moves_revision_insert AFTER INSERT ON caller_deviations
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = NEW.account_id;
END;

CREATE TRIGGER caller_deviations_moves_revision_update AFTER UPDATE ON caller_deviations
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = NEW.account_id;
END;

CREATE TRIGGER caller_deviations_moves_revision_delete AFTER DELETE ON caller_deviations
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = OLD.account_id;
END;

CREATE TRIGGER document_reviews_moves_revision_insert AFTER INSERT ON document_reviews
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = NEW.account_id;
END;

CREATE TRIGGER document_reviews_moves_revision_update AFTER UPDATE ON document_reviews
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = NEW.account_id;
END;

CREATE TRIGGER document_reviews_moves_revision_delete AFTER DELETE ON document_reviews
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = OLD.account_id;
END;

CREATE TRIGGER evaluation_reviews_moves_revision_insert AFTER INSERT ON evaluation_reviews
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = NEW.account_id;
END;

CREATE TRIGGER evaluation_reviews_moves_revision_update AFTER UPDATE ON evaluation_reviews
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = NEW.account_id;
END;

CREATE TRIGGER evaluation_reviews_moves_revision_delete AFTER DELETE ON evaluation_reviews
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = OLD.account_id;
END;

CREATE TRIGGER recordings_moves_revision_insert AFTER INSERT ON recordings
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = NEW.account_id;
END;

CREATE TRIGGER recordings_moves_revision_update AFTER UPDATE ON recordings
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = NEW.account_id;
END;

CREATE TRIGGER recordings_moves_revision_delete AFTER DELETE ON recordings
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = OLD.account_id;
END;

CREATE TRIGGER risk_levels_moves_revision_insert AFTER INSERT ON risk_levels
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = NEW.account_id;
END;

CREATE TRIGGER risk_levels_moves_revision_update AFTER UPDATE ON risk_levels
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = NEW.account_id;
END;

CREATE TRIGGER risk_levels_moves_revision_delete AFTER DELETE ON risk_levels
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = OLD.account_id;
END;

CREATE TRIGGER scenarios_moves_revision_insert AFTER INSERT ON scenarios
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = NEW.account_id;
END;

CREATE TRIGGER scenarios_moves_revision_update AFTER UPDATE ON scenarios
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = NEW.account_id;
END;

CREATE TRIGGER scenarios_moves_revision_delete AFTER DELETE ON scenarios
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = OLD.account_id;
END;

CREATE TRIGGER session_flags_moves_revision_insert AFTER INSERT ON session_flags
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = NEW.account_id;
END;

CREATE TRIGGER session_flags_moves_revision_update AFTER UPDATE ON session_flags
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = NEW.account_id;
END;

CREATE TRIGGER session_flags_moves_revision_delete AFTER DELETE ON session_flags
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = OLD.account_id;
END;

CREATE TRIGGER sessions_moves_revision_insert AFTER INSERT ON sessions
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = NEW.account_id;
END;

CREATE TRIGGER sessions_moves_revision_update AFTER UPDATE ON sessions
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = NEW.account_id;
END;

CREATE TRIGGER sessions_moves_revision_delete AFTER DELETE ON sessions
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = OLD.account_id;
END;

CREATE TRIGGER test_runs_moves_revision_insert AFTER INSERT ON test_runs
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = NEW.account_id;
END;

CREATE TRIGGER test_runs_moves_revision_update AFTER UPDATE ON test_runs
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = NEW.account_id;
END;

CREATE TRIGGER test_runs_moves_revision_delete AFTER DELETE ON test_runs
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = OLD.account_id;
END;

CREATE TRIGGER users_moves_revision_insert AFTER INSERT ON users
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = NEW.account_id;
END;

CREATE TRIGGER users_moves_revision_update AFTER UPDATE ON users
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = NEW.account_id;
END;

CREATE TRIGGER users_moves_revision_delete AFTER DELETE ON users
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = OLD.account_id;
END;

CREATE TRIGGER evaluation_criteria_moves_revision_insert AFTER INSERT ON evaluation_criteria
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = (SELECT account_id FROM sessions WHERE id = NEW.session_id);
END;

CREATE TRIGGER evaluation_criteria_moves_revision_update AFTER UPDATE ON evaluation_criteria
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = (SELECT account_id FROM sessions WHERE id = NEW.session_id);
END;

CREATE TRIGGER evaluation_criteria_moves_revision_delete AFTER DELETE ON evaluation_criteria
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = (SELECT account_id FROM sessions WHERE id = OLD.session_id);
END;

CREATE TRIGGER evaluation_suggestions_moves_revision_insert AFTER INSERT ON evaluation_suggestions
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = (SELECT account_id FROM sessions WHERE id = NEW.session_id);
END;

CREATE TRIGGER evaluation_suggestions_moves_revision_update AFTER UPDATE ON evaluation_suggestions
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = (SELECT account_id FROM sessions WHERE id = NEW.session_id);
END;

CREATE TRIGGER evaluation_suggestions_moves_revision_delete AFTER DELETE ON evaluation_suggestions
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = (SELECT account_id FROM sessions WHERE id = OLD.session_id);
END;

CREATE TRIGGER evaluations_moves_revision_insert AFTER INSERT ON evaluations
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = (SELECT account_id FROM sessions WHERE id = NEW.session_id);
END;

CREATE TRIGGER evaluations_moves_revision_update AFTER UPDATE ON evaluations
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = (SELECT account_id FROM sessions WHERE id = NEW.session_id);
END;

CREATE TRIGGER evaluations_moves_revision_delete AFTER DELETE ON evaluations
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = (SELECT account_id FROM sessions WHERE id = OLD.session_id);
END;

CREATE TRIGGER session_analyses_moves_revision_insert AFTER INSERT ON session_analyses
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = (SELECT account_id FROM sessions WHERE id = NEW.session_id);
END;

CREATE TRIGGER session_analyses_moves_revision_update AFTER UPDATE ON session_analyses
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = (SELECT account_id FROM sessions WHERE id = NEW.session_id);
END;

CREATE TRIGGER session_analyses_moves_revision_delete AFTER DELETE ON session_analyses
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = (SELECT account_id FROM sessions WHERE id = OLD.session_id);
END;

CREATE TRIGGER transcript_turns_moves_revision_insert AFTER INSERT ON transcript_turns
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = (SELECT account_id FROM sessions WHERE id = NEW.session_id);
END;

CREATE TRIGGER transcript_turns_moves_revision_update AFTER UPDATE ON transcript_turns
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = (SELECT account_id FROM sessions WHERE id = NEW.session_id);
END;

CREATE TRIGGER transcript_turns_moves_revision_delete AFTER DELETE ON transcript_turns
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = (SELECT account_id FROM sessions WHERE id = OLD.session_id);
END;

CREATE TRIGGER voice_usage_moves_revision_insert AFTER INSERT ON voice_usage
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = (SELECT account_id FROM sessions WHERE id = NEW.session_id);
END;

CREATE TRIGGER voice_usage_moves_revision_update AFTER UPDATE ON voice_usage
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = (SELECT account_id FROM sessions WHERE id = NEW.session_id);
END;

CREATE TRIGGER voice_usage_moves_revision_delete AFTER DELETE ON voice_usage
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = (SELECT account_id FROM sessions WHERE id = OLD.session_id);
END;

CREATE TRIGGER evaluation_overrides_moves_revision_insert AFTER INSERT ON evaluation_overrides
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = (SELECT account_id FROM evaluation_reviews WHERE id = NEW.review_id);
END;

CREATE TRIGGER evaluation_overrides_moves_revision_update AFTER UPDATE ON evaluation_overrides
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = (SELECT account_id FROM evaluation_reviews WHERE id = NEW.review_id);
END;

CREATE TRIGGER evaluation_overrides_moves_revision_delete AFTER DELETE ON evaluation_overrides
BEGIN
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = (SELECT account_id FROM evaluation_reviews WHERE id = OLD.review_id);
END;
