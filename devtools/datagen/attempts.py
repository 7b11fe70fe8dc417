"""Generation of the step attempts of each kept day (``history_days``, the digest day last).

A day is first *planned*, one outcome per (invoice billed that day, step): runs fine, pending then fine,
fails then succeeds on a retry, fails without a later success, or never happens (a missing step). About
``error_rate`` of the invoices get a problem: most from a few "incidents" (one error hitting an entity's
invoices for a stretch of the day: the city hall is down, the bank agreement is misconfigured...), the rest
sporadic on a few size-weighted entities. The plan is then expanded into time-stamped attempts, step after
step, and the day gets its overdue notices of older invoices, the manual retries of yesterday's
failures, and a few failed attempts recorded twice.

On an outage day (``Scale.outage_share``), the digest day's boleto attempts of the outage entities'
invoices are then turned into failures of the bank's API (``BANK-503``), keeping their times.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from devtools.datagen.catalogue import (
    ERROR_STATUS,
    ERRORS,
    INCIDENTS,
    INVOICE_STEPS,
    OUTAGE_ERROR,
    STATUS_FAILED,
    STATUS_PENDING,
    STATUS_REJECTED,
    STATUS_SUCCESS,
    STEP_BOLETO,
    STEP_MARK_BILLED,
    STEP_NFSE,
    STEP_OVERDUE_EMAIL,
    failure_counts,
    pick_errors,
)
from devtools.datagen.sampling import (
    HOUR,
    MINUTE,
    group_starts,
    pick_columns,
    position_in_group,
    rng_for,
    weighted_order,
)
from devtools.datagen.scales import Scale
from devtools.datagen.world import Attempts, Calendar, Contracts, DayAttempts, Invoices, Unresolved

# The planned outcome of an (invoice, step).
PLAN_NONE, PLAN_OK, PLAN_PENDING_THEN_OK, PLAN_RETRY_THEN_OK, PLAN_FAIL, PLAN_MISSING = range(6)
# Which of the invoice steps (nfse, boleto, charge_email, mark_billed) problems and noise fall on.
_FAIL_STEP_WEIGHTS = (0.35, 0.25, 0.32, 0.08)
_MISSING_STEP_WEIGHTS = (0.4, 0.35, 0.25, 0.0)
_RETRY_STEP_WEIGHTS = (0.35, 0.25, 0.3, 0.1)
INCIDENT_SHARE = 0.6  # of the day's problems
MAX_INCIDENTS = 5  # a day
_NO_ATTEMPTS = Attempts(*(np.zeros(0, np.int64) for _ in range(5)))


@dataclass
class DayPlan:
    """The planned outcome of every (invoice billed on the day, invoice step)."""

    rows: np.ndarray  # invoice indices
    required: np.ndarray  # (n, 4) bool: the contract requires the step (never mark_billed)
    present: np.ndarray  # (n, 4) bool: the step runs
    outcome: np.ndarray  # (n, 4) PLAN_*
    error: np.ndarray  # (n, 4) index into ERRORS, -1 = none
    failures: np.ndarray  # (n, 4) failed attempts
    has_problem: np.ndarray  # (n,) bool
    incidents: int = 0

    @classmethod
    def all_fine(cls, invoices: Invoices, contracts: Contracts, rows: np.ndarray) -> DayPlan:
        """Every required step runs once and succeeds; invoices without a contract run every step."""
        n = len(rows)
        contract = invoices.contract[rows]
        no_contract = contract < 0
        required = np.zeros((n, INVOICE_STEPS), bool)
        required[:, :3] = contracts.requires[np.maximum(contract, 0)] & ~no_contract[:, None]
        present = required.copy()
        present[no_contract, :3] = True
        present[:, STEP_MARK_BILLED] = True
        outcome = np.where(present, PLAN_OK, PLAN_NONE).astype(np.int8)
        error = np.full((n, INVOICE_STEPS), -1, np.int64)
        failures = np.zeros((n, INVOICE_STEPS), np.int64)
        return cls(rows, required, present, outcome, error, failures, np.zeros(n, bool))

    def fail(self, rows: np.ndarray, steps: np.ndarray | int, error: np.ndarray | int, failures: np.ndarray) -> None:
        """Plan these (row, step) cells to fail ``failures`` times with ``error`` and never succeed."""
        self.outcome[rows, steps] = PLAN_FAIL
        self.error[rows, steps] = error
        self.failures[rows, steps] = failures

    def attempt_counts(self) -> np.ndarray:
        """(n, 4): how many attempts each (invoice, step) makes."""
        return np.select(
            [
                self.outcome == PLAN_OK,
                self.outcome == PLAN_PENDING_THEN_OK,
                self.outcome == PLAN_RETRY_THEN_OK,
                self.outcome == PLAN_FAIL,
            ],
            [1, 2, self.failures + 1, self.failures],
            0,
        ).astype(np.int64)


@dataclass
class _EntityGroups:
    """The day's invoice rows grouped by entity."""

    entity: np.ndarray  # per row
    order: np.ndarray  # rows sorted by entity (stable)
    ids: np.ndarray  # the distinct entities
    first: np.ndarray  # where each entity's rows start in ``order``
    size: np.ndarray  # rows per entity

    @classmethod
    def of(cls, entity: np.ndarray) -> _EntityGroups:
        order = np.argsort(entity, kind="stable")
        ids, first, size = np.unique(entity[order], return_index=True, return_counts=True)
        return cls(entity, order, ids, first, size)

    def rows_of(self, group: int) -> np.ndarray:
        return self.order[self.first[group] : self.first[group] + self.size[group]]


