-- The ledger rows of one entity's digest, current names first (the preview's recipients).
SELECT l.user_id, coalesce(u.name, l.recipient_name) AS name, l.recipient_name, l.email, l.sent_to,
       l.state, l.reason, l.attempts, l.sent_at, l.message_id, l.resend_count, l.batch, l.updated_at
FROM digest.deliveries l
LEFT JOIN billing.users u ON u.id = l.user_id
WHERE l.digest_date = %(digest_date)s AND l.entity_id = %(entity_id)s
ORDER BY (l.state = 'skipped'), l.user_id;
