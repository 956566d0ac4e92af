-- Certificates found by discovery count for expiry alerts like our own: the alert inventory
-- gains every discovered certificate that is still served somewhere and is not one of ours
-- (ours are already there, with their profile and CA). Discovered rows have no certificate
-- id, CA or profile, so only selectors on all certificates, tags and "discovered only" reach
-- them.
DROP VIEW alert_inventory;
CREATE VIEW alert_inventory AS
SELECT id AS certificate_id, fingerprint, ca_id, profile_name, subject, common_name, sans,
       not_after, status, 'issued' AS source
FROM certificates
UNION ALL
SELECT CAST(NULL AS TEXT), d.fingerprint, CAST(NULL AS TEXT), CAST(NULL AS TEXT), d.subject,
       CAST(NULL AS TEXT), d.dns_names, d.not_after, 'valid', 'discovered'
FROM discovery_certificates d
WHERE d.certificate_id IS NULL
  AND EXISTS (SELECT 1 FROM discovery_endpoints e WHERE e.fingerprint = d.fingerprint AND e.gone_at IS NULL);
