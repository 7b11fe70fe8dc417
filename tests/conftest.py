"""Fixtures with real parts: a real PostgreSQL (embedded, or BILLING_DIGEST_TEST_DSN), a real
SMTP server (aiosmtpd) and a real Airflow metadata DB for dag.test()."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parents[1]
# Airflow reads its configuration at import: set it before anything imports airflow.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="bd-airflow-"))
os.environ.update({
    "AIRFLOW_HOME": str(_AIRFLOW_HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
    "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    # Runs and the unsubscribe service refuse the default secret (secret_check.require_safe): the tests
    # set a real one, for the session and every process it starts. Tests of the refusal override it.
    "BILLING_DIGEST_UNSUBSCRIBE_SECRET": "tests-" + secrets.token_urlsafe(24),
})
# The DAG reads these at parse time. A test whose data has not "arrived" waits seconds, not hours.
# The late-run Deadline Alert stays as shipped: dag.test() runs without it by itself (the DAG file's
# workaround of an Airflow 3.3.2 bug, docs/operations-notes.md); tests/scenarios/test_late_run.py fires it.
for _name, _value in {"BILLING_DIGEST_FRESHNESS_POKE_SECONDS": "1",
                      "BILLING_DIGEST_FRESHNESS_TIMEOUT_HOURS": "0.01"}.items():
    os.environ.setdefault(_name, _value)

import psycopg  # noqa: E402
import pytest  # noqa: E402

from billing_digest import sql as bd_sql  # noqa: E402
from devtools import embedded_pg  # noqa: E402
from devtools.smtp_sink import SmtpSink  # noqa: E402
from tests.world import World  # noqa: E402

TEMPLATE_DB = "bd_template"
# .ci/run sets CI=1: there, a system tool a test needs (Chromium, docker-compose, SpamAssassin) that is
# missing fails the test, since .ci/run installs it; on a developer's machine the test is skipped, loudly.
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def missing_system_tool(what: str, reason: str) -> NoReturn:
    if IN_CI:
        pytest.fail(f"CI must run {what}, but {reason}; .ci/run installs it")
    pytest.skip(f"{what.upper()} NOT RUN: {reason}")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """DSN of a PostgreSQL server: BILLING_DIGEST_TEST_DSN if set, else an embedded one."""
    external = os.environ.get("BILLING_DIGEST_TEST_DSN")
    if external:
        yield external
        return
    data_dir = Path(tempfile.mkdtemp(prefix="bd-pg-"))
    dsn = embedded_pg.start(data_dir, keep_running=True)
    yield dsn
    embedded_pg.stop(data_dir)
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def template_db(pg_server: str) -> Iterator[str]:
    """Name of a database with the schema applied, cloned for each test (fast, isolated)."""
    name = f"{TEMPLATE_DB}_{os.getpid()}"
    dsn = embedded_pg.ensure_database(pg_server, name, recreate=True)
    with psycopg.connect(dsn) as conn:
        bd_sql.apply_schema(conn)
    yield name
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db_dsn(pg_server: str, template_db: str) -> Iterator[str]:
    name = f"bd_test_{uuid.uuid4().hex[:10]}"
    template = template_db
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    yield embedded_pg.with_database(pg_server, name)
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def conn(db_dsn: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db_dsn, autocommit=True) as c:
        yield c


@pytest.fixture
def world(conn: psycopg.Connection) -> World:
    return World(conn)


@pytest.fixture
def smtp_sink(tmp_path: Path) -> Iterator[SmtpSink]:
    with SmtpSink(outbox=tmp_path / "outbox") as sink:
        yield sink


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated Airflow metadata DB (SQLite under the session's AIRFLOW_HOME)."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True,
                   env=os.environ.copy())
    return _AIRFLOW_HOME
