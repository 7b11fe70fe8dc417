-- Give back reservations of the daily quota whose messages were not accepted (refused, deferred, not sent).
UPDATE digest.send_quota SET used = greatest(0, used - %(n)s) WHERE name = %(name)s AND bucket = %(bucket)s;
