"""The provider's pace: throttle replies told apart, a throttled message sent again in the same run
without failing anything, and one send rate for several deliver processes sharing the limiter in the
real PostgreSQL, measured at a real SMTP server (devtools.throttle_sink), also when one of them is
SIGKILLed while it holds send slots."""

from __future__ import annotations

import datetime as dt
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psycopg
import pytest

from billing_digest import build, extract, plan
from billing_digest.delivery.deliver import DeliveryIncomplete, DeliveryOptions, deliver_batch
from billing_digest.delivery.pace import Lease, PaceConfig, SharedPace
from billing_digest.delivery.smtp import SmtpClient, SmtpSettings
from billing_digest.delivery.smtp_replies import SmtpUnavailable, is_throttle
from billing_digest.mail.render import Renderer
from billing_digest.settings import Settings
from billing_digest.window import window_for_date
from devtools.smtp_sink import SmtpSink, free_port
from devtools.throttle_sink import RateGate, peak_rate
from tests.scenarios.crashkit import seed_and_build_day

ROOT = Path(__file__).resolve().parents[2]
DAY = dt.date(2026, 11, 27)
SETTINGS = Settings(unsubscribe_secret="test-secret-of-sixteen", max_batches=3, min_batch_size=10)


@pytest.mark.parametrize(("code", "text", "throttle"), [
    (454, "Throttling failure: Maximum sending rate exceeded.", True),   # SES
    (432, "4.3.2 Concurrent connections limit exceeded", True),         # Microsoft 365
    (450, "4.7.1 Error: too much mail from 10.0.0.1", True),             # postfix
    (421, "4.7.28 Gmail has detected an unusual rate", True),            # Gmail
    (421, "Too many connections from your host", True),
    (451, "Rate limit exceeded, slow down", True),
    (451, "4.3.0 Try again later", False),
    (421, "4.3.2 Shutting down, try again later", False),
    (452, "4.2.2 Mailbox full, quota exceeded", False),                  # one recipient's problem
    (550, "5.7.1 Rate limited forever", False),                          # 5xx stays permanent
])
def test_throttle_replies_are_told_from_other_refusals(code, text, throttle):
    assert is_throttle(code, text) is throttle


def test_a_lease_forfeits_slots_already_past_instead_of_catching_up():
    lease = Lease(next_at=10.0, interval=0.5, left=4)
    assert lease.take(9.0) == 10.0          # early: wait for the slot
    assert lease.take(12.1) is None         # 10.5, 11.0, 11.5 are gone: no burst to make up for them
    lease = Lease(next_at=10.0, interval=0.01, left=10, late=0.05)
    assert lease.take(10.04) == 10.0                          # 0.04 late: still within ``late``
    assert lease.take(10.085) == pytest.approx(10.04) and lease.forfeited == 3  # 10.01-10.03 forfeited
    lease = Lease(next_at=10.0, interval=0.5, left=4)
    assert lease.take(10.7) == 10.5 and lease.left == 2  # within one interval of its slot: still its own


@pytest.fixture
def day(conn):
    return seed_and_build_day(conn, DAY, SETTINGS)


def _batches(conn) -> list[int]:
    return [b.batch for b in plan.plan_batches(conn, DAY, resend=False, redirect=False)]


def test_a_throttled_message_pauses_the_connection_and_is_sent_again_in_the_same_run(conn, day, smtp_sink):
    gate = RateGate(rate=0, refuse_nth={3, 4, 5, 6, 7, 8, 9})  # 7 throttle replies in a row
    smtp_sink.faults.on_data = gate
    sleeps: list[float] = []
    options = DeliveryOptions(max_consecutive_deferred=2, attempts=2, throttle_pause_seconds=0.01)
    reports = [deliver_batch(conn, SmtpSettings(port=smtp_sink.port), Renderer(SETTINGS), DAY, b, options,
                             sleep=sleeps.append) for b in _batches(conn)]
    assert sum(r.throttled for r in reports) == 7
    assert sum(r.outcomes.get("sent", 0) for r in reports) == len(day) == 60
    assert set(smtp_sink.counts()) == day and max(smtp_sink.counts().values()) == 1
    assert sleeps.count(0.01) == 7  # each throttle: the pause, not the transient backoff
    rate = conn.execute("SELECT base_rate, throttles FROM digest.send_pace").fetchone()
    assert rate[0] is not None and rate[1] == 7  # the cluster's rate was cut, once per burst


