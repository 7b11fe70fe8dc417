-- Who may and wants to know, now: active users with access (not revoked) to an active,
-- not deleted entity's billing, who turned the billing-errors alert on.
SELECT a.entity_id, u.id AS user_id, u.name AS user_name, u.email
FROM billing.user_entity_access a
JOIN billing.users u ON u.id = a.user_id
JOIN billing.entities e ON e.id = a.entity_id
JOIN billing.notification_preferences p
  ON p.user_id = a.user_id AND p.kind = %(kind)s
WHERE a.entity_id = ANY(%(entity_ids)s)
  AND e.id = ANY(%(entity_ids)s)  -- the same, said of e: the companies are then read by key, not all
  AND a.revoked_at IS NULL
  AND u.active
  AND e.active
  AND e.deleted_at IS NULL
  AND p.enabled;
