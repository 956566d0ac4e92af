-- Pruning finished ACME bookkeeping (orders, authorizations and challenges long expired,
-- ended rate-limit windows) and counting an account's pending authorizations.
CREATE INDEX acme_orders_expires ON acme_orders (expires_at);
CREATE INDEX acme_authz_expires ON acme_authorizations (expires_at);
CREATE INDEX acme_authz_pending ON acme_authorizations (account_id, status, expires_at);
CREATE INDEX acme_rate_limits_window ON acme_rate_limits (window_start);
