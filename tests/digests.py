"""Digest payloads and a renderer for the rendering tests (render, headers, mime)."""

from __future__ import annotations

import datetime as dt
import email
import email.policy

from billing_digest.payload import EntityDigest, ErrorItem
from billing_digest.render import Renderer
from billing_digest.settings import Settings

NOW = dt.datetime(2026, 11, 28, 9, 30, tzinfo=dt.UTC)
SECRET = "s3cret-for-tests-only"


def item(i: int, topic_step: str = "nfse", **kw) -> ErrorItem:
    base = {"invoice_id": i, "number": f"FAT-{i}", "customer": f"Cliente {i}", "amount": "1234.56",
            "billing_date": "2026-11-27", "billing_type": "automatic", "step": topic_step, "kind": "failed",
            "status": "rejected", "code": "E160", "message": "Código de serviço inválido", "attempts": 1,
            "path": f"/faturamento/faturamentos/{i}"}
    base.update(kw)
    return base  # type: ignore[return-value]


def payload(**kw) -> EntityDigest:
    p = {"digest_date": "2026-11-27", "entity": {"id": 7, "name": "Padaria Pão & Cia", "cnpj": "11222333000181"},
         "total": 4, "topics": [
             {"code": "nfse", "title": "Nota Fiscal", "total": 2, "more": 0, "items": [item(1), item(2)]},
             {"code": "boleto", "title": "Cobrança (Boleto Bancário)", "total": 1, "more": 0,
              "items": [item(3, "boleto", kind="missing", status=None, amount=None, billing_type="manual")]},
             {"code": "notification", "title": "Notificação ao cliente", "total": 1, "more": 0,
              "items": [item(4, "charge_email", status="rejected", attempts=3)]},
         ]}
    p.update(kw)
    return p  # type: ignore[return-value]


def renderer() -> Renderer:
    return Renderer(Settings(unsubscribe_secret=SECRET, base_url="https://app.exemplo.com.br/"))


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]
