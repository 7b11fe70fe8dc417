"""The company's part of a digest, formatted once for all its recipients: pt-BR labels, links into the
product (tagged for the product's analytics), and the views the templates read (:class:`CompanyViews`).

Everything here is shared by a company's recipients; :mod:`billing_digest.mail.render` renders it
once per company and puts each recipient's own parts (first name, unsubscribe link) around it.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple
from urllib.parse import quote_plus, urlencode

from billing_digest import causes, product
from billing_digest.mail import mime, templates
from billing_digest.mail.formatting import cnpj_br, date_br, money
from billing_digest.payload import CauseDigest, CauseGuide, EntityDigest, ErrorItem, TopicDigest
from billing_digest.settings import Settings

# Tags every link so the product can tell a click from the digest from other traffic.
LINK_TAG = urlencode({"utm_source": "resumo-erros-faturamento", "utm_medium": "email"})
BILLING_TYPES = {"automatic": "Faturamento automático", "manual": "Faturamento manual"}
PROBLEMS = {
    ("nfse", "failed"): "Falha na emissão da NFS-e",
    ("nfse", "rejected"): "NFS-e rejeitada",
    ("nfse", "missing"): "NFS-e não emitida",
    ("boleto", "failed"): "Falha na emissão do boleto",
    ("boleto", "rejected"): "Boleto recusado pelo banco",
    ("boleto", "missing"): "Boleto não emitido",
    ("charge_email", "failed"): "Falha no envio do e-mail de cobrança",
    ("charge_email", "rejected"): "E-mail de cobrança rejeitado",
    ("charge_email", "missing"): "Cliente não notificado da cobrança",
    ("overdue_email", "failed"): "Falha no envio do aviso de inadimplência",
    ("overdue_email", "rejected"): "Aviso de inadimplência rejeitado",
}


# Characters urlencode leaves as they are: most values (ids, dates, codes) need no quoting at all.
_UNQUOTED = re.compile(r"[A-Za-z0-9_.~-]*")


def _query(params: dict[str, str]) -> str:
    """``urlencode(params)``, without its cost for values that need no quoting (a block has a link)."""
    return "&".join(f"{k}={v if _UNQUOTED.fullmatch(v) else quote_plus(v)}" for k, v in params.items())


class EntityView(NamedTuple):
    id: int
    name: str
    cnpj: str | None


class ItemView(NamedTuple):
    """One invoice: a card of its own (a cause that hit one invoice) or a row of a cause's block."""

    customer: str
    number: str                 # labelled: "Nº FAT-2026-004512"
    amount: str
    billing_type: str           # "Faturamento automático" / "Faturamento manual"; "" when unknown
    billed: str                 # "faturado em 04/11/2026" when not the digest's day; "" when it is
    detail: str | None          # in a block: what this invoice's message adds (e.g. the bounced address)
    url: str


class GuideView(NamedTuple):
    """What to do about a cause (its catalogue entry, :mod:`billing_digest.guides`), said once per block."""

    company: bool               # one change in the company's configuration clears the block: shown first, in bold
    retries: bool               # the product retries by itself: "nada a fazer"
    action: str                 # the catalogue's pt-BR action line
    scope: str                  # "Uma correção na configuração da empresa resolve os 59 de uma vez."; "" when none
    url: str | None             # the page where it is fixed (with the link tags); None: the invoices' own pages
    link: str                   # "Abrir Contas bancárias"
    same_as_above: bool         # the block above has the same guide: "igual ao item acima", said once


class CauseView(NamedTuple):
    single: bool                # one invoice: rendered as a card, as before blocks existed
    problem: str                # "Falha na emissão do boleto"; a card's says its attempts
    message: str
    code: str | None            # None when the message already says it: each code once
    count: int
    amount: str                 # the invoices' total, and how many have no amount
    entries: list[ItemView]
    more: int
    list_url: str
    guide: GuideView | None     # None: no catalogue entry, the block reads as before guides existed


class TopicView(NamedTuple):
    """Attribute access (not dict keys): Jinja's ``topic.title`` is then one ``getattr``."""

    title: str
    total: int
    causes: list[CauseView]
    other_causes: int
    other_errors: int
    list_url: str


def cause_label(step: str, kind: str, status: str | None) -> str:
    """What went wrong, in a few words, e.g. "NFS-e rejeitada"."""
    outcome = kind if kind == "missing" else status or "failed"
    return PROBLEMS.get((step, outcome), "Erro")


def problem_label(item: ErrorItem) -> str:
    """A card's problem, with its attempts, e.g. "NFS-e rejeitada (3 tentativas)"."""
    label = cause_label(item["step"], item["kind"], item.get("status"))
    return label + (f" ({item['attempts']} tentativas)" if item.get("attempts", 0) > 1 else "")


def billed_label(billing_date: str | None, digest_date: str) -> str:
    """Why an older invoice is in today's digest: when it was billed, if not on the digest's day."""
    if billing_date == digest_date:
        return ""
    return f"faturado em {date_br(billing_date)}" if billing_date else "data de faturamento não informada"


def total_label(cause: CauseDigest) -> str:
    """"R$ 34.567,89", "R$ 1.200,00 (2 sem valor informado)", or "valor não informado"."""
    if cause["amount_total"] is None:
        return "valor não informado"
    missing = cause["amounts_missing"]
    return money(cause["amount_total"]) + (f" ({missing} sem valor informado)" if missing else "")


