-- One-click unsubscribe: turn one kind of notification off for one user; no other kind, no other
-- user. A missing preference row is created off; a row already off is left as it is (its
-- updated_at keeps the moment of the change), so a repeated POST changes nothing. Each change
-- is recorded in digest.unsubscribes, in the same statement. Returns one row per change: none
-- when the alert was already off or the user does not exist.
WITH target AS (
    SELECT id FROM billing.users WHERE id = %(user_id)s
), turned_off AS (
    INSERT INTO billing.notification_preferences AS p (user_id, kind, enabled, updated_at)
    SELECT id, %(kind)s, false, now() FROM target
    ON CONFLICT (user_id, kind) DO UPDATE SET enabled = false, updated_at = now()
    WHERE p.enabled
    RETURNING p.user_id, p.kind
)
INSERT INTO digest.unsubscribes (user_id, kind, source)
SELECT user_id, kind, %(source)s FROM turned_off
RETURNING user_id, kind;
