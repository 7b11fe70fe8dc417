import datetime as dt
from zoneinfo import ZoneInfo

from billing_digest.window import last_closed_window, resolve_window, run_window, window_for_date

SP = ZoneInfo("America/Sao_Paulo")
UTC = dt.UTC


def test_window_for_date_is_0630_to_0630_local():
    w = window_for_date(dt.date(2026, 11, 27))
    assert w.start == dt.datetime(2026, 11, 27, 6, 30, tzinfo=SP)
    assert w.end == dt.datetime(2026, 11, 28, 6, 30, tzinfo=SP)
    assert w.digest_date == dt.date(2026, 11, 27)
    assert w.start.astimezone(UTC).hour == 9  # UTC-3, no DST


def test_last_closed_window_before_and_after_send_time():
    before = dt.datetime(2026, 11, 28, 6, 29, tzinfo=SP)
    after = dt.datetime(2026, 11, 28, 6, 30, tzinfo=SP)
    assert last_closed_window(before).digest_date == dt.date(2026, 11, 26)
    assert last_closed_window(after).digest_date == dt.date(2026, 11, 27)


def test_resolve_window_uses_data_interval_of_a_scheduled_run():
    start = dt.datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
    end = dt.datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
    w = resolve_window(start, end, now=dt.datetime(2026, 12, 5, tzinfo=UTC))
    assert (w.start, w.end, w.digest_date) == (start, end, dt.date(2026, 11, 27))


def test_resolve_window_manual_run_without_interval_takes_last_closed_day():
    instant = dt.datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    assert resolve_window(instant, instant, now=instant).digest_date == dt.date(2026, 11, 28)
    assert resolve_window(None, None, now=instant).digest_date == dt.date(2026, 11, 28)


def test_explicit_digest_date_wins():
    w = resolve_window(None, None, now=dt.datetime(2026, 11, 29, tzinfo=UTC), digest_date=dt.date(2026, 11, 2))
    assert w.digest_date == dt.date(2026, 11, 2)



def test_a_run_s_window_comes_from_its_context():
    now = dt.datetime(2026, 11, 29, 12, tzinfo=UTC)
    start, end = window_for_date(dt.date(2026, 11, 20)).start, window_for_date(dt.date(2026, 11, 20)).end
    assert run_window({"params": {"digest_date": "2026-11-02"}, "data_interval_start": start,
                       "data_interval_end": end}, now).digest_date == dt.date(2026, 11, 2)
    assert run_window({"params": {}, "data_interval_start": start, "data_interval_end": end}, now).digest_date == \
        dt.date(2026, 11, 20)
    assert run_window({}, now).digest_date == dt.date(2026, 11, 28)
