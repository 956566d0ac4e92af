-- A running discovery scan can be cancelled: status 'cancelled'.
ALTER TABLE discovery_scans DROP CONSTRAINT discovery_scans_status_check;
ALTER TABLE discovery_scans ADD CONSTRAINT discovery_scans_status_check
    CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled'));
