SELECT entity_id, payload FROM digest.entity_digests
WHERE digest_date = %(digest_date)s AND entity_id = ANY(%(entity_ids)s::bigint[]);
