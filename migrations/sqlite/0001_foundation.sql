-- certkeeper foundation schema (SQLite). Times are Unix seconds (UTC).

CREATE TABLE cas (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    parent_id       TEXT REFERENCES cas(id),
    kind            TEXT NOT NULL CHECK (kind IN ('root', 'intermediate', 'imported', 'external')),
    status          TEXT NOT NULL CHECK (status IN ('active', 'pending', 'disabled')),
    subject         TEXT NOT NULL,
    key_algorithm   TEXT NOT NULL,
    cert_der        BLOB,
    chain_pem       TEXT,
    csr_der         BLOB,
    key_sealed      BLOB NOT NULL,
    serial          TEXT,
    fingerprint     TEXT,
    not_before      BIGINT,
    not_after       BIGINT,
    path_len        BIGINT,
    ocsp_cert_der   BLOB,
    ocsp_key_sealed BLOB,
    crl_number      BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL
);

CREATE TABLE crls (
    ca_id       TEXT PRIMARY KEY REFERENCES cas(id),
    crl_number  BIGINT NOT NULL,
    this_update BIGINT NOT NULL,
    next_update BIGINT NOT NULL,
    der         BLOB NOT NULL
);

CREATE TABLE profiles (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    ca_id      TEXT NOT NULL REFERENCES cas(id),
    policy     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE certificates (
    id                TEXT PRIMARY KEY,
    ca_id             TEXT NOT NULL REFERENCES cas(id),
    profile_name      TEXT,
    serial            TEXT NOT NULL,
    subject           TEXT NOT NULL,
    common_name       TEXT,
    sans              TEXT NOT NULL,
    issuer            TEXT NOT NULL,
    not_before        BIGINT NOT NULL,
    not_after         BIGINT NOT NULL,
    key_algorithm     TEXT,
    fingerprint       TEXT NOT NULL UNIQUE,
    status            TEXT NOT NULL CHECK (status IN ('valid', 'revoked')),
    der               BLOB NOT NULL,
    key_sealed        BLOB,
    revoked_at        BIGINT,
    revocation_reason BIGINT,
    created_at        BIGINT NOT NULL,
    created_by        TEXT NOT NULL,
    CONSTRAINT certificates_ca_serial_key UNIQUE (ca_id, serial)
);
CREATE INDEX certificates_not_after ON certificates (not_after);
CREATE INDEX certificates_created ON certificates (created_at, id);
CREATE INDEX certificates_profile ON certificates (profile_name);

CREATE TABLE certificate_names (
    name           TEXT NOT NULL,
    certificate_id TEXT NOT NULL REFERENCES certificates(id) ON DELETE CASCADE,
    PRIMARY KEY (name, certificate_id)
);

CREATE TABLE revocations (
    certificate_id TEXT PRIMARY KEY REFERENCES certificates(id),
    ca_id          TEXT NOT NULL REFERENCES cas(id),
    serial         TEXT NOT NULL,
    reason         BIGINT NOT NULL,
    revoked_at     BIGINT NOT NULL,
    revoked_by     TEXT NOT NULL
);
CREATE INDEX revocations_ca ON revocations (ca_id);

CREATE TABLE api_tokens (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('admin', 'issuer', 'viewer')),
    profiles   TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT,
    created_by TEXT NOT NULL
);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    object_type TEXT NOT NULL,
    object_id   TEXT,
    source      TEXT,
    detail      TEXT
);

CREATE TABLE server_state (
    key        TEXT PRIMARY KEY,
    value      BLOB NOT NULL,
    updated_at BIGINT NOT NULL
);
