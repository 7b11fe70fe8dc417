"""The headers of a digest e-mail: who sends it, its identity, and what mail clients act on.

- ``Message-ID`` is deterministic per digest key (day, company, user) on the sender's domain,
  so a copy sent twice (the one-message window of docs/delivery.md) can be collapsed by receivers;
- ``List-Id``, ``List-Unsubscribe`` (an https link and a mailto:) with ``List-Unsubscribe-Post``
  (RFC 8058 one-click), ``Auto-Submitted`` (RFC 3834) and ``X-Auto-Response-Suppress``;
- ``X-Billing-Digest`` names the digest key for the data team and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parseaddr
from functools import cached_property

from billing_digest import NOTIFICATION_KIND
from billing_digest.mail import mime
from billing_digest.unsubscribe.tokens import ONE_CLICK

LIST_NAME = "Erros de faturamento"


@dataclass(frozen=True)
class Sender:
    name: str
    address: str

    @classmethod
    def parse(cls, sender: str) -> Sender:
        """``"Name <addr@domain>"`` (the ``sender`` setting); the address is required."""
        name, address = parseaddr(sender)
        if "@" not in address:
            raise ValueError(f"sender must contain an address: {sender!r}")
        return cls(name, address)

    @property
    def domain(self) -> str:
        return self.address.rsplit("@", 1)[1]

    @cached_property
    def header(self) -> str:
        return mime.address(self.name, self.address)


def message_id(sender: Sender, digest_date: str, entity_id: int, user_id: int) -> str:
    """Deterministic per digest key, on the sender's domain (receivers can dedupe on it)."""
    return f"<billing-errors.{digest_date}.{entity_id}.{user_id}@{sender.domain}>"


def unsubscribe_mailto(support_email: str, user_id: int) -> str:
    return f"mailto:{support_email}?subject=unsubscribe-{NOTIFICATION_KIND}-{user_id}"


def digest_headers(sender: Sender, *, to: str, subject: str, date: str, message_id: str,
                   unsubscribe_url: str, unsubscribe_mailto: str, digest_key: str) -> list[tuple[str, str]]:
    """The header lines, in order; ``to`` and ``subject`` already encoded (:mod:`billing_digest.mail.mime`)."""
    return [
        ("From", sender.header),
        ("To", to),
        ("Subject", subject),
        ("Date", date),
        ("Message-ID", message_id),
        ("List-Id", f"{LIST_NAME} <{NOTIFICATION_KIND}.{sender.domain}>"),
        ("List-Unsubscribe", f"<{unsubscribe_url}>, <{unsubscribe_mailto}>"),
        ("List-Unsubscribe-Post", "=".join(ONE_CLICK)),
        ("Auto-Submitted", "auto-generated"),
        ("X-Auto-Response-Suppress", "All"),
        ("X-Billing-Digest", digest_key),
    ]
