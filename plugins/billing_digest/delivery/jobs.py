"""What a batch's preparing thread hands its SMTP sender thread, in order (:data:`Job`), how a batch's
rows are cut into chunks, and what stops a batch early (:class:`Halt`), shared by its threads."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from billing_digest.delivery.ledger import State


@dataclass(frozen=True)
class Send:
    """Send this message, then record the outcome."""

    row: dict[str, Any]
    message_id: str
    message: bytes
    envelope_to: str
    smtputf8: bool = False  # a non-ASCII address: sent only if the server offers SMTPUTF8
    envelope_from: str | None = None  # a VERP sender naming this digest (setting bounce_address), else the From


@dataclass(frozen=True)
class Mark:
    """Record an outcome without sending (skipped, or a failure decided before sending)."""

    row: dict[str, Any]
    state: State
    reason: str | None
    attempts: int = 0


@dataclass(frozen=True)
class Unlock:
    """Release a chunk's row locks: every outcome of the chunk is recorded."""

    ids: list[int]


@dataclass(frozen=True)
class Lift:
    """Lift the suppressions of these users' former addresses (their address changed; recorded)."""

    user_ids: list[int]
    addresses: list[str]


Job = Send | Mark | Unlock | Lift


def chunks(rows: list[tuple[int, int]], size: int) -> Iterator[list[int]]:
    """Ids in chunks of about ``size``, never splitting one entity's recipients."""
    chunk: list[int] = []
    last_entity = None
    for row_id, entity_id in rows:
        if len(chunk) >= size and entity_id != last_entity:
            yield chunk
            chunk = []
        chunk.append(row_id)
        last_entity = entity_id
    if chunk:
        yield chunk


class Halt:
    """Stops a batch early: the first error of any of its threads (raised by the batch), or the server
    struggling (``stopped_early``: the rest is left for the task's retry). Once set, nothing more is
    prepared or sent; :meth:`wait` is a pause that ends early when it is set."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.error: BaseException | None = None
        self.stopped_early = False

    def fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        self._event.set()

    def stop(self, early: bool = False) -> None:
        self.stopped_early = self.stopped_early or early
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> None:
        self._event.wait(seconds)
