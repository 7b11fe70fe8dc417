SELECT count(*) FROM digest.entity_digests WHERE digest_date = %(digest_date)s;
