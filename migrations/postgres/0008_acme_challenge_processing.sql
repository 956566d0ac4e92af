-- When a challenge's validation started (Unix seconds; NULL unless processing). Validation
-- runs in a background task, so a process that dies mid-validation leaves the challenge
-- processing; any replica finds such challenges by this time and validates them again.
ALTER TABLE acme_challenges ADD COLUMN processing_since BIGINT;
-- Challenges already processing have no start time: count them as started long ago.
UPDATE acme_challenges SET processing_since = 0 WHERE status = 'processing';
CREATE INDEX acme_challenges_processing ON acme_challenges (processing_since) WHERE status = 'processing';
