-- Managed certificates (server-side keys, automatic renewal) and their sync to cloud
-- certificate stores. Times are Unix seconds (UTC).

CREATE TABLE managed_certificates (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL UNIQUE,
    profile_name     TEXT NOT NULL,
    request          TEXT NOT NULL,
    renew_at_percent BIGINT,
    status           TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
    current_version  BIGINT NOT NULL DEFAULT 0,
    next_renewal_at  BIGINT,
    renewal_failures BIGINT NOT NULL DEFAULT 0,
    last_error       TEXT,
    lease_owner      TEXT,
    lease_until      BIGINT,
    created_at       BIGINT NOT NULL,
    created_by       TEXT NOT NULL
);
CREATE INDEX managed_certificates_due ON managed_certificates (status, next_renewal_at);

CREATE TABLE managed_versions (
    managed_id     TEXT NOT NULL REFERENCES managed_certificates(id) ON DELETE CASCADE,
    version        BIGINT NOT NULL,
    certificate_id TEXT NOT NULL REFERENCES certificates(id),
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (managed_id, version)
);

CREATE TABLE sync_destinations (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    kind          TEXT NOT NULL CHECK (kind IN ('aws_acm', 'azure_key_vault')),
    config        TEXT NOT NULL,
    secret_sealed BLOB,
    created_at    BIGINT NOT NULL,
    created_by    TEXT NOT NULL
);

CREATE TABLE sync_bindings (
    managed_id      TEXT NOT NULL REFERENCES managed_certificates(id) ON DELETE CASCADE,
    destination_id  TEXT NOT NULL REFERENCES sync_destinations(id),
    pushed_version  BIGINT,
    remote_id       TEXT,
    remote_version  TEXT,
    last_error      TEXT,
    failures        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (managed_id, destination_id)
);
CREATE INDEX sync_bindings_due ON sync_bindings (next_attempt_at);

CREATE TABLE managed_events (
    id         INTEGER PRIMARY KEY,
    managed_id TEXT NOT NULL,
    at         BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    detail     TEXT
);
CREATE INDEX managed_events_managed ON managed_events (managed_id, id);
