"""Step 2, quality: can the day's data support a digest? If not, the day is held: the run fails
before anything is sent, and the message says why and what to do.

Three guards, each a pure verdict over a few counts:

- coverage (:mod:`billing_digest.coverage`): the attempt history covers the window;
- volume (:mod:`billing_digest.volume`): no topic is wildly off its trailing days (the run
  parameter ``accept_anomaly`` sends anyway, and the summary records it);
- systemic (:func:`assess`): not absurdly many errors, most of them routable to a company.

A few bad rows are not a reason to hold: the transform counts and reports them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import psycopg

from billing_digest import coverage, holds, sql, volume
from billing_digest.handoffs import Handoff
from billing_digest.settings import Settings
from billing_digest.window import Window


@dataclasses.dataclass(frozen=True)
class Problem:
    """One reason a day is held: which guard found it, and what to tell the data team."""

    guard: str  # "coverage" | "volume" | "systemic"
    text: str


class DataQualityError(RuntimeError):
    """The day's data cannot support a digest: nothing is sent, ``problems`` say why (one each)."""

    def __init__(self, digest_date: dt.date, problems: tuple[Problem, ...]):
        self.digest_date, self.problems = digest_date, tuple(problems)
        super().__init__(f"the digest of {digest_date} is held, nothing was sent: "
                         + " | ".join(p.text for p in self.problems))

    def __reduce__(self) -> tuple[type[DataQualityError], tuple[dt.date, tuple[Problem, ...]]]:
        return type(self), (self.digest_date, self.problems)  # survives pickling with its problems


@dataclasses.dataclass(frozen=True)
class QualityReport(Handoff):
    staged: int
    without_entity: int
    without_link: int
    failures: tuple[str, ...] = ()


def assess(digest_date: dt.date, staged: int, without_entity: int, without_link: int, max_errors: int,
           max_unroutable_share: float = 0.5) -> QualityReport:
    """The verdict on the day's counts (pure)."""
    failures = []
    if staged > max_errors:
        failures.append(f"{staged} errors staged for {digest_date}, above the sane bound of {max_errors} "
                        "(setting max_errors_per_day): is the extraction window right?")
    if staged and without_entity / staged > max_unroutable_share:
        failures.append(f"{without_entity} of {staged} errors reference unknown invoices "
                        "(no entity to route them to): is the invoices table complete?")
    return QualityReport(staged, without_entity, without_link, tuple(failures))


@dataclasses.dataclass(frozen=True)
class DayCheck(Handoff):
    """``check_quality`` -> ``summarize``: what the guards saw, and the anomalies accepted on purpose."""

    digest_date: dt.date
    staged: int
    first_attempt: dt.datetime | None
    last_attempt: dt.datetime | None
    window_invoices: int
    silent_invoices: int
    errors_by_topic: dict[str, int]
    trailing_median: dict[str, float]
    trailing_days: int
    volume_note: str
    accepted_anomaly: tuple[str, ...] = ()


def check_day(conn: psycopg.Connection, window: Window, settings: Settings,
              accept_anomaly: bool = False) -> DayCheck:
    """Every guard on the staged day; raises :class:`DataQualityError` naming each problem found."""
    cov = coverage.measure(conn, window, max_silent_share=settings.max_silent_invoice_share)
    vol = volume.measure(conn, window.digest_date, trailing_days=settings.anomaly_trailing_days,
                         factor=settings.anomaly_factor, floor=settings.anomaly_floor,
                         min_days=settings.anomaly_min_days, min_companies=settings.anomaly_min_companies)
    row = conn.execute(sql.load("quality/counts"), {"digest_date": window.digest_date}).fetchone()
    assert row is not None
    staged, without_entity, without_link = (int(v) for v in row)
    systemic = assess(window.digest_date, staged, without_entity, without_link, settings.max_errors_per_day)
    problems = [*(Problem("coverage", p) for p in cov.problems), *(Problem("systemic", p) for p in systemic.failures)]
    if vol.anomalies and not accept_anomaly:
        problems += [Problem("volume", f"volume anomaly: {a}. If the day really is this bad (an outage), run it "
                             "again with the parameter accept_anomaly=true to send anyway") for a in vol.anomalies]
    if problems:
        holds.record(conn, window.digest_date, [p.text for p in problems])  # the history page and the preview
        raise DataQualityError(window.digest_date, tuple(problems))
    return DayCheck(window.digest_date, staged, cov.first_attempt, cov.last_attempt, cov.window_invoices,
                    cov.silent_invoices, vol.today, vol.median, vol.trailing_days, vol.note,
                    vol.anomalies if accept_anomaly else ())