def test_a_server_that_never_stops_throttling_defers_and_the_task_retries(conn, day, smtp_sink):
    smtp_sink.faults.on_data = RateGate(rate=0, refuse_nth=range(1, 10_000))
    options = DeliveryOptions(throttle_pause_seconds=0.01, throttle_patience_seconds=0.0)
    with pytest.raises(DeliveryIncomplete):
        deliver_batch(conn, SmtpSettings(port=smtp_sink.port), Renderer(SETTINGS), DAY, _batches(conn)[0], options,
                      sleep=lambda s: None)
    states = dict(conn.execute("SELECT state, count(*) FROM digest.deliveries GROUP BY 1").fetchall())
    assert states.get("deferred") == 1 and "sent" not in states


def test_a_cut_is_seen_by_every_sender_and_grows_back(conn, db_dsn):
    config = PaceConfig(name="x:25", max_per_second=100.0, increase=0.5)
    with psycopg.connect(db_dsn, autocommit=True) as other_conn:
        one = SharedPace(conn, config, sleep=lambda s: None)
        other = SharedPace(other_conn, config, sleep=lambda s: None)
        one.acquire()
        for _ in range(20):
            one.accepted()
        cut = one.throttled()
        assert cut is not None and cut < 100.0
        other.acquire()
        assert other.rate is not None and other.rate < 100.0  # the other sender slows down too
        time.sleep(0.5)
        other._lease = Lease()
        other.acquire()
        assert other.rate > cut  # additive increase


WORKER = textwrap.dedent("""
    import datetime as dt, sys, psycopg
    from billing_digest.delivery.deliver import DeliveryOptions, deliver_batch
    from billing_digest.mail.render import Renderer
    from billing_digest.settings import Settings
    from billing_digest.delivery.smtp import SmtpSettings
    dsn, port, batch, cap = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    with psycopg.connect(dsn) as conn:
        deliver_batch(conn, SmtpSettings(host="127.0.0.1", port=port), Renderer(Settings()), dt.date(2026, 11, 27),
                      batch, DeliveryOptions(run_id=f"p{batch}", max_messages_per_second=cap, chunk_size=10))
""")


def _workers(db_dsn: str, port: int, batches: list[int], cap: float) -> list[subprocess.Popen]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'plugins'}{os.pathsep}{ROOT}"}
    return [subprocess.Popen([sys.executable, "-c", WORKER, db_dsn, str(port), str(b), str(cap)], env=env)
            for b in batches]


CAP = 40.0  # 60 digests: 1.5 s at the cap, ~0.1 s without it


def test_several_deliver_processes_together_stay_under_the_cap_at_the_server(conn, db_dsn, day, smtp_sink):
    gate = RateGate(rate=0)  # counts; refuses nothing
    smtp_sink.faults.on_data = gate
    batches = _batches(conn)
    assert len(batches) == 3
    for worker in _workers(db_dsn, smtp_sink.port, batches, CAP):
        assert worker.wait(120) == 0
    assert set(smtp_sink.counts()) == day and max(smtp_sink.counts().values()) == 1
    assert peak_rate(gate.accepted_at, 1.0) <= CAP * 1.1, gate.figures()
    assert peak_rate(gate.accepted_at, 0.5) <= CAP * 1.1 + 2, gate.figures()
    span = gate.accepted_at[-1] - gate.accepted_at[0]
    assert span >= (len(day) - 1) / (CAP * 1.1), gate.figures()  # never faster than the cap, on the whole


def test_a_sender_killed_while_holding_slots_neither_lets_the_others_exceed_the_cap_nor_blocks_them(
        conn, db_dsn, day, smtp_sink):
    gate = RateGate(rate=0)
    smtp_sink.faults.on_data = gate
    batches = _batches(conn)
    workers = _workers(db_dsn, smtp_sink.port, batches, CAP)
    deadline = time.monotonic() + 60
    sent = "SELECT count(*) FROM digest.deliveries WHERE state = 'sent' AND batch = %s"
    while time.monotonic() < deadline and conn.execute(sent, (batches[0],)).fetchone()[0] < 3:
        time.sleep(0.01)
    os.kill(workers[0].pid, signal.SIGKILL)  # mid-batch: it holds a lease of send slots (and row locks)
    assert workers[0].wait(10) == -signal.SIGKILL
    for worker in workers[1:]:
        assert worker.wait(60) == 0  # not blocked by the dead sender's slots
    assert peak_rate(gate.accepted_at, 1.0) <= CAP * 1.1, gate.figures()
    killed_batch = conn.execute("SELECT count(*) FILTER (WHERE state = 'pending') FROM digest.deliveries "
                                "WHERE batch = %s", (batches[0],)).fetchone()[0]
    assert killed_batch > 0  # it was killed mid-batch; the task retry sends the rest
    assert max(smtp_sink.counts().values()) == 1


