"""The suppression list: mailboxes that bounced are not mailed again (issue 15).

A sender's reputation pays for every bounce (SES reviews an account at 5% bounces; Gmail and Yahoo
rate senders on them), and the commonest one in a B2B product is permanent: an ex-employee's deleted
mailbox behind an account that stayed active. So:

- a **hard bounce** (5xx with an RFC 3463 enhanced status naming a dead or unknown mailbox: 5.1.1,
  5.1.2, 5.1.3, 5.1.6, 5.1.10, 5.2.1; the reply text when there is no enhanced status) suppresses
  the mailbox at once;
- a **soft bounce** (mailbox full, 4.2.2 / 5.2.2, mail system full x.3.1, mailbox disabled for now
  4.2.1) adds ``soft_score`` to a bounce score, at most once per digest day (a task retry of the same
  digest is not another bounce); past ``threshold`` the mailbox is suppressed. A score whose last
  bounce is older than ``reset_after_days`` starts again from zero (Discourse's bounce score);
- other refusals (policy 5.7.x, size, network, throttling) say nothing about the mailbox: ignored here;
- a suppression lifts itself after ``ttl_days`` (Postal's 30 days), when the user's address changes,
  or by hand (``python -m billing_digest.delivery.suppression lift ADDRESS --by NAME``); each lift is
  recorded in the row and in ``digest.suppression_events``.

Bounces come from two places: the SMTP reply at send time (``delivery.deliver``) and the delivery
status notifications a relay mails back later (``billing_digest.bounces``). Both classify with
:func:`classify` and record with :func:`record_bounce`. Pure decisions (:func:`classify`,
:func:`after_bounce`) are apart from the SQL (include/sql/suppression/).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import psycopg

from billing_digest import sql

Kind = Literal["hard", "soft"]
Source = Literal["smtp", "dsn"]

# RFC 3463 enhanced status codes as subject.detail, by what they say of the mailbox.
_HARD = frozenset({"1.1", "1.2", "1.3", "1.6", "1.10", "2.1"})  # with class 5: bad address, moved, null MX, disabled
_SOFT = frozenset({"2.2", "3.1"})                               # mailbox full, mail system full (4 or 5)
_SOFT_TEMPORARY = frozenset({"2.1"})                            # 4.2.1: mailbox disabled for now
_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_REPLY_CODE = re.compile(r"^\s*([245])\d\d\b")
# When there is no enhanced status: what servers write. Not "mailbox unavailable": RFC 5321's text for
# any 550, policy refusals included.
_HARD_TEXT = re.compile(r"user unknown|unknown user|no such (?:user|mailbox|recipient|address)|mailbox not found|"
                        r"(?:mailbox|address|user|recipient) does not exist|unknown (?:recipient|mailbox)|"
                        r"invalid (?:recipient|mailbox)|address not found|account (?:has been )?disabled", re.I)
_SOFT_TEXT = re.compile(r"mailbox (?:is )?full|over ?quota|quota exceeded|exceeded (?:storage|quota)|"
                        r"insufficient (?:storage|space)", re.I)


@dataclass(frozen=True)
class Bounce:
    """What a refusal or a DSN says of a mailbox."""

    kind: Kind
    status: str | None  # the enhanced status, e.g. "5.1.1"
    reply: str          # the server's reply or the DSN's diagnostic


def enhanced_status(text: str) -> str | None:
    """The first RFC 3463 enhanced status code in ``text`` ("550 5.1.1 User unknown" -> "5.1.1")."""
    found = _STATUS.search(text)
    return ".".join(found.groups()) if found else None


def classify(reply: str, status: str | None = None) -> Bounce | None:
    """A hard or soft bounce, or None when the refusal says nothing about the mailbox.

    ``reply`` is an SMTP reply ("550 5.1.1 <a@b>: User unknown") or a DSN's diagnostic; ``status``
    an enhanced status already known (a DSN's Status field), else read from ``reply``."""
    status = status or enhanced_status(reply)
    reply = reply.strip()[:500]
    if status:
        cls, subject = status[0], status.split(".", 1)[1]
        if cls == "5" and subject in _HARD:
            return Bounce("hard", status, reply)
        if subject in _SOFT or (cls == "4" and subject in _SOFT_TEMPORARY):
            return Bounce("soft", status, reply)
        return None
    code = _REPLY_CODE.match(reply)
    if code and code.group(1) == "5" and _HARD_TEXT.search(reply):
        return Bounce("hard", None, reply)
    if code and code.group(1) in "45" and _SOFT_TEXT.search(reply):
        return Bounce("soft", None, reply)
    return None


#: A batch with at least this many hard bounces, and more of them than accepted messages, looks systemic.
SYSTEMIC_FLOOR = 10


def looks_systemic(hard_bounces: int, accepted: int) -> bool:
    """Whether a batch's hard bounces look like the SMTP server's fault rather than dead mailboxes: a
    relay that answers "5.1.1 user unknown" to everyone (a wrong route, a broken directory lookup) must
    not suppress every address. At least :data:`SYSTEMIC_FLOOR` of them, and more than were accepted
    (a normal day: a few dead mailboxes among hundreds accepted; a first run may find a backlog of
    them, still far fewer than the live ones)."""
    return hard_bounces >= SYSTEMIC_FLOOR and hard_bounces > accepted


@dataclass(frozen=True)
class SuppressionPolicy:
    """The settings ``bounce_score_threshold``, ``soft_bounce_score``, ``bounce_score_reset_days``,
    ``suppression_ttl_days`` (defaults from Discourse's bounce score and Postal's 30-day TTL)."""

    threshold: float = 4.0
    soft_score: float = 1.0
    reset_after_days: int = 30
    ttl_days: int = 30

    @classmethod
    def from_settings(cls, settings: Any) -> SuppressionPolicy:
        return cls(threshold=settings.bounce_score_threshold, soft_score=settings.soft_bounce_score,
                   reset_after_days=settings.bounce_score_reset_days, ttl_days=settings.suppression_ttl_days)


@dataclass(frozen=True)
class Standing:
    """A mailbox's row after a bounce (what :func:`after_bounce` decides)."""

    reason: str
    score: float
    count: int
    scored_on: dt.date | None
    suppressed_at: dt.datetime | None
    expires_at: dt.datetime | None
    newly_suppressed: bool


def after_bounce(prior: Mapping[str, Any] | None, bounce: Bounce, at: dt.datetime, digest_day: dt.date | None,
                 policy: SuppressionPolicy) -> Standing:
    """The mailbox's standing after ``bounce`` (``prior``: its row before, or None). Pure."""
    prior = prior or {}
    suppressed_at, expires_at = prior.get("suppressed_at"), prior.get("expires_at")
    still = suppressed_at is not None and expires_at is not None and expires_at > at
    last = prior.get("last_event_at")
    score = float(prior.get("bounce_score") or 0)
    if last is None or last < at - dt.timedelta(days=policy.reset_after_days):
        score = 0.0  # the score erodes: bounces older than the reset window no longer count
    scored_on = prior.get("last_scored_on")
    if bounce.kind == "soft" and (digest_day is None or digest_day != scored_on):
        score += policy.soft_score
        scored_on = digest_day
    count = int(prior.get("bounce_count") or 0) + 1
    if still:
        return Standing(prior["reason"], score, count, scored_on, suppressed_at, expires_at, False)
    if bounce.kind == "hard" or score >= policy.threshold:
        reason = "hard_bounce" if bounce.kind == "hard" else "soft_bounces"
        return Standing(reason, score, count, scored_on, at, at + dt.timedelta(days=policy.ttl_days), True)
    return Standing(prior.get("reason") or "soft_bounces", score, count, scored_on, None, None, False)


# -- SQL --------------------------------------------------------------------------------------------
def record_bounce(conn: psycopg.Connection, address: str, user_id: int | None, bounce: Bounce, source: Source,
                  policy: SuppressionPolicy, at: dt.datetime | None = None,
                  digest_day: dt.date | None = None) -> Standing:
    """Record one bounce of ``address`` (an ``Address.key``) in one transaction; its new standing.
    (A delivery calls it when its batch's threads are done: no other write shares the transaction.)"""
    at = at or dt.datetime.now(dt.UTC)
    with conn.transaction():
        found = sql.rows(conn, "suppression/load_for_update", address=address)
        standing = after_bounce(found[0] if found else None, bounce, at, digest_day, policy)
        sql.rows(conn, "suppression/upsert", address=address, user_id=user_id, reason=standing.reason,
              code=bounce.status, reply=bounce.reply, source=source, bounce_score=standing.score,
              bounce_count=standing.count, last_scored_on=standing.scored_on, at=at,
              suppressed_at=standing.suppressed_at, expires_at=standing.expires_at)
        _event(conn, address, at, f"{bounce.kind}_bounce", bounce.status,
               f"{bounce.reply} (score {standing.score:g})", source)
        if standing.newly_suppressed:
            _event(conn, address, at, "suppressed", bounce.status, standing.reason, source)
    return standing


def _event(conn: psycopg.Connection, address: str, at: dt.datetime, event: str, code: str | None,
           detail: str | None, source: str, actor: str | None = None) -> None:
    sql.rows(conn, "suppression/event", address=address, at=at, event=event, code=code, detail=detail,
          source=source, actor=actor)


def active(conn: psycopg.Connection, addresses: Sequence[str], now: dt.datetime | None = None
           ) -> dict[str, dict[str, Any]]:
    """The suppressed ones among ``addresses`` (``Address.key``), with reason, code and since when."""
    if not addresses:
        return {}
    rows = sql.rows(conn, "suppression/active", addresses=list(addresses), now=now or dt.datetime.now(dt.UTC))
    return {r["address"]: r for r in rows}


LiftReason = Literal["manual", "ttl", "address_changed"]


def lift(conn: psycopg.Connection, why: LiftReason, *, addresses: Sequence[str] = (),
         user_ids: Sequence[int] = (), actor: str | None = None, detail: str | None = None,
         now: dt.datetime | None = None) -> list[str]:
    """Lift suppressions, recorded; returns the lifted addresses. ``manual``: these ``addresses``;
    ``ttl``: every expired one; ``address_changed``: those of ``user_ids`` whose current address
    (the same position in ``addresses``) is another. One statement: atomic without a transaction
    block, so it never spans another thread's writes on a shared connection."""
    rows = sql.rows(conn, "suppression/lift", why=why, addresses=list(addresses), user_ids=list(user_ids),
                 actor=actor, detail=detail, now=now or dt.datetime.now(dt.UTC))
    return [r["address"] for r in rows]


# -- CLI --------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """``python -m billing_digest.delivery.suppression list | lift ADDRESS... --by NAME [--why TEXT]``.

    Connects with ``--dsn`` or ``BILLING_DIGEST_DB_DSN`` (a libpq connection string; empty: the
    libpq ``PG*`` variables)."""
    from billing_digest.mail.addresses import parse

    parser = argparse.ArgumentParser(prog="python -m billing_digest.delivery.suppression",
                                     description="the billing digest's suppression list")
    parser.add_argument("--dsn", default=os.environ.get("BILLING_DIGEST_DB_DSN", ""))
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="mailboxes suppressed now")
    lifting = commands.add_parser("lift", help="lift the suppression of these addresses (recorded)")
    lifting.add_argument("addresses", nargs="+")
    lifting.add_argument("--by", required=True, help="who lifts it (recorded)")
    lifting.add_argument("--why", default=None, help="why (recorded)")
    args = parser.parse_args(argv)
    with psycopg.connect(args.dsn, autocommit=True) as conn:
        if args.command == "list":
            for r in sql.rows(conn, "suppression/list", now=dt.datetime.now(dt.UTC)):
                print(f"{r['address']}\t{r['reason']}\t{r['code'] or '-'}\tsince {r['suppressed_at']:%Y-%m-%d %H:%M}"
                      f"\tuntil {r['expires_at']:%Y-%m-%d}\tuser {r['user_id']}\t{r['reply'] or ''}")
            return 0
        keys = []
        for given in args.addresses:
            address = parse(given)
            keys.append(address.key if address else given.strip().lower())
        lifted = lift(conn, "manual", addresses=keys, actor=args.by, detail=args.why)
        for key in keys:
            print(f"{key}: {'lifted' if key in lifted else 'not suppressed'}")
        return 0


if __name__ == "__main__":
    sys.exit(main())
