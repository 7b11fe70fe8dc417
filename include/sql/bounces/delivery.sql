-- The ledger row a bounce names: by its VERP token's row id, else the latest digest sent to the address.
SELECT id, digest_date, user_id, sent_to
FROM digest.deliveries
WHERE (%(id)s::bigint IS NOT NULL AND id = %(id)s::bigint)
   OR (%(id)s::bigint IS NULL AND lower(sent_to) = %(address)s)
ORDER BY sent_at DESC NULLS LAST
LIMIT 1;
