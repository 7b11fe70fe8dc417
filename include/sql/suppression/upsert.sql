-- A bounce recorded: the row's new state (computed by suppression.after_bounce), first_event_at kept.
INSERT INTO digest.suppressions AS s (address, user_id, reason, code, reply, source, bounce_score, bounce_count, last_scored_on,
                                      first_event_at, last_event_at, suppressed_at, expires_at)
VALUES (%(address)s, %(user_id)s, %(reason)s, %(code)s, %(reply)s, %(source)s, %(bounce_score)s, %(bounce_count)s, %(last_scored_on)s,
        %(at)s, %(at)s, %(suppressed_at)s, %(expires_at)s)
ON CONFLICT (address) DO UPDATE
SET user_id = coalesce(excluded.user_id, s.user_id), reason = excluded.reason, code = excluded.code,
    reply = excluded.reply, source = excluded.source, bounce_score = excluded.bounce_score,
    bounce_count = excluded.bounce_count, last_scored_on = excluded.last_scored_on, last_event_at = greatest(s.last_event_at, excluded.last_event_at),
    suppressed_at = excluded.suppressed_at, expires_at = excluded.expires_at;
