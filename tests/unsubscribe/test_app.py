"""The one-click unsubscribe service over real HTTP: the app served by uvicorn on a free port, a
real PostgreSQL behind it, requests made with httpx as a mail client or a browser would."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest

import billing_digest
from billing_digest import NOTIFICATION_KIND
from billing_digest.secret_check import UnsafeSettings
from billing_digest.settings import Settings
from billing_digest.unsubscribe.app import PREFIX, create_app
from billing_digest.unsubscribe.server import RedactTokens
from billing_digest.unsubscribe.tokens import make_token
from devtools.asgi_server import ServedApp
from devtools.smtp_sink import free_port

# Not `from tests.conftest import ROOT`: that would run conftest.py a second time.
ROOT = Path(__file__).resolve().parents[2]
SECRET = "unsubscribe-app-tests-0123456789"
SETTINGS = Settings(unsubscribe_secret=SECRET, base_url="https://app.exemplo.com.br",
                    support_email="suporte@exemplo.com.br")
ONE_CLICK = {"List-Unsubscribe": "One-Click"}
PATH = f"{PREFIX}/cancelar"


def token(user_id: int, kind: str = NOTIFICATION_KIND, expires_in: int = 3600, secret: str = SECRET) -> str:
    return make_token(secret, user_id, kind, int(time.time()) + expires_in)


@pytest.fixture
def people(world, conn):
    acme = world.entity("Acme Serviços LTDA")
    ana = world.user("Ana Maria Lima", "ana.lima@acme.com.br", [acme])
    bruno = world.user("Bruno Reis", "bruno@acme.com.br", [acme])
    never = world.user("Carla Nunca Ligou", "carla@acme.com.br", [acme], opted_in=None)  # no preference row
    # Ana's other kinds of notification, which one-click must never touch.
    conn.execute("INSERT INTO billing.notification_preferences (user_id, kind, enabled, updated_at) VALUES "
                 "(%(u)s, 'payables_due', true, now() - interval '3 days'), "
                 "(%(u)s, 'receivables_due', false, now() - interval '3 days')", {"u": ana})
    return {"ana": ana, "bruno": bruno, "never": never}


def preferences(conn) -> dict[tuple[int, str], tuple[bool, object]]:
    rows = conn.execute("SELECT user_id, kind, enabled, updated_at FROM billing.notification_preferences")
    return {(u, k): (e, at) for u, k, e, at in rows}


def recorded(conn) -> list[tuple[int, str, str]]:
    return conn.execute("SELECT user_id, kind, source FROM digest.unsubscribes ORDER BY id").fetchall()


@pytest.fixture
def served(db_dsn):
    app = create_app(lambda: psycopg.connect(db_dsn), SETTINGS, prefix=PREFIX)
    with ServedApp(app) as server:
        yield server


@pytest.fixture
def client(served):
    with httpx.Client(base_url=served.url, follow_redirects=False, timeout=10) as c:
        yield c


def page_text(response: httpx.Response) -> str:
    body = re.sub(r"<style>.*?</style>", " ", response.text, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def assert_pt_br_page(response: httpx.Response) -> None:
    assert response.headers["content-type"].startswith("text/html")
    assert '<html lang="pt-BR">' in response.text


# -- one click -------------------------------------------------------------------------------------
def test_one_click_post_turns_off_that_users_billing_errors_alert_and_nothing_else(client, people, conn):
    before = preferences(conn)
    response = client.post(PATH, params={"token": token(people["ana"])}, data=ONE_CLICK)
    assert response.status_code == 200
    assert_pt_br_page(response)
    text = page_text(response)
    assert "Aviso desativado" in text and "Pronto, Ana." in text
    assert "“Erros detectados nos faturamentos”" in text and "de nenhuma empresa" in text
    assert 'href="https://app.exemplo.com.br/meu-perfil/notificacoes"' in response.text  # to turn it back on
    after = preferences(conn)
    assert after[(people["ana"], NOTIFICATION_KIND)][0] is False
    changed = {key for key in after if after[key] != before.get(key)}
    assert changed == {(people["ana"], NOTIFICATION_KIND)}  # not her other kinds, not Bruno
    assert recorded(conn) == [(people["ana"], NOTIFICATION_KIND, "one_click")]


def test_a_multipart_one_click_body_works_too(client, people, conn):
    """RFC 8058: mail clients SHOULD send multipart/form-data (and MAY send urlencoded)."""
    response = client.post(PATH, params={"token": token(people["bruno"])},
                           files={"List-Unsubscribe": (None, "One-Click")})
    assert response.request.headers["content-type"].startswith("multipart/form-data")
    assert response.status_code == 200
    assert preferences(conn)[(people["bruno"], NOTIFICATION_KIND)][0] is False


def test_a_repeated_post_answers_the_same_and_changes_nothing_more(client, people, conn):
    link = {"token": token(people["ana"])}
    first = client.post(PATH, params=link, data=ONE_CLICK)
    state = preferences(conn)
    second = client.post(PATH, params=link, data=ONE_CLICK)
    assert first.status_code == second.status_code == 200
    assert first.text == second.text
    assert preferences(conn) == state  # updated_at keeps the moment of the change
    assert len(recorded(conn)) == 1


def test_a_user_without_a_preference_row_gets_one_created_off(client, people, conn):
    assert (people["never"], NOTIFICATION_KIND) not in preferences(conn)
    assert client.post(PATH, params={"token": token(people["never"])}, data=ONE_CLICK).status_code == 200
    assert preferences(conn)[(people["never"], NOTIFICATION_KIND)][0] is False


def test_an_unknown_user_gets_the_done_page_and_nothing_is_written(client, people, conn):
    before = preferences(conn)
    response = client.post(PATH, params={"token": token(999_999)}, data=ONE_CLICK)
    assert response.status_code == 200 and "Aviso desativado" in page_text(response)
    assert preferences(conn) == before and recorded(conn) == []


# -- GET never changes anything --------------------------------------------------------------------
def test_get_and_head_show_the_confirmation_and_change_nothing(client, people, conn):
    before = preferences(conn)
    link = token(people["ana"])
    page = client.get(PATH, params={"token": link})
    assert page.status_code == 200
    assert_pt_br_page(page)
    text = page_text(page)
    assert "Desativar o aviso de erros de faturamento?" in text and "Olá, Ana." in text
    assert "Lima" not in text and "@" not in text.replace("suporte@exemplo.com.br", "")  # first name only
    form = re.search(r'<form method="post" action="([^"]+)">(.*?)</form>', page.text, re.S)
    assert form and html.unescape(form.group(1)) == f"?token={link}"
    assert '<input type="hidden" name="List-Unsubscribe" value="One-Click">' in form.group(2)
    head = client.head(PATH, params={"token": link})
    assert head.status_code == 200 and head.content == b""
    for _ in range(3):  # a link scanner, a preview, a prefetch
        client.get(PATH, params={"token": link})
    assert preferences(conn) == before and recorded(conn) == []


def test_the_confirmation_pages_button_posts_the_one_click_body(client, people, conn):
    """What the browser sends when the button is pressed: the form's fields to the form's action."""
    page = client.get(PATH, params={"token": token(people["ana"])})
    action = html.unescape(re.search(r'<form method="post" action="([^"]+)">', page.text).group(1))
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]+)">', page.text))
    done = client.post(PATH + action, data=fields)
    assert done.status_code == 200 and "Aviso desativado" in page_text(done)
    assert recorded(conn) == [(people["ana"], NOTIFICATION_KIND, "page")]


def test_get_once_the_alert_is_off_says_so(client, people, conn):
    link = {"token": token(people["ana"])}
    client.post(PATH, params=link, data=ONE_CLICK)
    page = client.get(PATH, params=link)
    assert page.status_code == 200
    assert "Este aviso já está desativado" in page_text(page) and "<form" not in page.text


def test_a_post_without_the_one_click_body_changes_nothing_and_asks_to_confirm(client, people, conn):
    before = preferences(conn)
    link = {"token": token(people["ana"])}
    for body in ({}, {"List-Unsubscribe": "Two-Clicks"}, {"origem": "pagina"}):
        response = client.post(PATH, params=link, data=body)
        assert response.status_code == 400
        assert_pt_br_page(response)
        assert "Nada foi alterado ainda" in page_text(response) and '<form method="post"' in response.text
    assert preferences(conn) == before and recorded(conn) == []


# -- refused tokens ----------------------------------------------------------------------------------
def forged(user_id: int) -> str:
    good = token(user_id)
    return good[:-2] + ("AA" if not good.endswith("AA") else "BB")


BAD_TOKENS = {
    "forged signature": lambda u: forged(u),
    "another user's id": lambda u: token(u).replace(f"{u}.", f"{u + 1}.", 1),
    "expired": lambda u: token(u, expires_in=-60),
    "malformed": lambda u: "garbage",
    "truncated": lambda u: token(u)[:20],
    "too long": lambda u: token(u) + "A" * 400,
    "another kind": lambda u: token(u, kind="payables_due"),
    "another secret": lambda u: token(u, secret="another-secret-of-32-characters!"),
    "empty": lambda u: "",
}


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("bad", list(BAD_TOKENS))
def test_a_bad_token_gets_a_pt_br_400_page_and_nothing_changes(client, people, conn, bad, method):
    before = preferences(conn)
    response = client.request(method, PATH, params={"token": BAD_TOKENS[bad](people["ana"])},
                              data=ONE_CLICK if method == "POST" else None)
    assert response.status_code == 400
    assert_pt_br_page(response)
    text = page_text(response)
    assert "Nada foi alterado." in text
    assert ("Este link expirou" if bad == "expired" else "Este link não é válido") in text
    assert "Meu Perfil → Notificações" in text and "<form" not in response.text
    assert preferences(conn) == before and recorded(conn) == []


def test_no_token_or_two_tokens_are_refused(client, people, conn):
    assert client.post(PATH, data=ONE_CLICK).status_code == 400
    two = client.post(f"{PATH}?token={token(people['ana'])}&token={token(people['bruno'])}", data=ONE_CLICK)
    assert two.status_code == 400
    assert recorded(conn) == []


def test_the_kind_is_the_constant_never_a_literal(db_dsn, people, conn, monkeypatch):
    """The app acts on billing_digest.NOTIFICATION_KIND: change the constant and it follows."""
    sources = [ROOT / "plugins" / "billing_digest" / "unsubscribe" / "app.py",
               ROOT / "plugins" / "billing_digest" / "unsubscribe" / "server.py",
               ROOT / "plugins" / "billing_digest" / "unsubscribe" / "preferences.py",
               *(ROOT / "include" / "sql" / "unsubscribe").glob("*.sql"),
               *(ROOT / "include" / "templates" / "unsubscribe").glob("*")]
    for path in sources:
        assert "billing_errors" not in path.read_text(), path
    monkeypatch.setattr("billing_digest.unsubscribe.app.NOTIFICATION_KIND", "payables_due")
    monkeypatch.setattr("billing_digest.unsubscribe.preferences.NOTIFICATION_KIND", "payables_due")
    with ServedApp(create_app(lambda: psycopg.connect(db_dsn), SETTINGS, prefix=PREFIX)) as served:
        refused = httpx.post(served.url + PATH, params={"token": token(people["ana"])}, data=ONE_CLICK)
        done = httpx.post(served.url + PATH, params={"token": token(people["ana"], kind="payables_due")},
                          data=ONE_CLICK)
    assert (refused.status_code, done.status_code) == (400, 200)
    prefs = preferences(conn)
    assert prefs[(people["ana"], "payables_due")][0] is False
    assert prefs[(people["ana"], billing_digest.NOTIFICATION_KIND)][0] is True  # the real kind stayed on


# -- the rest of HTTP --------------------------------------------------------------------------------
def test_every_answer_carries_the_security_headers(client, people):
    link = {"token": token(people["ana"])}
    answers = [client.get(PATH, params=link), client.get(PATH, params={"token": "x"}),
               client.get(f"{PREFIX}/nada"), client.put(PATH, params=link),
               client.post(PATH, params=link, data=ONE_CLICK)]
    assert [a.status_code for a in answers] == [200, 400, 404, 405, 200]
    for answer in answers:
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["referrer-policy"] == "no-referrer"  # the token never leaks to the next site
        csp = answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp and "script-src" not in csp
        assert answer.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_are_405_in_pt_br(client, people, conn, method):
    response = client.request(method, PATH, params={"token": token(people["ana"])}, data=ONE_CLICK)
    assert response.status_code == 405
    assert set(response.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    assert_pt_br_page(response)
    assert "Pedido não aceito" in page_text(response)
    assert recorded(conn) == []


def test_an_oversized_body_is_refused(client, people, conn):
    response = client.post(PATH, params={"token": token(people["ana"])},
                           content=b"List-Unsubscribe=One-Click&x=" + b"a" * 10_000,
                           headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413 and recorded(conn) == []


def test_names_are_escaped(client, world, conn):
    evil = world.user('<script>alert("x")</script> Lima', "evil@acme.com.br", [])
    page = client.get(PATH, params={"token": token(evil)})
    assert "<script>" not in page.text and "&lt;script&gt;" in page.text


def test_health(client, people):
    assert client.get(f"{PREFIX}/healthz").json() == {"status": "ok"}


def test_a_database_outage_is_a_pt_br_503_and_changes_nothing(people):
    def down() -> psycopg.Connection:
        raise psycopg.OperationalError("connection refused")

    with ServedApp(create_app(down, SETTINGS, prefix=PREFIX)) as served:
        response = httpx.post(served.url + PATH, params={"token": token(people["ana"])}, data=ONE_CLICK)
        health = httpx.get(served.url + f"{PREFIX}/healthz")
    assert response.status_code == 503 and response.headers["retry-after"] == "120"
    assert "Não foi possível concluir agora" in page_text(response) and "Nada foi alterado." in page_text(response)
    assert health.status_code == 503


# -- starting it -----------------------------------------------------------------------------------
def test_the_app_refuses_to_start_with_the_default_secret():
    with pytest.raises(UnsafeSettings, match="unsubscribe_secret is the default"):
        create_app(lambda: None, Settings(), prefix=PREFIX)  # type: ignore[arg-type, return-value]


def server_env(db_dsn: str, port: int, secret: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT)]),
            "BILLING_DIGEST_DSN": db_dsn, "UNSUBSCRIBE_PORT": str(port), "BILLING_DIGEST_UNSUBSCRIBE_SECRET": secret,
            "UNSUBSCRIBE_WORKERS": "2",  # several worker processes, as on a production machine
            "BILLING_DIGEST_UNSUBSCRIBE_URL": f"http://127.0.0.1:{port}{PATH}"}


def test_the_server_process_refuses_to_start_with_the_default_secret(db_dsn):
    done = subprocess.run([sys.executable, "-m", "billing_digest.unsubscribe.server"], capture_output=True,
                          text=True, timeout=60, env=server_env(db_dsn, free_port(), "change-me"))
    assert done.returncode != 0
    assert "refuses to start: the setting unsubscribe_secret is the default" in done.stderr
    assert "BILLING_DIGEST_UNSUBSCRIBE_SECRET" in done.stderr and "Uvicorn running" not in done.stderr


def test_the_server_process_serves_the_links_and_keeps_tokens_out_of_its_log(db_dsn, people, conn):
    """`python -m billing_digest.unsubscribe.server`, as the compose service runs it."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "billing_digest.unsubscribe.server"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=server_env(db_dsn, port, SECRET))
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}{PREFIX}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        link = token(people["ana"])
        assert httpx.get(f"{base}{PATH}", params={"token": link}).status_code == 200
        assert httpx.post(f"{base}{PATH}", params={"token": link}, data=ONE_CLICK).status_code == 200
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    assert preferences(conn)[(people["ana"], NOTIFICATION_KIND)][0] is False
    assert f"GET {PATH}?token=…" in output and f"POST {PATH}?token=…" in output  # the access log, redacted
    assert link not in output and link.rsplit(".", 1)[1] not in output


def test_the_access_log_filter_redacts_tokens():
    import logging

    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "POST", "/notificacoes/cancelar?token=5.billing_errors.9.sig&x=1",
                                "1.1", 200), None)
    RedactTokens().filter(record)
    assert record.getMessage() == '127.0.0.1:5 - "POST /notificacoes/cancelar?token=…&x=1 HTTP/1.1" 200'
