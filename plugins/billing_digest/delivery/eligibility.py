"""Who may receive a digest, decided at send time from the current state
(include/sql/deliver/recipient_status.sql), not from what was true when the digests were built."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from billing_digest.mail.addresses import parse


def ineligible_reason(status: Mapping[str, Any]) -> str | None:
    """Why this (company, user) may not receive the digest now (the ledger's skip reason), or None."""
    if not status["user_active"]:
        return "user_inactive"
    if not status["entity_active"]:
        return "entity_inactive"
    if not status["has_access"]:
        return "access_revoked"
    if not status["opted_in"]:
        return "opted_out"
    if parse(status["email"]) is None:
        return "invalid_email"
    if status.get("suppressed"):  # set by the send-time check of the suppression list
        return "suppressed"
    return None
