-- Host agents and knowing what is deployed where (PostgreSQL).
--
-- An `agent` token is limited to the managed certificates listed in its `managed` column
-- (ids, JSON).
ALTER TABLE api_tokens DROP CONSTRAINT IF EXISTS api_tokens_role_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_role_check
    CHECK (role IN ('admin', 'issuer', 'viewer', 'agent'));
ALTER TABLE api_tokens ADD COLUMN managed TEXT NOT NULL DEFAULT '[]';

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
