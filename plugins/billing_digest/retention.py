"""Retention: our tables keep a bounded history instead of growing for ever (issue 17).

At day L's size a year is ~4 M staged errors, 0.4 M payloads and 2.7 M ledger rows in the product's
own database. The daily run's ``apply_retention`` task (after ``summarize``; a held or failed run
never gets there) deletes, table by table, the rows older than the table's setting, counted back
from the run's digest day, in bounded chunks (``retention_chunk_rows``), each its own short
transaction that skips rows another transaction holds: no long lock, nothing waits on it.

:data:`TABLES` is the list: one :class:`Retained` per table, its date column and the setting with
its days (0 = keep for ever). A new table of ours joins with one line here and one setting.
Tables the volume guard reads (``guards_baseline``) never lose a day of its baseline
(:func:`billing_digest.volume.baseline_start`), whatever their setting says.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time

import psycopg
from psycopg import sql as pgsql

from billing_digest import sql, volume
from billing_digest.handoffs import Handoff
from billing_digest.settings import Settings

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Retained:
    table: str                 # schema.table
    column: str                # its date (or timestamptz) column; the first column of an index
    setting: str               # the Settings field with its days
    guards_baseline: bool = False  # the volume guard reads it: never cut its trailing days


TABLES: tuple[Retained, ...] = (
    Retained("digest.errors", "digest_date", "retention_errors_days", guards_baseline=True),
    Retained("digest.entity_digests", "digest_date", "retention_entity_digests_days"),
    Retained("digest.deliveries", "digest_date", "retention_deliveries_days"),
    Retained("digest.day_reports", "digest_date", "retention_day_reports_days", guards_baseline=True),
    Retained("digest.day_holds", "digest_date", "retention_day_holds_days"),
    Retained("digest.unsubscribes", "at", "retention_unsubscribes_days"),
    Retained("digest.suppression_events", "at", "retention_suppression_events_days"),
)


@dataclasses.dataclass(frozen=True)
class Cut(Handoff):
    """What retention did to one table."""

    table: str
    cutoff: dt.date | None     # rows before this day were deleted (None: kept for ever)
    deleted: int = 0
    chunks: int = 0
    seconds: float = 0.0


def cutoff(digest_date: dt.date, days: int, baseline: dt.date | None) -> dt.date | None:
    """The first day a table keeps (pure): ``days`` back from ``digest_date``, never after the volume
    guard's ``baseline`` start; None when ``days`` is 0 (keep for ever)."""
    if days <= 0:
        return None
    first_kept = digest_date - dt.timedelta(days=days)
    return min(first_kept, baseline) if baseline is not None else first_kept


def plan(digest_date: dt.date, settings: Settings, baseline: dt.date | None,
         tables: tuple[Retained, ...] = TABLES) -> list[tuple[Retained, dt.date | None]]:
    """Each table with its cutoff (pure). (Negative days, or chunks under one row, never get here: the
    settings refuse them, ``Field(ge=...)``.)"""
    return [(t, cutoff(digest_date, getattr(settings, t.setting), baseline if t.guards_baseline else None))
            for t in tables]


def delete_older(conn: psycopg.Connection, table: Retained, first_kept: dt.date, chunk_rows: int) -> Cut:
    """Delete ``table``'s rows before ``first_kept`` in chunks of ``chunk_rows``, committing each."""
    schema, name = table.table.split(".")
    statement = pgsql.SQL(sql.load("retention/delete_chunk")).format(
        table=pgsql.Identifier(schema, name), column=pgsql.Identifier(table.column))
    deleted = chunks = 0
    started = time.perf_counter()
    while True:
        n = conn.execute(statement, {"cutoff": first_kept, "chunk_rows": chunk_rows}).rowcount
        conn.commit()  # each chunk its own transaction: its row locks last one chunk
        deleted, chunks = deleted + n, chunks + 1
        if n < chunk_rows:
            break
    return Cut(table.table, first_kept, deleted, chunks, round(time.perf_counter() - started, 3))


def apply(conn: psycopg.Connection, digest_date: dt.date, settings: Settings,
          tables: tuple[Retained, ...] = TABLES) -> list[Cut]:
    """Retention for every table after a successful run of ``digest_date`` (``conn`` outside any
    transaction block: each chunk commits)."""
    baseline = volume.baseline_start(conn, digest_date, settings)
    conn.commit()  # no transaction left open around the chunks
    cuts = []
    for table, first_kept in plan(digest_date, settings, baseline, tables):
        cut = Cut(table.table, None) if first_kept is None else \
            delete_older(conn, table, first_kept, settings.retention_chunk_rows)
        log.info("retention %s: %s", table.table, f"{cut.deleted:,} rows before {first_kept} deleted in "
                 f"{cut.chunks} chunk(s), {cut.seconds:.2f}s" if first_kept else "kept for ever (0 days)")
        cuts.append(cut)
    return cuts
