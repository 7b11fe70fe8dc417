"""Deterministic random streams and the vectorised sampling helpers the generator is built from.

Every component of the data set draws from its own stream (``rng_for(seed, "users")``...), so adding or
changing one component never shifts the random numbers of another. Times are Unix microseconds.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Sequence

import numpy as np

MINUTE = 60_000_000  # microseconds
HOUR = 60 * MINUTE
DAY = 24 * HOUR
_UNIX_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def rng_for(seed: int, component: str, *extra: int) -> np.random.Generator:
    """An independent, deterministic random stream per component (and per day, etc. with ``extra``)."""
    return np.random.default_rng([seed, zlib.crc32(component.encode()), *extra])


def unix_us(moment: dt.datetime) -> int:
    """An aware datetime as Unix microseconds."""
    return (moment.astimezone(dt.UTC) - _UNIX_EPOCH) // dt.timedelta(microseconds=1)


def sequence_ids(rng: np.random.Generator, n: int, start: int, max_gap: int = 3) -> np.ndarray:
    """Increasing ids with small random gaps (deleted rows), like a real sequence."""
    return start + np.cumsum(rng.integers(1, max_gap + 1, n, dtype=np.int64))


def distinct_ints(rng: np.random.Generator, n: int, low: int, high: int) -> np.ndarray:
    """``n`` distinct integers in [low, high), in random order."""
    drawn = np.unique(rng.integers(low, high, int(n * 1.1) + 16))
    while len(drawn) < n:
        drawn = np.unique(np.concatenate([drawn, rng.integers(low, high, n)]))
    return rng.permutation(drawn)[:n]


def weighted_order(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """A random permutation where heavier items tend to come first (sampling without replacement)."""
    keys = rng.exponential(size=len(weights)) / np.maximum(weights, 1e-12)
    return np.argsort(keys, kind="stable")


def rank_within_groups(groups: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """Rank of each row within its group (0-based), in row order or in random order if ``rng`` is given."""
    if rng is not None:
        order = np.lexsort((rng.random(len(groups)), groups))
    else:
        order = np.argsort(groups, kind="stable")
    sorted_groups = groups[order]
    is_first = np.r_[True, sorted_groups[1:] != sorted_groups[:-1]]
    group_start = np.maximum.accumulate(np.where(is_first, np.arange(len(sorted_groups)), 0))
    rank = np.empty(len(sorted_groups), dtype=np.int64)
    rank[order] = np.arange(len(sorted_groups)) - group_start
    return rank


def pick_columns(rng: np.random.Generator, eligible: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """Per row, a column index drawn with ``weights`` among eligible columns; -1 if none is eligible."""
    row_weights = eligible * np.asarray(weights, dtype=np.float64)
    cumulated = np.cumsum(row_weights, axis=1)
    total = cumulated[:, -1]
    draw = rng.random(len(row_weights)) * total
    column = np.argmax(cumulated > draw[:, None], axis=1)
    return np.where(total > 0, column, -1)


def group_starts(sizes: np.ndarray) -> np.ndarray:
    """Where each group starts in a flat array of consecutive groups of the given sizes."""
    return np.cumsum(sizes) - sizes


def position_in_group(sizes: np.ndarray) -> np.ndarray:
    """For a flat array of consecutive groups of the given sizes, each item's 0-based position in its group."""
    return np.arange(int(sizes.sum())) - np.repeat(group_starts(sizes), sizes)
