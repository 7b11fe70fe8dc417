"""Look at the digest e-mail in a real browser: render one and screenshot it at desktop and phone widths.

    python -m devtools.screenshots OUTDIR     # OUTDIR/digest-desktop.png, OUTDIR/digest-phone.png
    python -m devtools.screenshots --preview OUTFILE   # the preview page in a real Airflow (after make demo)

Chromium is Debian's (/usr/bin/chromium, package ``chromium``), driven by Playwright over CDP;
Playwright's own browser downloads are never used. The same browser takes the screenshot of the
digest preview page (``preview_page``), logged in to a running Airflow.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.sample_digests import sample_payload

CHROMIUM = os.environ.get("BILLING_DIGEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
WIDTHS = {"desktop": 1280, "phone": 390}
__all__ = ["sample_payload", "render_sample", "digest_screenshots", "preview_page", "browser", "shoot_html"]
NOW = dt.datetime(2026, 11, 28, 9, 30, tzinfo=dt.UTC)


def render_sample(payload: dict[str, Any] | None = None) -> str:
    """The HTML part of the sample digest, exactly as the recipient's mail client gets it."""
    from billing_digest.mail.render import Recipient, Renderer
    from billing_digest.settings import Settings

    renderer = Renderer(Settings(unsubscribe_secret="screenshots"))
    recipient = Recipient(5, "Maria Aparecida Souza", "maria.souza@padariapaoecia.com.br")
    return renderer.render(payload or sample_payload(), recipient, NOW).html


def chromium_available() -> bool:
    return Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)


@contextmanager
def browser() -> Iterator[Any]:
    """A headless Debian Chromium with a fresh profile, closed (and its profile removed) on exit."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="bd-chromium-")
    try:
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
                viewport={"width": WIDTHS["desktop"], "height": 900}, device_scale_factor=1)
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@dataclass(frozen=True)
class Shot:
    path: Path
    width: int
    scroll_width: int
    buttons: int
    buttons_visible: int


# Per link button: visible, with a box inside the viewport's width.
_BUTTONS_JS = """(width) => {
  const buttons = [...document.querySelectorAll('a')].filter(a => a.textContent.trim() === 'Abrir faturamento');
  const visible = buttons.filter(a => {
    const r = a.getBoundingClientRect(), s = getComputedStyle(a);
    return r.width > 0 && r.height > 0 && r.left >= 0 && r.right <= width && s.visibility !== 'hidden'
      && s.display !== 'none' && s.opacity !== '0';
  });
  return [buttons.length, visible.length, document.documentElement.scrollWidth];
}"""


def shoot_html(context: Any, html: str, path: Path, width: int) -> Shot:
    page = context.new_page()
    try:
        page.set_viewport_size({"width": width, "height": 900})
        page.set_content(html, wait_until="load")
        buttons, visible, scroll_width = page.evaluate(_BUTTONS_JS, width)
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True)
        return Shot(path, width, scroll_width, buttons, visible)
    finally:
        page.close()


def digest_screenshots(outdir: Path, html: str | None = None) -> dict[str, Shot]:
    """``outdir/digest-desktop.png`` (1280 wide) and ``outdir/digest-phone.png`` (390 wide)."""
    html = html or render_sample()
    with browser() as context:
        return {name: shoot_html(context, html, outdir / f"digest-{name}.png", width)
                for name, width in WIDTHS.items()}


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the PNG header."""
    head = path.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG")
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def preview_page(base_url: str, password: str, out: Path, path: str = "/billing-digest/",
                 user: str = "admin", width: int = WIDTHS["desktop"], in_ui: bool = False,
                 ui_route: str = "billing-digest") -> Path:
    """Log in to Airflow's UI (simple auth manager) and screenshot the digest preview page.

    ``in_ui``: the page as the UI shows it (Browse -> Billing digest: an iframe in Airflow's
    layout, one viewport high) instead of the page itself (full length).
    """
    with browser() as context:
        page = context.new_page()
        page.set_viewport_size({"width": width, "height": 1000})
        page.goto(f"{base_url}/auth/login/", wait_until="networkidle")
        page.fill("input[name=username]", user)
        page.fill("input[name=password]", password)
        page.keyboard.press("Enter")
        page.wait_for_url(lambda url: "/login" not in url, timeout=30_000)
        page.wait_for_load_state("networkidle")
        if in_ui:
            page.goto(f"{base_url}/plugin/{ui_route}", wait_until="networkidle")
            page.frame_locator("iframe").locator("h1").wait_for(timeout=30_000)
            page.wait_for_timeout(1500)
        else:
            page.goto(f"{base_url}{path}", wait_until="networkidle")
            # Chromium does not paint sandboxed (cross-origin) iframes outside the viewport:
            # make the viewport as tall as the page so the e-mail's iframe is drawn.
            height = page.evaluate("document.documentElement.scrollHeight")
            page.set_viewport_size({"width": width, "height": min(int(height), 8000)})
            page.wait_for_timeout(1000)
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out), full_page=not in_ui)
        page.close()
    return out


def capture_preview(out: Path, port: int | None = None) -> None:
    """Start a real Airflow (``LocalAirflow``) on the demo's billing database and screenshot the
    preview page of a company of the latest digest day (the most delivery states, a few recipients)."""
    import psycopg

    from devtools.airflow_env import DEMO, billing_dsn
    from devtools.airflow_local import LocalAirflow
    from devtools.smtp_sink import free_port

    dsn = billing_dsn()
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT digest_date, entity_id FROM digest.deliveries GROUP BY digest_date, entity_id "
            "ORDER BY digest_date DESC, count(DISTINCT state) DESC, abs(count(*) - 3), entity_id LIMIT 1").fetchone()
    if row is None:
        raise SystemExit("no digests in the demo database: run `make demo` first")
    day, entity_id = row
    with LocalAirflow(DEMO / "airflow-preview", dsn, free_port(), port=port or free_port()) as af:
        base = f"http://localhost:{af.port}"
        password = af.admin_password()
        preview_page(base, password, out, path=f"/billing-digest/?digest_date={day}&entity_id={entity_id}")
        in_ui = out.with_name(out.stem + "-in-ui" + out.suffix)
        preview_page(base, password, in_ui, in_ui=True)
        print(f"{out}\n{in_ui}")


def main(argv: list[str]) -> None:
    if not chromium_available():
        raise SystemExit(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    if len(argv) == 2 and argv[0] == "--preview":
        capture_preview(Path(argv[1]))
        return
    if len(argv) != 1:
        raise SystemExit("usage: python -m devtools.screenshots OUTDIR | --preview OUTFILE")
    shots = digest_screenshots(Path(argv[0]))
    for name, shot in shots.items():
        print(f"{name:8} {shot.path} ({png_size(shot.path)[0]}x{png_size(shot.path)[1]}; page scrollWidth "
              f"{shot.scroll_width}; {shot.buttons_visible}/{shot.buttons} buttons visible)")


if __name__ == "__main__":
    main(sys.argv[1:])
