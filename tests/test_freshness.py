"""The freshness gate: wait until the billing data is complete up to the window's end (minus a tolerance)."""

import datetime as dt

import pytest

from billing_digest import freshness
from billing_digest.window import window_for_date
from tests.world import local

DAY = dt.date(2026, 11, 27)
W = window_for_date(DAY)  # ends 2026-11-28 06:30 -03
TOLERANCE = dt.timedelta(hours=12)


def test_arrived_when_complete_up_to_the_window_end_minus_the_tolerance():
    assert not freshness.assess(W, None, TOLERANCE).arrived
    assert not freshness.assess(W, local(DAY, 18, 29), TOLERANCE).arrived
    state = freshness.assess(W, local(DAY, 18, 30), TOLERANCE)
    assert state.arrived and state.needed == local(DAY, 18, 30)
    assert "complete up to 2026-11-27 18:30 -03; needed 2026-11-27 18:30 -03" in state.describe(W)


def test_the_default_query_is_the_latest_recorded_attempt(world, conn):
    assert freshness.measure(conn, W, TOLERANCE).complete_up_to is None
    world.data_loaded_until(local(DAY, 15))
    assert not freshness.measure(conn, W, TOLERANCE).arrived
    world.data_loaded_until(local(DAY, 20))
    world.data_loaded_until(local(DAY + dt.timedelta(days=400), 0))  # a bad clock far in the future is ignored
    state = freshness.measure(conn, W, TOLERANCE)
    assert state.arrived and state.complete_up_to == local(DAY, 20)


def test_a_deployment_replaces_the_query(world, conn):
    conn.execute("CREATE TABLE public.loads (source text, loaded_until timestamptz)")
    conn.execute("INSERT INTO public.loads VALUES ('billing', %s)", (local(DAY + dt.timedelta(days=1), 7),))
    query = "SELECT max(loaded_until) FROM public.loads WHERE loaded_until >= %(window_start)s"
    assert freshness.measure(conn, W, dt.timedelta(0), query).arrived


@pytest.mark.parametrize("query", ["SELECT 1", "SELECT now(), now()", "SELECT now() FROM generate_series(1, 2)",
                                   "SELECT localtimestamp", "SELECT nope FROM nowhere"])
def test_a_query_that_does_not_return_one_timestamptz_is_a_configuration_error(conn, query):
    with pytest.raises(freshness.FreshnessQueryError, match="freshness query"):
        freshness.measure(conn, W, TOLERANCE, query)
