-- Default freshness test: the billing data is complete up to its latest recorded attempt (one probe
-- of step_attempts_attempted_at_idx). Attempts time-stamped in the future (a bad clock) are ignored.
-- A deployment with a better signal (a replication lag, a load log) sets the setting freshness_query.
SELECT max(attempted_at) FROM billing.step_attempts WHERE attempted_at <= now() + interval '1 hour';
