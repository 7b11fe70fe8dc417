-- The locked rows, read again after locking: a row another run sent meanwhile drops out.
-- For a deliberate re-send, rows already re-sent by this run are left alone (task retries).
-- In the order given (the batch's sending order: worst first, an entity's recipients together).
SELECT id, entity_id, user_id, recipient_name, email, state, attempts
FROM digest.deliveries
WHERE id = ANY(%(ids)s::bigint[])
  AND state = ANY(%(states)s)
  AND (NOT %(resend)s OR last_run_id IS DISTINCT FROM %(run_id)s OR state <> 'sent')
ORDER BY array_position(%(ids)s::bigint[], id);
