"""The only module that talks to Airflow: connections, settings and the task bodies' I/O.

Imports of Airflow happen inside functions, so importing this module stays cheap.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import psycopg

from billing_digest.settings import Settings, UnsafeSettings, require_safe
from billing_digest.smtp import SmtpSettings, from_connection_fields

log = logging.getLogger(__name__)

DB_CONN_ID = os.environ.get("BILLING_DIGEST_DB_CONN_ID", "billing_db")
SMTP_CONN_ID = os.environ.get("BILLING_DIGEST_SMTP_CONN_ID", "billing_smtp")
SETTINGS_VARIABLE = "billing_digest_settings"


def settings(check: bool = True) -> Settings:
    """Airflow Variable ``billing_digest_settings`` (a JSON object) over env vars over defaults.

    Fails closed: with the default (or a too short) ``unsubscribe_secret`` the task fails at once,
    without retries (a retry cannot fix configuration), with a message naming the setting. Every
    task that reads the settings refuses, so a run with that secret sends nothing. ``check=False``
    is for the failure alert only, which must still reach the data team.
    """
    from airflow.sdk import Variable

    raw = Variable.get(SETTINGS_VARIABLE, default=None)
    overrides: dict[str, Any] = {}
    if raw:
        overrides = raw if isinstance(raw, dict) else json.loads(raw)
        if not isinstance(overrides, dict):
            raise ValueError(f"Variable {SETTINGS_VARIABLE} must be a JSON object")
    result = Settings.from_env(overrides=overrides)
    if check:
        try:
            require_safe(result)
        except UnsafeSettings as exc:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(str(exc)) from exc
    return result


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
