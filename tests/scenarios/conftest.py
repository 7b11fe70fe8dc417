"""Fixtures of the whole-run scenarios: the DAG through Airflow's dag.test() on the real parts, and a
PostgreSQL server of the test's own that a crash test may SIGKILL (the session's real parts are in
tests/conftest.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from devtools import embedded_pg
from devtools.smtp_sink import airflow_connection as smtp_conn
from tests.scenarios.crashkit import OwnPostgres, own_postgres


@pytest.fixture
def airflow_env(airflow_db, db_dsn, smtp_sink, monkeypatch):
    """Connections to the test's database and SMTP sink; returns a factory of fresh DAG objects."""
    monkeypatch.setenv("AIRFLOW_CONN_BILLING_DB", json.dumps(embedded_pg.airflow_connection(db_dsn)))
    monkeypatch.setenv("AIRFLOW_CONN_BILLING_SMTP", json.dumps(smtp_conn(smtp_sink.port)))
    monkeypatch.setenv("BILLING_DIGEST_BASE_URL", "https://app.exemplo.com.br")
    monkeypatch.setenv("BILLING_DIGEST_SMTP_BACKOFF_SECONDS", "0.1")
    from airflow.dag_processing.dagbag import DagBag
    from conftest import ROOT

    def fresh_dag():
        # A new DAG object per run: dag.test() keeps a run's conf in the DAG's params in-process,
        # and the DAG file reads its parse-time environment (monkeypatched by some tests) again.
        return DagBag(dag_folder=str(ROOT / "dags")).dags["billing_error_digest"]

    return fresh_dag


@pytest.fixture
def own_pg() -> Iterator[OwnPostgres]:
    """A PostgreSQL server of this test's own, which it may SIGKILL and restart (billing DB, schema applied)."""
    with own_postgres() as server:
        yield server
