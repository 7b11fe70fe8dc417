"""A worker killed with SIGKILL in the middle of a batch loses nothing and duplicates nothing."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

from conftest import ROOT

from billing_digest import build, extract
from billing_digest.deliver import DeliveryOptions, deliver_batch
from billing_digest.render import Renderer
from billing_digest.settings import Settings
from billing_digest.smtp import SmtpSettings
from billing_digest.window import window_for_date
from tests.world import local

DAY = dt.date(2026, 11, 27)
WINDOW = window_for_date(DAY)

WORKER = textwrap.dedent("""
    import datetime as dt, sys, psycopg
    from billing_digest.deliver import DeliveryOptions, deliver_batch
    from billing_digest.render import Renderer
    from billing_digest.settings import Settings
    from billing_digest.smtp import SmtpSettings
    with psycopg.connect(sys.argv[1]) as conn:
        deliver_batch(conn, SmtpSettings(port=int(sys.argv[2])), Renderer(Settings()),
                      dt.date(2026, 11, 27), 0, DeliveryOptions(run_id="killed", chunk_size=2))
""")


def test_sigkill_mid_batch_then_rerun_sends_exactly_the_rest(world, conn, db_dsn, smtp_sink):
    for n in range(6):
        entity = world.entity(f"Empresa {n}")
        world.user(f"Pessoa {n}", f"pessoa{n}@empresa{n}.com.br", [entity])
        inv = world.invoice(entity, local(DAY, 9), boleto=False, notification=False)
        world.attempt(inv, "nfse", "failed", local(DAY, 9, 1), "erro")
    extract.stage_errors(conn, WINDOW)
    build.build_and_stage(conn, WINDOW, Settings())

    third_rcpt = threading.Event()
    calls = {"n": 0}

    def slow_rcpt(address: str) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            third_rcpt.set()
            time.sleep(3)  # the worker is killed while it waits here, before the message is sent
        return None

    smtp_sink.faults.on_rcpt = slow_rcpt
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'plugins'}{os.pathsep}{ROOT}"}
    worker = subprocess.Popen([sys.executable, "-c", WORKER, db_dsn, str(smtp_sink.port)], env=env)
    assert third_rcpt.wait(60), "the worker never reached its third message"
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(10)
    assert worker.returncode == -signal.SIGKILL
    assert len(smtp_sink.messages) == 2
    states = dict(conn.execute("SELECT state, count(*) FROM digest.deliveries GROUP BY 1").fetchall())
    assert states == {"sent": 2, "pending": 4}

    smtp_sink.faults.on_rcpt = None
    time.sleep(3.5)  # let the sink finish the killed session
    deliver_batch(conn, SmtpSettings(port=smtp_sink.port), Renderer(Settings()), DAY, 0,
                  DeliveryOptions(run_id="rerun"))  # the task retry; the dead worker's locks are gone
    recipients = [m.rcpt_tos[0] for m in smtp_sink.messages]
    assert sorted(recipients) == [f"pessoa{n}@empresa{n}.com.br" for n in range(6)]
    assert dict(conn.execute("SELECT state, count(*) FROM digest.deliveries GROUP BY 1").fetchall()) == {"sent": 6}
