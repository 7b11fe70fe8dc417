"""The digest preview page (plugins/digest_preview): a real PostgreSQL ledger filled by a real
delivery to a real SMTP server, the FastAPI app through its TestClient, and the api-server's
real JWT authentication with the simple auth manager."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from markupsafe import escape

from billing_digest import build, extract, plan
from billing_digest.delivery.deliver import DeliveryOptions, deliver_batch
from billing_digest.delivery.smtp import SmtpSettings
from billing_digest.mail.render import Renderer
from billing_digest.settings import Settings
from billing_digest.window import window_for_date
from devtools import embedded_pg
from tests.world import local

# Not `from tests.conftest import ROOT`: that would run conftest.py a second time, under another
# module name, and point AIRFLOW_HOME at a new folder mid-session.
ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.filterwarnings("ignore:The HMAC key is")  # the test home's generated JWT secret

DAY = dt.date(2026, 11, 27)
SETTINGS = Settings(unsubscribe_secret="preview-test", base_url="https://app.exemplo.com.br")
EVIL_NAME = "Padaria <b>Pão</b> & Cia"
EVIL_MESSAGE = '<script>alert("x")</script> Código de serviço inválido'


@pytest.fixture
def day(world, conn, smtp_sink):
    """Two companies with errors, delivered for real: Bruno's mailbox refuses (550)."""
    padaria, zeta = world.entity(EVIL_NAME), world.entity("Zeta Engenharia SA")
    users = {
        "ana": world.user("Ana Lima", "ana@padaria.com.br", [padaria, zeta]),
        "bruno": world.user("Bruno Reis", "bruno@padaria.com.br", [padaria]),
        "caio": world.user("Caio Dias", "caio@zeta.com.br", [zeta]),
    }
    for entity in (padaria, zeta):
        inv = world.invoice(entity, local(DAY, 9), customer="Cliente <i>Especial</i>")
        world.all_ok(inv, local(DAY, 9), steps=("boleto", "charge_email"))
        world.attempt(inv, "nfse", "rejected", local(DAY, 9, 1), EVIL_MESSAGE, "E160")
    window = window_for_date(DAY)
    extract.stage_errors(conn, window)
    build.build_and_stage(conn, window, SETTINGS)
    smtp_sink.faults.on_rcpt = lambda a: "550 5.1.1 Mailbox does not exist" if a.startswith("bruno") else None
    for batch in plan.plan_batches(conn, DAY):
        deliver_batch(conn, SmtpSettings(port=smtp_sink.port, timeout=5), Renderer(SETTINGS), DAY, batch.batch,
                      DeliveryOptions(backoff_seconds=0.1, run_id="test"), sleep=lambda s: None)
    return {"padaria": padaria, "zeta": zeta, **users}


@pytest.fixture
def app(db_dsn, monkeypatch):
    """The plugin's app on the test database, reached as in the api-server: through the Airflow
    connection ``billing_db`` (here from AIRFLOW_CONN_BILLING_DB). Auth stays real unless a test
    overrides it."""
    from digest_preview.app import create_app, digest_settings

    monkeypatch.setenv("AIRFLOW_CONN_BILLING_DB", json.dumps(embedded_pg.airflow_connection(db_dsn)))
    application = create_app()
    application.dependency_overrides[digest_settings] = lambda: SETTINGS
    return application


@pytest.fixture
def logged_in(app):
    """As if the api-server had authenticated and authorized the caller."""
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from digest_preview.app import require_access

    app.dependency_overrides[require_access] = lambda: SimpleAuthManagerUser(username="analyst", role="viewer")
    return TestClient(app)


@pytest.fixture(scope="module")
def auth_manager():
    from airflow.api_fastapi.app import create_auth_manager

    manager = create_auth_manager()
    manager.init()
    return manager


def received_bodies(smtp_sink, address, entity_id):
    [msg] = [m.message for m in smtp_sink.messages
             if m.rcpt_tos == [address] and f"entity={entity_id};" in m.message["X-Billing-Digest"]]
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    return (parsed.get_body(("html",)).get_content().replace("\r\n", "\n"),
            parsed.get_body(("plain",)).get_content().replace("\r\n", "\n"))


# -- authentication and authorization --------------------------------------------------------
@pytest.mark.parametrize("path", ["/", "/?digest_date=2026-11-27",
                                  "/message.eml?digest_date=2026-11-27&entity_id=1&user_id=1", "/history"])
def test_without_credentials_every_route_is_refused(app, path):
    client = TestClient(app)
    response = client.get(path)
    assert response.status_code == 401
    assert "Padaria" not in response.text


def test_a_browser_without_login_gets_a_link_to_the_airflow_login(app, auth_manager):
    response = TestClient(app).get("/", headers={"Accept": "text/html"})
    assert response.status_code == 401
    assert "/auth/login" in response.text and "Log in to Airflow" in response.text


