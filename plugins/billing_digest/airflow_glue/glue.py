"""The Airflow room's plumbing: connections, the settings Variable, metrics emission and the run's note.

Imports of Airflow happen inside functions, so importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterable, Iterator
from typing import Any

import psycopg

from billing_digest.airflow_glue.metrics import Metric
from billing_digest.delivery.smtp import SmtpSettings, from_connection_fields
from billing_digest.secret_check import require_safe
from billing_digest.settings import ENV_PREFIX, VARIABLE, Settings, SettingsError

log = logging.getLogger(__name__)

DB_CONN_ID = os.environ.get("BILLING_DIGEST_DB_CONN_ID", "billing_db")
SMTP_CONN_ID = os.environ.get("BILLING_DIGEST_SMTP_CONN_ID", "billing_smtp")
ALERT_FIELDS = ("alert_email", "sender")  # what an alert needs when the other settings do not validate


def settings(check: bool = True) -> Settings:
    """Airflow Variable ``billing_digest_settings`` (a JSON object) over env vars over defaults.

    Fails closed: a setting that does not validate, or the default (or a too short)
    ``unsubscribe_secret``, fails the task at once, without retries (a retry cannot fix
    configuration), with a message naming the setting. Every task that reads the settings refuses,
    so a run with such settings sends nothing. ``check=False`` is for the alerts only, which must
    still reach the data team: they get what can be read (at least ``alert_email`` and ``sender``).
    """
    from airflow.sdk import Variable
    from airflow.sdk.exceptions import AirflowFailException

    raw = Variable.get(VARIABLE, default=None)
    overrides: dict[str, Any] = {}
    if raw:
        overrides = raw if isinstance(raw, dict) else json.loads(raw)
        if not isinstance(overrides, dict):
            raise AirflowFailException(f"the Airflow Variable {VARIABLE} must be a JSON object")
    try:
        result = Settings.from_env(overrides=overrides)
        return require_safe(result) if check else result
    except SettingsError as exc:
        if check:
            raise AirflowFailException(str(exc)) from exc
        log.error("%s; the alert uses what can be read", exc)
        return _alert_settings(overrides)


def _alert_settings(overrides: dict[str, Any]) -> Settings:
    """Who to alert and as whom, when the other settings do not validate."""
    wanted = {k: v for k, v in overrides.items() if k in ALERT_FIELDS}
    env = {f"{ENV_PREFIX}{name.upper()}" for name in ALERT_FIELDS}
    try:
        return Settings.from_env(environ={k: v for k, v in os.environ.items() if k in env}, overrides=wanted)
    except SettingsError:
        return Settings()


def billing_db() -> psycopg.Connection:
    """A new psycopg 3 connection from the Airflow connection ``billing_db``."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    conn = PostgresHook(postgres_conn_id=DB_CONN_ID).get_conn()
    if not isinstance(conn, psycopg.Connection):
        raise RuntimeError("billing-digest needs psycopg 3 (SQLAlchemy 2 makes the postgres provider use it)")
    return conn


def smtp_settings() -> SmtpSettings:
    from airflow.sdk import Connection

    c = Connection.get(SMTP_CONN_ID)
    return from_connection_fields(c.host, c.port, c.login, c.password, c.extra_dejson or {})


API_CONN_ID = os.environ.get("BILLING_DIGEST_API_CONN_ID", "airflow_api")


def emit(metrics: Iterable[Metric]) -> None:
    """Send metrics through Airflow's metrics interface (StatsD/OpenTelemetry per ``[metrics]``;
    nothing when metrics are off). A metrics failure never fails the run."""
    from airflow.sdk.observability.stats import Stats

    for m in metrics:
        try:
            if m.kind == "incr":
                Stats.incr(m.name, int(m.value))
            elif m.kind == "gauge":
                Stats.gauge(m.name, m.value)
            else:
                Stats.timing(m.name, m.value)
        except Exception as exc:  # noqa: BLE001 - metrics are best effort
            log.warning("could not emit metric %s: %s", m.name, exc)


def publish_run_note(dag_id: str, run_id: str, note: str) -> bool:
    """Set the DAG run's note through Airflow's REST API (:func:`api_client`: the connection
    ``airflow_api``, a user allowed to edit the DAG's runs). Without that connection, or on any error, it
    logs and returns False: a note is information for the data team, never a reason to fail the run."""
    from urllib.parse import quote

    import httpx

    try:
        with api_client() as client:
            done = client.patch(f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}",
                                params={"update_mask": "note"}, json={"note": note})
            done.raise_for_status()
    except NoApiConnection:
        log.info("no Airflow connection %r: the run note is not set", API_CONN_ID)
        return False
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        log.warning("could not set the run note through the connection %r: %s", API_CONN_ID, exc)
        return False
    return True


class NoApiConnection(LookupError):
    """The optional Airflow connection ``airflow_api`` is not defined."""


@contextlib.contextmanager
def api_client() -> Iterator[Any]:
    """An ``httpx.Client`` logged in to Airflow's REST API with the connection ``airflow_api`` (http: host,
    port, login, password); raises :class:`NoApiConnection` when the connection is missing, httpx's errors
    when the login fails."""
    import httpx
    from airflow.sdk import Connection

    try:
        conn = Connection.get(API_CONN_ID)
    except Exception as exc:  # noqa: BLE001 - the SDK raises its own lookup error; the connection is optional
        raise NoApiConnection(API_CONN_ID) from exc
    host = conn.host or "localhost"
    base = host if "://" in host else f"{conn.conn_type if conn.conn_type in ('http', 'https') else 'http'}://{host}"
    base = f"{base.rstrip('/')}:{conn.port}" if conn.port and base.count(":") < 2 else base.rstrip("/")
    with httpx.Client(base_url=base, timeout=10) as client:
        token = client.post("/auth/token", json={"username": conn.login, "password": conn.password})
        token.raise_for_status()
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        yield client
