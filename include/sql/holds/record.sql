-- A guard held the day: record why (the latest hold of the day wins).
INSERT INTO digest.day_holds (digest_date, guard, problems, held_at)
VALUES (%(digest_date)s, %(guard)s, %(problems)s::jsonb, now())
ON CONFLICT (digest_date) DO UPDATE
SET guard = EXCLUDED.guard, problems = EXCLUDED.problems, held_at = now();
