"""Asynchronous bounces: delivery status notifications (RFC 3464) read from a bounce mailbox.

Through a relay or a provider (SES, a company postfix) a dead mailbox is accepted with 250 and
bounces later, as an e-mail to the envelope sender. This module finds which digest and which
address each such message is about, and how it failed; :mod:`billing_digest.delivery.suppression`
classifies and records it like a refusal at send time.

- **VERP**: with the setting ``bounce_address`` (``bounces@fintera.com.br``), each digest goes out
  with the envelope sender ``bounces+d<ledger id>-<tag>@fintera.com.br``; the tag is an HMAC of the
  id (key: the unsubscribe secret; previous secrets still verify), so nobody can forge a bounce
  that suppresses someone else. A DSN then names its digest whatever the remote MTA writes; without
  a valid token it is ignored.
  Without ``bounce_address``, the DSN's own fields (Final-Recipient) name the address.
- **Parsing**: ``flufl.bounce`` (Mailman's detectors) finds the failed recipients of RFC 3464 DSNs
  and of the non-standard formats of old MTAs; the per-recipient fields of a ``message/delivery-status``
  part (Status, Diagnostic-Code, Action) give the enhanced status to classify. Delay warnings
  (Action: delayed) are not bounces.
- **The mailbox**: :func:`drain` reads a folder over IMAP (a ``imaplib`` client: the Airflow IMAP
  provider's, in ``airflow_glue``) and moves each message, once handled, to another folder, so each
  is read once; a crash between the two re-reads one message, which a hard bounce absorbs (already
  suppressed) and a soft one too (one per digest day).

No Airflow here: the glue hands in the IMAP client and the database connection.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import email.utils
import hashlib
import hmac
import imaplib
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import psycopg
from flufl.bounce import all_failures

from billing_digest import sql
from billing_digest.delivery.suppression import Bounce, SuppressionPolicy, classify, record_bounce
from billing_digest.mail.addresses import parse

log = logging.getLogger(__name__)

_TAG_CHARS = 10
_TOKEN = re.compile(rf"d(\d{{1,18}})-([0-9a-f]{{{_TAG_CHARS}}})")
# Where a DSN carries the envelope sender it was sent to (the VERP address).
_ADDRESSED_TO = ("Delivered-To", "X-Original-To", "To", "Envelope-To")


# -- VERP -------------------------------------------------------------------------------------------
def _tag(delivery_id: int, secret: str) -> str:
    return hmac.new(secret.encode(), f"bounce:{delivery_id}".encode(), hashlib.sha256).hexdigest()[:_TAG_CHARS]


def verp_sender(bounce_address: str, delivery_id: int, secret: str) -> str:
    """The envelope sender of one digest: ``bounces+d123-<tag>@domain`` for ``bounces@domain``."""
    local, domain = bounce_address.strip().rsplit("@", 1)
    return f"{local}+d{delivery_id}-{_tag(delivery_id, secret)}@{domain}"


def delivery_of(address: str, bounce_address: str, secrets: Sequence[str]) -> int | None:
    """The ledger row id a VERP address names, or None (not ours, or a forged or damaged tag).
    ``secrets``: the current and previous secrets (a rotated secret still verifies)."""
    local, _, domain = address.strip().strip("<>").rpartition("@")
    base_local, base_domain = bounce_address.strip().rsplit("@", 1)
    if domain.lower() != base_domain.lower() or not local.lower().startswith(base_local.lower() + "+"):
        return None
    found = _TOKEN.fullmatch(local[len(base_local) + 1:].lower())
    if not found:
        return None
    delivery_id = int(found.group(1))
    ok = any(hmac.compare_digest(found.group(2), _tag(delivery_id, s)) for s in secrets if s)
    return delivery_id if ok else None


# -- DSN parsing ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reported:
    """One failed recipient of one bounce message."""

    address: str          # the failed recipient as the report gives it (Final-Recipient, or flufl's)
    bounce: Bounce


def _addr(value: str | None) -> str:
    """``rfc822; ana@acme.com.br`` -> ``ana@acme.com.br``."""
    text = (value or "").split(";", 1)[-1].strip().strip("<>").strip()
    return text


def _recipient_fields(msg: email.message.Message) -> list[email.message.Message]:
    """The per-recipient field blocks of every ``message/delivery-status`` part."""
    blocks: list[email.message.Message] = []
    for part in msg.walk():
        if part.get_content_type() == "message/delivery-status":
            payload = part.get_payload()
            if isinstance(payload, list):
                blocks.extend(b for b in payload[1:] if b.get("Final-Recipient") or b.get("Original-Recipient"))
    return blocks


def read_report(raw: bytes) -> list[Reported]:
    """The failed recipients of one bounce message with how each failed; [] when it is not a bounce
    (an auto-reply, a delay warning, spam)."""
    msg = email.message_from_bytes(raw)
    reported: dict[str, Reported] = {}
    blocks = _recipient_fields(msg)
    for block in blocks:
        action = (block.get("Action") or "").strip().lower()
        if action not in ("failed", ""):  # delayed, delivered, relayed, expanded: not a bounce
            continue
        address = _addr(block.get("Final-Recipient")) or _addr(block.get("Original-Recipient"))
        diagnostic = " ".join((block.get("Diagnostic-Code") or "").split(";", 1)[-1].split())
        status = (block.get("Status") or "").strip() or None
        bounce = classify(diagnostic or f"Status {status}", status)
        if address and bounce:
            reported[address.lower()] = Reported(address, bounce)
    if not blocks:  # a non-standard report: flufl's detectors, the text to classify
        temporary, permanent = all_failures(msg)
        failed = {a.decode("utf-8", "replace").lower() for a in (*temporary, *permanent)}
        text = _text_of(msg)
        for address in sorted(failed):
            bounce = classify(text) or (Bounce("hard", None, "permanent failure (no status given)")
                                        if address.encode() in permanent else Bounce("soft", None, text[:200]))
            reported[address] = Reported(address, bounce)
    return list(reported.values())


def _text_of(msg: email.message.Message) -> str:
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return " ".join(payload.decode("utf-8", "replace").split())[:2000]
    return ""


def addressed_to(raw: bytes) -> list[str]:
    """The addresses a bounce message was delivered to (where its VERP token is)."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    found = []
    for name in _ADDRESSED_TO:
        for value in msg.get_all(name) or []:
            found.extend(a for _, a in email.utils.getaddresses([str(value)]) if a)
    return found


