"""What the digest of the digest day must find in the generated data, computed from the generated arrays
(not from the database), so that tests can compare the product's (and their own SQL's) results with it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from devtools.datagen.catalogue import (
    KIND_BILLING_ERRORS,
    STATUS_FAILED,
    STATUS_PENDING,
    STATUS_REJECTED,
    STATUS_SUCCESS,
    STEP_OVERDUE_EMAIL,
)
from devtools.datagen.world import Attempts, World


def _failed_and_retried_steps(attempts: Attempts) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (invoice, step) of the window: those whose last failure has no later success (``failed``), and
    those fixed by a later success (``retried``); column ``failures`` counts distinct failed attempts."""
    is_failure = np.isin(attempts.status, (STATUS_FAILED, STATUS_REJECTED))
    frame = pd.DataFrame(
        {
            "invoice": attempts.invoice,
            "step": attempts.step,
            "failed_at": np.where(is_failure, attempts.at, -1),
            "succeeded_at": np.where(attempts.status == STATUS_SUCCESS, attempts.at, -1),
            "failures": is_failure.astype(np.int64),
        }
    )
    frame = frame.drop_duplicates()  # duplicated attempt rows (same step and time) count once
    steps = frame.groupby(["invoice", "step"]).agg(
        last_failure=("failed_at", "max"), last_success=("succeeded_at", "max"), failures=("failures", "sum")
    )
    has_failed = steps.last_failure >= 0
    failed = steps[has_failed & (steps.last_success < steps.last_failure)]
    retried = steps[has_failed & (steps.last_success > steps.last_failure)]
    return failed, retried


def _missing_steps(world: World) -> np.ndarray:
    """Invoices (with repeats) billed in the window whose contract requires a step (nfse, boleto,
    charge_email) that has no attempt at all."""
    invoices, attempts = world.invoices, world.digest_day.attempts
    rows = np.flatnonzero(invoices.days_before == 0)  # the last rows of the invoices
    contract = invoices.contract[rows]
    required = world.contracts.requires[np.maximum(contract, 0)] & (contract >= 0)[:, None]
    attempted = np.zeros((len(rows), 3), bool)
    if len(rows):
        of_the_day = (attempts.invoice >= rows[0]) & (attempts.step < 3)
        attempted[attempts.invoice[of_the_day] - rows[0], attempts.step[of_the_day]] = True
    missing_row = np.nonzero(required & ~attempted)[0]
    if len(missing_row) != world.digest_day.missing_steps:
        raise AssertionError("planted missing steps do not match the attempts")
    return rows[missing_row]


def _recipients(world: World, digest_entities: np.ndarray) -> int:
    """(entity, user) pairs of the digest entities whose user has unrevoked access, is active, has an e-mail
    and has the ``billing_errors`` preference on."""
    users, access, preferences = world.users, world.access, world.preferences
    wants_digest = np.zeros(users.n, bool)
    turned_on = (preferences.kind == KIND_BILLING_ERRORS) & preferences.enabled
    wants_digest[preferences.user[turned_on]] = True
    reachable = users.active & ~users.no_email & wants_digest
    return int((digest_entities[access.entity] & (access.revoked_at < 0) & reachable[access.user]).sum())


def expected_results(world: World) -> dict[str, int]:
    """The expected counts of the digest day (see ``generate``)."""
    day = world.digest_day
    failed, retried = _failed_and_retried_steps(day.attempts)
    failed_invoice = failed.index.get_level_values("invoice").to_numpy()
    failed_step = failed.index.get_level_values("step").to_numpy()
    missing_invoice = _missing_steps(world)
    error_invoice = np.concatenate([failed_invoice, missing_invoice])
    errors_per_entity = np.bincount(world.invoices.entity[error_invoice], minlength=world.entities.n)
    entities = world.entities
    digest_entities = (errors_per_entity > 0) & entities.active & (entities.deleted_at < 0)
    return {
        "expected_failed_steps": len(failed),
        "expected_missing_steps": len(missing_invoice),
        "expected_errors": len(failed) + len(missing_invoice),
        "expected_failed_overdue_emails": int((failed_step == STEP_OVERDUE_EMAIL).sum()),
        "expected_failed_multi_attempt": int((failed.failures > 1).sum()),
        "expected_failed_after_cross_day_retry": day.failed_after_cross_day_retry,
        "expected_problem_invoices": len(np.unique(error_invoice)),
        "expected_error_entities": int((errors_per_entity > 0).sum()),
        "expected_max_errors_per_entity": int(errors_per_entity.max(initial=0)),
        "expected_digest_entities": int(digest_entities.sum()),
        "expected_deliveries": _recipients(world, digest_entities),
        "retried_then_succeeded_steps": len(retried),
        "pending_then_succeeded_steps": int((day.attempts.status == STATUS_PENDING).sum()),
        "incident_entities": day.incidents,
        "duplicate_attempt_rows": day.duplicates,
        "outage_entities": int(world.outage_entities.sum()),
        "outage_invoices": day.outage_invoices,
    }
