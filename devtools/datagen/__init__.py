"""Synthetic data for the billing source schema (``billing.*``), for tests, demos and benchmarks.

Not part of the product (it is not shipped to the workers). ``generate()`` applies the product's schema
(``billing_digest.sql.apply_schema``), empties the billing tables (not ``notification_kinds``) and loads a
deterministic, realistic data set around one digest day:

* the digest day ``digest_date`` covers the product's window of that day (``window_for_date``, in ``tz``);
* invoices are billed on the digest day and on about ``history_invoices / day_invoices`` days before it;
* ``step_attempts`` holds the attempts of the last ``history_days`` days (the digest day included), as the
  product keeps 7 days of attempts; older invoices have none;
* about ``error_rate`` of every day's invoices carry a planted problem (a failed/rejected step with no later
  success, or a required step that never happened), concentrated on a few entities ("incidents": the city
  hall is down, the bank agreement is misconfigured...) plus sporadic errors on a small share of entities;
* noise the digest must *not* report: failures retried successfully, ``pending`` attempts that later
  succeeded, failures outside the window (history days);
* optionally an outage day (scale XL, or any ``Scale`` with ``outage_share``): one bank's API fails every
  boleto of a share of all entities on the digest day.

Everything is built column-wise with numpy and streamed with ``COPY ... FROM STDIN (FORMAT BINARY)``. Same
seed + scale + date (+ same numpy/Faker versions) give identical data.

Modules: ``catalogue`` (vocabulary, error kinds, names, documents, amounts), ``master_data``, ``invoices``
and ``attempts`` (the tables), ``expected`` (what the digest must find), ``binary_copy`` (the COPY BINARY
encoder), ``load`` (the fast load), ``generate`` (the entry point), ``__main__`` (the CLI:
``python -m devtools.datagen --dsn DSN --scale S --date 2026-11-28 [--seed 42]``).
"""

from devtools.datagen.catalogue import ERRORS, INCIDENTS, KINDS, OUTAGE_ERROR, STATUSES, STEPS, ErrorKind
from devtools.datagen.generate import build_world, generate
from devtools.datagen.load import TABLES
from devtools.datagen.scales import SCALES, Scale

__all__ = [
    "ERRORS",
    "INCIDENTS",
    "KINDS",
    "OUTAGE_ERROR",
    "SCALES",
    "STATUSES",
    "STEPS",
    "TABLES",
    "ErrorKind",
    "Scale",
    "build_world",
    "generate",
]
