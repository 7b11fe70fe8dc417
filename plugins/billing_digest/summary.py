"""The run summary: what was found, who was told, what failed and why (counts only, no addresses)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import psycopg

from billing_digest import sql
from billing_digest.topics import TOPIC_BY_CODE


def summarize(conn: psycopg.Connection, digest_date: dt.date, built: dict[str, Any],
              batch_reports: list[dict[str, Any]]) -> dict[str, Any]:
    ledger: dict[str, dict[str, int]] = {}
    for state, reason, n in conn.execute(sql.load("ledger/day_summary"), {"digest_date": digest_date}):
        ledger.setdefault(state, {})[reason or "-"] = int(n)
    this_run: Counter[str] = Counter()
    for report in batch_reports:
        this_run.update(report.get("outcomes", {}))
    return {
        "digest_date": digest_date.isoformat(),
        "errors_by_topic": built.get("errors_by_topic", {}),
        "entities_with_errors": built.get("entities_with_errors", 0),
        "digests": built.get("digests", 0),
        "bad_input": built.get("problems", {}),
        "this_run": dict(sorted(this_run.items())),
        "ledger": ledger,
        "emails_sent_this_run": this_run.get("sent", 0) + this_run.get("resent", 0),
    }


def format_table(summary: dict[str, Any]) -> str:
    """A readable table of the summary for the task log."""
    lines = [f"Billing error digest for {summary['digest_date']}", ""]
    rows: list[tuple[str, str]] = []
    for code, n in summary["errors_by_topic"].items():
        rows.append((f"errors: {TOPIC_BY_CODE[code].title}", str(n)))
    rows += [("entities with errors", str(summary["entities_with_errors"])),
             ("digests (user x entity)", str(summary["digests"])),
             ("e-mails sent by this run", str(summary["emails_sent_this_run"]))]
    for outcome, n in summary["this_run"].items():
        rows.append((f"this run: {outcome}", str(n)))
    for state, reasons in summary["ledger"].items():
        for reason, n in reasons.items():
            rows.append((f"ledger: {state}" + ("" if reason == "-" else f" ({reason})"), str(n)))
    for reason, n in summary["bad_input"].items():
        rows.append((f"bad input: {reason}", str(n)))
    width = max(len(k) for k, _ in rows)
    lines += [f"  {k.ljust(width)}  {v.rjust(8)}" for k, v in rows]
    return "\n".join(lines)
