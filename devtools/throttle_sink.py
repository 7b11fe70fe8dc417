"""An SMTP server that throttles on cue, like a mail provider past its rate: a :class:`RateGate` for
``devtools.smtp_sink``'s ``Faults.on_data`` (or ``on_rcpt``) that accepts at most ``rate`` messages per
second (a token bucket of ``burst`` messages) and refuses past it with a configurable reply (SES's
``454 Throttling failure`` by default; postfix's ``450 4.7.1``, Microsoft's ``432 4.3.2``), and refuses
fixed messages by number (``refuse_nth``). It keeps the time of every accepted message, so a test or a
benchmark measures the rate where it matters, at the server (:func:`peak_rate`).

``python -m devtools.throttle_sink --port P --rate R [--reply "..."] [--journal F]`` runs one in its own
process (a benchmark's server): it prints its figures as JSON when it gets SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

SES_THROTTLE = "454 Throttling failure: Maximum sending rate exceeded."


class RateGate:
    """Accept at most ``rate`` msg/s (bucket of ``burst``), refuse past it with ``reply``; thread-safe.
    A refused attempt costs no token (SES); ``refused_attempts_count`` makes it cost one, as postfix's
    anvil counts refused attempts too. ``rate`` 0: no rate limit (only ``refuse_nth``)."""

    def __init__(self, rate: float, reply: str = SES_THROTTLE, burst: float = 1.0,
                 refuse_nth: Collection[int] = (), refused_attempts_count: bool = False,
                 clock: Callable[[], float] = time.monotonic):
        self.rate, self.reply, self.burst, self.clock = rate, reply, max(1.0, burst), clock
        self.refuse_nth, self.refused_attempts_count = set(refuse_nth), refused_attempts_count
        self._tokens = self.burst
        self._at: float | None = None
        self._lock = threading.Lock()
        self.attempts = 0
        self.refused = 0
        self.accepted_at: list[float] = []

    def __call__(self, *_: Any) -> str | None:
        with self._lock:
            now = self.clock()
            self.attempts += 1
            if self._at is not None and self.rate > 0:
                self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self.attempts in self.refuse_nth or (self.rate > 0 and self._tokens < 1):
                self.refused += 1
                if self.refused_attempts_count and self.rate > 0:
                    self._tokens = max(self._tokens - 1, -self.burst)
                return self.reply
            if self.rate > 0:
                self._tokens -= 1
            self.accepted_at.append(now)
            return None

    def figures(self) -> dict[str, Any]:
        with self._lock:
            times = list(self.accepted_at)
        span = times[-1] - times[0] if len(times) > 1 else 0.0
        return {"accepted": len(times), "refused": self.refused, "attempts": self.attempts,
                "first_to_last_seconds": round(span, 3),
                "mean_rate": round((len(times) - 1) / span, 2) if span > 0 else None,
                "peak_rate_1s": round(peak_rate(times, 1.0), 2)}


def peak_rate(times: list[float], window: float = 1.0) -> float:
    """The most messages accepted in any ``window`` seconds, per second."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best / window


def main(argv: list[str] | None = None) -> None:
    from devtools.smtp_sink import SmtpSink

    parser = argparse.ArgumentParser(description="an SMTP server that allows RATE msg/s and refuses past it")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--reply", default=SES_THROTTLE)
    parser.add_argument("--burst", type=float, default=None, help="bucket size (default: 0.1 s of the rate)")
    parser.add_argument("--figures", type=Path, help="write the figures here (JSON) at SIGTERM")
    args = parser.parse_args(argv)
    gate = RateGate(args.rate, args.reply, args.burst if args.burst is not None else max(1.0, args.rate * 0.1))
    sink = SmtpSink(port=args.port)
    sink.faults.on_data = gate
    kept = _Discard()
    sink.handler.messages = kept
    sink.__enter__()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    print(f"listening on 127.0.0.1:{sink.port}", flush=True)
    done.wait()
    sink.__exit__()
    text = json.dumps({**gate.figures(), "digests": len(kept.keys),
                       "received_twice": sum(n - 1 for n in kept.keys.values() if n > 1),
                       "accepted_at": gate.accepted_at})
    if args.figures:
        args.figures.write_text(text)
    else:
        print(text, flush=True)
    sys.exit(0)


class _Discard(list):  # type: ignore[type-arg]
    """Keeps only which digest each accepted message was (a long benchmark would otherwise hold them all)."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: Counter[Any] = Counter()

    def append(self, item: Any) -> None:
        self.keys[item.key] += 1


if __name__ == "__main__":
    main()
