-- A throttle reply came: cut the cluster-wide rate (at most once per min_gap seconds); the rate now, and
-- what the cut started from (NULL: no cut, one came less than min_gap ago).
SELECT rate, measured FROM digest.pace_throttled(%(name)s, %(cap)s, %(decrease)s, %(increase)s, %(min_gap)s, %(floor)s,
                             %(accepted)s, %(own_rate)s, %(fast)s, %(rejoin)s);
