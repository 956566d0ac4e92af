-- How many certificates each CA has in each state, by the hour they end (`not_after`
-- divided by 3600). The dashboard's counts (valid, expired, revoked, ending within 7, 30
-- and 90 days, issued by each CA) read these and, for the hours the current time and the
-- windows' ends fall in, the certificates of that hour: the cost grows with the hours the
-- inventory spans, not with the certificates in it. Kept by the writes that add
-- certificates (one row per hour and CA a batch touches) and revoke them.
CREATE TABLE certificate_tallies (
    ca_id       TEXT NOT NULL,
    status      TEXT NOT NULL,
    expiry_hour BIGINT NOT NULL,
    count       BIGINT NOT NULL,
    PRIMARY KEY (ca_id, status, expiry_hour)
);
INSERT INTO certificate_tallies (ca_id, status, expiry_hour, count)
SELECT ca_id, status, not_after / 3600, COUNT(*) FROM certificates
GROUP BY ca_id, status, not_after / 3600;
