"""Distributed runs for real: the scheduler with the CeleryExecutor, a Redis broker of the test's own,
two Celery workers (each in its own process group, each with its own hostname), metadata in a real
PostgreSQL (the session's embedded server, never killed here). Each day has 4 `deliver` batches.

- two workers, one lost: both workers take batches; the one sending the 12th message has its whole
  process tree SIGKILLed; the scheduler fails its task instance when the heartbeats stop, and the
  retry completes the batch on the other worker;
- the broker SIGKILLed mid-batch (its queue is not persistent, like a default Redis): running
  batches finish, the queued ones whose messages died with it are requeued by the scheduler.

Counted at the SMTP server: every digest arrives, at most one message per connection open at the
crash arrives twice.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import psycopg
import pytest

from devtools import embedded_pg
from devtools.airflow_local import LocalAirflow, sqlalchemy_url
from devtools.smtp_sink import DigestKey, SmtpSink, free_port
from tests.scenarios import airflow_policy
from tests.scenarios.crashkit import assert_one_message_window, kill_process_tree, ledger_states, outcome, seed_day

pytestmark = pytest.mark.slow
DAG = "billing_error_digest"
WORKERS = ("billing-digest-worker-a", "billing-digest-worker-b")
HEARTBEAT_TIMEOUT = 20  # [scheduler] task_instance_heartbeat_timeout (default 300 s)
QUEUED_TIMEOUT = 20  # [scheduler] task_queued_timeout (default 600 s)
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _redis_up(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A redis-server of the test's own, on a free port, without persistence (like Airflow's compose
    Redis): a SIGKILL loses what was queued in it."""

    def __init__(self, binary: str, workdir: Path):
        self.binary, self.workdir, self.port = binary, workdir, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen([self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                                      "--appendonly", "no", "--dir", str(self.workdir)],
                                     stdout=subprocess.DEVNULL, start_new_session=True)
        for _ in range(100):
            if _redis_up(self.port):
                return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def queued(self, queue: str = "default") -> int:
        """Messages waiting in a Celery queue (a Redis list) for a worker to take them."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
            s.sendall(f"LLEN {queue}\r\n".encode())
            return int(s.recv(64).strip().lstrip(b":"))

    def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, 9)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory) -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        message = "NO redis-server: the CeleryExecutor tests did not run (apt-get install redis-server)"
        if IN_CI:
            pytest.fail(message + "; .ci/run installs it")
        pytest.skip(message)
    server = RedisServer(binary, tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cluster_db(pg_server, template_db) -> Iterator[str]:
    """The billing database of the whole module (Airflow's processes get it once, at start)."""
    name = f"bd_celery_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    yield embedded_pg.with_database(pg_server, name)
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Cluster:
    af: LocalAirflow
    sink: SmtpSink
    redis: RedisServer
    metadata_dsn: str
    billing_dsn: str
    worker_commands: dict[str, tuple[str, ...]] = field(default_factory=dict)
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def ensure_workers(self) -> None:
        """Both workers running (a test may have killed one)."""
        for name, command in self.worker_commands.items():
            old = self.workers[name]
            if old.poll() is not None:
                self.workers[name] = self.af.start_command(command)
                self.af.procs[self.af.procs.index(old)] = self.workers[name]  # stopped with the rest

    def trigger(self, run_id: str, day: dt.date) -> None:
        self.af.cli(["dags", "trigger", DAG, "--run-id", run_id, "-c", json.dumps({"digest_date": day.isoformat()})])

    def wait(self, run_id: str, timeout: float = 240) -> dict:
        deadline = time.monotonic() + timeout
        run = None
        while time.monotonic() < deadline:
            run = next((r for r in self.af.runs(DAG) if r["run_id"] == run_id), None)
            if run and run["state"] in ("success", "failed"):
                return run
            time.sleep(2)
        raise TimeoutError(f"run {run_id} not finished after {timeout}s: {run}")

    def tries(self, run_id: str) -> list[tuple[str, int, int, str | None, str | None]]:
        """(task_id, map_index, try_number, state, hostname) of every try, earlier tries included."""
        with psycopg.connect(self.metadata_dsn) as meta:
            return meta.execute(
                "SELECT task_id, map_index, try_number, state, hostname FROM task_instance WHERE run_id = %(r)s "
                "UNION ALL SELECT task_id, map_index, try_number, state, hostname FROM task_instance_history "
                "WHERE run_id = %(r)s ORDER BY 1, 2, 3", {"r": run_id}).fetchall()

    def requeued_as_stuck(self, run_id: str) -> list[tuple[str, int]]:
        """Task instances the scheduler put back to scheduled after `task_queued_timeout` in queued."""
        with psycopg.connect(self.metadata_dsn) as meta:
            return meta.execute("SELECT task_id, map_index FROM log WHERE run_id = %s "
                                "AND event = 'stuck in queued reschedule' ORDER BY 1, 2", (run_id,)).fetchall()

    def worker_of_connection(self, peer: tuple[str, int]) -> str | None:
        """The worker whose process tree owns the client end of an SMTP connection."""
        roots = {proc.pid: name for name, proc in self.workers.items()}
        for conn in psutil.net_connections(kind="tcp"):
            if conn.pid and conn.laddr and conn.laddr.port == peer[1] and conn.raddr \
                    and conn.raddr.port == self.sink.port:
                proc = psutil.Process(conn.pid)
                for p in (proc, *proc.parents()):
                    if p.pid in roots:
                        return roots[p.pid]
        return None

    def counts(self, day: dt.date) -> Counter[DigestKey]:
        return Counter({k: n for k, n in self.sink.counts().items() if k[0] == day.isoformat()})


@pytest.fixture(scope="module")
def cluster(pg_server, cluster_db, redis_server, tmp_path_factory) -> Iterator[Cluster]:
    home = tmp_path_factory.mktemp("celery") / "airflow"
    airflow_policy.install(home)  # retries after 2 s, not minutes
    metadata = embedded_pg.ensure_database(pg_server, f"af_celery_{os.getpid()}", recreate=True)
    workers = {name: ("celery", "worker", "--concurrency", "1", "--celery-hostname", f"{name}@localhost")
               for name in WORKERS}
    with SmtpSink(delay=0.1) as sink:
        af = LocalAirflow(
            home, cluster_db, sink.port, port=free_port(), executor="CeleryExecutor", metadata_dsn=metadata,
            commands=(("api-server",), ("scheduler",), ("dag-processor",), *workers.values()),
            extra_env={
                "AIRFLOW__CELERY__BROKER_URL": redis_server.url,
                "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + sqlalchemy_url(metadata),
                "AIRFLOW__LOGGING__CELERY_LOGGING_LEVEL": "INFO",  # the workers log each task they receive
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": str(QUEUED_TIMEOUT),
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "5",
                "BILLING_DIGEST_TEST_RETRY_SECONDS": "2",
                # 40 digests a day -> 4 batches of 10
                "BILLING_DIGEST_MIN_BATCH_SIZE": "5", "BILLING_DIGEST_MAX_BATCHES": "4",
                "BILLING_DIGEST_SMTP_BACKOFF_SECONDS": "0.2",
            },
            command_env={
                "celery": {"AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.scenarios.celery_hostname.worker_name"},
                **{" ".join(command): {"BILLING_DIGEST_TEST_WORKER_HOSTNAME": name,
                                       "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                                       "AIRFLOW__CELERY__WORKER_LOG_SERVER_PORT": str(free_port())}
                   for name, command in workers.items()},
            })
        with af:
            af.cli(["dags", "reserialize"], check=False)
            af.cli(["dags", "unpause", DAG])
            procs = dict(zip(af.commands, af.procs, strict=True))
            yield Cluster(af, sink, redis_server, metadata, cluster_db, workers,
                          {name: procs[command] for name, command in workers.items()})


def _report(title: str, crash: dict, result) -> None:
    print(f"\n{title}: {crash.get('what')} after {crash.get('received_before')} messages of the day, "
          f"{crash.get('open_connections')} SMTP connection(s) open: {result}")


def a_day_of_batches(cluster, day: dt.date, first_id: int) -> set:
    """Both workers up, and a day of 40 digests in several batches; returns the digests it must deliver."""
    cluster.ensure_workers()
    with psycopg.connect(cluster.billing_dsn, autocommit=True) as conn:
        return seed_day(conn, day, entities=20, users_per_entity=2, first_id=first_id)


def run_with_fault(cluster, name: str, day: dt.date, expected: set, fault, label: str, crash: dict):
    """Trigger the day's run with ``fault`` on each message the sink receives; returns (run, outcome)."""
    cluster.sink.faults.on_data = fault
    try:
        cluster.trigger(name, day)
        run = cluster.wait(name)
    finally:
        cluster.sink.faults.on_data = None
    result = outcome(cluster.counts(day), expected)
    _report(label, crash, result)
    return run, result


def test_broker_killed_mid_batch_the_run_completes_and_loses_nothing(cluster):
    day = dt.date(2026, 11, 10)
    expected = a_day_of_batches(cluster, day, first_id=10_000)
    crash: dict[str, object] = {}
    seen = {"n": 0}

    def restart_the_broker() -> None:
        cluster.redis.start()  # same port, empty: the queued messages died with it
        crash["restarted"] = True

    def kill_the_broker_mid_batch_with_batches_queued_in_it(envelope) -> None:
        seen["n"] += 1
        if seen["n"] >= 4 and not crash and cluster.redis.queued() >= 2:  # more than one worker could take
            crash.update(open_connections=cluster.sink.open_connections, received_before=len(cluster.counts(day)),
                         queued_in_broker=cluster.redis.queued(), what="Redis SIGKILLed")
            cluster.redis.kill()
            threading.Timer(3, restart_the_broker).start()
        return None

    run, result = run_with_fault(cluster, "broker_lost", day, expected,
                                 kill_the_broker_mid_batch_with_batches_queued_in_it, "broker lost", crash)
    requeued = cluster.requeued_as_stuck("broker_lost")
    print(f"{crash.get('queued_in_broker')} batch(es) queued in the broker at the kill; requeued by the "
          f"scheduler after {QUEUED_TIMEOUT} s in queued: {requeued}")

    assert crash.get("restarted"), "the broker was never killed mid-batch with batches queued in it"
    assert run["state"] == "success", run
    # batches whose Celery messages died with the broker were put back by the scheduler
    assert any(t == "deliver" for t, _ in requeued), requeued
    assert_one_message_window(result, crash["open_connections"])
    with psycopg.connect(cluster.billing_dsn) as conn:
        assert ledger_states(conn, day) == {"sent": len(expected)}


def test_two_workers_take_the_batches_and_one_lost_mid_batch_loses_nothing(cluster):
    day = dt.date(2026, 11, 11)
    expected = a_day_of_batches(cluster, day, first_id=20_000)
    crash: dict[str, object] = {}
    seen = {"n": 0}

    def kill_the_worker_sending_the_nth_message(envelope) -> None:
        seen["n"] += 1
        if seen["n"] == 12:
            victim = cluster.worker_of_connection(cluster.sink.handler.current_peer)
            crash.update(victim=victim, open_connections=cluster.sink.open_connections,
                         received_before=len(cluster.counts(day)), what=f"worker {victim} SIGKILLed")
            if victim is not None:
                crash["pids"] = kill_process_tree(cluster.workers[victim].pid)
        return None

    run, result = run_with_fault(cluster, "two_workers_one_lost", day, expected,
                                 kill_the_worker_sending_the_nth_message, "two workers, one lost", crash)
    tries = cluster.tries("two_workers_one_lost")
    print("deliver tries (map_index, try, state, host):",
          [(i, n, s, h) for t, i, n, s, h in tries if t == "deliver"])

    assert crash.get("victim") in WORKERS, crash  # a worker was killed while it held a connection
    (survivor,) = set(WORKERS) - {crash["victim"]}
    assert run["state"] == "success", run
    assert {h for *_, h in tries} <= set(WORKERS)  # every task instance ran on a Celery worker
    deliver = [(i, n, s, h) for t, i, n, s, h in tries if t == "deliver"]
    assert {i for i, *_ in deliver} == {0, 1, 2, 3}  # 4 batches
    assert {h for *_, h in deliver} == set(WORKERS)  # both workers took batches
    retried = [i for i, n, *_ in deliver if n >= 2]
    assert retried, deliver  # the killed batch was retried ...
    final = {i: (s, h) for i, n, s, h in deliver if n == max(m for j, m, *_ in deliver if j == i)}
    assert all(final[i] == ("success", survivor) for i in retried)  # ... and completed on the other worker
    assert_one_message_window(result, crash["open_connections"])
    with psycopg.connect(cluster.billing_dsn) as conn:
        assert ledger_states(conn, day) == {"sent": len(expected)}
