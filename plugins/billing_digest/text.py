"""Plain-text helpers for what people read, shared by the e-mail (``mail/``) and the unsubscribe
pages (``unsubscribe/``): kept here, below both, so neither room imports the other's."""

from __future__ import annotations


def first_name(name: str | None) -> str:
    """The first word of a person's name ("" when there is none): how the e-mail and the pages greet."""
    parts = (name or "").split()
    return parts[0] if parts else ""
