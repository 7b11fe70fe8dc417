"""The suppression list: classifying refusals (pure), the bounce score (pure), and its SQL (a real
PostgreSQL): record, check, lift by hand / TTL / changed address, the history and the product's view."""

from __future__ import annotations

import datetime as dt

import pytest

from billing_digest.delivery import suppression
from billing_digest.delivery.suppression import Bounce, SuppressionPolicy, after_bounce, classify

T0 = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
DAY = dt.date(2026, 11, 27)
POLICY = SuppressionPolicy()


@pytest.mark.parametrize("reply,kind,status", [
    ("550 5.1.1 <ana@acme.com.br>: Recipient address rejected: User unknown", "hard", "5.1.1"),
    ("550 5.1.2 Bad destination system address", "hard", "5.1.2"),
    ("553 5.1.3 Bad destination mailbox address syntax", "hard", "5.1.3"),
    ("556 5.1.10 Recipient address has null MX", "hard", "5.1.10"),
    ("550 5.2.1 The email account that you tried to reach is disabled", "hard", "5.2.1"),
    ("552 5.2.2 Mailbox full", "soft", "5.2.2"),
    ("452 4.2.2 Mailbox full, try later", "soft", "4.2.2"),
    ("452 4.3.1 Insufficient system storage", "soft", "4.3.1"),
    ("450 4.2.1 Mailbox disabled for now", "soft", "4.2.1"),
    ("550 User unknown", "hard", None),                 # no enhanced status: the text decides
    ("550 No such user here", "hard", None),
    ("452 Mailbox is full", "soft", None),
])
def test_mailbox_refusals_are_bounces(reply, kind, status):
    assert classify(reply) == Bounce(kind, status, reply)


@pytest.mark.parametrize("reply", [
    "550 5.7.1 Message rejected as spam",                # policy: our reputation, not the mailbox
    "554 5.7.26 Unauthenticated email is not accepted",  # DMARC
    "421 4.7.0 Too many connections, slow down",         # throttling
    "451 4.4.1 Connection timed out",                    # network
    "552 5.3.4 Message size exceeds fixed limit",        # size
    "550 Requested action not taken: mailbox unavailable",  # RFC 5321's text for any 550
    "450 4.1.1 User unknown (temporary lookup failure)",    # 4.1.1: not a permanent verdict
    "250 2.0.0 Ok", "connection lost: Connection unexpectedly closed",
])
def test_other_refusals_say_nothing_about_the_mailbox(reply):
    assert classify(reply) is None


def test_a_known_status_wins_over_the_text():
    assert classify("Delivery failed", status="5.1.1") == Bounce("hard", "5.1.1", "Delivery failed")
    assert classify("550 5.7.1 user unknown") is None  # the server said policy


@pytest.mark.parametrize("hard,accepted,systemic", [
    (0, 0, False), (3, 0, False), (9, 0, False),      # a few dead mailboxes, even with nothing accepted
    (10, 0, True), (40, 39, True),                    # most refused as unknown: the server's fault
    (40, 40, False), (10, 500, False),                # a backlog of dead mailboxes among live ones
])
def test_most_recipients_refused_as_unknown_looks_systemic(hard, accepted, systemic):
    assert suppression.looks_systemic(hard, accepted) is systemic


HARD, SOFT = Bounce("hard", "5.1.1", "550 5.1.1"), Bounce("soft", "4.2.2", "452 4.2.2")


def replay(events):
    """Apply (bounce, at, digest day) in order; the standings, the row carried as the SQL does."""
    row, standings = None, []
    for bounce, at, day in events:
        s = after_bounce(row, bounce, at, day, POLICY)
        row = {"reason": s.reason, "bounce_score": s.score, "bounce_count": s.count, "last_scored_on": s.scored_on,
               "last_event_at": at, "suppressed_at": s.suppressed_at, "expires_at": s.expires_at}
        standings.append(s)
    return standings


def test_a_hard_bounce_suppresses_at_once_for_the_ttl():
    [s] = replay([(HARD, T0, DAY)])
    assert s.newly_suppressed and s.reason == "hard_bounce" and s.suppressed_at == T0
    assert s.expires_at == T0 + dt.timedelta(days=30)


def test_soft_bounces_suppress_past_the_threshold_counting_once_a_day():
    days = [(SOFT, T0 + dt.timedelta(days=d, minutes=m), DAY + dt.timedelta(days=d)) for d in range(4) for m in (0, 5)]
    standings = replay(days)
    assert [s.score for s in standings] == [1, 1, 2, 2, 3, 3, 4, 4]  # a task retry the same day adds nothing
    assert [s.newly_suppressed for s in standings] == [False] * 6 + [True, False]
    assert standings[-1].reason == "soft_bounces" and standings[-1].count == 8


