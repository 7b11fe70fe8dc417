"""Step 3, build, its validation: staged errors and recipients checked and normalised (pure pandas).

No I/O here: the functions take and return DataFrames, so they are tested without a database. What
they return is assembled into payloads by :mod:`billing_digest.assemble` and put in batches by
:mod:`billing_digest.batching`. Bad rows are never dropped silently: each is counted under a reason
in :class:`Problems` and, where it can still be shown safely, shown with a placeholder.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import pandas as pd

from billing_digest import product
from billing_digest.mail.addresses import parse
from billing_digest.text import neutralise
from billing_digest.topics import (
    FAILED_STATUSES,
    MISSING_STEP_MESSAGES,
    STEP_TOPIC,
    STEPS_NOT_IN_DIGEST,
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


def is_missing(value: Any) -> bool:
    """None, pandas' NA or NaT, or a float NaN: no value (the source's NULL, as pandas hands it over)."""
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def _clean_one(value: Any, max_chars: int | None) -> Any:
    if is_missing(value):
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
    parsed = [parse(None if is_missing(e) else str(e)) for e in df["email"].tolist()]
    valid = pd.Series([a is not None for a in parsed], index=df.index, dtype=bool)
    df["email"] = pd.Series([a.smtp if a else (None if is_missing(e) else str(e).strip())
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
