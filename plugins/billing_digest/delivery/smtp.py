"""An SMTP client that tells permanent from transient refusals and reconnects when dropped (what a
reply means: :mod:`billing_digest.delivery.smtp_replies`).

The SMTP provider's ``send_email_smtp`` retries any exception on the same connection and
cannot tell a 550 from a 451; delivery semantics need both, so this wraps ``smtplib``.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

from billing_digest.delivery.smtp_replies import (
    SmtpUnavailable,
    ThrottledError,
    TransientError,
    classify,
    is_throttle,
    reply_text,
)


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "localhost"
    port: int = 25
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    use_ssl: bool = False          # implicit TLS (SMTPS, usually port 465)
    use_starttls: bool = False     # STARTTLS after connecting (usually port 587)
    timeout: float = 30.0
    ca_file: str | None = None     # trust this CA (self-signed servers, tests)
    verify_tls: bool = True

    @property
    def endpoint(self) -> str:
        """``host:port``: what the cluster's send rate and daily quota are kept per (delivery/pace.py, quota.py)."""
        return f"{self.host}:{self.port}"

    def describe(self) -> str:
        tls = "ssl" if self.use_ssl else ("starttls" if self.use_starttls else "plain")
        return f"{self.endpoint} ({tls}{', login ' + self.login if self.login else ''})"


_PLAIN_ADDRESS = re.compile(r"[^\s<>()\[\]\\,;:\"@]+@[^\s<>()\[\]\\,;:\"@]+")


def _quote_address(address: str) -> str:
    """``<addr>`` as smtplib's ``quoteaddr`` writes it, without its parser for plain addresses."""
    return f"<{address}>" if _PLAIN_ADDRESS.fullmatch(address) else smtplib.quoteaddr(address)


def _greet(smtp: smtplib.SMTP) -> None:
    """EHLO (HELO if refused), as ``ehlo_or_helo_if_needed`` does, but a throttle reply to EHLO is raised as
    it came (``SMTPHeloError``): smtplib would send HELO to a server that has already closed the connection
    after its 421 and report only the lost connection."""
    code, resp = smtp.ehlo()
    if 200 <= code <= 299:
        return
    text = resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp)
    if is_throttle(code, text):
        raise smtplib.SMTPHeloError(code, resp)
    code, resp = smtp.helo()
    if not 200 <= code <= 299:
        raise smtplib.SMTPHeloError(code, resp)


class _BeforeAcceptFailed(Exception):
    """Carries the exception of a ``before_accept`` callback through the SMTP error handling."""

    def __init__(self, original: BaseException):
        super().__init__(original)
        self.original = original


def _end_refused(smtp: smtplib.SMTP, code: int) -> None:
    """After a refused MAIL, RCPT or end of data, as ``sendmail`` does: a 421 means the server is closing
    the connection (closed here too), any other refusal resets the transaction (RSET)."""
    if code == 421:
        smtp.close()
    else:
        smtp._rset()


