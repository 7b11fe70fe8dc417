"""The volume guard judges rates: a topic's errors per invoice billed, wildly off its trailing reported
days' median rate, hold the day; a billing wave (more invoices, the usual rate) does not."""

import datetime as dt
import json

from billing_digest import volume
from billing_digest.volume import DayVolume

DAY = dt.date(2026, 11, 27)
USUAL = {"nfse": 10, "boleto": 75, "notification": 5}  # per 1,000 invoices billed


def days(*boletos: int, invoices: int = 1000) -> list[DayVolume]:
    return [DayVolume({"nfse": 10, "boleto": n, "notification": 5}, invoices) for n in boletos]


def judge(today: dict[str, int], invoices: int, trailing: list[DayVolume]) -> volume.Volume:
    return volume.assess(DAY, DayVolume(today, invoices), trailing, factor=3.0, floor=50, min_days=5)


def test_a_busy_day_at_the_usual_rate_sends_and_the_usual_day_at_five_times_the_rate_is_held():
    trailing = days(70, 80, 75, 90, 60)
    wave = judge({code: 5 * n for code, n in USUAL.items()}, 5000, trailing)  # 5x the invoices, same rate
    assert wave.anomalies == () and wave.median["boleto"] == 375.0
    spike = judge({"nfse": 10, "boleto": 375, "notification": 5}, 1000, trailing)  # usual invoices, 5x the rate
    [anomaly] = spike.anomalies
    assert anomaly.startswith("2026-11-27: 375 errors in topic Cobrança (Boleto Bancário) for 1,000 invoices billed "
                              "(37.5 per 100 invoices), against a median of 7.5 per 100")
    assert "over the 5 previous reported days, 75 expected" in anomaly and "anomaly_factor" in anomaly


def test_small_numbers_are_under_the_floor():
    trailing = [DayVolume({"nfse": 0, "boleto": 80, "notification": 1}, 1000)] * 5
    assert judge({"nfse": 3, "boleto": 200, "notification": 3}, 1000, trailing).anomalies == ()


def test_without_enough_history_nothing_is_judged_and_it_says_so():
    result = judge({"boleto": 10_000}, 1000, days(1, 2))
    assert result.anomalies == () and "2 trailing reported day(s) with invoices, fewer than 5" in result.note
    no_invoices = judge({"boleto": 10_000}, 1000, days(1, 2, 3, 4, 5, invoices=0))
    assert no_invoices.anomalies == () and no_invoices.note  # days that billed nothing have no rate


def test_a_jump_inside_one_or_two_companies_is_theirs_an_outage_is_wide():
    trailing = [DayVolume({"nfse": 10, "boleto": 75, "notification": 5}, 1000, {"boleto": 8}, 300)] * 5
    spike = {"nfse": 10, "boleto": 375, "notification": 5}
    narrow = volume.assess(DAY, DayVolume(spike, 1000, {"boleto": 9}, 300), trailing, factor=3.0, floor=50,
                           min_days=5)
    wide = volume.assess(DAY, DayVolume(spike, 1000, {"boleto": 40}, 300), trailing, factor=3.0, floor=50,
                         min_days=5)
    assert narrow.anomalies == () and len(wide.anomalies) == 1
    assert "in 40 of the 300 billing companies" in wide.anomalies[0]


def test_errors_on_a_day_that_billed_nothing_are_judged_against_zero_expected():
    assert judge({"boleto": 60}, 0, days(70, 80, 75, 90, 60)).anomalies  # 60 errors, 0 expected: above the floor
    assert judge({"boleto": 40}, 0, days(70, 80, 75, 90, 60)).anomalies == ()


def test_trailing_days_are_the_reported_ones_before_the_day_and_rates_use_the_window_s_invoices(conn, world):
    from tests.world import local

    companies = [world.entity(f"Empresa {k}") for k in range(10)]

    def stage(day: dt.date, steps: dict[str, int], reported: bool, spread: bool = False) -> None:
        for k, hour in enumerate((7, 12, 18, 23, 3, 4, 5, 6, 6, 6)):  # 10 invoices in [D 06:30, D+1 06:30)
            world.invoice(companies[k], local(day if hour >= 7 else day + dt.timedelta(days=1), hour,
                                              0 if hour != 6 else 29))
        n = 0
        for step, count in steps.items():
            for _ in range(count):
                n += 1  # a usual day's errors are one company's; ``spread``: every company's
                conn.execute("INSERT INTO digest.errors (digest_date, invoice_id, step, kind, entity_id) "
                             "VALUES (%s, %s, %s, 'failed', %s)", (day, n, step, companies[n % 10 if spread else 0]))
        if reported:
            conn.execute("INSERT INTO digest.day_reports (digest_date, run_id, summary) VALUES (%s, 'r', %s)",
                         (day, json.dumps({})))
    for back in range(1, 7):
        stage(DAY - dt.timedelta(days=back), {"boleto": 10 + back, "charge_email": 2}, reported=back != 3)
    stage(DAY - dt.timedelta(days=20), {"boleto": 1}, reported=True)  # outside the trailing window
    stage(DAY + dt.timedelta(days=1), {"boleto": 999}, reported=True)  # after the day: never a baseline
    stage(DAY, {"boleto": 90, "nfse": 1, "mark_billed": 3}, reported=False, spread=True)
    result = volume.measure(conn, DAY, trailing_days=5, factor=3.0, floor=50, min_days=5)
    assert result.today == {"nfse": 1, "boleto": 90, "notification": 0}
    assert result.trailing_days == 5
    assert result.invoices == 10  # billed in the day's window only
    # 11,12,14,15,16 boleto errors for 10 invoices a day (13 was held): a median of 1.4 per invoice
    assert result.median_rate == {"nfse": 0.0, "boleto": 1.4, "notification": 0.2}
    [anomaly] = result.anomalies  # 90 errors against 14 expected, in all 10 companies against 1
    assert "(900.0 per 100 invoices) in 10 of the 10 billing companies" in anomaly
    conn.execute("UPDATE digest.errors SET entity_id = %s WHERE digest_date = %s", (companies[0], DAY))
    narrow = volume.measure(conn, DAY, trailing_days=5, factor=3.0, floor=50, min_days=5)
    assert narrow.anomalies == ()  # the same jump inside one company: its own digest shows it


def test_a_generated_month_of_billing_waves_is_sent_and_only_the_incident_days_are_held():
    from devtools import volume_month

    verdicts = volume_month.judge(volume_month.month())
    assert [v.day for v in verdicts if v.held_by_rate] == list(volume_month.INCIDENTS)
    waves = [v for v in verdicts if v.day.day in volume_month.WAVE_DAYS and v.day not in volume_month.INCIDENTS]
    assert len(waves) == 5 and not any(v.held_by_rate for v in waves)
    assert any(v.held_by_count for v in waves)  # what the count guard did on the same month
