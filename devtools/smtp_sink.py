"""A real SMTP server (aiosmtpd) that keeps every message: in memory and/or as ``.eml`` files.

It can also misbehave on cue (see :class:`Faults`) so tests inject real SMTP failures, be slow
(``delay``), count what it received per digest (``counts()``: the ``X-Billing-Digest`` header names
the day, company and user) and the connections open at once (``open_connections``,
``peak_connections``), and write a journal that survives its own SIGKILL.

``python -m devtools.smtp_sink --port P --journal FILE [--delay-ms D] [--hold-at N]`` runs one in its
own process (the crash tests kill it); :func:`read_journal` reads what it received.
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import json
import os
import socket
import sys
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

#: (digest day, company, user): one digest, what the delivery ledger promises once.
DigestKey = tuple[str, int, int]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def digest_key(header: str) -> DigestKey:
    """``2026-11-27; entity=12; user=34`` (the ``X-Billing-Digest`` header) -> ('2026-11-27', 12, 34)."""
    day, entity, user = (part.split("=")[-1].strip() for part in header.split(";"))
    return day, int(entity), int(user)


def _header(data: bytes, name: bytes) -> str | None:
    """One header's value, without parsing the whole message."""
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    prefix = name.lower() + b":"
    for line in head.splitlines():
        if line.lower().startswith(prefix):
            return line[len(prefix):].strip().decode("utf-8", "replace")
    return None


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    connection: str = ""

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]

    @property
    def key(self) -> DigestKey | None:
        header = _header(self.data, b"X-Billing-Digest")
        return digest_key(header) if header else None


@dataclass
class Faults:
    """Cues for misbehaviour. Each hook returns an SMTP reply string to refuse, or None to accept.

    ``on_rcpt(address)`` and ``on_data(envelope)`` run per message; ``drop_after`` closes the
    connection (without a reply) when the n-th message's DATA arrives, once. ``on_connect()`` runs per
    connection before the greeting and ``on_ehlo(hostname)`` per EHLO: a reply replaces the greeting (or the
    EHLO's) and the server closes the connection, as postfix does past ``smtpd_client_connection_count_limit``
    (``421 4.7.0 ... too many connections``). A ``throttle_sink.RateGate`` fits each of them
    (``refuse_nth=range(1, K + 1)``: the first K connections).
    """

    on_rcpt: Callable[[str], str | None] | None = None
    on_data: Callable[[Envelope], str | None] | None = None
    drop_after: int | None = None
    on_connect: Callable[[], str | None] | None = None
    on_ehlo: Callable[[str], str | None] | None = None


@dataclass
class Sink:
    outbox: Path | None = None
    faults: Faults = field(default_factory=Faults)
    messages: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    data_count: int = 0
    first_index: int = 0  # .eml files are numbered after this (keeps earlier runs' files)
    delay: float = 0.0  # seconds each DATA waits before it is accepted (a slow server; other sessions go on)
    hold_at: int | None = None  # the n-th DATA is never answered (a test kills the sink while it hangs there)
    journal: Path | None = None  # one JSON line per event, written before the reply: survives a SIGKILL
    connections: int = 0  # SMTP connections accepted so far
    open_connections: int = 0
    peak_connections: int = 0  # most connections open at once
    current_peer: Any = None  # (host, port) of the client whose DATA hooks are running now
    _journal_fd: int | None = None

    def __post_init__(self) -> None:
        if self.journal is not None:
            self._journal_fd = os.open(self.journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def _log(self, event: str, **fields: Any) -> None:
        if self._journal_fd is not None:  # one write(2) per line, O_APPEND: whole lines, in order
            os.write(self._journal_fd, (json.dumps({"event": event, **fields}) + "\n").encode())

    def connection_opened(self) -> str:
        with self.lock:
            self.connections += 1
            self.open_connections += 1
            self.peak_connections = max(self.peak_connections, self.open_connections)
            name = f"{os.getpid()}.{self.connections}"
            self._log("open", conn=name, open=self.open_connections)
        return name

    def connection_closed(self, name: str) -> None:
        with self.lock:
            self.open_connections -= 1
            self._log("close", conn=name, open=self.open_connections)

    def reset_peak(self) -> None:
        with self.lock:
            self.peak_connections = self.open_connections

    def counts(self) -> Counter[DigestKey]:
        """How many times each digest was received."""
        with self.lock:
            return Counter(k for m in self.messages if (k := m.key) is not None)

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
                          responses: list[str]) -> list[str]:
        if self.faults.on_ehlo:
            reply = self.faults.on_ehlo(hostname)
            if reply:
                await server.push(reply)
                server.transport.close()  # type: ignore[union-attr]
                return []
        session.host_name = hostname  # aiosmtpd leaves it to a handler with this hook (MAIL needs it)
        return responses

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if self.faults.on_rcpt:
            reply = self.faults.on_rcpt(address)
            if reply:
                return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            self.data_count += 1
            n = self.data_count
        connection = getattr(server, "connection_name", "")
        if self.faults.drop_after is not None and n == self.faults.drop_after + 1:
            self.faults.drop_after = None
            server.transport.close()  # type: ignore[union-attr]
            return "421 dropped"  # never reaches the client: the transport is gone
        if self.hold_at is not None and n == self.hold_at:
            self._log("hold", conn=connection, n=n)
            await asyncio.sleep(3600)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.faults.on_data:
            self.current_peer = session.peer
            reply = self.faults.on_data(envelope)
            if reply:
                return reply
        data = envelope.original_content or b""
        item = Received(envelope.mail_from or "", list(envelope.rcpt_tos), data, connection)
        with self.lock:
            self.messages.append(item)
            index = len(self.messages)
            key = item.key
            # Journalled before the 250: like an MTA that queues a message, then replies.
            self._log("message", conn=connection, rcpt=item.rcpt_tos[0] if item.rcpt_tos else "",
                      key=list(key) if key else None)
        if self.outbox is not None:
            self.outbox.mkdir(parents=True, exist_ok=True)
            (self.outbox / f"{self.first_index + index:06d}.eml").write_bytes(data.replace(b"\r\n", b"\n"))
        return "250 Message accepted for delivery"


