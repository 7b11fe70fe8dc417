"""The preview page: a FastAPI app mounted at /billing-digest by the api-server.

Routes (all behind :func:`require_access`):

- ``GET /``: pick a day and a company; the day's digests (``digest.entity_digests``), the
  ledger of the chosen company (``digest.deliveries``: state, reason, attempts, sent_at,
  message_id) and one recipient's e-mail rendered from the stored payload: the HTML in a
  sandboxed ``<iframe srcdoc>`` and the text part.
- ``GET /message.eml``: that e-mail as the whole MIME message.
- ``GET /history``: the days compared over a period (:mod:`billing_digest.history`, charts from
  :mod:`digest_preview.charts`).
- ``POST /suppression/lift``: lift one address's suppression (needs edit on the DAG).

The e-mail is rendered by ``billing_digest.mail.render.Renderer`` from the payload the run stored,
for the recipient the ledger names, at the time it was sent (``sent_at``), so the bodies are
the ones the recipient got (the unsubscribe link's expiry is derived from the send time).
A recipient not sent yet is previewed as of now.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import jinja2
import psycopg
from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from billing_digest import DAG_ID, history, holds, sql
from billing_digest.delivery import suppression
from billing_digest.delivery.ledger import STATES
from billing_digest.mail.render import Recipient, Renderer
from billing_digest.payload import EntityDigest
from billing_digest.settings import Settings
from billing_digest.text import neutralise
from billing_digest.topics import TOPICS
from digest_preview import URL_PREFIX, charts

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"


# -- dependencies (overridable in tests) ----------------------------------------------------
def _billing_db(read_only: bool) -> Iterator[psycopg.Connection]:
    """A connection to the billing database (Airflow connection ``billing_db``) for one request."""
    from billing_digest.airflow_glue.glue import billing_db

    conn = billing_db()
    try:
        conn.autocommit = True
        if read_only:
            conn.execute("SET default_transaction_read_only = on")
        yield conn
    finally:
        conn.close()


def billing_conn() -> Iterator[psycopg.Connection]:
    """A read-only connection to the billing database: the page only reads."""
    yield from _billing_db(read_only=True)


def digest_settings() -> Settings:
    """The digest's settings as the DAG reads them (Variable ``billing_digest_settings``, env).

    With an unsafe unsubscribe secret the runs refuse to start, and so does the page: 503 with
    the message that says which setting to set (not a bare 500)."""
    from airflow.sdk.exceptions import AirflowFailException

    from billing_digest.airflow_glue.glue import settings

    try:
        return settings()
    except AirflowFailException as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc


def require_access(user: GetUserDep) -> BaseUser:
    """The api-server's authentication (``GetUserDep``, as on every core API route: a JWT in
    ``Authorization: Bearer`` or the UI's ``_token`` cookie; 401 without one, 403 for a bad one),
    then the auth manager's permission to read the runs of the digest DAG (403 without it)."""
    allowed = get_auth_manager().is_authorized_dag(
        method="GET", access_entity=DagAccessEntity.RUN, details=DagDetails(id=DAG_ID), user=user)
    if not allowed:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"Forbidden: reading runs of {DAG_ID} is required")
    return user


def billing_conn_for_lifts() -> Iterator[psycopg.Connection]:
    """A writable connection to the billing database: only the lifting of a suppression writes."""
    yield from _billing_db(read_only=False)


def lift_allowed(user: Annotated[BaseUser, Depends(require_access)]) -> bool:
    """Whether the auth manager lets the caller edit the digest DAG: who may lift a suppression."""
    try:
        manager = get_auth_manager()
    except Exception:  # no auth manager in this process: nobody may
        return False
    return manager.is_authorized_dag(method="PUT", details=DagDetails(id=DAG_ID), user=user)


Conn = Annotated[psycopg.Connection, Depends(billing_conn)]
User = Annotated[BaseUser, Depends(require_access)]
MayLift = Annotated[bool, Depends(lift_allowed)]
Config = Annotated[Settings, Depends(digest_settings)]


@functools.lru_cache(maxsize=4)
def renderer_for(settings: Settings) -> Renderer:
    return Renderer(settings)


