"""Step 3, build: the day's digests (pure transforms), staged in PostgreSQL for delivery.

Reads the staged errors and the recipients (include/sql/build), builds one payload per company
(:mod:`billing_digest.payload`) and one ledger row per (company, user) in ``digest.deliveries``
(users who turned the alert off get a ``skipped``/``opted_out`` row, never an e-mail).
XCom carries only counts; payloads and ledger rows stay in the database.

A dry run (``dry_run=True``) builds and counts the same digests but writes nothing: no payload, no
ledger row (a dry run changes no ledger row; nothing is planned or delivered after it).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pandas as pd
import psycopg

from billing_digest import NOTIFICATION_KIND, assemble, batching, guides, sql, transform
from billing_digest.delivery.ledger import SENDABLE_STATES
from billing_digest.handoffs import BuiltDay
from billing_digest.payload import EntityDigest
from billing_digest.settings import Settings
from billing_digest.window import Window

log = logging.getLogger(__name__)
RECIPIENT_COLUMNS = ["entity_id", "user_id", "user_name", "email"]


def read_frame(conn: psycopg.Connection, name: str, params: dict[str, Any]) -> pd.DataFrame:
    """Run ``include/sql/<name>.sql`` and return its rows as a DataFrame."""
    with conn.cursor() as cur:
        cur.execute(sql.load(name), params)
        columns = [c.name for c in cur.description or []]
        return pd.DataFrame(cur.fetchall(), columns=columns)


def day_errors(conn: psycopg.Connection, window: Window) -> pd.DataFrame:
    """The errors ``extract`` staged for the window's day."""
    return read_frame(conn, "build/day_errors", {"digest_date": window.digest_date})


def recipients(conn: psycopg.Connection, entity_ids: list[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """For these companies, now: (who may and wants to know, who may but turned the alert off);
    one row per company and user, columns ``RECIPIENT_COLUMNS``."""
    people = read_frame(conn, "build/recipients", {"entity_ids": entity_ids, "kind": NOTIFICATION_KIND})
    if people.empty:
        return pd.DataFrame(columns=RECIPIENT_COLUMNS), pd.DataFrame(columns=RECIPIENT_COLUMNS)
    opted_in = people.pop("opted_in").astype(bool)
    return people[opted_in].reset_index(drop=True), people[~opted_in].reset_index(drop=True)


def with_opted_out(people: pd.DataFrame, declined: pd.DataFrame) -> pd.DataFrame:
    """``people`` plus ``declined`` marked ``skip_reason = opted_out`` (ledger rows, never e-mails).

    Cleaned apart from the recipients: an opted-out user sharing an address with a recipient
    must not make the recipient a duplicate, and their addresses are not today's bad input.
    """
    if declined.empty:
        return people
    declined = transform.clean_recipients(declined, transform.Problems())
    declined["skip_reason"] = "opted_out"
    return pd.concat([people, declined], ignore_index=True)


def catalogue(problems: transform.Problems) -> guides.Catalogue:
    """The catalogue of known causes; a broken one (a bad edit that skipped CI) costs the day its
    guides, not its e-mails: logged, and counted as bad input ``cause_catalogue_invalid``."""
    try:
        return guides.load()
    except guides.CatalogueError as exc:
        log.error("catalogue of known causes unusable, digests go without guides: %s", exc)
        problems.add("cause_catalogue_invalid", [str(exc)])
        return guides.EMPTY


def build_and_stage(conn: psycopg.Connection, window: Window, settings: Settings, dry_run: bool = False) -> BuiltDay:
    """Errors -> per-entity payloads -> recipients -> ledger rows; returns counts and problems.
    ``dry_run``: the same counts, nothing written."""
    problems = transform.Problems()
    errors = transform.prepare_errors(day_errors(conn, window), problems)
    coverage = guides.Coverage()
    payloads = assemble.build_entity_digests(errors, window.digest_date, settings.max_items_per_topic,
                                              settings.max_invoices_per_cause, catalogue(problems), coverage)
    wanting, declined = recipients(conn, sorted(payloads))
    people = transform.clean_recipients(wanting, problems)
    no_recipient = sorted(set(payloads) - set(people["entity_id"].astype("int64")))
    people = with_opted_out(people, declined)
    people["batch"] = batching.assign_batches(people, settings.max_batches, settings.min_batch_size,
                                               rank=batching.worst_first(errors))
    if not dry_run:
        _stage(conn, window, payloads, people)
    for reason, examples in problems.examples.items():
        log.warning("bad input %s: %d row(s), e.g. %s", reason, problems.counts[reason], ", ".join(examples))
    log.info("guides: %s of the errors had one; top causes without: %s",
             guides.share_text(coverage.errors, coverage.with_guide),
             guides.unguided_text(u.as_dict() for u in coverage.top_unguided()) or "none")
    return BuiltDay(
        digest_date=window.digest_date,
        errors=int(len(errors)),
        errors_by_topic=transform.topic_counts(errors),
        entities_with_errors=len(payloads),
        entities_without_recipient=len(no_recipient),
        digests=int(people["skip_reason"].isna().sum()),
        problems=problems.as_dict(),
        errors_with_guide=coverage.with_guide,
        unguided_causes=tuple(u.as_dict() for u in coverage.top_unguided()),
    )


def _stage(conn: psycopg.Connection, window: Window, payloads: dict[int, EntityDigest],
           people: pd.DataFrame) -> None:
    """Payloads and ledger rows of the day, in one transaction (COPY into temp tables, then upserts)."""
    with conn.transaction():
        conn.execute(sql.load("build/create_staging"))
        with conn.cursor() as cur:
            with cur.copy("COPY _entity_digests (entity_id, error_count, payload) FROM STDIN") as copy:
                for entity_id, payload in payloads.items():
                    # jsonb keeps no formatting: compact text is less to send and parse.
                    copy.write_row((entity_id, payload["total"],
                                    json.dumps(payload, ensure_ascii=False, separators=(",", ":"))))
            with cur.copy("COPY _deliveries (entity_id, user_id, recipient_name, email, batch, skip_reason)"
                          " FROM STDIN") as copy:
                columns = [people[c].tolist() for c in ("entity_id", "user_id", "user_name", "email", "batch",
                                                         "skip_reason")]
                for entity_id, user_id, name, email, batch, skip in zip(*columns, strict=True):
                    copy.write_row((int(entity_id), int(user_id), name, None if pd.isna(email) else email,
                                    int(batch), None if pd.isna(skip) else skip))
        for name in ("upsert_entity_digests", "delete_stale_entity_digests", "upsert_deliveries",
                     "skip_stale_deliveries"):
            conn.execute(sql.load(f"build/{name}"), {"digest_date": window.digest_date,
                                                     "sendable_states": list(SENDABLE_STATES)})
