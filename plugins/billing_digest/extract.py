"""Extraction: stage the window's errors in ``digest.errors`` with the SQL of include/sql/extract."""

from __future__ import annotations

from typing import Any

import pandas as pd
import psycopg

from billing_digest import sql
from billing_digest.window import Window


def stage_errors(conn: psycopg.Connection, window: Window) -> dict[str, Any]:
    """Replace the day's staged errors (one transaction: a retry restages the same rows)."""
    params = window.as_params()
    with conn.transaction():
        conn.execute(sql.load("extract/delete_day"), params)
        failed = conn.execute(sql.load("extract/stage_failed_steps"), params).rowcount
        missing = conn.execute(sql.load("extract/stage_missing_steps"), params).rowcount
    return {"digest_date": window.digest_date.isoformat(), "window_start": window.start.isoformat(),
            "window_end": window.end.isoformat(), "failed_steps": failed, "missing_steps": missing}


def read_frame(conn: psycopg.Connection, name: str, params: dict[str, Any]) -> pd.DataFrame:
    """Run ``include/sql/<name>.sql`` and return its rows as a DataFrame."""
    with conn.cursor() as cur:
        cur.execute(sql.load(name), params)
        columns = [c.name for c in cur.description or []]
        return pd.DataFrame(cur.fetchall(), columns=columns)


def day_errors(conn: psycopg.Connection, window: Window) -> pd.DataFrame:
    return read_frame(conn, "extract/select_day_errors", {"digest_date": window.digest_date})


def recipients(conn: psycopg.Connection, entity_ids: list[int]) -> pd.DataFrame:
    return read_frame(conn, "extract/recipients", {"entity_ids": entity_ids})
