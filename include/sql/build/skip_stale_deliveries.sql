-- Rows of a previous build that are no longer recipients (or whose entity has no errors
-- any more) are skipped, not sent.
UPDATE digest.deliveries d
SET state = 'skipped', reason = 'no_longer_recipient', updated_at = now()
WHERE d.digest_date = %(digest_date)s
  AND d.state = ANY(%(sendable_states)s)
  AND NOT EXISTS (SELECT 1 FROM _deliveries s WHERE s.entity_id = d.entity_id AND s.user_id = d.user_id);
