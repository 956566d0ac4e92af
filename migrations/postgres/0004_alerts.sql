-- Expiry alerts, lifecycle events and their durable outbox. Times are Unix seconds (UTC).

-- Notification channels. `config` holds what may be shown; `secret_sealed` holds the
-- URL, HMAC key, custom headers or SMTP password, sealed with the master key.
CREATE TABLE alert_channels (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    kind          TEXT NOT NULL CHECK (kind IN ('webhook', 'slack', 'teams', 'discord', 'email')),
    config        TEXT NOT NULL,
    secret_sealed BYTEA NOT NULL,
    created_at    BIGINT NOT NULL
);

-- Which certificates, which thresholds, which channels, which lifecycle events.
CREATE TABLE alert_rules (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    selector       TEXT NOT NULL,
    thresholds     TEXT NOT NULL,
    channels       TEXT NOT NULL,
    events         TEXT NOT NULL,
    daily_reminder BIGINT NOT NULL DEFAULT 0,
    digest         BIGINT NOT NULL DEFAULT 0,
    enabled        BIGINT NOT NULL DEFAULT 1,
    created_at     BIGINT NOT NULL
);

-- One row per (rule, certificate fingerprint, threshold slot) that has fired. The primary
-- key is the deduplication: replicas sweeping at once insert with ON CONFLICT DO NOTHING,
-- and only the insert that wins produces a notification.
CREATE TABLE alert_fired (
    rule_id        TEXT NOT NULL REFERENCES alert_rules(id) ON DELETE CASCADE,
    fingerprint    TEXT NOT NULL,
    slot           TEXT NOT NULL,
    certificate_id TEXT,
    subject        TEXT NOT NULL,
    not_after      BIGINT NOT NULL,
    fired_at       BIGINT NOT NULL,
    PRIMARY KEY (rule_id, fingerprint, slot)
);

-- Events (expiry crossings and lifecycle events), as CloudEvents type + JSON data.
CREATE TABLE alert_events (
    id         TEXT PRIMARY KEY,
    type       TEXT NOT NULL,
    subject    TEXT,
    data       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- The durable outbox: written (with its event) before anything is sent.
CREATE TABLE alert_outbox (
    id              TEXT PRIMARY KEY,
    event_id        TEXT NOT NULL REFERENCES alert_events(id) ON DELETE CASCADE,
    channel_id      TEXT NOT NULL REFERENCES alert_channels(id) ON DELETE CASCADE,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT NOT NULL DEFAULT 0,
    lease_token     TEXT,
    last_error      TEXT,
    last_status     BIGINT,
    created_at      BIGINT NOT NULL,
    delivered_at    BIGINT,
    CONSTRAINT alert_outbox_event_channel_key UNIQUE (event_id, channel_id)
);
CREATE INDEX alert_outbox_due ON alert_outbox (status, next_attempt_at);
CREATE INDEX alert_outbox_created ON alert_outbox (created_at, id);

-- Free-form tags on any inventoried certificate, by fingerprint (issued, imported or
-- discovered alike), for rule selectors.
CREATE TABLE inventory_tags (
    fingerprint TEXT NOT NULL,
    tag         TEXT NOT NULL,
    PRIMARY KEY (fingerprint, tag)
);
CREATE INDEX inventory_tags_tag ON inventory_tags (tag, fingerprint);

-- Finding the newer certificate for the same subject and names (a renewal) is an index
-- probe, so renewed certificates stop alerting.
CREATE INDEX certificates_subject_not_after ON certificates (subject, not_after);

-- Every certificate the alerts watch. Today: the certificates this server issued or
-- imported. Discovery adds its inventory by replacing this view with a UNION ALL of a
-- second SELECT with the same columns and source = 'discovered' (see src/alerts/mod.rs).
CREATE VIEW alert_inventory AS
SELECT id AS certificate_id, fingerprint, ca_id, profile_name, subject, common_name, sans,
       not_after, status, 'issued' AS source
FROM certificates;