def test_a_forged_token_is_refused(app, auth_manager):
    forged = "eyJhbGciOiJIUzUxMiJ9.eyJzdWIiOiJhZG1pbiIsInJvbGUiOiJhZG1pbiJ9.c2lnbmF0dXJl"
    assert TestClient(app, cookies={"_token": forged}).get("/").status_code == 403
    assert TestClient(app).get("/", headers={"Authorization": f"Bearer {forged}"}).status_code == 403


def test_a_real_ui_session_token_is_accepted_and_the_role_is_checked(app, day, auth_manager, airflow_db):
    """The JWT the api-server sets as the UI's `_token` cookie after login, made by the real auth
    manager: a viewer may read the page; a user without a role may not."""
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    viewer = auth_manager.generate_jwt(SimpleAuthManagerUser(username="analyst", role="viewer"))
    response = TestClient(app, cookies={"_token": viewer}).get("/")
    assert response.status_code == 200, response.text
    assert "Zeta Engenharia SA" in response.text
    bearer = TestClient(app).get("/", headers={"Authorization": f"Bearer {viewer}"})
    assert bearer.status_code == 200

    nobody = auth_manager.generate_jwt(SimpleAuthManagerUser(username="guest", role=None))
    refused = TestClient(app, cookies={"_token": nobody}).get("/")
    assert refused.status_code == 403
    assert "Zeta" not in refused.text


# -- what the page shows ---------------------------------------------------------------------
def test_the_day_lists_its_digests_and_the_ledger_totals(logged_in, day):
    page = logged_in.get("/").text  # no day given: the latest day with digests
    assert 'value="2026-11-27"' in page
    assert "Zeta Engenharia SA" in page
    assert "Padaria &lt;b&gt;Pão&lt;/b&gt; &amp; Cia" in page and "<b>Pão</b>" not in page
    assert f"entity_id={day['padaria']}" in page and f"entity_id={day['zeta']}" in page
    # ledger: Ana x2 and Caio sent, Bruno failed
    assert '<span class="state state-sent">sent</span> <b>3</b>' in page
    assert '<span class="state state-failed">failed</span> <b>1</b>' in page
    empty = logged_in.get("/?digest_date=2026-11-20").text
    assert "No digest on this day." in empty


def test_a_company_shows_each_recipient_state_from_the_ledger(logged_in, day, conn):
    page = logged_in.get(f"/?digest_date=2026-11-27&entity_id={day['padaria']}").text
    ledger = {r[0]: r[1:] for r in conn.execute(
        "SELECT user_id, state, reason, message_id FROM digest.deliveries WHERE entity_id = %s", (day["padaria"],))}
    assert ledger[day["ana"]][0] == "sent" and ledger[day["bruno"]][0] == "failed"
    for user_id, (state, reason, message_id) in ledger.items():
        assert f'<td class="num">{user_id}</td>' in page
        assert f'<span class="state state-{state}">{state}</span>' in page
        if reason:
            assert str(escape(reason)) in page
        if message_id:
            assert str(escape(message_id)) in page
    assert "550" in page  # Bruno's refusal, as the server gave it
    assert "Ana Lima" in page and "Bruno Reis" in page and "Caio Dias" not in page


def test_the_email_is_shown_exactly_as_it_was_sent_and_stays_escaped(logged_in, day, smtp_sink):
    page = logged_in.get(f"/?digest_date=2026-11-27&entity_id={day['padaria']}&user_id={day['ana']}").text
    sent_html, sent_text = received_bodies(smtp_sink, "ana@padaria.com.br", day["padaria"])
    # The HTML part the SMTP server received is the iframe's document, escaped once for srcdoc ...
    assert f'srcdoc="{escape(sent_html)}"' in page
    assert 'sandbox=""' in page
    # ... and the text part is the <pre>.
    assert str(escape(sent_text)) in page
    # Hostile data stays inert: escaped in the e-mail, escaped again in the attribute.
    assert "&lt;script&gt;" in sent_html and "<script>" not in sent_html
    assert "<script" not in page
    assert "&amp;lt;script&amp;gt;" in page
    assert "Padaria &amp;lt;b&amp;gt;Pão&amp;lt;/b&amp;gt;" in page  # inside srcdoc
    assert "<i>Especial</i>" not in page


def test_the_default_recipient_is_one_that_was_sent(logged_in, day, smtp_sink):
    page = logged_in.get(f"/?digest_date=2026-11-27&entity_id={day['padaria']}").text
    assert "E-mail to Ana Lima" in page and "as sent at" in page


def test_a_failed_recipient_is_previewed_and_said_so(logged_in, day):
    page = logged_in.get(f"/?digest_date=2026-11-27&entity_id={day['padaria']}&user_id={day['bruno']}").text
    assert "E-mail to Bruno Reis" in page
    assert "not sent: preview as of now" in page
    assert "srcdoc=" in page


