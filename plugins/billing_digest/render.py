"""Render a digest (Jinja2 templates in include/templates) into a ready-to-send message.

The HTML template's ``<style>`` block is inlined into ``style=""`` attributes once, when
the templates are loaded (css-inline), not per message. Everything the recipient reads is
pt-BR (Babel formats money and dates). Formatting of an entity's items is cached, since
every recipient of an entity reads the same items.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlencode

import css_inline
import jinja2
from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, get_currency_precision
from markupsafe import Markup, escape

from billing_digest import NOTIFICATION_KIND, mime
from billing_digest.settings import Settings
from billing_digest.sql import include_dir
from billing_digest.unsubscribe import make_token

LOCALE = Locale.parse("pt_BR")
# Tags every link so the product can tell a click from the digest from other traffic.
LINK_TAG = urlencode({"utm_source": "resumo-erros-faturamento", "utm_medium": "email"})
_BILLING_TYPES = {"automatic": "Automático", "manual": "Manual"}
_PROBLEMS = {
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
# Where the entity's cached topics go in a recipient's message; the templates put the
# topics on a line of their own, so the QP-encoded pieces join exactly.
_SPLIT = "\n@@billing-digest-topics@@\n"
# Where a recipient's first name and unsubscribe link go in a frame rendered once per entity
# (private-use characters: nothing a user types, and an entity whose text holds one is rendered
# per recipient instead).
_FIRST_MARK = "\ue000first-name\ue000"
_UNSUB_MARK = "\ue000unsubscribe-url\ue000"
_MARKS = (_FIRST_MARK, _UNSUB_MARK)


class _EntityView(NamedTuple):
    id: int
    name: str
    cnpj: str | None


class _ItemView(NamedTuple):
    customer: str
    number: str
    amount: str
    billing_date: str
    billing_type: str
    problem: str
    message: str
    code: str | None
    url: str


class _TopicView(NamedTuple):
    """Attribute access (not dict keys): Jinja's ``topic.title`` is then one ``getattr``."""

    title: str
    total: int
    entries: list[_ItemView]
    more: int
    list_url: str
_JINJA_STATEMENT = re.compile(r"{%.*?%}|{#.*?#}", re.S)


def inline_css(template_source: str, css: str, fragment: bool = False) -> str:
    """Inline ``css`` into the template's style attributes, keeping Jinja statements intact.

    Statements become HTML comments while the HTML parser runs (a comment is never moved,
    even inside a table), then are put back.
    """
    statements: list[str] = []

    def protect(match: re.Match[str]) -> str:
        statements.append(match.group(0))
        return f"<!--jinja-stmt-{len(statements) - 1}-->"

    protected = _JINJA_STATEMENT.sub(protect, template_source)
    if fragment:
        inlined = css_inline.inline_fragment(protected, css)
    else:
        inlined = css_inline.CSSInliner(extra_css=css).inline(protected)
    restored = re.sub(r"<!--jinja-stmt-(\d+)-->", lambda m: statements[int(m.group(1))], inlined)
    if _JINJA_STATEMENT.findall(restored) != statements:
        raise RuntimeError("CSS inlining changed the template's Jinja statements")
    return restored


CURRENCY = "BRL"


class _MoneyFormat:
    """Babel's pt-BR currency pattern, read once, applied without Babel's per-call overhead.

    ``format_currency`` looks up the locale's data, the currency's name and plural rules on every
    call (~20 µs); a digest shows up to 60 amounts. For the pattern pt-BR has (``¤ #,##0.00``:
    groups of 3, exactly the currency's digits) this does the same with ``str.format``; any other
    pattern, or a value with more decimals than the currency has, goes to ``format_currency``.
    The tests compare both paths.
    """

    def __init__(self, locale: Locale, currency: str):
        pattern = locale.currency_formats["standard"]
        symbols = locale.number_symbols[locale.default_numbering_system]
        symbol = locale.currency_symbols.get(currency, currency)
        self.locale, self.currency = locale, currency
        self.digits = get_currency_precision(currency)
        self.exponent = -self.digits
        self.fast = (pattern.grouping == (3, 3) and pattern.frac_prec == (self.digits, self.digits)
                     and pattern.int_prec[0] == 1 and pattern.exp_prec is None
                     and "%" not in pattern.pattern and "‰" not in pattern.pattern)
        self.prefix = tuple(p.replace("¤", symbol) for p in pattern.prefix)
        self.suffix = tuple(p.replace("¤", symbol) for p in pattern.suffix)
        self.table = str.maketrans({",": symbols["group"], ".": symbols["decimal"]})
        self.spec = f",.{self.digits}f"

    def __call__(self, value: Decimal) -> str:
        if not self.fast or not value.is_finite() or value.as_tuple().exponent < self.exponent:
            return format_currency(value, self.currency, locale=self.locale)
        negative = value.is_signed()  # as Babel: -0.00 keeps its sign
        number = format(-value if negative else value, self.spec).translate(self.table)
        return f"{self.prefix[negative]}{number}{self.suffix[negative]}"


