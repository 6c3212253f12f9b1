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

--
-- On PostgreSQL the triggers are deferred to commit (constraint triggers): the revision row is
-- locked last, just before the commit, so a transaction holding it never waits for another lock
-- and cannot take part in a deadlock through it; writers of one account queue only for the
-- moment of their commit.
CREATE TABLE account_revisions (
    account_id  TEXT PRIMARY KEY NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    revision    BIGINT NOT NULL DEFAULT 0
);
INSERT INTO account_revisions (account_id) SELECT id FROM accounts;

CREATE FUNCTION account_revision_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO account_revisions (account_id) VALUES (NEW.id);
    RETURN NULL;
END $$;
CREATE TRIGGER accounts_revision_row AFTER INSERT ON accounts FOR EACH ROW EXECUTE FUNCTION account_revision_row();

CREATE FUNCTION bump_revision_by_account() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    acct TEXT;
BEGIN
    IF TG_OP = 'DELETE' THEN acct := OLD.account_id; ELSE acct := NEW.account_id; END IF;
    UPDATE account_revisions SET revision = revision + 1 WHERE account_id = acct;
    RETURN NULL;
END $$;

-- A child row whose session is gone (deleted with it) finds no account: the session's own
-- trigger moved the revision.
CREATE FUNCTION bump_revision_by_session() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    sid TEXT;
BEGIN
    IF TG_OP = 'DELETE' THEN sid := OLD.session_id; ELSE sid := NEW.session_id; END IF;
    UPDATE account_revisions SET revision = revision + 1
     WHERE account_id = (SELECT account_id FROM sessions WHERE id = sid);
    RETURN NULL;
END $$;

CREATE FUNCTION bump_revision_by_review() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    rid TEXT;
BEGIN
    IF TG_OP = 'DELETE' THEN rid := OLD.review_id; ELSE rid := NEW.review_id; END IF;
    UPDATE account_revisions SET revision = revision + 1
     WHERE account_id = (SELECT account_id FROM evaluation_reviews WHERE id = rid);
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER account_categories_moves_revision AFTER INSERT OR UPDATE OR DELETE ON account_categories
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_revision_by_account();
CREATE CONSTRAINT TRIGGER assignments_moves_revision AFTER INSERT OR UPDATE OR DELETE ON assignments
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_revision_by_account();
CREATE CONSTRAINT TRIGGER call_records_moves_revision AFTER INSERT OR UPDATE OR DELETE ON call_records
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_revision_by_account();
CREATE CONSTRAINT TRIGGER caller_deviations_moves_revision AFTER INSERT OR UPDATE OR DELETE ON caller_deviations
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_revision_by_account();
CREATE CONSTRAINT TRIGGER document_reviews_moves_revision AFTER INSERT OR UPDATE OR DELETE ON document_reviews
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_revision_by_account();
CREATE CONSTRAINT TRIGGER evaluation_reviews_moves_revision AFTER INSERT OR UPDATE OR DELETE ON evaluation_reviews
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_revision_by_account();
CREATE CONSTRAINT TRIGGER recordings_moves_revision AFTER INSERT OR UPDATE OR DELETE ON recordings
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_revision_by_account();
CREATE CONSTRAINT TRIGGER risk_levels_moves_revision AFTER INSERT OR UPDATE OR DELETE ON risk_levels
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_revision_by_account();
CREATE CONSTRAINT TRIGGER scenarios_moves_revision AFTER INSERT OR UPDATE OR DELETE ON scenarios
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_revision_by_account();
CREATE CONSTRAINT TRIGGER session_flags_moves_revision AFTER INSERT OR UPDATE OR DELETE ON session_flags
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_revision_by_account();
CREATE CONSTRAINT TRIGGER sessions_moves_revision AFTER INSERT OR UPDATE OR DELETE ON sessions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_revision_by_account();
CREATE CONSTRAINT TRIGGER test_runs_moves_revision AFTER INSERT OR UPDATE OR DELETE ON test_runs
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_revision_by_account();
CREATE CONSTRAINT TRIGGER users_moves_revision AFTER INSERT OR UPDATE OR DELETE ON users
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_revision_by_account();
CREATE CONSTRAINT TRIGGER evaluation_criteria_moves_revision AFTER INSERT OR UPDATE OR DELETE ON evaluation_criteria
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_revision_by_session();
CREATE CONSTRAINT TRIGGER evaluation_suggestions_moves_revision AFTER INSERT OR UPDATE OR DELETE ON evaluation_suggestions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_revision_by_session();
CREATE CONSTRAINT TRIGGER evaluations_moves_revision AFTER INSERT OR UPDATE OR DELETE ON evaluations
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_revision_by_session();
CREATE CONSTRAINT TRIGGER session_analyses_moves_revision AFTER INSERT OR UPDATE OR DELETE ON session_analyses
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_revision_by_session();
CREATE CONSTRAINT TRIGGER transcript_turns_moves_revision AFTER INSERT OR UPDATE OR DELETE ON transcript_turns
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_revision_by_session();
CREATE CONSTRAINT TRIGGER voice_usage_moves_revision AFTER INSERT OR UPDATE OR DELETE ON voice_usage
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_revision_by_session();
CREATE CONSTRAINT TRIGGER evaluation_overrides_moves_revision AFTER INSERT OR UPDATE OR DELETE ON evaluation_overrides
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_revision_by_review();
