-- Send-time check of each (entity, user): the state now decides who receives.
SELECT p.entity_id, p.user_id, u.name AS user_name, u.email,
       coalesce(u.active, false) AS user_active,
       (a.user_id IS NOT NULL AND a.revoked_at IS NULL) AS has_access,
       coalesce(e.active AND e.deleted_at IS NULL, false) AS entity_active,
       coalesce(np.enabled, false) AS opted_in
FROM unnest(%(entity_ids)s::bigint[], %(user_ids)s::bigint[]) AS p (entity_id, user_id)
LEFT JOIN billing.users u ON u.id = p.user_id
LEFT JOIN billing.user_entity_access a ON a.user_id = p.user_id AND a.entity_id = p.entity_id
LEFT JOIN billing.entities e ON e.id = p.entity_id
LEFT JOIN billing.notification_preferences np
  ON np.user_id = p.user_id AND np.kind = %(kind)s;
