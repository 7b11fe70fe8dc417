-- A throttle reply came: cut the cluster-wide rate (at most once per min_gap seconds); returns the rate now.
SELECT digest.pace_throttled(%(name)s, %(cap)s, %(decrease)s, %(increase)s, %(min_gap)s, %(floor)s,
                             %(accepted)s, %(own_rate)s);
