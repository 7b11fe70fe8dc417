-- Reserve messages of the provider's daily quota, cluster-wide (include/sql/schema/006_pace.sql): how many
-- were reserved (0: the quota is reached), in which bucket, and how many are left in the window.
SELECT granted, bucket, remaining FROM digest.quota_take(%(name)s, %(limit)s, %(window)s, %(n)s);