_money = _MoneyFormat(LOCALE, CURRENCY)


def money(amount: str | Decimal | None) -> str:
    if amount is None:
        return "valor não informado"
    try:
        value = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    except InvalidOperation:
        return format_currency(Decimal(str(amount)), CURRENCY, locale=LOCALE)  # raises as before
    return _money(value)


@functools.lru_cache(maxsize=4096)
def date_br(value: str | dt.date | None) -> str:
    if value is None:
        return "data não informada"
    if isinstance(value, str):
        value = dt.date.fromisoformat(value)
    return format_date(value, "dd/MM/yyyy", locale=LOCALE)


def cnpj_br(cnpj: str | None) -> str | None:
    digits = re.sub(r"\D", "", cnpj or "")
    if len(digits) != 14:
        return cnpj or None
    return f"{digits[:2]}.{digits[2:5]}.{digits[5:8]}/{digits[8:12]}-{digits[12:]}"


def first_name(name: str | None) -> str:
    parts = (name or "").split()
    return parts[0] if parts else ""


@functools.lru_cache(maxsize=8)
def _compile_templates(folder: str, stamp: tuple[tuple[str, int], ...]) -> tuple[Any, ...]:
    """The Jinja environment and compiled templates of a folder, once per process (and per
    version of its files, ``stamp``): a Renderer per batch then costs no compilation (~60 ms)."""
    loader = jinja2.FileSystemLoader(folder)
    # HTML templates are autoescaped; text templates are plain (select_autoescape also
    # escapes from_string() templates, which is how the CSS-inlined HTML is compiled).
    env = jinja2.Environment(
        loader=loader, autoescape=jinja2.select_autoescape(["html", "html.j2"]),
        trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined,
    )
    css = (Path(folder) / "digest.css").read_text(encoding="utf-8")
    html = env.from_string(inline_css(loader.get_source(env, "digest.html.j2")[0], css))
    topics_html = env.from_string(inline_css(loader.get_source(env, "_topics.html.j2")[0], css, fragment=True))
    return (env, html, topics_html, env.get_template("digest.txt.j2"), env.get_template("_topics.txt.j2"),
            env.get_template("subject.txt.j2"))


@dataclass(frozen=True)
class Recipient:
    user_id: int
    name: str
    email: str


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


