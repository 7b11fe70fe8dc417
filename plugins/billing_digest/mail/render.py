"""Render a company's digest for one recipient: the subject, the text and HTML bodies, the message.

Everything the recipient reads is pt-BR (:mod:`billing_digest.mail.formatting`). Recipients of one
company read the same topics: they are formatted (:mod:`billing_digest.mail.views`), rendered and
quoted-printable encoded once per company (``CompanyViews.entity_view``); a recipient's own parts
(first name, unsubscribe link) are rendered around them. Headers are :mod:`billing_digest.mail.headers`'
business, the MIME skeleton :mod:`billing_digest.mail.mime`'s.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

from markupsafe import Markup

from billing_digest import NOTIFICATION_KIND
from billing_digest.mail import headers, mime, templates
from billing_digest.mail.views import CompanyViews
from billing_digest.payload import EntityDigest
from billing_digest.settings import Settings
from billing_digest.sql import include_dir
from billing_digest.text import first_name
from billing_digest.unsubscribe.tokens import link as unsubscribe_link
from billing_digest.unsubscribe.tokens import make_token

# The start of a test (redirected) message's subject.
TEST_MARKER = "[TESTE] "
# Where the company's topics go in a recipient's message; the templates put the topics on a
# line of their own, so the separately QP-encoded pieces join exactly.
_SPLIT = "\n@@billing-digest-topics@@\n"
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
    """Templates compiled once; :meth:`message` builds one e-mail per (recipient, company digest)."""

    def __init__(self, settings: Settings, templates_dir: Path | None = None, cache_size: int = 256):
        self.settings = settings
        self.sender = headers.Sender.parse(settings.sender)
        self.templates = templates.load(Path(templates_dir or include_dir() / "templates"))
        self.companies = CompanyViews(settings, self.templates, cache_size)
        # The company's part, shared by its recipients (bound once: no extra call per message).
        self.entity_view = self.companies.entity_view
        self.preferences_url = self.companies.preferences_url
        self._date_for: dt.datetime | None = None
        self._date_header = ""

    @property
    def sender_addr(self) -> str:
        return self.sender.address

    def unsubscribe_url(self, user_id: int, now: dt.datetime) -> str:
        expires = int(now.timestamp()) + self.settings.unsubscribe_ttl_days * 86400
        # Round the expiry to the day so every message of a day carries the same link.
        expires -= expires % 86400
        token = make_token(self.settings.unsubscribe_secrets[0], user_id, NOTIFICATION_KIND, expires)
        return unsubscribe_link(self.settings, token)  # the unsubscribe_url setting, or base_url's

    # -- a recipient's message ----------------------------------------------------------
    def _context(self, view: dict[str, Any], first: str, unsubscribe_url: str,
                 test_for: str = "") -> dict[str, Any]:
        return {**view, "first_name": first, "unsubscribe_url": unsubscribe_url, "test_for": test_for}

    def render(self, payload: EntityDigest, recipient: Recipient, now: dt.datetime) -> Rendered:
        """Subject, text and HTML as the recipient reads them (used by previews and tests)."""
        view = self.entity_view(payload)
        context = self._context(view, first_name(recipient.name), self.unsubscribe_url(recipient.user_id, now))
        context["topics_html"] = Markup(view["topics_html"])
        return Rendered(view["subject"], self.templates.text.render(context), self.templates.html.render(context))

    def _frame(self, view: dict[str, Any], first: str, unsubscribe_url: str,
               test_for: str = "") -> tuple[str, str, str, str]:
        """(text head, text foot, HTML head, HTML foot): the recipient's own parts around the topics.

        (Rendering these once per company with markers for the name and link was measured: +20% render
        rate, nothing on the send rate, which the SMTP round trips set. Not worth its complexity.)"""
        context = self._context(view, first, unsubscribe_url, test_for)
        context["topics_text"] = context["topics_html"] = Markup(_SPLIT)
        text_head, text_foot = self.templates.text.render(context).split(_SPLIT)
        html_head, html_foot = self.templates.html.render(context).split(_SPLIT)
        return text_head, text_foot, html_head, html_foot

    def _bodies_qp(self, view: dict[str, Any], first: str, unsubscribe_url: str,
                   test_for: str = "") -> tuple[bytes, bytes]:
        """QP bodies: the recipient's own head and foot around the company's encoded topics."""
        text_head, text_foot, html_head, html_foot = self._frame(view, first, unsubscribe_url, test_for)
        return (mime.qp(text_head) + view["topics_text_qp"] + mime.qp(text_foot),
                mime.qp(html_head) + view["topics_html_qp"] + mime.qp(html_foot))

    def message_id(self, digest_date: str, entity_id: int, user_id: int) -> str:
        return headers.message_id(self.sender, digest_date, entity_id, user_id)

    def message(self, payload: EntityDigest, recipient: Recipient, now: dt.datetime,
                envelope_to: str | None = None) -> tuple[str, bytes]:
        """(Message-ID, message bytes). ``envelope_to``: a test redirect, which must look like one
        (:meth:`_test_parts`)."""
        view = self.entity_view(payload)
        entity_id = int(payload["entity"]["id"])
        if envelope_to:
            test = self._test_parts(view, payload, recipient)
            to, (subject, unsubscribe, mailto, message_id, test_for) = mime.address("", envelope_to), test
        else:
            to = mime.address(recipient.name, recipient.email)
            subject, unsubscribe = view["subject_header"], self.unsubscribe_url(recipient.user_id, now)
            mailto = headers.unsubscribe_mailto(self.settings.support_email, recipient.user_id)
            message_id, test_for = self.message_id(payload["digest_date"], entity_id, recipient.user_id), ""
        text_qp, html_qp = self._bodies_qp(view, first_name(recipient.name), unsubscribe, test_for)
        if now != self._date_for:
            self._date_for, self._date_header = now, format_datetime(now)
        lines = headers.digest_headers(
            self.sender, to=to, subject=subject, date=self._date_header, message_id=message_id,
            unsubscribe_url=unsubscribe, unsubscribe_mailto=mailto,
            digest_key=f"{payload['digest_date']}; entity={entity_id}; user={recipient.user_id}")
        return message_id, mime.build(lines, text_qp, html_qp, message_id)

    def _test_parts(self, view: dict[str, Any], payload: EntityDigest,
                    recipient: Recipient) -> tuple[str, str, str, str, str]:
        """A redirected (test) message: (subject, unsubscribe link, mailto, Message-ID, "meant for").
        The subject starts with ``TEST_MARKER``; the body says whom the digest was meant for; the
        Message-ID is its own (never the real digest's: a receiver deduplicating on it would drop the
        real one); its unsubscribe links lead to the preferences page, never turn the real user off."""
        subject = mime.encode_header(mime.clean_header(TEST_MARKER + view["subject"]))
        meant_for = f"{recipient.name} <{recipient.email}>" if recipient.name else recipient.email
        message_id = make_msgid(idstring=f"billing-errors-test.{payload['digest_date']}.{payload['entity']['id']}."
                                         f"{recipient.user_id}", domain=self.sender.domain)
        mailto = f"mailto:{self.settings.support_email}?subject=teste"
        return subject, self.preferences_url(), mailto, message_id, meant_for
