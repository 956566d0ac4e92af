-- More destination kinds (AWS Secrets Manager, AWS load balancer listeners, Cloudflare),
-- and a per-destination setting: remove what certkeeper put there when a binding goes.
-- SQLite cannot change a CHECK constraint, so the destinations table is rebuilt, and with
-- it the bindings table that refers to it (dropped first, so dropping the old destinations
-- table deletes nothing through its foreign key; the rename makes the new bindings table
-- refer to the new destinations table).
CREATE TABLE sync_destinations_next (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL UNIQUE,
    kind             TEXT NOT NULL CHECK (kind IN ('aws_acm', 'azure_key_vault', 'aws_secrets_manager', 'aws_elb', 'cloudflare')),
    config           TEXT NOT NULL,
    secret_sealed    BLOB,
    created_at       BIGINT NOT NULL,
    created_by       TEXT NOT NULL,
    remove_on_unbind BIGINT NOT NULL DEFAULT 0
);
INSERT INTO sync_destinations_next (id, name, kind, config, secret_sealed, created_at, created_by)
SELECT id, name, kind, config, secret_sealed, created_at, created_by FROM sync_destinations;

CREATE TABLE sync_bindings_next (
    managed_id      TEXT NOT NULL REFERENCES managed_certificates(id) ON DELETE CASCADE,
    destination_id  TEXT NOT NULL REFERENCES sync_destinations_next(id),
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
INSERT INTO sync_bindings_next (managed_id, destination_id, pushed_version, remote_id, remote_version, last_error, failures, next_attempt_at, lease_owner, lease_until, updated_at)
SELECT managed_id, destination_id, pushed_version, remote_id, remote_version, last_error, failures, next_attempt_at, lease_owner, lease_until, updated_at
FROM sync_bindings;

DROP TABLE sync_bindings;
DROP TABLE sync_destinations;
ALTER TABLE sync_destinations_next RENAME TO sync_destinations;
ALTER TABLE sync_bindings_next RENAME TO sync_bindings;
CREATE INDEX sync_bindings_due ON sync_bindings (next_attempt_at);
