-- Rows of one batch that may be sent now, in entity order (recipients of an entity together).
SELECT id, entity_id
FROM digest.deliveries
WHERE digest_date = %(digest_date)s
  AND batch = %(batch)s
  AND state = ANY(%(states)s)
  AND (%(entity_ids)s::bigint[] IS NULL OR entity_id = ANY(%(entity_ids)s::bigint[]))
ORDER BY entity_id, user_id;
