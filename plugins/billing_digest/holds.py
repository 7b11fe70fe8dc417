"""Held days, remembered (issue 17): a guard that holds a day raises, so the run leaves no day
report; ``digest.day_holds`` keeps why, for the history page and the preview ("held, why, what to
do"), which would otherwise show only "no digest on this day"."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import psycopg

from billing_digest import sql

WHAT_TO_DO = ("Nothing was e-mailed for this day. Fix the cause, then run the day again (clear the run, or "
              "trigger with the parameter digest_date); a real outage that explains a volume anomaly is sent "
              "with the parameter accept_anomaly=true.")


@dataclasses.dataclass(frozen=True)
class Hold:
    digest_date: dt.date
    guard: str
    problems: tuple[str, ...]
    held_at: dt.datetime


def record(conn: psycopg.Connection, digest_date: dt.date, problems: list[str], guard: str = "quality") -> None:
    """Remember that ``guard`` held the day, and why; committed at once (the run is about to fail)."""
    conn.execute(sql.load("holds/record"),
                 {"digest_date": digest_date, "guard": guard, "problems": json.dumps(list(problems))})
    conn.commit()


def of_day(conn: psycopg.Connection, digest_date: dt.date) -> Hold | None:
    row = conn.execute(sql.load("holds/of_day"), {"digest_date": digest_date}).fetchone()
    return Hold(digest_date, row[0], tuple(row[1]), row[2]) if row else None
