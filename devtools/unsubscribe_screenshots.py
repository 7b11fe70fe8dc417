"""Look at the one-click unsubscribe pages in a real browser: the confirmation page and, after
pressing its button, the done page, at phone (390 px) and desktop (1280 px) widths.

    python -m devtools.unsubscribe_screenshots OUTDIR
        # OUTDIR/unsubscribe-{confirm,done}-{phone,desktop}.png and unsubscribe-invalid-phone.png

The service runs for real (uvicorn on a free port, ``create_app`` as the product mounts it) on a
scratch database of the demo's PostgreSQL (embedded in .demo/pg, or BILLING_DIGEST_DSN's server)
with one user, dropped afterwards. Chromium is Debian's, as in :mod:`devtools.screenshots`.
"""

from __future__ import annotations

import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from billing_digest import NOTIFICATION_KIND, sql
from billing_digest.settings import Settings
from billing_digest.unsubscribe.app import PREFIX, create_app
from billing_digest.unsubscribe.tokens import make_token
from devtools.asgi_server import ServedApp
from devtools.screenshots import CHROMIUM, WIDTHS, browser, chromium_available, png_size

USER_ID, USER_NAME = 5, "Maria Aparecida Souza"
HEIGHTS = {"phone": 844, "desktop": 900}  # an iPhone 14's viewport; a laptop's


@dataclass(frozen=True)
class PageShot:
    path: Path
    width: int
    scroll_width: int     # > width: the page overflows sideways
    heading: str
    button: str           # the main button's text ("" if none)
    button_visible: bool  # inside the viewport's width, without scrolling sideways
    button_height: int    # a thumb needs >= 44 px


_INSPECT_JS = """(width) => {
  const button = document.querySelector('.button');
  let visible = false, height = 0;
  if (button) {
    const r = button.getBoundingClientRect(), s = getComputedStyle(button);
    visible = r.width > 0 && r.height > 0 && r.left >= 0 && r.right <= width && s.visibility !== 'hidden';
    height = Math.round(r.height);
  }
  return [document.documentElement.scrollWidth, document.querySelector('h1').textContent.trim(),
          button ? button.textContent.trim() : '', visible, height];
}"""


def _shoot(page: Any, path: Path, width: int) -> PageShot:
    scroll_width, heading, button, visible, height = page.evaluate(_INSPECT_JS, width)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return PageShot(path, width, scroll_width, heading, button, visible, height)


def prepare(conn: psycopg.Connection) -> None:
    """One user with the billing-errors alert on (again, if a previous shot turned it off)."""
    conn.execute("INSERT INTO billing.users (id, name, email) VALUES (%s, %s, %s) ON CONFLICT (id) DO NOTHING",
                 (USER_ID, USER_NAME, "maria.souza@padariapaoecia.com.br"))
    conn.execute("INSERT INTO billing.notification_preferences (user_id, kind, enabled) VALUES (%s, %s, true) "
                 "ON CONFLICT (user_id, kind) DO UPDATE SET enabled = true", (USER_ID, NOTIFICATION_KIND))


def unsubscribe_screenshots(dsn: str, outdir: Path) -> dict[str, PageShot]:
    """Serve the app on ``dsn`` (schema applied) and screenshot its pages; returns them by name."""
    secret = secrets.token_urlsafe(32)
    settings = Settings(unsubscribe_secret=secret)
    link = "/cancelar?token=" + make_token(secret, USER_ID, NOTIFICATION_KIND, int(time.time()) + 86400)
    shots: dict[str, PageShot] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        sql.apply_schema(conn)
        with ServedApp(create_app(lambda: psycopg.connect(dsn), settings, prefix=PREFIX)) as served, \
                browser() as context:
            for name, width in WIDTHS.items():
                prepare(conn)
                page = context.new_page()
                try:
                    page.set_viewport_size({"width": width, "height": HEIGHTS[name]})
                    page.goto(f"{served.url}{PREFIX}{link}", wait_until="load")
                    shots[f"confirm-{name}"] = _shoot(page, outdir / f"unsubscribe-confirm-{name}.png", width)
                    with page.expect_navigation(wait_until="load"):
                        page.get_by_role("button", name="Desativar o aviso").click()
                    shots[f"done-{name}"] = _shoot(page, outdir / f"unsubscribe-done-{name}.png", width)
                    if name == "phone":
                        page.goto(f"{served.url}{PREFIX}/cancelar?token=5.{NOTIFICATION_KIND}.1.forjado",
                                  wait_until="load")
                        shots["invalid-phone"] = _shoot(page, outdir / "unsubscribe-invalid-phone.png", width)
                finally:
                    page.close()
    return shots


def scratch_dsn() -> tuple[str, str]:
    """(server DSN, scratch database DSN) on the demo's PostgreSQL."""
    import os

    from devtools import embedded_pg
    from devtools.airflow_env import DEMO

    server = os.environ.get("BILLING_DIGEST_DSN") or embedded_pg.start(DEMO / "pg", keep_running=True)
    return server, embedded_pg.ensure_database(server, "unsubscribe_screenshots", recreate=True)


def main(argv: list[str]) -> None:
    if not chromium_available():
        raise SystemExit(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    if len(argv) != 1:
        raise SystemExit("usage: python -m devtools.unsubscribe_screenshots OUTDIR")
    server, dsn = scratch_dsn()
    try:
        shots = unsubscribe_screenshots(dsn, Path(argv[0]))
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS unsubscribe_screenshots WITH (FORCE)")
    for name, shot in shots.items():
        w, h = png_size(shot.path)
        print(f"{name:16} {shot.path} ({w}x{h}; scrollWidth {shot.scroll_width}; h1 {shot.heading!r}; "
              f"button {shot.button!r} {'visible' if shot.button_visible else 'HIDDEN'}, {shot.button_height}px)")


if __name__ == "__main__":
    main(sys.argv[1:])