def _transaction(smtp: smtplib.SMTP, envelope_from: str, envelope_to: str, message: bytes,
                 before_accept: Callable[[], None] | None = None, smtputf8: bool = False) -> None:
    """One message to one recipient: what ``smtplib.SMTP.sendmail`` does (same commands, same
    errors raised on the same replies), with dot-stuffing by ``bytes.replace`` instead of a regular
    expression over the whole message, and plain addresses not re-parsed: these two were most of
    the client's CPU per message (a 30 KB digest: ~0.4 ms of ~0.65 ms). ``smtputf8``: the MAIL
    command asks for an RFC 6531 transaction (a non-ASCII address; the caller checked the server
    offers it, :meth:`SmtpClient.offers_smtputf8`)."""
    smtp.ehlo_or_helo_if_needed()
    size = f" size={len(message)}" if smtp.does_esmtp and smtp.has_extn("size") else ""
    if smtputf8:
        size += " SMTPUTF8"
        smtp.command_encoding = "utf-8"  # as smtplib's own mail() does: the addresses are UTF-8
    code, resp = smtp.docmd("mail", f"FROM:{_quote_address(envelope_from)}{size}")
    if code != 250:
        _end_refused(smtp, code)
        raise smtplib.SMTPSenderRefused(code, resp, envelope_from)
    code, resp = smtp.docmd("rcpt", f"TO:{_quote_address(envelope_to)}")
    if code not in (250, 251):
        _end_refused(smtp, code)
        raise smtplib.SMTPRecipientsRefused({envelope_to: (code, resp)})
    code, resp = smtp.docmd("data")
    if code != 354:
        raise smtplib.SMTPDataError(code, resp)
    # RFC 5321 4.5.2: a line starting with "." gets another (as smtplib: after every LF).
    data = message.replace(b"\n.", b"\n..")
    if data.startswith(b"."):
        data = b"." + data
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    if before_accept is None:
        smtp.send(data + b".\r\n")
    else:
        # Everything but the end of data: the server cannot accept the message before the callback
        # returns (if it raises, the caller drops the connection and the server discards the data).
        smtp.send(data)
        try:
            before_accept()
        except BaseException as exc:
            raise _BeforeAcceptFailed(exc) from exc
        smtp.send(b".\r\n")
    code, resp = smtp.getreply()
    if code != 250:
        _end_refused(smtp, code)
        raise smtplib.SMTPDataError(code, resp)