def _plant_incidents(rng: np.random.Generator, plan: DayPlan, groups: _EntityGroups, budget: int) -> int:
    """Incidents on entities drawn by squared size: an error on a contiguous stretch of an entity's
    invoices (rows are in billed_at order). Returns how many invoices they hit."""
    planted = 0
    for group in weighted_order(rng, groups.size.astype(np.float64) ** 2)[:50]:
        if planted >= budget - 1 or plan.incidents >= MAX_INCIDENTS:
            break
        error, max_attempts = INCIDENTS[int(rng.integers(len(INCIDENTS)))]
        step = ERRORS[error].step
        rows = groups.rows_of(group)
        rows = rows[plan.present[rows, step] & ~plan.has_problem[rows]]
        take = min(len(rows), budget - planted)
        if take < 2:
            continue
        if take < len(rows):
            start = int(rng.integers(0, len(rows) - take + 1))
            rows = rows[start : start + take]
        plan.fail(rows, step, error, rng.integers(1, max_attempts + 1, len(rows)))
        plan.has_problem[rows] = True
        planted += len(rows)
        plan.incidents += 1
    return planted


def _plant_missing_or_failed_step(rng: np.random.Generator, plan: DayPlan, rows: np.ndarray) -> None:
    """A quarter of the rows miss a required step (at least one row, so tiny days have one); the others
    get a failed step."""
    wants_missing = rng.random(len(rows)) < 0.25
    wants_missing[: 1 if len(rows) >= 2 else 0] = True
    free = plan.outcome[rows] == PLAN_OK
    missing_step = pick_columns(rng, plan.required[rows] & free, _MISSING_STEP_WEIGHTS)
    failed_step = pick_columns(rng, plan.present[rows] & free, _FAIL_STEP_WEIGHTS)
    is_missing = wants_missing & (missing_step >= 0)
    plan.outcome[rows[is_missing], missing_step[is_missing]] = PLAN_MISSING
    fails = ~is_missing & (failed_step >= 0)
    fail_rows, fail_steps = rows[fails], failed_step[fails]
    plan.fail(fail_rows, fail_steps, pick_errors(rng, fail_steps), failure_counts(rng, len(fail_rows)))


def _plant_second_failure(rng: np.random.Generator, plan: DayPlan, rows: np.ndarray) -> None:
    """A second failed step on about 10% of the rows."""
    rows = rows[rng.random(len(rows)) < 0.10]
    step = pick_columns(rng, plan.present[rows] & (plan.outcome[rows] == PLAN_OK), _FAIL_STEP_WEIGHTS)
    rows, step = rows[step >= 0], step[step >= 0]
    plan.fail(rows, step, pick_errors(rng, step), failure_counts(rng, len(rows)))


