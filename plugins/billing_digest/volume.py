"""Is the day's volume of errors wildly off its usual? Then hold it: a false alarm in thousands of
inboxes is worse than a late digest.

Per topic, the day's staged errors are compared with the median of its trailing reported days
(``anomaly_trailing_days``, at least ``anomaly_min_days`` of them, else the check says it cannot
judge and passes). A topic is anomalous when it is at least ``anomaly_factor`` times the median
**and** at least ``anomaly_floor`` errors above it (the floor keeps small numbers from tripping
it: 0 -> 3 is not an incident). The run parameter ``accept_anomaly`` sends anyway, and the
summary records that it did.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import statistics
from collections import defaultdict

import psycopg

from billing_digest import sql
from billing_digest.handoffs import Handoff
from billing_digest.settings import Settings
from billing_digest.topics import STEP_TOPIC, TOPICS


@dataclasses.dataclass(frozen=True)
class Volume(Handoff):
    today: dict[str, int]                 # topic -> errors staged for the day
    median: dict[str, float]              # topic -> median of the trailing days (empty: no baseline)
    trailing_days: int
    anomalies: tuple[str, ...] = ()
    note: str = ""                        # why nothing was judged, when that is the case


def assess(digest_date: dt.date, today: dict[str, int], trailing: list[dict[str, int]], *, factor: float,
           floor: int, min_days: int) -> Volume:
    """The verdict (pure). ``trailing``: per reported day (newest first), errors per topic."""
    if len(trailing) < min_days:
        return Volume(today, {}, len(trailing), (), f"{len(trailing)} trailing reported day(s), fewer than "
                      f"{min_days} (setting anomaly_min_days): the volume was not judged")
    medians = {t.code: float(statistics.median(day.get(t.code, 0) for day in trailing)) for t in TOPICS}
    anomalies = []
    for topic in TOPICS:
        n, median = today.get(topic.code, 0), medians[topic.code]
        if n >= factor * median and n - median >= floor:
            anomalies.append(
                f"{digest_date}: {n:,} errors in topic {topic.title} against a median of {median:,.0f} over the "
                f"{len(trailing)} previous reported days (factor {factor:g}, floor {floor}: settings "
                "anomaly_factor, anomaly_floor)")
    return Volume(today, medians, len(trailing), tuple(anomalies))


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
    rows = conn.execute(sql.load("volume/errors_by_step"),
                        {"digest_date": digest_date, "trailing_days": trailing_days}).fetchall()
    days = by_topic(rows)
    today = days.pop(digest_date, {t.code: 0 for t in TOPICS})
    trailing = [days[d] for d in sorted(days, reverse=True)]
    return assess(digest_date, today, trailing, factor=factor, floor=floor, min_days=min_days)


def baseline_start(conn: psycopg.Connection, digest_date: dt.date, settings: Settings) -> dt.date | None:
    """The oldest day :func:`measure` reads for ``digest_date`` (and so for any later day): retention
    never deletes it or anything after it from the tables this guard reads. None: no baseline yet."""
    row = conn.execute(sql.load("volume/baseline_start"),
                       {"digest_date": digest_date, "trailing_days": settings.anomaly_trailing_days}).fetchone()
    return row[0] if row else None


@dataclasses.dataclass(frozen=True)
class Baseline:
    median: float     # of the trailing reported days
    threshold: float  # the day's errors at or above this hold it


def baselines(series: dict[dt.date, dict[str, int]], days: list[dt.date],
              settings: Settings) -> dict[dt.date, dict[str, Baseline]]:
    """Per day of ``days``, per topic, the guard's baseline as :func:`assess` judges it (pure): the
    median of the ``anomaly_trailing_days`` reported days before it in ``series`` (reported day ->
    errors per topic) and the threshold ``max(factor x median, median + floor)``; no entry for a day
    with fewer than ``anomaly_min_days`` of them. The history page reads the guard through this."""
    reported = sorted(series)
    out: dict[dt.date, dict[str, Baseline]] = {}
    for day in days:
        trailing = [series[d] for d in reported if d < day][-settings.anomaly_trailing_days:]
        if len(trailing) < settings.anomaly_min_days:
            continue
        out[day] = {}
        for topic in TOPICS:
            median = float(statistics.median(d.get(topic.code, 0) for d in trailing))
            out[day][topic.code] = Baseline(median, max(settings.anomaly_factor * median,
                                                        median + settings.anomaly_floor))
    return out
