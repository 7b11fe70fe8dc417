"""The volume guard over a generated month with billing waves: which days it holds.

``python -m devtools.volume_month`` prints, for two generated months, each day's invoices, errors per
topic, and the verdict of the rate guard (``billing_digest.volume.assess``, with the default settings)
beside the verdict of the old count guard (errors against the median *count*). Days are judged in order,
against their trailing *reported* days, as the DAG does: a held day is not a baseline.

The month: about 800 invoices on a weekday, a third of that at weekends, twice on Mondays, and five
times on the billing waves (the 1st, 5th and 10th); errors per topic are binomial at a steady rate
(2% NFS-e, 3% boleto, 1% notification),
each invoice billed by one of 600 companies. ``INCIDENTS`` are days whose boleto rate is five times the
usual (a bank down), one of them on a wave day. tests/test_volume.py checks the verdicts.

``python -m devtools.volume_month --demo [PGDATA]`` judges every day of the demo's own data instead, in
order, with the DAG's checks on a fresh embedded PostgreSQL (a minute or two).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import statistics
from pathlib import Path

import numpy as np

from billing_digest.settings import Settings
from billing_digest.topics import TOPICS
from billing_digest.volume import DayVolume, assess

START = dt.date(2026, 9, 1)
DAYS = 61
RATES = {"nfse": 0.02, "boleto": 0.03, "notification": 0.01}
WAVE_DAYS = (1, 5, 10)
COMPANIES = 600
INCIDENTS = (dt.date(2026, 10, 10), dt.date(2026, 10, 21))  # a wave day and an ordinary Wednesday


@dataclasses.dataclass(frozen=True)
class Verdict:
    day: dt.date
    volume: DayVolume
    held_by_rate: bool
    held_by_count: bool


def invoices_on(day: dt.date, rng: np.random.Generator) -> int:
    base = 800.0 * (0.3 if day.weekday() >= 5 else 1.0) * (2.0 if day.weekday() == 0 else 1.0)
    base *= 5.0 if day.day in WAVE_DAYS else 1.0
    return int(base * rng.uniform(0.85, 1.15))


def month(seed: int = 7) -> list[tuple[dt.date, DayVolume]]:
    rng = np.random.default_rng(seed)
    days = []
    for k in range(DAYS):
        day = START + dt.timedelta(days=k)
        n = invoices_on(day, rng)
        company = rng.integers(0, COMPANIES, n)  # who billed each invoice
        errors, companies = {}, {}
        for code, rate in RATES.items():
            failed = rng.random(n) < rate * (5 if day in INCIDENTS and code == "boleto" else 1)
            errors[code], companies[code] = int(failed.sum()), len(np.unique(company[failed]))
        days.append((day, DayVolume(errors, n, companies, len(np.unique(company)))))
    return days


def held_by_count(today: DayVolume, trailing: list[DayVolume], factor: float, floor: int, min_days: int) -> bool:
    """The guard before issue 18: errors against the median error count of the trailing days."""
    if len(trailing) < min_days:
        return False
    for topic in TOPICS:
        median = statistics.median(d.errors.get(topic.code, 0) for d in trailing)
        n = today.errors.get(topic.code, 0)
        if n >= factor * median and n - median >= floor:
            return True
    return False


def judge(days: list[tuple[dt.date, DayVolume]], settings: Settings | None = None) -> list[Verdict]:
    s = settings or Settings()
    reported_rate: list[DayVolume] = []
    reported_count: list[DayVolume] = []
    verdicts = []
    for day, vol in days:
        trailing = reported_rate[::-1][: s.anomaly_trailing_days]
        by_rate = bool(assess(day, vol, trailing, factor=s.anomaly_factor, floor=s.anomaly_floor,
                              min_days=s.anomaly_min_days, min_companies=s.anomaly_min_companies).anomalies)
        by_count = held_by_count(vol, reported_count[::-1][: s.anomaly_trailing_days], s.anomaly_factor,
                                 s.anomaly_floor, s.anomaly_min_days)
        if not by_rate:
            reported_rate.append(vol)
        if not by_count:
            reported_count.append(vol)
        verdicts.append(Verdict(day, vol, by_rate, by_count))
    return verdicts


def demo_days(data_dir: Path, days: int = 30) -> None:
    """The demo's own data (``make demo``: scale S, seed 42, 27/11/2026), every day of it judged in order by
    the DAG's checks (``quality.check_day``: coverage, volume, systemic), as a backfill of those days would:
    a day that passes becomes a reported day (a baseline), a held day does not."""
    import json

    import psycopg

    from billing_digest import extract, quality, sql
    from billing_digest.window import window_for_date
    from devtools import embedded_pg
    from devtools.datagen import generate

    last = dt.date(2026, 11, 27)
    dsn = embedded_pg.ensure_database(embedded_pg.start(data_dir), "volume_demo", recreate=True)
    with psycopg.connect(dsn, autocommit=True) as conn:
        with conn.transaction():
            generate(conn, scale="S", digest_date=last, seed=42)
            sql.apply_schema(conn)
        for k in range(days - 1, -1, -1):
            window = window_for_date(last - dt.timedelta(days=k))
            extract.stage_errors(conn, window)
            try:
                check = quality.check_day(conn, window, Settings())
            except quality.DataQualityError as exc:
                guards = sorted({p.guard for p in exc.problems})
                print(f"{window.digest_date:%a %d/%m}  HELD by {', '.join(guards)}: {exc.problems[0].text[:110]}")
                continue
            conn.execute("INSERT INTO digest.day_reports (digest_date, run_id, summary) VALUES (%s, 'check', %s) "
                         "ON CONFLICT (digest_date) DO NOTHING", (window.digest_date, json.dumps({})))
            judged = check.volume_note or f"judged against {check.trailing_days} days"
            print(f"{window.digest_date:%a %d/%m}  sent  {check.window_invoices:>6} invoices, errors "
                  f"{check.errors_by_topic}; volume {judged}")


def main() -> None:
    import sys

    if sys.argv[1:2] == ["--demo"]:
        demo_days(Path(sys.argv[2]) if len(sys.argv) > 2 else Path("/tmp/billing-digest-volume-demo-pg"))
        return
    verdicts = judge(month())
    print(f"{'day':<16}{'invoices':>9}{'nfse':>6}{'boleto':>7}{'notif':>6}  rate guard  count guard")
    for v in verdicts:
        mark = " (wave)" if v.day.day in WAVE_DAYS else (" (INCIDENT)" if v.day in INCIDENTS else "")
        print(f"{v.day:%a %d/%m/%Y}{v.volume.invoices:>9}{v.volume.errors['nfse']:>6}{v.volume.errors['boleto']:>7}"
              f"{v.volume.errors['notification']:>6}  {'HELD' if v.held_by_rate else 'sent':<10}  "
              f"{'HELD' if v.held_by_count else 'sent'}{mark}")
    print(f"\nrate guard held: {[f'{v.day:%d/%m}' for v in verdicts if v.held_by_rate]}")
    print(f"count guard held: {[f'{v.day:%d/%m}' for v in verdicts if v.held_by_count]}")


if __name__ == "__main__":
    main()
