"""Delivery against a real PostgreSQL ledger and a real SMTP server that misbehaves on cue."""

from __future__ import annotations

import datetime as dt
import threading

import psycopg
import pytest

from billing_digest import build, extract, plan
from billing_digest.delivery.deliver import DeliveryIncomplete, DeliveryOptions, deliver_batch
from billing_digest.delivery.smtp import SmtpSettings
from billing_digest.delivery.smtp_replies import SmtpUnavailable
from billing_digest.mail.render import Renderer
from billing_digest.settings import Settings
from billing_digest.window import window_for_date
from devtools.smtp_sink import SmtpSink, free_port
from tests.tls import make_cert, server_context
from tests.world import local

DAY = dt.date(2026, 11, 27)
WINDOW = window_for_date(DAY)
SETTINGS = Settings(unsubscribe_secret="test")


@pytest.fixture
def day(world, conn):
    """Two companies with errors; users with and without access / opt-in."""
    acme, beta = world.entity("Acme LTDA"), world.entity("Beta SA")
    users = {
        "ana": world.user("Ana Lima", "ana@acme.com.br", [acme, beta]),
        "bruno": world.user("Bruno Reis", "bruno@acme.com.br", [acme]),
        "caio": world.user("Caio Dias", "caio@beta.com.br", [beta]),
        "duda": world.user(OPTED_OUT_BEFORE_THE_BUILD, "duda@acme.com.br", [acme], opted_in=False),
        "eva": world.user("Eva No Access", "eva@outra.com.br", []),
    }
    for entity in (acme, beta):
        inv = world.invoice(entity, local(DAY, 9))
        world.all_ok(inv, local(DAY, 9), steps=("boleto", "charge_email"))
        world.attempt(inv, "nfse", "rejected", local(DAY, 9, 1), "E160 - Código de serviço inválido", "E160")
    extract.stage_errors(conn, WINDOW)
    build.build_and_stage(conn, WINDOW, SETTINGS)
    return {"acme": acme, "beta": beta, **users}


def run(conn, port, sleeps=None, **options):
    smtp = options.pop("smtp", None) or SmtpSettings(port=port, timeout=5)
    batches = plan.plan_batches(conn, DAY, resend=options.get("resend", False),
                                redirect=bool(options.get("redirect_to")))
    opts = DeliveryOptions(backoff_seconds=0.5, **options)
    reports = []
    for b in batches:
        reports.append(deliver_batch(conn, smtp, Renderer(SETTINGS), DAY, b.batch, opts,
                                     sleep=(sleeps.append if sleeps is not None else lambda s: None)))
    return reports


OPTED_OUT_BEFORE_THE_BUILD = "Duda Opted Out"


def ledger(conn, everyone=False):
    """(entity, user) -> (state, reason, attempts, resend_count). Duda turned the alert off before the
    build: her row is skipped/opted_out from the start (see the first test); left out unless ``everyone``."""
    return {(r[0], r[1]): r[2:] for r in conn.execute(
        "SELECT entity_id, user_id, state, reason, attempts, resend_count FROM digest.deliveries "
        "WHERE %(everyone)s OR recipient_name IS DISTINCT FROM %(duda)s",
        {"everyone": everyone, "duda": OPTED_OUT_BEFORE_THE_BUILD})}


def received(sink):
    return sorted((m.message["X-Billing-Digest"], m.rcpt_tos[0]) for m in sink.messages)


def test_one_email_per_user_and_entity_and_a_rerun_sends_nothing(conn, day, smtp_sink):
    run(conn, smtp_sink.port)
    assert sorted(m.rcpt_tos[0] for m in smtp_sink.messages) == [
        "ana@acme.com.br", "ana@acme.com.br", "bruno@acme.com.br", "caio@beta.com.br"]
    assert {v[0] for v in ledger(conn).values()} == {"sent"}
    assert ledger(conn, everyone=True)[(day["acme"], day["duda"])] == ("skipped", "opted_out", 0, 0)
    run(conn, smtp_sink.port)
    assert len(smtp_sink.messages) == 4
    assert plan.plan_batches(conn, DAY) == []


