"""What the crash tests share: a PostgreSQL server of the test's own (never the session's shared one,
never an Airflow metadata DB) that may be SIGKILLed, a day of digests with a known key each, the
count of lost and duplicated digests at the SMTP server, and a fresh DAG whose retries come after
seconds, not minutes. The ``own_pg`` fixture is in this folder's conftest.py."""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from billing_digest import build, extract
from billing_digest import sql as bd_sql
from billing_digest.settings import Settings
from billing_digest.window import window_for_date
from devtools import embedded_pg
from devtools.smtp_sink import DigestKey, Journal, free_port, read_journal
from tests.world import World, local

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class OwnPostgres:
    """A PostgreSQL server started by the test, which the test may SIGKILL and restart."""

    data_dir: Path
    dsn: str  # the billing database

    def crash(self) -> list[int]:
        """SIGKILL every process of this server (postmaster and all its children)."""
        return embedded_pg.crash(self.data_dir)

    def restart(self) -> None:
        embedded_pg.restart(self.data_dir)

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.dsn, autocommit=True)

    def airflow_connection(self) -> str:
        return json.dumps(embedded_pg.airflow_connection(self.dsn))


@contextlib.contextmanager
def own_postgres() -> Iterator[OwnPostgres]:
    """Start a server in a new temporary data directory (schema applied); stop and remove it after."""
    # A short path: the server's Unix socket lives in its data directory (108-byte limit).
    data_dir = Path(tempfile.mkdtemp(prefix="bd-crash-pg-"))
    try:
        server = embedded_pg.start(data_dir, keep_running=True)
        dsn = embedded_pg.ensure_database(server, "billing")
        with psycopg.connect(dsn) as conn:
            bd_sql.apply_schema(conn)
        yield OwnPostgres(data_dir, dsn)
    finally:
        if embedded_pg.server_processes(data_dir):
            embedded_pg.stop(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


def seed_day(conn: psycopg.Connection, day: dt.date, entities: int, users_per_entity: int = 1,
             first_id: int = 1000) -> set[DigestKey]:
    """``entities`` companies with one NFS-e error on ``day`` and ``users_per_entity`` recipients each;
    returns the digest keys the day must deliver, one e-mail each."""
    world = World(conn, ids=itertools.count(first_id))
    expected: set[DigestKey] = set()
    for n in range(entities):
        entity = world.entity(f"Empresa {n:03d} LTDA")
        for u in range(users_per_entity):
            user = world.user(f"Pessoa {n}-{u}", f"pessoa{u}@empresa{entity}.com.br", [entity])
            expected.add((day.isoformat(), entity, user))
        invoice = world.invoice(entity, local(day, 9), boleto=False, notification=False)
        world.attempt(invoice, "nfse", "rejected", local(day, 9, 5), "E160 - Código de serviço inválido")
    world.data_loaded_until(local(day + dt.timedelta(days=1), 6, 0))  # the freshness gate opens
    return expected


def seed_and_build_day(conn: psycopg.Connection, day: dt.date, settings: Settings, entities: int = 30,
                       users_per_entity: int = 2, first_id: int = 1000) -> set[DigestKey]:
    """:func:`seed_day`, then the day extracted and built (payloads, ledger rows in batches) with ``settings``.
    Another day of the same test seeds companies of its own: a ``first_id`` past the first day's ids."""
    expected = seed_day(conn, day, entities=entities, users_per_entity=users_per_entity, first_id=first_id)
    extract.stage_errors(conn, window_for_date(day))
    build.build_and_stage(conn, window_for_date(day), settings)
    return expected


@dataclass(frozen=True)
class Outcome:
    """Counted at the SMTP server against the digests the day must deliver."""

    lost: int  # expected digests never received
    duplicates: int  # receptions beyond the first
    unexpected: int  # digests nobody expected (must be 0)
    received: int

    def __str__(self) -> str:
        return f"lost {self.lost}, delivered twice {self.duplicates}, unexpected {self.unexpected}, " \
               f"received {self.received}"


def outcome(counts: Counter[DigestKey], expected: set[DigestKey]) -> Outcome:
    return Outcome(lost=len(expected - set(counts)),
                   duplicates=sum(n - 1 for key, n in counts.items() if key in expected),
                   unexpected=sum(n for key, n in counts.items() if key not in expected),
                   received=sum(counts.values()))


def assert_one_message_window(result: Outcome, open_connections: int) -> None:
    """The promise after a crash: nothing lost, nothing unexpected, and at most one copy per SMTP
    connection that was open at the crash (the message in flight)."""
    assert result.lost == 0 and result.unexpected == 0, result
    assert result.duplicates <= open_connections, result


def ledger_states(conn: psycopg.Connection, day: dt.date) -> dict[str, int]:
    return dict(conn.execute("SELECT state, count(*) FROM digest.deliveries WHERE digest_date = %s GROUP BY 1",
                             (day,)).fetchall())


def fresh_dag(retry_seconds: float = 2.0):
    """A new DAG object (dag.test keeps a run's conf in-process) whose retries come after
    ``retry_seconds`` (the DAG's own delay is minutes); ``dag.test`` runs a retry in the same call."""
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(ROOT / "dags")).dags["billing_error_digest"]
    for task in dag.tasks:
        task.retry_delay = dt.timedelta(seconds=retry_seconds)
        task.retry_exponential_backoff = 0
    return dag


