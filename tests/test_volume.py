"""The volume guard: a topic wildly off its trailing reported days holds the day."""

import datetime as dt
import json

from billing_digest import volume

DAY = dt.date(2026, 11, 27)


def days(*boletos: int) -> list[dict[str, int]]:
    return [{"nfse": 10, "boleto": n, "notification": 5} for n in boletos]


def test_a_jump_past_factor_and_floor_is_an_anomaly_naming_topic_count_and_median():
    result = volume.assess(DAY, {"nfse": 11, "boleto": 400, "notification": 4}, days(70, 80, 75, 90, 60),
                           factor=3.0, floor=50, min_days=5)
    [anomaly] = result.anomalies
    assert anomaly.startswith("2026-11-27: 400 errors in topic Cobrança (Boleto Bancário) against a median of 75")
    assert "over the 5 previous reported days" in anomaly and "anomaly_factor" in anomaly
    assert result.median["boleto"] == 75.0


def test_small_numbers_and_ordinary_days_are_not_anomalies():
    trailing = [{"nfse": 0, "boleto": 80, "notification": 1}] * 5
    ordinary = volume.assess(DAY, {"nfse": 3, "boleto": 200, "notification": 3}, trailing,
                             factor=3.0, floor=50, min_days=5)
    assert ordinary.anomalies == ()  # nfse 0 -> 3 is under the floor; boleto 200 < 3 x 80


def test_without_enough_history_nothing_is_judged_and_it_says_so():
    result = volume.assess(DAY, {"boleto": 10_000}, days(1, 2), factor=3.0, floor=50, min_days=5)
    assert result.anomalies == () and "2 trailing reported day(s), fewer than 5" in result.note


def test_trailing_days_are_the_reported_ones_before_the_day(conn):
    def stage(day: dt.date, steps: dict[str, int], reported: bool) -> None:
        n = 0
        for step, count in steps.items():
            for _ in range(count):
                n += 1
                conn.execute("INSERT INTO digest.errors (digest_date, invoice_id, step, kind) "
                             "VALUES (%s, %s, %s, 'failed')", (day, n, step))
        if reported:
            conn.execute("INSERT INTO digest.day_reports (digest_date, run_id, summary) VALUES (%s, 'r', %s)",
                         (day, json.dumps({})))
    for back in range(1, 7):
        stage(DAY - dt.timedelta(days=back), {"boleto": 10 + back, "charge_email": 2}, reported=back != 3)
    stage(DAY - dt.timedelta(days=20), {"boleto": 1}, reported=True)  # outside the trailing window
    stage(DAY + dt.timedelta(days=1), {"boleto": 999}, reported=True)  # after the day: never a baseline
    stage(DAY, {"boleto": 90, "nfse": 1, "mark_billed": 3}, reported=False)
    result = volume.measure(conn, DAY, trailing_days=5, factor=3.0, floor=50, min_days=5)
    assert result.today == {"nfse": 1, "boleto": 90, "notification": 0}
    assert result.trailing_days == 5
    assert result.median == {"nfse": 0.0, "boleto": 14.0, "notification": 2.0}  # 11,12,14,15,16 (13 was held)
    assert len(result.anomalies) == 1
