"""The stored digest of one company for one day: the JSON in ``digest.entity_digests.payload``.

Written by :func:`billing_digest.assemble.build_entity_digests`, read by the renderer and the
preview page. Every recipient of a company reads the same payload; nothing in it is personal.
Field by field in docs/data-model.md. Dates are ISO strings (``YYYY-MM-DD``) and amounts decimal
strings (``"1234.50"``), so the payload is plain JSON and round-trips exactly.
"""

from __future__ import annotations

from typing import Literal, TypedDict

from billing_digest.topics import Step, TopicCode

ErrorKind = Literal["failed", "missing"]
BillingType = Literal["automatic", "manual"]


class EntityInfo(TypedDict):
    id: int
    name: str
    cnpj: str | None            # 14 digits as the source has them (formatted when rendered)


class ErrorItem(TypedDict):
    """One failing (invoice, step)."""

    invoice_id: int
    number: str                 # the invoice's number, or "#<id>" when the source has none
    customer: str               # placeholder when the source has none
    amount: str | None          # cents, half-up; None: the source has no usable amount
    billing_date: str | None    # the invoice's billing date
    billing_type: BillingType | None
    step: Step
    kind: ErrorKind             # 'failed': an attempt failed; 'missing': a required step did not happen
    status: str | None          # status of the latest failed attempt ('failed' | 'rejected')
    code: str | None            # the source's error code
    message: str                # the source's message (cleaned, at most 500 characters)
    detail: str | None          # in a block: what this message says that the block's does not (e.g. an address)
    attempts: int               # failed attempts in the window (0 when missing)
    path: str                   # the invoice's page in the product (validated, or a fallback)


class CauseGuide(TypedDict):
    """What to do about a cause: its entry of the catalogue of known causes (docs/cause-guides.md)."""

    id: str                     # the catalogue entry's id
    action: str                 # pt-BR: what to do (for fix "none": what happened)
    fix: Literal["company", "invoice", "none"]  # one configuration change / each invoice / the product retries
    path: str | None            # the product page where it is fixed (under base_url); None: the invoices' own pages
    page: str | None            # that page's pt-BR name (the link reads "Abrir <page>")


class CauseDigest(TypedDict):
    """The errors of one topic with one cause (:func:`billing_digest.causes.cause_key`): one block."""

    step: Step
    kind: ErrorKind
    status: str | None
    code: str | None
    message: str                # shown once; a part that differs between its invoices reads "…"
    count: int                  # invoices it hit (every one, listed or not)
    amount_total: str | None    # sum of the known amounts; None when no amount is known
    amounts_missing: int        # invoices without a usable amount (not in amount_total)
    invoices: list[ErrorItem]   # the first ones listed, biggest amounts first
    more: int                   # count - len(invoices)
    guide: CauseGuide | None    # what to do, from the catalogue of known causes; None: no entry matched


class TopicDigest(TypedDict):
    code: TopicCode
    title: str                  # pt-BR, as the e-mail shows it
    total: int                  # every error of the topic, listed or not
    causes: list[CauseDigest]   # biggest first (count, then amount_total), as many as the topic's budget lists
    other_causes: int           # causes not listed: the e-mail says "e mais N erros de M outras causas"
    other_errors: int           # errors of those causes


class EntityDigest(TypedDict):
    digest_date: str
    entity: EntityInfo
    total: int                  # errors of the company that day, all topics
    topics: list[TopicDigest]   # in TOPICS order; topics without errors are absent
