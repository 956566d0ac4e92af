-- ACME (RFC 8555) server state. Times are Unix seconds (UTC).

-- Replay nonces: inserted when handed out, deleted when used (single use on any replica).
CREATE TABLE acme_nonces (
    nonce      TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX acme_nonces_expires ON acme_nonces (expires_at);

CREATE TABLE acme_accounts (
    id         TEXT PRIMARY KEY,
    profile    TEXT NOT NULL,
    thumbprint TEXT NOT NULL,
    jwk        TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('valid', 'deactivated', 'revoked')),
    contact    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    CONSTRAINT acme_accounts_key UNIQUE (profile, thumbprint)
);

CREATE TABLE acme_orders (
    id             TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL REFERENCES acme_accounts(id),
    status         TEXT NOT NULL,
    identifiers    TEXT NOT NULL,
    not_before     BIGINT,
    not_after      BIGINT,
    expires_at     BIGINT NOT NULL,
    error          TEXT,
    certificate_id TEXT REFERENCES certificates(id),
    replaces       TEXT,
    replaced_id    TEXT REFERENCES certificates(id),
    created_at     BIGINT NOT NULL
);
-- RFC 9773: a certificate is replaced by at most one order (`replaces` is the CertID the
-- client sent, `replaced_id` the certificate it names).
CREATE UNIQUE INDEX acme_orders_replaced ON acme_orders (replaced_id);
CREATE INDEX acme_orders_account ON acme_orders (account_id, created_at);

CREATE TABLE acme_authorizations (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES acme_accounts(id),
    id_type     TEXT NOT NULL,
    id_value    TEXT NOT NULL,
    status      TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX acme_authz_reuse ON acme_authorizations (account_id, id_type, id_value, status);

CREATE TABLE acme_order_authorizations (
    order_id TEXT NOT NULL REFERENCES acme_orders(id),
    authz_id TEXT NOT NULL REFERENCES acme_authorizations(id),
    PRIMARY KEY (order_id, authz_id)
);
CREATE INDEX acme_order_authz_by_authz ON acme_order_authorizations (authz_id);

CREATE TABLE acme_challenges (
    id           TEXT PRIMARY KEY,
    authz_id     TEXT NOT NULL REFERENCES acme_authorizations(id),
    type         TEXT NOT NULL,
    token        TEXT NOT NULL,
    status       TEXT NOT NULL,
    validated_at BIGINT,
    error        TEXT
);
CREATE INDEX acme_challenges_authz ON acme_challenges (authz_id);

-- Fixed-window counters for rate limits, shared by all replicas.
CREATE TABLE acme_rate_limits (
    bucket       TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    count        BIGINT NOT NULL,
    PRIMARY KEY (bucket, window_start)
);

-- Renewal windows moved earlier by an administrator (RFC 9773 renewalInfo), for one
-- certificate or for everything a CA issued. The newest matching row wins.
CREATE TABLE acme_renewal_overrides (
    id             TEXT PRIMARY KEY,
    ca_id          TEXT REFERENCES cas(id),
    certificate_id TEXT REFERENCES certificates(id),
    window_start   BIGINT NOT NULL,
    window_end     BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    created_by     TEXT NOT NULL
);
CREATE INDEX acme_renewal_overrides_ca ON acme_renewal_overrides (ca_id);
CREATE INDEX acme_renewal_overrides_cert ON acme_renewal_overrides (certificate_id);

-- External account binding keys (HS256), each bound to a profile and usable by one
-- account. The MAC key is sealed with the master key.
CREATE TABLE acme_eab_keys (
    id          TEXT PRIMARY KEY,
    profile     TEXT NOT NULL,
    name        TEXT NOT NULL,
    hmac_sealed BLOB NOT NULL,
    account_id  TEXT REFERENCES acme_accounts(id),
    created_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL
);
