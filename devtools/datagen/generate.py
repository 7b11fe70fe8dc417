"""``generate()``: build a data set in memory (``build_world``) and load it into the ``billing`` tables.

The schema is the product's own (``billing_digest.sql.apply_schema``), and so is the window of a digest day
(``billing_digest.window.window_for_date``).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

import psycopg

from billing_digest.sql import apply_schema
from billing_digest.window import TIMEZONE
from devtools.datagen.attempts import generate_attempts, pick_outage_entities
from devtools.datagen.catalogue import name_pools
from devtools.datagen.expected import expected_results
from devtools.datagen.invoices import generate_invoices, history_day_count
from devtools.datagen.load import TABLES, bulk_load, write_tables
from devtools.datagen.master_data import (
    generate_access,
    generate_customers_and_contracts,
    generate_entities,
    generate_preferences,
    generate_users,
)
from devtools.datagen.scales import Scale, resolve_scale
from devtools.datagen.world import World, digest_calendar

log = logging.getLogger(__name__)


def build_world(scale: Scale, seed: int, digest_date: dt.date, tz: str = TIMEZONE) -> World:
    """Generate every table of the data set in memory (no database)."""
    started = time.perf_counter()
    n_history_days = history_day_count(scale)
    calendar = digest_calendar(digest_date, tz, n_history_days + 1)
    pools = name_pools(seed)
    entities = generate_entities(scale, seed, pools, calendar)
    users = generate_users(scale, seed, pools, entities, calendar)
    access = generate_access(scale, seed, entities, users, calendar)
    preferences = generate_preferences(seed, users, access, calendar)
    customers, contracts = generate_customers_and_contracts(scale, seed, pools, entities)
    invoices = generate_invoices(scale, seed, entities, contracts, calendar, n_history_days)
    log.info("generated master data and %d invoices in %.1fs", invoices.n, time.perf_counter() - started)
    started = time.perf_counter()
    outage_entities = pick_outage_entities(seed, entities.n, scale.outage_share)
    days = generate_attempts(scale, seed, invoices, contracts, calendar, outage_entities)
    world = World(calendar, entities, users, access, preferences, customers, contracts, invoices, days, outage_entities)
    log.info("generated %d attempts in %.1fs", len(world.attempts), time.perf_counter() - started)
    return world


def load_world(conn: psycopg.Connection[Any], world: World, seed: int) -> dict[str, int]:
    """Apply the schema, replace the billing tables' rows with the world's, ANALYZE; returns row counts.

    One transaction (a savepoint if the caller has one open, and the caller then commits); an idle
    connection that is not in autocommit is committed."""
    was_idle = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    with conn.transaction(), conn.cursor() as cur:
        apply_schema(conn)  # its own transaction() nests as a savepoint; its lock lasts until our commit
        with bulk_load(conn, cur):
            counts = write_tables(cur, world, seed)
    started = time.perf_counter()
    for table in TABLES:
        conn.execute(f"ANALYZE billing.{table}")  # type: ignore[arg-type]
    if was_idle and not conn.autocommit:
        conn.commit()
    log.info("analyzed in %.1fs", time.perf_counter() - started)
    return counts


def generate(
    conn: psycopg.Connection[Any],
    *,
    scale: Scale | str,
    digest_date: dt.date,
    seed: int = 42,
    tz: str = TIMEZONE,
) -> dict[str, int]:
    """Load a synthetic billing data set around ``digest_date`` (the day whose window is reported).

    Applies the DDL, empties the billing tables and loads them with COPY in one transaction (a savepoint
    if the caller has one open; the caller then commits), then ANALYZEs them. Same seed + scale + date
    (+ same numpy/Faker versions) give identical data.

    Returns the row count of every loaded table, plus what the digest of ``digest_date`` must find (all
    counted over the window of ``digest_date`` in ``tz``, ``window_for_date``):

    * ``expected_failed_steps``: (invoice, step) pairs with a failed/rejected attempt in the window and no
      later success before the window end (overdue notices of old invoices and yesterday's failures retried
      in the window included); ``expected_failed_multi_attempt`` of them failed at several distinct times;
    * ``expected_missing_steps``: (invoice, step) pairs of invoices billed in the window whose contract
      requires the step (nfse, boleto, charge_email) and that have no attempt at all;
    * ``expected_errors``, ``expected_problem_invoices``, ``expected_error_entities``,
      ``expected_max_errors_per_entity``; ``expected_digest_entities`` (error entities that are active and
      not deleted); ``expected_deliveries``: (entity, user) pairs of those entities whose user has unrevoked
      access, is active, has an e-mail and has the ``billing_errors`` preference enabled;
    * noise that must not be reported: ``retried_then_succeeded_steps``, ``pending_then_succeeded_steps``,
      ``duplicate_attempt_rows`` (exact copies of failed attempts, to be counted once);
    * the outage day (``Scale.outage_share``): ``outage_entities`` hit, ``outage_invoices`` whose boleto
      attempts all failed with BANK-503 (0 and 0 on a normal day).
    """
    spec = resolve_scale(scale)
    if seed < 0:
        raise ValueError("seed must be >= 0")
    started = time.perf_counter()
    world = build_world(spec, seed, digest_date, tz)
    counts = load_world(conn, world, seed)
    counts.update(expected_results(world))
    counts["history_invoices"] = int((world.invoices.days_before > 0).sum())
    counts["day_invoices"] = int((world.invoices.days_before == 0).sum())
    counts["window_attempts"] = len(world.digest_day.attempts)
    counts["elapsed_ms"] = round((time.perf_counter() - started) * 1000)
    return counts
