-- One ledger row per (day, entity, user). A row already sent or permanently failed keeps
-- its state: a re-run never resets it. A deferred row stays deferred (it will be retried).
INSERT INTO digest.deliveries (digest_date, entity_id, user_id, recipient_name, email, batch, state, reason)
SELECT %(digest_date)s, entity_id, user_id, recipient_name, email, batch,
       CASE WHEN skip_reason IS NULL THEN 'pending' ELSE 'skipped' END, skip_reason
FROM _deliveries
ORDER BY entity_id, user_id
ON CONFLICT (digest_date, entity_id, user_id) DO UPDATE
SET recipient_name = EXCLUDED.recipient_name,
    email = EXCLUDED.email,
    batch = EXCLUDED.batch,
    state = CASE WHEN digest.deliveries.state IN ('sent', 'failed') THEN digest.deliveries.state
                 WHEN EXCLUDED.state = 'skipped' THEN 'skipped'
                 WHEN digest.deliveries.state = 'deferred' THEN 'deferred'
                 ELSE 'pending' END,
    reason = CASE WHEN digest.deliveries.state IN ('sent', 'failed', 'deferred')
                       AND EXCLUDED.state <> 'skipped' THEN digest.deliveries.reason
                  ELSE EXCLUDED.reason END,
    updated_at = now();
