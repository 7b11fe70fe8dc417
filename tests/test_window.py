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


def test_a_bare_logical_date_names_the_digest_day_whatever_the_command():
    from billing_digest.window import named_day

    # `airflow dags test billing_error_digest 2026-11-29` (the CLI reads a bare date as midnight UTC), or the
    # same date read at local midnight: both name 29/11; Airflow's inferred interval (27/11) is ignored
    inferred = window_for_date(dt.date(2026, 11, 27))
    for bare in (dt.datetime(2026, 11, 29, tzinfo=UTC), dt.datetime(2026, 11, 29, tzinfo=SP)):
        assert named_day(bare) == dt.date(2026, 11, 29)
        assert run_window({"logical_date": bare, "data_interval_start": inferred.start,
                           "data_interval_end": inferred.end}, dt.datetime(2026, 12, 5, tzinfo=UTC)).digest_date \
            == dt.date(2026, 11, 29)
    # the scheduled run and backfills: their logical date is the window's start (D 06:30 local): day D
    scheduled = window_for_date(dt.date(2026, 11, 29))
    assert named_day(scheduled.start) is None
    assert run_window({"logical_date": scheduled.start.isoformat(), "data_interval_start": scheduled.start,
                       "data_interval_end": scheduled.end}, dt.datetime(2026, 12, 5, tzinfo=UTC)).digest_date \
        == dt.date(2026, 11, 29)


def test_a_window_not_ended_yet_is_refused_with_when_it_can_run():
    from billing_digest.window import not_ended_yet

    now = dt.datetime(2026, 11, 29, 15, 0, tzinfo=SP)
    assert not_ended_yet(window_for_date(dt.date(2026, 11, 28)), now) is None
    refusal = not_ended_yet(window_for_date(dt.date(2026, 11, 29)), now)
    assert refusal is not None
    assert "its window ends on 30/11/2026 at 06:30 (America/Sao_Paulo)" in refusal
    assert "the latest day that can run now is 28/11/2026" in refusal
