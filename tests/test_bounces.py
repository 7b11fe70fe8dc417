"""Reading bounce messages (pure): VERP tokens, and DSNs a real postfix produced (recorded in
tests/fixtures/dsn from tests/mailservers.Postfix; the end-to-end test makes fresh ones)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from billing_digest import bounces
from billing_digest.bounces import addressed_to, delivery_of, read_report, verp_sender
from billing_digest.delivery.suppression import SuppressionPolicy

DSN = Path(__file__).parent / "fixtures" / "dsn"
SECRET, BASE = "s" * 32, "bounces@fintera.com.br"


def test_a_verp_sender_names_its_digest_and_only_with_the_secret():
    sender = verp_sender(BASE, 123, SECRET)
    assert sender.startswith("bounces+d123-") and sender.endswith("@fintera.com.br")
    assert delivery_of(sender, BASE, [SECRET]) == 123
    assert delivery_of(f"<{sender.upper()}>", BASE, [SECRET]) == 123  # case and brackets do not matter
    assert delivery_of(sender, BASE, ["another secret", SECRET]) == 123  # a rotated secret still verifies
    assert delivery_of(sender, BASE, ["another secret"]) is None
    forged = sender.replace("d123-", "d124-")
    assert delivery_of(forged, BASE, [SECRET]) is None
    assert delivery_of(sender.replace("fintera.com.br", "evil.com"), BASE, [SECRET]) is None
    assert delivery_of("bounces@fintera.com.br", BASE, [SECRET]) is None
    assert delivery_of("ana@acme.com.br", BASE, [SECRET]) is None


@pytest.mark.parametrize("name,address,kind,status", [
    ("postfix-550-5.1.1.eml", "dead@acme.com.br", "hard", "5.1.1"),
    ("postfix-552-5.2.2.eml", "full@acme.com.br", "soft", "5.2.2"),
    ("postfix-452-4.2.2.eml", "busy@acme.com.br", "soft", "4.2.2"),  # postfix gave up: Action failed
])
def test_postfix_dsns_are_read(name, address, kind, status):
    raw = (DSN / name).read_bytes()
    [report] = read_report(raw)
    assert (report.address, report.bounce.kind, report.bounce.status) == (address, kind, status)
    assert status in report.bounce.reply
    assert addressed_to(raw) == ["bounces+d16.abc@fintera.com.br"]


def test_a_delay_warning_is_not_a_bounce():
    raw = (DSN / "postfix-452-4.2.2.eml").read_bytes().replace(b"Action: failed", b"Action: delayed")
    assert read_report(raw) == []


def test_a_dsn_of_a_policy_refusal_is_not_a_bounce():
    raw = (DSN / "postfix-550-5.1.1.eml").read_bytes().replace(b"Status: 5.1.1", b"Status: 5.7.1")
    raw = raw.replace(b"550 5.1.1 <dead@acme.com.br>: Recipient address\n    rejected: User unknown",
                      b"550 5.7.1 Message rejected as spam")
    assert read_report(raw) == []


# A qmail-format bounce (no RFC 3464 part): flufl.bounce's detectors find the recipient, the text the status.
QMAIL = b"""From: MAILER-DAEMON@mx.acme.com.br
To: bounces@fintera.com.br
Subject: failure notice

Hi. This is the qmail-send program at mx.acme.com.br.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<dead@acme.com.br>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.
"""


def test_a_non_standard_bounce_is_read_by_flufl():
    [report] = read_report(QMAIL)
    assert (report.address, report.bounce.kind, report.bounce.status) == ("dead@acme.com.br", "hard", "5.1.1")


def test_an_auto_reply_is_not_a_bounce():
    raw = b"From: ana@acme.com.br\r\nTo: bounces@fintera.com.br\r\nSubject: Out of office\r\n\r\nBack on Monday.\r\n"
    assert read_report(raw) == []


def test_with_verp_on_a_message_without_a_valid_token_is_ignored(conn):
    outcomes: Counter[str] = Counter()
    raw = (DSN / "postfix-550-5.1.1.eml").read_bytes()  # addressed to bounces+d16.abc@: not a valid tag
    bounces.record_report(conn, raw, BASE, [SECRET], SuppressionPolicy(), outcomes)
    assert outcomes == {"unverified": 1}
    assert conn.execute("SELECT count(*) FROM digest.suppressions").fetchone() == (0,)


def test_without_verp_the_dsn_fields_name_the_address(conn):
    conn.autocommit = True
    outcomes: Counter[str] = Counter()
    for name in ("postfix-550-5.1.1.eml", "postfix-452-4.2.2.eml"):
        bounces.record_report(conn, (DSN / name).read_bytes(), "", [SECRET], SuppressionPolicy(), outcomes)
    assert outcomes == {"hard_bounce": 1, "soft_bounce": 1, "newly_suppressed": 1}
    assert dict(conn.execute("SELECT address, source FROM digest.suppressions WHERE suppressed_at IS NOT NULL")) == {
        "dead@acme.com.br": "dsn"}