class Renderer:
    """Templates compiled once; :meth:`message` builds one e-mail per (recipient, entity digest)."""

    def __init__(self, settings: Settings, templates_dir: Path | None = None, cache_size: int = 256):
        self.settings = settings
        self.base_url = settings.base_url.rstrip("/")
        self.sender_name, self.sender_addr = parseaddr(settings.sender)
        if "@" not in self.sender_addr:
            raise ValueError(f"sender must contain an address: {settings.sender!r}")
        self.sender_domain = self.sender_addr.rsplit("@", 1)[1]
        folder = Path(templates_dir or include_dir() / "templates")
        stamp = tuple(sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file()))
        self.env, self.html, self.topics_html, self.text, self.topics_text, self.subject = \
            _compile_templates(str(folder), stamp)
        self._views: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
        self._cache_size = cache_size
        self._from_header = mime.address(self.sender_name, self.sender_addr)
        self._date_for: dt.datetime | None = None
        self._date_header = ""
        self._check_frames()

    # -- links -------------------------------------------------------------------------
    def url(self, path: str, **params: str) -> str:
        query = f"{urlencode(params)}&{LINK_TAG}" if params else LINK_TAG
        return f"{self.base_url}{path}{'&' if '?' in path else '?'}{query}"

    def preferences_url(self) -> str:
        return f"{self.base_url}/meu-perfil/notificacoes"

    def unsubscribe_url(self, user_id: int, now: dt.datetime) -> str:
        expires = int(now.timestamp()) + self.settings.unsubscribe_ttl_days * 86400
        # Round the expiry to the day so every message of a day carries the same link.
        expires -= expires % 86400
        token = make_token(self.settings.unsubscribe_secret, user_id, NOTIFICATION_KIND, expires)
        return f"{self.base_url}/notificacoes/cancelar?{urlencode({'token': token})}"

    # -- view --------------------------------------------------------------------------
    def entity_view(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Everything recipients of one entity share, formatted once."""
        # Keyed by the payload object itself (kept alive in the cache): recipients of an entity
        # share one payload object, and a changed payload is a new object, never a stale hit.
        key = id(payload)
        cached = self._views.get(key)
        if cached is not None and cached[0] is payload:
            return cached[1]
        entity = payload["entity"]
        date = date_br(payload["digest_date"])
        topics = []
        for topic in payload["topics"]:
            items = []
            for item in topic["items"]:
                problem = _PROBLEMS.get((item["step"], item["kind"] if item["kind"] == "missing"
                                         else item.get("status") or "failed"), "Erro")
                if item.get("attempts", 0) > 1:
                    problem += f" ({item['attempts']} tentativas)"
                items.append(_ItemView(
                    customer=item["customer"], number=item["number"],
                    amount=money(item["amount"]), billing_date=date_br(item["billing_date"]),
                    billing_type=_BILLING_TYPES.get(item.get("billing_type") or "", "Tipo não informado"),
                    problem=problem, message=item["message"], code=item.get("code"),
                    url=self.url(item["path"]),
                ))
            topics.append(_TopicView(
                title=topic["title"], total=topic["total"], entries=items, more=topic["more"],
                list_url=self.url("/faturamento/faturamentos", entidade=str(entity["id"]),
                                  data=payload["digest_date"], erro=topic["code"]),
            ))
        view = {
            "entity": _EntityView(entity["id"], entity["name"], cnpj_br(entity.get("cnpj"))),
            "date": date, "total": payload["total"], "topics": topics,
            "support_email": self.settings.support_email,
            "preferences_url": self.preferences_url(),
        }
        view["subject"] = mime.clean_header(self.subject.render(view))
        view["subject_header"] = mime.encode_header(view["subject"])
        view["topics_html"] = self.topics_html.render(view)
        view["topics_text"] = self.topics_text.render(view)
        view["topics_html_qp"] = mime.qp(view["topics_html"])
        view["topics_text_qp"] = mime.qp(view["topics_text"])
        view["frames"] = {}
        if len(self._views) >= self._cache_size:
            self._views.pop(next(iter(self._views)))
        self._views[key] = (payload, view)
        return view

    def _context(self, view: dict[str, Any], first: str, unsubscribe_url: str) -> dict[str, Any]:
        return {**view, "first_name": first, "unsubscribe_url": unsubscribe_url}

    def render(self, payload: dict[str, Any], recipient: Recipient, now: dt.datetime) -> Rendered:
        """Subject, text and HTML as the recipient reads them (used by previews and tests)."""
        view = self.entity_view(payload)
        context = self._context(view, first_name(recipient.name), self.unsubscribe_url(recipient.user_id, now))
        context["topics_html"] = Markup(view["topics_html"])
        return Rendered(view["subject"], self.text.render(context), self.html.render(context))

    def _frame(self, view: dict[str, Any], first: str, unsubscribe_url: str) -> tuple[str, str, str, str]:
        """(text head, text foot, HTML head, HTML foot) of one recipient around the entity's topics.

        The templates are rendered once per entity (and per "has a first name or not"), with
        markers where the recipient's first name and unsubscribe link go; a recipient's frame is
        the markers replaced (HTML-escaped in the HTML), which is what rendering would give
        (checked on a probe when the renderer is built, else every frame is rendered).
        """
        if not self._frames_ok:
            return self._render_frame(view, first, unsubscribe_url)
        frame = view["frames"].get(bool(first))
        if frame is None:
            frame = self._render_frame(view, _FIRST_MARK if first else "", _UNSUB_MARK)
            if [sum(part.count(m) for part in frame) for m in _MARKS] != self._mark_counts[bool(first)]:
                frame = ()  # the entity's own text holds a marker: render each recipient
            view["frames"][bool(first)] = frame
        if not frame:
            return self._render_frame(view, first, unsubscribe_url)
        first_html, unsubscribe_html = str(escape(first)), str(escape(unsubscribe_url))
        text_head, text_foot, html_head, html_foot = frame
        return (text_head.replace(_FIRST_MARK, first).replace(_UNSUB_MARK, unsubscribe_url),
                text_foot.replace(_FIRST_MARK, first).replace(_UNSUB_MARK, unsubscribe_url),
                html_head.replace(_FIRST_MARK, first_html).replace(_UNSUB_MARK, unsubscribe_html),
                html_foot.replace(_FIRST_MARK, first_html).replace(_UNSUB_MARK, unsubscribe_html))

    def _render_frame(self, view: dict[str, Any], first: str, unsubscribe_url: str) -> tuple[str, str, str, str]:
        context = self._context(view, first, unsubscribe_url)
        context["topics_text"] = context["topics_html"] = Markup(_SPLIT)
        text_head, text_foot = self.text.render(context).split(_SPLIT)
        html_head, html_foot = self.html.render(context).split(_SPLIT)
        return text_head, text_foot, html_head, html_foot

    def _check_frames(self) -> None:
        """Use marker frames only if, on a probe, they give exactly what rendering gives."""
        self._frames_ok, self._mark_counts = False, {}
        probe = {"digest_date": "2026-01-02", "entity": {"id": 1, "name": "Probe & <Co>", "cnpj": None},
                 "total": 1, "topics": []}
        view = self.entity_view(probe)
        for first in ("Zé <b>&amp;", ""):
            unsubscribe = self.unsubscribe_url(7, dt.datetime(2026, 1, 2, tzinfo=dt.UTC)) + "&x=<'\">"
            frame = self._render_frame(view, _FIRST_MARK if first else "", _UNSUB_MARK)
            self._mark_counts[bool(first)] = [sum(part.count(m) for part in frame) for m in _MARKS]
            self._frames_ok = True
            fast = self._frame({**view, "frames": {}}, first, unsubscribe)
            self._frames_ok = fast == self._render_frame(view, first, unsubscribe)
            if not self._frames_ok:
                break
        self._views.clear()

    def _bodies_qp(self, view: dict[str, Any], first: str, unsubscribe_url: str) -> tuple[bytes, bytes]:
        """QP bodies: the recipient's own head and foot around the entity's cached, encoded topics."""
        text_head, text_foot, html_head, html_foot = self._frame(view, first, unsubscribe_url)
        return (mime.qp(text_head) + view["topics_text_qp"] + mime.qp(text_foot),
                mime.qp(html_head) + view["topics_html_qp"] + mime.qp(html_foot))

    # -- message -----------------------------------------------------------------------
    def message_id(self, digest_date: str, entity_id: int, user_id: int) -> str:
        """Deterministic per digest key, on the sender's domain (receivers can dedupe on it)."""
        return f"<billing-errors.{digest_date}.{entity_id}.{user_id}@{self.sender_domain}>"

    def message(self, payload: dict[str, Any], recipient: Recipient, now: dt.datetime,
                envelope_to: str | None = None) -> tuple[str, bytes]:
        """(Message-ID, message bytes). ``envelope_to`` replaces the To address (test redirects)."""
        view = self.entity_view(payload)
        unsubscribe = self.unsubscribe_url(recipient.user_id, now)
        text_qp, html_qp = self._bodies_qp(view, first_name(recipient.name), unsubscribe)
        entity_id = int(payload["entity"]["id"])
        message_id = self.message_id(payload["digest_date"], entity_id, recipient.user_id)
        mailto = f"mailto:{self.settings.support_email}?subject=unsubscribe-{NOTIFICATION_KIND}-{recipient.user_id}"
        if now != self._date_for:
            self._date_for, self._date_header = now, format_datetime(now)
        headers = [
            ("From", self._from_header),
            ("To", mime.address(recipient.name, envelope_to or recipient.email)),
            ("Subject", view["subject_header"]),
            ("Date", self._date_header),
            ("Message-ID", message_id),
            ("List-Id", f"Erros de faturamento <{NOTIFICATION_KIND}.{self.sender_domain}>"),
            ("List-Unsubscribe", f"<{unsubscribe}>, <{mailto}>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            ("Auto-Submitted", "auto-generated"),
            ("X-Auto-Response-Suppress", "All"),
            ("X-Billing-Digest", f"{payload['digest_date']}; entity={entity_id}; user={recipient.user_id}"),
        ]
        return message_id, mime.build(headers, text_qp, html_qp, message_id)
