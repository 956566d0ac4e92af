-- More destination kinds (AWS Secrets Manager, AWS load balancer listeners, Cloudflare),
-- and a per-destination setting: remove what certkeeper put there when a binding goes.
ALTER TABLE sync_destinations DROP CONSTRAINT sync_destinations_kind_check;
ALTER TABLE sync_destinations ADD CONSTRAINT sync_destinations_kind_check
    CHECK (kind IN ('aws_acm', 'azure_key_vault', 'aws_secrets_manager', 'aws_elb', 'cloudflare'));
ALTER TABLE sync_destinations ADD COLUMN remove_on_unbind BIGINT NOT NULL DEFAULT 0;
