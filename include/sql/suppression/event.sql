-- One line of a mailbox's suppression history.
INSERT INTO digest.suppression_events (address, at, event, code, detail, source, actor)
VALUES (%(address)s, %(at)s, %(event)s, %(code)s, %(detail)s, %(source)s, %(actor)s);