def _plant_sporadic(rng: np.random.Generator, plan: DayPlan, groups: _EntityGroups, count: int) -> None:
    """``count`` problem invoices on about count/3 size-weighted entities without an incident."""
    incident_entities = np.unique(groups.entity[plan.has_problem])
    candidates = np.flatnonzero(~np.isin(groups.ids, incident_entities))
    n_entities = max(1, min(len(candidates), round(count / 3)))
    by_size = weighted_order(rng, groups.size[candidates].astype(np.float64))
    chosen = groups.ids[candidates[by_size[:n_entities]]]
    eligible = np.flatnonzero(np.isin(groups.entity, chosen) & ~plan.has_problem)
    rows = np.sort(rng.choice(eligible, min(count, len(eligible)), replace=False))
    _plant_missing_or_failed_step(rng, plan, rows)
    plan.has_problem[rows] = True
    _plant_second_failure(rng, plan, rows)


def _plant_noise(rng: np.random.Generator, plan: DayPlan) -> None:
    """Noise the digest must not report: failures fixed by a retry, NFS-e pending then authorised."""
    n = len(plan.rows)
    rows = np.flatnonzero(rng.random(n) < 0.025)
    step = pick_columns(rng, plan.present[rows] & (plan.outcome[rows] == PLAN_OK), _RETRY_STEP_WEIGHTS)
    rows, step = rows[step >= 0], step[step >= 0]
    plan.outcome[rows, step] = PLAN_RETRY_THEN_OK
    plan.error[rows, step] = pick_errors(rng, step, transient_only=True)
    plan.failures[rows, step] = rng.choice([1, 2], len(rows), p=[0.8, 0.2])
    pending = (plan.outcome[:, STEP_NFSE] == PLAN_OK) & (rng.random(n) < 0.08)
    plan.outcome[pending, STEP_NFSE] = PLAN_PENDING_THEN_OK


def plan_day(
    rng: np.random.Generator, scale: Scale, invoices: Invoices, contracts: Contracts, rows: np.ndarray
) -> DayPlan:
    """The outcomes of the day's invoice steps: planted problems, then noise."""
    plan = DayPlan.all_fine(invoices, contracts, rows)
    target = round(scale.error_rate * len(rows))
    groups = _EntityGroups.of(invoices.entity[rows])
    planted = _plant_incidents(rng, plan, groups, round(INCIDENT_SHARE * target))
    if target - planted > 0:
        _plant_sporadic(rng, plan, groups, target - planted)
    _plant_noise(rng, plan)
    return plan


def _expand_step(
    rng: np.random.Generator, plan: DayPlan, step: int, counts: np.ndarray, start: np.ndarray
) -> tuple[Attempts, np.ndarray]:
    """The attempts of one step, from ``start`` per invoice, 30 s to 20 min apart; and when each invoice's
    last attempt of the step happened (its start if it made none)."""
    row = np.repeat(np.arange(len(counts)), counts)
    first = group_starts(counts)
    position = position_in_group(counts)
    gap = np.where(position == 0, 0, rng.integers(30_000_000, 20 * MINUTE, len(row)))
    elapsed = np.cumsum(gap)
    made_any = counts > 0
    elapsed_at_first = np.zeros(len(counts), np.int64)
    elapsed_at_first[made_any] = elapsed[first[made_any]]
    at = np.repeat(start, counts) + elapsed - np.repeat(elapsed_at_first, counts)
    outcome = plan.outcome[row, step]
    error = plan.error[row, step]
    is_last = position == counts[row] - 1
    failing = (outcome == PLAN_FAIL) | ((outcome == PLAN_RETRY_THEN_OK) & ~is_last)
    status = np.where(failing, ERROR_STATUS[np.maximum(error, 0)], STATUS_SUCCESS)
    status = np.where((outcome == PLAN_PENDING_THEN_OK) & (position == 0), STATUS_PENDING, status)
    attempts = Attempts(plan.rows[row], np.full(len(row), step), status, np.where(failing, error, -1), at)
    done = start.copy()
    done[made_any] = at[first[made_any] + counts[made_any] - 1]
    return attempts, done


