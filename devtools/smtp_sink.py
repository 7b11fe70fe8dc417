"""A real SMTP server (aiosmtpd) that keeps every message: in memory and/or as ``.eml`` files.

It can also misbehave on cue (see :class:`Faults`) so tests inject real SMTP failures.
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]


@dataclass
class Faults:
    """Cues for misbehaviour. Each hook returns an SMTP reply string to refuse, or None to accept.

    ``on_rcpt(address)`` and ``on_data(envelope)`` run per message; ``drop_after`` closes the
    connection (without a reply) when the n-th message's DATA arrives, once.
    """

    on_rcpt: Callable[[str], str | None] | None = None
    on_data: Callable[[Envelope], str | None] | None = None
    drop_after: int | None = None


@dataclass
class Sink:
    outbox: Path | None = None
    faults: Faults = field(default_factory=Faults)
    messages: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    data_count: int = 0
    first_index: int = 0  # .eml files are numbered after this (keeps earlier runs' files)

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
        if self.faults.drop_after is not None and n == self.faults.drop_after + 1:
            self.faults.drop_after = None
            server.transport.close()  # type: ignore[union-attr]
            return "421 dropped"  # never reaches the client: the transport is gone
        if self.faults.on_data:
            reply = self.faults.on_data(envelope)
            if reply:
                return reply
        data = envelope.original_content or b""
        item = Received(envelope.mail_from or "", list(envelope.rcpt_tos), data)
        with self.lock:
            self.messages.append(item)
            index = len(self.messages)
        if self.outbox is not None:
            self.outbox.mkdir(parents=True, exist_ok=True)
            (self.outbox / f"{self.first_index + index:06d}.eml").write_bytes(data.replace(b"\r\n", b"\n"))
        return "250 Message accepted for delivery"


class SmtpSink:
    """Start with ``with SmtpSink(...) as sink:``; ``sink.port`` is where it listens."""

    def __init__(self, outbox: Path | None = None, port: int | None = None,
                 auth: tuple[str, str] | None = None, first_index: int = 0, **controller_kwargs: Any):
        self.handler = Sink(outbox=outbox, first_index=first_index)
        self.port = port or free_port()
        kwargs: dict[str, Any] = {"hostname": "127.0.0.1", "port": self.port}
        if auth:
            user, password = auth

            def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
                from aiosmtpd.smtp import AuthResult, LoginPassword

                ok = isinstance(data, LoginPassword) and data.login.decode() == user \
                    and data.password.decode() == password
                return AuthResult(success=ok, handled=False)  # False: the server replies 535

            kwargs.update(authenticator=authenticator, auth_require_tls=False)
        kwargs.update(controller_kwargs)
        self.controller = Controller(self.handler, **kwargs)

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

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