def test_the_score_erodes_after_the_reset_window():
    standings = replay([(SOFT, T0, DAY), (SOFT, T0 + dt.timedelta(days=1), DAY + dt.timedelta(days=1)),
                        (SOFT, T0 + dt.timedelta(days=40), DAY + dt.timedelta(days=40))])
    assert [s.score for s in standings] == [1, 2, 1]


def test_a_suppressed_mailbox_stays_suppressed_since_its_first_verdict():
    a, b = replay([(HARD, T0, DAY), (SOFT, T0 + dt.timedelta(days=1), DAY + dt.timedelta(days=1))])
    assert not b.newly_suppressed and b.suppressed_at == T0 and b.reason == "hard_bounce"


# -- SQL ----------------------------------------------------------------------------------------
def events(conn, address):
    return [r[0] for r in conn.execute(
        "SELECT event || ':' || source FROM digest.suppression_events WHERE address = %s ORDER BY id", (address,))]


def test_record_check_and_lift_by_hand_are_recorded(conn):
    conn.autocommit = True
    s = suppression.record_bounce(conn, "ana@acme.com.br", 7, HARD, "smtp", POLICY, at=T0, digest_day=DAY)
    assert s.newly_suppressed
    found = suppression.active(conn, ["ana@acme.com.br", "bruno@acme.com.br"], now=T0)
    assert list(found) == ["ana@acme.com.br"] and found["ana@acme.com.br"]["code"] == "5.1.1"
    assert suppression.lift(conn, "manual", addresses=["ana@acme.com.br"], actor="clara", now=T0) == ["ana@acme.com.br"]
    assert suppression.active(conn, ["ana@acme.com.br"], now=T0) == {}
    assert events(conn, "ana@acme.com.br") == ["hard_bounce:smtp", "suppressed:smtp", "lifted:manual"]
    assert conn.execute("SELECT lifted_by, lift_reason, bounce_score FROM digest.suppressions").fetchone() == (
        "clara", "manual", 0)


def test_a_suppression_expires_after_its_ttl_and_the_lift_is_recorded(conn):
    conn.autocommit = True
    suppression.record_bounce(conn, "ana@acme.com.br", 7, HARD, "dsn", POLICY, at=T0)
    later = T0 + dt.timedelta(days=30, seconds=1)
    assert suppression.active(conn, ["ana@acme.com.br"], now=later) == {}  # expired even before it is lifted
    assert suppression.lift(conn, "ttl", now=T0 + dt.timedelta(days=29)) == []
    assert suppression.lift(conn, "ttl", now=later) == ["ana@acme.com.br"]
    assert events(conn, "ana@acme.com.br")[-1] == "lifted:ttl"


def test_a_changed_address_lifts_the_former_one(conn):
    conn.autocommit = True
    suppression.record_bounce(conn, "ana@old.com.br", 7, HARD, "smtp", POLICY, at=T0)
    assert suppression.lift(conn, "address_changed", user_ids=[7], addresses=["ana@old.com.br"], now=T0) == []
    assert suppression.lift(conn, "address_changed", user_ids=[8], addresses=["x@new.com.br"], now=T0) == []
    assert suppression.lift(conn, "address_changed", user_ids=[7], addresses=["ana@new.com.br"], now=T0) == [
        "ana@old.com.br"]
    assert events(conn, "ana@old.com.br")[-1] == "lifted:address_changed"


def test_the_product_view_lists_suppressed_users_per_company(conn, world):
    conn.autocommit = True
    acme, beta = world.entity("Acme LTDA"), world.entity("Beta SA")
    ana = world.user("Ana Lima", "ana@acme.com.br", [acme, beta])
    world.user("Bruno", "bruno@acme.com.br", [acme])
    suppression.record_bounce(conn, "ana@acme.com.br", ana, HARD, "smtp", POLICY)
    rows = conn.execute("SELECT entity_id, user_id, reason, code FROM digest.suppressed_users ORDER BY 1").fetchall()
    assert rows == [(acme, ana, "hard_bounce", "5.1.1"), (beta, ana, "hard_bounce", "5.1.1")]


def test_the_cli_lists_and_lifts(conn, db_dsn, capsys):
    conn.autocommit = True
    suppression.record_bounce(conn, "ana@xn--acar-0oa8i.com.br", 7, HARD, "smtp", POLICY)
    assert suppression.main(["--dsn", db_dsn, "list"]) == 0
    assert "ana@xn--acar-0oa8i.com.br\thard_bounce\t5.1.1" in capsys.readouterr().out
    assert suppression.main(["--dsn", db_dsn, "lift", "ANA@açúcar.com.br", "nobody@x.com", "--by", "clara"]) == 0
    assert capsys.readouterr().out.splitlines() == ["ana@xn--acar-0oa8i.com.br: lifted", "nobody@x.com: not suppressed"]
    assert conn.execute("SELECT actor FROM digest.suppression_events WHERE event = 'lifted'").fetchone() == ("clara",)
