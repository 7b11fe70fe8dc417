"""Is the day's error *rate* wildly off its usual? Then hold it: a false alarm in thousands of
inboxes is worse than a late digest.

A billing SaaS bills in waves (the 1st, 5th and 10th of the month, Mondays): a day with five times
the invoices has five times the errors and is not an incident. So, per topic, the guard compares
errors **per invoice billed in the window** with the median rate of its trailing reported days
(``anomaly_trailing_days``; at least ``anomaly_min_days`` of them with invoices, else it says it
cannot judge and passes). The day's expected errors are that median rate times the day's invoices; a
topic is anomalous when it has at least ``anomaly_factor`` times the expected errors **and** at least
``anomaly_floor`` errors more (the floor keeps small numbers from tripping it: 0 -> 3 is not an
incident). Only reported days are a baseline, so a re-run of a day is judged like its first run.
The run parameter ``accept_anomaly`` sends anyway, and the summary records that it did.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import statistics
from collections import defaultdict

import psycopg

from billing_digest import sql
from billing_digest.handoffs import Handoff
from billing_digest.topics import STEP_TOPIC, TOPICS
from billing_digest.window import SEND_TIME, TIMEZONE


@dataclasses.dataclass(frozen=True)
class Volume(Handoff):
    today: dict[str, int]                 # topic -> errors staged for the day
    median: dict[str, float]              # topic -> errors expected today at the trailing median rate (empty: none)
    trailing_days: int
    anomalies: tuple[str, ...] = ()
    note: str = ""                        # why nothing was judged, when that is the case
    invoices: int = 0                     # invoices billed in the day's window
    median_rate: dict[str, float] = dataclasses.field(default_factory=dict)  # topic -> errors per invoice


@dataclasses.dataclass(frozen=True)
class DayVolume:
    """One day's errors per topic and the invoices billed in its window."""

    errors: dict[str, int]
    invoices: int


def assess(digest_date: dt.date, today: DayVolume, trailing: list[DayVolume], *, factor: float,
           floor: int, min_days: int) -> Volume:
    """The verdict (pure). ``trailing``: the reported days before (newest first)."""
    baseline = [d for d in trailing if d.invoices > 0]  # a day that billed nothing has no rate
    if len(baseline) < min_days:
        return Volume(today.errors, {}, len(baseline), (), f"{len(baseline)} trailing reported day(s) with "
                      f"invoices, fewer than {min_days} (setting anomaly_min_days)", today.invoices)
    rates = {t.code: float(statistics.median(d.errors.get(t.code, 0) / d.invoices for d in baseline))
             for t in TOPICS}
    expected = {code: rate * today.invoices for code, rate in rates.items()}
    anomalies = []
    for topic in TOPICS:
        n, usual = today.errors.get(topic.code, 0), expected[topic.code]
        if n >= factor * usual and n - usual >= floor:
            anomalies.append(
                f"{digest_date}: {n:,} errors in topic {topic.title} for {today.invoices:,} invoices billed "
                f"({_per_hundred(n, today.invoices)} per 100 invoices), against a median of "
                f"{rates[topic.code] * 100:,.1f} per 100 over the {len(baseline)} previous reported days, "
                f"{usual:,.0f} expected (factor {factor:g}, floor {floor}: settings anomaly_factor, anomaly_floor)")
    return Volume(today.errors, expected, len(baseline), tuple(anomalies), "", today.invoices, rates)


def _per_hundred(errors: int, invoices: int) -> str:
    return f"{errors / invoices * 100:,.1f}" if invoices else "no invoices billed,"


def by_topic(rows: list[tuple[dt.date, str | None, int]]) -> dict[dt.date, dict[str, int]]:
    """``(day, step, errors)`` rows -> per day, errors per topic (steps outside the digest ignored)."""
    days: dict[dt.date, dict[str, int]] = defaultdict(lambda: {t.code: 0 for t in TOPICS})
    for day, step, n in rows:
        counts = days[day]
        if step in STEP_TOPIC:
            counts[STEP_TOPIC[step]] += int(n)
    return dict(days)


def measure(conn: psycopg.Connection, digest_date: dt.date, *, trailing_days: int, factor: float, floor: int,
            min_days: int) -> Volume:
    params = {"digest_date": digest_date, "trailing_days": trailing_days, "send_time": SEND_TIME, "tz": TIMEZONE}
    days = by_topic(conn.execute(sql.load("volume/errors_by_step"), params).fetchall())
    invoices = {d: int(n) for d, n in conn.execute(sql.load("volume/invoices_by_day"), params).fetchall()}
    empty = {t.code: 0 for t in TOPICS}
    today = DayVolume(days.pop(digest_date, empty), invoices.get(digest_date, 0))
    trailing = [DayVolume(days[d], invoices.get(d, 0)) for d in sorted(days, reverse=True)]
    return assess(digest_date, today, trailing, factor=factor, floor=floor, min_days=min_days)
