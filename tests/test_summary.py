"""The run summary: a table for the log, kept per day for the demo and the data team."""

import datetime as dt

from billing_digest import summary
from billing_digest.handoffs import BatchReport, BuiltDay

DAY = dt.date(2026, 11, 27)


def test_summary_counts_this_run_and_the_ledger_and_is_kept_per_day(conn):
    conn.execute("INSERT INTO digest.deliveries (digest_date, entity_id, user_id, batch, state, reason) VALUES "
                 "(%(d)s, 1, 1, 0, 'sent', NULL), (%(d)s, 1, 2, 0, 'skipped', 'opted_out'), "
                 "(%(d)s, 2, 1, 1, 'failed', '550 no such user')", {"d": DAY})
    built = BuiltDay(DAY, 5, {"nfse": 3, "boleto": 2, "notification": 0}, 2, 0, 3, {"missing_amount": 1})
    t0 = dt.datetime(2026, 11, 28, 9, 31, tzinfo=dt.UTC)
    reports = [BatchReport(DAY, 0, {"sent": 1, "skipped:opted_out": 1}, 1, 2.0, t0, t0 + dt.timedelta(seconds=2),
                           throttled=2),
               BatchReport(DAY, 1, {"failed": 1}, 1, 3.0, t0 + dt.timedelta(seconds=1), t0 + dt.timedelta(seconds=4))]
    result = summary.summarize(conn, built, reports, run_id="manual__1")
    assert result.emails_sent_this_run == 1
    assert (result.delivery_seconds, result.throttled, result.send_rate) == (4.0, 2, 0.25)
    assert result.this_run == {"failed": 1, "sent": 1, "skipped:opted_out": 1}
    assert result.ledger == {"failed": {"550 no such user": 1}, "sent": {"-": 1}, "skipped": {"opted_out": 1}}
    summary.save(conn, result)
    assert summary.latest(conn, DAY) == result
    assert summary.latest(conn, DAY + dt.timedelta(days=1)) is None

    table = summary.format_table(result)
    assert table.splitlines()[0].startswith("Billing error digest for 27/11/2026")
    for line in ("errors: Nota Fiscal", "e-mails sent by this run", "ledger: skipped (opted_out)",
                 "bad input: missing_amount", "delivery: e-mails per second", "delivery: throttle replies"):
        assert line in table
    assert "@" not in table


def test_the_guides_coverage_travels_from_build_to_the_summary_and_its_table(conn):
    """Which guide to write next: the share of errors with a guide and the top causes without one."""
    unguided = ({"cause": "boleto ZZ: erro desconhecido do banco", "invoices": 40, "companies": 3},
                {"cause": "nfse E999: rejeicao desconhecida", "invoices": 2, "companies": 1})
    built = BuiltDay(DAY, 200, {"nfse": 60, "boleto": 140, "notification": 0}, 9, 0, 12, {},
                     errors_with_guide=158, unguided_causes=unguided)
    result = summary.summarize(conn, BuiltDay.from_xcom(built.to_xcom()), [])
    assert (result.errors, result.errors_with_guide, result.unguided_causes) == (200, 158, unguided)
    summary.save(conn, result)
    assert summary.latest(conn, DAY) == result
    table = summary.format_table(result)
    assert "errors with a guide" in table and "79% (158 of 200)" in table
    assert "no guide: boleto ZZ: erro desconhecido do banco  40 invoices, 3 companies" in table