def scope_label(fix: str, count: int) -> str:
    """How far one fix goes, in pt-BR: a company-level fix says it clears the whole block at once."""
    if fix == "company":
        if count > 1:
            return f"Uma correção na configuração da empresa resolve os {count} de uma vez."
        return "A correção é feita uma vez, na configuração da empresa."
    if fix == "invoice":
        return f"A correção é feita em cada um dos {count} faturamentos." if count > 1 else ""
    return "A nova tentativa é automática: não é preciso fazer nada."


class CompanyViews:
    """The company's part of its recipients' messages (:meth:`entity_view`): formatted, rendered and
    encoded once per company, kept for the next ``cache_size`` companies; and the links it carries."""

    def __init__(self, settings: Settings, compiled: templates.Templates, cache_size: int = 256):
        self.settings = settings
        self.base_url = settings.base_url.rstrip("/")
        self.templates = compiled
        self._views: dict[int, tuple[EntityDigest, dict[str, Any]]] = {}
        self._cache_size = cache_size

    def url(self, path: str, **params: str) -> str:
        query = f"{_query(params)}&{LINK_TAG}" if params else LINK_TAG
        return f"{self.base_url}{path}{'&' if '?' in path else '?'}{query}"

    def preferences_url(self) -> str:
        return f"{self.base_url}{product.PREFERENCES}"

    def entity_view(self, payload: EntityDigest) -> dict[str, Any]:
        """Everything recipients of one company share, formatted, rendered and encoded once."""
        # Keyed by the payload object itself (kept alive in the cache): recipients of a company
        # share one payload object, and a changed payload is a new object, never a stale hit.
        cached = self._views.get(id(payload))
        if cached is not None and cached[0] is payload:
            return cached[1]
        view = self._format(payload)
        view["subject"] = mime.clean_header(self.templates.subject.render(view))
        view["subject_header"] = mime.encode_header(view["subject"])
        view["topics_html"] = self.templates.topics_html.render(view)
        view["topics_text"] = self.templates.topics_text.render(view)
        view["topics_html_qp"] = mime.qp(view["topics_html"])
        view["topics_text_qp"] = mime.qp(view["topics_text"])
        if len(self._views) >= self._cache_size:
            self._views.pop(next(iter(self._views)))
        self._views[id(payload)] = (payload, view)
        return view

    def _item(self, item: ErrorItem, digest_date: str) -> ItemView:
        return ItemView(
            customer=item["customer"], number=f"Nº {item['number']}", amount=money(item["amount"]),
            billing_type=BILLING_TYPES.get(item.get("billing_type") or "", ""),
            billed=billed_label(item["billing_date"], digest_date), detail=item.get("detail"),
            url=self.url(item["path"]),
        )

    def _guide(self, guide: CauseGuide | None, count: int, above: CauseGuide | None) -> GuideView | None:
        if guide is None:
            return None
        path, page = guide.get("path"), guide.get("page")
        return GuideView(
            company=guide["fix"] == "company", retries=guide["fix"] == "none", action=guide["action"],
            scope=scope_label(guide["fix"], count), url=self.url(path) if path else None,
            link=f"Abrir {page}" if page else "", same_as_above=above is not None and above["id"] == guide["id"],
        )

    def _cause(self, cause: CauseDigest, day: str, list_params: dict[str, str],
               above: CauseGuide | None) -> CauseView:
        single = cause["count"] == 1 and len(cause["invoices"]) == 1
        code = cause["code"]
        return CauseView(
            single=single,
            problem=(problem_label(cause["invoices"][0]) if single
                     else cause_label(cause["step"], cause["kind"], cause["status"])),
            message=cause["message"],
            code=None if causes.code_in_message(code, cause["message"]) else code,
            count=cause["count"], amount=total_label(cause),
            entries=[self._item(item, day) for item in cause["invoices"]], more=cause["more"],
            # The product's list, filtered to the topic, the step and (when there is one) the code.
            list_url=self.url(product.INVOICES, **list_params, etapa=cause["step"],
                              **({"codigo": code} if code else {})),
            guide=self._guide(cause.get("guide"), cause["count"], above),
        )

    def _topic(self, topic: TopicDigest, entity_id: int, day: str) -> TopicView:
        list_params = {"entidade": str(entity_id), "data": day, "erro": topic["code"]}
        cause_views = []
        above: CauseGuide | None = None
        for cause in topic["causes"]:
            cause_views.append(self._cause(cause, day, list_params, above))
            above = cause.get("guide")
        return TopicView(
            title=topic["title"], total=topic["total"], causes=cause_views,
            other_causes=topic["other_causes"], other_errors=topic["other_errors"],
            list_url=self.url(product.INVOICES, **list_params),
        )

    def _format(self, payload: EntityDigest) -> dict[str, Any]:
        entity = payload["entity"]
        day = payload["digest_date"]
        return {
            "entity": EntityView(entity["id"], entity["name"], cnpj_br(entity.get("cnpj"))),
            "date": date_br(day), "total": payload["total"],
            "topics": [self._topic(topic, entity["id"], day) for topic in payload["topics"]],
            "causes": sum(len(t["causes"]) + t["other_causes"] for t in payload["topics"]),
            "support_email": self.settings.support_email,
            "preferences_url": self.preferences_url(),
        }
