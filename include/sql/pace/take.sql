-- Take a lease of send slots from the cluster-wide limiter (include/sql/schema/006_pace.sql), reporting the
-- messages accepted since the last lease.
SELECT granted, wait_s, interval_s, rate
FROM digest.pace_take(%(name)s, %(cap)s, %(accepted)s, %(lease_seconds)s, %(increase)s, %(fast)s, %(rejoin)s);
