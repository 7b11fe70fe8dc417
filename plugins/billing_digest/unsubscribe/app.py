"""The one-click unsubscribe service (RFC 8058): where the digest's List-Unsubscribe link points.

``create_app(connect, settings)`` builds a small FastAPI app; whoever serves it brings its own
database access: ``connect()`` is a context manager giving a psycopg connection for one request
(``psycopg.connect`` with a DSN, closed after the request, or a pool's ``connection``, which
returns it to the pool; the standalone server uses a ``psycopg_pool.ConnectionPool``):

- the product mounts it: ``app.mount("/notificacoes", create_app(connect, settings))``, so the
  default link (``base_url`` + ``/notificacoes/cancelar``) reaches it;
- standalone (``make unsubscribe``, the ``billing-unsubscribe`` compose service,
  :mod:`billing_digest.unsubscribe.server`) it is built with ``prefix="/notificacoes"``.

Routes, under the prefix:

- ``POST /cancelar?token=T`` with the form body ``List-Unsubscribe=One-Click`` (urlencoded or
  multipart, as RFC 8058 allows): the token's user stops receiving the billing-errors alert
  (``billing.notification_preferences`` of that user and :data:`NOTIFICATION_KIND` only, set off;
  a missing row is created off) and the change is recorded in ``digest.unsubscribes``. No
  login; idempotent: 200 and the same "done" page every time. A POST without that body (or
  with a bad token) changes nothing: 400.
- ``GET /cancelar?token=T`` (and ``HEAD``): a pt-BR page that asks to confirm, with a button
  that POSTs the same. Never changes anything: link scanners and previews follow links.
- a forged, expired, malformed, other-kind or other-secret token: a pt-BR page, 400, nothing
  changed. Other methods: 405. ``GET /healthz``: 200 when the database answers.

Every response: ``Cache-Control: no-store``, ``Referrer-Policy: no-referrer`` (the token is a
credential in the URL), a CSP without scripts and with ``frame-ancestors 'none'``. The pages show
no user data beyond the first name. :func:`create_app` refuses to build with an unsafe secret
(:func:`billing_digest.secret_check.require_safe`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qsl

import jinja2
import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Lifespan, Message, Receive, Scope, Send

from billing_digest import NOTIFICATION_KIND, product, sql
from billing_digest.secret_check import require_safe
from billing_digest.settings import Settings
from billing_digest.unsubscribe.preferences import Connect, healthy, read_status, turn_off
from billing_digest.unsubscribe.tokens import ONE_CLICK, ExpiredToken, InvalidToken, verify

log = logging.getLogger(__name__)

PREFIX = product.UNSUBSCRIBE_MOUNT  # where the product mounts the app; the standalone server's prefix
# Sent by our confirmation page's form besides ONE_CLICK, to tell its button from the mail client's.
FROM_PAGE = ("origem", "pagina")
MAX_BODY = 4096  # a one-click body is 26 bytes; a multipart one a few hundred
MAX_TOKEN = 256
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex, nofollow",
}
TEMPLATES = "templates/unsubscribe"

class Refused(Exception):
    """An answer other than the one asked for: its status and which refusal page (``reason``)."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None):
        super().__init__(reason)
        self.status, self.reason, self.headers = status, reason, headers or {}


class SecurityHeaders:
    """:data:`SECURITY_HEADERS` on every response: a pure ASGI middleware (Starlette's
    ``BaseHTTPMiddleware`` costs a task and a stream per request, a scanner burst's worth of CPU)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


# -- the request side --------------------------------------------------------------------------------
async def read_form(request: Request) -> list[tuple[str, str]]:
    """The POST body's fields: ``application/x-www-form-urlencoded`` or ``multipart/form-data``
    (RFC 8058 allows both), at most :data:`MAX_BODY` bytes (413 beyond)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise Refused(413, "too_large")
    content_type = request.headers.get("content-type", "")
    if content_type.lower().startswith("multipart/form-data"):
        message = BytesParser(policy=policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
        fields = []
        for part in message.iter_parts() if message.is_multipart() else ():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                fields.append((name, payload.decode("utf-8", "replace").strip()))
        return fields
    return parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)


def token_of(request: Request) -> str:
    tokens = request.query_params.getlist("token")
    if len(tokens) != 1 or not 0 < len(tokens[0]) <= MAX_TOKEN:
        raise Refused(400, "invalid")
    return tokens[0]


class Pages:
    """The pt-BR pages, rendered from ``include/templates/unsubscribe/`` with what every page shows
    (the support address, the product's links, the links' lifetime)."""

    def __init__(self, settings: Settings) -> None:
        base_url = settings.base_url.rstrip("/")
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(sql.include_dir() / TEMPLATES),
                                      autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                                      lstrip_blocks=True)
        self.common = {
            "support_email": settings.support_email,
            "preferences_url": f"{base_url}{product.PREFERENCES}",
            "invoices_url": f"{base_url}{product.INVOICES}",
            "product_url": base_url,
            "ttl_days": settings.unsubscribe_ttl_days,
        }

    def page(self, template: str, status: int = 200, headers: dict[str, str] | None = None,
             **context: Any) -> Response:
        html = self.env.get_template(f"{template}.html.j2").render(**self.common, **context)
        return HTMLResponse(html, status_code=status, headers=headers)

    def refusal(self, exc: Refused) -> Response:
        return self.page("refused", exc.status, exc.headers, reason=exc.reason)


