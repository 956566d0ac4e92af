-- Renewal information (RFC 9773) from upstream ACME CAs, per managed certificate: the
-- window the upstream suggested for the current version, its explanation, and when to ask
-- again. All NULL until the first check, and again after each renewal.
ALTER TABLE managed_certificates ADD COLUMN ari_window_start BIGINT;
ALTER TABLE managed_certificates ADD COLUMN ari_window_end BIGINT;
ALTER TABLE managed_certificates ADD COLUMN ari_explanation TEXT;
ALTER TABLE managed_certificates ADD COLUMN ari_check_at BIGINT;
