"""Step 4, plan: the day's batches that have something to send (one mapped ``deliver`` each)."""

from __future__ import annotations

import datetime as dt

import psycopg

from billing_digest import sql
from billing_digest.delivery.ledger import sendable_states
from billing_digest.handoffs import BatchPlan

LABEL_NAME_CHARS = 28


def short_name(name: str, limit: int = LABEL_NAME_CHARS) -> str:
    """``name`` cut at a word boundary to at most ``limit`` characters (an ellipsis marks a cut)."""
    name = " ".join(name.split())
    if len(name) <= limit:
        return name
    cut = name[: limit - 1].rsplit(" ", 1)[0] if " " in name[: limit - 1] else name[: limit - 1]
    return cut.rstrip(" ,.-&") + "…"


def batch_label(batch: int, digests: int, first: str, last: str) -> str:
    """How the Airflow UI names a mapped ``deliver``: its batch's first and last company, in order."""
    names = short_name(first) if first == last else f"{short_name(first)} … {short_name(last)}"
    return f"batch {batch}: {names} ({digests} e-mail{'s' if digests != 1 else ''})"


def plan_batches(conn: psycopg.Connection, digest_date: dt.date, resend: bool = False,
                 entity_ids: list[int] | None = None, redirect: bool = False) -> list[BatchPlan]:
    """The batches with digests in a sendable state (any state but skipped on a re-send or a redirect)."""
    states = sendable_states(resend, redirect)
    rows = conn.execute(sql.load("plan/batches"), {"digest_date": digest_date, "states": states,
                                                   "entity_ids": entity_ids}).fetchall()
    return [BatchPlan(digest_date, int(batch), int(n), batch_label(int(batch), int(n), first, last))
            for batch, n, first, last in rows]
