"""The three topics of a digest, in the order the e-mail shows them, and the steps of each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

TopicCode = Literal["nfse", "boleto", "notification"]
Step = Literal["nfse", "boleto", "charge_email", "overdue_email"]


@dataclass(frozen=True)
class Topic:
    code: TopicCode
    title: str                  # pt-BR, as the e-mail shows it
    steps: tuple[Step, ...]


TOPICS: tuple[Topic, ...] = (
    Topic("nfse", "Nota Fiscal", ("nfse",)),
    Topic("boleto", "Cobrança (Boleto Bancário)", ("boleto",)),
    Topic("notification", "Notificação ao cliente", ("charge_email", "overdue_email")),
)
# The types above name the same codes for the type checker; checked here, at import, so they cannot drift.
_CODES, _STEPS = [t.code for t in TOPICS], [s for t in TOPICS for s in t.steps]
if (_CODES, _STEPS) != (list(get_args(TopicCode)), list(get_args(Step))):
    raise RuntimeError("topics.TOPICS and the TopicCode/Step types disagree")
TOPIC_BY_CODE = {t.code: t for t in TOPICS}
TOPIC_ORDER = {t.code: i for i, t in enumerate(TOPICS)}
STEP_TOPIC = {step: t.code for t in TOPICS for step in t.steps}

# Steps the product runs that the digest does not report (no topic for them).
STEPS_NOT_IN_DIGEST = frozenset({"mark_billed"})
# Statuses of a failed attempt; any other non-success, non-pending status is bad data.
FAILED_STATUSES = frozenset({"failed", "rejected"})

# What the recipient reads when a step did not happen at all (kind = 'missing').
MISSING_STEP_MESSAGES = {
    "nfse": "Nenhuma emissão registrada no dia do faturamento.",
    "boleto": "Nenhum boleto registrado para esta cobrança.",
    "charge_email": "Nenhum e-mail de cobrança enviado ao cliente.",
}
