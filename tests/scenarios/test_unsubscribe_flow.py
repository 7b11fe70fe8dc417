"""One-click unsubscribe end to end: a digest sent through Airflow (dag.test) to a real SMTP
server, its List-Unsubscribe URL POSTed to the unsubscribe service served by uvicorn over real
HTTPS, and the next day's run skipping that user as ``opted_out``. Also: a run with the default
secret refuses to start and sends nothing."""

from __future__ import annotations

import datetime as dt
import re
import ssl

import httpx
import psycopg
import pytest

from billing_digest import NOTIFICATION_KIND, summary
from billing_digest.settings import Settings
from billing_digest.unsubscribe.app import PREFIX, create_app
from devtools.asgi_server import ServedApp
from tests.tls import make_cert
from tests.world import local

DAY = dt.date(2026, 11, 27)
NEXT_DAY = DAY + dt.timedelta(days=1)


def run_after(day: dt.date) -> dt.datetime:
    """When the run that reports ``day`` runs: the next day at 06:30, when its window closes."""
    return local(day + dt.timedelta(days=1), 6, 30)


@pytest.fixture
def two_days(world):
    """A company and two opted-in users; the company has an error on day D and on day D+1."""
    acme = world.entity("Acme Serviços LTDA", cnpj="11222333000181")
    ana = world.user("Ana Lima", "ana@acme.com.br", [acme])
    bruno = world.user("Bruno Reis", "bruno@acme.com.br", [acme])
    for day, customer in ((DAY, "Cliente Um"), (NEXT_DAY, "Cliente Dois")):
        invoice = world.invoice(acme, local(day, 9), customer=customer, amount="1234.56")
        world.all_ok(invoice, local(day, 9), steps=("boleto", "charge_email"))
        world.attempt(invoice, "nfse", "rejected", local(day, 9, 5), "E160 - Código de serviço inválido", "E160")
    world.data_loaded_until(local(NEXT_DAY + dt.timedelta(days=1), 6))
    return {"acme": acme, "ana": ana, "bruno": bruno}


def test_a_run_with_the_default_secret_refuses_to_start_and_sends_nothing(airflow_env, two_days, smtp_sink, conn,
                                                                          monkeypatch, capfd):
    monkeypatch.setenv("BILLING_DIGEST_UNSUBSCRIBE_SECRET", "change-me")
    monkeypatch.setenv("BILLING_DIGEST_ALERT_EMAIL", "dados@fintera.com.br")
    run = airflow_env().test(logical_date=run_after(DAY))
    assert run.state == "failed"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["wait_for_billing_data"] == "failed"  # the first task, at once (no retries)
    assert all(state == "upstream_failed" for task, state in states.items() if task != "wait_for_billing_data")
    # No digest; only the data team's alert, which says what to set.
    assert [m.rcpt_tos for m in smtp_sink.messages] == [["dados@fintera.com.br"]]
    alert = smtp_sink.messages[0].message
    assert "failed in task wait_for_billing_data" in alert["Subject"]
    assert "the setting unsubscribe_secret is the default" in alert.get_content()
    assert conn.execute("SELECT count(*) FROM digest.deliveries").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM digest.errors").fetchone()[0] == 0
    out, err = capfd.readouterr()  # the task's log, with the error that failed it
    assert re.search(r"AirflowFailException: billing-digest refuses to start: the setting unsubscribe_secret "
                     r"is the default \('change-me'\)", out + err)
    assert "BILLING_DIGEST_UNSUBSCRIBE_SECRET" in out + err


@pytest.fixture
def unsubscribe_service(db_dsn, tmp_path, monkeypatch):
    """The service over HTTPS (a test CA) on a free port, with the DAG's settings; the links point to it."""
    cert, key = make_cert(tmp_path)
    settings = Settings.from_env(overrides={"base_url": "https://app.exemplo.com.br"})  # the tests' secret
    with ServedApp(create_app(lambda: psycopg.connect(db_dsn), settings, prefix=PREFIX),
                   certfile=cert, keyfile=key) as served:
        monkeypatch.setenv("BILLING_DIGEST_UNSUBSCRIBE_URL", f"{served.url}{PREFIX}/cancelar")
        yield served, ssl.create_default_context(cafile=str(cert))


def ledger(conn, day: dt.date) -> dict[int, tuple[str, str | None]]:
    rows = conn.execute("SELECT user_id, state, reason FROM digest.deliveries WHERE digest_date = %s", (day,))
    return {user: (state, reason) for user, state, reason in rows}


def test_one_click_from_the_email_stops_the_next_days_digest(airflow_env, two_days, smtp_sink, conn,
                                                             unsubscribe_service):
    served, trust = unsubscribe_service
    ana, bruno = two_days["ana"], two_days["bruno"]

    # Day D: both receive the digest, through Airflow and a real SMTP server.
    assert airflow_env().test(logical_date=run_after(DAY)).state == "success"
    received = {m.rcpt_tos[0]: m.message for m in smtp_sink.messages}
    assert sorted(received) == ["ana@acme.com.br", "bruno@acme.com.br"]
    message = received["ana@acme.com.br"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = re.findall(r"<([^>]+)>", message["List-Unsubscribe"])
    assert https.startswith(f"https://localhost:{served.port}{PREFIX}/cancelar?token={ana}.{NOTIFICATION_KIND}.")
    assert mailto.startswith("mailto:")
    assert https in message.get_body(("plain",)).get_content()  # the footer's link is the same

    # Ana's mail client does what RFC 8058 says: POST the body to the https URL. No login, no cookie.
    answer = httpx.post(https, data={"List-Unsubscribe": "One-Click"}, verify=trust, follow_redirects=False)
    assert answer.status_code == 200 and "Aviso desativado" in answer.text
    assert conn.execute("SELECT enabled FROM billing.notification_preferences WHERE user_id = %s AND kind = %s",
                        (ana, NOTIFICATION_KIND)).fetchone() == (False,)
    assert conn.execute("SELECT user_id, kind, source FROM digest.unsubscribes").fetchall() == [
        (ana, NOTIFICATION_KIND, "one_click")]

    # Day D+1: Bruno gets his digest; Ana's row is skipped, opted_out, and nothing is sent to her.
    assert airflow_env().test(logical_date=run_after(NEXT_DAY)).state == "success"
    next_day = [m for m in smtp_sink.messages if "28/11/2026" in m.message["Subject"]]
    assert [m.rcpt_tos for m in next_day] == [["bruno@acme.com.br"]]
    assert len(smtp_sink.messages) == 3
    assert ledger(conn, NEXT_DAY) == {ana: ("skipped", "opted_out"), bruno: ("sent", None)}
    assert ledger(conn, DAY) == {ana: ("sent", None), bruno: ("sent", None)}  # day D is history
    report = summary.latest(conn, NEXT_DAY)
    assert report is not None and report.ledger["skipped"] == {"opted_out": 1}
