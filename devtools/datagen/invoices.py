"""Generation of the invoices: ``day_invoices`` on the digest day and ``history_invoices`` spread over the
days before it (fewer at weekends), billed automatically at each entity's billing hour or by hand during
the day. Ids grow with ``billed_at``; the digest day's invoices are the last rows.
"""

from __future__ import annotations

import numpy as np

from devtools.datagen.binary_copy import PG_EPOCH_DATE
from devtools.datagen.catalogue import invoice_amounts
from devtools.datagen.sampling import HOUR, MINUTE, rank_within_groups, rng_for, sequence_ids
from devtools.datagen.scales import Scale
from devtools.datagen.world import Calendar, Contracts, Entities, Invoices

_WEEKDAY_WEIGHT = np.array([1.15, 1.1, 1.1, 1.1, 1.15, 0.45, 0.25])  # Monday..Sunday


def history_day_count(scale: Scale) -> int:
    """How many days before the digest day have invoices (at least the days of kept attempts)."""
    return max(scale.history_days, round(scale.history_invoices / max(scale.day_invoices, 1)))


def _invoices_per_day(rng: np.random.Generator, scale: Scale, calendar: Calendar, n_history_days: int) -> np.ndarray:
    """Invoice count per day offset: the digest day's, then the history spread by weekday."""
    weights = np.array([_WEEKDAY_WEIGHT[calendar.date[k].weekday()] for k in range(1, n_history_days + 1)])
    history = rng.multinomial(scale.history_invoices, weights / weights.sum())
    return np.concatenate(([scale.day_invoices], history))


def _bill_one_day(
    rng: np.random.Generator, days_before: int, n: int, contracts: Contracts, run_at: np.ndarray, calendar: Calendar
) -> dict[str, np.ndarray]:
    """The invoices of one day in billed_at order: contract, manual or not, without contract, billed_at."""
    contract = rng.integers(0, contracts.n, n)
    no_contract = rng.random(n) < 0.015
    manual = no_contract | (rng.random(n) < 0.19)
    automatic_delay = np.minimum(rng.exponential(20 * MINUTE, n), 3 * HOUR).astype(np.int64)
    automatic_offset = run_at[contracts.entity[contract]] + automatic_delay
    manual_offset = rng.integers(90 * MINUTE, 13 * HOUR, n)
    jitter = rng.integers(0, 1_000_000, n)
    billed_at = calendar.start[days_before] + np.where(manual, manual_offset, automatic_offset) + jitter
    order = np.argsort(billed_at, kind="stable")
    if days_before == 0 and n:
        billed_at[order[0]] = calendar.start[0]  # one invoice exactly at the window start (inclusive bound)
    columns = {
        "days_before": np.full(n, days_before),
        "contract": contract,
        "manual": manual,
        "no_contract": no_contract,
        "billed_at": billed_at,
    }
    return {name: values[order] for name, values in columns.items()}


def generate_invoices(
    scale: Scale, seed: int, entities: Entities, contracts: Contracts, calendar: Calendar, n_history_days: int
) -> Invoices:
    rng = rng_for(seed, "invoices")
    per_day = _invoices_per_day(rng, scale, calendar, n_history_days)
    # Each entity runs its automatic billing at a fixed hour (07:00..11:00 local).
    run_at = (30 + 60 * rng.integers(0, 5, entities.n)) * MINUTE
    days = [
        _bill_one_day(rng, days_before, int(per_day[days_before]), contracts, run_at, calendar)
        for days_before in range(n_history_days, -1, -1)  # oldest first, so ids grow with billed_at
    ]
    column = {name: np.concatenate([day[name] for day in days]) for name in days[0]}
    days_before, contract, no_contract = column["days_before"], column["contract"], column["no_contract"]
    n = len(days_before)
    entity = contracts.entity[contract]
    amount_cents = invoice_amounts(rng, contracts.amount_cents[contract], no_contract)
    day_offsets = range(n_history_days + 1)
    billing_date = np.array([(calendar.date[k] - PG_EPOCH_DATE).days for k in day_offsets], np.int64)
    year = np.array([calendar.date[k].year for k in day_offsets], np.int64)
    number = rank_within_groups(entity) + rng.integers(1, 3000, entities.n)[entity]
    return Invoices(
        n=n,
        id=sequence_ids(rng, n, 100_000, 2),
        days_before=days_before,
        entity=entity,
        contract=np.where(no_contract, -1, contract),
        customer=contracts.customer[contract],
        manual=column["manual"],
        amount_cents=amount_cents,
        billing_date=billing_date[days_before],
        billed_at=column["billed_at"],
        year=year[days_before],
        number=number,
    )
