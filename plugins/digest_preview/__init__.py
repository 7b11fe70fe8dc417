"""The digest preview page of the Airflow UI (registered by ``plugins/digest_preview_plugin.py``).

Every Airflow process loads plugins (scheduler, dag-processor, workers, ...), but only the
api-server serves this page: so this module stays import-light, and the FastAPI app (with
FastAPI, Jinja2, the renderer and the api-server's auth) is built on the first request only.
``plugins/.airflowignore`` keeps the plugin manager from importing this package's modules as
plugins of their own.
"""

from __future__ import annotations

import threading
from typing import Any

URL_PREFIX = "/billing-digest"


class LazyApp:
    """An ASGI app that builds ``digest_preview.app.create_app()`` when the first request comes."""

    def __init__(self) -> None:
        self._app: Any = None
        self._lock = threading.Lock()

    @property
    def app(self) -> Any:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    from digest_preview.app import create_app

                    self._app = create_app()
        return self._app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

    def __repr__(self) -> str:  # shown by `airflow plugins` and the /plugins API
        return "digest_preview.app:create_app (built on first request)"


app = LazyApp()
