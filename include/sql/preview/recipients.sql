-- The ledger rows of one entity's digest, current names first (the preview's recipients), with the
-- suppression of the address when it is suppressed now (why and since when; issue 15).
SELECT l.user_id, coalesce(u.name, l.recipient_name) AS name, l.recipient_name, l.email, l.sent_to,
       l.state, l.reason, l.attempts, l.sent_at, l.message_id, l.resend_count, l.batch, l.updated_at,
       s.address AS suppressed_address, s.reason AS suppression_reason, s.code AS suppression_code, s.suppressed_at, s.expires_at AS suppressed_until
FROM digest.deliveries l
LEFT JOIN billing.users u ON u.id = l.user_id
LEFT JOIN digest.suppressions s
  ON s.address = lower(l.email) AND s.suppressed_at IS NOT NULL AND s.expires_at > now()
WHERE l.digest_date = %(digest_date)s AND l.entity_id = %(entity_id)s
ORDER BY (l.state = 'skipped'), l.user_id;
