-- ACME nonces authenticate themselves (an HMAC under a key kept sealed in server_state),
-- so handing one out writes nothing. What must be shared by replicas is which nonces were
-- used, until they expire. Nonces issued before this change become unknown; clients are
-- answered badNonce with a fresh nonce and retry, as RFC 8555 §6.5 expects.
DROP TABLE acme_nonces;
CREATE TABLE acme_used_nonces (
    nonce      TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX acme_used_nonces_expires ON acme_used_nonces (expires_at);
