-- Indexes for the dashboard's lists, each read a page at a time in SQL.

-- ACME accounts, newest first (keyset: created_at, id), and an account's orders the same
-- way: the orders' index gains the id, so a page is read in index order.
CREATE INDEX acme_accounts_created ON acme_accounts (created_at, id);
DROP INDEX acme_orders_account;
CREATE INDEX acme_orders_account ON acme_orders (account_id, created_at, id);

-- The outbox of one status, newest first (the dead rows to retry).
CREATE INDEX alert_outbox_status_created ON alert_outbox (status, created_at, id);

-- Pushes to destinations that failed, most recent first (the overview's failures).
CREATE INDEX sync_bindings_failed ON sync_bindings (updated_at) WHERE failures > 0;

-- EST credentials, newest first (keyset: created_at, id).
CREATE INDEX est_credentials_created ON est_credentials (created_at, id);

-- Managed certificates whose last renewal failed (the overview's failures).
CREATE INDEX managed_certificates_failing ON managed_certificates (renewal_failures) WHERE renewal_failures > 0;
