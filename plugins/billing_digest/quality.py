"""Step 2, quality: checks on the staged errors, before anything is sent.

They fail the run (loudly, with the reasons) only on systemic problems; a few bad rows
are counted and reported by the transform instead.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import psycopg

from billing_digest import sql
from billing_digest.handoffs import Handoff


class DataQualityError(RuntimeError):
    """The day's data cannot support a digest: nothing is sent, the message says why."""


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


def check(conn: psycopg.Connection, digest_date: dt.date, max_errors: int,
          max_unroutable_share: float = 0.5) -> QualityReport:
    """Counts of the staged day (include/sql/quality/counts.sql), then :func:`assess`; raises on failure."""
    row = conn.execute(sql.load("quality/counts"), {"digest_date": digest_date}).fetchone()
    assert row is not None
    staged, without_entity, without_link = (int(v) for v in row)
    report = assess(digest_date, staged, without_entity, without_link, max_errors, max_unroutable_share)
    if report.failures:
        raise DataQualityError("data-quality check failed: " + " | ".join(report.failures))
    return report
