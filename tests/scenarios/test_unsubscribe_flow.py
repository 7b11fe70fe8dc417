"""One-click unsubscribe end to end: a digest sent through Airflow (dag.test) to a real SMTP
server, its List-Unsubscribe URL POSTed to the unsubscribe service served by uvicorn over real
HTTPS, and the next day's run skipping that user as ``opted_out``. Also: a run with the default
secret refuses to start and sends nothing."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from devtools import embedded_pg
from devtools.smtp_sink import airflow_connection as smtp_conn
from tests.world import local

DAY = dt.date(2026, 11, 27)
NEXT_DAY = DAY + dt.timedelta(days=1)


def run_after(day: dt.date) -> dt.datetime:
    """The logical date of the scheduled run that reports ``day`` (its window's start, day 06:30)."""
    return local(day, 6, 30)


@pytest.fixture
def dag_for(airflow_db, db_dsn, smtp_sink, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_BILLING_DB", json.dumps(embedded_pg.airflow_connection(db_dsn)))
    monkeypatch.setenv("AIRFLOW_CONN_BILLING_SMTP", json.dumps(smtp_conn(smtp_sink.port)))
    monkeypatch.setenv("BILLING_DIGEST_BASE_URL", "https://app.exemplo.com.br")
    monkeypatch.setenv("BILLING_DIGEST_SMTP_BACKOFF_SECONDS", "0.1")
    from airflow.dag_processing.dagbag import DagBag
    from conftest import ROOT

    def fresh_dag():
        # A new DAG object per run: dag.test() keeps a run's conf in the DAG's params in-process.
        return DagBag(dag_folder=str(ROOT / "dags")).dags["billing_error_digest"]

    return fresh_dag


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
    return {"acme": acme, "ana": ana, "bruno": bruno}


def test_a_run_with_the_default_secret_refuses_to_start_and_sends_nothing(dag_for, two_days, smtp_sink, conn,
                                                                          monkeypatch, capfd):
    monkeypatch.setenv("BILLING_DIGEST_UNSUBSCRIBE_SECRET", "change-me")
    run = dag_for().test(logical_date=run_after(DAY))
    assert run.state == "failed"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["extract_errors"] == "failed"  # the first task, at once (no retries)
    assert all(state == "upstream_failed" for task, state in states.items() if task != "extract_errors")
    assert smtp_sink.messages == []
    assert conn.execute("SELECT count(*) FROM digest.deliveries").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM digest.errors").fetchone()[0] == 0
    out, err = capfd.readouterr()  # the task's log, with the error that failed it
    assert re.search(r"AirflowFailException: billing-digest refuses to start: the setting unsubscribe_secret "
                     r"is the default \('change-me'\)", out + err)
    assert "BILLING_DIGEST_UNSUBSCRIBE_SECRET" in out + err