class SinkProcess:
    """``python -m devtools.smtp_sink`` in its own process group, which a test may SIGKILL and start
    again on the same port; what it received is read from its journal (:func:`read_journal`)."""

    def __init__(self, journal: Path, port: int | None = None, delay_ms: float = 0, hold_at: int | None = None):
        self.journal, self.port = journal, port or free_port()
        self.delay_ms, self.hold_at = delay_ms, hold_at
        self.proc: subprocess.Popen[str] | None = None

    def start(self, hold_at: int | None = None) -> SinkProcess:
        args = [sys.executable, "-m", "devtools.smtp_sink", "--port", str(self.port), "--journal", str(self.journal),
                "--delay-ms", str(self.delay_ms)]
        if hold_at is not None:
            args += ["--hold-at", str(hold_at)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT)])}
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT,
                                     start_new_session=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # printed once the port is bound
        if not line.startswith("listening"):
            raise RuntimeError(f"the SMTP sink did not start (exit {self.proc.wait(10)})")
        return self

    def kill(self) -> None:
        """SIGKILL the sink's process group; returns once it is gone."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def read(self) -> Journal:
        return read_journal(self.journal)

    def __enter__(self) -> SinkProcess:
        return self.start(self.hold_at)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill()


def kill_process_tree(root: int, timeout: float = 10) -> list[int]:
    """SIGKILL ``root`` and every process under it, whatever their process groups, as a machine or
    container crash would (Airflow's task runner lives in its own process group, so ``kill -9 -PGID``
    of a worker alone leaves it running). The tree is frozen with SIGSTOP first so that nothing forks
    meanwhile. Returns the pids killed, once they are gone."""
    import psutil

    try:
        top = psutil.Process(root)
    except psutil.NoSuchProcess:
        return []
    frozen: list[psutil.Process] = []
    pending = [top]
    while pending:  # parents before children: a stopped parent forks no new child
        proc = pending.pop()
        try:
            proc.send_signal(signal.SIGSTOP)
            frozen.append(proc)
            pending.extend(proc.children())
        except psutil.NoSuchProcess:
            pass
    for proc in frozen:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    gone, alive = psutil.wait_procs(frozen, timeout=timeout)
    if alive:
        raise TimeoutError(f"processes {[p.pid for p in alive]} survived SIGKILL")
    return [p.pid for p in frozen]
