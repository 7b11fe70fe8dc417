"""Hostile text in the billing database never reaches any part of a sent e-mail (issue 15).

Error messages and codes come from the billing systems (bank and city-hall replies, logs), names
from whoever typed them: terminal escape sequences and bidi overrides in them must not reach the
subject, the headers, the text or the HTML part. Built, rendered and sent for real (PostgreSQL, an
aiosmtpd server), then every part of the received message is read back.
"""

from __future__ import annotations

import datetime as dt
import re

from billing_digest import build, extract, plan
from billing_digest.delivery.deliver import DeliveryOptions, deliver_batch
from billing_digest.delivery.smtp import SmtpSettings
from billing_digest.mail.render import Renderer
from billing_digest.settings import Settings
from billing_digest.window import window_for_date
from tests.world import local

DAY = dt.date(2026, 11, 27)
SETTINGS = Settings(unsubscribe_secret="test")
ESC, RLO = "\x1b", "\u202e"
HOSTILE = {
    "entity": f"Acme{ESC}[2J{RLO}AGLTD",
    "cnpj": f"11.222{ESC}[8m.333\u2066/0001",  # not 14 digits: shown as the source has it
    "user": f"Ana{ESC}]0;pwned{chr(7)} \u2066Lima\u2069",
    "customer": f"Cliente {ESC}[31mVermelho{ESC}[0m\u202dX",
    "message": f"Rejeitada: {ESC}]8;;http://evil.example/{ESC}\\clique{ESC}]8;;{ESC}\\ \u200fE\u009b1m160",
    "code": f"E{RLO}160",
    "number": f"FAT{ESC}(B-1\u2067",
}
# What must appear nowhere: ESC and the 8-bit CSI, every bidi control, and the readable remains of a
# sequence whose ESC alone was dropped ("[2J", "]0;", "]8;;").
FORBIDDEN = re.compile(r"[\x1b\x9b\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]|\[2J|\]0;|\]8;;|\[31m|\[8m|pwned|evil")


def test_hostile_row_reaches_no_part_of_the_sent_message(world, conn, smtp_sink):
    acme = world.entity(HOSTILE["entity"], cnpj=HOSTILE["cnpj"])
    world.user(HOSTILE["user"], "ana@acme.com.br", [acme])
    inv = world.invoice(acme, local(DAY, 9), customer=HOSTILE["customer"], number=HOSTILE["number"])
    world.all_ok(inv, local(DAY, 9), steps=("boleto", "charge_email"))
    world.attempt(inv, "nfse", "rejected", local(DAY, 9, 1), HOSTILE["message"], HOSTILE["code"])
    window = window_for_date(DAY)
    extract.stage_errors(conn, window)
    build.build_and_stage(conn, window, SETTINGS)
    for b in plan.plan_batches(conn, DAY):
        deliver_batch(conn, SmtpSettings(port=smtp_sink.port, timeout=5), Renderer(SETTINGS), DAY, b.batch,
                      DeliveryOptions())

    [received] = smtp_sink.messages
    message = received.message
    parts = {"raw headers": received.data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace"),
             "subject": str(message["Subject"]), "to": str(message["To"]),
             "text": message.get_body(("plain",)).get_content(), "html": message.get_body(("html",)).get_content()}
    for name, part in parts.items():
        assert not FORBIDDEN.search(part), f"{name}: {FORBIDDEN.search(part)!r} in {part!r}"
    # What was readable is still there: the sequences went, the words stayed.
    assert "AcmeAGLTD" in parts["subject"] and "Ana Lima" in parts["to"]
    for text in (parts["text"], parts["html"]):
        assert "Cliente VermelhoX" in text and "Rejeitada: clique E160" in text and "FAT-1" in text
        assert "11.222.333/0001" in text
