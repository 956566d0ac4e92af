-- The expiry sweep reads only what moved since the previous sweep of each rule.
-- `alert_sweeps` remembers, per rule, when it was last swept and the definition it was
-- swept with (`rule_key`: thresholds, reminders, selector); a rule whose definition
-- changed, or that has no row yet, is swept in full once. Replicas share the row.
CREATE TABLE alert_sweeps (
    rule_id  TEXT PRIMARY KEY,
    rule_key TEXT NOT NULL,
    swept_at BIGINT NOT NULL
);

-- The alert inventory gains `added_at`: when a row entered (issued) or was last seen
-- (discovered), so a sweep also reads rows that arrived already inside a window.
CREATE INDEX discovery_certificates_last_seen ON discovery_certificates (last_seen);
DROP VIEW alert_inventory;
CREATE VIEW alert_inventory AS
SELECT id AS certificate_id, fingerprint, ca_id, profile_name, subject, common_name, sans,
       not_after, status, 'issued' AS source, created_at AS added_at
FROM certificates
UNION ALL
SELECT CAST(NULL AS TEXT), d.fingerprint, CAST(NULL AS TEXT), CAST(NULL AS TEXT), d.subject,
       CAST(NULL AS TEXT), d.dns_names, d.not_after, 'valid', 'discovered', d.last_seen
FROM discovery_certificates d
WHERE d.certificate_id IS NULL
  AND EXISTS (SELECT 1 FROM discovery_endpoints e WHERE e.fingerprint = d.fingerprint AND e.gone_at IS NULL);
