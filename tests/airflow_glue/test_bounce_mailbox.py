"""Asynchronous bounces end to end, with real servers (issue 15): digests go out through a real
postfix, which accepts them (250), fails to deliver three of them to the next server (550 5.1.1,
552 5.2.2, 452 4.2.2) and mails back its own delivery status notifications to each digest's VERP
sender; the DSNs land in a real Dovecot mailbox (IMAP APPEND stands in for the local delivery
agent); the DAG's read_bounces step reads them through the Airflow IMAP provider's hook
(connection billing_bounces) into the suppression list, and files them away so each is read once."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from billing_digest import build, extract, plan
from billing_digest.airflow_glue.bounce_mailbox import read_bounces
from billing_digest.delivery import suppression
from billing_digest.delivery.deliver import DeliveryOptions, deliver_batch
from billing_digest.delivery.smtp import SmtpSettings
from billing_digest.mail.render import Renderer
from billing_digest.settings import Settings
from billing_digest.window import window_for_date
from devtools import embedded_pg
from devtools.smtp_sink import SmtpSink
from tests.mailservers import Dovecot, Postfix
from tests.world import local

DAY = dt.date(2026, 11, 27)
SETTINGS = Settings(unsubscribe_secret="s" * 32, bounce_address="bounces@fintera.com.br")
CUES = {"dead@acme.com.br": "550 5.1.1 <dead@acme.com.br>: Recipient address rejected: User unknown",
        "full@acme.com.br": "552 5.2.2 Mailbox full",
        "busy@acme.com.br": "452 4.2.2 Mailbox full, try again later"}


def test_dsns_from_postfix_reach_the_suppression_list_once(world, conn, db_dsn, monkeypatch):
    acme = world.entity("Acme LTDA")
    users = {name: world.user(name.title(), f"{name}@acme.com.br", [acme]) for name in ("ana", "dead", "full", "busy")}
    inv = world.invoice(acme, local(DAY, 9))
    world.attempt(inv, "nfse", "rejected", local(DAY, 9, 1), "E160 - Código de serviço inválido", "E160")
    extract.stage_errors(conn, window_for_date(DAY))
    build.build_and_stage(conn, window_for_date(DAY), SETTINGS)

    with SmtpSink() as remote, Postfix(relay_port=remote.port) as mta, Dovecot() as mailbox:
        remote.faults.on_rcpt = CUES.get
        for b in plan.plan_batches(conn, DAY):
            deliver_batch(conn, SmtpSettings(port=mta.port, timeout=10), Renderer(SETTINGS), DAY, b.batch,
                          DeliveryOptions())
        # The relay accepted all four: the ledger says sent, and nothing is suppressed yet.
        assert {r[0] for r in conn.execute("SELECT state FROM digest.deliveries")} == {"sent"}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len([m for m in remote.messages if m.mail_from == "<>"]) < 3:
            time.sleep(0.2)
        dsns = [m for m in remote.messages if m.mail_from == "<>"]  # a DSN's envelope sender is the null path
        assert len(dsns) == 3, [m.rcpt_tos for m in remote.messages]
        assert all(m.rcpt_tos[0].startswith("bounces+d") for m in dsns)  # to each digest's VERP sender
        for dsn in dsns:
            mailbox.append(dsn.data)
        mailbox.append(b"From: ana@acme.com.br\r\nTo: bounces@fintera.com.br\r\nSubject: Ausente\r\n\r\n"
                       b"Volto segunda.\r\n")  # an auto-reply: not a bounce, filed away all the same

        monkeypatch.setenv("AIRFLOW_CONN_BILLING_DB", json.dumps(embedded_pg.airflow_connection(db_dsn)))
        monkeypatch.setenv("AIRFLOW_CONN_BILLING_BOUNCES", json.dumps(mailbox.airflow_connection()))
        assert read_bounces(SETTINGS) == {"hard_bounce": 1, "messages": 4, "newly_suppressed": 1,
                                          "not_a_bounce": 1, "soft_bounce": 2}
        assert (mailbox.count("INBOX"), mailbox.count("Processed")) == (0, 4)
        assert read_bounces(SETTINGS) == {"messages": 0}  # each message is read once

    rows = {r[0]: r[1:] for r in conn.execute(
        "SELECT address, user_id, source, code, bounce_score, suppressed_at IS NOT NULL FROM digest.suppressions")}
    assert rows == {"dead@acme.com.br": (users["dead"], "dsn", "5.1.1", 0, True),
                    "full@acme.com.br": (users["full"], "dsn", "5.2.2", 1, False),
                    "busy@acme.com.br": (users["busy"], "dsn", "4.2.2", 1, False)}
    assert list(suppression.active(conn, ["dead@acme.com.br", "ana@acme.com.br"])) == ["dead@acme.com.br"]


def test_without_the_connection_the_step_passes(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_BILLING_BOUNCES", raising=False)
    assert read_bounces(SETTINGS) == {"no_connection": 1}


def test_an_unreachable_mailbox_does_not_stop_the_day(monkeypatch, db_dsn):
    from devtools.smtp_sink import free_port

    monkeypatch.setenv("AIRFLOW_CONN_BILLING_DB", json.dumps(embedded_pg.airflow_connection(db_dsn)))
    monkeypatch.setenv("AIRFLOW_CONN_BILLING_BOUNCES", json.dumps(
        {"conn_type": "imap", "host": "127.0.0.1", "port": free_port(), "login": "x", "password": "y",
         "extra": {"use_ssl": False}}))
    assert read_bounces(SETTINGS) == {"mailbox_error": 1}


pytestmark = pytest.mark.timeout(120)