def user_of(settings: Settings, token: str) -> int:
    """The token's user id, or :class:`Refused` (400) for a token nobody may act on."""
    try:
        unsubscribe = verify(settings.unsubscribe_secrets, token)
    except ExpiredToken:
        log.info("unsubscribe: expired token refused")
        raise Refused(400, "expired") from None
    except InvalidToken as exc:
        log.info("unsubscribe: token refused (%s)", exc)
        raise Refused(400, "invalid") from None
    if unsubscribe.kind != NOTIFICATION_KIND:
        log.info("unsubscribe: token of another kind refused (%s)", unsubscribe.kind)
        raise Refused(400, "invalid")
    return unsubscribe.user_id


async def database(work: Callable[[], Any]) -> Any:
    """``work`` (blocking) in the thread pool; a database failure is a 503 page, nothing changed."""
    try:
        return await run_in_threadpool(work)
    except psycopg.Error:
        log.exception("unsubscribe: the billing database failed; nothing changed")
        raise Refused(503, "unavailable", {"Retry-After": "120"}) from None


@dataclass(frozen=True)
class Handlers:
    """The app's handlers, over what they share: the database access, the settings, the pages."""

    connect: Connect
    settings: Settings
    pages: Pages

    async def refused(self, request: Request, exc: Refused) -> Response:
        return self.pages.refusal(exc)

    async def http_error(self, request: Request, exc: StarletteHTTPException) -> Response:
        """404, 405 (with its Allow header) and the like, as pt-BR pages."""
        reason = {404: "not_found", 405: "method"}.get(exc.status_code, "invalid")
        return self.pages.refusal(Refused(exc.status_code, reason, dict(exc.headers or {})))

    async def cancel(self, request: Request) -> Response:
        """``/cancelar``: GET and HEAD ask to confirm, POST unsubscribes."""
        token = token_of(request)
        user_id = user_of(self.settings, token)
        handler = self.unsubscribe if request.method == "POST" else self.confirm
        return await handler(request, token, user_id)

    async def confirm(self, request: Request, token: str, user_id: int) -> Response:
        """Asks to confirm; changes nothing (scanners and link previews follow GETs)."""
        status = await database(lambda: read_status(self.connect, user_id))
        if not status.enabled:
            return self.pages.page("done", state="already_off", user=status)
        return self.pages.page("confirm", token=token, user=status, notice=None)

    async def unsubscribe(self, request: Request, token: str, user_id: int) -> Response:
        """RFC 8058 one-click: the token's user stops receiving the billing-errors alert."""
        fields = await read_form(request)
        if ONE_CLICK not in fields:
            # Not a one-click POST (RFC 8058 requires the body): nothing changes; ask to confirm.
            status = await database(lambda: read_status(self.connect, user_id))
            return self.pages.page("confirm", 400, token=token, user=status, notice="confirm")
        source = "page" if FROM_PAGE in fields else "one_click"
        status = await database(lambda: turn_off(self.connect, user_id, source))
        return self.pages.page("done", state="done", user=status)

    async def health(self) -> Response:
        try:
            ok = await run_in_threadpool(healthy, self.connect)
        except psycopg.Error as exc:
            log.warning("unsubscribe health check: %s", type(exc).__name__)
            ok = False
        return JSONResponse({"status": "ok" if ok else "unavailable"}, status_code=200 if ok else 503)


def create_app(connect: Connect, settings: Settings, prefix: str = "", lifespan: Lifespan | None = None) -> FastAPI:
    """The unsubscribe app; refuses to build (:class:`~billing_digest.secret_check.UnsafeSettings`)
    with the default secret. ``prefix``: where its routes live (``""`` when mounted); ``lifespan``:
    what the server opens and closes with the app (the standalone server's connection pool)."""
    require_safe(settings)
    handlers = Handlers(connect, settings, Pages(settings))
    app = FastAPI(title="billing-digest unsubscribe", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)
    app.add_middleware(SecurityHeaders)
    app.add_exception_handler(Refused, handlers.refused)
    app.add_exception_handler(StarletteHTTPException, handlers.http_error)
    # One route for the three methods, so a 405 names them all in its Allow header.
    app.add_api_route(f"{prefix}{product.UNSUBSCRIBE_ROUTE}", handlers.cancel, methods=["GET", "HEAD", "POST"],
                      response_class=HTMLResponse)
    app.add_api_route(f"{prefix}{product.HEALTH_ROUTE}", handlers.health, methods=["GET", "HEAD"])
    return app
