-- A message not accepted (failed / deferred) or not sent (skipped), with the reason.
UPDATE digest.deliveries
SET state = %(state)s, reason = %(reason)s, attempts = attempts + %(attempts)s,
    updated_at = now(), last_run_id = %(run_id)s
WHERE id = %(id)s AND state <> 'sent';