def test_worst_first_the_most_errors_then_the_largest_amount_are_sent_first(conn, world, smtp_sink):
    from tests.world import local

    # (errors, amount of each invoice): sent in the order 3 errors, 2 errors of R$ 900, 2 errors of R$ 10, 1 error
    companies = {"one": (1, "5000.00"), "two-small": (2, "10.00"), "three": (3, "1.00"), "two-big": (2, "900.00")}
    users = {}
    for name, (errors, amount) in companies.items():
        entity = world.entity(f"Empresa {name}")
        users[world.user(f"Pessoa {name}", f"{name}@x.com.br", [entity])] = name
        for _ in range(errors):
            invoice = world.invoice(entity, local(DAY, 9), amount=amount, boleto=False, notification=False)
            world.attempt(invoice, "nfse", "rejected", local(DAY, 9, 5), "E160 - Código inválido")
    extract.stage_errors(conn, window_for_date(DAY))
    build.build_and_stage(conn, window_for_date(DAY), Settings(unsubscribe_secret="test-secret-of-sixteen"))
    for b in _batches(conn):
        deliver_batch(conn, SmtpSettings(port=smtp_sink.port), Renderer(SETTINGS), DAY, b, DeliveryOptions(),
                      sleep=lambda s: None)
    order = [users[m.key[2]] for m in smtp_sink.messages]
    assert order == ["three", "two-big", "two-small", "one"]


def test_after_a_cut_the_rate_climbs_back_fast_to_just_under_where_it_was_refused_then_probes_gently(conn):
    def rate(base: float, seconds: float, peak: float | None, cap: float = 0.0) -> float:
        return conn.execute("SELECT digest.pace_rate(%s, now() - make_interval(secs => %s), %s, %s, 0.1, 0.5, 0.95, "
                            "now())", (base, seconds, peak, cap)).fetchone()[0]

    assert rate(50.0, 0.0, 100.0) == pytest.approx(50.0)
    assert rate(50.0, 1.0, 100.0) == pytest.approx(75.0)                   # +50%/s while far below
    reach = math.log(95 / 50) / math.log(1.5)                               # 1.58 s to 95% of where refused
    assert rate(50.0, reach, 100.0) == pytest.approx(95.0)
    assert rate(50.0, reach + 1, 100.0) == pytest.approx(95.0 * math.exp(0.1), rel=1e-6)  # then gently: +10.5%
    assert rate(50.0, reach + 3, 100.0) == pytest.approx(95.0 * math.exp(0.9), rel=1e-6)  # and faster: x2.46
    assert rate(50.0, 1.0, None) == pytest.approx(112.5)                    # no limit known: x2.25/s (slow start)
    assert rate(50.0, 10.0, 100.0, cap=80.0) == 80.0                        # never above the cap


def test_a_messages_first_throttle_is_retried_at_once_at_the_cut_rate_and_a_second_pauses():
    from billing_digest.delivery.retry import RetryPolicy

    policy = RetryPolicy(DeliveryOptions(throttle_pause_seconds=60.0, throttle_first_retry_seconds=0.1,
                                         throttle_patience_seconds=1800.0))
    assert policy.throttled(5.0, again=False).delay == 0.1
    assert policy.throttled(5.0, again=True).delay == 60.0
    assert policy.throttled(1800.0, again=False).action == "deferred"


# -- a throttle reply at connect time (issue 14, Must 2: "421 too many connections") --------------------------------

TOO_MANY_CONNECTIONS = "421 4.7.0 Too many concurrent connections"  # postfix's smtpd_client_connection_count_limit


