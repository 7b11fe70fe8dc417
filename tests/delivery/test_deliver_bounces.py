"""Bounces at send time, against a real SMTP server that answers per address on cue (issue 15):
a dead mailbox (550 5.1.1) gets exactly one RCPT over two days; a full one (552 5.2.2 / 452 4.2.2)
is tried again and scored; a changed address is mailed and lifts the former one's suppression."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from billing_digest import build, extract, plan, sql
from billing_digest.delivery.deliver import DeliveryIncomplete, DeliveryOptions, deliver_batch
from billing_digest.delivery.smtp import SmtpSettings
from billing_digest.mail.render import Renderer
from billing_digest.settings import Settings
from billing_digest.window import window_for_date
from tests.world import local

DAY1, DAY2, DAY3 = (dt.date(2026, 11, 27) + dt.timedelta(days=n) for n in range(3))
SETTINGS = Settings(unsubscribe_secret="test")
CUES = {"dead@acme.com.br": "550 5.1.1 <dead@acme.com.br>: Recipient address rejected: User unknown",
        "full@acme.com.br": "552 5.2.2 Mailbox full",
        "busy@acme.com.br": "452 4.2.2 Mailbox full, try again later"}


@pytest.fixture
def company(world):
    acme = world.entity("Acme LTDA")
    users = {name: world.user(name.title(), f"{name}@acme.com.br", [acme]) for name in ("ana", "dead", "full", "busy")}
    return {"acme": acme, **users}


def day_of_errors(world, conn, acme, day):
    inv = world.invoice(acme, local(day, 9))
    world.all_ok(inv, local(day, 9), steps=("boleto", "charge_email"))
    world.attempt(inv, "nfse", "rejected", local(day, 9, 1), "E160 - Código de serviço inválido", "E160")
    extract.stage_errors(conn, window_for_date(day))
    build.build_and_stage(conn, window_for_date(day), SETTINGS)


def send_day(conn, port, day):
    """Deliver the day like the DAG: the batches, then the task retry once when some were deferred."""
    outcomes: Counter[str] = Counter()
    for _attempt in range(2):
        try:
            for b in plan.plan_batches(conn, day):
                report = deliver_batch(conn, SmtpSettings(port=port, timeout=5), Renderer(SETTINGS), day, b.batch,
                                       DeliveryOptions(attempts=1))
                outcomes.update(report.outcomes)
            return outcomes
        except DeliveryIncomplete:
            outcomes["task_retry"] += 1
    return outcomes


def ledger(conn, day):
    return {r[0]: (r[1], r[2] and r[2][:9]) for r in conn.execute(
        "SELECT u.email, l.state, l.reason FROM digest.deliveries l JOIN billing.users u ON u.id = l.user_id "
        "WHERE l.digest_date = %s", (day,))}


def test_a_dead_mailbox_gets_one_rcpt_over_two_days(world, conn, company, smtp_sink):
    rcpts: Counter[str] = Counter()

    def on_rcpt(address):
        rcpts[address] += 1
        return CUES.get(address)

    smtp_sink.faults.on_rcpt = on_rcpt
    day_of_errors(world, conn, company["acme"], DAY1)
    send_day(conn, smtp_sink.port, DAY1)
    assert ledger(conn, DAY1) == {"ana@acme.com.br": ("sent", None), "dead@acme.com.br": ("failed", "550 5.1.1"),
                                  "full@acme.com.br": ("failed", "552 5.2.2"),
                                  "busy@acme.com.br": ("deferred", "452 4.2.2")}
    day_of_errors(world, conn, company["acme"], DAY2)
    send_day(conn, smtp_sink.port, DAY2)
    assert rcpts == {"ana@acme.com.br": 2, "dead@acme.com.br": 1, "full@acme.com.br": 2,
                     "busy@acme.com.br": 4}  # busy: each day's run and its retry
    assert ledger(conn, DAY2)["dead@acme.com.br"] == ("skipped", "suppresse")  # reasons cut to 9 characters
    # counted where the summary and the run's note read the day's ledger
    assert ("skipped", "suppressed", 1) in conn.execute(sql.load("summary/ledger_by_state"), {"digest_date": DAY2})
    standing = {r[0]: r[1:] for r in conn.execute(
        "SELECT address, reason, bounce_score, suppressed_at IS NOT NULL FROM digest.suppressions")}
    # soft bounces count once per digest day, task retries included: 2 days -> 2, under the threshold of 4
    assert standing == {"dead@acme.com.br": ("hard_bounce", 0, True), "full@acme.com.br": ("soft_bounces", 2, False),
                        "busy@acme.com.br": ("soft_bounces", 2, False)}

    # The user's address is corrected in the product: the new one is mailed, the old one's suppression lifted.
    conn.execute("UPDATE billing.users SET email = 'dead.new@acme.com.br' WHERE id = %s", (company["dead"],))
    day_of_errors(world, conn, company["acme"], DAY3)
    send_day(conn, smtp_sink.port, DAY3)
    assert rcpts["dead.new@acme.com.br"] == 1 and rcpts["dead@acme.com.br"] == 1
    assert conn.execute("SELECT lift_reason FROM digest.suppressions WHERE address = 'dead@acme.com.br'"
                        ).fetchone() == ("address_changed",)


def test_a_server_refusing_most_recipients_as_unknown_suppresses_nobody(world, conn, smtp_sink):
    """A relay answering "5.1.1 user unknown" to everyone (a wrong route) is not a day of dead mailboxes."""
    acme = world.entity("Acme LTDA")
    for n in range(12):
        world.user(f"User {n}", f"user{n}@acme.com.br", [acme])
    world.user("Ana", "ana@acme.com.br", [acme])
    smtp_sink.faults.on_rcpt = lambda a: None if a.startswith("ana") else "550 5.1.1 User unknown"
    day_of_errors(world, conn, acme, DAY1)
    outcomes = send_day(conn, smtp_sink.port, DAY1)
    assert outcomes["failed"] == 12 and outcomes["sent"] == 1
    assert outcomes["bounces_not_recorded"] == 12
    assert conn.execute("SELECT count(*) FROM digest.suppressions").fetchone() == (0,)
