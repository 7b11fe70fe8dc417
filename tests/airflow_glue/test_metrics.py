"""What a run tells the metrics system."""

import datetime as dt

from billing_digest.airflow_glue import metrics
from billing_digest.airflow_glue.metrics import Metric
from billing_digest.handoffs import BatchReport

DAY = dt.date(2026, 11, 27)
T0 = dt.datetime(2026, 11, 28, 9, 31, tzinfo=dt.UTC)


def test_outcomes_errors_and_the_delivery_duration():
    reports = [BatchReport(DAY, 0, {}, 1, 2.0, T0, T0 + dt.timedelta(seconds=2)),
               BatchReport(DAY, 1, {}, 1, 3.5, T0 + dt.timedelta(seconds=1), T0 + dt.timedelta(seconds=4.5))]
    got = metrics.of_run({"sent": 70, "failed": 1, "deferred": 2, "skipped:opted_out": 3, "skipped:access revoked": 1},
                         {"nfse": 18, "boleto": 78, "notification": 18}, reports)
    assert got == [
        Metric("incr", "billing_digest.digests.deferred", 2),
        Metric("incr", "billing_digest.digests.failed", 1),
        Metric("incr", "billing_digest.digests.sent", 70),
        Metric("incr", "billing_digest.digests.skipped.access_revoked", 1),
        Metric("incr", "billing_digest.digests.skipped.opted_out", 3),
        Metric("incr", "billing_digest.digests.skipped", 4),
        Metric("gauge", "billing_digest.errors.nfse", 18),
        Metric("gauge", "billing_digest.errors.boleto", 78),
        Metric("gauge", "billing_digest.errors.notification", 18),
        Metric("gauge", "billing_digest.errors.total", 114),
        Metric("timing", "billing_digest.delivery.duration", 4500.0),
    ]


def test_a_run_without_batches_has_no_duration():
    names = [m.name for m in metrics.of_run({}, {"nfse": 0}, [])]
    assert "billing_digest.delivery.duration" not in names and "billing_digest.digests.skipped" in names
    assert metrics.held() == [Metric("incr", "billing_digest.run.held", 1)]


def test_the_guides_coverage_is_a_percentage_gauge():
    assert metrics.of_guides(114, 57) == [Metric("gauge", "billing_digest.guides.coverage", 50.0),
                                          Metric("gauge", "billing_digest.guides.errors_without_guide", 57)]
    assert metrics.of_guides(3, 2)[0].value == 66.7
    assert metrics.of_guides(0, 0) == []


def test_the_pace_throttle_replies_and_the_effective_rate():
    from billing_digest.summary import RunSummary

    result = RunSummary(DAY, {}, 0, 80, {}, {"sent": 80}, {}, 80, delivery_seconds=4.0, throttled=3)
    assert metrics.of_pace(result) == [Metric("incr", "billing_digest.smtp.throttled", 3),
                                       Metric("gauge", "billing_digest.smtp.rate", 20.0)]
    idle = RunSummary(DAY, {}, 0, 0, {}, {}, {}, 0)
    assert metrics.of_pace(idle) == [Metric("incr", "billing_digest.smtp.throttled", 0)]
