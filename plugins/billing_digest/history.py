"""The days compared (issue 17): what the history page of the Airflow UI charts over a period.

Read from what the runs keep for longest and cheapest: the day reports (``digest.day_reports``,
one summary per reported day: errors per topic, the ledger by state and reason) and the held days
(``digest.day_holds``). The volume guard's baseline comes from :func:`billing_digest.volume.baselines`
(one function, so the page follows the guard when the guard changes).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import psycopg

from billing_digest import sql, volume
from billing_digest.holds import WHAT_TO_DO, Hold
from billing_digest.settings import Settings
from billing_digest.topics import TOPICS
from billing_digest.window import SEND_TIME, TIMEZONE

# The digests of a day by outcome, in the charts' stacking order; skipped split by why.
OUTCOMES = ("sent", "failed", "deferred", "pending", "skipped_opted_out", "skipped_suppressed", "skipped_invalid",
            "skipped_other")
INVALID_REASONS = frozenset({"invalid_email", "duplicate_address"})


@dataclasses.dataclass(frozen=True)
class Day:
    digest_date: dt.date
    reported: bool
    errors: dict[str, int]         # topic -> errors (reported days)
    outcomes: dict[str, int]       # OUTCOMES -> digests (the ledger of the day)
    hold: Hold | None = None       # the day's latest hold (a held day later sent keeps it)
    baseline: dict[str, volume.Baseline] = dataclasses.field(default_factory=dict)

    @property
    def held(self) -> bool:
        """Held and not sent since."""
        return self.hold is not None and not self.reported


@dataclasses.dataclass(frozen=True)
class History:
    start: dt.date
    end: dt.date
    days: list[Day]
    what_to_do: str = WHAT_TO_DO


def outcome_of(state: str, reason: str) -> str:
    """The chart's group of a ledger (state, reason) (pure)."""
    if state != "skipped":
        return state if state in OUTCOMES else "skipped_other"
    if reason == "opted_out":
        return "skipped_opted_out"
    if reason.startswith("suppress"):
        return "skipped_suppressed"
    if reason in INVALID_REASONS or reason.startswith("invalid"):
        return "skipped_invalid"
    return "skipped_other"


def outcomes(ledger: dict[str, dict[str, int]]) -> dict[str, int]:
    counts = dict.fromkeys(OUTCOMES, 0)
    for state, reasons in ledger.items():
        for reason, n in reasons.items():
            counts[outcome_of(state, reason)] += int(n)
    return counts


def assemble(start: dt.date, end: dt.date, reports: dict[dt.date, dict[str, Any]], holds: dict[dt.date, Hold],
             settings: Settings, invoices: dict[dt.date, int] | None = None) -> History:
    """The period's days from the reports (which may start before ``start``: the baseline's
    trailing days), the holds and the invoices billed per day (the guard judges rates) (pure)."""
    series = {d: {t.code: int(s.get("errors_by_topic", {}).get(t.code, 0)) for t in TOPICS}
              for d, s in reports.items()}
    dates = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    base = volume.baselines(series, dates, settings, invoices)
    days = [Day(d, d in reports, series.get(d, {t.code: 0 for t in TOPICS}),
                outcomes(reports[d].get("ledger", {})) if d in reports else dict.fromkeys(OUTCOMES, 0),
                holds.get(d), base.get(d, {})) for d in dates]
    return History(start, end, days)


def last_day(conn: psycopg.Connection) -> dt.date | None:
    row = conn.execute(sql.load("history/last_day")).fetchone()
    return row[0] if row else None


def load(conn: psycopg.Connection, start: dt.date, end: dt.date, settings: Settings) -> History:
    """The period [start, end], with enough earlier reports for the first days' baselines."""
    lookback = start - dt.timedelta(days=3 * settings.anomaly_trailing_days)
    reports = {d: s for d, s in conn.execute(sql.load("history/reports"), {"start": lookback, "end": end})}
    holds = {d: Hold(d, g, tuple(p), at) for d, g, p, at in
             conn.execute(sql.load("history/holds"), {"start": start, "end": end})}
    invoices = {d: int(n) for d, n in conn.execute(sql.load("history/invoices"), {
        "start": lookback, "end": end, "send_time": SEND_TIME, "tz": TIMEZONE})}
    return assemble(start, end, reports, holds, settings, invoices)