def _expand_plan(rng: np.random.Generator, plan: DayPlan, billed_at: np.ndarray) -> list[Attempts]:
    """The attempts of the plan: the steps in order, each a few seconds to 2 minutes after the last."""
    counts = plan.attempt_counts()
    parts = []
    start = billed_at + rng.integers(2_000_000, 90_000_000, len(billed_at))
    for step in range(INVOICE_STEPS):
        attempts, done = _expand_step(rng, plan, step, counts[:, step], start)
        parts.append(attempts)
        start = done + rng.integers(1_000_000, 120_000_000, len(billed_at))
    return parts


def _overdue_candidates(days_before: int, invoices: Invoices, contracts: Contracts) -> np.ndarray:
    """Invoices billed 5 to 45 days before the day whose contract (if any) requires notifications."""
    # Invoices are sorted by days_before, descending.
    low = np.searchsorted(-invoices.days_before, -(days_before + 45), side="left")
    high = np.searchsorted(-invoices.days_before, -(days_before + 5), side="right")
    candidates = np.arange(low, high)
    if len(candidates):
        contract = invoices.contract[candidates]
        candidates = candidates[(contract < 0) | contracts.requires[np.maximum(contract, 0), 2]]
    return candidates


def _overdue_notices(
    rng: np.random.Generator, days_before: int, invoices: Invoices, contracts: Contracts, calendar: Calendar, n: int
) -> tuple[Attempts, Unresolved]:
    """Overdue notices for about 8% of the day's invoice count, sent in a morning batch (2% fail)."""
    candidates = _overdue_candidates(days_before, invoices, contracts)
    count = min(len(candidates), round(0.08 * max(n, 1)))
    if not count:
        return _NO_ATTEMPTS, Unresolved.none()
    notices = candidates[rng.choice(len(candidates), count, replace=False)]
    draw = rng.random(count)
    outcome = np.where(draw < 0.02, PLAN_FAIL, np.where(draw < 0.03, PLAN_RETRY_THEN_OK, PLAN_OK))
    failures = np.where(outcome == PLAN_FAIL, failure_counts(rng, count), rng.integers(1, 3, count))
    error = pick_errors(rng, np.full(count, STEP_OVERDUE_EMAIL))
    error = np.where(outcome == PLAN_RETRY_THEN_OK, pick_errors(rng, np.full(count, STEP_OVERDUE_EMAIL), True), error)
    attempt_counts = np.where(outcome == PLAN_OK, 1, np.where(outcome == PLAN_FAIL, failures, failures + 1))
    row = np.repeat(np.arange(count), attempt_counts)
    position = position_in_group(attempt_counts)
    batch_at = calendar.start[days_before] + 150 * MINUTE + rng.integers(0, 90 * MINUTE, count)
    at = np.repeat(batch_at, attempt_counts) + position * rng.integers(5 * MINUTE, 40 * MINUTE, len(row))
    is_last = position == attempt_counts[row] - 1
    failing = (outcome[row] == PLAN_FAIL) | ((outcome[row] == PLAN_RETRY_THEN_OK) & ~is_last)
    status = np.where(failing, ERROR_STATUS[error[row]], STATUS_SUCCESS)
    step = np.full(len(row), STEP_OVERDUE_EMAIL)
    attempts = Attempts(notices[row], step, status, np.where(failing, error[row], -1), at)
    failed = outcome == PLAN_FAIL
    return attempts, Unresolved(notices[failed], np.full(int(failed.sum()), STEP_OVERDUE_EMAIL), error[failed])


def _manual_retries(
    rng: np.random.Generator, days_before: int, calendar: Calendar, yesterday: Unresolved | None
) -> tuple[Attempts, int]:
    """Someone retries 15% of yesterday's failures by hand in the morning: half fail again.

    Returns the attempts and how many failed again."""
    if yesterday is None or not len(yesterday):
        return _NO_ATTEMPTS, 0
    picked = rng.random(len(yesterday)) < 0.15
    invoice, step, error = yesterday.invoice[picked], yesterday.step[picked], yesterday.error[picked]
    fails_again = rng.random(len(invoice)) < 0.5
    status = np.where(fails_again, ERROR_STATUS[error], STATUS_SUCCESS)
    at = calendar.start[days_before] + rng.integers(90 * MINUTE, 5 * HOUR, len(invoice))
    return Attempts(invoice, step, status, np.where(fails_again, error, -1), at), int(fails_again.sum())


