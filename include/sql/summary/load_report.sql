SELECT summary FROM digest.day_reports WHERE digest_date = %(digest_date)s;
