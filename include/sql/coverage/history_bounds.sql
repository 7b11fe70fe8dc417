-- The attempt history's bounds: its first and last recorded attempt (any status). Two index
-- probes on step_attempts_attempted_at_idx, whatever the history's size. Attempts time-stamped
-- in the future (a bad clock) are ignored.
SELECT (SELECT min(attempted_at) FROM billing.step_attempts) AS first_attempt,
       (SELECT max(attempted_at) FROM billing.step_attempts
        WHERE attempted_at <= now() + interval '1 hour') AS last_attempt;
