"""Digest payloads to look at and to measure: the screenshots' realistic day, and a worst case.

- :func:`sample_payload`: one company's realistic day, written by hand: a block of one cause (an
  expired bank credential on 20 invoices), a block whose invoices differ in a detail (bounced
  addresses), cards of single causes, an older invoice, a code the message already says; each
  cause with its guide from the shipped catalogue of known causes (one without an entry), ordered
  as the transform orders them (:func:`with_guides`);
- :func:`worst_case_payload`: the biggest and most varied digest the settings allow, built by the
  real transform from the data generator's error catalogue: every topic lists its whole budget
  (a big block, then as many different causes as fit), long names, every message kind, old
  invoices, missing amounts, every kind of guide. Used by the spam test and the e-mail size test.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

DAY = dt.date(2026, 11, 27)


def _item(i: int, step: str, customer: str, number: str, amount: str | None, message: str, *,
          kind: str = "failed", status: str | None = "rejected", code: str | None = None, attempts: int = 1,
          billing_type: str = "automatic", billing_date: str = "2026-11-27",
          detail: str | None = None) -> dict[str, Any]:
    return {"invoice_id": i, "number": number, "customer": customer, "amount": amount,
            "billing_date": billing_date, "billing_type": billing_type, "step": step, "kind": kind,
            "status": status, "code": code, "message": message, "detail": detail, "attempts": attempts,
            "path": f"/faturamento/faturamentos/{i}"}


def _cause(invoices: list[dict[str, Any]], *, count: int | None = None, message: str | None = None,
           amount_total: str | None = None) -> dict[str, Any]:
    first = invoices[0]
    count = len(invoices) if count is None else count
    known = [Decimal(i["amount"]) for i in invoices if i["amount"] is not None]
    return {"step": first["step"], "kind": first["kind"], "status": first["status"], "code": first["code"],
            "message": message or first["message"], "count": count,
            "amount_total": amount_total or (str(sum(known, Decimal(0))) if known else None),
            "amounts_missing": len(invoices) - len(known), "invoices": invoices, "more": count - len(invoices)}


def _topic(code: str, title: str, causes: list[dict[str, Any]]) -> dict[str, Any]:
    return {"code": code, "title": title, "total": sum(c["count"] for c in causes), "causes": causes,
            "other_causes": 0, "other_errors": 0}


BANK_401 = "Credenciais da API do banco expiradas (HTTP 401)"
E160_SP = "E160 - Código de serviço inválido para o município de São Paulo"
BOUNCE = "550 5.1.1 Caixa postal inexistente: "


def sample_payload() -> dict[str, Any]:
    """A realistic day of one company: three topics, blocks and cards, long names, 'e mais' links."""
    bank = [("Supermercado Bom Preço Comércio de Alimentos e Bebidas Eireli", "18450.90", "2026-11-26"),
            ("Condomínio Edifício Jardim das Acácias", "2750.00", "2026-11-27"),
            ("Café do Ponto", "1312.00", "2026-11-27"),
            ("Academia Corpo em Movimento", "989.90", "2026-11-27"),
            ("Oficina Mecânica Irmãos Ferreira", "640.00", "2026-11-27")]
    nfse = [("Clínica Sorriso Odontologia", "3200.00"), ("Escola Pequeno Príncipe", "1890.00"),
            ("Restaurante Sabor & Arte", "760.50"), ("Mercadinho São José", "412.30")]
    bounced = [("Padaria do Bairro Ltda", "530.00", "financeiro@padariadobairro-exemplo.com.br"),
               ("Loja Casa & Cia", "219.90", "contato@casaecia-exemplo.com.br")]
    total_401 = "32143.80"
    topics = [
        _topic("nfse", "Nota Fiscal", [
            _cause([_item(101 + n, "nfse", c, f"FAT-2026-0045{10 + n}", a, E160_SP, code="E160")
                    for n, (c, a) in enumerate(nfse)]),
            _cause([_item(110, "nfse", "Imobiliária Lar Doce Lar", "FAT-2026-004520", "2100.00",
                          "Prefeitura fora do ar (timeout após 60s)", status="failed", code="TIMEOUT", attempts=3)]),
            _cause([_item(111, "nfse", "Farmácia Vida Saudável", "FAT-2026-004521", "150.00",
                          "Nenhuma emissão registrada no dia do faturamento.", kind="missing", status=None,
                          billing_type="manual")]),
        ]),
        _topic("boleto", "Cobrança (Boleto Bancário)", [
            _cause([_item(201 + n, "boleto", c, f"FAT-2026-0045{30 + n}", a, BANK_401, status="failed",
                          code="HTTP_401", attempts=2, billing_date=d) for n, (c, a, d) in enumerate(bank)],
                   count=20, amount_total=total_401),
            _cause([_item(230, "boleto", "Mercadinho São José", "FAT-2026-004480", "1234.56",
                          "Banco recusou o registro: CEP do pagador inválido", code="48",
                          billing_date="2026-11-25")]),
        ]),
        _topic("notification", "Notificação ao cliente", [
            _cause([_item(301 + n, "charge_email", c, f"FAT-2026-0045{40 + n}", a, BOUNCE + addr, code="550",
                          detail=addr) for n, (c, a, addr) in enumerate(bounced)], message=BOUNCE + "…"),
            _cause([_item(310, "overdue_email", "Auto Peças Ferreira & Filhos", "FAT-2026-004101", "640.00",
                          "552 5.2.2 Caixa postal cheia: cobranca@autopecasferreira-exemplo.com.br", code="552",
                          billing_date="2026-11-04")]),
            _cause([_item(311, "charge_email", "Studio de Pilates Equilíbrio", "FAT-2026-004550", None,
                          "Mensagem rejeitada pelo servidor de destino (spam)", code="554")]),
            _cause([_item(312, "overdue_email", "Pet Shop Amigo Fiel", "FAT-2026-004102", "89.90",
                          "Remetente bloqueado pela política do domínio do destinatário", status="failed",
                          code="571")]),  # no catalogue entry: reads as before guides existed
        ]),
    ]
    with_guides(topics)
    return {"digest_date": DAY.isoformat(), "entity": {"id": 7, "name": "Padaria Pão & Cia Ltda",
                                                      "cnpj": "11222333000181"},
            "total": sum(t["total"] for t in topics), "topics": topics}


def with_guides(topics: list[dict[str, Any]]) -> None:
    """Each cause's guide from the shipped catalogue, and the causes reordered as the transform would
    (a company-level fix first, a retried cause last; otherwise as written)."""
    from billing_digest import guides

    catalogue = guides.load()
    for topic in topics:
        for cause in topic["causes"]:
            first = cause["invoices"][0]
            guide = catalogue.match(cause["step"], cause["kind"], cause["status"], cause["code"], first["message"])
            cause["guide"] = None if guide is None else guide.payload()
        topic["causes"].sort(key=lambda c: guides.FIX_ORDER[c["guide"] and c["guide"]["fix"]])


def worst_case_payload(max_items: int = 20, max_per_cause: int = 5) -> dict[str, Any]:
    """The biggest, most varied digest the settings allow, built by the real transform.

    Per topic: one cause on 30 invoices (a block with its "e mais"), then every other error of
    the catalogue for the topic's steps (NFS-e: one cause per city; e-mails: two addresses per
    cause), and missing steps; more causes than the budget lists. Long names, amounts up to
    R$ 50.000,00, some missing, invoices billed up to three weeks earlier.
    """
    import pandas as pd

    from billing_digest import assemble, guides, transform
    from devtools.datagen import catalogue

    rows: list[dict[str, Any]] = []

    def add(step: str, status: str, code: str | None, message: str, n: int, kind: str = "failed") -> None:
        for _ in range(n):
            i = len(rows) + 1
            rows.append({
                "invoice_id": i, "step": step, "kind": kind, "status": None if kind == "missing" else status,
                "entity_id": 7, "entity_name": "Supermercado Bom Preço Comércio de Alimentos e Bebidas Eireli",
                "entity_cnpj": "11222333000181",
                "customer_name": f"Condomínio Residencial Parque das Árvores Bloco {i} Administração Ltda",
                "invoice_number": f"FAT-2026-{100000 + i}",
                "amount": None if i % 11 == 0 else Decimal(50000) - Decimal(i * 37) / 100,
                "billing_date": DAY - dt.timedelta(days=(i % 4) * 7), "billing_type": ("automatic", "manual")[i % 2],
                "invoice_path": f"/faturamento/faturamentos/{i}", "error_code": code, "error_message": message,
                "attempts": 1 + i % 3, "last_attempt_at": None})

    steps = {"nfse": ["nfse"], "boleto": ["boleto"], "notification": ["charge_email", "overdue_email"]}
    for topic_steps in steps.values():
        big = next(k for k in catalogue.ERRORS if catalogue.STEPS[k.step] == topic_steps[0] and not k.placeholder)
        add(topic_steps[0], catalogue.STATUSES[big.status], big.code, big.message, 30)
        for kind in catalogue.ERRORS:
            step = catalogue.STEPS[kind.step]
            if step not in topic_steps or kind is big:
                continue
            status = catalogue.STATUSES[kind.status]
            if kind.placeholder == "city":      # one cause per city
                for city in catalogue.CITIES:
                    add(step, status, kind.code, kind.message + city, 1)
            elif kind.placeholder == "email":   # one cause, a different address per invoice
                for n in range(2):
                    add(step, status, kind.code, kind.message + f"financeiro{n}@cliente-com-nome-comprido.com.br", 1)
            else:
                add(step, status, kind.code, kind.message, 1)
        add(topic_steps[0], "", None, "", 2, kind="missing")
    errors = transform.prepare_errors(pd.DataFrame(rows), transform.Problems())
    return dict(assemble.build_entity_digests(errors, DAY, max_items, max_per_cause, guides.load())[7])
