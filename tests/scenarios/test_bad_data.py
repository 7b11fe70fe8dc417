"""Bad and hostile rows in a real database: counted, logged, never a crash, never a wrong recipient."""

from __future__ import annotations

import datetime as dt
import logging

from billing_digest import build, extract, plan, summary
from billing_digest.delivery.deliver import DeliveryOptions, deliver_batch
from billing_digest.delivery.smtp import SmtpSettings
from billing_digest.mail.render import Renderer
from billing_digest.settings import Settings
from billing_digest.window import window_for_date
from tests.world import local

DAY = dt.date(2026, 11, 27)
WINDOW = window_for_date(DAY)


def test_a_day_full_of_bad_rows_is_sent_safely_and_every_problem_is_counted(world, conn, smtp_sink, caplog):
    acme = world.entity("ACME\r\nBcc: evil@x.com <script>", cnpj=None)
    world.user("Ana\r\nBcc: evil@x.com", "ana@acme.com.br", [acme])
    world.user("Sem e-mail", None, [acme])
    world.user("E-mail inválido", "not-an-address", [acme])
    world.user("Injeção", "x@acme.com.br\r\nBcc: evil@x.com", [acme])
    world.user("Mesmo endereço", "ANA@acme.com.br", [acme])

    def failing(**kw):
        inv = world.invoice(acme, local(DAY, 9), boleto=False, notification=False, **kw)
        return inv

    world.attempt(failing(customer=None, amount=None, path=None), "nfse", "failed", local(DAY, 10), None)
    world.attempt(failing(customer="  ", amount="10.005", path=""), "nfse", "failed", local(DAY, 10), "   ")
    world.attempt(failing(path="javascript:alert(1)"), "nfse", "rejected", local(DAY, 10),
                  '<script>alert("x")</script><img src=x onerror=alert(1)>')
    world.attempt(failing(), "nfse", "failed", local(DAY, 10), "x" * 5000)
    world.attempt(failing(), "nfse", "failed", local(DAY, 10), "ctrl\x01\x02\x1b[31m chars \ufeff")
    world.attempt(failing(), "teleport", "failed", local(DAY, 10), "unknown step")
    world.attempt(failing(), "nfse", "exploded", local(DAY, 10), "unknown status")
    world.attempt(424242, "nfse", "failed", local(DAY, 10), "orphan attempt")
    dup = failing()
    for _ in range(3):
        world.attempt(dup, "nfse", "failed", local(DAY, 10, 5), "duplicated row")
    # thousands of errors of one cause for one entity: one block, a bounded list and the full count
    for _ in range(1500):
        inv = world.invoice(acme, local(DAY, 9), customer="Cliente em massa", nfse=False, boleto=False,
                            notification=False)
        world.attempt(inv, "boleto", "failed", local(DAY, 11), "lote")

    caplog.set_level(logging.INFO)
    extract.stage_errors(conn, WINDOW)
    built = build.build_and_stage(conn, WINDOW, Settings(max_items_per_topic=20, max_invoices_per_cause=5))
    reports = [deliver_batch(conn, SmtpSettings(port=smtp_sink.port), Renderer(Settings()), DAY, b.batch,
                             DeliveryOptions()) for b in plan.plan_batches(conn, DAY)]

    assert built.problems == {
        "amount_rounded": 1, "duplicate_address": 1, "invalid_email": 3, "long_message_truncated": 1,
        "missing_amount": 1, "missing_customer": 2, "missing_invoice_path": 3, "missing_message": 2,
        "unknown_invoice": 1, "unknown_status": 1, "unknown_step": 1,
    }
    for reason in built.problems:
        assert any(reason in r.getMessage() for r in caplog.records), f"no log line for {reason}"
    table = summary.format_table(summary.summarize(conn, built, reports))
    assert "bad input: unknown_status" in table and "ledger: skipped (invalid_email)" in table

    assert [m.rcpt_tos for m in smtp_sink.messages] == [["ana@acme.com.br"]]
    msg = smtp_sink.messages[0].message
    assert msg["Bcc"] is None and len(msg["To"].addresses) == 1
    text, html = msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()
    assert "<script>" not in html and "javascript:" not in html and "<img" not in html
    # 6 failed NFS-e + 1 missing (the unknown-step invoice never issued one) + 1500 boletos
    assert "1507 erros" in msg["Subject"] and "== Cobrança (Boleto Bancário) (1500) ==" in text
    assert "1500 faturamentos com este erro" in text and "e mais 1495 faturamentos com este erro" in text
    assert text.count("https://app.fintera.com.br/faturamento/faturamentos/") == 7 + 5  # bounded list
    assert f"/faturamento/faturamentos?entidade={acme}&data=2026-11-27&erro=boleto&etapa=boleto" in text
    assert "Cliente não informado" in text and "valor não informado" in text and "[…]" in text
    assert "\x1b" not in text and "\x01" not in text
    # our logs name users by id, never dump addresses (the test SMTP server's own log does)
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("billing_digest")]
    assert ours and [line for line in ours if "@acme.com.br" in line] == []
