"""Pure pandas transforms: staged errors -> per-entity digests -> one digest per (user, entity).

No I/O here: the functions take and return DataFrames and plain dicts, so they are tested
without a database. Bad rows are never dropped silently: each is counted under a reason
in :class:`Problems` and, where it can still be shown safely, shown with a placeholder.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import pandas as pd

from billing_digest import causes, product
from billing_digest.guides import FIX_ORDER, Catalogue, Coverage, Guide
from billing_digest.mail.addresses import parse
from billing_digest.payload import CauseDigest, EntityDigest, ErrorItem, TopicDigest
from billing_digest.text import neutralise
from billing_digest.topics import (
    FAILED_STATUSES,
    MISSING_STEP_MESSAGES,
    STEP_TOPIC,
    STEPS_NOT_IN_DIGEST,
    TOPIC_BY_CODE,
    TOPIC_ORDER,
    TOPICS,
)

MAX_MESSAGE_CHARS = 500
TRUNCATION_MARK = " […]"
CUSTOMER_PLACEHOLDER = "Cliente não informado"
MESSAGE_PLACEHOLDER = "Erro sem mensagem informada pelo sistema de origem."
_PATH_RE = re.compile(r"/[A-Za-z0-9/_\-.~%?=&]*")
_CENT = Decimal("0.01")


@dataclass
class Problems:
    """Bad-input counts by reason, with a few example keys per reason for the log."""

    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, reason: str, keys: pd.Series | list[Any], limit: int = 5) -> None:
        keys = list(keys)
        if not keys:
            return
        self.counts[reason] += len(keys)
        bucket = self.examples.setdefault(reason, [])
        bucket.extend(str(k) for k in keys[: max(0, limit - len(bucket))])

    def as_dict(self) -> dict[str, int]:
        return dict(sorted(self.counts.items()))



def _clean_one(value: Any, max_chars: int | None) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return pd.NA
    s = neutralise(value if isinstance(value, str) else str(value)).strip()
    if not s.isascii():  # lone surrogates cannot be encoded: they become "?"
        s = s.encode("utf-8", errors="replace").decode("utf-8", errors="replace")
    if max_chars is not None and len(s) > max_chars:
        s = s[: max_chars - len(TRUNCATION_MARK)].rstrip() + TRUNCATION_MARK
    return s or pd.NA


def clean_text(series: pd.Series, max_chars: int | None = None) -> pd.Series:
    """Untrusted text made safe (:func:`billing_digest.text.neutralise`: escape sequences and bidi
    controls removed, other control characters to one space), trimmed; longer than ``max_chars`` cut
    with a marker.

    One pass of plain Python per value (a chain of vectorised ``.str`` calls costs more on the
    few thousand short strings of a day)."""
    return pd.Series([_clean_one(v, max_chars) for v in series.tolist()], index=series.index, dtype="string")


def _to_cents(value: Any) -> tuple[str | None, bool]:
    """(amount rounded to cents as a string or None, whether it had to be rounded or was bad)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None, False
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None, True
    if not d.is_finite():
        return None, True
    q = d.quantize(_CENT, rounding=ROUND_HALF_UP)
    return str(q), q != d


def prepare_errors(errors: pd.DataFrame, problems: Problems) -> pd.DataFrame:
    """Validate and normalise staged errors; returns the rows that go into digests, with ``topic``.

    Dropped (counted, not shown): rows whose invoice is unknown (no entity to route to),
    unknown steps or statuses, steps the digest does not cover (:func:`_rows_to_keep`). Shown
    with a placeholder (counted): missing customer, message, amount or invoice path; over-precise
    amounts (:func:`_normalise`).
    """
    key = errors["invoice_id"].astype("string") + ":" + errors["step"].astype("string")
    keep = _rows_to_keep(errors, key, problems)
    df = errors[keep].copy()
    _normalise(df, key[keep], problems)
    return df


def _rows_to_keep(df: pd.DataFrame, key: pd.Series, problems: Problems) -> pd.Series:
    """Which rows can go into a digest; each one that cannot is counted under its reason."""
    unroutable = df["entity_id"].isna()
    problems.add("unknown_invoice", key[unroutable])

    known_step = df["step"].isin(STEP_TOPIC)
    not_in_digest = df["step"].isin(STEPS_NOT_IN_DIGEST) & ~unroutable
    problems.add("step_not_in_digest", key[not_in_digest])
    unknown_step = ~known_step & ~df["step"].isin(STEPS_NOT_IN_DIGEST) & ~unroutable
    problems.add("unknown_step", key[unknown_step])

    failed = df["kind"].eq("failed")
    unknown_status = failed & ~df["status"].isin(FAILED_STATUSES) & known_step & ~unroutable
    problems.add("unknown_status", key[unknown_status])
    return ~unroutable & known_step & ~unknown_status


