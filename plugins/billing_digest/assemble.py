"""Step 3, build, its assembly: one payload per company from the validated errors (pure, no I/O).

:func:`build_entity_digests` sorts the errors (company, topic, biggest amount first), groups each
company's topic by cause (:func:`group_by_cause`, :func:`billing_digest.causes.cause_key`), budgets what
each topic lists (``max_items`` over its causes, ``max_per_cause`` each) and assembles the typed
payload (:mod:`billing_digest.payload`), with each cause's guide when the catalogue knows it
(:mod:`billing_digest.guides`). Every count and total covers every error, listed or not. Its input
is :func:`billing_digest.transform.prepare_errors`' output.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pandas as pd

from billing_digest import causes
from billing_digest.guides import FIX_ORDER, Catalogue, Coverage, Guide
from billing_digest.payload import CauseDigest, EntityDigest, ErrorItem, TopicDigest
from billing_digest.topics import TOPIC_BY_CODE, TOPIC_ORDER
from billing_digest.transform import is_missing


@dataclass(frozen=True)
class _Columns:
    """The sorted errors as plain lists (missing values as None): the loops do no pandas work per row."""

    entity_ids: list[int]
    topics: list[str]
    invoice_ids: list[Any]
    steps: list[str]
    kinds: list[str]
    attempts: list[Any]
    statuses: list[str | None]
    codes: list[str | None]
    messages: list[str]
    amounts: list[Any]
    numbers: list[Any]
    customers: list[Any]
    billing_types: list[Any]
    paths: list[Any]
    billing_dates: list[str | None]

    @classmethod
    def of(cls, df: pd.DataFrame) -> _Columns:
        def plain(column: str) -> list[Any]:
            return [None if is_missing(v) else v for v in df[column].tolist()]

        return cls(
            entity_ids=[int(e) for e in df["entity_id"].tolist()], topics=df["topic"].tolist(),
            invoice_ids=df["invoice_id"].tolist(), steps=df["step"].tolist(), kinds=df["kind"].tolist(),
            attempts=df["attempts"].tolist(), statuses=plain("status"), codes=plain("error_code"),
            messages=plain("error_message"), amounts=plain("amount"), numbers=plain("invoice_number"),
            customers=plain("customer_name"), billing_types=plain("billing_type"), paths=plain("invoice_path"),
            billing_dates=[None if pd.isna(d) else d.date().isoformat()
                           for d in pd.to_datetime(df["billing_date"], errors="coerce").tolist()],
        )

    def item(self, i: int, detail: str | None) -> ErrorItem:
        amount = self.amounts[i]
        return ErrorItem(
            invoice_id=int(self.invoice_ids[i]), number=self.numbers[i], customer=self.customers[i],
            amount=None if amount is None else str(amount), billing_date=self.billing_dates[i],
            billing_type=self.billing_types[i], step=self.steps[i], kind=self.kinds[i], status=self.statuses[i],
            code=self.codes[i], message=self.messages[i], detail=detail, attempts=int(self.attempts[i]),
            path=self.paths[i],
        )


def _sorted_errors(errors: pd.DataFrame) -> pd.DataFrame:
    """Companies, then topics in order, then the biggest amounts first: the order invoices are listed in."""
    return errors.assign(
        _topic_order=errors["topic"].map(TOPIC_ORDER),
        _amount=pd.to_numeric(errors["amount"], errors="coerce"),
    ).sort_values(
        ["entity_id", "_topic_order", "_amount", "customer_name", "invoice_id"],
        ascending=[True, True, False, True, True],
        na_position="last",
    )


def _empty_payloads(df: pd.DataFrame, digest_date: dt.date) -> dict[int, EntityDigest]:
    """One payload per company of the frame, in its order, without topics yet."""
    payloads: dict[int, EntityDigest] = {}
    for row in df.drop_duplicates("entity_id")[["entity_id", "entity_name", "entity_cnpj"]].itertuples(index=False):
        payloads[int(row.entity_id)] = EntityDigest(
            digest_date=digest_date.isoformat(),
            entity={"id": int(row.entity_id), "name": row.entity_name,
                    "cnpj": None if pd.isna(row.entity_cnpj) else str(row.entity_cnpj)},
            total=0,
            topics=[],
        )
    return payloads


def group_by_cause(cols: _Columns) -> dict[tuple[int, str], dict[str, list[int]]]:
    """Row numbers by (company, topic), then by cause (:func:`billing_digest.causes.cause_key`),
    in the rows' order (biggest amount first)."""
    groups: dict[tuple[int, str], dict[str, list[int]]] = {}
    for i, (entity_id, topic, step, kind, status, code, message) in enumerate(zip(
            cols.entity_ids, cols.topics, cols.steps, cols.kinds, cols.statuses, cols.codes, cols.messages,
            strict=True)):
        cause = causes.cause_key(step, kind, status, code, message)
        groups.setdefault((entity_id, topic), {}).setdefault(cause, []).append(i)
    return groups


