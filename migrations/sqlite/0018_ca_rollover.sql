-- CA rollover: a CA names the successor that issues in its place from a given time, and
-- cross certificates between roots are kept for the chains that need them. Additive: a
-- replica that does not know these columns keeps issuing from the CA a profile names.
ALTER TABLE cas ADD COLUMN successor_id TEXT REFERENCES cas(id);
ALTER TABLE cas ADD COLUMN successor_from BIGINT;

CREATE TABLE ca_cross_certificates (
    id              TEXT PRIMARY KEY,
    subject_ca_id   TEXT NOT NULL REFERENCES cas(id),
    issuer_ca_id    TEXT NOT NULL REFERENCES cas(id),
    cert_der        BLOB NOT NULL,
    serial          TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    not_before      BIGINT NOT NULL,
    not_after       BIGINT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX ca_cross_certificates_subject ON ca_cross_certificates (subject_ca_id);
