"""International and malformed addresses, built and sent for real (issue 15).

An internationalised domain goes out in IDNA form to any server; a non-ASCII local part only with
SMTPUTF8, to a server that offers it (aiosmtpd's ``enable_SMTPUTF8``), else it is skipped as
``needs_smtputf8`` with no MAIL/RCPT; malformed addresses are skipped as ``invalid_email``;
one mailbox written two ways gets one e-mail.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy

import pytest

from billing_digest import build, extract, plan
from billing_digest.delivery.deliver import DeliveryOptions, deliver_batch
from billing_digest.delivery.smtp import SmtpSettings
from billing_digest.mail.render import Renderer
from billing_digest.settings import Settings
from billing_digest.window import window_for_date
from devtools.smtp_sink import SmtpSink
from tests.world import local

DAY = dt.date(2026, 11, 27)
SETTINGS = Settings(unsubscribe_secret="test")


@pytest.fixture
def day(world, conn):
    acme = world.entity("Acme LTDA")
    users = {
        "joao": world.user("João Souza", "joão@acme.com.br", [acme]),
        "ana": world.user("Ana Lima", "ana@açúcar.com.br", [acme]),
        "ana_again": world.user("Ana L.", " ANA@AÇÚCAR.COM.BR", [acme]),  # the same mailbox
        "dots": world.user("Dots", "bruno..reis@acme.com.br", [acme]),
        "lead": world.user("Lead", ".caio@acme.com.br", [acme]),
        "two_at": world.user("Two", "duda@acme@com.br", [acme]),
    }
    inv = world.invoice(acme, local(DAY, 9))
    world.all_ok(inv, local(DAY, 9), steps=("boleto", "charge_email"))
    world.attempt(inv, "nfse", "rejected", local(DAY, 9, 1), "E160 - Código de serviço inválido", "E160")
    extract.stage_errors(conn, window_for_date(DAY))
    build.build_and_stage(conn, window_for_date(DAY), SETTINGS)
    return {"acme": acme, **users}


def send(conn, port):
    outcomes: dict[str, int] = {}
    for b in plan.plan_batches(conn, DAY):
        report = deliver_batch(conn, SmtpSettings(port=port, timeout=5), Renderer(SETTINGS), DAY, b.batch,
                               DeliveryOptions())
        for k, v in report.outcomes.items():
            outcomes[k] = outcomes.get(k, 0) + v
    return outcomes


def ledger(conn):
    return {r[0]: (r[1], r[2]) for r in conn.execute("SELECT user_id, state, reason FROM digest.deliveries")}


@pytest.mark.parametrize("server_offers_smtputf8", [True, False])
def test_international_addresses_reach_a_server_that_can_take_them(conn, day, server_offers_smtputf8):
    with SmtpSink(enable_SMTPUTF8=server_offers_smtputf8) as sink:
        outcomes = send(conn, sink.port)
        rcpts = sorted(r for m in sink.messages for r in m.rcpt_tos)
    rows = ledger(conn)
    assert rows[day["ana"]] == ("sent", None)
    assert rows[day["ana_again"]] == ("skipped", "duplicate_address")
    for bad in ("dots", "lead", "two_at"):
        assert rows[day[bad]] == ("skipped", "invalid_email")
    if server_offers_smtputf8:
        assert rcpts == ["ana@xn--acar-0oa8i.com.br", "joão@acme.com.br"]
        assert rows[day["joao"]] == ("sent", None)
        [to_joao] = [m for m in sink.messages if m.rcpt_tos == ["joão@acme.com.br"]]
        # The transaction asked for SMTPUTF8 and the message is valid RFC 6532: UTF-8 address in To.
        assert to_joao.data.split(b"\r\n\r\n")[0].count("joão@acme.com.br".encode()) == 1
        parsed = email.message_from_string(to_joao.data.decode("utf-8"), policy=email.policy.SMTPUTF8)
        assert parsed["To"].addresses[0].addr_spec == "joão@acme.com.br"
        assert parsed["To"].addresses[0].display_name == "João Souza"
        assert outcomes["sent"] == 2
    else:
        assert rcpts == ["ana@xn--acar-0oa8i.com.br"]  # no MAIL/RCPT at all for João
        assert rows[day["joao"]] == ("skipped", "needs_smtputf8")
        assert outcomes["skipped:needs_smtputf8"] == 1 and outcomes["sent"] == 1
    [to_ana] = [m for m in sink.messages if m.rcpt_tos == ["ana@xn--acar-0oa8i.com.br"]]
    assert to_ana.data.split(b"\r\n\r\n")[0].isascii()  # an IDN domain needs no SMTPUTF8
    assert "<ana@xn--acar-0oa8i.com.br>" in to_ana.message["To"]