def test_permanent_refusal_fails_that_digest_and_the_batch_goes_on(conn, day, smtp_sink):
    smtp_sink.faults.on_rcpt = lambda a: "550 5.1.1 Mailbox does not exist" if a.startswith("bruno") else None
    reports = run(conn, smtp_sink.port)
    assert sorted(m.rcpt_tos[0] for m in smtp_sink.messages) == [
        "ana@acme.com.br", "ana@acme.com.br", "caio@beta.com.br"]
    state, reason, attempts, _ = ledger(conn)[(day["acme"], day["bruno"])]
    assert (state, attempts) == ("failed", 1) and reason.startswith("550 5.1.1 Mailbox does not exist")
    assert sum(r.outcomes["failed"] for r in reports) == 1
    smtp_sink.faults.on_rcpt = None
    run(conn, smtp_sink.port)  # a permanent failure is not retried by a re-run
    assert len(smtp_sink.messages) == 3


def test_transient_refusal_is_retried_with_backoff_and_delivered_once(conn, day, smtp_sink):
    refusals = iter(["451 4.3.0 Try again later", "421 4.3.2 Shutting down, try again later"])
    smtp_sink.faults.on_data = lambda env: next(refusals, None)
    sleeps: list[float] = []
    run(conn, smtp_sink.port, sleeps=sleeps)
    assert len(smtp_sink.messages) == 4
    assert len(set(received(smtp_sink))) == 4
    assert sleeps == [0.5, 1.0]
    assert sorted(v[2] for v in ledger(conn).values()) == [1, 1, 1, 3]


def test_persistent_transient_refusal_defers_then_the_task_retry_delivers_once(conn, day, smtp_sink):
    smtp_sink.faults.on_rcpt = lambda a: "452 4.2.2 Mailbox full, try later" if a.startswith("caio") else None
    with pytest.raises(DeliveryIncomplete, match="1 digest"):
        run(conn, smtp_sink.port, attempts=2)
    state, reason, attempts, _ = ledger(conn)[(day["beta"], day["caio"])]
    assert (state, attempts) == ("deferred", 2) and reason.startswith("452")
    assert len(smtp_sink.messages) == 3
    smtp_sink.faults.on_rcpt = None
    run(conn, smtp_sink.port)  # what the Airflow task retry does
    assert len(smtp_sink.messages) == 4 and len(set(received(smtp_sink))) == 4
    assert ledger(conn)[(day["beta"], day["caio"])][:1] == ("sent",)


def test_connection_dropped_mid_batch_reconnects_and_sends_nothing_twice(conn, day, smtp_sink):
    smtp_sink.faults.drop_after = 2
    reports = run(conn, smtp_sink.port)
    assert len(smtp_sink.messages) == 4 and len(set(received(smtp_sink))) == 4
    assert sum(r.smtp_connections for r in reports) == 2


def test_server_down_fails_clearly_and_marks_nothing_sent(conn, day):
    with pytest.raises(SmtpUnavailable, match=r"cannot connect to SMTP server 127\.0\.0\.1"):
        run(conn, None, smtp=SmtpSettings(host="127.0.0.1", port=free_port(), timeout=2))
    assert {v[0] for v in ledger(conn).values()} == {"pending"}