# -- data ------------------------------------------------------------------------------------
def recipient_of(row: dict[str, Any]) -> Recipient:
    """The recipient as the delivery addressed them (a redirect's address when there was one)."""
    return Recipient(int(row["user_id"]), row["name"] or "", row["sent_to"] or row["email"] or "")


def send_time(row: dict[str, Any]) -> dt.datetime:
    return row["sent_at"] or dt.datetime.now(dt.UTC)


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value else None


def utc(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def pick_recipient(recipients: list[dict[str, Any]], user_id: int | None) -> dict[str, Any] | None:
    if user_id is not None:
        return next((r for r in recipients if r["user_id"] == user_id), None)
    for wanted in ("sent", "failed", "deferred", "pending"):
        found = next((r for r in recipients if r["state"] == wanted), None)
        if found:
            return found
    return recipients[0] if recipients else None


def _neutral(value: Any) -> Any:
    """Every plain string the page prints (names, addresses, reasons from SMTP replies) passes
    :func:`billing_digest.text.neutralise`; markup the page built itself is left alone."""
    return neutralise(value, keep_line_breaks=True) if type(value) is str else value


def company_digest(conn: psycopg.Connection, digest_date: dt.date,
                   entity_id: int) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """A company's stored digest of the day (None when there is none) and its ledger rows."""
    found = sql.rows(conn, "preview/digest", digest_date=digest_date, entity_id=entity_id)
    return (found[0] if found else None,
            sql.rows(conn, "preview/recipients", digest_date=digest_date, entity_id=entity_id))


def preview_email(config: Settings, digest: dict[str, Any], chosen: dict[str, Any], digest_date: dt.date,
                  entity_id: int) -> dict[str, Any]:
    """The chosen recipient's e-mail, rendered from the digest's stored payload as it was sent."""
    renderer = renderer_for(config)
    payload: EntityDigest = digest["payload"]
    rendered = renderer.render(payload, recipient_of(chosen), send_time(chosen))
    return {"subject": rendered.subject, "html": rendered.html, "text": rendered.text,
            "from": config.sender, "to": recipient_of(chosen).email,
            "message_id": chosen["message_id"] or renderer.message_id(
                digest_date.isoformat(), entity_id, chosen["user_id"]),
            "as_of": send_time(chosen), "sent": chosen["sent_at"] is not None}


def preview_context(conn: psycopg.Connection, config: Settings, digest_date: dt.date | None,
                    entity_id: int | None, user_id: int | None) -> dict[str, Any]:
    """What the preview page shows: the known days, the day's digests and ledger counts, and for a
    chosen company its digest, recipients and one recipient's e-mail."""
    days = sql.rows(conn, "preview/days")
    if digest_date is None and days:
        digest_date = days[0]["digest_date"]
    digests = sql.rows(conn, "preview/day_digests", digest_date=digest_date) if digest_date else []
    ledger = (sql.rows(conn, "summary/ledger_by_state", digest_date=digest_date) if digest_date else [])
    by_state = {s: 0 for s in STATES}
    for row in ledger:
        by_state[row["state"]] = by_state.get(row["state"], 0) + int(row["n"])
    digest = recipients = chosen = email = None
    if digest_date and entity_id is not None:
        digest, recipients = company_digest(conn, digest_date, entity_id)
        chosen = pick_recipient(recipients, user_id)
        if digest and chosen:
            email = preview_email(config, digest, chosen, digest_date, entity_id)
    hold = holds.of_day(conn, digest_date) if digest_date else None
    return dict(hold=hold, what_to_do=holds.WHAT_TO_DO,
                prefix=URL_PREFIX, days=days, digest_date=digest_date, digests=digests, by_state=by_state,
                total_errors=sum(d["error_count"] for d in digests), entity_id=entity_id, digest=digest,
                recipients=recipients, chosen=chosen, email=email, states=STATES, dag_id=DAG_ID)


# -- routes ----------------------------------------------------------------------------------
class Pages:
    """The page templates (``templates/``): every plain string they print is neutralised."""

    def __init__(self) -> None:
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                                      undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                                      finalize=_neutral)
        self.env.filters["utc"] = utc
        self.preview = self.env.get_template("page.html.j2")
        self.history = self.env.get_template("history.html.j2")

    async def login_hint(self, request: Request, exc: HTTPException) -> Response:
        """A browser that is not logged in gets the status and a link to Airflow's login."""
        if exc.status_code == status.HTTP_401_UNAUTHORIZED and "text/html" in request.headers.get("accept", ""):
            try:
                login = get_auth_manager().get_url_login(next_url=str(request.url))
            except Exception:  # no auth manager in this process: still refuse, plainly
                login = "/auth/login"
            body = self.env.get_template("login.html.j2").render(login=login, detail=exc.detail)
            return HTMLResponse(body, status_code=exc.status_code, headers=exc.headers)
        return await http_exception_handler(request, exc)

    def preview_view(self, conn: Conn, config: Config, may_lift: MayLift,
                     digest_date: Annotated[dt.date | None, Query()] = None,
                     entity_id: Annotated[str | None, Query(pattern=r"^\d*$")] = None,
                     user_id: Annotated[str | None, Query(pattern=r"^\d*$")] = None,
                     width: Annotated[Literal["desktop", "phone"], Query()] = "desktop") -> HTMLResponse:
        """A day, a company, one recipient's e-mail (the form sends an empty entity_id for "all companies")."""
        context = preview_context(conn, config, digest_date, _int_or_none(entity_id), _int_or_none(user_id))
        return HTMLResponse(self.preview.render(**context, width=width, can_lift=may_lift))

    def history_view(self, conn: Conn, config: Config, days: Annotated[int, Query(ge=7, le=1100)] = 90,
                     end: Annotated[dt.date | None, Query()] = None) -> HTMLResponse:
        """The days compared over a period (default: the 90 days to the newest known day)."""
        end = end or history.last_day(conn) or dt.date.today()
        period = history.load(conn, end - dt.timedelta(days=days - 1), end, config)
        html = self.history.render(history=period, days=days, charts=charts, topics=TOPICS, dag_id=DAG_ID,
                                   link=lambda d: f"./?digest_date={d.isoformat()}", outcomes=history.OUTCOMES)
        return HTMLResponse(html)


