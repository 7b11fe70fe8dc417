"""What counts as an e-mail address we may send to."""

from __future__ import annotations

import re

# Deliberately strict: one mailbox, no display name, no spaces, quotes, commas or brackets.
EMAIL_RE = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+")


def is_valid_email(address: str | None) -> bool:
    """One plain mailbox (surrounding whitespace ignored)."""
    return bool(address) and EMAIL_RE.fullmatch(address.strip()) is not None
