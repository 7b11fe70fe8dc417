"""Abnormal days through real Airflow (dag.test): late data waits, stale days and anomalies are held,
and nothing reaches an inbox until the data supports a digest."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time

import psycopg

from tests.world import World, local

DAY = dt.date(2026, 11, 27)
NEXT = DAY + dt.timedelta(days=1)
RUN_AFTER = dt.datetime(2026, 11, 28, 6, 30, tzinfo=local(DAY, 0).tzinfo)


def company_with_errors(world: World, day: dt.date = DAY, n: int = 2) -> int:
    acme = world.entity("Acme Serviços LTDA")
    world.user("Ana Lima", "ana@acme.com.br", [acme])
    for i in range(n):
        inv = world.invoice(acme, local(day, 9, i), boleto=False, notification=False)
        world.attempt(inv, "nfse", "rejected", local(day, 9, 30), "E160 - Código de serviço inválido", "E160")
    return acme


def test_data_short_of_the_window_end_holds_the_run_until_it_arrives(airflow_env, world, smtp_sink, db_dsn, caplog):
    caplog.set_level(logging.INFO, logger="billing_digest")
    company_with_errors(world)
    world.data_loaded_until(local(DAY, 14))  # loaded up to 14:00; 18:30 is needed (06:30 minus 12 h)
    seen_before_arrival = []

    def load_the_rest_later() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and caplog.text.count("waiting: billing data for 2026-11-27") < 3:
            time.sleep(0.2)
        seen_before_arrival.append(len(smtp_sink.messages))
        with psycopg.connect(db_dsn, autocommit=True) as conn:
            World(conn).data_loaded_until(local(NEXT, 5, 50))

    loader = threading.Thread(target=load_the_rest_later)
    loader.start()
    run = airflow_env().test(logical_date=RUN_AFTER)
    loader.join()
    assert seen_before_arrival == [0]  # three pokes, nothing sent while the data was short
    assert run.state == "success"
    assert [m.rcpt_tos for m in smtp_sink.messages] == [["ana@acme.com.br"]]
    assert "arrived: billing data for 2026-11-27 complete up to 2026-11-28 05:50 -03" in caplog.text


def test_data_that_never_arrives_times_out_tells_the_data_team_and_sends_nothing(airflow_env, world, smtp_sink,
                                                                                 monkeypatch, conn):
    monkeypatch.setenv("BILLING_DIGEST_FRESHNESS_TIMEOUT_HOURS", str(4 / 3600))  # 4 s
    monkeypatch.setenv("BILLING_DIGEST_ALERT_EMAIL", "dados@fintera.com.br")
    company_with_errors(world)
    world.data_loaded_until(local(DAY, 14))
    run = airflow_env().test(logical_date=RUN_AFTER)
    assert run.state == "failed"
    [alert] = smtp_sink.messages
    assert alert.rcpt_tos == ["dados@fintera.com.br"]
    assert alert.message["Subject"] == ("[billing_error_digest] digest of 27/11/2026 HELD, nothing sent: "
                                        "the billing data did not arrive")
    guard, problems = conn.execute("SELECT guard, problems FROM digest.day_holds WHERE digest_date = %s",
                                   (DAY,)).fetchone()  # the history page and the preview show why
    assert guard == "freshness" and problems[0].startswith("the billing data did not arrive")


def test_a_day_older_than_the_history_sends_nothing_and_says_why(airflow_env, world, smtp_sink, monkeypatch, conn):
    monkeypatch.setenv("BILLING_DIGEST_ALERT_EMAIL", "dados@fintera.com.br")
    acme = company_with_errors(world)
    world.data_loaded_until(local(NEXT, 6))
    # invoices billed a month earlier whose attempts are gone (retention): each would look "missing"
    old = DAY - dt.timedelta(days=30)
    for i in range(40):
        world.invoice(acme, local(old, 9, i))
    run = airflow_env().test(logical_date=RUN_AFTER, run_conf={"digest_date": old.isoformat()})
    assert run.state == "failed"
    [alert] = smtp_sink.messages  # the data team's alert, and no digest
    assert alert.rcpt_tos == ["dados@fintera.com.br"]
    body = " ".join(alert.message.get_content().split())
    assert "2026-10-28 is older than the attempt history (the attempt history runs from 2026-11-27 09:30" in body
    assert conn.execute("SELECT count(*) FROM digest.deliveries WHERE digest_date = %s", (old,)).fetchone()[0] == 0
    tis = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert tis["check_quality"] == "failed" and tis["build_digests"] == "upstream_failed"


def reported_days(conn: psycopg.Connection, world: World, days: int = 5, boletos: int = 2,
                  invoices: int = 40) -> None:
    """Earlier days already reported, each with ``invoices`` billed and a few boleto errors (the volume baseline:
    5 errors per 100 invoices)."""
    other = world.entity("Outra Empresa")
    for back in range(1, days + 1):
        day = DAY - dt.timedelta(days=back)
        for i in range(invoices):
            world.invoice(other, local(day, 10, i % 60), nfse=False, notification=False)
        for n in range(boletos):
            conn.execute("INSERT INTO digest.errors (digest_date, invoice_id, step, kind) VALUES (%s, %s, 'boleto', "
                         "'failed')", (day, n))
        conn.execute("INSERT INTO digest.day_reports (digest_date, run_id, summary) VALUES (%s, 'r', %s)",
                     (day, json.dumps({})))


def test_a_volume_anomaly_is_held_then_sent_on_purpose_and_recorded(airflow_env, world, smtp_sink, conn, caplog,
                                                                     monkeypatch):
    caplog.set_level(logging.INFO, logger="billing_digest")
    monkeypatch.setenv("BILLING_DIGEST_ALERT_EMAIL", "dados@fintera.com.br")
    reported_days(conn, world)
    acme = world.entity("Acme Serviços LTDA")
    world.user("Ana Lima", "ana@acme.com.br", [acme])
    companies = [acme, *(world.entity(f"Empresa {k}") for k in range(7))]  # only Acme has a recipient
    for i in range(80):  # the bank is down for everyone: 80 boletos refused in 8 companies, against 2 a day
        inv = world.invoice(companies[i % 8], local(DAY, 9, i % 60), nfse=False, notification=False)
        world.attempt(inv, "boleto", "failed", local(DAY, 11), "API do banco indisponível (HTTP 503)")
    world.data_loaded_until(local(NEXT, 6))
    # Staged errors of a day 200 days back: past retention (90 days), deleted only by a successful run.
    old_day = DAY - dt.timedelta(days=200)
    conn.execute("INSERT INTO digest.errors (digest_date, invoice_id, step, kind) VALUES (%s, 1, 'nfse', 'failed')",
                 (old_day,))

    held = airflow_env().test(logical_date=RUN_AFTER)
    assert held.state == "failed"
    old_rows = "SELECT count(*) FROM digest.errors WHERE digest_date = %s"
    assert conn.execute(old_rows, (old_day,)).fetchone() == (1,)  # a held run deletes nothing
    guard, problems = conn.execute("SELECT guard, problems FROM digest.day_holds WHERE digest_date = %s",
                                   (DAY,)).fetchone()
    assert guard == "quality" and "80 errors in topic Cobrança" in problems[0]  # the history page says why
    [alert] = smtp_sink.messages  # the data team is told; no digest left
    assert alert.rcpt_tos == ["dados@fintera.com.br"]
    body = " ".join(alert.message.get_content().split())
    assert ("80 errors in topic Cobrança (Boleto Bancário) for 80 invoices billed (100.0 per 100 invoices) in 8 of "
            "the 8 billing companies, against a median of 5.0 per 100 over the 5 previous reported days, 4 expected") \
        in body
    assert "accept_anomaly=true" in body

    sent = airflow_env().test(logical_date=RUN_AFTER, run_conf={"accept_anomaly": True})
    assert sent.state == "success" and [m.rcpt_tos for m in smtp_sink.messages[1:]] == [["ana@acme.com.br"]]
    summary = conn.execute("SELECT summary FROM digest.day_reports WHERE digest_date = %s", (DAY,)).fetchone()[0]
    assert len(summary["accepted_anomaly"]) == 1 and "80 errors" in summary["accepted_anomaly"][0]
    assert "SENT DESPITE A VOLUME ANOMALY" in caplog.text
    assert conn.execute(old_rows, (old_day,)).fetchone() == (0,)  # apply_retention ran after the sent run


def test_a_day_not_over_yet_or_a_bad_redirect_stop_the_run_at_once_before_extracting(airflow_env, world, smtp_sink,
                                                                                    conn, monkeypatch):
    import pytest

    monkeypatch.setenv("BILLING_DIGEST_ALERT_EMAIL", "dados@fintera.com.br")
    company_with_errors(world)
    world.data_loaded_until(local(NEXT, 6))
    started = time.monotonic()
    run = airflow_env().test(logical_date=RUN_AFTER, run_conf={"digest_date": "2099-01-01"})
    assert run.state == "failed" and time.monotonic() - started < 60  # no three-hour wait for data
    tis = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert tis["wait_for_billing_data"] == "failed" and tis["extract_errors"] == "upstream_failed"
    [alert] = smtp_sink.messages
    assert alert.message["Subject"] == ("[billing_error_digest] digest of 01/01/2099: run "
                                        f"{run.run_id} failed in task wait_for_billing_data")
    assert ("the digest of 01/01/2099 cannot run yet: its window ends on 02/01/2099 at 06:30 (America/Sao_Paulo)"
            in " ".join(alert.message.get_content().split()))
    # the Trigger form's pattern refuses a redirect that is not one mailbox, before any run exists
    with pytest.raises(Exception, match="redirect_to|does not match"):
        airflow_env().test(logical_date=RUN_AFTER, run_conf={"redirect_to": "not-an-email"})
    assert conn.execute("SELECT count(*) FROM digest.errors").fetchone()[0] == 0  # nothing was extracted
