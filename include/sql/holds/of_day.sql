-- The hold of one day, if a guard held it.
SELECT guard, problems, held_at FROM digest.day_holds WHERE digest_date = %(digest_date)s;
