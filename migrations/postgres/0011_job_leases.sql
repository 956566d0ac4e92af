-- Periodic jobs that must run on one replica at a time (CRL refresh, ACME reclaim) take a
-- lease per run: a row per job, won with a compare-and-set on the owner and expiry.
CREATE TABLE job_leases (
    name       TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
