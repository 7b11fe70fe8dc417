-- Only after the SMTP server accepted the message.
UPDATE digest.deliveries
SET state = 'sent', reason = NULL, attempts = attempts + %(attempts)s, message_id = %(message_id)s,
    sent_to = %(sent_to)s, sent_at = now(), updated_at = now(), last_run_id = %(run_id)s,
    resend_count = resend_count + CASE WHEN state = 'sent' THEN 1 ELSE 0 END
WHERE id = %(id)s;
