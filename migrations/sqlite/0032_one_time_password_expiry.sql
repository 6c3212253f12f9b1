-- A one-time password (new user, reset) signs in only until this instant (epoch ms); NULL for a
-- password the user chose. One-time passwords set before this migration keep no expiry: an
-- admin's reset gives them one.
ALTER TABLE users ADD COLUMN password_expires_at BIGINT;
