-- The expiry-alert sweep's renewal check (a later certificate with the same subject and
-- names) reads discovered certificates by subject and expiry, as it reads ours through
-- certificates_subject_not_after.
CREATE INDEX discovery_certificates_subject_not_after ON discovery_certificates (subject, not_after);
