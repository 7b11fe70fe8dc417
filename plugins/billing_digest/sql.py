"""Load and run the SQL files under ``include/sql`` (one statement per file, values bound by the driver)."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from billing_digest.delivery.ledger import LOCK_KEY, SCHEMA_LOCK


def include_dir() -> Path:
    """``include/`` of the project (overridable with BILLING_DIGEST_INCLUDE_DIR)."""
    override = os.environ.get("BILLING_DIGEST_INCLUDE_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "include"


@functools.cache
def load(name: str) -> str:
    """Text of ``include/sql/<name>.sql``, e.g. ``load("build/recipients")``."""
    return (include_dir() / "sql" / f"{name}.sql").read_text(encoding="utf-8")


def rows(conn: psycopg.Connection, name: str, **params: Any) -> list[dict[str, Any]]:
    """Run ``include/sql/<name>.sql`` with ``params`` bound; its rows as dicts (none for a write)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(load(name), params)
        return cur.fetchall() if cur.description else []


def apply_schema(conn: psycopg.Connection) -> None:
    """Run every DDL file of ``include/sql/schema`` in name order (they are idempotent)."""
    with conn.transaction():
        # Serialise concurrent starts (two workers creating the schema at once).
        conn.execute("SELECT pg_advisory_xact_lock(%s::int, %s::int)", (LOCK_KEY, SCHEMA_LOCK))
        for path in sorted((include_dir() / "sql" / "schema").glob("*.sql")):
            conn.execute(path.read_text(encoding="utf-8"))
