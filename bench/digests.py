"""The staged digests of a scale's day, as the delivery reads them (payloads and ledger rows)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import psycopg

from bench.common import window
from billing_digest import build as build_step
from billing_digest import extract, sql
from billing_digest import plan as plan_step
from billing_digest.mail.render import Recipient
from billing_digest.settings import Settings


@dataclass
class Digest:
    row_id: int
    entity_id: int
    batch: int
    recipient: Recipient


def reset_day(conn: psycopg.Connection, day: dt.date) -> None:
    """Forget everything staged or sent for the day (the next run starts from nothing)."""
    with conn.transaction():
        for table in ("errors", "entity_digests", "deliveries"):
            conn.execute(f"DELETE FROM digest.{table} WHERE digest_date = %s", (day,))  # noqa: S608


def build(conn: psycopg.Connection, settings: Settings | None = None) -> dict[str, Any]:
    """Extract and build the day's digests from nothing (what the DAG's first tasks do)."""
    w = window()
    reset_day(conn, w.digest_date)
    staged = extract.stage_errors(conn, w)
    built = build_step.build_and_stage(conn, w, settings or Settings())
    return {"staged": staged.to_xcom(), "built": built.to_xcom()}


def mark_pending(conn: psycopg.Connection, day: dt.date) -> int:
    """Put every digest that was sent (or failed) back to pending, for another send measurement."""
    return conn.execute(
        "UPDATE digest.deliveries SET state = 'pending', reason = NULL, attempts = 0, message_id = NULL, "
        "sent_to = NULL, sent_at = NULL, last_run_id = NULL WHERE digest_date = %s AND state <> 'skipped'",
        (day,)).rowcount


def load(conn: psycopg.Connection, day: dt.date) -> tuple[dict[int, dict[str, Any]], list[Digest]]:
    """(payload per entity, the sendable digests in delivery order: by entity, then user)."""
    payloads = {r[0]: r[1] for r in conn.execute(
        "SELECT entity_id, payload FROM digest.entity_digests WHERE digest_date = %s", (day,))}
    rows = conn.execute(
        "SELECT id, entity_id, batch, user_id, recipient_name, email FROM digest.deliveries "
        "WHERE digest_date = %s AND state IN ('pending', 'deferred', 'sent') ORDER BY entity_id, user_id",
        (day,)).fetchall()
    digests = [Digest(i, e, b, Recipient(u, n or "", m)) for i, e, b, u, n, m in rows if e in payloads]
    return payloads, digests


def plan(conn: psycopg.Connection, day: dt.date) -> list[dict[str, Any]]:
    return [b.to_xcom() for b in plan_step.plan_batches(conn, day)]


__all__ = ["Digest", "build", "load", "mark_pending", "plan", "reset_day", "sql"]