class _CountingSMTP(SMTP):
    """aiosmtpd's server session, telling the handler when its connection opens and closes."""

    connection_name = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self.connection_name:  # STARTTLS calls this again for the same connection
            self.connection_name = self.event_handler.connection_opened()
        super().connection_made(transport)

    async def _handle_client(self) -> None:
        on_connect = self.event_handler.faults.on_connect
        reply = on_connect() if on_connect else None
        if reply:  # instead of the greeting: refused at connect, then closed
            await self.push(reply)
            assert self.transport is not None
            self.transport.close()
            return
        await super()._handle_client()

    def connection_lost(self, error: Exception | None) -> None:
        if self.connection_name and not getattr(self, "_closed_counted", False):
            self._closed_counted = True
            self.event_handler.connection_closed(self.connection_name)
        super().connection_lost(error)


class _CountingController(Controller):
    def factory(self) -> SMTP:
        return _CountingSMTP(self.handler, **self.SMTP_kwargs)


class SmtpSink:
    """Start with ``with SmtpSink(...) as sink:``; ``sink.port`` is where it listens."""

    def __init__(self, outbox: Path | None = None, port: int | None = None,
                 auth: tuple[str, str] | None = None, first_index: int = 0, delay: float = 0.0,
                 hold_at: int | None = None, journal: Path | None = None,
                 auth_gate: Callable[[], str | None] | None = None, **controller_kwargs: Any):
        self.handler = Sink(outbox=outbox, first_index=first_index, delay=delay, hold_at=hold_at, journal=journal)
        self.port = port or free_port()
        kwargs: dict[str, Any] = {"hostname": "127.0.0.1", "port": self.port}
        if auth:
            user, password = auth

            def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
                from aiosmtpd.smtp import AuthResult, LoginPassword

                refusal = auth_gate() if auth_gate else None  # e.g. "454 4.7.0 Too many login attempts"
                if refusal:
                    return AuthResult(success=False, handled=False, message=refusal)
                ok = isinstance(data, LoginPassword) and data.login.decode() == user \
                    and data.password.decode() == password
                return AuthResult(success=ok, handled=False)  # False: the server replies 535

            kwargs.update(authenticator=authenticator, auth_require_tls=False)
        kwargs.update(controller_kwargs)
        self.controller = _CountingController(self.handler, **kwargs)

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    def counts(self) -> Counter[DigestKey]:
        return self.handler.counts()

    @property
    def open_connections(self) -> int:
        return self.handler.open_connections

    @property
    def peak_connections(self) -> int:
        return self.handler.peak_connections

    @property
    def faults(self) -> Faults:
        return self.handler.faults

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


def airflow_connection(port: int, host: str = "127.0.0.1", **extra: Any) -> dict[str, Any]:
    """An Airflow smtp connection to a plain local sink (the provider's SSL/TLS defaults off)."""
    return {"conn_type": "smtp", "host": host, "port": port,
            "extra": {"disable_ssl": True, "disable_tls": True, "timeout": 10, **extra}}


@dataclass
class Journal:
    """What a sink journalled (``--journal``), across its restarts."""

    counts: Counter[DigestKey]
    messages: int
    connections: int
    open_connections: int  # opened and not closed: at a SIGKILL, those open at the kill
    peak_connections: int
    held: bool  # a DATA is being held (``--hold-at``)


def read_journal(path: Path) -> Journal:
    counts: Counter[DigestKey] = Counter()
    messages = connections = peak = 0
    open_now: set[str] = set()
    held = False
    text = path.read_text() if path.exists() else ""
    for line in text.splitlines():
        if not line.endswith("}"):
            continue  # a line cut by a kill (cannot happen with one write(2), but be safe)
        event = json.loads(line)
        kind = event["event"]
        if kind == "open":
            connections += 1
            open_now.add(event["conn"])
            peak = max(peak, len(open_now))
        elif kind == "close":
            open_now.discard(event["conn"])
        elif kind == "message":
            messages += 1
            if event["key"]:
                counts[tuple(event["key"])] += 1  # type: ignore[arg-type]
        elif kind == "hold":
            held = True
    return Journal(counts, messages, connections, len(open_now), peak, held)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="an SMTP sink in its own process (for crash tests)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--journal", type=Path, required=True)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--hold-at", type=int, default=None)
    parser.add_argument("--outbox", type=Path, default=None)
    args = parser.parse_args(argv)
    sink = SmtpSink(outbox=args.outbox, port=args.port, delay=args.delay_ms / 1000, hold_at=args.hold_at,
                    journal=args.journal)
    sink.__enter__()
    print(f"listening on 127.0.0.1:{sink.port}", flush=True)
    sys.stdout.close()  # the parent reads this line, then EOF
    threading.Event().wait()


if __name__ == "__main__":
    main()