class SmtpClient:
    """One SMTP connection, opened lazily and re-opened after a drop. Use as a context manager."""

    def __init__(self, settings: SmtpSettings):
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None
        self.connections = 0

    def _tls_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.settings.ca_file)
        if not self.settings.verify_tls:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def connect(self) -> None:
        """Open the connection: greeting, EHLO, STARTTLS, login. Raises :class:`ThrottledError` when the
        greeting, the EHLO or the login reply is a throttle (``421 4.7.0 Too many concurrent connections``,
        ``454 4.7.0 Too many login attempts``: the server is busy with our other connections, not down),
        :class:`SmtpUnavailable` for anything else (wrong credentials among them)."""
        s = self.settings
        smtp: smtplib.SMTP | None = None
        try:
            if s.use_ssl:
                smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=self._tls_context())
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            _greet(smtp)
            if s.use_starttls and not s.use_ssl:
                smtp.starttls(context=self._tls_context())
            if s.login:
                smtp.login(s.login, s.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            if smtp is not None:
                smtp.close()
            # "454 4.7.0 Too many login attempts" (Gmail, Microsoft 365): a throttle, not wrong credentials.
            if isinstance(error := classify(exc.smtp_code, reply_text(exc)), ThrottledError):
                raise ThrottledError(f"at login: {error}") from None
            raise SmtpUnavailable(f"SMTP server {s.describe()} refused the login: {reply_text(exc)}") from None
        except smtplib.SMTPNotSupportedError as exc:
            raise SmtpUnavailable(f"SMTP server {s.describe()} does not support {exc}") from None
        except (smtplib.SMTPConnectError, smtplib.SMTPHeloError) as exc:  # the greeting or EHLO/HELO refused
            if smtp is not None:
                smtp.close()
            error = classify(exc.smtp_code, reply_text(exc))
            if isinstance(error, ThrottledError):
                raise ThrottledError(f"at connect: {error}") from None
            raise SmtpUnavailable(f"SMTP server {s.describe()} refused the connection: {reply_text(exc)}") from None
        except (OSError, smtplib.SMTPException, ssl.SSLError) as exc:
            raise SmtpUnavailable(f"cannot connect to SMTP server {s.describe()}: "
                                  f"{type(exc).__name__}: {exc}") from None
        # The end-of-data mark goes in a write of its own (see _transaction): without TCP_NODELAY, Nagle's
        # algorithm would hold it until the server acknowledged the data (its delayed ACK: ~40 ms a message).
        assert smtp is not None
        if smtp.sock is not None:
            smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._smtp = smtp
        self.connections += 1

    def ensure_connected(self) -> None:
        """Connect unless a connection is open (raises as :meth:`connect`)."""
        if self._smtp is None:
            self.connect()

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (OSError, smtplib.SMTPException):
                self._smtp.close()
            self._smtp = None

    def __enter__(self) -> SmtpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def offers_smtputf8(self) -> bool:
        """Whether the server takes non-ASCII addresses (RFC 6531 SMTPUTF8 in its EHLO reply);
        connects first when needed (raises :class:`SmtpUnavailable` as :meth:`connect` does)."""
        self.ensure_connected()
        assert self._smtp is not None
        try:
            self._smtp.ehlo_or_helo_if_needed()
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            raise TransientError(f"connection error: {type(exc).__name__}: {exc}") from None
        return self._smtp.does_esmtp and self._smtp.has_extn("smtputf8")

    def send(self, envelope_from: str, envelope_to: str, message: bytes,
             before_accept: Callable[[], None] | None = None, smtputf8: bool = False) -> None:
        """Returns when the server accepted the message; raises a classified SmtpError otherwise.

        ``message`` must have CRLF line ends (as ``mime.build`` and ``email.policy.SMTP`` write them):
        unlike ``smtplib.sendmail`` it is not rewritten. ``before_accept`` runs after the message's data
        and before its end-of-data mark, the moment the server may accept it; if it raises, the
        connection is dropped (the server discards the message) and its exception propagates."""
        self.ensure_connected()
        assert self._smtp is not None
        smtp = self._smtp
        try:
            _transaction(smtp, envelope_from, envelope_to, message, before_accept, smtputf8)
        except _BeforeAcceptFailed as exc:
            self._drop()  # the end-of-data mark was never sent: the server discards the message
            raise exc.original from None
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = exc.recipients.get(envelope_to, (550, b"recipient refused"))
            if code == 421:  # closed by _transaction: the next message connects again at once
                self._drop()
            raise classify(code, f"{code} {text.decode('utf-8', 'replace')}") from None
        except smtplib.SMTPServerDisconnected as exc:
            self._drop()
            raise TransientError(f"connection lost: {exc}") from None
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code in (421,):  # server closes the connection after 421
                self._drop()
            else:
                self._reset()
            raise classify(exc.smtp_code, reply_text(exc)) from None
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            raise TransientError(f"connection error: {type(exc).__name__}: {exc}") from None

    def _reset(self) -> None:
        try:
            assert self._smtp is not None
            self._smtp.rset()
        except (OSError, smtplib.SMTPException, AssertionError):
            self._drop()

    def _drop(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.close()
            except OSError:
                pass
        self._smtp = None


def from_connection_fields(host: str | None, port: int | None, login: str | None, password: str | None,
                           extra: dict[str, object]) -> SmtpSettings:
    """Settings from an Airflow ``smtp`` connection, with the SMTP provider's meaning of its extras:
    implicit SSL unless ``disable_ssl``; STARTTLS unless ``disable_tls``; ``timeout``;
    ``ssl_context`` = "none" turns certificate checks off; ``ca_file`` (ours) trusts a CA file."""
    def flag(name: str) -> bool:
        value = extra.get(name, False)
        return value if isinstance(value, bool) else str(value).strip().lower() in {"1", "true", "yes"}

    use_ssl = not flag("disable_ssl")
    return SmtpSettings(
        host=host or "localhost",
        port=int(port or (465 if use_ssl else 25)),
        login=login or None,
        password=password or None,
        use_ssl=use_ssl,
        use_starttls=not use_ssl and not flag("disable_tls"),
        timeout=float(extra.get("timeout", 30)),  # type: ignore[arg-type]
        ca_file=str(extra["ca_file"]) if extra.get("ca_file") else None,
        verify_tls=str(extra.get("ssl_context", "default")).lower() != "none",
    )


__all__ = ["SmtpClient", "SmtpSettings", "from_connection_fields"]