def _cause_digest(cols: _Columns, rows: list[int], total: Decimal | None, missing: int,
                  shown: list[int], guide: Guide | None) -> CauseDigest:
    """One cause's block: its message once, the ``shown`` invoices listed, every invoice counted."""
    first = rows[0]
    summary = causes.summarise([cols.messages[i] for i in rows], cols.codes[first])
    return CauseDigest(
        step=cols.steps[first], kind=cols.kinds[first], status=cols.statuses[first], code=cols.codes[first],
        message=summary.message, count=len(rows), amount_total=None if total is None else str(total),
        amounts_missing=missing, invoices=[cols.item(i, summary.details[n]) for n, i in enumerate(shown)],
        more=len(rows) - len(shown), guide=None if guide is None else guide.payload(),
    )


def _fix_first(listed: list[tuple[Guide | None, CauseDigest]]) -> list[CauseDigest]:
    """The listed blocks in reading order: a company-level fix first (one action clears many invoices),
    what the product retries by itself last (:data:`billing_digest.guides.FIX_ORDER`), otherwise the
    budget's order; blocks sharing a guide right after the first of them, so the e-mail says the fix
    once for the run of them (the renderer's "igual ao item acima")."""
    ordered = sorted(listed, key=lambda g_c: FIX_ORDER[g_c[0] and g_c[0].fix])  # stable
    runs: list[list[CauseDigest]] = []
    by_id: dict[str, list[CauseDigest]] = {}
    for guide, cause in ordered:
        if guide is not None and guide.id in by_id:
            by_id[guide.id].append(cause)
            continue
        runs.append([cause])
        if guide is not None:
            by_id[guide.id] = runs[-1]
    return [cause for run in runs for cause in run]


def _topic_digest(cols: _Columns, topic: str, by_cause: dict[str, list[int]], guides: dict[str, Guide | None],
                  max_items: int, max_per_cause: int) -> TopicDigest:
    """A topic's blocks, the biggest causes first within its budget of listed invoices, the rest
    counted; then in reading order (:func:`_fix_first`)."""
    ranked = sorted(((*_cause_total(rows, cols.amounts), guides[key]) for key, rows in by_cause.items()),
                    key=lambda c: _cause_rank(c[:3]))
    budget = max(0, max_items)
    listed: list[tuple[Guide | None, CauseDigest]] = []
    other_causes = other_errors = 0
    for rows, total, missing, guide in ranked:
        if budget <= 0:
            other_causes += 1
            other_errors += len(rows)
            continue
        shown = rows[: min(max_per_cause, budget)]
        budget -= len(shown)
        listed.append((guide, _cause_digest(cols, rows, total, missing, shown, guide)))
    return TopicDigest(
        code=topic, title=TOPIC_BY_CODE[topic].title, total=sum(len(rows) for rows in by_cause.values()),
        causes=_fix_first(listed), other_causes=other_causes, other_errors=other_errors,
    )


def _guides(cols: _Columns, entity_id: int, by_cause: dict[str, list[int]], catalogue: Catalogue | None,
            coverage: Coverage | None) -> dict[str, Guide | None]:
    """Each cause's guide (matched once per block, from its first error), counted in ``coverage``."""
    found: dict[str, Guide | None] = {}
    for key, rows in by_cause.items():
        i = rows[0]
        step, code, message = cols.steps[i], cols.codes[i], cols.messages[i]
        guide = catalogue.match(step, cols.kinds[i], cols.statuses[i], code, message, key) if catalogue else None
        if coverage is not None:
            coverage.add(guide, len(rows), entity_id, step, code, message)
        found[key] = guide
    return found


def build_entity_digests(
    errors: pd.DataFrame, digest_date: dt.date, max_items: int, max_per_cause: int,
    catalogue: Catalogue | None = None, coverage: Coverage | None = None,
) -> dict[int, EntityDigest]:
    """One payload per entity: its topics in order; each topic's errors grouped by cause
    (:func:`group_by_cause`), each cause with its guide from ``catalogue`` (none without one); the
    biggest causes (invoices, then total amount) listed, shown a company-level fix first (:func:`_fix_first`).

    A topic lists at most ``max_items`` invoices over its causes, at most ``max_per_cause`` of each
    (biggest amounts first); causes past that budget are counted in ``other_causes``. Every count
    and total covers every error, listed or not, and so does ``coverage`` when given.
    """
    if errors.empty:
        return {}
    df = _sorted_errors(errors)
    payloads = _empty_payloads(df, digest_date)
    cols = _Columns.of(df)
    for (entity_id, topic), by_cause in group_by_cause(cols).items():
        guides = _guides(cols, entity_id, by_cause, catalogue, coverage)
        digest = _topic_digest(cols, topic, by_cause, guides, max_items, max_per_cause)
        payload = payloads[entity_id]
        payload["topics"].append(digest)
        payload["total"] += digest["total"]
    return payloads


def _cause_total(rows: list[int], amounts: list[Any]) -> tuple[list[int], Decimal | None, int]:
    """(rows, sum of their known amounts or None when none is known, how many have no amount)."""
    known = [Decimal(amounts[i]) for i in rows if amounts[i] is not None]
    return rows, (sum(known, Decimal(0)) if known else None), len(rows) - len(known)


def _cause_rank(cause: tuple[list[int], Decimal | None, int]) -> tuple[int, int, Decimal, int]:
    """Most invoices first, then the biggest total (unknown last), then the biggest invoice's order."""
    rows, total, _ = cause
    return -len(rows), total is None, -(total or Decimal(0)), rows[0]
