-- What the unsubscribe pages show about the token's user: the name (only the first name is
-- shown), the alert's label and whether it is on now (no preference row = off). No row: no
-- such user.
SELECT u.name, k.label, coalesce(p.enabled, false) AS enabled
FROM billing.users u
LEFT JOIN billing.notification_kinds k ON k.code = %(kind)s
LEFT JOIN billing.notification_preferences p ON p.user_id = u.id AND p.kind = %(kind)s
WHERE u.id = %(user_id)s;