def test_the_eml_download_has_the_sent_bodies(logged_in, day, smtp_sink):
    response = logged_in.get(f"/message.eml?digest_date=2026-11-27&entity_id={day['padaria']}&user_id={day['ana']}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("message/rfc822")
    msg = email.message_from_bytes(response.content, policy=email.policy.default)
    sent_html, sent_text = received_bodies(smtp_sink, "ana@padaria.com.br", day["padaria"])
    assert msg.get_body(("html",)).get_content().replace("\r\n", "\n") == sent_html
    assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n") == sent_text
    assert msg["Message-ID"] == f"<billing-errors.2026-11-27.{day['padaria']}.{day['ana']}@fintera.com.br>"
    missing = logged_in.get(f"/message.eml?digest_date=2026-11-27&entity_id={day['padaria']}&user_id=999999")
    assert missing.status_code == 404


def test_the_page_reads_the_billing_db_read_only(app):  # app: AIRFLOW_CONN_BILLING_DB set
    from digest_preview.app import billing_conn

    dependency = billing_conn()
    conn = next(dependency)
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        conn.execute("CREATE TABLE digest.should_not_exist (x int)")
    dependency.close()
    assert conn.closed


def test_bad_parameters_are_rejected(logged_in, day):
    assert logged_in.get("/?digest_date=27/11/2026").status_code == 422
    assert logged_in.get("/?digest_date=2026-11-27&entity_id=1;drop").status_code == 422
    assert logged_in.get("/?digest_date=2026-11-27&entity_id=").status_code == 200  # the form's "all"


# -- the plugin itself -----------------------------------------------------------------------
def test_airflow_loads_the_plugin_with_its_app_and_nav_entry():
    from airflow import plugins_manager

    plugins, errors = plugins_manager._get_plugins()
    assert not errors, errors
    apps, _ = plugins_manager.get_fastapi_plugins()
    [mine] = [a for a in apps if a["url_prefix"] == "/billing-digest"]
    assert mine["name"] == "Billing digest preview"
    views, _ = plugins_manager._get_ui_plugins()
    [view] = [v for v in views if v.get("url_route") == "billing-digest"]
    assert view["destination"] == "nav" and view["href"] == "billing-digest/"
    # The package's own modules are not taken for plugins (plugins/.airflowignore).
    assert [p.name for p in plugins].count("billing_digest_preview") == 1


def test_importing_the_plugin_is_light(tmp_path):
    """Every Airflow process imports plugins; only the api-server should pay for the page."""
    code = ("import sys, digest_preview_plugin; "
            "heavy = [m for m in ('digest_preview.app', 'billing_digest.mail.render', 'fastapi', "
            "'airflow.api_fastapi.core_api.security') if m in sys.modules]; print(heavy); assert not heavy")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={"PYTHONPATH": f"{ROOT / 'plugins'}:{ROOT}", "PATH": "/usr/bin:/bin",
                              "AIRFLOW_HOME": str(tmp_path),
                              "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_page_refuses_like_the_runs_with_the_default_unsubscribe_secret(app, logged_in, monkeypatch):
    from digest_preview.app import digest_settings

    app.dependency_overrides.pop(digest_settings)  # the settings as the DAG reads them
    monkeypatch.setenv("BILLING_DIGEST_UNSUBSCRIBE_SECRET", "change-me")
    response = logged_in.get("/")
    assert response.status_code == 503
    assert "the setting unsubscribe_secret is the default" in response.json()["detail"]


# -- history (issue 17) ------------------------------------------------------------------------
def test_the_history_charts_the_days_and_marks_the_held_one(logged_in, day, conn):
    from billing_digest import holds, summary
    from billing_digest.handoffs import BuiltDay

    built = BuiltDay(DAY, 2, {"nfse": 2, "boleto": 0, "notification": 0}, 2, 0, 3, {})
    summary.save(conn, summary.summarize(conn, built, [], "run-1"))
    held_day = DAY + dt.timedelta(days=1)
    holds.record(conn, held_day, ["volume anomaly: 80 errors in topic Cobrança <b>x</b>"])
    page = logged_in.get("/history?days=30").text
    assert page.count("<svg") == 4  # three topics and the digests
    assert f'href="./?digest_date={DAY}"' in page  # a day opens its preview
    assert f'href="./?digest_date={held_day}"' in page and "HELD, nothing sent" in page
    assert "Cobrança &lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page  # escaped
    assert "2 errors in Nota Fiscal" in page
    assert "27/11/2026, sent 3, failed 1" in page  # Ana (two companies) and Caio sent, Bruno refused
    assert "held, sent later" not in page and ">held<" in page


def test_a_held_day_preview_says_why_and_what_to_do(logged_in, conn):
    from billing_digest import holds

    holds.record(conn, DAY, ["the attempt history does not cover the window"])
    page = logged_in.get(f"/?digest_date={DAY}").text
    assert "Held: no digest was sent for this day." in page
    assert "the attempt history does not cover the window" in page
    assert "accept_anomaly=true" in page and "No digest on this day." not in page
