"""Build the day's digests (pure transforms) and stage them in PostgreSQL for delivery.

XCom carries only small descriptions of bounded batches; payloads stay in
``digest.entity_digests`` and the ledger rows in ``digest.deliveries``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

import pandas as pd
import psycopg

from billing_digest import extract, sql, transform
from billing_digest.settings import Settings
from billing_digest.window import Window

log = logging.getLogger(__name__)


def build_and_stage(conn: psycopg.Connection, window: Window, settings: Settings) -> dict[str, Any]:
    """Errors -> per-entity payloads -> recipients -> ledger rows; returns counts and problems."""
    problems = transform.Problems()
    errors = transform.prepare_errors(extract.day_errors(conn, window), problems)
    payloads = transform.build_entity_digests(errors, window.digest_date, settings.max_items_per_topic)
    people = extract.recipients(conn, sorted(payloads))
    if people.empty:
        people = pd.DataFrame(columns=["entity_id", "user_id", "user_name", "email"])
    people = transform.clean_recipients(people, problems)
    people["batch"] = transform.assign_batches(people, settings.max_batches, settings.min_batch_size)
    no_recipient = sorted(set(payloads) - set(people["entity_id"].astype("int64")))

    params = {"digest_date": window.digest_date}
    with conn.transaction():
        conn.execute(sql.load("ledger/create_staging"))
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
            conn.execute(sql.load(f"ledger/{name}"), params)

    result = {
        "digest_date": window.digest_date.isoformat(),
        "errors": int(len(errors)),
        "errors_by_topic": transform.topic_counts(errors),
        "entities_with_errors": len(payloads),
        "entities_without_recipient": len(no_recipient),
        "digests": int(people["skip_reason"].isna().sum()),
        "problems": problems.as_dict(),
    }
    for reason, examples in problems.examples.items():
        log.warning("bad input %s: %d row(s), e.g. %s", reason, problems.counts[reason], ", ".join(examples))
    return result


def plan_batches(conn: psycopg.Connection, digest_date: dt.date, resend: bool = False,
                 entity_ids: list[int] | None = None) -> list[dict[str, Any]]:
    """The batches that have something to send, labelled for the Airflow UI."""
    states = ["pending", "deferred"] + (["sent", "failed"] if resend else [])
    rows = conn.execute(sql.load("ledger/plan_batches"),
                        {"digest_date": digest_date, "states": states, "entity_ids": entity_ids}).fetchall()
    return [{"digest_date": digest_date.isoformat(), "batch": int(b), "digests": int(n),
             "label": f"batch {b}: {first[:30]} … {last[:30]} ({n} e-mails)" if first != last
             else f"batch {b}: {first[:60]} ({n} e-mails)"}
            for b, n, first, last in rows]
