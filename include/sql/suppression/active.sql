-- The send-time check: which of these mailboxes are suppressed now (a TTL past its expiry is not).
SELECT address, reason, code, suppressed_at, expires_at
FROM digest.suppressions
WHERE address = ANY(%(addresses)s::text[]) AND suppressed_at IS NOT NULL AND expires_at > %(now)s;
