"""Step 1, extract: stage the window's errors in ``digest.errors`` (SQL of include/sql/extract)."""

from __future__ import annotations

import psycopg

from billing_digest import sql
from billing_digest.handoffs import StagedDay
from billing_digest.window import Window


def stage_errors(conn: psycopg.Connection, window: Window) -> StagedDay:
    """Replace the day's staged errors (one transaction: a retry restages the same rows)."""
    params = window.as_params()
    with conn.transaction():
        conn.execute(sql.load("extract/delete_day"), params)
        failed = conn.execute(sql.load("extract/stage_failed_steps"), params).rowcount
        missing = conn.execute(sql.load("extract/stage_missing_steps"), params).rowcount
    return StagedDay(window.digest_date, window.start, window.end, failed, missing)
