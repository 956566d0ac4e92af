-- External issuers: upstream CAs (ACME) that sign certificates certkeeper asks for. Each
-- stands in the inventory as a CA row of kind 'external' and status 'disabled' (certkeeper
-- holds no signing key for it) with the same id, so profiles name it like any CA and the
-- certificates it issues join the inventory, alerts and syncs.
CREATE TABLE issuers (
    id             TEXT PRIMARY KEY REFERENCES cas(id),
    name           TEXT NOT NULL UNIQUE,
    kind           TEXT NOT NULL CHECK (kind IN ('acme', 'aws_pca')),
    config         TEXT NOT NULL,
    secret_sealed  BYTEA,
    dns_secret_sealed BYTEA,
    account_sealed BYTEA,
    account_url    TEXT,
    created_at     BIGINT NOT NULL
);

-- http-01 answers for orders certkeeper places upstream, served on every replica.
CREATE TABLE upstream_http01 (
    token             TEXT PRIMARY KEY,
    key_authorization TEXT NOT NULL,
    expires_at        BIGINT NOT NULL
);

-- The upstream's problem document (RFC 7807 JSON) of a managed certificate's last failure.
ALTER TABLE managed_certificates ADD COLUMN last_problem TEXT;
