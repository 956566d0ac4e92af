-- When an order started finalizing. Finalization happens within one request; an order
-- still processing long after (its process died between the two transitions) is ended as
-- invalid by a background job, so its client stops polling and orders again.
ALTER TABLE acme_orders ADD COLUMN processing_since BIGINT;
UPDATE acme_orders SET processing_since = 0 WHERE status = 'processing';
CREATE INDEX acme_orders_processing ON acme_orders (processing_since) WHERE status = 'processing';