def _record_some_failures_twice(rng: np.random.Generator, attempts: Attempts) -> tuple[Attempts, int]:
    """0.5% of the failed attempts are recorded twice (same row, new id), as a retried insert would.

    Returns all attempts in time order and the number of duplicates."""
    failing = np.flatnonzero(np.isin(attempts.status, (STATUS_FAILED, STATUS_REJECTED)))
    duplicated = failing[rng.random(len(failing)) < 0.005]
    return Attempts.concat([attempts, attempts.take(duplicated)]).sorted(), len(duplicated)


def _fail_boleto_for_outage(attempts: Attempts, invoices: Invoices, outage_entities: np.ndarray) -> int:
    """The bank's API is down all day for the outage entities: every boleto attempt of their invoices billed
    on the day fails with BANK-503 (times kept). Returns the number of invoices hit."""
    billed_today = invoices.days_before[attempts.invoice] == 0
    hit = (attempts.step == STEP_BOLETO) & billed_today & outage_entities[invoices.entity[attempts.invoice]]
    attempts.status[hit] = STATUS_FAILED
    attempts.error[hit] = OUTAGE_ERROR
    return len(np.unique(attempts.invoice[hit]))


def generate_day_attempts(
    scale: Scale,
    seed: int,
    days_before: int,
    invoices: Invoices,
    contracts: Contracts,
    calendar: Calendar,
    rows: np.ndarray,
    yesterday: Unresolved | None,
    outage_entities: np.ndarray | None = None,
) -> DayAttempts:
    """All attempts in the window of one day: its invoices' steps, overdue notices and manual retries."""
    rng = rng_for(seed, "attempts", days_before)
    plan = plan_day(rng, scale, invoices, contracts, rows)
    steps = _expand_plan(rng, plan, invoices.billed_at[rows])
    overdue, overdue_unresolved = _overdue_notices(rng, days_before, invoices, contracts, calendar, len(rows))
    retried, failed_again = _manual_retries(rng, days_before, calendar, yesterday)
    attempts, duplicates = _record_some_failures_twice(rng, Attempts.concat([*steps, overdue, retried]))
    window = (calendar.start[days_before], calendar.end[days_before])
    if len(attempts) and (attempts.at.min() < window[0] or attempts.at.max() >= window[1]):
        raise AssertionError(f"attempts of day {days_before} fall outside its window")
    outage_invoices = 0
    if outage_entities is not None:
        outage_invoices = _fail_boleto_for_outage(attempts, invoices, outage_entities)
    failed_row, failed_step = np.nonzero(plan.outcome == PLAN_FAIL)
    unresolved = Unresolved(rows[failed_row], failed_step, plan.error[failed_row, failed_step]) + overdue_unresolved
    missing = int((plan.outcome == PLAN_MISSING).sum())
    return DayAttempts(attempts, unresolved, missing, failed_again, plan.incidents, duplicates, outage_invoices)


def pick_outage_entities(seed: int, n_entities: int, share: float) -> np.ndarray:
    """A deterministic ``share`` of all entities (their own random stream: no other data moves)."""
    hit = np.zeros(n_entities, bool)
    if share > 0:
        hit[rng_for(seed, "outage").choice(n_entities, round(share * n_entities), replace=False)] = True
    return hit


def generate_attempts(
    scale: Scale,
    seed: int,
    invoices: Invoices,
    contracts: Contracts,
    calendar: Calendar,
    outage_entities: np.ndarray,
) -> list[DayAttempts]:
    """The attempts of the last ``history_days`` windows, oldest first (the digest day last)."""
    offsets = -np.arange(len(calendar.date))
    day_first = np.searchsorted(-invoices.days_before, offsets, side="left")
    day_end = np.searchsorted(-invoices.days_before, offsets, side="right")
    days: list[DayAttempts] = []
    yesterday = None
    for days_before in range(scale.history_days - 1, -1, -1):
        outage = outage_entities if days_before == 0 and outage_entities.any() else None
        rows = np.arange(day_first[days_before], day_end[days_before])
        day = generate_day_attempts(
            scale, seed, days_before, invoices, contracts, calendar, rows, yesterday, outage
        )
        yesterday = day.unresolved
        days.append(day)
    return days