def test_wrong_credentials_fail_clearly_and_mark_nothing_sent(conn, day, tmp_path):
    with SmtpSink(auth=("digest", "right")) as sink:
        with pytest.raises(SmtpUnavailable, match="refused the login") as info:
            run(conn, None, smtp=SmtpSettings(port=sink.port, login="digest", password="wrong"))
        assert "wrong" not in str(info.value)  # no secret in the message
        assert sink.messages == []
        assert {v[0] for v in ledger(conn).values()} == {"pending"}
        run(conn, None, smtp=SmtpSettings(port=sink.port, login="digest", password="right"))
        assert len(sink.messages) == 4


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
def test_tls_when_the_connection_asks_for_it(conn, day, tmp_path, mode):
    cert, key = make_cert(tmp_path)
    ctx = server_context(cert, key)
    kwargs = {"tls_context": ctx, "require_starttls": True} if mode == "starttls" else {"ssl_context": ctx}
    with SmtpSink(**kwargs) as sink:
        smtp = SmtpSettings(host="localhost", port=sink.port, use_ssl=mode == "implicit",
                            use_starttls=mode == "starttls", timeout=5)
        with pytest.raises(SmtpUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
            run(conn, None, smtp=smtp)  # a certificate nobody vouches for is refused
        assert sink.messages == []
        run(conn, None, smtp=SmtpSettings(**{**smtp.__dict__, "ca_file": str(cert)}))
        assert len(sink.messages) == 4


def test_two_runs_of_the_same_day_at_once_send_each_digest_once(conn, day, smtp_sink, db_dsn):
    smtp_sink.faults.on_data = lambda env: (threading.Event().wait(0.05), None)[1]  # slow server
    errors: list[BaseException] = []

    def worker():
        try:
            with psycopg.connect(db_dsn, autocommit=True) as own:
                run(own, smtp_sink.port, chunk_size=1)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(smtp_sink.messages) == 4 and len(set(received(smtp_sink))) == 4


def test_state_at_send_time_decides_who_receives(conn, day, smtp_sink):
    conn.execute("UPDATE billing.notification_preferences SET enabled = false WHERE user_id = %s", (day["bruno"],))
    conn.execute("UPDATE billing.user_entity_access SET revoked_at = now() WHERE user_id = %s AND entity_id = %s",
                 (day["ana"], day["beta"]))
    conn.execute("UPDATE billing.users SET email = 'ana.nova@acme.com.br' WHERE id = %s", (day["ana"],))
    run(conn, smtp_sink.port)
    assert [m.rcpt_tos[0] for m in smtp_sink.messages] == ["ana.nova@acme.com.br", "caio@beta.com.br"]
    states = ledger(conn)
    assert states[(day["acme"], day["bruno"])][:2] == ("skipped", "opted_out")
    assert states[(day["beta"], day["ana"])][:2] == ("skipped", "access_revoked")


def test_inactive_entity_at_send_time_gets_nothing(conn, day, smtp_sink):
    conn.execute("UPDATE billing.entities SET deleted_at = now() WHERE id = %s", (day["beta"],))
    run(conn, smtp_sink.port)
    assert sorted(m.rcpt_tos[0] for m in smtp_sink.messages) == ["ana@acme.com.br", "bruno@acme.com.br"]


def test_deliberate_resend_is_recorded_and_not_repeated_by_its_own_retry(conn, day, smtp_sink):
    run(conn, smtp_sink.port, run_id="first")
    run(conn, smtp_sink.port, run_id="resend-1", resend=True)
    assert len(smtp_sink.messages) == 8
    assert {v[3] for v in ledger(conn).values()} == {1}
    run(conn, smtp_sink.port, run_id="resend-1", resend=True)  # the same run retried
    assert len(smtp_sink.messages) == 8


def test_dry_run_and_redirect_send_nothing_real_and_change_no_ledger_row(conn, day, smtp_sink):
    run(conn, smtp_sink.port, dry_run=True)
    assert smtp_sink.messages == []
    run(conn, smtp_sink.port, redirect_to="qa@fintera.com.br")
    assert [m.rcpt_tos[0] for m in smtp_sink.messages] == ["qa@fintera.com.br"] * 4
    assert {v[0] for v in ledger(conn).values()} == {"pending"}


def test_redirect_shows_a_day_already_sent_whatever_its_ledger_state(conn, day, smtp_sink):
    smtp_sink.faults.on_rcpt = lambda a: "550 5.1.1 no such user" if a.startswith("caio") else None
    run(conn, smtp_sink.port)
    smtp_sink.faults.on_rcpt = None
    before = ledger(conn)
    assert sorted(v[0] for v in before.values()) == ["failed", "sent", "sent", "sent"]
    smtp_sink.messages.clear()
    assert [b.digests for b in plan.plan_batches(conn, DAY, redirect=True)] == [4]
    run(conn, smtp_sink.port, redirect_to="qa@fintera.com.br")
    assert [m.rcpt_tos[0] for m in smtp_sink.messages] == ["qa@fintera.com.br"] * 4
    assert ledger(conn) == before  # untouched


def test_same_address_on_two_users_gets_one_message(conn, world, smtp_sink):
    acme = world.entity("Acme")
    world.user("Fin 1", "financeiro@acme.com.br", [acme])
    world.user("Fin 2", "Financeiro@acme.com.br", [acme])
    inv = world.invoice(acme, local(DAY, 9), boleto=False, notification=False)
    world.attempt(inv, "nfse", "failed", local(DAY, 9, 1), "erro")
    extract.stage_errors(conn, WINDOW)
    built = build.build_and_stage(conn, WINDOW, SETTINGS)
    run(conn, smtp_sink.port)
    assert len(smtp_sink.messages) == 1
    assert built.problems == {"duplicate_address": 1}
