-- Issue 20: category names keep the capitals typed ("Youth and LGBTQ+"), so uniqueness ignores
-- case in the schema; a webhook's "send test event" is a `ping` delivery through the outbox; a
-- documentation upload sent twice (a double click) is reviewed once, decided by a claim row per
-- session and file content that concurrent requests race for with ON CONFLICT DO NOTHING.
-- Keep in step with ../sqlite/0042_categories_ping_upload_claims.sql.

-- Names stored before this release are lower case already (they were normalized), so none clash.
CREATE UNIQUE INDEX account_categories_lower_name_key ON account_categories (account_id, lower(name));

ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_event_check;
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_event_check
    CHECK (event IN ('assignment.completed', 'evaluation.completed', 'flag.raised', 'ping'));

-- One claim per session and uploaded file (SHA-256 of its bytes): the request that inserts it
-- reviews the file; a repeat answers the review once it is stored (review_id). A claim without a
-- review is in progress, or was left by a crashed request (taken over when stale).
CREATE TABLE document_review_claims (
    session_id      TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    content_sha256  TEXT NOT NULL CHECK (length(content_sha256) = 64),
    review_id       TEXT REFERENCES document_reviews (id) ON DELETE CASCADE,
    claimed_at      BIGINT NOT NULL,
    PRIMARY KEY (session_id, content_sha256)
);