def _normalise(df: pd.DataFrame, key: pd.Series, problems: Problems) -> None:
    """The kept rows (``df``, changed in place) made safe to show, placeholders counted."""
    df["entity_id"] = df["entity_id"].astype("int64")
    df["topic"] = df["step"].map(STEP_TOPIC)
    _normalise_messages(df, key, problems)
    _normalise_amounts(df, key, problems)
    _normalise_paths(df, key, problems)
    df["invoice_number"] = clean_text(df["invoice_number"], 60).fillna("#" + df["invoice_id"].astype("string"))
    df["entity_name"] = clean_text(df["entity_name"], 200).fillna("Empresa " + df["entity_id"].astype("string"))
    if "entity_cnpj" in df:  # shown as the source has it when it is not 14 digits (formatting.cnpj_br)
        df["entity_cnpj"] = clean_text(df["entity_cnpj"], 40)
    df["billing_type"] = df["billing_type"].where(df["billing_type"].isin(["manual", "automatic"]), None)
    df["attempts"] = pd.to_numeric(df["attempts"], errors="coerce").fillna(0).astype("int64")


def _normalise_messages(df: pd.DataFrame, key: pd.Series, problems: Problems) -> None:
    """The customer's name and the error's message and code: cleaned, cut, placeholders."""
    customer = clean_text(df["customer_name"], 200)
    problems.add("missing_customer", key[customer.isna()])
    df["customer_name"] = customer.fillna(CUSTOMER_PLACEHOLDER)

    message = clean_text(df["error_message"], MAX_MESSAGE_CHARS)
    missing_text = df["step"].map(MISSING_STEP_MESSAGES)
    no_message = message.isna() & df["kind"].eq("failed")
    problems.add("missing_message", key[no_message])
    problems.add("long_message_truncated",
                 key[df["error_message"].astype("string").str.len().fillna(0) > MAX_MESSAGE_CHARS])
    message = message.where(~(message.isna() & df["kind"].eq("missing")), missing_text)
    df["error_message"] = message.fillna(MESSAGE_PLACEHOLDER)
    df["error_code"] = clean_text(df["error_code"], 40)


def _normalise_amounts(df: pd.DataFrame, key: pd.Series, problems: Problems) -> None:
    """Amounts to cents as strings; rounded and missing ones counted."""
    cents = [_to_cents(v) for v in df["amount"].tolist()]
    df["amount"] = [c[0] for c in cents]
    rounded = pd.Series([c[1] for c in cents], index=df.index, dtype=bool)
    problems.add("amount_rounded", key[rounded & df["amount"].notna()])
    problems.add("missing_amount", key[df["amount"].isna()])


def _normalise_paths(df: pd.DataFrame, key: pd.Series, problems: Problems) -> None:
    """An invoice path that is not a plain same-site path becomes the product's path for the invoice."""
    path = df["invoice_path"].astype("string").str.strip()
    valid_path = path.fillna("").str.fullmatch(_PATH_RE) & ~path.fillna("").str.startswith("//")
    problems.add("missing_invoice_path", key[~valid_path])
    fallback = df["invoice_id"].map(product.invoice_path).astype("string")
    df["invoice_path"] = path.where(valid_path, fallback)


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


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
            return [None if _missing(v) else v for v in df[column].tolist()]

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


def topic_counts(errors: pd.DataFrame) -> dict[str, int]:
    """Errors per topic, in topic order, zeros included."""
    counts = errors["topic"].value_counts() if not errors.empty else pd.Series(dtype="int64")
    return {t.code: int(counts.get(t.code, 0)) for t in TOPICS}


def clean_recipients(recipients: pd.DataFrame, problems: Problems) -> pd.DataFrame:
    """Recipients of each entity with ``skip_reason`` set where no e-mail may be sent.

    Names are neutralised (no header injection, no escape sequences); addresses are validated and
    normalised by :func:`billing_digest.mail.addresses.parse` (``email`` holds the form we send to,
    the domain in IDNA); the same mailbox twice for one entity (two users sharing it, compared on
    :attr:`~billing_digest.mail.addresses.Address.key`) gets one e-mail.
    """
    df = recipients.copy()
    df["user_name"] = clean_text(df["user_name"], 120).fillna("")
    parsed = [parse(None if _missing(e) else str(e)) for e in df["email"].tolist()]
    valid = pd.Series([a is not None for a in parsed], index=df.index, dtype=bool)
    df["email"] = pd.Series([a.smtp if a else (None if _missing(e) else str(e).strip())
                             for a, e in zip(parsed, df["email"].tolist(), strict=True)],
                            index=df.index, dtype="string")
    key = pd.Series([a.key if a else None for a in parsed], index=df.index, dtype="string")
    df["skip_reason"] = pd.Series(pd.NA, index=df.index, dtype="string")
    df.loc[~valid, "skip_reason"] = "invalid_email"
    problems.add("invalid_email", df.loc[~valid, "user_id"])

    df = df.sort_values(["entity_id", "user_id"])
    dup = valid.reindex(df.index) & pd.DataFrame({"e": df["entity_id"], "m": key.reindex(df.index)}).duplicated()
    df.loc[dup, "skip_reason"] = "duplicate_address"
    problems.add("duplicate_address", df.loc[dup, "user_id"])
    return df.reset_index(drop=True)


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
