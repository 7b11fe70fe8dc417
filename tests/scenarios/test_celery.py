"""Distributed smoke test: the DAG run by the CeleryExecutor, a real Redis broker and a real Celery
worker process; the mapped delivery batches run on that worker."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import psycopg
import pytest

from devtools import embedded_pg
from devtools.airflow_local import LocalAirflow, sqlalchemy_url
from devtools.smtp_sink import free_port
from tests.scenarios.celery_hostname import WORKER_HOSTNAME
from tests.scenarios.test_backfill import DAYS
from tests.world import local

pytestmark = pytest.mark.slow
DAG = "billing_error_digest"


def _redis_up(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """The machine's Redis on 6379, else one started for the test; skipped loudly only if neither."""
    if _redis_up(6379):
        yield "redis://127.0.0.1:6379/7"
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("NO REDIS: nothing on 127.0.0.1:6379 and no redis-server to start: "
                    "the CeleryExecutor smoke test did not run")
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL)
    for _ in range(50):
        if _redis_up(port):
            break
        time.sleep(0.1)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()


def test_celery_worker_runs_the_mapped_batches(world, db_dsn, pg_server, smtp_sink, tmp_path, redis_url):
    entities = [world.entity(f"Empresa {n}") for n in range(4)]
    for n, entity in enumerate(entities):
        world.user(f"Pessoa {n}", f"pessoa{n}@exemplo.com.br", [entity])
        inv = world.invoice(entity, local(DAYS[0], 9), boleto=False, notification=False)
        world.attempt(inv, "nfse", "failed", local(DAYS[0], 9, 5), "erro")
    world.data_loaded_until(local(DAYS[1], 6))
    metadata = embedded_pg.ensure_database(pg_server, "af_celery_smoke", recreate=True)
    worker_name = f"billing-digest-worker-{os.getpid()}@localhost"
    af = LocalAirflow(
        tmp_path / "airflow", db_dsn, smtp_sink.port, port=free_port(), executor="CeleryExecutor",
        metadata_dsn=metadata,
        commands=(("api-server",), ("scheduler",), ("dag-processor",),
                  ("celery", "worker", "--concurrency", "2", "--celery-hostname", worker_name)),
        extra_env={
            "AIRFLOW__CELERY__BROKER_URL": redis_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + sqlalchemy_url(metadata),
            "AIRFLOW__CELERY__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__CELERY_LOGGING_LEVEL": "INFO",  # the worker logs each task it receives
            # several small batches, so the mapping shows on the worker
            "BILLING_DIGEST_MIN_BATCH_SIZE": "1", "BILLING_DIGEST_MAX_BATCHES": "4",
        },
        # task instances run by the worker record this hostname
        command_env={"celery": {"AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.scenarios.celery_hostname.worker_name"}})
    with af:
        af.cli(["dags", "reserialize"], check=False)
        af.cli(["dags", "unpause", DAG])
        af.cli(["dags", "trigger", DAG, "--run-id", "celery_smoke", "-c",
                json.dumps({"digest_date": DAYS[0].isoformat()})])
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            run = next((r for r in af.runs(DAG) if r["run_id"] == "celery_smoke"), None)
            if run and run["state"] in ("success", "failed"):
                break
            time.sleep(2)
        assert run and run["state"] == "success", run
        states = af.cli(["tasks", "states-for-dag-run", DAG, "celery_smoke", "-o", "json"]).stdout
        rows = json.loads(next(line for line in states.splitlines() if line.startswith("[")))
        delivers = [r for r in rows if r["task_id"] == "deliver"]
        assert len(delivers) == 4 and {r["state"] for r in delivers} == {"success"}
    with psycopg.connect(metadata) as meta:
        hosts = meta.execute("SELECT task_id, map_index, hostname FROM task_instance WHERE run_id = 'celery_smoke' "
                             "ORDER BY task_id, map_index").fetchall()
    assert [(t, i) for t, i, _ in hosts if t == "deliver"] == [("deliver", i) for i in range(4)]
    assert {h for _, _, h in hosts} == {WORKER_HOSTNAME}  # every task instance ran on the Celery worker
    assert sorted(m.rcpt_tos[0] for m in smtp_sink.messages) == [f"pessoa{n}@exemplo.com.br" for n in range(4)]
