-- A running discovery scan can be cancelled: status 'cancelled'. SQLite cannot change a
-- CHECK constraint, so the scans table is rebuilt, and with it the results table that
-- refers to it (dropped first, so dropping the old scans table deletes nothing through
-- its foreign key; the rename makes the new results table refer to the new scans table).
CREATE TABLE discovery_scans_next (
    id          TEXT PRIMARY KEY,
    schedule_id TEXT REFERENCES discovery_schedules(id) ON DELETE SET NULL,
    spec        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    total       BIGINT NOT NULL,
    done        BIGINT NOT NULL,
    handshakes  BIGINT NOT NULL,
    error       TEXT,
    changes     TEXT,
    created_at  BIGINT NOT NULL,
    started_at  BIGINT,
    finished_at BIGINT,
    created_by  TEXT NOT NULL
);
INSERT INTO discovery_scans_next (id, schedule_id, spec, status, total, done, handshakes, error, changes, created_at, started_at, finished_at, created_by)
SELECT id, schedule_id, spec, status, total, done, handshakes, error, changes, created_at, started_at, finished_at, created_by
FROM discovery_scans;

CREATE TABLE discovery_results_next (
    scan_id     TEXT NOT NULL REFERENCES discovery_scans_next(id) ON DELETE CASCADE,
    seq         BIGINT NOT NULL,
    observation TEXT NOT NULL,
    PRIMARY KEY (scan_id, seq)
);
INSERT INTO discovery_results_next (scan_id, seq, observation)
SELECT scan_id, seq, observation FROM discovery_results;

DROP TABLE discovery_results;
DROP TABLE discovery_scans;
ALTER TABLE discovery_scans_next RENAME TO discovery_scans;
ALTER TABLE discovery_results_next RENAME TO discovery_results;
CREATE INDEX discovery_scans_created ON discovery_scans (created_at);
