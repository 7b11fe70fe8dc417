"""The generated data set in memory: one dataclass of numpy columns per table, and the calendar of windows.

Rows refer to each other by position (index into the other table's arrays), not by id; ids are only
looked up when the rows are written. Times are Unix microseconds, ``-1`` stands for NULL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from billing_digest.window import window_for_date
from devtools.datagen.binary_copy import Text
from devtools.datagen.sampling import unix_us


@dataclass
class Calendar:
    """Per day offset k (0 = digest day, 1 = the day before...): its window and its local date."""

    start: np.ndarray  # window start, Unix us
    end: np.ndarray  # window end, Unix us
    date: list[dt.date]


def digest_calendar(digest_date: dt.date, tz: str, n_days: int) -> Calendar:
    """The windows of the digest day and the ``n_days - 1`` days before it (the product's windows)."""
    starts, ends, dates = [], [], []
    for days_before in range(n_days):
        day = digest_date - dt.timedelta(days=days_before)
        window = window_for_date(day, tz)
        starts.append(unix_us(window.start))
        ends.append(unix_us(window.end))
        dates.append(day)
    return Calendar(np.array(starts, np.int64), np.array(ends, np.int64), dates)


@dataclass
class Entities:
    n: int
    id: np.ndarray
    weight: np.ndarray  # billing volume weight
    cnpj: np.ndarray
    active: np.ndarray
    deleted_at: np.ndarray  # -1 = NULL
    created_at: np.ndarray
    city: np.ndarray  # index into CITIES
    name: Text
    domain: Text


@dataclass
class Users:
    n: int
    id: np.ndarray
    home_entity: np.ndarray  # index into entities
    active: np.ndarray
    no_email: np.ndarray
    created_at: np.ndarray
    name: Text
    email: Text


@dataclass
class Access:
    user: np.ndarray
    entity: np.ndarray
    granted_at: np.ndarray
    revoked_at: np.ndarray  # -1 = NULL


@dataclass
class Preferences:
    user: np.ndarray
    kind: np.ndarray  # index into KINDS
    enabled: np.ndarray
    updated_at: np.ndarray


@dataclass
class Customers:
    n: int
    id: np.ndarray
    entity: np.ndarray
    document: np.ndarray  # CNPJ (14 digits) or CPF (11 digits)
    is_company: np.ndarray
    name: Text
    email: Text


@dataclass
class Contracts:
    n: int
    id: np.ndarray
    entity: np.ndarray
    customer: np.ndarray
    requires: np.ndarray  # (n, 3) bool: nfse, boleto, notification (charge_email)
    amount_cents: np.ndarray


@dataclass
class Invoices:
    """Invoices in billed_at order, oldest day first: the digest day's invoices are the last rows."""

    n: int
    id: np.ndarray
    days_before: np.ndarray  # billing day as days before the digest day (0 = digest day)
    entity: np.ndarray
    contract: np.ndarray  # index into contracts, -1 = no contract
    customer: np.ndarray
    manual: np.ndarray
    amount_cents: np.ndarray
    billing_date: np.ndarray  # days since 2000-01-01
    billed_at: np.ndarray
    year: np.ndarray
    number: np.ndarray  # sequence number within the entity (FAT-<year>-<number>)


@dataclass
class Attempts:
    invoice: np.ndarray  # index into invoices
    step: np.ndarray  # index into STEPS
    status: np.ndarray  # index into STATUSES
    error: np.ndarray  # index into ERRORS, -1 = none
    at: np.ndarray

    @staticmethod
    def concat(parts: Sequence[Attempts]) -> Attempts:
        columns = ("invoice", "step", "status", "error", "at")
        return Attempts(*(np.concatenate([getattr(part, name) for part in parts]) for name in columns))

    def take(self, rows: np.ndarray) -> Attempts:
        return Attempts(self.invoice[rows], self.step[rows], self.status[rows], self.error[rows], self.at[rows])

    def sorted(self) -> Attempts:
        """In time order (stable)."""
        return self.take(np.argsort(self.at, kind="stable"))

    def __len__(self) -> int:
        return len(self.at)


@dataclass
class Unresolved:
    """(invoice, step) pairs whose last attempt of the day failed, with their error: tomorrow's retries."""

    invoice: np.ndarray
    step: np.ndarray
    error: np.ndarray

    @staticmethod
    def none() -> Unresolved:
        return Unresolved(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))

    def __add__(self, other: Unresolved) -> Unresolved:
        return Unresolved(
            np.concatenate([self.invoice, other.invoice]),
            np.concatenate([self.step, other.step]),
            np.concatenate([self.error, other.error]),
        )

    def __len__(self) -> int:
        return len(self.invoice)


@dataclass
class DayAttempts:
    """The attempts in one day's window and what was planted in them."""

    attempts: Attempts
    unresolved: Unresolved
    missing_steps: int  # planted (invoice, step) pairs that never happened
    failed_after_cross_day_retry: int  # yesterday's failures retried by hand today that failed again
    incidents: int
    duplicates: int  # failed attempts recorded twice
    outage_invoices: int = 0  # invoices whose boleto attempts the bank outage failed


@dataclass
class World:
    """Everything generated for one seed, scale and digest day."""

    calendar: Calendar
    entities: Entities
    users: Users
    access: Access
    preferences: Preferences
    customers: Customers
    contracts: Contracts
    invoices: Invoices
    days: list[DayAttempts]  # the kept history of attempts, oldest day first (the digest day last)
    outage_entities: np.ndarray  # bool per entity: hit by the bank outage on the digest day
    attempts: Attempts = field(init=False)

    def __post_init__(self) -> None:
        self.attempts = Attempts.concat([day.attempts for day in self.days])

    @property
    def digest_day(self) -> DayAttempts:
        return self.days[-1]
