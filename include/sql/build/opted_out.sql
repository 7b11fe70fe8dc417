-- Who would receive a company's digest but turned the billing-errors alert off (Meu Perfil ->
-- Notificações, or the one-click unsubscribe link): the same rules as build/recipients, with the
-- preference row present and off. They are recorded in the ledger as skipped (opted_out), so
-- "why did Ana get nothing today?" has an answer; users who never turned it on (no row) are not.
SELECT a.entity_id, u.id AS user_id, u.name AS user_name, u.email
FROM billing.user_entity_access a
JOIN billing.users u ON u.id = a.user_id
JOIN billing.entities e ON e.id = a.entity_id
JOIN billing.notification_preferences p
  ON p.user_id = a.user_id AND p.kind = %(kind)s
WHERE a.entity_id = ANY(%(entity_ids)s)
  AND e.id = ANY(%(entity_ids)s)
  AND a.revoked_at IS NULL
  AND u.active
  AND e.active
  AND e.deleted_at IS NULL
  AND NOT p.enabled;
