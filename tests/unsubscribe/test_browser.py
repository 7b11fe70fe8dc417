"""The unsubscribe pages in a real browser (Debian's Chromium driven by Playwright), served for real:
the confirmation page fits a phone, its button is there and big enough, and pressing it turns
the alert off (the form, its CSP and the POST work in a browser, not only in httpx)."""

from __future__ import annotations

import pytest

from billing_digest import NOTIFICATION_KIND
from devtools import screenshots
from devtools.unsubscribe_screenshots import USER_ID, unsubscribe_screenshots
from tests.mail.test_screenshots import _need_chromium


@pytest.fixture(scope="module")
def shots(pg_server, tmp_path_factory):
    _need_chromium()
    from devtools import embedded_pg

    dsn = embedded_pg.ensure_database(pg_server, "bd_unsubscribe_browser", recreate=True)
    yield unsubscribe_screenshots(dsn, tmp_path_factory.mktemp("unsubscribe-shots")), dsn
    import psycopg

    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute('DROP DATABASE IF EXISTS "bd_unsubscribe_browser" WITH (FORCE)')


def test_every_page_fits_its_width_with_a_visible_thumb_sized_button(shots):
    pages, _ = shots
    assert set(pages) == {"confirm-phone", "confirm-desktop", "done-phone", "done-desktop", "invalid-phone"}
    for name, shot in pages.items():
        width = screenshots.WIDTHS[name.rsplit("-", 1)[1]]
        assert screenshots.png_size(shot.path)[0] == width and shot.path.stat().st_size > 5_000
        assert shot.scroll_width <= width, f"{name} overflows sideways"
        assert shot.button_visible and shot.button_height >= 44, name


def test_pressing_the_button_turns_the_alert_off(shots):
    import psycopg

    pages, dsn = shots
    assert pages["confirm-phone"].heading == "Desativar o aviso de erros de faturamento?"
    assert pages["confirm-phone"].button == "Desativar o aviso"
    assert pages["done-phone"].heading == pages["done-desktop"].heading == "Aviso desativado"
    assert pages["invalid-phone"].heading == "Este link não é válido"
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT enabled FROM billing.notification_preferences WHERE user_id = %s AND kind = %s",
                            (USER_ID, NOTIFICATION_KIND)).fetchone() == (False,)
        # pressed once per width; each press recorded as from the page, not a mail client
        assert conn.execute("SELECT source, count(*) FROM digest.unsubscribes GROUP BY 1").fetchall() == [("page", 2)]