# -- recording --------------------------------------------------------------------------------------
def record_report(conn: psycopg.Connection, raw: bytes, bounce_address: str, secrets: Sequence[str],
                  policy: SuppressionPolicy, outcomes: Counter[str]) -> None:
    """Record what one bounce message reports in the suppression list (source ``dsn``), counted in
    ``outcomes``. With ``bounce_address`` set, only a message whose VERP token verifies counts, and
    the address suppressed is the one the ledger sent to (a forwarded mailbox bounces for its owner)."""
    reports = read_report(raw)
    if not reports:
        outcomes["not_a_bounce"] += 1
        return
    delivery_id = None
    if bounce_address:
        delivery_id = next((d for a in addressed_to(raw) if (d := delivery_of(a, bounce_address, secrets))), None)
        if delivery_id is None:
            outcomes["unverified"] += 1
            log.warning("bounce message without a valid VERP token for %s: ignored", bounce_address)
            return
    for report in reports[:1] if delivery_id else reports:
        address = parse(report.address)
        found = sql.rows(conn, "bounces/delivery", id=delivery_id, address=address.key if address else "")
        row = found[0] if found else None
        if delivery_id is not None:
            address = parse(row["sent_to"]) if row and row["sent_to"] else None
        if address is None:
            outcomes["unknown_address"] += 1
            continue
        standing = record_bounce(conn, address.key, row["user_id"] if row else None, report.bounce, "dsn", policy,
                                 digest_day=row["digest_date"] if row else None)
        outcomes[f"{report.bounce.kind}_bounce"] += 1
        outcomes["newly_suppressed"] += int(standing.newly_suppressed)


# -- the mailbox ------------------------------------------------------------------------------------
def drain(client: imaplib.IMAP4, folder: str, done_folder: str, handle: Callable[[bytes], None],
          limit: int = 5000) -> int:
    """Each message of ``folder`` handed to ``handle``, then moved to ``done_folder`` (created when
    missing); returns how many. A message ``handle`` raises on stays where it was (the next run
    tries it again) and the exception propagates."""
    client.create(done_folder)  # "already exists" is a NO reply, not an exception
    typ, _ = client.select(folder)
    if typ != "OK":
        raise RuntimeError(f"IMAP: cannot select folder {folder!r}")
    typ, data = client.uid("SEARCH", "ALL")  # type: ignore[arg-type]
    uids = data[0].split()[:limit] if typ == "OK" and data and data[0] else []
    can_move = "MOVE" in _capabilities(client)
    for uid in uids:
        typ, fetched = client.uid("FETCH", uid, "(BODY.PEEK[])")  # type: ignore[arg-type]
        raw = next((item[1] for item in fetched or [] if isinstance(item, tuple)), None)
        if typ != "OK" or raw is None:
            continue
        handle(raw)
        _move(client, uid, done_folder, can_move)
    if not can_move:
        client.expunge()
    return len(uids)


def _capabilities(client: imaplib.IMAP4) -> Iterable[str]:
    return {c.upper() for c in getattr(client, "capabilities", ())}


def _move(client: imaplib.IMAP4, uid: bytes, folder: str, can_move: bool) -> None:
    if can_move:
        typ, data = client.uid("MOVE", uid, folder)  # type: ignore[arg-type]
    else:
        typ, data = client.uid("COPY", uid, folder)  # type: ignore[arg-type]
        if typ == "OK":
            typ, data = client.uid("STORE", uid, "+FLAGS", r"(\Deleted)")  # type: ignore[arg-type]
    if typ != "OK":
        raise RuntimeError(f"IMAP: cannot move message {uid!r} to {folder!r}: {data!r}")
