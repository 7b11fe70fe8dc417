"""Step 4, plan: the day's batches that have something to send (one mapped ``deliver`` each), after the
batches of earlier days whose digests the provider's daily quota left waiting (the carry-over, issue 14)."""

from __future__ import annotations

import datetime as dt

import psycopg

from billing_digest import sql
from billing_digest.delivery.ledger import DEFERRED, sendable_states
from billing_digest.delivery.quota import QUOTA_OUTCOME, QUOTA_REASON
from billing_digest.handoffs import BatchPlan

LABEL_NAME_CHARS = 28


def short_name(name: str, limit: int = LABEL_NAME_CHARS) -> str:
    """``name`` cut at a word boundary to at most ``limit`` characters (an ellipsis marks a cut)."""
    name = " ".join(name.split())
    if len(name) <= limit:
        return name
    cut = name[: limit - 1].rsplit(" ", 1)[0] if " " in name[: limit - 1] else name[: limit - 1]
    return cut.rstrip(" ,.-&") + "…"


def _n(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def batch_label(batch: int, digests: int, first: str, last: str) -> str:
    """How the Airflow UI names a mapped ``deliver``: its batch's first and last company, in order."""
    names = short_name(first) if first == last else f"{short_name(first)} … {short_name(last)}"
    return f"batch {batch}: {names} ({_n(digests, 'e-mail', 'e-mails')})"


def carried_label(digest_date: dt.date, label: str) -> str:
    """A carried-over batch's label: the day it comes from first (the UI lists it with the run's own batches)."""
    return f"carried over from {digest_date:%d/%m}: {label}"


def done_label(plan: BatchPlan, outcomes: dict[str, int]) -> str:
    """A finished ``deliver``'s label: what it planned and what this run did, in counts that agree with
    the summary (another run of the same day may have sent the batch's digests while this one waited)."""
    sent = outcomes.get("sent", 0) + outcomes.get("resent", 0) + outcomes.get("redirected", 0)
    parts = [f"{sent} sent by this run"]
    if other := outcomes.get("locked_by_other_run", 0):
        parts.append(f"{other} held by another run of the day (it sends them)")
    for key, word in (("failed", "failed"), ("deferred", "deferred"), (QUOTA_OUTCOME, "waiting for the daily quota")):
        if outcomes.get(key):
            parts.append(f"{outcomes[key]} {word}")
    skipped = sum(n for k, n in outcomes.items() if k.startswith("skipped"))
    if skipped:
        parts.append(f"{skipped} skipped")
    head = plan.label.rsplit(" (", 1)[0]
    return f"{head} ({_n(plan.digests, 'e-mail', 'e-mails')} planned: {', '.join(parts)})"


def plan_batches(conn: psycopg.Connection, digest_date: dt.date, resend: bool = False,
                 entity_ids: list[int] | None = None, redirect: bool = False) -> list[BatchPlan]:
    """The batches with digests in a sendable state (any state but skipped on a re-send or a redirect)."""
    states = sendable_states(resend, redirect)
    rows = conn.execute(sql.load("plan/batches"), {"digest_date": digest_date, "states": states,
                                                   "entity_ids": entity_ids}).fetchall()
    return [BatchPlan(digest_date, int(batch), int(n), batch_label(int(batch), int(n), first, last))
            for batch, n, first, last in rows]


def plan_carry_over(conn: psycopg.Connection, digest_date: dt.date, days: int) -> list[BatchPlan]:
    """The batches of the ``days`` digest days before ``digest_date`` that hold digests the provider's daily quota
    left deferred, oldest day first: the run of ``digest_date`` sends them before its own (they have waited
    longest). Nothing when ``days`` is 0 or a later digest day exists (only the latest day's run carries over)."""
    if days <= 0:
        return []
    rows = conn.execute(sql.load("plan/carry_over_batches"), {
        "digest_date": digest_date, "since": digest_date - dt.timedelta(days=days), "state": DEFERRED,
        "reason": QUOTA_REASON}).fetchall()
    return [BatchPlan(day, int(batch), int(n), carried_label(day, batch_label(int(batch), int(n), first, last)),
                      carried=True)
            for day, batch, n, first, last in rows]
