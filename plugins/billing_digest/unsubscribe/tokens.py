"""One-click unsubscribe tokens (RFC 8058): an HMAC of user, notification kind and expiry.

The one-click unsubscribe service (:mod:`billing_digest.unsubscribe.app`) verifies a token with
:func:`verify` (the current secret, or one a rotation replaced: ``Settings.unsubscribe_secrets``)
when the mail client POSTs ``List-Unsubscribe=One-Click`` to the link; no login is needed and
nothing can be forged without a secret. Token format:
``<user_id>.<kind>.<expires_unix>.<signature>``. The link is :func:`link`: the ``unsubscribe_url``
setting (or ``base_url`` + :data:`DEFAULT_PATH`) with ``?token=``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from billing_digest import product
from billing_digest.settings import Settings

# Where the service answers when the product mounts it (and standalone).
DEFAULT_PATH = product.UNSUBSCRIBE_PATH
# RFC 8058's POST body, as a form field: the e-mail's List-Unsubscribe-Post header announces it
# (billing_digest.mail.headers), the service requires it (billing_digest.unsubscribe.app).
ONE_CLICK = ("List-Unsubscribe", "One-Click")


class InvalidToken(ValueError):
    """The token is malformed, tampered with, signed with another secret, or expired."""


class ExpiredToken(InvalidToken):
    """A genuine token (good signature) past its expiry."""


@dataclass(frozen=True)
class Unsubscribe:
    user_id: int
    kind: str
    expires_at: int


def _sign(secret: str, message: str) -> str:
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def make_token(secret: str, user_id: int, kind: str, expires_at: int) -> str:
    if not kind.replace("_", "").isalnum():
        raise ValueError(f"kind must be alphanumeric/underscore: {kind!r}")
    message = f"{int(user_id)}.{kind}.{int(expires_at)}"
    return f"{message}.{_sign(secret, message)}"


def verify(secrets: str | Sequence[str], token: str, now: float | None = None,
           expected_user_id: int | None = None) -> Unsubscribe:
    """Check a token; returns what it unsubscribes or raises :class:`InvalidToken`.

    ``secrets``: the current secret, or the current one and those a rotation replaced
    (``Settings.unsubscribe_secrets``): a token signed with any of them is genuine.
    ``expected_user_id`` (when the product knows who is asking) must match the token's user.
    """
    parts = token.split(".")
    if len(parts) != 4:
        raise InvalidToken("malformed token")
    user_raw, kind, expires_raw, signature = parts
    message = f"{user_raw}.{kind}.{expires_raw}"
    candidates = (secrets,) if isinstance(secrets, str) else tuple(secrets)
    # Every secret is tried (no early exit): the time taken does not tell which one signed.
    if sum(hmac.compare_digest(_sign(secret, message), signature) for secret in candidates) == 0:
        raise InvalidToken("bad signature")
    try:
        user_id, expires_at = int(user_raw), int(expires_raw)
    except ValueError as exc:  # only reachable with the secret, but be strict
        raise InvalidToken("malformed token") from exc
    if (time.time() if now is None else now) >= expires_at:
        raise ExpiredToken("expired token")
    if expected_user_id is not None and expected_user_id != user_id:
        raise InvalidToken("token belongs to another user")
    return Unsubscribe(user_id, kind, expires_at)


def endpoint(settings: Settings) -> str:
    """The public URL of the unsubscribe service: ``unsubscribe_url``, else ``base_url`` + :data:`DEFAULT_PATH`."""
    return settings.unsubscribe_url.strip() or settings.base_url.rstrip("/") + DEFAULT_PATH


def link(settings: Settings, token: str) -> str:
    """The one-click link of ``token`` (the List-Unsubscribe https URL and the e-mail's footer link)."""
    url = endpoint(settings)
    return f"{url}{'&' if '?' in url else '?'}{urlencode({'token': token})}"
