"""An ASGI app served for real by uvicorn on 127.0.0.1 in a background thread (tests, screenshots).

    with ServedApp(app) as served:        # a free port; https with certfile/keyfile
        httpx.post(served.url + "/notificacoes/cancelar?token=...", ...)
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from devtools.smtp_sink import free_port


class ServedApp:
    def __init__(self, app: Any, port: int | None = None, certfile: Path | None = None,
                 keyfile: Path | None = None, host: str = "127.0.0.1", lifespan: str = "off"):
        import uvicorn

        self.host, self.port = host, port or free_port()
        self.scheme = "https" if certfile else "http"
        config = uvicorn.Config(app, host=host, port=self.port, log_level="warning", lifespan=lifespan,
                                ssl_certfile=str(certfile) if certfile else None,
                                ssl_keyfile=str(keyfile) if keyfile else None)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"uvicorn-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        host = "localhost" if self.scheme == "https" else self.host  # the test certificate names localhost
        return f"{self.scheme}://{host}:{self.port}"

    def __enter__(self) -> ServedApp:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on {self.host}:{self.port}")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
