"""Is the day's error *rate* wildly off its usual? Then hold it: a false alarm in thousands of
inboxes is worse than a late digest.

A billing SaaS bills in waves (the 1st, 5th and 10th of the month, Mondays): a day with five times
the invoices has five times the errors and is not an incident. So, per topic, the guard compares
errors **per invoice billed in the window** with the median rate of its trailing reported days
(``anomaly_trailing_days``; at least ``anomaly_min_days`` of them with invoices, else it says it
cannot judge and passes). The day's expected errors are that median rate times the day's invoices; a
topic is anomalous when it has at least ``anomaly_factor`` times the expected errors **and** at least
``anomaly_floor`` errors more (the floor keeps small numbers from tripping it: 0 -> 3 is not an
incident), **and** the jump is wide: the share of the billing companies with errors in the topic is
at least ``anomaly_factor`` times its trailing median too, with at least ``anomaly_min_companies``
more companies than that share expects. A jump inside one or two companies (their own setup: 73
boleto errors of one company on a day of the demo's data) is for their digest to show; an outage (a
bank down for everyone) is wide. Only reported days are a baseline, so a re-run of a day is judged like its first run.
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
from billing_digest.settings import Settings
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
    """One day's errors per topic and the invoices billed in its window; and, for the breadth rule,
    companies with errors per topic and companies that billed (0: unknown, the rate alone decides)."""

    errors: dict[str, int]
    invoices: int
    companies: dict[str, int] = dataclasses.field(default_factory=dict)
    companies_billed: int = 0


def _wide(topic: str, today: DayVolume, baseline: list[DayVolume], factor: float, min_companies: int) -> bool:
    """Is the topic's jump spread over the billing companies (not one company's own problem)?"""
    known = [d for d in baseline if d.companies_billed > 0]
    if today.companies_billed <= 0 or not known:
        return True  # no breadth to judge: the rate alone decides
    share = statistics.median(d.companies.get(topic, 0) / d.companies_billed for d in known)
    usual = share * today.companies_billed
    n = today.companies.get(topic, 0)
    return n >= factor * usual and n - usual >= min_companies


def median_rates(baseline: list[DayVolume]) -> dict[str, float]:
    """Per topic, the median errors per invoice billed over ``baseline`` (days that billed something)."""
    return {t.code: float(statistics.median(d.errors.get(t.code, 0) / d.invoices for d in baseline))
            for t in TOPICS}


def threshold(usual: float, factor: float, floor: int) -> float:
    """The errors at or above which a topic is anomalous: ``factor`` times its usual errors and
    ``floor`` more than them."""
    return max(factor * usual, usual + floor)


def assess(digest_date: dt.date, today: DayVolume, trailing: list[DayVolume], *, factor: float,
           floor: int, min_days: int, min_companies: int = 5) -> Volume:
    """The verdict (pure). ``trailing``: the reported days before (newest first)."""
    baseline = [d for d in trailing if d.invoices > 0]  # a day that billed nothing has no rate
    if len(baseline) < min_days:
        return Volume(today.errors, {}, len(baseline), (), f"{len(baseline)} trailing reported day(s) with "
                      f"invoices, fewer than {min_days} (setting anomaly_min_days)", today.invoices)
    rates = median_rates(baseline)
    expected = {code: rate * today.invoices for code, rate in rates.items()}
    anomalies = []
    for topic in TOPICS:
        n, usual = today.errors.get(topic.code, 0), expected[topic.code]
        if n >= threshold(usual, factor, floor) and _wide(topic.code, today, baseline, factor, min_companies):
            anomalies.append(
                f"{digest_date}: {n:,} errors in topic {topic.title} for {today.invoices:,} invoices billed "
                f"({_per_hundred(n, today.invoices)} per 100 invoices){_spread(topic.code, today)}, against a "
                f"median of {rates[topic.code] * 100:,.1f} per 100 over the {len(baseline)} previous reported days, "
                f"{usual:,.0f} expected (factor {factor:g}, floor {floor}: settings anomaly_factor, anomaly_floor)")
    return Volume(today.errors, expected, len(baseline), tuple(anomalies), "", today.invoices, rates)


def _spread(topic: str, today: DayVolume) -> str:
    if not today.companies_billed:
        return ""
    return f" in {today.companies.get(topic, 0):,} of the {today.companies_billed:,} billing companies"


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
            min_days: int, min_companies: int = 5) -> Volume:
    params = {"digest_date": digest_date, "trailing_days": trailing_days, "send_time": SEND_TIME, "tz": TIMEZONE,
              "steps": list(STEP_TOPIC), "topics": list(STEP_TOPIC.values())}
    days = by_topic(conn.execute(sql.load("volume/errors_by_step"), params).fetchall())
    # The days judged (the day and its trailing reported days) are chosen once, by errors_by_step.
    params["days"] = sorted(days.keys() | {digest_date})
    billed = {d: (int(n), int(c)) for d, n, c in conn.execute(sql.load("volume/invoices_by_day"), params).fetchall()}
    companies: dict[dt.date, dict[str, int]] = defaultdict(dict)
    for day, topic, n in conn.execute(sql.load("volume/companies_by_topic"), params).fetchall():
        companies[day][topic] = int(n)

    def day_volume(day: dt.date, errors: dict[str, int]) -> DayVolume:
        invoices, billing = billed.get(day, (0, 0))
        return DayVolume(errors, invoices, companies.get(day, {}), billing)

    today = day_volume(digest_date, days.pop(digest_date, {t.code: 0 for t in TOPICS}))
    trailing = [day_volume(d, days[d]) for d in sorted(days, reverse=True)]
    return assess(digest_date, today, trailing, factor=factor, floor=floor, min_days=min_days,
                  min_companies=min_companies)


def baseline_start(conn: psycopg.Connection, digest_date: dt.date, settings: Settings) -> dt.date | None:
    """The oldest day :func:`measure` reads for ``digest_date`` (and so for any later day): retention
    never deletes it or anything after it from the tables this guard reads. None: no baseline yet."""
    row = conn.execute(sql.load("volume/baseline_start"),
                       {"digest_date": digest_date, "trailing_days": settings.anomaly_trailing_days}).fetchone()
    return row[0] if row else None


@dataclasses.dataclass(frozen=True)
class Baseline:
    median: float     # the day's usual errors: the trailing median rate x the day's invoices (issue 18)
    threshold: float  # the day's errors at or above this hold it (when the jump is also wide)


def baselines(series: dict[dt.date, dict[str, int]], days: list[dt.date], settings: Settings,
              invoices: dict[dt.date, int] | None = None) -> dict[dt.date, dict[str, Baseline]]:
    """Per day of ``days``, per topic, the guard's baseline as :func:`assess` judges it (pure, with its
    :func:`median_rates` and :func:`threshold`): the day's usual errors (the median rate per invoice
    billed of the ``anomaly_trailing_days`` reported days before it in ``series``, times the day's
    invoices ``invoices``) and the threshold; no entry for a day with fewer than ``anomaly_min_days``
    trailing days with invoices, or whose own invoices are unknown. (The breadth rule, a jump spread
    over the companies, is not a line: a day above the threshold inside one company is still sent.)
    The history page reads the guard through this."""
    invoices = invoices or {}
    reported = sorted(series)
    out: dict[dt.date, dict[str, Baseline]] = {}
    for day in days:
        trailing = [d for d in reported if d < day][-settings.anomaly_trailing_days:]
        rated = [d for d in trailing if invoices.get(d, 0) > 0]
        if len(rated) < settings.anomaly_min_days or day not in invoices:
            continue
        usual = {code: rate * invoices[day]
                 for code, rate in median_rates([DayVolume(series[d], invoices[d]) for d in rated]).items()}
        out[day] = {code: Baseline(u, threshold(u, settings.anomaly_factor, settings.anomaly_floor))
                    for code, u in usual.items()}
    return out
