-- One entity's digest payload of a day.
SELECT entity_id, error_count, payload, updated_at
FROM digest.entity_digests
WHERE digest_date = %(digest_date)s AND entity_id = %(entity_id)s;
