"""Data-quality checks on the staged errors, before anything is sent.

They fail the run (loudly, with the reasons) only on systemic problems; a few bad rows
are counted and reported by the transform instead.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import psycopg

from billing_digest import sql


class DataQualityError(RuntimeError):
    pass


@dataclass(frozen=True)
class QualityReport:
    staged: int
    without_entity: int
    without_link: int
    failures: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {"staged": self.staged, "without_entity": self.without_entity,
                "without_link": self.without_link, "failures": list(self.failures)}


def check(conn: psycopg.Connection, digest_date: dt.date, max_errors: int,
          max_unroutable_share: float = 0.5) -> QualityReport:
    row = conn.execute(sql.load("extract/quality_counts"), {"digest_date": digest_date}).fetchone()
    assert row is not None
    staged, without_entity, without_link = (int(v) for v in row)
    failures = []
    if staged > max_errors:
        failures.append(f"{staged} errors staged for {digest_date}, above the sane bound of {max_errors} "
                        "(setting max_errors_per_day): is the extraction window right?")
    if staged and without_entity / staged > max_unroutable_share:
        failures.append(f"{without_entity} of {staged} errors reference unknown invoices "
                        "(no entity to route them to): is the invoices table complete?")
    report = QualityReport(staged, without_entity, without_link, tuple(failures))
    if failures:
        raise DataQualityError("data-quality check failed: " + " | ".join(failures))
    return report
