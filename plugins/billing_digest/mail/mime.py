"""Fast assembly of a multipart/alternative message (text + HTML, UTF-8, quoted-printable).

``email.message.EmailMessage`` spends most of a digest's build time in its policy machinery
(~700 messages/s here); rendering's target is 6,000/s (bench/RESULTS.md), so the skeleton is
written directly.
What is delicate is still done by the standard library: RFC 2047 encoding of names and
subjects (``email.header``/``email.utils``), quoted-printable (``binascii``). The output is
checked by the tests with ``email.parser`` (policy default).
"""

from __future__ import annotations

import binascii
import hashlib
from email.utils import formataddr

from billing_digest.text import neutralise


def clean_header(value: str) -> str:
    """Any CR, LF or other control character becomes a space (no header can be injected); escape
    sequences and bidi controls go (:func:`billing_digest.text.neutralise`)."""
    return neutralise(value).strip()


def encode_header(value: str) -> str:
    """A header value, RFC 2047 encoded (base64 words, folded) when it is not plain ASCII."""
    value = clean_header(value)
    if value.isascii() and len(value) < 900:
        return value
    words, chunk = [], b""
    for char in value:
        raw = char.encode("utf-8")
        if len(chunk) + len(raw) > 45:  # 45 bytes -> 60 base64 chars: words stay under 76
            words.append(chunk)
            chunk = b""
        chunk += raw
    words.append(chunk)
    return "\r\n ".join(f"=?utf-8?b?{binascii.b2a_base64(w, newline=False).decode()}?=" for w in words)


def address(name: str, addr: str) -> str:
    """``"Name" <addr>`` with the name encoded as needed; the address must be validated before
    (:func:`billing_digest.mail.addresses.parse`: its ``smtp`` form, the domain in IDNA)."""
    addr = clean_header(addr)
    if any(c in addr for c in " <>,;\"") or addr.count("@") != 1:
        raise ValueError(f"not a single mailbox: {addr!r}")
    name = clean_header(name)
    if not name:
        return addr
    if not name.isascii():
        return f"{encode_header(name)} <{addr}>"
    if addr.isascii():
        return formataddr((name, addr))
    # A non-ASCII address (RFC 6532, sent only with SMTPUTF8): formataddr quotes the name but takes
    # ASCII addresses only, so it quotes the name beside a stand-in.
    return formataddr((name, "x@x"))[: -len("<x@x>")] + f"<{addr}>"


def qp(text: str) -> bytes:
    """Quoted-printable of ``text`` with CRLF line ends.

    Encoding works line by line, so pieces that each end with a line break can be encoded
    separately (and cached) and joined: the result equals encoding the whole.
    """
    body = text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
    return binascii.b2a_qp(body, quotetabs=False, istext=True, header=False)


def build(headers: list[tuple[str, str]], text_qp: bytes, html_qp: bytes, boundary_seed: str) -> bytes:
    """The whole message with CRLF line ends, from pre-encoded header values and QP bodies."""
    # "=_" never occurs in quoted-printable output, so it cannot collide with the bodies.
    boundary = "=_bd_" + hashlib.sha1(boundary_seed.encode()).hexdigest()[:24]
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    return b"".join((
        head.encode("utf-8"),  # ASCII but for a non-ASCII address (RFC 6532: sent only with SMTPUTF8)
        b"MIME-Version: 1.0\r\n",
        f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'.encode(),
        f"--{boundary}\r\n".encode(),
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n",
        text_qp, b"\r\n",
        f"--{boundary}\r\n".encode(),
        b"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n",
        html_qp, b"\r\n",
        f"--{boundary}--\r\n".encode(),
    ))
