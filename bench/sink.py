"""A fast SMTP sink for the benchmarks: aiosmtpd in its own process, counting and discarding messages.

The parent reads the count and the time of the first and last accepted message from shared memory,
so a benchmark can tell when the last e-mail of a run arrived without the sink writing anything.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from typing import Any

from devtools.smtp_sink import free_port


class _Discard:
    def __init__(self, count: Any, first: Any, last: Any, nbytes: Any):
        self.count, self.first, self.last, self.nbytes = count, first, last, nbytes

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.time()
        if self.count.value == 0:
            self.first.value = now
        self.count.value += 1
        self.last.value = now
        self.nbytes.value += len(envelope.original_content or b"")
        return "250 OK"


def _fast_smtp_class(reply_delay: float = 0.0) -> type:
    import asyncio

    from aiosmtpd.smtp import SMTP

    class FastDataSMTP(SMTP):
        """aiosmtpd reading DATA in one piece (stock aiosmtpd reads it line by line, ~4 ms for a
        30 KB digest: the sink, not the client, would set the pace). Dot-stuffing is undone; the
        commands before DATA are aiosmtpd's own."""

        async def smtp_DATA(self, arg: str) -> None:
            if await self.check_helo_needed():
                return
            if not self.envelope.rcpt_tos:
                await self.push("503 Error: need RCPT command")
                return
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            self._reader._limit = 1 << 26  # type: ignore[attr-defined]  # whole messages, not lines
            blob = await self._reader.readuntil(b"\r\n.\r\n")
            content = blob[:-3].replace(b"\r\n..", b"\r\n.")
            if content.startswith(b".."):
                content = content[1:]
            self.envelope.original_content = self.envelope.content = content
            status = await self._call_handler_hook("DATA")
            self._set_post_data_state()
            await self.push(status)

        async def push(self, status: Any) -> None:
            # A server some way off: each reply arrives reply_delay later (a network round trip).
            if reply_delay:
                await asyncio.sleep(reply_delay)
            await super().push(status)

    return FastDataSMTP


def _serve(port: int, count: Any, first: Any, last: Any, nbytes: Any, ready: Any, reply_delay: float = 0.0) -> None:
    from aiosmtpd.controller import Controller

    smtp_class = _fast_smtp_class(reply_delay)

    class FastController(Controller):
        def factory(self) -> Any:
            return smtp_class(self.handler, **self.SMTP_kwargs)

    controller = FastController(_Discard(count, first, last, nbytes), hostname="127.0.0.1", port=port,
                                data_size_limit=0, decode_data=False)
    controller.start()
    ready.set()
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


class FastSink:
    """``with FastSink() as sink:`` -> ``sink.port``, ``sink.count``, ``sink.first``/``sink.last`` (epoch s)."""

    def __init__(self, port: int | None = None, reply_delay_ms: float = 0.0):
        """``reply_delay_ms``: each SMTP reply is delayed this much, as a server a round trip away would be."""
        self.port = port or free_port()
        ctx = mp.get_context("spawn")
        # Unsynchronised values: only the sink process writes them (one asyncio thread).
        self._count = ctx.Value("q", 0, lock=False)
        self._nbytes = ctx.Value("q", 0, lock=False)
        self._first = ctx.Value("d", 0.0, lock=False)
        self._last = ctx.Value("d", 0.0, lock=False)
        self._ready = ctx.Event()
        self._proc = ctx.Process(target=_serve, daemon=True, name="bench-smtp-sink",
                                 args=(self.port, self._count, self._first, self._last, self._nbytes,
                                       self._ready, reply_delay_ms / 1000))

    @property
    def count(self) -> int:
        return int(self._count.value)

    @property
    def nbytes(self) -> int:
        return int(self._nbytes.value)

    @property
    def first(self) -> float:
        return float(self._first.value)

    @property
    def last(self) -> float:
        return float(self._last.value)

    def reset(self) -> None:
        self._count.value = 0
        self._nbytes.value = 0
        self._first.value = self._last.value = 0.0

    def wait_for(self, n: int, timeout: float, idle: float | None = None) -> bool:
        """Until ``n`` messages arrived (True), or ``timeout`` passed, or nothing came for ``idle`` s."""
        deadline = time.monotonic() + timeout
        seen, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            c = self.count
            if c >= n:
                return True
            if c != seen:
                seen, since = c, time.monotonic()
            elif idle is not None and time.monotonic() - since > idle:
                return False
            time.sleep(0.2)
        return False

    def __enter__(self) -> FastSink:
        self._proc.start()
        if not self._ready.wait(30):
            self._proc.kill()
            raise RuntimeError("SMTP sink did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._proc.terminate()
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)