def lift_suppression(request: Request, user: User, may_lift: MayLift,
                     conn: Annotated[psycopg.Connection, Depends(billing_conn_for_lifts)],
                     address: Annotated[str, Query(min_length=3, max_length=320)],
                     digest_date: dt.date, entity_id: int) -> Response:
    """Lift one address's suppression (issue 15), recorded with who did it; back to the company."""
    if not may_lift:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"Forbidden: lifting a suppression needs edit on {DAG_ID}")
    origin = request.headers.get("origin")
    if origin and origin.split("://", 1)[-1] != request.headers.get("host", ""):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Forbidden: a cross-site request")
    lifted = suppression.lift(conn, "manual", addresses=[address], actor=user.get_name(), detail="preview page")
    log.info("suppression of %s %s by %s on the preview page", address, "lifted" if lifted else "not found",
             user.get_name())
    return RedirectResponse(f"{URL_PREFIX}/?digest_date={digest_date}&entity_id={entity_id}",
                            status_code=status.HTTP_303_SEE_OTHER)


def message(conn: Conn, config: Config, digest_date: dt.date, entity_id: int, user_id: int) -> Response:
    """One recipient's e-mail as the whole MIME message, to download."""
    digest, recipients = company_digest(conn, digest_date, entity_id)
    chosen = pick_recipient(recipients, user_id)
    if digest is None or chosen is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "No such digest or recipient")
    payload: EntityDigest = digest["payload"]
    _, raw = renderer_for(config).message(payload, recipient_of(chosen), send_time(chosen))
    name = f"billing-digest-{digest_date}-{entity_id}-{user_id}.eml"
    return Response(raw, media_type="message/rfc822",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def create_app() -> FastAPI:
    """The page's app: every route behind :func:`require_access`."""
    pages = Pages()
    app = FastAPI(title="Billing digest preview", docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(require_access)])
    app.add_exception_handler(HTTPException, pages.login_hint)
    app.add_api_route("/", pages.preview_view, methods=["GET"], response_class=HTMLResponse, name="preview")
    app.add_api_route("/suppression/lift", lift_suppression, methods=["POST"])
    app.add_api_route("/history", pages.history_view, methods=["GET"], response_class=HTMLResponse)
    app.add_api_route("/message.eml", message, methods=["GET"])
    return app
