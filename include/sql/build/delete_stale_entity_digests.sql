-- Entities that no longer have errors for the day (data corrected before a re-run).
DELETE FROM digest.entity_digests d
WHERE d.digest_date = %(digest_date)s
  AND NOT EXISTS (SELECT 1 FROM _entity_digests s WHERE s.entity_id = d.entity_id);
