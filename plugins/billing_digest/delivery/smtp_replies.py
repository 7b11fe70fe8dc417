"""What an SMTP server's refusal means to delivery: permanent (5xx: this digest fails), transient (4xx, a
dropped connection: try again later), a throttle (a 4xx that says "too fast": slow the cluster down,
delivery/pace.py), or the server unavailable (the task fails). Pure: no connection here."""

from __future__ import annotations

import re
import smtplib


class SmtpError(Exception):
    """Base of the classified failures."""


class TransientError(SmtpError):
    """4xx reply or a dropped connection: try again later."""


class ThrottledError(TransientError):
    """A 4xx that says "too fast" (a rate or concurrency limit): slow down, then send it again.

    Not a failure of the message: SES drops a throttled message (``454 Throttling failure``), postfix
    counts refused attempts against the sender (``450 4.7.1 ... too much mail``), so the caller pauses
    the connection and cuts the send rate instead of retrying at once (see delivery/pace.py)."""


class PermanentError(SmtpError):
    """5xx reply for this message or recipient: do not try again."""


class SmtpUnavailable(SmtpError):
    """Cannot connect, negotiate TLS or log in: the whole batch must wait (task fails)."""



def reply_text(exc: smtplib.SMTPResponseException) -> str:
    """``"<code> <text>"`` of a refusal smtplib raised."""
    text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
    return f"{exc.smtp_code} {text}".strip()


# Replies that mean "you go too fast": SES's 454, Microsoft 365's 432 (4.3.2 concurrent connections), RFC 3463's
# 4.7.x (policy: rate, reputation), a 421 about too many connections, and the wording providers use.
_THROTTLE_CODES = frozenset({432, 454})
_ENHANCED_POLICY = re.compile(r"^\s*4\.7\.\d{1,3}\b")
# Not "quota exceeded" alone: 452 4.2.2 is a full mailbox, one recipient's problem, not our pace.
_THROTTLE_WORDS = re.compile(r"throttl|rate.?limit|too (?:much mail|many (?:connections|messages)|fast)|"
                             r"sending rate|slow down|concurrent connection", re.IGNORECASE)


def is_throttle(code: int, text: str) -> bool:
    """Whether a reply (its code and its text after the code) signals a rate or concurrency limit."""
    if not 400 <= code < 500:
        return False
    return code in _THROTTLE_CODES or bool(_ENHANCED_POLICY.match(text)) or bool(_THROTTLE_WORDS.search(text))


def classify(code: int, reply: str) -> SmtpError:
    """The failure a refusal means: 5xx permanent, a throttle, or another transient 4xx."""
    if 500 <= code < 600:
        return PermanentError(reply)
    text = reply.split(" ", 1)[1] if reply.startswith(str(code)) and " " in reply else reply
    return ThrottledError(reply) if is_throttle(code, text) else TransientError(reply)
