-- Discovery: an inventory of certificates found on the network, the endpoints serving
-- them, scan jobs with their results and changes, and saved scans run on a schedule.

-- Every certificate ever seen, once per fingerprint.
CREATE TABLE discovery_certificates (
    fingerprint          TEXT PRIMARY KEY,
    subject              TEXT NOT NULL,
    issuer               TEXT NOT NULL,
    serial               TEXT NOT NULL,
    not_before           BIGINT NOT NULL,
    not_after            BIGINT NOT NULL,
    dns_names            TEXT NOT NULL,
    key_type             TEXT NOT NULL,
    key_bits             BIGINT NOT NULL,
    signature_algorithm  TEXT NOT NULL,
    issued_by_certkeeper BIGINT NOT NULL,
    certificate_id       TEXT REFERENCES certificates(id),
    der                  BYTEA NOT NULL,
    first_seen           BIGINT NOT NULL,
    last_seen            BIGINT NOT NULL
);
CREATE INDEX discovery_certificates_not_after ON discovery_certificates (not_after);

-- An address, port and server name, and the certificate it served when last seen.
CREATE TABLE discovery_endpoints (
    id           TEXT PRIMARY KEY,
    address      TEXT NOT NULL,
    port         BIGINT NOT NULL,
    sni          TEXT NOT NULL,
    fingerprint  TEXT NOT NULL REFERENCES discovery_certificates(fingerprint),
    findings     TEXT NOT NULL,
    tls_version  TEXT NOT NULL,
    cipher_suite TEXT NOT NULL,
    first_seen   BIGINT NOT NULL,
    last_seen    BIGINT NOT NULL,
    gone_at      BIGINT,
    last_scan_id TEXT NOT NULL,
    UNIQUE (address, port, sni)
);
CREATE INDEX discovery_endpoints_fingerprint ON discovery_endpoints (fingerprint);

-- Scans saved with a cron schedule. lease_owner/lease_until: the replica running it.
CREATE TABLE discovery_schedules (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    spec         TEXT NOT NULL,
    cron         TEXT NOT NULL,
    enabled      BIGINT NOT NULL,
    next_run     BIGINT NOT NULL,
    lease_owner  TEXT,
    lease_until  BIGINT NOT NULL,
    last_scan_id TEXT,
    created_at   BIGINT NOT NULL,
    created_by   TEXT NOT NULL
);

-- One scan: its request, progress, outcome and what changed.
CREATE TABLE discovery_scans (
    id          TEXT PRIMARY KEY,
    schedule_id TEXT REFERENCES discovery_schedules(id) ON DELETE SET NULL,
    spec        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    total       BIGINT NOT NULL,
    done        BIGINT NOT NULL,
    handshakes  BIGINT NOT NULL,
    error       TEXT,
    changes     TEXT,
    created_at  BIGINT NOT NULL,
    started_at  BIGINT,
    finished_at BIGINT,
    created_by  TEXT NOT NULL
);
CREATE INDEX discovery_scans_created ON discovery_scans (created_at);

-- What a scan saw at each endpoint that answered (refused connections are not kept).
CREATE TABLE discovery_results (
    scan_id     TEXT NOT NULL REFERENCES discovery_scans(id) ON DELETE CASCADE,
    seq         BIGINT NOT NULL,
    observation TEXT NOT NULL,
    PRIMARY KEY (scan_id, seq)
);
