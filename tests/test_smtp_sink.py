"""The measuring instrument of the crash and pool tests: the sink counts each digest and the
connections open at once, in memory and in a journal that another process can read."""

from __future__ import annotations

import smtplib
import time

from devtools.smtp_sink import SmtpSink, digest_key, read_journal


def _message(day: str, entity: int, user: int) -> bytes:
    return (f"From: a@b.c\r\nTo: x@y.z\r\nX-Billing-Digest: {day}; entity={entity}; user={user}\r\n"
            f"Subject: t\r\n\r\nbody\r\n").encode()


def _wait(condition, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_digest_key_parses_the_header():
    assert digest_key("2026-11-27; entity=12; user=34") == ("2026-11-27", 12, 34)


def test_counts_per_digest_and_connections_open_at_once(tmp_path):
    journal = tmp_path / "journal.jsonl"
    with SmtpSink(journal=journal) as sink:
        sink.handler.reset_peak()
        first, second = smtplib.SMTP("127.0.0.1", sink.port), smtplib.SMTP("127.0.0.1", sink.port)
        first.sendmail("a@b.c", ["x@y.z"], _message("2026-11-27", 1, 2))
        second.sendmail("a@b.c", ["x@y.z"], _message("2026-11-27", 1, 2))
        second.sendmail("a@b.c", ["x@y.z"], _message("2026-11-27", 3, 4))
        assert sink.open_connections == 2
        first.quit()
        second.quit()
        _wait(lambda: sink.open_connections == 0)
        third = smtplib.SMTP("127.0.0.1", sink.port)
        third.quit()
        _wait(lambda: sink.open_connections == 0)
        assert sink.peak_connections == 2
        assert sink.counts() == {("2026-11-27", 1, 2): 2, ("2026-11-27", 3, 4): 1}
    seen = read_journal(journal)
    assert (seen.messages, seen.open_connections, seen.peak_connections) == (3, 0, 2)
    assert seen.counts == {("2026-11-27", 1, 2): 2, ("2026-11-27", 3, 4): 1}
    assert seen.connections == sink.handler.connections  # aiosmtpd's own start-up probe included
