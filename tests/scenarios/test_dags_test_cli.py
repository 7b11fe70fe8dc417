"""`airflow dags test` of the DAG as shipped (late-run Deadline Alert on) ends with exit 0.

Airflow 3.3.2's ``DAG.test()`` fails at the end of every successful run of a DAG with a deadline
(docs/operations-notes.md); the DAG file's ``_without_deadline_in_dag_test`` works around it for the
test path only. This runs the real CLI in its own process, as a data engineer would."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
import uuid

from conftest import ROOT

from tests.world import local

DAY = dt.date(2026, 11, 27)
RUN_AFTER = dt.datetime(2026, 11, 28, 6, 30, tzinfo=local(DAY, 0).tzinfo)


def latest_serialized_deadline(airflow_home) -> list[str]:
    """The deadline references of the newest serialized billing_error_digest in the metadata DB (what
    the scheduler runs): its ``deadline`` holds ``deadline_alert`` ids."""
    with sqlite3.connect(airflow_home / "airflow.db") as db:
        [data] = db.execute("SELECT data FROM serialized_dag WHERE dag_id = 'billing_error_digest' "
                            "ORDER BY created_at DESC LIMIT 1").fetchone()
        ids = [uuid.UUID(i).hex for i in json.loads(data)["dag"]["deadline"] or []]
        return [db.execute("SELECT reference FROM deadline_alert WHERE replace(id, '-', '') = ?", (i,)).fetchone()[0]
                for i in ids]


def test_dags_test_of_the_shipped_dag_exits_0_and_keeps_the_alert(airflow_env, airflow_db, world, conn,
                                                                  smtp_sink, monkeypatch):
    monkeypatch.setenv("BILLING_DIGEST_LATE_ALERT_AFTER_MINUTES", "45")  # as shipped
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "plugins"), str(ROOT)]))
    acme = world.entity("Acme Serviços LTDA", cnpj="11222333000181")
    world.user("Bruno", "bruno@acme.com.br", [acme])
    inv = world.invoice(acme, local(DAY, 9), boleto=False, notification=False)
    world.attempt(inv, "nfse", "rejected", local(DAY, 9, 30), "E160")
    world.data_loaded_until(local(DAY + dt.timedelta(days=1), 6))

    done = subprocess.run([sys.executable, "-m", "airflow", "dags", "test", "billing_error_digest",
                           RUN_AFTER.isoformat()], capture_output=True, text=True, timeout=300)

    assert done.returncode == 0, done.stderr[-3000:]
    assert "get_by_id" not in done.stderr + done.stdout
    assert [m.rcpt_tos for m in smtp_sink.messages] == [["bruno@acme.com.br"]]
    assert conn.execute("SELECT state FROM digest.deliveries").fetchall() == [("sent",)]
    # What the scheduler runs keeps the late-run alert: the DAG that `dags test` wrote to the metadata DB.
    [alert] = latest_serialized_deadline(airflow_db)
    assert "DagRunQueuedAtDeadline" in alert
    # The test run itself got no Deadline row, so a triggerer on that metadata DB cannot page anyone for it.
    with sqlite3.connect(airflow_db / "airflow.db") as db:
        assert db.execute("SELECT count(*) FROM deadline d JOIN dag_run r ON r.id = d.dagrun_id "
                          "WHERE r.dag_id = 'billing_error_digest' AND r.run_type = 'manual'").fetchone() == (0,)
