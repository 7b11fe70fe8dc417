"""The digest e-mail in a real browser (Debian's Chromium driven by Playwright): it fits a phone,
its link buttons show, and the screenshots come out at the widths asked for."""

from __future__ import annotations

import pytest
from conftest import missing_system_tool

from devtools import screenshots


def _need_chromium() -> None:
    missing = []
    if not screenshots.chromium_available():
        missing.append(f"no Chromium at {screenshots.CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package is not installed (pip install -r requirements.txt)")
    if not missing:
        return
    missing_system_tool("the browser tests", "; ".join(missing))


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    _need_chromium()
    return screenshots.digest_screenshots(tmp_path_factory.mktemp("shots"))


def test_screenshots_have_the_requested_widths(shots):
    assert set(shots) == {"desktop", "phone"}
    for name, width in (("desktop", 1280), ("phone", 390)):
        shot = shots[name]
        assert shot.path.name == f"digest-{name}.png" and shot.path.stat().st_size > 10_000
        png_width, png_height = screenshots.png_size(shot.path)
        assert png_width == width
        assert png_height > 900  # full page, not just the viewport


def test_no_horizontal_overflow_at_phone_width(shots):
    assert shots["phone"].scroll_width <= 390
    assert shots["desktop"].scroll_width <= 1280


def test_every_link_button_is_visible(shots):
    items = sum(len(c["invoices"]) for t in screenshots.sample_payload()["topics"] for c in t["causes"])
    for shot in shots.values():
        assert shot.buttons == items
        assert shot.buttons_visible == items


def test_hostile_content_still_fits_a_phone(tmp_path):
    """Unbroken long words (names, messages, addresses) must wrap, not widen the page."""
    _need_chromium()
    payload = screenshots.sample_payload()
    payload["entity"]["name"] = "Comércio" + "X" * 120
    block = payload["topics"][0]["causes"][0]                # a block: its header and its rows
    card = payload["topics"][0]["causes"][1]                 # a card
    for cause in (block, card):
        cause["invoices"][0]["customer"] = "Cliente" + "Y" * 150
        cause["message"] = "https://prefeitura.exemplo.gov.br/" + "a" * 300 + ' <script>alert("x")</script>'
        cause["code"] = "CODIGO_" + "Z" * 60
    block["invoices"][1]["detail"] = "enderecocomprido" * 12 + "@exemplo.com.br"
    html = screenshots.render_sample(payload)
    assert "&lt;script&gt;" in html
    with screenshots.browser() as context:
        shot = screenshots.shoot_html(context, html, tmp_path / "hostile.png", 390)
    assert shot.scroll_width <= 390
    assert shot.buttons_visible == shot.buttons > 0
