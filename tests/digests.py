"""Digest payloads and a renderer for the rendering tests (render, headers, mime)."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from decimal import Decimal

from billing_digest.mail.render import Renderer
from billing_digest.payload import CauseDigest, EntityDigest, ErrorItem
from billing_digest.settings import Settings

NOW = dt.datetime(2026, 11, 28, 9, 30, tzinfo=dt.UTC)
SECRET = "s3cret-for-tests-only"


def item(i: int, topic_step: str = "nfse", **kw) -> ErrorItem:
    base = {"invoice_id": i, "number": f"FAT-{i}", "customer": f"Cliente {i}", "amount": "1234.56",
            "billing_date": "2026-11-27", "billing_type": "automatic", "step": topic_step, "kind": "failed",
            "status": "rejected", "code": "E160", "message": "Código de serviço inválido", "detail": None,
            "attempts": 1, "path": f"/faturamento/faturamentos/{i}"}
    base.update(kw)
    return base  # type: ignore[return-value]


def cause(*items: ErrorItem, count: int | None = None, **kw) -> CauseDigest:
    """A block of these invoices (all of them listed unless ``count`` says there are more)."""
    first = items[0]
    count = len(items) if count is None else count
    amounts = [Decimal(i["amount"]) for i in items if i["amount"] is not None]
    base = {"step": first["step"], "kind": first["kind"], "status": first["status"], "code": first["code"],
            "message": first["message"], "count": count,
            "amount_total": str(sum(amounts, Decimal(0))) if amounts else None,
            "amounts_missing": len(items) - len(amounts), "invoices": list(items), "more": count - len(items)}
    base.update(kw)
    return base  # type: ignore[return-value]


def topic(code: str, title: str, *causes: CauseDigest, other_causes: int = 0, other_errors: int = 0) -> dict:
    return {"code": code, "title": title, "total": sum(c["count"] for c in causes) + other_errors,
            "causes": list(causes), "other_causes": other_causes, "other_errors": other_errors}


def payload(**kw) -> EntityDigest:
    p = {"digest_date": "2026-11-27", "entity": {"id": 7, "name": "Padaria Pão & Cia", "cnpj": "11222333000181"},
         "total": 4, "topics": [
             topic("nfse", "Nota Fiscal", cause(item(1), item(2))),
             topic("boleto", "Cobrança (Boleto Bancário)",
                   cause(item(3, "boleto", kind="missing", status=None, code=None, amount=None,
                              billing_type="manual"))),
             topic("notification", "Notificação ao cliente",
                   cause(item(4, "charge_email", status="rejected", attempts=3))),
         ]}
    p.update(kw)
    return p  # type: ignore[return-value]


def renderer() -> Renderer:
    return Renderer(Settings(unsubscribe_secret=SECRET, base_url="https://app.exemplo.com.br/"))


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]
