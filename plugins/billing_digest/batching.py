"""Step 3, build, its batching: which ``deliver`` batch sends each digest (pure, no I/O).

At most ``max_batches`` batches of whole companies (one company's recipients are never split), the
worst companies first (:func:`worst_first`): when not everything can go out at once (a slow provider,
a quota), the worst problems are read first.
"""

from __future__ import annotations

import math

import pandas as pd


def worst_first(errors: pd.DataFrame) -> pd.Series:
    """Entity -> its place when not everything can go out at once (a slow provider, a quota): the most
    errors first, then the largest amount at stake (each invoice once), then entity id."""
    if errors.empty:
        return pd.Series(dtype="int64")
    invoices = errors.drop_duplicates(["entity_id", "invoice_id"])
    amounts = pd.to_numeric(invoices["amount"], errors="coerce").groupby(invoices["entity_id"]).sum(min_count=1)
    ranked = pd.DataFrame({"errors": errors.groupby("entity_id").size(), "amount": amounts})
    ranked = ranked.fillna({"amount": 0.0}).reset_index()
    ranked = ranked.sort_values(["errors", "amount", "entity_id"], ascending=[False, False, True])
    return pd.Series(range(len(ranked)), index=ranked["entity_id"].to_numpy(), dtype="int64")


def assign_batches(digests: pd.DataFrame, max_batches: int, min_batch_size: int,
                   rank: pd.Series | None = None) -> pd.Series:
    """Batch number per digest: at most ``max_batches`` batches of whole entities, in entity order, or in
    ``rank`` order (entity -> place, :func:`worst_first`): the first batches hold the worst digests."""
    if digests.empty:
        return pd.Series(dtype="int64")
    n = len(digests)
    n_batches = max(1, min(max_batches, math.ceil(n / max(1, min_batch_size))))
    per_batch = math.ceil(n / n_batches)
    if rank is None:
        order = digests.sort_values(["entity_id", "user_id"])
    else:
        place = digests["entity_id"].map(rank).fillna(len(rank)).rename("_place")
        order = digests.assign(_place=place).sort_values(["_place", "entity_id", "user_id"])
    # Rank of the entity's first digest decides its batch, so an entity never straddles two.
    first_pos = pd.Series(range(n), index=order.index).groupby(order["entity_id"]).transform("min")
    return (first_pos // per_batch).clip(upper=n_batches - 1).astype("int64").reindex(digests.index)
