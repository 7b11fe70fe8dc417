-- Who may know, now, and whether they want to: active users with access (not revoked) to an
-- active, not deleted entity's billing who have a billing-errors preference. opted_in: the alert
-- is on (they receive the digest); off: they turned it off (Meu Perfil -> Notificações, or the
-- one-click unsubscribe link), recorded in the ledger as skipped (opted_out) so "why did Ana get
-- nothing today?" has an answer. Users who never turned it on (no row) are neither.
SELECT a.entity_id, u.id AS user_id, u.name AS user_name, u.email, p.enabled AS opted_in
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
  AND e.deleted_at IS NULL;
