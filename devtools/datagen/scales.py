"""The sizes of a generated data set (``Scale``) and the named ones (``SCALES``: XS, S, M, L, XL)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    """Size of a generated data set.

    ``users_per_entity`` is the size of the ``users`` table relative to ``entities`` (every user belongs to
    one "home" entity); ``billing_users_per_entity`` is the mean number of those users holding billing
    access (``user_entity_access``) to their entity. ``history_invoices`` are billed on the days before the
    digest day (about ``day_invoices`` a day); ``history_days`` is how many days of attempts the attempts
    table keeps, the digest day included.

    ``outage_share`` > 0 makes the digest day an "outage day": for that share of all entities (chosen by the
    seed), every boleto attempt of their invoices billed in the digest window fails with the bank's
    ``BANK-503`` and none succeeds before the window's end. Everything else is the data of the same scale
    without the outage.
    """

    entities: int
    users_per_entity: float
    history_invoices: int
    day_invoices: int
    error_rate: float = 0.03
    history_days: int = 7
    billing_users_per_entity: float = 3.0
    contracts_per_day_invoice: float = 10.0
    outage_share: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.outage_share <= 1.0:
            raise ValueError(f"outage_share must be within [0, 1], not {self.outage_share}")


_LARGE = Scale(entities=100_000, users_per_entity=10.0, history_invoices=10_000_000, day_invoices=330_000)

SCALES: dict[str, Scale] = {
    "XS": Scale(entities=20, users_per_entity=4.0, history_invoices=6_000, day_invoices=300),
    "S": Scale(entities=1_000, users_per_entity=4.0, history_invoices=100_000, day_invoices=3_300),
    "M": Scale(entities=10_000, users_per_entity=4.0, history_invoices=1_000_000, day_invoices=33_000),
    "L": _LARGE,
    # Day L plus one bank's API down for 10% of all companies on the digest day (about 2.5x L's digests:
    # only about half the companies bill on a given day).
    "XL": dataclasses.replace(_LARGE, outage_share=0.10),
    # The same outage at a bank that 60% of the companies use: about 10x day L's digests.
    "XL60": dataclasses.replace(_LARGE, outage_share=0.60),
}


def resolve_scale(scale: Scale | str) -> Scale:
    """A Scale, or the named one (case-insensitive)."""
    return SCALES[scale.upper()] if isinstance(scale, str) else scale