@pytest.mark.parametrize("where", ["greeting", "ehlo"])
def test_a_throttle_reply_at_connect_pauses_cuts_the_rate_and_connects_again(conn, day, smtp_sink, where):
    gate = RateGate(rate=0, reply=TOO_MANY_CONNECTIONS, refuse_nth=range(1, 4))  # the first 3 connections
    setattr(smtp_sink.faults, "on_connect" if where == "greeting" else "on_ehlo", gate)
    sleeps: list[float] = []
    options = DeliveryOptions(throttle_pause_seconds=7.0, throttle_first_retry_seconds=0.1)
    batches = _batches(conn)
    reports = [deliver_batch(conn, SmtpSettings(port=smtp_sink.port), Renderer(SETTINGS), DAY, b, options,
                             sleep=sleeps.append) for b in batches]

    assert gate.refused == 3 and sum(r.throttled for r in reports) == 3  # counted like the other throttles
    assert sum(r.throttle_pause_seconds for r in reports) == pytest.approx(21.0)
    assert sleeps.count(7.0) == 3 and 0.1 not in sleeps  # the whole pause each time: connections close at their pace
    assert sum(r.outcomes.get("sent", 0) for r in reports) == len(day) == 60  # the batch succeeded
    assert set(smtp_sink.counts()) == day and max(smtp_sink.counts().values()) == 1  # every digest once
    assert sum(r.smtp_connections for r in reports) == len(batches)  # the refused connections opened nothing
    assert conn.execute("SELECT throttles FROM digest.send_pace").fetchone()[0] == 3  # the cluster's rate was cut


TOO_MANY_LOGINS = "454 4.7.0 Too many login attempts, please try again later"  # Gmail's, Microsoft 365's


def test_a_throttle_reply_to_the_login_pauses_and_logs_in_again_while_wrong_credentials_still_fail(conn, day):
    # smtplib tries each mechanism the server offers (aiosmtpd: PLAIN, LOGIN) before giving up: 2 tries a login
    gate = RateGate(rate=0, reply=TOO_MANY_LOGINS, refuse_nth=range(1, 5))  # the first 2 logins
    sleeps: list[float] = []
    options = DeliveryOptions(throttle_pause_seconds=5.0)
    with SmtpSink(auth=("digest", "right"), auth_gate=gate) as sink:
        smtp = SmtpSettings(port=sink.port, login="digest", password="right")
        reports = [deliver_batch(conn, smtp, Renderer(SETTINGS), DAY, b, options, sleep=sleeps.append)
                   for b in _batches(conn)]
        assert gate.refused == 4 and sum(r.throttled for r in reports) == 2 and sleeps.count(5.0) == 2
        assert set(sink.counts()) == day and max(sink.counts().values()) == 1  # every digest once, no task failed
        with pytest.raises(SmtpUnavailable, match="refused the login"):  # a 535 is no throttle: the task fails
            SmtpClient(SmtpSettings(port=sink.port, login="digest", password="wrong")).connect()


def test_a_server_that_keeps_refusing_connections_as_throttled_defers_within_the_throttle_patience(
        conn, day, smtp_sink):
    smtp_sink.faults.on_connect = RateGate(rate=0, reply=TOO_MANY_CONNECTIONS, refuse_nth=range(1, 10_000))
    options = DeliveryOptions(throttle_pause_seconds=0.01, throttle_patience_seconds=0.0)
    with pytest.raises(DeliveryIncomplete):  # as any throttle past its patience: deferred, the task's retry goes on
        deliver_batch(conn, SmtpSettings(port=smtp_sink.port), Renderer(SETTINGS), DAY, _batches(conn)[0], options,
                      sleep=lambda s: None)
    rows = conn.execute("SELECT state, reason FROM digest.deliveries WHERE state <> 'pending'").fetchall()
    assert rows == [("deferred", f"at connect: {TOO_MANY_CONNECTIONS}")] and smtp_sink.messages == []


@pytest.mark.parametrize("reply", ["421 4.3.2 Service shutting down", "554 5.7.1 No SMTP service here"])
def test_a_refusal_at_connect_that_is_no_throttle_still_fails_the_task(conn, day, smtp_sink, reply):
    smtp_sink.faults.on_connect = RateGate(rate=0, reply=reply, refuse_nth=range(1, 10_000))
    sleeps: list[float] = []
    with pytest.raises(SmtpUnavailable, match=f"refused the connection: {reply}"):
        deliver_batch(conn, SmtpSettings(port=smtp_sink.port), Renderer(SETTINGS), DAY, _batches(conn)[0],
                      DeliveryOptions(), sleep=sleeps.append)
    assert sleeps == [] and smtp_sink.messages == []
    assert {s for (s,) in conn.execute("SELECT state FROM digest.deliveries")} == {"pending"}


def test_a_connection_refused_still_fails_the_task_at_once(conn, day):
    sleeps: list[float] = []
    with pytest.raises(SmtpUnavailable, match=r"cannot connect to SMTP server 127\.0\.0\.1"):
        deliver_batch(conn, SmtpSettings(host="127.0.0.1", port=free_port(), timeout=2), Renderer(SETTINGS), DAY,
                      _batches(conn)[0], DeliveryOptions(), sleep=sleeps.append)
    assert sleeps == []
