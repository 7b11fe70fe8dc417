-- Suppressed mailboxes now, newest first (the CLI's list).
SELECT address, user_id, reason, code, source, bounce_count, suppressed_at, expires_at, reply
FROM digest.suppressions
WHERE suppressed_at IS NOT NULL AND expires_at > %(now)s
ORDER BY suppressed_at DESC, address;
