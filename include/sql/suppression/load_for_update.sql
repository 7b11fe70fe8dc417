-- One mailbox's suppression row, locked until the bounce that changes it is recorded.
SELECT address, reason, bounce_score, bounce_count, last_scored_on, last_event_at, suppressed_at, expires_at
FROM digest.suppressions WHERE address = %(address)s FOR UPDATE;
