-- The day's per-entity payloads replace a previous build's (a re-run sees current data).
INSERT INTO digest.entity_digests (digest_date, entity_id, error_count, payload, updated_at)
SELECT %(digest_date)s, entity_id, error_count, payload, now() FROM _entity_digests
ON CONFLICT (digest_date, entity_id) DO UPDATE
SET error_count = EXCLUDED.error_count, payload = EXCLUDED.payload, updated_at = now();
