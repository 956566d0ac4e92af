-- Host agents and knowing what is deployed where.
--
-- An `agent` token is limited to the managed certificates listed in its `managed` column
-- (ids, JSON). SQLite cannot change a CHECK constraint, so the tokens table is rebuilt
-- with the same columns plus `managed` (nothing refers to it).
CREATE TABLE api_tokens_next (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('admin', 'issuer', 'viewer', 'agent')),
    profiles   TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT,
    created_by TEXT NOT NULL,
    managed    TEXT NOT NULL DEFAULT '[]'
);
INSERT INTO api_tokens_next (id, name, role, profiles, token_hash, created_at, expires_at, revoked_at, created_by)
SELECT id, name, role, profiles, token_hash, created_at, expires_at, revoked_at, created_by
FROM api_tokens;
DROP TABLE api_tokens;
ALTER TABLE api_tokens_next RENAME TO api_tokens;

-- What each agent last reported for a managed certificate: one row per host. `since`:
-- when this host first reported the version it holds now. `output`: the reload
-- command's (bounded) output when the reload failed.
CREATE TABLE agent_deployments (
    managed_id  TEXT NOT NULL REFERENCES managed_certificates(id) ON DELETE CASCADE,
    host        TEXT NOT NULL,
    token_id    TEXT NOT NULL,
    version     BIGINT NOT NULL,
    reload_ok   BIGINT NOT NULL,
    output      TEXT,
    since       BIGINT NOT NULL,
    reported_at BIGINT NOT NULL,
    PRIMARY KEY (managed_id, host)
);

-- Places (an endpoint seen by discovery, or an agent's host) still serving a version of a
-- managed certificate after a newer one was issued. A row is the proof that its
-- `deployment.stale` alert was raised (once per place and version, on any number of
-- replicas); it is deleted once the place no longer serves that version.
CREATE TABLE stale_deployments (
    managed_id TEXT NOT NULL REFERENCES managed_certificates(id) ON DELETE CASCADE,
    place_kind TEXT NOT NULL CHECK (place_kind IN ('endpoint', 'host')),
    place      TEXT NOT NULL,
    version    BIGINT NOT NULL,
    since      BIGINT NOT NULL,
    alerted_at BIGINT NOT NULL,
    PRIMARY KEY (managed_id, place_kind, place, version)
);

-- When an endpoint started serving the certificate it serves now (null: since first_seen,
-- or written by an older replica).
ALTER TABLE discovery_endpoints ADD COLUMN fingerprint_since BIGINT;
