-- Lift suppressions, recorded in the row and in the history: by hand (addresses given), at the end of
-- their TTL (expired), or because the user's address changed (users given with their current address).
-- The score starts again from zero. Returns what was lifted.
WITH lifted AS (
    UPDATE digest.suppressions s
    SET suppressed_at = NULL, expires_at = NULL, bounce_score = 0,
        lifted_at = %(now)s, lifted_by = %(actor)s, lift_reason = %(why)s
    WHERE s.suppressed_at IS NOT NULL
      AND CASE %(why)s
            WHEN 'manual' THEN s.address = ANY(%(addresses)s::text[])
            WHEN 'ttl' THEN s.expires_at <= %(now)s
            WHEN 'address_changed' THEN EXISTS (
                SELECT 1 FROM unnest(%(user_ids)s::bigint[], %(addresses)s::text[]) AS p (user_id, address)
                WHERE p.user_id = s.user_id AND p.address <> s.address)
          END
    RETURNING s.address, s.user_id
), logged AS (
    INSERT INTO digest.suppression_events (address, at, event, detail, source, actor)
    SELECT address, %(now)s, 'lifted', %(detail)s, %(why)s, %(actor)s FROM lifted
)
SELECT address, user_id FROM lifted ORDER BY address;
