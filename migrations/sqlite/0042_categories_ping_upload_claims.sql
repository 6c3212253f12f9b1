-- Issue 20: category names keep the capitals typed ("Youth and LGBTQ+"), so uniqueness ignores
-- case in the schema; a webhook's "send test event" is a `ping` delivery through the outbox; a
-- documentation upload sent twice (a double click) is reviewed once, decided by a claim row per
-- session and file content that concurrent requests race for with ON CONFLICT DO NOTHING.
-- Keep in step with ../postgres/0042_categories_ping_upload_claims.sql.

-- Names stored before this release are lower case already (they were normalized), so none clash.
CREATE UNIQUE INDEX account_categories_lower_name_key ON account_categories (account_id, lower(name));

-- SQLite cannot alter a CHECK, so the delivery log is rebuilt; nothing references it.
CREATE TABLE webhook_deliveries_new (
    id                TEXT PRIMARY KEY NOT NULL,
    webhook_id        TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    account_id        TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    event             TEXT NOT NULL CHECK (event IN ('assignment.completed', 'evaluation.completed', 'flag.raised', 'ping')),
    payload           TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts          BIGINT NOT NULL DEFAULT 0,
    next_attempt_at   BIGINT NOT NULL,
    last_status_code  BIGINT,
    last_error        TEXT,
    created_at        BIGINT NOT NULL,
    delivered_at      BIGINT
);
INSERT INTO webhook_deliveries_new (id, webhook_id, account_id, event, payload, status, attempts, next_attempt_at,
                                    last_status_code, last_error, created_at, delivered_at)
    SELECT id, webhook_id, account_id, event, payload, status, attempts, next_attempt_at, last_status_code,
           last_error, created_at, delivered_at FROM webhook_deliveries;
DROP TABLE webhook_deliveries;
ALTER TABLE webhook_deliveries_new RENAME TO webhook_deliveries;
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_webhook_idx ON webhook_deliveries (webhook_id, created_at);

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
